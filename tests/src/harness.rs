//! The end-to-end harness: start real Conflux processes on loopback and talk to them.
//!
//! `let node = sim().secret("s1").start().await;` starts `conflux-bbb-sim` on port 0, reads its
//! `listening on` line, polls until it answers, and kills it when the handle drops (SIGTERM,
//! then SIGKILL). Each handle owns a temporary directory (logs, recordings). Binaries are taken
//! from the target directory next to the running test executable; `scripts/test` builds them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conflux_shared::{report, Algorithm, Response, SignedUrl};
use tempfile::TempDir;

mod haproxy;
mod recorder;
mod tls;
pub use haproxy::{haproxy, HaProxy};
pub use recorder::{recorder, Recorder};
pub use tls::{client_trusting, TestCa};

/// How long a process may take to print its `listening on` line and answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of a workspace binary built beside the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test-exe> or target/<profile>/<bin>
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A test key pair's file from `shared/tests/fixtures/keys` (test-only recorder keys).
pub fn fixture_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/fixtures/keys")
        .join(name)
}

/// A child process killed on drop, with its stderr kept in a log file.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Starts `bin args...`, waits for `listening on http://ADDR` on stdout and returns the
    /// address. The environment is cleared of `CONFLUX_*` variables.
    pub fn start(bin: &str, args: &[String], dir: &Path) -> (Process, String) {
        Process::start_with_env(bin, args, dir, &[])
    }

    /// A process slot with nothing running yet.
    fn placeholder(dir: &Path) -> Process {
        let child = Command::new("true").spawn().expect("`true` runs");
        Process {
            child,
            log: dir.join("none.log"),
        }
    }

    /// Like [`Process::start`], with extra environment variables.
    pub fn start_with_env(
        bin: &str,
        args: &[String],
        dir: &Path,
        env: &[(String, String)],
    ) -> (Process, String) {
        Process::start_wrapped(&[], bin, args, dir, env)
    }

    /// Like [`Process::start_with_env`], run through `wrapper` (e.g. `prlimit --nofile=..`).
    pub fn start_wrapped(
        wrapper: &[String],
        bin: &str,
        args: &[String],
        dir: &Path,
        env: &[(String, String)],
    ) -> (Process, String) {
        let (mut child, log) = spawn(wrapper, bin, args, dir, env, Stdio::piped());
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let addr = line
                    .strip_prefix("listening on http://")
                    .or_else(|| line.strip_prefix("listening on https://"));
                if let Some(addr) = addr {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let process = Process { child, log };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => (process, addr),
            Err(_) => panic!(
                "{bin} did not print its listening line; log:\n{}",
                process.log_text()
            ),
        }
    }

    /// Starts `bin args...` without waiting for anything (daemons that do not listen).
    pub fn spawn(bin: &str, args: &[String], dir: &Path, env: &[(String, String)]) -> Process {
        let (child, log) = spawn(&[], bin, args, dir, env, Stdio::null());
        Process { child, log }
    }

    /// Starts a program of the system (not of the workspace), its stderr in `dir/<name>.log`.
    pub fn system(program: &Path, args: &[String], dir: &Path) -> Process {
        let name = program
            .file_name()
            .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("create the log file");
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Process { child, log }
    }

    /// Waits for the process to exit (up to `timeout`); its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process: SIGTERM, then SIGKILL after two seconds.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a workspace binary (through `wrapper`, if any) with its stderr in `dir/<bin>.log`
