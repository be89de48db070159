//! The Debian packages as an operator gets them: `scripts/package` builds them, lintian finds
//! no error, `dpkg -i` installs them on this machine, the units verify, and each service's
//! command line (its unit's `ExecStart`) runs as its unit's user with the shipped
//! configuration: the balancer serves, the agent enrols with it and reports a node, the
//! recorder serves. Then they are purged. Needs root (CI runs as root).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conflux_tests::harness::{eventually, http, sim};

const PACKAGES: [&str; 3] = ["conflux-balancer", "conflux-agent", "conflux-recorder"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the packages and what their services left (this machine is the test's).
fn purge() {
    run(
        "dpkg",
        &["--purge"]
            .iter()
            .chain(&PACKAGES)
            .copied()
            .collect::<Vec<_>>(),
    );
    for dir in [
        "/var/lib/conflux",
        "/var/lib/conflux-agent",
        "/var/lib/conflux-recorder",
    ] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A unit's service settings: `key` → values, in order.
fn unit(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/lib/systemd/system/{name}.service")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn setting<'a>(unit: &'a [(String, String)], key: &str) -> &'a str {
    unit.iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| panic!("the unit has no {key}"), |(_, v)| v.as_str())
}

/// The unit's `ExecStart` run as its `User`/`Group` with the groups that user has (its unit's
/// `SupplementaryGroups` among them), as systemd would, with `env` added.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(name: &str, env: &[(&str, &str)], dir: &Path) -> Service {
        let unit = unit(name);
        let (user, group) = (setting(&unit, "User"), setting(&unit, "Group"));
        let groups = ok("id", &["-nG", user]);
        if let Some((_, wanted)) = unit.iter().find(|(k, _)| k == "SupplementaryGroups") {
            for g in wanted.split_whitespace() {
                assert!(
                    groups.split_whitespace().any(|have| have == g),
                    "{user} is not in {g}: {groups}"
                );
            }
        }
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={user}"),
                &format!("--regid={group}"),
                "--init-groups",
                "--",
            ])
            .args(setting(&unit, "ExecStart").split_whitespace())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        Service {
            child: command.spawn().unwrap(),
            log,
        }
    }

    /// The address of its `listening on http://ADDR` line.
    fn listening(&mut self) -> String {
        let stdout = self.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no listening line: {}", self.log_text()))
    }

    /// Its exit code, when it exits within `secs`.
    fn exit_within(&mut self, secs: u64) -> Option<i32> {
        for _ in 0..secs * 20 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `conflux-balancer ARGS` as the balancer's user, with the shipped configuration.
fn balancer_cli(args: &[&str]) -> String {
    let mut all = vec![
        "--reuid=conflux",
        "--regid=conflux",
        "--init-groups",
        "--",
        "/usr/bin/conflux-balancer",
        "--config",
        "/etc/conflux/balancer.toml",
    ];
    all.extend_from_slice(args);
    ok("setpriv", &all)
}

#[tokio::test]
async fn the_packages_install_and_their_services_start_as_their_users() {
    let is_root = run("id", &["-u"]).stdout.starts_with(b"0\n");
    if !is_root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root: the packages are installed on the machine"
        );
        eprintln!("skipped: installing packages needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("debs");
    let built = ok(
        root().join("scripts/package").to_str().unwrap(),
        &["--profile", "debug", "--out", out.to_str().unwrap()],
    );
    let debs: Vec<&str> = built.lines().filter(|l| l.ends_with(".deb")).collect();
    assert_eq!(debs.len(), 3, "{built}");

    let lint = run("lintian", &debs);
    let lint = String::from_utf8_lossy(&lint.stdout);
    let errors: Vec<&str> = lint.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian: {errors:#?}");

    purge();
    // BBB's published recordings, as on a node: the agent must be able to remove them.
    let published = Path::new("/var/bigbluebutton/published");
    let made_bbb = !Path::new("/var/bigbluebutton").exists();
    std::fs::create_dir_all(published.join("presentation/before-install")).unwrap();
    let mut args = vec!["-i"];
    args.extend(&debs);
    ok("dpkg", &args);
    for name in PACKAGES {
        assert!(Path::new(&format!("/usr/bin/{name}")).exists());
        assert!(Path::new(&format!("/usr/share/man/man1/{name}.1.gz")).exists());
        assert!(Path::new(&format!("/usr/share/bash-completion/completions/{name}")).exists());
        let unit_file = format!("/lib/systemd/system/{name}.service");
        ok("systemd-analyze", &["verify", &unit_file]);
        let security = ok(
            "systemd-analyze",
            &["security", "--offline=yes", &unit_file],
        );
        let exposure: f64 = security
            .lines()
            .last()
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{security}"));
        assert!(exposure < 2.0, "{name}: exposure {exposure}");
        // Enabled at installation, not started: it starts once configured.
        assert!(Path::new(&format!(
            "/etc/systemd/system/multi-user.target.wants/{name}.service"
        ))
        .exists());
        // The configuration holds secrets: the service's group may read it, nobody else.
        let config = format!("/etc/conflux/{}.toml", name.trim_start_matches("conflux-"));
        let mode = ok("stat", &["-c", "%U %G %a", &config]);
        assert_eq!(
            mode.trim(),
            format!("root {} 640", setting(&unit(name), "Group"))
        );
    }

    // A recording published before the installation and one after it (BBB's umask): the
    // agent's user may remove both.
    std::fs::create_dir_all(published.join("presentation/after-install/video")).unwrap();
    for rid in ["before-install", "after-install"] {
        let folder = published.join("presentation").join(rid);
        ok(
            "setpriv",
            &[
                "--reuid=conflux-agent",
                "--regid=conflux-agent",
                "--init-groups",
                "--",
                "rm",
                "-r",
                folder.to_str().unwrap(),
            ],
        );
        assert!(!folder.exists());
    }
    if made_bbb {
        std::fs::remove_dir_all("/var/bigbluebutton").unwrap();
    }

    // Unconfigured, the agent and the recorder refuse to start: exit 2 names the key.
    for (name, key) in [
        ("conflux-agent", "balancer.url"),
        ("conflux-recorder", "balancer.secret"),
    ] {
        let mut service = Service::start(name, &[], dir.path());
        assert_eq!(service.exit_within(10), Some(2), "{}", service.log_text());
        assert!(service.log_text().contains(key), "{}", service.log_text());
    }

    // The balancer as shipped (an operator's drop-in sets the address and the enrolment token).
    let mut balancer = Service::start(
        "conflux-balancer",
        &[
            ("CONFLUX_SERVER__LISTEN", "127.0.0.1:0"),
            ("CONFLUX_MONITOR__ENROLMENT_TOKEN", "package-test-token"),
        ],
        dir.path(),
    );
    let lb = format!("http://{}", balancer.listening());
    let health = http().get(format!("{lb}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        ok("stat", &["-c", "%U", "/var/lib/conflux/conflux.sqlite3"]).trim(),
        "conflux"
    );

    // The agent, as its user in BBB's group, enrols and reports a node.
    let node = sim().start().await;
    let api = format!("{}/bigbluebutton/api", node.url);
    let _agent = Service::start(
        "conflux-agent",
        &[
            ("CONFLUX_BALANCER__URL", &lb),
            ("CONFLUX_BALANCER__ENROLMENT_TOKEN", "package-test-token"),
            ("CONFLUX_NODE__NAME", "packaged-node"),
            ("CONFLUX_NODE__API_URL", &api),
            ("CONFLUX_NODE__SECRET", &node.secret),
            ("CONFLUX_REPORT__INTERVAL_SECS", "1"),
        ],
        dir.path(),
    );
    assert!(
        eventually(|| async { balancer_cli(&["servers", "list"]).contains("packaged-node") }).await,
        "the agent never enrolled: {}",
        balancer.log_text()
    );

    // The recorder, with its key pair from the installation and an integration's secret.
    balancer_cli(&[
        "integrations",
        "add",
        "school",
        "--secret",
        "school-secret-0123456789",
    ]);
    let mut recorder = Service::start(
        "conflux-recorder",
        &[
            ("CONFLUX_BALANCER__URL", &lb),
            ("CONFLUX_BALANCER__SECRET", "school-secret-0123456789"),
            ("CONFLUX_RECORDER__LISTEN", "127.0.0.1:0"),
        ],
        dir.path(),
    );
    let rec = recorder.listening();
    let health = http()
        .get(format!("http://{rec}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "{}", recorder.log_text());

    drop((balancer, recorder));
    purge();
    for name in PACKAGES {
        assert!(!Path::new(&format!("/usr/bin/{name}")).exists());
        assert!(!Path::new(&format!("/lib/systemd/system/{name}.service")).exists());
    }
}
