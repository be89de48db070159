//! Recordings across the network (Mconf's recording architecture) with real processes: a
//! balancer, two simulated nodes with their agents, two institutions each with its own
//! conflux-recorder. A recording leaves its node only encrypted for its institution's
//! recorder; only that recorder can open it, and it serves the playback.

use std::path::PathBuf;

use conflux_shared::checksum;
use conflux_shared::crypto::archive;
use conflux_shared::response::{Body, Recording};
use conflux_shared::Algorithm;
use conflux_tests::harness::{
    agent, balancer, eventually, fixture_key, host, http, recorder, sim, spool_tarball, Balancer,
    BbbClient, SimNode,
};
use reqwest::Method;
use serde_json::json;
use warp::Filter;

const UNI: &str = "uni-secret-0123456789";
const SCHOOL: &str = "school-secret-0123456789";
const PLAIN: &str = "plain-secret-0123456789";
const TOKEN: &str = "enrol-token-0123456789";

async fn listed(bbb: &BbbClient, params: &[(&str, &str)]) -> Vec<Recording> {
    match bbb.call("getRecordings", params).await.body {
        Body::Recordings(list) => list,
        other => panic!("{other:?}"),
    }
}

/// A recorder-signed balancer URL (what conflux-recorder sends).
/// The preview image URLs of a recording's first format.
fn thumbnail_urls(recording: &Recording) -> Vec<String> {
    let mut format = recording.playback[0].clone();
    let mut urls = Vec::new();
    format.retain_thumbnails(|url| {
        urls.push(url.clone());
        true
    });
    urls
}

fn recorder_url(lb: &Balancer, path: &str, call: &str, secret: &str) -> String {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let query = format!("ts={ts}");
    let sum = checksum::compute(Algorithm::Sha256, call, &query, secret);
    format!("{}{path}?{query}&checksum={sum}", lb.url)
}

/// Where an integration's recorder will be before it is started: the balancer never calls a
/// recorder (recorders pull), so the address only has to be right once playback links matter.
const NOT_YET_UP: &str = "http://recorder.not-yet-up.invalid";

fn published_dir(node_dir: &tempfile::TempDir) -> PathBuf {
    node_dir.path().join("published")
}

