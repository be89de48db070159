//! `conflux-balancer demo`: a balancer, three simulated BBB nodes (`conflux-bbb-sim`, built
//! beside this binary) "in" three cities, and a `conflux-agent` reporting for each, with one
//! integration, on loopback, with no set-up. Prints the API URL, secret and what to try; runs
//! until Ctrl-C and stops its children.
#![allow(clippy::print_stdout)] // the demo talks to its user

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context};

use conflux_shared::Secret;

use crate::config::{Config, DefaultIntegration, RawConfig};
use crate::ops::{self, nodes::NodeSpec};
use crate::state::AppState;
use conflux_store::users::Role;

const DEMO_SECRET: &str = "conflux-demo-secret-0123456789";
const NODE_SECRET: &str = "demo-node-secret";
const ENROLMENT_TOKEN: &str = "conflux-demo-enrolment";
/// The actor the demo's set-up is audited under.
const DEMO: &str = "demo";
/// Where the demo's nodes "are", for geo placement.
const CITIES: [(&str, f64, f64); 3] = [
    ("Porto Alegre", -30.03, -51.22),
    ("São Paulo", -23.55, -46.63),
    ("Frankfurt", 50.11, 8.68),
];

/// Children killed on drop.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// A workspace binary next to this one.
fn sibling(name: &str) -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe()?
        .parent()
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .ok_or_else(|| {
            anyhow!("{name} is not built beside this binary: run `cargo build --workspace --bins`")
        })
}

/// Runs the demo on `listen`, its data in `data_dir` (kept, and taken up again by the next
/// demo there) or else in a temporary folder removed at the end.
pub fn run(listen: &str, data_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let sim = sibling("conflux-bbb-sim")?;
    let agent = sibling("conflux-agent")?;
    let data = data_dir.map_or_else(
        || std::env::temp_dir().join(format!("conflux-demo-{}", std::process::id())),
        std::path::Path::to_path_buf,
    );
    let mut children = Children(Vec::new());
    let mut urls = Vec::new();
    for i in 1..=3 {
        let mut child = Command::new(&sim)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--secret",
                NODE_SECRET,
                "--name",
                &format!("bbb{i}"),
            ])
            .arg("--recordings-dir")
            .arg(data.join(format!("bbb{i}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", sim.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        children.0.push(child);
        let line = BufReader::new(stdout)
            .lines()
            .next()
            .transpose()?
            .unwrap_or_default();
        let addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("simulator said {line:?}"))?;
        urls.push(addr.to_owned());
    }
    let mut raw = RawConfig::default();
    raw.server.listen = listen.to_owned();
    raw.server.data_dir = Some(data.join("balancer"));
    raw.poller.interval_secs = 2.0;
    raw.monitor.enrolment_token = Some(Secret(ENROLMENT_TOKEN.into()));
    raw.web.secure_cookies = false; // plain HTTP on loopback
                                    // The three agents report this one machine: its CPU says nothing about the simulated
                                    // nodes, so only a saturated machine counts as a problem.
    raw.monitor.cpu_warning = 100.0;
    raw.monitor.cpu_critical = 100.0;
    let mut config = Config::validate(raw)?;
    config.default_integration = Some(DefaultIntegration {
        name: "demo".into(),
        secrets: vec![Secret(DEMO_SECRET.into())],
    });
    let state = AppState::open(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The dashboard's account: a fresh password each run, printed below.
    let password = crate::auth::random_password();
    runtime.block_on(async {
        match ops::users::add(&state, DEMO, "admin", password.clone(), Role::Admin).await {
            // A kept data folder: the account of the last demo there gets this run's password.
            Err(ops::OpError::Conflict(_)) => {
                ops::users::set_password(&state, DEMO, "admin", password.clone()).await?;
            }
            added => added?,
        }
        for (i, url) in urls.iter().enumerate() {
            let name = format!("bbb{}", i + 1);
            // A kept data folder has this node from the last demo, on another port.
            if let Ok(node) = state.store.node(&name).await {
                let edit = ops::nodes::NodeEdit {
                    url: Some(url.clone()),
                    ..Default::default()
                };
                ops::nodes::edit(&state, DEMO, &node, edit).await?;
                continue;
            }
            let spec = NodeSpec {
                url: url.clone(),
                secret: NODE_SECRET.into(),
                name: Some(name),
                load_multiplier: 1.0,
                tags: Vec::new(),
                enabled: true,
            };
            ops::nodes::add(&state, DEMO, spec).await?;
        }
        Ok::<_, ops::OpError>(())
    })?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    for (i, (url, (_, lat, lon))) in urls.iter().zip(CITIES).enumerate() {
        let env = [
            ("CONFLUX_BALANCER__URL", format!("http://{addr}")),
            ("CONFLUX_BALANCER__ENROLMENT_TOKEN", ENROLMENT_TOKEN.into()),
            ("CONFLUX_NODE__NAME", format!("bbb{}", i + 1)),
            (
                "CONFLUX_NODE__API_URL",
                conflux_shared::signed_url::api_base_of(url).into_owned(),
            ),
            ("CONFLUX_NODE__SECRET", NODE_SECRET.into()),
            ("CONFLUX_NODE__LATITUDE", lat.to_string()),
            ("CONFLUX_NODE__LONGITUDE", lon.to_string()),
            ("CONFLUX_REPORT__INTERVAL_SECS", "2".into()),
            (
                "CONFLUX_REPORT__STATE_FILE",
                data.join(format!("agent{}.json", i + 1))
                    .display()
                    .to_string(),
            ),
        ];
        let child = Command::new(&agent)
            .arg("--config")
            .arg(data.join("no-agent-file.toml"))
            .arg("run")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", agent.display()))?;
        children.0.push(child);
    }
    let shown = data.clone();
    runtime.block_on(async move {
        state.refresh().await?;
        crate::poller::poll_all(&state, true).await;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        println!("listening on http://{addr}");
        println!();
        println!(
            "Conflux demo: a balancer in front of three simulated BBB nodes, each with an agent."
        );
        println!("  BBB API URL:  http://{addr}/bigbluebutton/api/");
        println!("  secret:       {DEMO_SECRET}");
        for (i, (url, (city, _, _))) in urls.iter().zip(CITIES).enumerate() {
            println!("  node bbb{}:    {url} ({city})", i + 1);
        }
        println!("  dashboard:    http://{addr}/  (user admin, password {password})");
        println!("  metrics:      http://{addr}/metrics");
        println!("  data:         {}", shown.display());
        println!();
        println!("Point Greenlight, Moodle or any BBB client at the URL and secret above, or try:");
        println!("  curl http://{addr}/bigbluebutton/api");
        println!(
            "  conflux-balancer --data-dir {} servers status",
            shown.join("balancer").display()
        );
        println!(
            "  conflux-balancer --data-dir {} servers checks bbb1",
            shown.join("balancer").display()
        );
        println!("Press Ctrl-C to stop.");
        crate::serve(listener, state, conflux_shared::process::shutdown_signal()).await
    })?;
    drop(children);
    std::thread::sleep(Duration::from_millis(100));
    // Unless a folder was given, the demo's data is throwaway: nothing is left behind.
    if data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}