/// and no `CONFLUX_*` variables but `env`.
fn spawn(
    wrapper: &[String],
    bin: &str,
    args: &[String],
    dir: &Path,
    env: &[(String, String)],
    stdout: Stdio,
) -> (Child, PathBuf) {
    let path = binary(bin);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (scripts/test does)",
        path.display()
    );
    let log = dir.join(format!("{bin}.log"));
    let stderr = std::fs::File::create(&log).expect("create the log file");
    let mut command = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut command = Command::new(program);
            command.args(wrapper_args).arg(&path);
            command
        }
        None => Command::new(&path),
    };
    command
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .stdin(Stdio::null());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONFLUX_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    (child, log)
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builder for a simulated BBB node.
pub struct SimBuilder {
    secret: String,
    version: String,
    algorithms: String,
    minute_secs: f64,
    ended_retention_secs: f64,
    recordings_dir: Option<PathBuf>,
    /// Its certificate, and the CA's PEM that signed it.
    tls: Option<(crate::sim::TlsFiles, PathBuf)>,
}

/// A running `conflux-bbb-sim`.
pub struct SimNode {
    pub process: Process,
    /// `http://127.0.0.1:PORT` (`https://` when served over TLS)
    pub url: String,
    pub secret: String,
    /// Where the node writes finished recordings.
    pub recordings: PathBuf,
    pub dir: TempDir,
}

pub fn sim() -> SimBuilder {
    SimBuilder {
        secret: "sim-secret-0123456789".into(),
        version: "2.7.3".into(),
        algorithms: "sha1,sha256,sha384,sha512".into(),
        minute_secs: 60.0,
        ended_retention_secs: 60.0,
        recordings_dir: None,
        tls: None,
    }
}

impl SimBuilder {
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.into();
        self
    }

    pub fn version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    pub fn algorithms(mut self, algorithms: &str) -> Self {
        self.algorithms = algorithms.into();
        self
    }

    /// How many real seconds a BBB minute lasts on this node.
    pub fn minute_secs(mut self, secs: f64) -> Self {
        self.minute_secs = secs;
        self
    }

    pub fn ended_retention_secs(mut self, secs: f64) -> Self {
        self.ended_retention_secs = secs;
        self
    }

    /// Keeps recordings in `dir` instead of the node's own temporary directory (to restart a
    /// node on the same recordings).
    pub fn recordings_dir(mut self, dir: &Path) -> Self {
        self.recordings_dir = Some(dir.to_path_buf());
        self
    }

    /// Serves HTTPS with `files`, signed by the CA whose PEM is `ca` (its start is awaited
    /// with a client trusting that CA).
    pub fn tls(mut self, files: crate::sim::TlsFiles, ca: &Path) -> Self {
        self.tls = Some((files, ca.to_path_buf()));
        self
    }

    pub async fn start(self) -> SimNode {
        let dir = tempfile::tempdir().expect("temporary directory");
        let recordings = self
            .recordings_dir
            .unwrap_or_else(|| dir.path().join("recordings"));
        let mut args = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--secret".into(),
            self.secret.clone(),
            "--version".into(),
            self.version,
            "--checksum-algorithms".into(),
            self.algorithms,
            "--recordings-dir".into(),
            recordings.display().to_string(),
            "--minute-secs".into(),
            self.minute_secs.to_string(),
            "--ended-retention-secs".into(),
            self.ended_retention_secs.to_string(),
        ];
        let (scheme, client) = match &self.tls {
            Some((files, ca)) => {
                args.extend([
                    "--tls-cert".into(),
                    files.certificate.display().to_string(),
                    "--tls-key".into(),
                    files.key.display().to_string(),
                ]);
                ("https", client_trusting(ca))
            }
            None => ("http", http()),
        };
        let (process, addr) = Process::start("conflux-bbb-sim", &args, dir.path());
        let node = SimNode {
            process,
            url: format!("{scheme}://{addr}"),
            secret: self.secret,
            recordings,
            dir,
        };
        let api = format!("{}/bigbluebutton/api", node.url);
        wait_until_answering_with(&client, &api, &node.process).await;
        node
    }
}

impl SimNode {
    /// A BBB API client for this node with its own secret.
    pub fn client(&self, algorithm: Algorithm) -> BbbClient {
        BbbClient::new(&self.url, &self.secret, algorithm)
    }

