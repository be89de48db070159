//! `conflux-bench-soak`: the balancer's memory under a long join load. Starts a real release
//! `conflux-balancer` in front of simulated nodes served in this process, creates meetings,
//! then sends joins (redirects, as browsers get them) from C concurrent clients for the whole
//! run, as fast as the machine allows, and prints the balancer's RSS every interval. After the
//! warm-up, RSS should stay within ±10% of its mean: the last line says how far it moved. A
//! benchmark: it asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conflux_bench::procfs::{cpu_seconds, memory_mb};
use conflux_shared::Algorithm;
use conflux_tests::harness::{bench_config, binary, serve_balancer, BbbClient};
use conflux_tests::sim::{self, SimConfig};

#[derive(Parser)]
struct Args {
    /// Length of the run.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Not counted in the verdict.
    #[arg(long, default_value_t = 2.0)]
    warmup_minutes: f64,
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    #[arg(long, default_value_t = 500)]
    meetings: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 30.0)]
    every: f64,
}

const SECRET: &str = "bench-soak-secret";
const NODE_SECRET: &str = "bench-soak-node-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = bench_config(
        dir.path(),
        &format!("[poller]\ninterval_secs = 10\n[default_integration]\nsecret = {SECRET:?}\n"),
    );
    for i in 0..args.nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let sim_config = SimConfig {
            secret: NODE_SECRET.into(),
            name: format!("sim{i}"),
            ..SimConfig::default()
        };
        tokio::spawn(sim::serve(listener, sim_config, std::future::pending()));
        let out = std::process::Command::new(binary("conflux-balancer"))
            .arg("--config")
            .arg(&config)
            .args(["servers", "add", &url, NODE_SECRET, "--enable", "--name"])
            .arg(format!("node{i}"))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "servers add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (lb, addr) = serve_balancer(&config, dir.path());
    let bbb = Arc::new(BbbClient::new(
        &format!("http://{addr}"),
        SECRET,
        Algorithm::Sha256,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..args.meetings {
        let id = format!("soak-{i}");
        bbb.call("create", &[("meetingID", &id), ("name", "Soak room")])
            .await;
    }
    // Nodes end meetings nobody joined (the joins are redirects the bench does not follow), as
    // BBB does: the meetings are created again as a front-end would.
    {
        let bbb = bbb.clone();
        let meetings = args.meetings;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                for i in 0..meetings {
                    let id = format!("soak-{i}");
                    bbb.call("create", &[("meetingID", &id), ("name", "Soak room")])
                        .await;
                }
            }
        });
    }
    let joins = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.minutes * 60.0);
    for worker in 0..args.concurrency {
        let (bbb, joins, failures) = (bbb.clone(), joins.clone(), failures.clone());
        let meetings = args.meetings;
        tokio::spawn(async move {
            let mut n = worker;
            while Instant::now() < until {
                let id = format!("soak-{}", n % meetings);
                let name = format!("User {n}");
                let url = bbb.url(
                    "join",
                    &[("meetingID", &id), ("fullName", &name), ("role", "VIEWER")],
                );
                if bbb.get(&url).await.status == 302 {
                    joins.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                n += 31;
            }
        });
    }
    println!(
        "{:>7} {:>10} {:>8} {:>9} {:>9} {:>9}",
        "minute", "joins", "join/s", "failed", "RSS MB", "CPU s"
    );
    let mut samples = Vec::new();
    let mut last = (Instant::now(), 0usize);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs_f64(args.every)).await;
        let done = joins.load(Ordering::Relaxed);
        let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), done);
        let minute = started.elapsed().as_secs_f64() / 60.0;
        let rss = memory_mb(lb.pid(), "VmRSS:");
        println!(
            "{minute:>7.1} {done:>10} {rate:>8.0} {:>9} {rss:>9.1} {:>9.1}",
            failures.load(Ordering::Relaxed),
            cpu_seconds(lb.pid())
        );
        if minute >= args.warmup_minutes {
            samples.push(rss);
        }
    }
    let total = joins.load(Ordering::Relaxed);
    if samples.is_empty() {
        println!("{total} joins; the run ended before the warm-up did");
        return Ok(());
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let (min, max) = samples
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    println!(
        "{total} joins ({} failed); after warm-up RSS {min:.1}-{max:.1} MB, mean {mean:.1} MB: \
         -{:.1}% / +{:.1}% of the mean",
        failures.load(Ordering::Relaxed),
        (mean - min) / mean * 100.0,
        (max - mean) / mean * 100.0
    );
    Ok(())
}
