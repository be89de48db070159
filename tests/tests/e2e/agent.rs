//! The real agent against the real balancer and a simulated node: it enrols, reports the
//! machine and the node's BBB counts, keeps its key across restarts, and its silence turns the
//! node's report check UNKNOWN then CRITICAL. Also its Nagios plugin mode.

use std::time::Duration;

use conflux_shared::Algorithm;
use conflux_tests::harness::{agent, balancer, binary, eventually, sim, Balancer};
use reqwest::Method;
use serde_json::json;

const TOKEN: &str = "agent-enrolment-token";

/// The node's line for `check`, once the agent has enrolled it.
fn check_line(lb: &Balancer, check: &str) -> Option<String> {
    let out = lb.cli(&["servers", "checks", "agent-node"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(check))
        .map(String::from)
}

/// Seconds since the node's last report, as `servers checks` shows it.
fn report_age(lb: &Balancer) -> Option<f64> {
    check_line(lb, "last report ").and_then(|l| {
        l.strip_prefix("last report ")
            .and_then(|r| r.strip_suffix("s ago"))
            .and_then(|age| age.parse::<f64>().ok())
    })
}

#[tokio::test]
async fn the_agent_enrols_reports_and_is_missed_when_it_stops() {
    let node = sim().start().await;
    let lb = balancer()
        .integration("uni", "uni-secret-0123456789")
        .config(&format!(
            "[monitor]\nenrolment_token = {TOKEN:?}\nenrol_enabled = true\n\
             stale_unknown_intervals = 3\nstale_critical_intervals = 6\n"
        ))
        .start()
        .await;
    let builder = agent(&lb.url, &node, TOKEN).interval(0.5);
    let mut running = builder.start();
    assert!(
        eventually(|| async { check_line(&lb, "report").is_some_and(|l| l.contains("OK")) }).await,
        "no report arrived; agent log:\n{}",
        running.process.log_text()
    );
    // The node's BBB counts travel in the report.
    let bbb = node.client(Algorithm::Sha256);
    assert!(bbb
        .call("create", &[("meetingID", "m1"), ("name", "M1")])
        .await
        .is_success());
    for (name, audio, video) in [
        ("Ann", "voice", 1),
        ("Bob", "listen", 0),
        ("Cid", "none", 0),
    ] {
        let (status, answer) = node
            .control(
                Method::POST,
                "meetings/m1/participants",
                json!({"fullName": name, "role": "VIEWER", "audio": audio, "video": video}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert!(
        eventually(|| async {
            check_line(&lb, "bbb").is_some_and(|l| {
                l.contains("1 meetings, 3 users, 1 with audio, 1 listening, 1 with video")
            })
        })
        .await,
        "{:?}",
        check_line(&lb, "bbb")
    );
    for check in ["cpu", "memory", "disk", "network"] {
        assert!(check_line(&lb, check).is_some(), "{check} missing");
    }
    // Every report lands in the history, raw and in 5-minute means.
    assert!(
        eventually(|| async {
            let raw = lb.cli_ok(&["servers", "history", "agent-node"]);
            raw.lines().count() > 2 && raw.lines().any(|l| l.ends_with(" 3.0    1.0    1.0"))
        })
        .await,
        "{}",
        lb.cli_ok(&["servers", "history", "agent-node"])
    );
    let means = lb.cli_ok(&["servers", "history", "agent-node", "--resolution", "5m"]);
    assert!(means.lines().count() >= 2, "{means}");
    // A balancer outage: the agent keeps running and reports again once it is back.
    let mut lb = lb;
    lb.outage(Duration::from_secs(2)).await;
    assert!(
        eventually(|| async { report_age(&lb).is_some_and(|age| age < 1.0) }).await,
        "no report after the outage; agent log:\n{}",
        running.process.log_text()
    );
    assert!(running.process.log_text().contains("Report failed"));
    // A restart keeps the enrolment: still one node.
    running.process.stop();
    let restarted = std::time::Instant::now();
    let mut again = builder.start_in(&running.dir);
    // Wait for a report sent after the restart (younger than the restart), so that an
    // enrolment, which comes before the first report, would be in the log by now.
    assert!(
        eventually(|| async {
            let since_restart = restarted.elapsed().as_secs_f64();
            report_age(&lb).is_some_and(|age| age + 0.1 < since_restart)
        })
        .await,
        "no report after the restart; agent log:\n{}",
        again.log_text()
    );
    assert_eq!(lb.cli_ok(&["servers", "list"]).matches("id: ").count(), 1);
    assert!(
        !again.log_text().contains("Enrolled"),
        "{}",
        again.log_text()
    );
    // Silence: UNKNOWN, then CRITICAL.
    again.stop();
    for state in ["UNKNOWN", "CRITICAL"] {
        assert!(
            eventually(|| async { check_line(&lb, "report").is_some_and(|l| l.contains(state)) })
                .await,
            "{state}: {:?}",
            check_line(&lb, "report")
        );
    }
}

/// Runs `conflux-agent check ...`; (exit code, stdout).
fn plugin(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(binary("conflux-agent"))
        .arg("--config")
        .arg(config)
        .arg("check")
        .args(args)
        .env_remove("CONFLUX_AGENT_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn plugin_mode_speaks_nagios() {
    let node = sim().start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\napi_url = \"{}/bigbluebutton/api\"\nsecret = {:?}\n",
            node.url, node.secret
        ),
    )
    .unwrap();
    let (code, line) = plugin(
        &config,
        &["cpu", "-w", "101", "-c", "102", "--sample-secs", "0.3"],
    );
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("CPU OK - ") && line.contains("| cpu="),
        "{line}"
    );
    let (code, line) = plugin(&config, &["memory", "-w", "0", "-c", "101"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("MEMORY WARNING - "), "{line}");
    let (code, line) = plugin(&config, &["disk", "-w", "0", "-c", "0"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("'/'="), "{line}");
    let (code, line) = plugin(&config, &["bbb"]);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("BBB OK - 0 meetings, 0 users"), "{line}");
    // The guidelines' ranges: below a floor, inside a band; bad arguments are UNKNOWN.
    for (range, shown) in [("100:", "100:"), ("@0:100", "@100"), ("~:0", "~:0")] {
        let (code, line) = plugin(&config, &["memory", "-w", range]);
        assert_eq!(code, 1, "{range}: {line}");
        assert!(line.contains(&format!(";{shown};")), "{line}");
    }
    for args in [
        &["cpu", "-w", "ten"][..],
        &["cpu", "-c", "20:10"],
        &["swap"],
        &[],
    ] {
        let (code, line) = plugin(&config, args);
        assert_eq!(code, 3, "{args:?}: {line}");
        assert!(line.starts_with("AGENT UNKNOWN - "), "{line}");
    }
    std::fs::write(
        &config,
        format!(
            "[node]\napi_url = \"{}/bigbluebutton/api\"\nsecret = \"wrong\"\n",
            node.url
        ),
    )
    .unwrap();
    let (code, line) = plugin(&config, &["bbb"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("checksumError"), "{line}");
    std::fs::write(&config, "[node]\nlatitude = 1.0\n").unwrap();
    let (code, line) = plugin(&config, &["cpu"]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with("AGENT UNKNOWN - config key node.latitude"),
        "{line}"
    );
}