    /// Calls the control API: `method path` with a JSON body; returns status and JSON.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = http()
            .request(
                method,
                format!("{}/sim/{}", self.url, path.trim_start_matches('/')),
            )
            .json(&body)
            .send()
            .await
            .expect("control API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

/// Polls `url` until it answers HTTP at all.
async fn wait_until_answering(url: &str, process: &Process) {
    wait_until_answering_with(&http(), url, process).await
}

async fn wait_until_answering_with(client: &reqwest::Client, url: &str, process: &Process) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never answered; log:\n{}", process.log_text());
}

/// One HTTP client for the harness: short timeouts, no redirects followed.
pub fn http() -> reqwest::Client {
    http_builder().build().expect("HTTP client builds")
}

/// The settings of [`http`], to add to.
fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
}

/// A minimal BBB API client that signs like any front-end does.
pub struct BbbClient {
    pub api: String,
    pub secret: String,
    pub algorithm: Algorithm,
    http: reqwest::Client,
}

/// A raw HTTP answer.
pub struct Raw {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl BbbClient {
    pub fn new(base: &str, secret: &str, algorithm: Algorithm) -> BbbClient {
        BbbClient {
            api: conflux_shared::signed_url::api_base_of(base).into_owned(),
            secret: secret.into(),
            algorithm,
            http: http(),
        }
    }

    /// The signed URL of `call` with `params`.
    pub fn url(&self, call: &str, params: &[(&str, &str)]) -> String {
        params
            .iter()
            .fold(SignedUrl::new(&self.api, call), |u, (k, v)| u.param(k, v))
            .sign(&self.secret, self.algorithm)
    }

    /// GETs `call` and parses the XML answer.
    pub async fn call(&self, call: &str, params: &[(&str, &str)]) -> Response {
        let raw = self.get(&self.url(call, params)).await;
        Response::from_xml(&raw.body)
            .unwrap_or_else(|e| panic!("{call}: {e} in {:?} ({})", raw.body, raw.status))
    }

    /// GETs any URL.
    pub async fn get(&self, url: &str) -> Raw {
        Self::raw(self.http.get(url).send().await.expect("request sent")).await
    }

    /// POSTs `body` with `content_type` to a URL.
    pub async fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> Raw {
        let request = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body);
        Self::raw(request.send().await.expect("request sent")).await
    }

    async fn raw(response: reqwest::Response) -> Raw {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let status = response.status().as_u16();
        Raw {
            status,
            location,
            content_type,
            body: response.text().await.unwrap_or_default(),
        }
    }
}

/// Builder for a balancer with nodes and integrations, configured through its own CLI.
/// Writes `dir/balancer.toml` for a bench balancer (data in `dir/data`, then `extra` TOML
/// with its own sections); its path.
pub fn bench_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("balancer.toml");
    let data = dir.join("data").display().to_string();
    std::fs::write(&config, format!("[server]\ndata_dir = {data:?}\n{extra}"))
        .expect("write the config");
    config
}

