//! The balancer when things break: a node dies, the balancer is killed with SIGKILL.

use conflux_shared::response::Body;
use conflux_shared::Algorithm;
use std::time::{Duration, Instant};

use conflux_tests::harness::{balancer, binary, eventually, sim};
use reqwest::Method;
use serde_json::json;

const UNI: &str = "uni-secret-0123456789";

#[tokio::test]
async fn a_dead_node_gets_nothing_new_and_its_meetings_move() {
    let (n1, mut n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha256);
    for i in 0..4 {
        assert!(bbb
            .call(
                "create",
                &[("meetingID", &format!("m{i}")), ("name", "Room M")]
            )
            .await
            .is_success());
    }
    let on_n2: Vec<String> = match n2
        .client(Algorithm::Sha1)
        .call("getMeetings", &[])
        .await
        .body
    {
        Body::Meetings(list) => list.into_iter().map(|m| m.meeting_id).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(on_n2.len(), 2);
    n2.process.kill();
    lb.wait_online(1).await;
    // Its meetings were forgotten: the next create places them on the live node.
    assert!(
        eventually(|| async {
            bbb.call("getMeetingInfo", &[("meetingID", &on_n2[0])])
                .await
                .key()
                == Some("notFound")
        })
        .await
    );
    for id in &on_n2 {
        assert_eq!(
            bbb.call("getMeetingInfo", &[("meetingID", id)]).await.key(),
            Some("notFound")
        );
        assert!(bbb
            .call("create", &[("meetingID", id), ("name", "Room M")])
            .await
            .is_success());
        assert!(n1
            .client(Algorithm::Sha1)
            .call("getMeetingInfo", &[("meetingID", id)])
            .await
            .is_success());
    }
    for i in 10..14 {
        assert!(
            bbb.call(
                "create",
                &[("meetingID", &format!("m{i}")), ("name", "Room M")]
            )
            .await
            .is_success(),
            "nothing goes to the dead node"
        );
    }
    let status = lb.cli_ok(&["servers", "status"]);
    assert!(status.lines().any(|l| l.contains("offline")), "{status}");
    let events = lb.cli_ok(&["meetings", "info", &on_n2[0]]);
    assert!(events.contains("server: bbb1"), "{events}");
}

#[tokio::test]
async fn nothing_is_lost_when_the_balancer_is_killed() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let mut lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", UNI)
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha1);
    for i in 0..20 {
        let r = bbb
            .call(
                "create",
                &[("meetingID", &format!("k{i}")), ("name", "Room K")],
            )
            .await;
        assert!(r.is_success(), "{r:?}\n{}", lb.process.log_text());
    }
    lb.crash_and_restart().await;
    let bbb = lb.client(UNI, Algorithm::Sha1);
    for i in 0..20 {
        let info = bbb
            .call("getMeetingInfo", &[("meetingID", &format!("k{i}"))])
            .await;
        assert!(info.is_success(), "k{i} lost after kill -9: {info:?}");
    }
    let Body::Meetings(all) = bbb.call("getMeetings", &[]).await.body else {
        panic!()
    };
    assert_eq!(all.len(), 20);
}

