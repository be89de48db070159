//! `conflux-bench`: a load client in the spirit of Mconf's BBBot (API only). It starts a real
//! `conflux-balancer` (release build beside this binary) in front of N simulated nodes served
//! in this process, creates M meetings, then drives each call with C concurrent front-ends
//! and prints req/s and p50/p99 per call, placement time among 1,000 nodes, and the
//! balancer's peak RSS. A benchmark, not a test: it prints figures and asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conflux_balancer::placement;
use conflux_bench::procfs::memory_mb;
use conflux_shared::Algorithm;
use conflux_tests::harness::{binary, BbbClient, Process};
use conflux_tests::sim::{self, SimConfig};

/// Load-test the balancer (see the module docs).
#[derive(Parser)]
struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Meetings created before measuring.
    #[arg(long, default_value_t = 5000)]
    meetings: usize,
    /// Concurrent front-ends.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per measured call.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The balancer's poll interval (seconds): short intervals measure answers while polling.
    #[arg(long, default_value_t = 10.0)]
    poll_secs: f64,
    /// Keep the store in a new database on this PostgreSQL server (a URL that may create
    /// databases, e.g. what `scripts/postgres start` prints) instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Balancers serving the same PostgreSQL store (with --postgres); calls rotate among them.
    #[arg(long, default_value_t = 1)]
    balancers: usize,
}

