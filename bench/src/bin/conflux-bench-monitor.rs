//! `conflux-bench-monitor`: the monitoring side's figures. Starts a real `conflux-balancer`
//! (the build beside this binary), enrols N agents and sends their signed reports at the
//! agents' rate (N / interval per second) for a while, and prints the balancer's CPU use (% of
//! one core), RSS and database size. Then runs a real `conflux-agent` against it for a while and
//! prints the agent's RSS and CPU use. With `--geoip-dir`, also the lookup time in those
//! databases. A benchmark, not a test: it prints figures and asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conflux_bench::procfs::{cpu_seconds, memory_mb};
use conflux_shared::report::{self, BbbCounts, Disk, Enrolled, Report};
use conflux_tests::harness::{binary, http, Process};
use conflux_tests::sim::{self, SimConfig};
use futures_util::StreamExt;
use serde_json::json;

const TOKEN: &str = "bench-enrolment-token";

/// Measure report ingestion, the agent's footprint and GeoIP lookups (see the module docs).
#[derive(Parser)]
struct Args {
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Their report interval (seconds).
    #[arg(long, default_value_t = 10.0)]
    interval_secs: f64,
    /// How long reports are measured (seconds).
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// How long the real agent runs (seconds, at a 10 s interval).
    #[arg(long, default_value_t = 60.0)]
    agent_seconds: f64,
    /// A directory of .mmdb files (e.g. after scripts/setup-geoip) to time lookups in.
    #[arg(long)]
    geoip_dir: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.geoip_dir {
        geoip_figures(dir)?;
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("balancer.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\n[monitor]\nenrolment_token = {TOKEN:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )?;
    let serve = [
        "--config",
        &config.display().to_string(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]
    .map(String::from);
    let (lb, addr) = Process::start("conflux-balancer", &serve, dir.path());
    let base = format!("http://{addr}");

    // Enrolled nodes wait for an admin (disabled), so nothing polls their made-up addresses:
    // the figures are the reports' cost alone.
    let enrolled: Vec<Enrolled> = futures_util::stream::iter(0..args.agents)
        .map(|i| {
            let base = base.clone();
            async move {
                let body = json!({
                    "token": TOKEN, "name": format!("node{i}"),
                    "url": format!("http://10.{}.{}.{}/bigbluebutton/api", i / 65536, (i / 256) % 256, i % 256),
                    "secret": "s",
                });
                http()
                    .post(format!("{base}{}", report::ENROL_PATH))
                    .json(&body)
                    .send()
                    .await?
                    .json::<Enrolled>()
                    .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!("enrolled {} agents", enrolled.len());

    let rate = args.agents as f64 / args.interval_secs;
    let started = Instant::now();
    let cpu_before = cpu_seconds(lb.pid());
    let sent = send_reports(&base, Arc::new(enrolled), rate, args.seconds).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(lb.pid()) - cpu_before;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the last batch is written
    let db = dir.path().join("data/conflux.sqlite3");
    let db_mb = [db.clone(), db.with_extension("sqlite3-wal")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len() as f64 / 1e6)
        .sum::<f64>();
    println!(
        "report ingest: {} agents every {} s = {:.0} reports/s; sent {sent} in {elapsed:.1} s; \
         balancer CPU {:.1}% of one core; RSS {:.1} MB; database {db_mb:.1} MB",
        args.agents,
        args.interval_secs,
        rate,
        cpu * 100.0 / elapsed,
        memory_mb(lb.pid(), "VmRSS:"),
    );

    agent_figures(&base, dir.path(), args.agent_seconds).await?;
    drop(lb);
    Ok(())
}

/// Sends reports at `rate` per second for `seconds`, each agent in turn; returns how many
/// were accepted.
async fn send_reports(base: &str, agents: Arc<Vec<Enrolled>>, rate: f64, seconds: f64) -> usize {
    let total = (rate * seconds) as usize;
    let start = Instant::now();
    let body = serde_json::to_vec(&Report {
        cpu_percent: 35.0,
        load: [1.0, 0.8, 0.7],
        memory_used: 6 << 30,
        memory_total: 16 << 30,
        disks: vec![Disk {
            mount: "/".into(),
            used: 40 << 30,
            total: 100 << 30,
        }],
        net_in: 2e6,
        net_out: 8e6,
        bbb: Ok(BbbCounts {
            meetings: 4,
            users: 60,
            voice: 20,
            listeners: 30,
            video: 10,
            version: "2.7".into(),
        }),
        interval_secs: 10.0,
    })
    .unwrap_or_default();
    let body = Arc::new(body);
    futures_util::stream::iter(0..total)
        .map(|i| {
            let (agents, body, base) = (agents.clone(), body.clone(), base.to_owned());
            async move {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let agent = &agents[i % agents.len()];
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64)
                    + i as i64; // strictly increasing per agent
                let signature = report::sign(agent.key.as_bytes(), agent.node, at, &body);
                http()
                    .post(format!("{base}{}", report::REPORT_PATH))
                    .header(report::NODE_HEADER, agent.node.to_string())
                    .header(report::TIMESTAMP_HEADER, at.to_string())
                    .header(report::SIGNATURE_HEADER, signature)
                    .body(body.to_vec())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(64)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// A real agent reporting a simulated node to the balancer every 10 s.
async fn agent_figures(base: &str, dir: &std::path::Path, seconds: f64) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let node = format!("http://{}/bigbluebutton/api", listener.local_addr()?);
    let config = SimConfig {
        secret: "sim-secret".into(),
        ..SimConfig::default()
    };
    tokio::spawn(sim::serve(listener, config, std::future::pending()));
    let agent_config = dir.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "[balancer]\nurl = {base:?}\nenrolment_token = {TOKEN:?}\n[node]\nname = \"measured\"\n\
             api_url = {node:?}\nsecret = \"sim-secret\"\n[report]\ninterval_secs = 10\nstate_file = {:?}\n",
            dir.join("agent-state.json").display().to_string()
        ),
    )?;
    let args = ["--config", &agent_config.display().to_string(), "run"].map(String::from);
    let agent = Process::spawn("conflux-agent", &args, dir, &[]);
    tokio::time::sleep(Duration::from_secs(2)).await; // enrolled, first report sent
    let before = cpu_seconds(agent.pid());
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let cpu = cpu_seconds(agent.pid()) - before;
    println!(
        "agent (10 s interval, {seconds:.0} s): CPU {:.3}% of one core; RSS {:.1} MB (peak {:.1} MB); binary {:.1} MB",
        cpu * 100.0 / started.elapsed().as_secs_f64(),
        memory_mb(agent.pid(), "VmRSS:"),
        memory_mb(agent.pid(), "VmHWM:"),
        std::fs::metadata(binary("conflux-agent"))?.len() as f64 / 1e6,
    );
    Ok(())
}

fn geoip_figures(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
        .collect();
    files.sort();
    let geo = conflux_geoip::GeoIp::open(&files)?;
    let mut times = Vec::with_capacity(100_000);
    let mut found = 0;
    let mut x: u32 = 0x1234_5678;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let t = Instant::now();
        found += usize::from(geo.locate(std::net::Ipv4Addr::from(x).into()).is_some());
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "geoip: {} ; 100000 random IPv4 lookups: p50 {:.1} µs, p99 {:.1} µs, {found} located; 8.8.8.8 = {:?}",
        geo.describe().join(", "),
        times[50_000].as_secs_f64() * 1e6,
        times[99_000].as_secs_f64() * 1e6,
        geo.locate("8.8.8.8".parse()?),
    );
    Ok(())
}
