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