/// Starts `conflux-balancer --config CONFIG serve` on a free loopback port: the process and
/// its address.
pub fn serve_balancer(config: &Path, dir: &Path) -> (Process, String) {
    let args = [
        "--config".to_string(),
        config.display().to_string(),
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    Process::start("conflux-balancer", &args, dir)
}

pub struct BalancerBuilder {
    nodes: Vec<(String, String, String)>,
    /// Nodes it waits to see online at start besides its own (another balancer's, on a shared
    /// store).
    expect_online: usize,
    integrations: Vec<(String, String)>,
    config: String,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    listen: String,
}

/// A running `conflux-balancer serve` with its data directory.
pub struct Balancer {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub dir: TempDir,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    expected_nodes: usize,
    /// An admin token for [`Balancer::admin_json`], made on first use.
    admin_token: std::sync::OnceLock<String>,
}

pub fn balancer() -> BalancerBuilder {
    BalancerBuilder {
        nodes: Vec::new(),
        expect_online: 0,
        integrations: Vec::new(),
        config: String::new(),
        env: Vec::new(),
        wrapper: Vec::new(),
        listen: "127.0.0.1:0".into(),
    }
}

impl BalancerBuilder {
    /// Adds `node` (enabled) under the name `name`.
    pub fn node(mut self, name: &str, node: &SimNode) -> Self {
        self.nodes
            .push((name.into(), node.url.clone(), node.secret.clone()));
        self
    }

    /// Adds every node of `nodes` (enabled), named `bbb1`, `bbb2`, ...
    pub fn nodes(self, nodes: &[&SimNode]) -> Self {
        nodes
            .iter()
            .enumerate()
            .fold(self, |b, (i, n)| b.node(&format!("bbb{}", i + 1), n))
    }

    pub fn integration(mut self, name: &str, secret: &str) -> Self {
        self.integrations.push((name.into(), secret.into()));
        self
    }

    /// Waits at start until `n` more nodes than its own are online (nodes another balancer
    /// added to a shared store).
    pub fn expect_online(mut self, n: usize) -> Self {
        self.expect_online = n;
        self
    }

    /// Extra TOML appended to the generated configuration file.
    pub fn config(mut self, toml: &str) -> Self {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    /// An environment variable for the balancer (e.g. Scalelite's LOADBALANCER_SECRET).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Listens on a port chosen now and names it as its public URL (`api.public_url`), so
    /// nodes call the balancer back.
    pub fn public_url(mut self) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        self.listen = format!("127.0.0.1:{port}");
        self.env(
            "CONFLUX_API__PUBLIC_URL",
            &format!("http://127.0.0.1:{port}"),
        )
    }

    /// Starts `serve` with this open-file limit (soft, hard), as a shell's `ulimit -n` would.
    pub fn open_files(mut self, soft: u64, hard: u64) -> Self {
        self.wrapper = vec![
            "prlimit".into(),
            format!("--nofile={soft}:{hard}"),
            "--".into(),
        ];
        self
    }

    pub async fn start(self) -> Balancer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = format!(
            "[server]\ndata_dir = {:?}\n[poller]\ninterval_secs = 0.2\nconnect_timeout_secs = 1\nresponse_timeout_secs = 2\n{}",
            dir.path().join("data").display().to_string(),
            self.config
        );
        std::fs::write(dir.path().join("balancer.toml"), config).expect("write the config");
        let mut lb = Balancer {
            process: Process::placeholder(dir.path()),
            url: String::new(),
            dir,
            env: self.env,
            wrapper: self.wrapper,
            expected_nodes: self.nodes.len() + self.expect_online,
            admin_token: std::sync::OnceLock::new(),
        };
        for (name, secret) in &self.integrations {
            lb.cli_ok(&["integrations", "add", name, "--secret", secret]);
        }
        for (name, url, secret) in &self.nodes {
            // Some tests' nodes are down or untrusted on purpose: `servers add`'s own check has
            // its test (admin_cli_refuses_bad_input_and_changes_nothing).
            lb.cli_ok(&[
                "servers",
                "add",
                url,
                secret,
                "--name",
                name,
                "--enable",
                "--no-check",
            ]);
        }
        lb.start_serving(&self.listen).await;
        lb
    }
}