#[tokio::test]
async fn admin_cli_refuses_bad_input_and_changes_nothing() {
    let node = sim().start().await;
    let lb = balancer()
        .node("bbb1", &node)
        .integration("uni", UNI)
        .start()
        .await;
    for args in [
        &["servers", "enable", "nope"][..],
        &["servers", "add", "ftp://x", "secret"],
        &["servers", "add", "not a url", "secret"],
        &[
            "servers",
            "add",
            "http://x.example.org",
            "s",
            "--load-multiplier",
            "-1",
        ],
        &["servers", "update", "bbb1", "--load-multiplier", "0"],
        &[
            "integrations",
            "add",
            "uni",
            "--secret",
            "another-secret-123",
        ],
        &["integrations", "add", "other", "--secret", UNI],
        &["integrations", "rotate", "nope"],
        &["meetings", "end", "nope"],
    ] {
        let out = lb.cli(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    let status = lb.cli_ok(&["servers", "status"]);
    assert_eq!(
        status.lines().count(),
        2,
        "one header and one node: {status}"
    );
    let header: Vec<&str> = status.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "HOSTNAME", "STATE", "STATUS", "MEETINGS", "USERS", "LARGEST", "MEETING", "VIDEOS",
            "NAME"
        ]
    );
    assert!(
        status.lines().nth(1).unwrap().ends_with(" bbb1"),
        "{status}"
    );

    // servers add checks the node first: its index, then a signed getMeetings.
    let other = sim().start().await;
    for (url, secret, why) in [
        (other.url.as_str(), "wrong-secret", "refuses the secret"),
        (
            "http://127.0.0.1:9/bigbluebutton/api",
            "s",
            "cannot be reached",
        ),
    ] {
        let out = lb.cli(&["servers", "add", url, secret, "--name", "bbb2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(why) && stderr.contains("--no-check"),
            "{stderr}"
        );
    }
    assert_eq!(lb.cli_ok(&["servers", "list"]).matches("bbb2").count(), 0);
    let added = lb.cli_ok(&[
        "servers",
        "add",
        &other.url,
        &other.secret,
        "--name",
        "bbb2",
    ]);
    assert!(
        added.starts_with("OK\nid: ") && added.contains("checked: BBB "),
        "{added}"
    );
    let unchecked = lb.cli_ok(&[
        "servers",
        "add",
        "http://127.0.0.1:9/bigbluebutton/api",
        "s",
        "--name",
        "bbb3",
        "--no-check",
    ]);
    assert!(unchecked.starts_with("OK\nid: "), "{unchecked}");

    // A read-only command never creates a store where there is none.
    let empty = tempfile::tempdir().unwrap();
    for args in [
        &["servers", "list"][..],
        &["servers", "status"],
        &["meetings", "list"],
        &["integrations", "list"],
        &["users", "list"],
        &["servers", "sync", "-", "--dry-run"],
    ] {
        let out = std::process::Command::new(binary("conflux-balancer"))
            .arg("--data-dir")
            .arg(empty.path().join("data"))
            .args(args)
            .env_remove("CONFLUX_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("there is no store at"), "{stderr}");
        assert!(!empty.path().join("data").exists(), "{args:?} made a store");
    }
    let with_config = |path: &std::path::Path| {
        std::process::Command::new(binary("conflux-balancer"))
            .arg("--config")
            .arg(path)
            .args(["servers", "list"])
            .output()
            .unwrap()
    };
    assert_eq!(
        with_config(std::path::Path::new("/nonexistent.toml"))
            .status
            .code(),
        Some(2)
    );
    let bad = lb.dir.path().join("bad.toml");
    std::fs::write(&bad, "[poller]\ninterval_secs = \"often\"\n").unwrap();
    let out = with_config(&bad);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interval_secs") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test]
async fn servers_sync_makes_the_pool_match_a_file() {
    let (n1, n2, n3) = (
        sim().start().await,
        sim().start().await,
        sim().start().await,
    );
    let lb = balancer()
        .node("bbb1", &n1)
        .node("old", &n3)
        .integration("uni", UNI)
        .start()
        .await;
    let file = lb.dir.path().join("pool.yml");
    std::fs::write(
        &file,
        format!(
            "servers:\n  bbb1:\n    url: {}/bigbluebutton/api\n    secret: {}\n    enabled: false\n  bbb2:\n    url: {}\n    secret: {}\n    load_multiplier: 2.5\n    tag: gpu\n",
            n1.url, n1.secret, n2.url, n2.secret
        ),
    )
    .unwrap();
    let before = lb.cli_ok(&["servers", "yaml"]);
    let dry = lb.cli_ok(&["servers", "sync", file.to_str().unwrap(), "--dry-run"]);
    assert!(
        dry.contains("would add bbb2")
            && dry.contains("would set bbb1 cordoned")
            && dry.contains("would remove old"),
        "{dry}"
    );
    assert_eq!(
        lb.cli_ok(&["servers", "yaml"]),
        before,
        "a dry run changes nothing"
    );

    let bad = lb.dir.path().join("bad.yml");
    std::fs::write(&bad, "servers:\n  bbb9:\n    secret: s\n    colour: blue\n").unwrap();
    assert_eq!(
        lb.cli(&["servers", "sync", bad.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    std::fs::write(&bad, "servers:\n  'bad id!':\n    secret: s\n").unwrap();
    assert_eq!(
        lb.cli(&["servers", "sync", bad.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        lb.cli_ok(&["servers", "yaml"]),
        before,
        "a bad file changes nothing"
    );

    lb.cli_ok(&["servers", "sync", file.to_str().unwrap()]);
    let after = lb.cli_ok(&["servers", "yaml", "--verbose"]);
    assert!(
        after.contains("bbb2:")
            && after.contains("load_multiplier: 2.5")
            && after.contains("tag: gpu"),
        "{after}"
    );
    // bbb1 is cordoned by the sync, and the poller disables it as soon as it sees it empty.
    let bbb1 = after.split("  bbb2:").next().unwrap_or_default();
    assert!(
        (bbb1.contains("state: cordoned") || bbb1.contains("state: disabled"))
            && !after.contains("old:"),
        "{after}"
    );
    let status = lb.cli_ok(&["servers", "status"]);
    assert_eq!(status.lines().count(), 3, "{status}");
}

#[tokio::test]
async fn a_failing_or_hanging_node_answers_internal_error_in_time() {
    let node = sim().start().await;
    let lb = balancer()
        .nodes(&[&node])
        .integration("uni", UNI)
        .env("CONFLUX_POLLER__RESPONSE_TIMEOUT_SECS", "1")
        .env("CONFLUX_POLLER__INTERVAL_SECS", "3600")
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha256);
    let room = [("meetingID", "room"), ("name", "Room")];
    assert!(bbb.call("create", &room).await.is_success());
    let info = [("meetingID", "room")];

    node.control(Method::POST, "fault", json!({"mode": "error"}))
        .await;
    let failed = bbb.call("getMeetingInfo", &info).await;
    assert_eq!(failed.key(), Some("internalError"), "{failed:?}");

    node.control(Method::POST, "fault", json!({"mode": "hang"}))
        .await;
    let started = Instant::now();
    let hung = bbb.call("isMeetingRunning", &info).await;
    assert_eq!(hung.key(), Some("internalError"), "{hung:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the response timeout holds"
    );

    node.control(Method::POST, "fault", json!({"mode": "ok"}))
        .await;
    assert!(bbb.call("getMeetingInfo", &info).await.is_success());
}

#[tokio::test]
async fn a_create_for_a_node_that_just_died_goes_to_the_next_one() {
    let (n1, mut n2) = (sim().start().await, sim().start().await);
    // Polls far apart: the balancer cannot have seen the death when the creates come.
    let lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", UNI)
        .env("CONFLUX_POLLER__INTERVAL_SECS", "600")
        .start()
        .await;
    n2.process.kill();
    let bbb = lb.client(UNI, Algorithm::Sha256);
    for i in 0..6 {
        let id = format!("after-death-{i}");
        let created = bbb
            .call("create", &[("meetingID", &id), ("name", "Room")])
            .await;
        assert!(created.is_success(), "{created:?}");
        assert!(n1
            .client(Algorithm::Sha1)
            .call("getMeetingInfo", &[("meetingID", &id)])
            .await
            .is_success());
        assert!(
            bbb.call("getMeetingInfo", &[("meetingID", &id)])
                .await
                .is_success(),
            "later calls follow the meeting to the node that has it"
        );
    }
    let log = lb.process.log_text();
    assert!(log.contains("Node unreachable on create"), "{log}");
    assert!(
        eventually(|| async {
            let checks = lb.cli_ok(&["servers", "checks", "bbb2"]);
            checks.contains("CRITICAL") && checks.contains("create could not connect")
        })
        .await,
        "the dead node is marked failing at once"
    );
}
