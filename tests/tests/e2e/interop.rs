//! Independent BBB clients (Python hashlib + urllib, bbbctl and bigbluebutton-api-python from
//! PyPI) against the simulator: every call with sha1 and sha256, and checksumError with a wrong
//! secret. The Python environment is prepared by `scripts/test` in `.venv`.

use std::path::PathBuf;
use std::process::Command;

use conflux_tests::harness::{balancer, sim};

/// The Python with the client libraries: `$CONFLUX_TEST_PYTHON`, else the repo's `.venv`.
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("CONFLUX_TEST_PYTHON") {
        return path.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test, which installs the Python BBB clients",
        venv.display()
    );
    venv
}

/// Runs the interop script against `api` and asserts every check passed.
fn run_interop(api: &str, secret: &str, control: &str, log: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/bbb_interop.py");
    let output = Command::new(python())
        .args([
            script.display().to_string(),
            api.to_owned(),
            secret.to_owned(),
            control.to_owned(),
        ])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "interop failed:\n{stdout}\n{stderr}\nserver log:\n{log}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[tokio::test]
async fn python_bbb_clients_work_against_the_simulator() {
    let node = sim().secret("interop-secret-42").start().await;
    let api = format!("{}/bigbluebutton/api", node.url);
    run_interop(
        &api,
        &node.secret,
        &format!("{}/sim", node.url),
        &node.process.log_text(),
    );
}

#[tokio::test]
async fn python_bbb_clients_work_against_the_balancer() {
    let (n1, n2, n3) = (
        sim().start().await,
        sim().start().await,
        sim().start().await,
    );
    let lb = balancer()
        .nodes(&[&n1, &n2, &n3])
        .integration("uni", "uni-secret-0123456789")
        .start()
        .await;
    let api = format!("{}/bigbluebutton/api", lb.url);
    run_interop(&api, "uni-secret-0123456789", "-", &lb.process.log_text());
}
