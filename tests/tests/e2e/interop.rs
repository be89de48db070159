//! Independent BBB clients (Python hashlib + urllib, bbbctl and bigbluebutton-api-python from
//! PyPI) against the simulator: every call with sha1 and sha256, and checksumError with a wrong
//! secret. The Python environment is prepared by `scripts/test` in `.venv`.

use std::path::PathBuf;
use std::process::Command;

use conflux_tests::harness::sim;

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

#[tokio::test]
async fn python_bbb_clients_work_against_the_simulator() {
    let node = sim().secret("interop-secret-42").start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/bbb_interop.py");
    let output = Command::new(python())
        .arg(script)
        .arg(format!("{}/bigbluebutton/api", node.url))
        .arg(&node.secret)
        .arg(format!("{}/sim", node.url))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "interop failed:\n{stdout}\n{stderr}\nsimulator log:\n{}",
        node.process.log_text()
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