impl Balancer {
    /// Runs `conflux-balancer --config ... ARGS` and returns its output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("conflux-balancer runs")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("conflux-balancer"));
        command
            .arg("--config")
            .arg(self.dir.path().join("balancer.toml"))
            .args(args);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONFLUX_")) {
            command.env_remove(key);
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// `users add NAME --role ROLE` with the password typed on stdin.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let mut child = self
            .command(&["users", "add", name, "--role", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("conflux-balancer runs");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, format!("{password}\n").as_bytes())
            .expect("password written");
        drop(stdin);
        let out = child.wait_with_output().expect("users add ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Like [`Balancer::cli`], asserting success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "conflux-balancer {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn client(&self, secret: &str, algorithm: Algorithm) -> BbbClient {
        BbbClient::new(&self.url, secret, algorithm)
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        http()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .unwrap_or_default()
    }

    /// `GET /api/v1{path}` as an admin: what the running balancer holds (its snapshots, not
    /// the store), e.g. to wait until it has picked up a CLI change.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let token = self.admin_token.get_or_init(|| {
            // Named per process: balancers sharing a database share their tokens.
            let name = format!("harness-{}", self.process.pid());
            let out = self.cli_ok(&["tokens", "add", &name, "--role", "admin"]);
            out.trim()
                .strip_prefix("token: ")
                .expect("`tokens add` prints the token")
                .to_owned()
        });
        http()
            .get(format!("{}/api/v1{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("the admin API answers")
            .json()
            .await
            .expect("the admin API answers JSON")
    }

    /// Points integration `name` at the recorder at `url` with its public key `key`, and waits
    /// until the running balancer uses it.
    pub async fn set_recorder(&self, name: &str, url: &str, key: &Path) {
        let key = key.to_str().expect("a UTF-8 path");
        self.cli_ok(&[
            "integrations",
            "update",
            name,
            "--recorder-url",
            url,
            "--recorder-key",
            key,
        ]);
        let seen = eventually(|| async {
            self.admin_json("/integrations")
                .await
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["name"] == name && i["recorder"]["url"] == url)
        })
        .await;
        assert!(seen, "the balancer never picked up {name}'s recorder {url}");
    }

    /// Enrols `node` under `name` with the enrolment `token`, as its agent would: the node's
    /// id and signing key.
    pub async fn enrol(&self, node: &SimNode, name: &str, token: &str) -> report::Enrolled {
        http()
            .post(format!("{}{}", self.url, report::ENROL_PATH))
            .json(&report::Enrolment {
                token: token.into(),
                name: name.into(),
                url: node.url.clone(),
                secret: node.secret.clone(),
                latitude: None,
                longitude: None,
            })
            .send()
            .await
            .expect("enrolment answer")
            .json()
            .await
            .expect("enrolled")
    }

    /// Kills the balancer at once (SIGKILL) and starts it again on the same data and address.
    pub async fn crash_and_restart(&mut self) {
        self.process.kill();
        let addr = self.url.trim_start_matches("http://").to_owned();
        self.start_serving(&addr).await;
    }

    /// Kills the balancer, waits `down`, and starts it again on the same address (for clients
    /// configured with its URL, such as agents).
    pub async fn outage(&mut self, down: Duration) {
        let status = self.cli_ok(&["servers", "status"]);
        self.expected_nodes = status.lines().filter(|l| l.contains(" online ")).count();
        self.process.kill();
        tokio::time::sleep(down).await;
        let addr = self.url.trim_start_matches("http://").to_owned();
        self.start_serving(&addr).await;
    }

    async fn start_serving(&mut self, listen: &str) {
        let mut args = vec![
            "--config".to_owned(),
            self.dir.path().join("balancer.toml").display().to_string(),
        ];
        args.extend(["serve", "--listen", listen].map(String::from));
        let (process, addr) = Process::start_wrapped(
            &self.wrapper,
            "conflux-balancer",
            &args,
            self.dir.path(),
            &self.env,
        );
        self.process = process;
        self.url = format!("http://{addr}");
        wait_until_answering(&format!("{}/bigbluebutton/api", self.url), &self.process).await;
        self.wait_online(self.expected_nodes).await;
    }

    /// Waits until `n` nodes show `online` in the status table (the store), and as many in the
    /// balancer's own node table (its `/metrics`, when they are open): a poll round stores each
    /// node as it goes and refreshes the balancer's table at its end.
    pub async fn wait_online(&self, n: usize) {
        for _ in 0..200 {
            let status = self.cli_ok(&["servers", "status"]);
            if status.lines().filter(|l| l.contains(" online ")).count() == n
                && self.serves_online().await.is_none_or(|online| online == n)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} nodes never came online:\n{}",
            self.cli_ok(&["servers", "status"])
        );
    }