#[tokio::test]
async fn recordings_travel_encrypted_to_their_institutions_recorder() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let n1 = sim()
        .recordings_dir(&published_dir(&d1).join("presentation"))
        .start()
        .await;
    let n2 = sim()
        .recordings_dir(&published_dir(&d2).join("presentation"))
        .start()
        .await;
    let mut lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", UNI)
        .integration("school", SCHOOL)
        .integration("plain", PLAIN)
        .config(&format!(
            "[monitor]\nenrolment_token = {TOKEN:?}\nenrol_enabled = true\n[recordings]\nimport_interval_secs = 0.3\n"
        ))
        .start()
        .await;

    // Institution A generates its key pair with the recorder; B uses the test-only fixture.
    let keys = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(conflux_tests::harness::binary("conflux-recorder"))
        .args(["keygen", "--out"])
        .arg(keys.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fingerprint:"));
    let again = std::process::Command::new(conflux_tests::harness::binary("conflux-recorder"))
        .args(["keygen", "--out"])
        .arg(keys.path())
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(2),
        "keygen must not overwrite a key"
    );
    // A's recorder comes later (below); B's is up from the start.
    let a_pub = keys.path().join("recorder.pub.pem");
    let mut rec_a = recorder(&lb.url, UNI, &keys.path().join("recorder.key.pem"));
    lb.set_recorder("uni", NOT_YET_UP, &a_pub).await;
    let b_pub = fixture_key("test-only-recorder-3072.pub.pem");
    let mut rec_b = recorder(
        &lb.url,
        SCHOOL,
        &fixture_key("test-only-recorder-3072.key.pem"),
    );
    lb.set_recorder("school", &rec_b.start(), &b_pub).await;

    let _a1 = agent(&lb.url, &n1, TOKEN)
        .recordings(&published_dir(&d1))
        .start();
    let _a2 = agent(&lb.url, &n2, TOKEN)
        .recordings(&published_dir(&d2))
        .start();

    let uni = lb.client(UNI, Algorithm::Sha256);
    let school = lb.client(SCHOOL, Algorithm::Sha1);
    let plain = lb.client(PLAIN, Algorithm::Sha1);
    let nodes = [&n1, &n2];

    // Without a recording server the record flag is dropped.
    assert!(plain
        .call(
            "create",
            &[
                ("meetingID", "plain-1"),
                ("name", "Plain"),
                ("record", "true")
            ]
        )
        .await
        .is_success());
    let info = host(&nodes, "plain-1")
        .await
        .client(Algorithm::Sha1)
        .call("getMeetingInfo", &[("meetingID", "plain-1")])
        .await;
    let Body::Meeting(meeting) = info.body else {
        panic!()
    };
    assert!(!meeting.recording, "the record flag must be dropped");
    // Clients cannot forge the balancer's metadata.
    assert_eq!(
        uni.call(
            "create",
            &[
                ("meetingID", "x"),
                ("name", "X"),
                ("meta_conflux-recorder", "f")
            ]
        )
        .await
        .key(),
        Some("invalidParameters")
    );

    assert!(uni
        .call(
            "create",
            &[
                ("meetingID", "lecture-1"),
                ("name", "Lecture One"),
                ("record", "true"),
                ("meta_course", "cs101"),
            ]
        )
        .await
        .is_success());
    let node = host(&nodes, "lecture-1").await;
    let info = node
        .client(Algorithm::Sha1)
        .call("getMeetingInfo", &[("meetingID", "lecture-1")])
        .await;
    let Body::Meeting(meeting) = info.body else {
        panic!()
    };
    assert!(meeting.recording);
    assert!(meeting
        .metadata
        .iter()
        .any(|(k, _)| k == "conflux-recorder"));
    let (status, body) = node
        .control(
            Method::POST,
            "meetings/lecture-1/recording",
            json!({ "size_bytes": 300_000 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let folder = std::fs::read_dir(&node.recordings)
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .expect("the node wrote the recording")
        .path();
    let record_id = folder.file_name().unwrap().to_string_lossy().into_owned();
    let media = std::fs::read(folder.join("video/webcams.webm")).unwrap();

    // The archive reaches the balancer encrypted: no plaintext, not even the metadata.
    let archive_path = lb.dir.path().join("data/archives").join(&record_id);
    assert!(
        eventually(|| async { archive_path.exists() }).await,
        "no archive at the balancer"
    );
    let sealed = std::fs::read(&archive_path).unwrap();
    assert!(sealed.starts_with(b"CFXARC01"));
    for window in [
        &media[1000..1064],
        &media[200_000..200_064],
        b"<recording>".as_slice(),
        b"shapes.svg",
    ] {
        assert!(
            !sealed.windows(window.len()).any(|w| w == window),
            "plaintext found in the balancer's archive"
        );
    }
    // Listed as processing for A; invisible to B, whose recorder can neither list nor fetch it.
    let shown = listed(&uni, &[("meetingID", "lecture-1"), ("state", "any")]).await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].state, "processing");
    assert!(listed(&school, &[("state", "any")]).await.is_empty());
    let feed: serde_json::Value = http()
        .get(recorder_url(
            &lb,
            "/conflux/recorder/feed",
            "recorderFeed",
            SCHOOL,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        feed["entries"],
        json!([]),
        "B's feed must not show A's recording"
    );
    let stolen = http()
        .get(recorder_url(
            &lb,
            &format!("/conflux/recorder/archives/{record_id}"),
            "recorderArchive",
            SCHOOL,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    // Only A's key opens it.
    let b_private =
        std::fs::read_to_string(fixture_key("test-only-recorder-3072.key.pem")).unwrap();
    assert!(matches!(
        archive::decrypt(&sealed[..], std::io::sink(), &b_private),
        Err(archive::ArchiveError::WrongKey { .. })
    ));

    // A balancer crash before the recorder comes loses nothing; a download cut half-way
    // resumes (the recorder finds half the archive in its incoming folder).
    lb.crash_and_restart().await;
    std::fs::create_dir_all(rec_a.data().join("incoming")).unwrap();
    std::fs::write(
        rec_a.data().join(format!("incoming/{record_id}.part")),
        &sealed[..sealed.len() / 2],
    )
    .unwrap();
    lb.set_recorder("uni", &rec_a.start(), &a_pub).await;

    let uni = lb.client(UNI, Algorithm::Sha256);
    let done = eventually(|| async {
        listed(&uni, &[("meetingID", "lecture-1")])
            .await
            .first()
            .is_some_and(|r| {
                r.state == "published"
                    && r.playback
                        .first()
                        .is_some_and(|p| p.url.starts_with(&rec_a.url))
            })
    })
    .await;
    assert!(
        done,
        "the recording never became available on A's recorder; log:\n{}",
        rec_a.log_text()
    );
    let recording = listed(&uni, &[("meetingID", "lecture-1")]).await.remove(0);
    assert_eq!(recording.meta("course"), Some("cs101"));
    assert!(
        recording.meta("conflux-recorder").is_none(),
        "balancer metadata is hidden"
    );
    let playback = recording.playback[0].url.clone();
    let page = http().get(&playback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Lecture One"));
    let video = http()
        .get(format!("{playback}video/webcams.webm"))
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), 200);
    assert_eq!(video.bytes().await.unwrap(), media);
    // The slide thumbnails (Greenlight's previews) are listed and served by the recorder.
    let thumbnails = thumbnail_urls(&recording);
    assert_eq!(thumbnails.len(), 1, "{:?}", recording.playback[0].preview);
    assert!(thumbnails[0].starts_with(&playback), "{}", thumbnails[0]);
    let image = http().get(&thumbnails[0]).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert!(image.bytes().await.unwrap().starts_with(b"\x89PNG"));

    // Once the recorder has it, the balancer and the node drop their copies.
    assert!(
        eventually(|| async { !archive_path.exists() && !folder.exists() }).await,
        "copies were not removed"
    );

    // Protected: a one-time link, then a cookie.
    assert_eq!(
        uni.call(
            "updateRecordings",
            &[("recordID", &record_id), ("protect", "true")]
        )
        .await
        .field("updated")
        .map(str::to_owned),
        Some("true".into())
    );
    let protected = listed(&uni, &[("recordID", &record_id)]).await.remove(0);
    let link = protected.playback[0].url.clone();
    assert!(
        link.contains("/recording/") && link.contains("token="),
        "{link}"
    );
    assert!(
        eventually(|| async { http().get(&playback).send().await.unwrap().status() == 404 }).await,
        "protected playback without cookie"
    );
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = no_redirect.get(&link).send().await.unwrap();
    assert_eq!(first.status(), 307);
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let watched = http()
        .get(&playback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(watched.status(), 200);
    assert_eq!(
        no_redirect.get(&link).send().await.unwrap().status(),
        404,
        "tokens are one-time"
    );

    // Unpublish hides it on the recorder; delete removes it everywhere.
    uni.call(
        "publishRecordings",
        &[("recordID", &record_id), ("publish", "false")],
    )
    .await;
    assert!(
        eventually(|| async {
            http()
                .get(&playback)
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .status()
                == 404
        })
        .await
    );
    assert_eq!(
        uni.call("deleteRecordings", &[("recordID", &record_id)])
            .await
            .field("deleted")
            .map(str::to_owned),
        Some("true".into())
    );
    let on_recorder = rec_a.data().join("published/presentation").join(&record_id);
    assert!(
        eventually(|| async { !on_recorder.exists() }).await,
        "the recorder kept a deleted recording"
    );
    assert!(listed(&uni, &[("meetingID", "lecture-1")]).await.is_empty());
    assert_eq!(
        listed(&uni, &[("meetingID", "lecture-1"), ("state", "deleted")])
            .await
            .len(),
        1
    );
    drop(rec_b);
}

/// A balancer over `node` with the integration `uni`, reading its spool every 0.3 s.
async fn importing_balancer(node: &SimNode) -> Balancer {
    balancer()
        .nodes(&[node])
        .integration("uni", UNI)
        .config("[recordings]\nimport_interval_secs = 0.3\n")
        .start()
        .await
}

#[tokio::test]
async fn truncated_archives_are_rejected_and_kept_and_spool_tarballs_are_imported() {
    // The front-end's recording-ready endpoint: records what it is sent.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let ready = warp::post()
        .and(warp::path!("ready"))
        .and(warp::body::form::<std::collections::HashMap<String, String>>())
        .map(move |form: std::collections::HashMap<String, String>| {
            let _ = ready_tx.send(form.get("signed_parameters").cloned().unwrap_or_default());
            "ok"
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ready_addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(ready).incoming(listener).run());
    let ready_url = format!("http://{ready_addr}/ready");
    let n1 = sim().start().await;
    let mut lb = importing_balancer(&n1).await;
    let key = fixture_key("test-only-recorder-3072.pub.pem");
    let mut rec = recorder(
        &lb.url,
        UNI,
        &fixture_key("test-only-recorder-3072.key.pem"),
    );
    lb.set_recorder("uni", NOT_YET_UP, &key).await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    for id in ["good", "cut"] {
        assert!(uni
            .call(
                "create",
                &[
                    ("meetingID", id),
                    ("name", id),
                    ("record", "true"),
                    ("meta_bbb-recording-ready-url", &ready_url)
                ]
            )
            .await
            .is_success());
    }
    // The node is not told the recording-ready URL: the balancer calls it when the recorder
    // has the recording.
    let Body::Meeting(meeting) = n1
        .client(Algorithm::Sha1)
        .call("getMeetingInfo", &[("meetingID", "good")])
        .await
        .body
    else {
        panic!()
    };
    assert!(meeting
        .metadata
        .iter()
        .all(|(k, _)| k != "bbb-recording-ready-url"));
    // Nodes without the agent drop Scalelite-style tarballs into the spool.
    let spool = lb.dir.path().join("data/spool");
    for (id, rid) in [("good", "rec-good-1"), ("cut", "rec-cut-1")] {
        spool_tarball(&spool, id, rid, true);
    }
    let archives = lb.dir.path().join("data/archives");
    assert!(
        eventually(|| async {
            archives.join("rec-good-1").exists() && archives.join("rec-cut-1").exists()
        })
        .await,
        "spool tarballs were not encrypted; log:\n{}",
        lb.process.log_text()
    );
    assert!(
        !spool.join("rec-good-1.tar").exists(),
        "the plaintext tarball stays in the spool"
    );
    // Damage one archive at the balancer before the recorder pulls.
    let cut = archives.join("rec-cut-1");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    // Prometheus sees them wait for the recorder (an alert fires if they wait too long).
    let metrics = lb.metrics().await;
    assert!(
        metrics.contains("conflux_integration_archives_waiting{integration=\"uni\"} 2"),
        "{metrics}"
    );
    let waited = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("conflux_integration_archive_wait_seconds{integration=\"uni\"} ")
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(waited > 0.0 && waited < 120.0, "{waited}");
    lb.set_recorder("uni", &rec.start(), &key).await;
    assert!(
        eventually(|| async {
            listed(&uni, &[("meetingID", "good")])
                .await
                .first()
                .is_some_and(|r| r.state == "published")
        })
        .await
    );
    assert!(
        eventually(|| async { rec.data().join("rejected/rec-cut-1.cfx").exists() }).await,
        "the damaged archive is not kept aside"
    );
    assert!(eventually(|| async { archives.join(".rejected/rec-cut-1").exists() }).await);
    assert!(listed(&uni, &[("meetingID", "cut")]).await.is_empty());
    // The recorder's refusal is shown, not left as a silent `processing`.
    let refused = listed(&uni, &[("meetingID", "cut"), ("state", "any")]).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].state, "failed");
    let metrics = lb.metrics().await;
    assert!(metrics.contains("conflux_recording_archives_refused_total{by=\"recorder\"} 1"));
    assert!(
        metrics.contains("conflux_integration_archives_refused{integration=\"uni\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conflux_integration_archives_waiting{integration=\"uni\"} 0"),
        "{metrics}"
    );
    let page = http()
        .get(format!("{}/playback/presentation/rec-good-1/", rec.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    // The recording-ready callback arrives once, signed as BBB signs it.
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), ready_rx.recv())
        .await
        .expect("no recording-ready callback")
        .unwrap();
    let claims =
        conflux_shared::transfer::jwt_claims(UNI, &token, 0).expect("signed with the secret");
    assert_eq!(claims["record_id"], "rec-good-1");
    assert_eq!(claims["meeting_id"], "good");

    // Retention: the institution keeps recordings one day; this one ended in 1970. The sweep
    // (at start, then hourly) deletes it everywhere.
    lb.cli_ok(&["integrations", "update", "uni", "--retention-days", "1"]);
    lb.crash_and_restart().await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    assert!(eventually(|| async { listed(&uni, &[("meetingID", "good")]).await.is_empty() }).await);
    let on_recorder = rec.data().join("published/presentation/rec-good-1");
    assert!(
        eventually(|| async { !on_recorder.exists() }).await,
        "retention did not reach the recorder"
    );
}

/// The single field a recording call answers (`published`, `deleted`, `updated`).
fn field(response: &conflux_shared::Response, name: &str) -> Option<String> {
    response.field(name).map(String::from)
}

#[tokio::test]
async fn recording_calls_answer_as_bbb_does() {
    let n1 = sim().start().await;
    let lb = importing_balancer(&n1).await;
    let key = fixture_key("test-only-recorder-3072.pub.pem");
    lb.set_recorder("uni", NOT_YET_UP, &key).await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let create = [("meetingID", "talk"), ("name", "Talk"), ("record", "true")];
    assert!(uni.call("create", &create).await.is_success());
    // Without a <meeting> element, as older BBB wrote metadata.xml: named by <meta>.
    spool_tarball(
        &lb.dir.path().join("data/spool"),
        "talk",
        "rec-talk-1",
        false,
    );
    let id = ("recordID", "rec-talk-1");
    assert!(
        eventually(|| async { !listed(&uni, &[id, ("state", "any")]).await.is_empty() }).await,
        "the tarball was not imported; log:\n{}",
        lb.process.log_text()
    );
    // Booleans in any case, as BBB reads them.
    let unpublished = uni
        .call("publishRecordings", &[id, ("publish", "FALSE")])
        .await;
    assert_eq!(field(&unpublished, "published").as_deref(), Some("false"));
    // updated=true only when something changed.
    let update = [id, ("meta_course", "cs101")];
    let first = uni.call("updateRecordings", &update).await;
    assert_eq!(
        field(&first, "updated").as_deref(),
        Some("true"),
        "{first:?}"
    );
    let again = uni.call("updateRecordings", &update).await;
    assert_eq!(
        field(&again, "updated").as_deref(),
        Some("false"),
        "{again:?}"
    );
    // A deleted recording cannot be published again.
    let deleted = uni.call("deleteRecordings", &[id]).await;
    assert_eq!(field(&deleted, "deleted").as_deref(), Some("true"));
    let republished = uni
        .call("publishRecordings", &[id, ("publish", "true")])
        .await;
    assert_eq!(republished.key(), Some("notFound"), "{republished:?}");
    let updated = uni.call("updateRecordings", &update).await;
    assert_eq!(updated.key(), Some("notFound"), "{updated:?}");
}
