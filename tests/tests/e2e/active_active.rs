//! Several balancers on one PostgreSQL database (`store.url`), as behind a load balancer:
//! what one of them did, the others see. Runs when `CONFLUX_TEST_POSTGRES` names a server
//! (`scripts/test` starts a private one).

use std::time::{Duration, Instant};

use conflux_shared::response::Body;
use conflux_shared::Algorithm;
use conflux_tests::harness::{
    a_report, agent, balancer, eventually, fixture_key, haproxy, host, http, log_in, now_ms,
    post_report, recorder, sim, Balancer, BbbClient, SimNode,
};

const UNI: &str = "uni-secret-0123456789";
const SCHOOL: &str = "school-secret-0123456789";
const TOKEN: &str = "enrol-token-0123456789";

/// Three balancers on a new database; the first adds `nodes` and the integration `uni`.
async fn three_balancers(nodes: &[&SimNode]) -> Option<[Balancer; 3]> {
    let url = conflux_store::testing::postgres_database()?;
    let first = balancer()
        .nodes(nodes)
        .integration("uni", UNI)
        .env("CONFLUX_STORE__URL", &url)
        .start()
        .await;
    let others = || balancer().expect_online(nodes.len());
    let second = others().env("DATABASE_URL", &url).start().await;
    let third = others().env("CONFLUX_STORE__URL", &url).start().await;
    Some([first, second, third])
}

