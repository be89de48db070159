//! The agents' archive door against a lying or broken node: a node may upload only recordings
//! of meetings placed on it, a record id held from another node is never replaced, and an
//! archive the balancer can see is wrong (another recording's manifest, cut short, encrypted
//! for another key) is refused before it is accepted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conflux_shared::crypto::{archive, RecorderKey};
use conflux_shared::{report, transfer, Algorithm};
use conflux_tests::harness::{balancer, fixture_key, host, http, sim, Balancer};
use sha2::{Digest, Sha256};

const UNI: &str = "uni-secret-0123456789";
const TOKEN: &str = "enrol-token-0123456789";

fn metadata(record_id: &str, meeting_id: &str, institution: &str) -> String {
    format!(
        "<recording><id>{record_id}</id><state>published</state><published>true</published>\
         <start_time>1</start_time><end_time>60001</end_time>\
         <meeting id=\"{record_id}\" externalId=\"{meeting_id}\" name=\"{meeting_id}\"/>\
         <meta><meetingId>{meeting_id}</meetingId><conflux-institution>{institution}</conflux-institution></meta>\
         <playback><format>presentation</format><link>x</link></playback></recording>"
    )
}

fn sealed(record_id: &str, meeting_id: &str, key: &str) -> Vec<u8> {
    let plain = vec![42u8; 300_000];
    let (size, sha256) = archive::digest(&plain[..]).unwrap();
    let manifest = archive::Manifest {
        record_id: record_id.into(),
        meeting_id: meeting_id.into(),
        institution: "uni".into(),
        size,
        sha256,
    };
    let key = RecorderKey::from_pem(&std::fs::read_to_string(fixture_key(key)).unwrap()).unwrap();
    let mut out = Vec::new();
    archive::encrypt(&plain[..], &mut out, &key, &manifest, 64 * 1024).unwrap();
    out
}

/// PUTs `body` as the archive of `record_id` with `metadata`, signed by `agent`.
async fn upload(
    lb: &Balancer,
    agent: &report::Enrolled,
    record_id: &str,
    xml: &str,
    body: Vec<u8>,
) -> u16 {
    // Signed calls must carry increasing timestamps (replay protection).
    tokio::time::sleep(Duration::from_millis(3)).await;
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let sha256 = hex::encode(Sha256::digest(&body));
    let metadata_b64 = transfer::encode_metadata(xml);
    let path = format!("{}/{record_id}", transfer::AGENT_ARCHIVES_PATH);
    let signed = transfer::agent_request("PUT", &path, &format!("{sha256}\n{metadata_b64}"));
    let signature = report::sign(agent.key.as_bytes(), agent.node, now, &signed);
    http()
        .put(format!("{}{path}", lb.url))
        .header(report::NODE_HEADER, agent.node.to_string())
        .header(report::TIMESTAMP_HEADER, now.to_string())
        .header(report::SIGNATURE_HEADER, signature)
        .header(transfer::ARCHIVE_SHA256_HEADER, sha256)
        .header(transfer::METADATA_HEADER, metadata_b64)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn archives_are_checked_before_they_are_accepted() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .node("bbb1", &n1)
        .node("bbb2", &n2)
        .integration("uni", UNI)
        .config(&format!("[monitor]\nenrolment_token = {TOKEN:?}\n"))
        .start()
        .await;
    let key = fixture_key("test-only-recorder-3072.pub.pem");
    lb.cli_ok(&[
        "integrations",
        "update",
        "uni",
        "--recorder-url",
        "http://127.0.0.1:9",
        "--recorder-key",
        key.to_str().unwrap(),
    ]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let created = uni
        .call(
            "create",
            &[
                ("meetingID", "lecture"),
                ("name", "Lecture"),
                ("record", "true"),
            ],
        )
        .await;
    assert!(created.is_success(), "{created:?}");
    let on = host(&[&n1, &n2], "lecture").await;
    let (host_name, other, other_name) = if std::ptr::eq(on, &n1) {
        ("bbb1", &n2, "bbb2")
    } else {
        ("bbb2", &n1, "bbb1")
    };
    let owner = lb.enrol(on, host_name, TOKEN).await;
    let stranger = lb.enrol(other, other_name, TOKEN).await;
    let xml = metadata("rec-lecture-1", "lecture", "1");
    let good = sealed(
        "rec-lecture-1",
        "lecture",
        "test-only-recorder-3072.pub.pem",
    );

    // A node that never hosted the meeting cannot upload its recording, whatever its
    // metadata claims.
    assert_eq!(
        upload(&lb, &stranger, "rec-lecture-1", &xml, good.clone()).await,
        409
    );
    // What the balancer can see without the key.
    let other_recording = sealed("rec-other-1", "lecture", "test-only-recorder-3072.pub.pem");
    assert_eq!(
        upload(&lb, &owner, "rec-lecture-1", &xml, other_recording).await,
        400,
        "a manifest naming another recording"
    );
    let half = good[..good.len() / 2].to_vec();
    assert_eq!(
        upload(&lb, &owner, "rec-lecture-1", &xml, half).await,
        400,
        "an archive cut in half"
    );
    let foreign = sealed("rec-lecture-1", "lecture", "recorder-3072.pub.pem");
    assert_eq!(
        upload(&lb, &owner, "rec-lecture-1", &xml, foreign).await,
        400,
        "an archive for another recording server"
    );
    let archives = lb.dir.path().join("data/archives");
    assert!(!archives.join("rec-lecture-1").exists());
    assert_eq!(
        upload(&lb, &owner, "rec-lecture-1", &xml, good.clone()).await,
        200
    );
    let stored = std::fs::read(archives.join("rec-lecture-1")).unwrap();
    assert_eq!(stored, good);

    // The other node hosts a meeting of the same integration, then claims the record id held
    // from the first: refused, nothing replaced.
    lb.cli_ok(&["servers", "cordon", host_name]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(uni
        .call("create", &[("meetingID", "seminar"), ("name", "Seminar")])
        .await
        .is_success());
    assert!(std::ptr::eq(host(&[&n1, &n2], "seminar").await, other));
    let claim = metadata("rec-lecture-1", "seminar", "1");
    let forged = sealed(
        "rec-lecture-1",
        "seminar",
        "test-only-recorder-3072.pub.pem",
    );
    assert_eq!(
        upload(&lb, &stranger, "rec-lecture-1", &claim, forged).await,
        409
    );
    assert_eq!(std::fs::read(archives.join("rec-lecture-1")).unwrap(), good);
    let log = lb.process.log_text();
    assert!(log.contains("held from another node"), "{log}");
    let metrics = lb.metrics().await;
    assert!(
        metrics.contains("conflux_recording_archives_refused_total{by=\"balancer\"} 5"),
        "{metrics}"
    );
}