const SECRET: &str = "bench-integration-secret";
const NODE_SECRET: &str = "bench-node-secret";
/// A second integration with 50 meetings, the size of the peer benchmark's getMeetings.
const SMALL_SECRET: &str = "bench-small-integration-secret";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "placement among 1000 nodes, scalelite policy: {}",
        conflux_bench::placement_figures(1000, placement::Policy::Scalelite)
    );
    println!(
        "placement among 1000 nodes, geo policy: {}",
        conflux_bench::placement_figures(1000, placement::Policy::Geo)
    );
    let dir = tempfile::tempdir()?;
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        nodes.push(format!("http://{}", listener.local_addr()?));
        let config = SimConfig {
            secret: NODE_SECRET.into(),
            name: format!("sim{i}"),
            ..SimConfig::default()
        };
        tokio::spawn(sim::serve(listener, config, std::future::pending()));
    }
    let config = dir.path().join("balancer.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\n[poller]\ninterval_secs = {}\n[default_integration]\nsecret = {SECRET:?}\n",
            dir.path().join("data").display().to_string(),
            args.poll_secs
        ),
    )?;
    anyhow::ensure!(
        args.balancers >= 1 && (args.balancers == 1 || args.postgres.is_some()),
        "several balancers need a shared store (--postgres)"
    );
    let env: Vec<(String, String)> = match &args.postgres {
        Some(server) => vec![(
            "CONFLUX_STORE__URL".into(),
            conflux_store::testing::new_database(server),
        )],
        None => Vec::new(),
    };
    let cli = |args: &[&str]| {
        std::process::Command::new(binary("conflux-balancer"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
    };
    for (i, url) in nodes.iter().enumerate() {
        let out = cli(&[
            "servers",
            "add",
            url,
            NODE_SECRET,
            "--name",
            &format!("node{i}"),
            "--enable",
        ])?;
        anyhow::ensure!(
            out.status.success(),
            "servers add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(&["integrations", "add", "small", "--secret", SMALL_SECRET])?;
    anyhow::ensure!(
        out.status.success(),
        "integrations add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serve = vec![
        "--config".to_owned(),
        config.display().to_string(),
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    let mut balancers = Vec::new();
    let (mut clients, mut small_clients) = (Vec::new(), Vec::new());
    for i in 0..args.balancers {
        let lb_dir = dir.path().join(format!("balancer{i}"));
        std::fs::create_dir_all(&lb_dir)?;
        let (lb, addr) = Process::start_with_env("conflux-balancer", &serve, &lb_dir, &env);
        balancers.push(lb);
        let base = format!("http://{addr}");
        clients.push(Arc::new(BbbClient::new(&base, SECRET, Algorithm::Sha256)));
        small_clients.push(Arc::new(BbbClient::new(
            &base,
            SMALL_SECRET,
            Algorithm::Sha256,
        )));
    }
    let store = match &args.postgres {
        Some(_) => "PostgreSQL",
        None => "SQLite",
    };
    println!("{} balancer(s) on {store}", args.balancers);
    for bbb in &clients {
        wait_for_nodes(bbb).await;
    }

    let created = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let total = args.meetings;
    let stats = drive(
        args.concurrency,
        Duration::from_secs(3600),
        &clients,
        move |bbb| {
            let counter = counter.clone();
            async move {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return None;
                }
                let id = format!("bench-{i}");
                Some(
                    bbb.call("create", &[("meetingID", &id), ("name", "Bench room")])
                        .await
                        .is_success(),
                )
            }
        },
    )
    .await;
    println!(
        "created {} meetings on {} nodes in {:.1} s ({:.0} creates/s, {} failed)",
        stats.ok,
        args.nodes,
        created.elapsed().as_secs_f64(),
        stats.rate(),
        stats.failed
    );
    let small = small_clients[0].clone();
    for i in 0..50 {
        small
            .call(
                "create",
                &[("meetingID", &format!("small-{i}")), ("name", "Small room")],
            )
            .await;
    }
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>7}",
        "call", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let window = Duration::from_secs_f64(args.seconds);
    let getmeetings = drive(args.concurrency, window, &small_clients, |bbb| async move {
        Some(bbb.call("getMeetings", &[]).await.is_success())
    })
    .await;
    getmeetings.print("getMeetings (50)");
    let big = format!("getMeetings ({})", args.meetings);
    for call in [
        "getMeetingInfo".to_owned(),
        "isMeetingRunning".into(),
        big,
        "join".into(),
    ] {
        let seq = Arc::new(AtomicUsize::new(0));
        let meetings = args.meetings.max(1);
        let name = call.clone();
        let stats = drive(args.concurrency, window, &clients, move |bbb| {
            let (seq, call) = (seq.clone(), name.clone());
            async move {
                let id = format!("bench-{}", seq.fetch_add(1, Ordering::Relaxed) % meetings);
                Some(match call.as_str() {
                    c if c.starts_with("getMeetings") => {
                        bbb.call("getMeetings", &[]).await.is_success()
                    }
                    "join" => {
                        let url = bbb.url(
                            "join",
                            &[("meetingID", &id), ("fullName", "Bot"), ("role", "VIEWER")],
                        );
                        bbb.get(&url).await.status == 302
                    }
                    other => bbb.call(other, &[("meetingID", &id)]).await.is_success(),
                })
            }
        })
        .await;
        stats.print(&call);
    }
    for lb in &balancers {
        println!("balancer peak RSS: {:.1} MB", memory_mb(lb.pid(), "VmHWM:"));
    }
    Ok(())
}

async fn wait_for_nodes(bbb: &BbbClient) {
    for _ in 0..600 {
        if bbb
            .call("create", &[("meetingID", "warm-up"), ("name", "Warm up")])
            .await
            .is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Results of one measured call.
struct Stats {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        (self.ok + self.failed) as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn print(&self, call: &str) {
        println!(
            "{call:<22} {:>9.0} {:>9.2} {:>9.2} {:>7}",
            self.rate(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.failed
        );
    }
}

/// Runs `op` from `concurrency` tasks until `window` passes or `op` returns `None`; the tasks
/// are spread over `clients` (one per balancer) in turn.
async fn drive<F, Fut>(
    concurrency: usize,
    window: Duration,
    clients: &[Arc<BbbClient>],
    op: F,
) -> Stats
where
    F: Fn(Arc<BbbClient>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<bool>> + Send,
{
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (bbb, op) = (clients[task % clients.len()].clone(), op.clone());
        tasks.spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
            while start.elapsed() < window {
                let t = Instant::now();
                match op(bbb.clone()).await {
                    None => break,
                    Some(true) => ok += 1,
                    Some(false) => failed += 1,
                }
                latencies.push(t.elapsed());
            }
            (ok, failed, latencies)
        });
    }
    let mut stats = Stats {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(Ok((ok, failed, latencies))) = tasks.join_next().await {
        stats.ok += ok;
        stats.failed += failed;
        stats.latencies.extend(latencies);
    }
    stats.elapsed = start.elapsed();
    stats.latencies.sort();
    stats
}