    /// How many nodes the balancer's own table has online (`conflux_node_online` gauges at 1);
    /// `None` when `/metrics` does not answer (protected by a token).
    async fn serves_online(&self) -> Option<usize> {
        let answer = http()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .ok()?;
        if !answer.status().is_success() {
            return None;
        }
        let text = answer.text().await.ok()?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("conflux_node_online{"))
                .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()) == Some(1.0))
                .count(),
        )
    }
}

/// Logs in to the web pages at `base` over HTTP; the session cookie (`name=value`), else the
/// status and page.
pub async fn log_in(base: &str, user: &str, password: &str) -> Result<String, (u16, String)> {
    let form = http()
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("the login form");
    let login_cookie = cookie(&form, "conflux_login").expect("a login cookie");
    let csrf = login_cookie
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let answer = http()
        .post(format!("{base}/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&username={user}&password={password}"))
        .send()
        .await
        .expect("the login answer");
    match cookie(&answer, "conflux_session") {
        Some(session) if answer.status().as_u16() == 303 => Ok(session),
        _ => Err((
            answer.status().as_u16(),
            answer.text().await.unwrap_or_default(),
        )),
    }
}

/// The cookie `name` a response sets (`name=value`).
pub fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(String::from)
}

/// The node of `nodes` hosting `meeting_id` (asked with getMeetingInfo); panics if none does.
pub async fn host<'a>(nodes: &[&'a SimNode], meeting_id: &str) -> &'a SimNode {
    for node in nodes {
        if node
            .client(Algorithm::Sha1)
            .call("getMeetingInfo", &[("meetingID", meeting_id)])
            .await
            .is_success()
        {
            return node;
        }
    }
    panic!("no node hosts {meeting_id}");
}

/// Polls `check` every 50 ms for up to 10 s; whether it ever held. For state that another
/// process changes asynchronously (the balancer reloading after an admin command, a poll).
pub async fn eventually<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Milliseconds since the epoch, as reports are signed.
pub fn now_ms() -> i64 {
    i64::try_from(conflux_shared::date::now_ms()).expect("a time before 2262")
}

/// A plausible agent report: `cpu` percent, sent every `interval_secs`.
pub fn a_report(cpu: f64, interval_secs: f64) -> report::Report {
    report::Report {
        cpu_percent: cpu,
        load: [0.5, 0.5, 0.5],
        memory_used: 2 << 30,
        memory_total: 8 << 30,
        disks: vec![report::Disk {
            mount: "/".into(),
            used: 40,
            total: 100,
        }],
        net_in: 1e5,
        net_out: 2e5,
        bbb: Ok(report::BbbCounts {
            version: "2.0".into(),
            ..report::BbbCounts::default()
        }),
        interval_secs,
    }
}

/// Sends `body` to the balancer at `lb_url` as `node`'s report signed at `at` (ms) with
/// `key`, as the agent does; the HTTP status.
pub async fn post_report(lb_url: &str, node: i64, key: &str, at: i64, body: &[u8]) -> u16 {
    http()
        .post(format!("{lb_url}{}", report::REPORT_PATH))
        .header(report::NODE_HEADER, node.to_string())
        .header(report::TIMESTAMP_HEADER, at.to_string())
        .header(
            report::SIGNATURE_HEADER,
            report::sign(key.as_bytes(), node, at, body),
        )
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("report answer")
        .status()
        .as_u16()
}

