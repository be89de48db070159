//! HAProxy (Debian's `haproxy`) in front of balancers, as an operator deploys them: round
//! robin, each balancer health-checked on `/readyz`, a request whose connection failed or got
//! no answer sent again to another balancer.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;

use super::{http, Process};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// A running HAProxy; stopped on drop.
pub struct HaProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub process: Process,
    _dir: TempDir,
}

/// HAProxy balancing over `backends` (`http://host:port` each), answering once it routes;
/// `None` when HAProxy is not installed (`scripts/test` installs it).
pub async fn haproxy(backends: &[&str]) -> Option<HaProxy> {
    if !Path::new(HAPROXY).exists() {
        eprintln!("{HAPROXY} is missing: the HAProxy test is skipped (scripts/test installs it)");
        return None;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let addr = url.trim_start_matches("http://");
            format!("    server balancer{i} {addr} check\n")
        })
        .collect();
    let config = format!(
        "global\n    maxconn 1024\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
         timeout server 30s\n    retries 3\n    option redispatch 1\n    \
         retry-on conn-failure empty-response\n\
         listen conflux\n    bind 127.0.0.1:{port}\n    balance roundrobin\n    \
         option httpchk GET /readyz\n    http-check expect status 200\n    \
         default-server inter 200ms fall 1 rise 2\n{servers}"
    );
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, config).expect("write the HAProxy configuration");
    let args = ["-db".to_owned(), "-f".into(), file.display().to_string()];
    let process = Process::system(Path::new(HAPROXY), &args, dir.path());
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let answered = http().get(format!("{url}/healthz")).send().await;
        if answered.is_ok_and(|r| r.status().is_success()) {
            return Some(HaProxy {
                url,
                process,
                _dir: dir,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("HAProxy never answered; its log:\n{}", process.log_text());
}
