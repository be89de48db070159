//! `conflux-recorder serve` for one integration, on a free port.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::Process;

/// A recorder for the integration with `secret`, pulling from `balancer_url` and opening
/// archives with `private_key`. Its data folder exists before it starts (a test may leave a
/// half-downloaded archive there); [`Recorder::start`] starts it.
pub fn recorder(balancer_url: &str, secret: &str, private_key: &Path) -> Recorder {
    Recorder {
        process: None,
        url: String::new(),
        dir: tempfile::tempdir().expect("temporary directory"),
        private_key: private_key.to_path_buf(),
        secret: secret.into(),
        balancer: balancer_url.into(),
    }
}

pub struct Recorder {
    pub process: Option<Process>,
    /// `http://127.0.0.1:PORT` once started (playback links start with it); empty before.
    pub url: String,
    dir: TempDir,
    private_key: PathBuf,
    secret: String,
    balancer: String,
}

impl Recorder {
    /// Its data folder (index, incoming, published, rejected).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts it on port 0 (again after a stop: on a new port, same data) and returns its URL.
    /// Polled every 0.3 s; `recorder.public_url` is left out, so links use the bound address.
    pub fn start(&mut self) -> String {
        let config = self.dir.path().join("recorder.toml");
        std::fs::write(
            &config,
            format!(
                "[balancer]\nurl = {:?}\nsecret = {:?}\n[recorder]\nlisten = \"127.0.0.1:0\"\n\
                 data_dir = {:?}\nprivate_key = {:?}\npoll_interval_secs = 0.3\n",
                self.balancer,
                self.secret,
                self.data().display().to_string(),
                self.private_key.display().to_string()
            ),
        )
        .expect("write the recorder config");
        let args = [
            "--config".to_string(),
            config.display().to_string(),
            "serve".into(),
        ];
        let (process, addr) = Process::start("conflux-recorder", &args, self.dir.path());
        self.process = Some(process);
        self.url = format!("http://{addr}");
        self.url.clone()
    }

    /// Its log so far (empty before the first start).
    pub fn log_text(&self) -> String {
        self.process
            .as_ref()
            .map(Process::log_text)
            .unwrap_or_default()
    }
}