/// Drops a Scalelite-style recording tarball into `spool` (`<record_id>.tar` holding BBB's
/// `presentation/<record_id>/` folder: its metadata.xml, published, and one file), as a node
/// without the agent does. Without `meeting_element`, metadata.xml names the meeting in
/// `<meta>` only, as older BBB versions wrote it.
pub fn spool_tarball(spool: &Path, meeting_id: &str, record_id: &str, meeting_element: bool) {
    std::fs::create_dir_all(spool).expect("the spool folder");
    let file = std::fs::File::create(spool.join(format!("{record_id}.tar"))).expect("a tarball");
    let mut tar = tar::Builder::new(file);
    let meeting = match meeting_element {
        true => format!(
            "<meeting id=\"{record_id}\" externalId=\"{meeting_id}\" name=\"{meeting_id}\"/>"
        ),
        false => String::new(),
    };
    let metadata = format!(
        "<recording><id>{record_id}</id><state>published</state><published>true</published>\
         <start_time>1</start_time><end_time>60001</end_time>{meeting}\
         <meta><meetingId>{meeting_id}</meetingId></meta>\
         <playback><format>presentation</format><link>x</link></playback></recording>"
    );
    for (name, data) in [
        ("metadata.xml", metadata.as_bytes()),
        ("shapes.svg", b"<svg/>".as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("presentation/{record_id}/{name}"),
            data,
        )
        .expect("a tar entry");
    }
    tar.finish().expect("the tarball written");
}

/// Builder for a `conflux-agent run` reporting `node` to `balancer_url`.
pub fn agent(balancer_url: &str, node: &SimNode, token: &str) -> AgentBuilder {
    AgentBuilder {
        config: format!(
            "[balancer]\nurl = {balancer_url:?}\nenrolment_token = {token:?}\n\
             [node]\nname = \"agent-node\"\napi_url = \"{}/bigbluebutton/api\"\nsecret = {:?}\n",
            node.url, node.secret
        ),
        interval_secs: 0.5,
        published: None,
    }
}

pub struct AgentBuilder {
    config: String,
    interval_secs: f64,
    published: Option<PathBuf>,
}

/// A running agent and its directory (config, state file, log).
pub struct AgentProcess {
    pub process: Process,
    pub dir: TempDir,
}

impl AgentBuilder {
    pub fn interval(mut self, secs: f64) -> Self {
        self.interval_secs = secs;
        self
    }

    /// Watches `published` (BBB's `<format>/<recordID>/` folders) for recordings to hand over,
    /// with the outbox in the agent's directory, every 0.3 s.
    pub fn recordings(mut self, published: &Path) -> Self {
        self.published = Some(published.to_path_buf());
        self
    }

    pub fn start(&self) -> AgentProcess {
        let dir = tempfile::tempdir().expect("temporary directory");
        AgentProcess {
            process: self.start_in(&dir),
            dir,
        }
    }

    /// Starts it in `dir` (again, after a stop: the state file there is kept).
    pub fn start_in(&self, dir: &TempDir) -> Process {
        let config = dir.path().join("agent.toml");
        let text = format!(
            "{}[report]\ninterval_secs = {}\nstate_file = {:?}\ndisks = [\"/\"]\n",
            self.config,
            self.interval_secs,
            dir.path().join("state.json").display().to_string()
        );
        // Never the system's folders (the packages test installs the real agent there).
        let published = self
            .published
            .clone()
            .unwrap_or_else(|| dir.path().join("no-recordings"));
        let text = format!(
            "{text}[recordings]\npublished_dir = {:?}\noutbox_dir = {:?}\ninterval_secs = 0.3\n",
            published.display().to_string(),
            dir.path().join("outbox").display().to_string()
        );
        std::fs::write(&config, text).expect("write the agent config");
        let args = [
            "--config".to_string(),
            config.display().to_string(),
            "run".into(),
        ];
        Process::spawn("conflux-agent", &args, dir.path(), &[])
    }
}