#[tokio::test]
async fn what_one_balancer_did_the_others_see() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let Some([a, b, c]) = three_balancers(&[&n1, &n2]).await else {
        return;
    };
    let (on_a, on_b, on_c) = (
        a.client(UNI, Algorithm::Sha256),
        b.client(UNI, Algorithm::Sha1),
        c.client(UNI, Algorithm::Sha256),
    );

    // A meeting created through A is routed by B and C at their first call.
    let create = [("meetingID", "lecture"), ("name", "Lecture")];
    assert!(on_a.call("create", &create).await.is_success());
    let info = on_b
        .call("getMeetingInfo", &[("meetingID", "lecture")])
        .await;
    assert!(info.is_success(), "{info:?}");
    // B answers getMeetings (and caches the answer) before anyone joined.
    let participants = || async {
        match on_b.call("getMeetings", &[]).await.body {
            Body::Meetings(list) => list.first().map(|m| m.participant_count),
            _ => None,
        }
    };
    assert_eq!(participants().await, Some(0));
    let join = [
        ("meetingID", "lecture"),
        ("fullName", "Ada"),
        ("role", "MODERATOR"),
        ("redirect", "false"),
    ];
    assert!(on_c.call("join", &join).await.is_success());
    // The poll that finds Ada (whichever balancer holds the lease) reaches B's answer.
    assert!(
        eventually(|| async { participants().await == Some(1) }).await,
        "B's getMeetings kept its answer from before the join"
    );
    // Created again through C, it stays where it is (C knows it exists).
    let hosting = host(&[&n1, &n2], "lecture").await.url.clone();
    assert!(on_c.call("create", &create).await.is_success());
    let other = if hosting == n1.url { &n2 } else { &n1 };
    assert!(!other
        .client(Algorithm::Sha1)
        .call("getMeetingInfo", &[("meetingID", "lecture")])
        .await
        .is_success());
    // Ended through B: gone for A too.
    assert!(on_b
        .call("end", &[("meetingID", "lecture")])
        .await
        .is_success());
    assert!(
        eventually(|| async {
            on_a.call("isMeetingRunning", &[("meetingID", "lecture")])
                .await
                .field("running")
                == Some("false")
        })
        .await
    );

    // An admin change made with A's CLI is in force on C within a second.
    a.cli_ok(&["integrations", "add", "school", "--secret", SCHOOL]);
    let added = Instant::now();
    let school = c.client(SCHOOL, Algorithm::Sha256);
    while !school.call("getMeetings", &[]).await.is_success() {
        assert!(
            added.elapsed() < Duration::from_secs(1),
            "C refused the new integration's secret for a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And so is a removal, made with B's CLI.
    b.cli_ok(&["integrations", "remove", "school"]);
    let removed = Instant::now();
    while school.call("getMeetings", &[]).await.is_success() {
        assert!(
            removed.elapsed() < Duration::from_secs(1),
            "C still accepted a removed integration's secret after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_one_clear_line() {
    let out = std::process::Command::new(conflux_tests::harness::binary("conflux-balancer"))
        .args(["--data-dir", "/nonexistent-conflux", "servers", "list"])
        .env(
            "CONFLUX_STORE__URL",
            "postgres://conflux@127.0.0.1:1/conflux",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("postgres://conflux@127.0.0.1:1/conflux"),
        "{stderr}"
    );
}

/// How many times `node` answered getMeetings (the poller's call).
async fn polls(node: &SimNode) -> u64 {
    let (_, status) = node
        .control(reqwest::Method::GET, "status", serde_json::Value::Null)
        .await;
    status["calls"]["getMeetings"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn one_balancer_polls_and_another_takes_over_when_it_dies() {
    let node = sim().start().await;
    let Some(mut balancers) = three_balancers(&[&node]).await else {
        return;
    };
    // The harness polls every 0.2 s: three balancers polling would make ~30 polls in 2 s.
    let before = polls(&node).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_two_seconds = polls(&node).await - before;
    assert!(
        (5..=15).contains(&in_two_seconds),
        "{in_two_seconds} polls in 2 s at a 0.2 s interval"
    );
    let holder = balancers
        .iter()
        .position(|b| b.process.log_text().contains("Lease taken"))
        .expect("one balancer holds the lease");
    balancers[holder].process.kill();
    let (killed, at_kill) = (Instant::now(), polls(&node).await);
    // Another balancer takes the lease and polls (a poll in flight at the kill may still
    // land: wait for two more).
    while polls(&node).await < at_kill + 2 {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "no balancer polled for 3 s after the lease holder died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("polling resumed {:?} after kill -9", killed.elapsed());
    let survivors: Vec<&Balancer> = balancers
        .iter()
        .enumerate()
        .filter_map(|(i, b)| (i != holder).then_some(b))
        .collect();
    assert!(survivors
        .iter()
        .any(|b| b.process.log_text().contains("Lease taken")));
}

/// A PostgreSQL cluster of the test's own (so it can be stopped), through `scripts/postgres`.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

impl Cluster {
    fn script(args: &[&str]) -> String {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres");
        let out = std::process::Command::new(script)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/postgres {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let url = Cluster::script(&["start", dir.path().to_str().unwrap()]);
        Cluster { dir, url }
    }

    fn stop(&self) {
        Cluster::script(&["stop", self.dir.path().to_str().unwrap()]);
    }

    /// Starts it again on the same port.
    fn restart(&self) {
        let port = self
            .url
            .rsplit_once(':')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap();
        Cluster::script(&["start", self.dir.path().to_str().unwrap(), port]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres"),
        )
        .args(["stop", self.dir.path().to_str().unwrap()])
        .output();
    }
}

async fn status(lb: &Balancer, path: &str) -> u16 {
    conflux_tests::harness::http()
        .get(format!("{}{path}", lb.url))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn the_database_restarts_under_the_balancers() {
    if std::env::var(conflux_store::testing::POSTGRES_VAR).is_err() {
        return; // PostgreSQL is not installed here (scripts/test installs it).
    }
    let cluster = Cluster::start();
    let url = conflux_store::testing::new_database(&cluster.url);
    let node = sim().start().await;
    let a = balancer()
        .nodes(&[&node])
        .integration("uni", UNI)
        .env("CONFLUX_STORE__URL", &url)
        .start()
        .await;
    let b = balancer()
        .expect_online(1)
        .env("CONFLUX_STORE__URL", &url)
        .start()
        .await;
    let (on_a, on_b) = (
        a.client(UNI, Algorithm::Sha256),
        b.client(UNI, Algorithm::Sha256),
    );
    assert_eq!(status(&a, "/healthz").await, 200);
    assert_eq!(status(&b, "/readyz").await, 200);
    let info = [("meetingID", "before")];
    assert!(on_a
        .call("create", &[("meetingID", "before"), ("name", "Before")])
        .await
        .is_success());
    assert!(on_b.call("getMeetingInfo", &info).await.is_success());

    cluster.stop();
    // Known meetings are still proxied from memory; what must write is refused, BBB-style.
    assert!(on_a.call("getMeetingInfo", &info).await.is_success());
    assert!(on_b.call("getMeetingInfo", &info).await.is_success());
    let refused = on_a
        .call("create", &[("meetingID", "during"), ("name", "During")])
        .await;
    assert!(!refused.is_success(), "{refused:?}");
    assert_eq!(refused.key(), Some("internalError"), "{refused:?}");
    assert_eq!(status(&a, "/readyz").await, 503);
    assert_eq!(status(&a, "/healthz").await, 200);

    cluster.restart();
    // Both recover by themselves.
    assert!(
        eventually(|| async {
            on_a.call("create", &[("meetingID", "after"), ("name", "After")])
                .await
                .is_success()
        })
        .await,
        "A did not recover; log:\n{}",
        a.process.log_text()
    );
    assert!(eventually(|| async { status(&b, "/readyz").await == 200 }).await);
    assert!(on_b
        .call("getMeetingInfo", &[("meetingID", "after")])
        .await
        .is_success());
    // Nothing acknowledged was lost.
    assert!(on_b.call("getMeetingInfo", &info).await.is_success());
    assert!(!on_b
        .call("getMeetingInfo", &[("meetingID", "during")])
        .await
        .is_success());
}

#[tokio::test]
async fn a_burst_sent_round_robin_to_three_balancers_spreads_over_the_nodes() {
    let nodes = [
        sim().start().await,
        sim().start().await,
        sim().start().await,
    ];
    let refs: Vec<&SimNode> = nodes.iter().collect();
    let Some(balancers) = three_balancers(&refs).await else {
        return;
    };
    let clients: Vec<_> = balancers
        .iter()
        .map(|b| b.client(UNI, Algorithm::Sha256))
        .collect();
    let creates = (0..30).map(|i| {
        let client = &clients[i % 3];
        async move {
            let id = format!("burst-{i}");
            client
                .call("create", &[("meetingID", &id), ("name", "Burst")])
                .await
                .is_success()
        }
    });
    let created = futures_util::future::join_all(creates).await;
    assert!(created.iter().all(|ok| *ok));
    let mut per_node = Vec::new();
    for node in &nodes {
        let (_, status) = node
            .control(reqwest::Method::GET, "status", serde_json::Value::Null)
            .await;
        per_node.push(status["meetings"].as_u64().unwrap_or(0));
    }
    assert_eq!(per_node.iter().sum::<u64>(), 30, "{per_node:?}");
    assert!(per_node.iter().all(|n| *n <= 12), "{per_node:?}");
}

/// Whether `lb` says (in its metrics, from its own memory) that node `bbb1` takes meetings.
async fn accepting(lb: &Balancer) -> Option<bool> {
    let metrics = lb.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("conflux_node_accepting{node=\"bbb1\"}"))?;
    Some(line.ends_with(" 1.0"))
}

#[tokio::test]
async fn a_report_taken_by_one_balancer_sets_the_verdict_on_all() {
    let node = sim().start().await;
    let Some(url) = conflux_store::testing::postgres_database() else {
        return;
    };
    let config = format!("[monitor]\nenrolment_token = {TOKEN:?}\nenrol_enabled = true\n");
    let start = || {
        balancer()
            .config(&config)
            .env("CONFLUX_STORE__URL", &url)
            .start()
    };
    let (a, b, c) = (start().await, start().await, start().await);
    let enrolled = a.enrol(&node, "bbb1", TOKEN).await;
    let (id, key) = (enrolled.node, enrolled.key.as_str());
    let interval = Duration::from_secs(2);
    let report = |cpu| serde_json::to_vec(&a_report(cpu, interval.as_secs_f64())).unwrap();

    // Reported busy through A: B and C stop placing on the node within one report interval.
    let (busy, at) = (report(99.0), now_ms());
    assert_eq!(post_report(&a.url, id, key, at, &busy).await, 200);
    let sent = Instant::now();
    for lb in [&b, &c] {
        while accepting(lb).await != Some(false) {
            assert!(sent.elapsed() < interval, "{} missed the report", lb.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The same signed report replayed to B or C is refused, as is an older one.
    assert_eq!(post_report(&b.url, id, key, at, &busy).await, 409);
    assert_eq!(post_report(&c.url, id, key, at - 1, &busy).await, 409);

    // The agent moves to B: its next report, idle, takes the node back in on A and C.
    let idle = report(5.0);
    assert_eq!(post_report(&b.url, id, key, at + 1, &idle).await, 200);
    let sent = Instant::now();
    for lb in [&a, &c] {
        while accepting(lb).await != Some(true) {
            assert!(sent.elapsed() < interval, "{} missed the report", lb.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(post_report(&a.url, id, key, at + 1, &idle).await, 409);
}

#[tokio::test]
async fn a_login_holds_on_every_balancer_and_so_does_its_limit() {
    let node = sim().start().await;
    let Some([a, b, c]) = three_balancers(&[&node]).await else {
        return;
    };
    a.add_user("ops", "admin", "ops-password-1");
    // Logged in through A, the session opens the dashboard on B.
    let session = log_in(&a.url, "ops", "ops-password-1").await.unwrap();
    let dashboard = |cookie: Option<&str>| {
        let mut request = http().get(format!("{}/", b.url));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(dashboard(Some(&session)).await, 200);
    assert_ne!(dashboard(None).await, 200, "the dashboard needs a login");

    // Five wrong passwords spread over the three: every one of them now refuses the address,
    // even with the right password.
    let all = [&a, &b, &c];
    for lb in all.iter().cycle().take(5) {
        let (status, _) = log_in(&lb.url, "ops", "wrong-password").await.unwrap_err();
        assert_eq!(status, 401);
    }
    for lb in all {
        let (status, page) = log_in(&lb.url, "ops", "ops-password-1").await.unwrap_err();
        assert_eq!(status, 429, "{}: {page}", lb.url);
    }
}

#[tokio::test]
async fn a_recording_handed_to_one_balancer_is_pulled_through_another_after_it_died() {
    let node_dir = tempfile::tempdir().unwrap();
    let published = node_dir.path().join("published");
    let node = sim()
        .recordings_dir(&published.join("presentation"))
        .start()
        .await;
    let Some(url) = conflux_store::testing::postgres_database() else {
        return;
    };
    // The archives folder every balancer mounts.
    let shared = tempfile::tempdir().unwrap();
    let archives = shared.path().join("archives");
    let config = format!(
        "[monitor]\nenrolment_token = {TOKEN:?}\nenrol_enabled = true\n\
         [recordings]\narchive_dir = {:?}\n",
        archives.display().to_string()
    );
    let mut a = balancer()
        .integration("uni", UNI)
        .config(&config)
        .env("CONFLUX_STORE__URL", &url)
        .start()
        .await;
    let b = balancer()
        .config(&config)
        .env("CONFLUX_STORE__URL", &url)
        .start()
        .await;
    let key = fixture_key("test-only-recorder-3072.pub.pem");
    a.set_recorder("uni", "http://recorder.not-yet-up.invalid", &key)
        .await;
    let _agent = agent(&a.url, &node, TOKEN).recordings(&published).start();
    a.wait_online(1).await;

    // Recorded on the node, handed by its agent to A.
    let create = [
        ("meetingID", "lecture"),
        ("name", "Lecture"),
        ("record", "true"),
    ];
    let on_a = a.client(UNI, Algorithm::Sha256);
    assert!(on_a.call("create", &create).await.is_success());
    let (status, body) = node
        .control(
            reqwest::Method::POST,
            "meetings/lecture/recording",
            serde_json::json!({ "size_bytes": 100_000 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let record_id = std::fs::read_dir(&node.recordings)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| !name.starts_with('.'))
        .expect("the node wrote the recording");
    let archive = archives.join(&record_id);
    assert!(
        eventually(|| async { archive.exists() }).await,
        "the archive never reached the shared folder; A's log:\n{}",
        a.process.log_text()
    );

    // A dies; the recorder, pointed at B, pulls the archive through B and serves it.
    a.process.kill();
    let mut rec = recorder(&b.url, UNI, &fixture_key("test-only-recorder-3072.key.pem"));
    b.set_recorder("uni", &rec.start(), &key).await;
    let on_b = b.client(UNI, Algorithm::Sha1);
    let published_by_recorder = || async {
        match on_b
            .call("getRecordings", &[("meetingID", "lecture")])
            .await
            .body
        {
            conflux_shared::response::Body::Recordings(list) => list.first().is_some_and(|r| {
                r.state == "published" && r.playback.iter().all(|p| p.url.starts_with(&rec.url))
            }),
            _ => false,
        }
    };
    assert!(
        eventually(published_by_recorder).await,
        "the recorder never published it; its log:\n{}",
        rec.log_text()
    );
    let page = http()
        .get(format!("{}/playback/presentation/{record_id}/", rec.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Confirmed by the recorder, the balancers' copy goes.
    assert!(eventually(|| async { !archive.exists() }).await);
}

#[tokio::test]
async fn a_balancer_killed_under_a_stream_of_calls_loses_no_meeting() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let Some([mut a, b, c]) = three_balancers(&[&n1, &n2]).await else {
        return;
    };
    let Some(proxy) = haproxy(&[&a.url, &b.url, &c.url]).await else {
        return;
    };
    // Four clients create meetings and ask for them through HAProxy, without pause.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, stop) = (
                BbbClient::new(&proxy.url, UNI, Algorithm::Sha256),
                stop.clone(),
            );
            tokio::spawn(async move {
                let (mut created, mut failed) = (Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("m{w}-{i}");
                    i += 1;
                    let create = client
                        .call("create", &[("meetingID", &id), ("name", &id)])
                        .await;
                    if !create.is_success() {
                        failed.push(format!("create {id}: {create:?}"));
                        continue;
                    }
                    created.push(id.clone());
                    let info = client.call("getMeetingInfo", &[("meetingID", &id)]).await;
                    if !info.is_success() {
                        failed.push(format!("getMeetingInfo {id}: {info:?}"));
                    }
                }
                (created, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.process.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut created, mut failed) = (Vec::new(), Vec::new());
    for worker in workers {
        let (c, f) = worker.await.unwrap();
        created.extend(c);
        failed.extend(f);
    }
    // Only calls in flight on A when it died may fail (HAProxy retries those it can).
    assert!(failed.len() <= 4, "{} failed: {failed:#?}", failed.len());
    assert!(created.len() > 40, "only {} creates", created.len());
    // Every acknowledged meeting is still known and routed, by each survivor.
    for lb in [&b, &c] {
        let client = lb.client(UNI, Algorithm::Sha1);
        for id in &created {
            let info = client.call("getMeetingInfo", &[("meetingID", id)]).await;
            assert!(info.is_success(), "{id} lost on {}: {info:?}", lb.url);
        }
    }
    eprintln!(
        "{} meetings created through HAProxy, {} calls failed while a balancer was killed",
        created.len(),
        failed.len()
    );
}
