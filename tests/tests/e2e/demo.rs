//! The README's main command: `conflux-balancer demo` serves the BBB API over three simulated
//! nodes whose agents report, and stops cleanly on SIGTERM.

use std::time::Duration;

use conflux_shared::Algorithm;
use conflux_tests::harness::{eventually, http, BbbClient, Process};

#[tokio::test]
async fn the_demo_runs_nodes_and_agents() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["demo", "--listen", "127.0.0.1:0"].map(String::from);
    let (mut demo, addr) = Process::start("conflux-balancer", &args, dir.path());
    let bbb = BbbClient::new(
        &format!("http://{addr}"),
        "conflux-demo-secret-0123456789",
        Algorithm::Sha256,
    );
    assert!(bbb
        .call("create", &[("meetingID", "demo-room"), ("name", "Demo")])
        .await
        .is_success());
    let metrics = || async {
        http()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        eventually(|| async {
            let text = metrics().await;
            (1..=3).all(|i| {
                text.contains(&format!(
                    "conflux_node_check_state{{node=\"bbb{i}\",check=\"report\"}} 0.0"
                ))
            })
        })
        .await,
        "the agents never reported:\n{}",
        metrics().await
    );
    demo.stop();
    assert_eq!(
        demo.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        demo.log_text()
    );
}

#[tokio::test]
async fn a_demo_with_a_data_dir_keeps_its_data_and_starts_again_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kept");
    let args = [
        "--data-dir",
        &data.display().to_string(),
        "demo",
        "--listen",
        "127.0.0.1:0",
    ]
    .map(String::from);
    for run in 0..2 {
        let (mut demo, addr) = Process::start("conflux-balancer", &args, dir.path());
        let bbb = BbbClient::new(
            &format!("http://{addr}"),
            "conflux-demo-secret-0123456789",
            Algorithm::Sha256,
        );
        let created = bbb
            .call(
                "create",
                &[("meetingID", &format!("room-{run}")), ("name", "Demo")],
            )
            .await;
        assert!(created.is_success(), "{created:?}\n{}", demo.log_text());
        demo.stop();
        assert_eq!(demo.wait_exit(Duration::from_secs(5)), Some(0));
    }
    // The second demo took up the first one's nodes (on new ports) instead of adding three more.
    let listed = std::process::Command::new(conflux_tests::harness::binary("conflux-balancer"))
        .arg("--data-dir")
        .arg(data.join("balancer"))
        .args(["servers", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in ["bbb1", "bbb2", "bbb3"] {
        assert_eq!(listed.matches(name).count(), 1, "{listed}");
    }
}
