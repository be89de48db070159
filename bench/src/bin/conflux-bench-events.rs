//! `conflux-bench-events`: getMeetingEvents when one meeting ID is reused many times (one room
//! = one ID, as Moodle and Greenlight do). Fills a balancer store with N runs of the same
//! meeting (create, joins, end) beside other meetings, starts the real `conflux-balancer` on
//! it, and prints p50/p99 of getMeetingEvents (default and `limit=100`, first page and a deep
//! `offset`) and the balancer's RSS before and after. A benchmark: it asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::time::Instant;

use clap::Parser;
use conflux_bench::procfs;
use conflux_shared::Algorithm;
use conflux_store::{EventKind, NewEvent};
use conflux_tests::harness::{bench_config, serve_balancer, BbbClient};
use serde_json::json;

const SECRET: &str = "bench-events-secret";

#[derive(Parser)]
struct Args {
    /// Runs of the reused meeting ID.
    #[arg(long, default_value_t = 10_000)]
    reuses: usize,
    /// Users joining each run.
    #[arg(long, default_value_t = 5)]
    users: usize,
    /// Calls per query.
    #[arg(long, default_value_t = 200)]
    calls: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let filled = Instant::now();
    fill(&data, &args).await?;
    println!(
        "logged {} runs of one meeting ID ({} users each) in {:.1} s",
        args.reuses,
        args.users,
        filled.elapsed().as_secs_f64()
    );
    let config = bench_config(dir.path(), "");
    let (balancer, addr) = serve_balancer(&config, dir.path());
    let client = BbbClient::new(&format!("http://{addr}"), SECRET, Algorithm::Sha256);
    let rss = || procfs::memory_mb(balancer.pid(), "VmRSS:");
    let before = rss();
    let deep = (args.reuses / 2).to_string();
    let queries: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("default (limit=50)", vec![]),
        ("limit=100", vec![("limit", "100")]),
        (
            "limit=100, offset=N/2",
            vec![("limit", "100"), ("offset", &deep)],
        ),
        ("users=4, limit=100", vec![("users", "4"), ("limit", "100")]),
    ];
    println!(
        "{:<28} {:>9} {:>9} {:>8} {:>9}",
        "getMeetingEvents", "p50 ms", "p99 ms", "events", "RSS MB"
    );
    for (label, params) in queries {
        let url = client.url("getMeetingEvents", &params);
        let events = client.get(&url).await.body.matches("<event>").count();
        let mut times = Vec::with_capacity(args.calls);
        for _ in 0..args.calls {
            let started = Instant::now();
            let answer = client.get(&url).await;
            assert_eq!(answer.status, 200);
            times.push(started.elapsed());
        }
        let (p50, p99) = conflux_bench::percentiles(times);
        println!(
            "{label:<28} {p50:>9.2} {p99:>9.2} {events:>8} {:>9.1}",
            rss()
        );
    }
    println!(
        "balancer RSS: {before:.1} MB before the calls, {:.1} MB after (peak {:.1} MB)",
        rss(),
        procfs::memory_mb(balancer.pid(), "VmHWM:")
    );
    Ok(())
}

/// `reuses` runs of meeting `room` (create, joins, end) and as many other meetings, in one
/// transaction, as the API logs them.
async fn fill(data: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let (store, integration) = conflux_bench::bench_store(data, SECRET).await?;
    let mut events = Vec::new();
    let mut log = |kind, meeting: &str, data: serde_json::Value| {
        events.push(NewEvent {
            kind,
            integration: Some(integration),
            meeting_id: Some(meeting.to_owned()),
            node: None,
            data,
        })
    };
    for run in 0..args.reuses {
        for meeting in ["room", &format!("other-{run}")] {
            let query = json!({ "meetingID": meeting, "name": "Weekly room", "record": "false" });
            log(
                EventKind::MeetingCreated,
                meeting,
                json!({ "name": "Weekly room", "query": query }),
            );
            for user in 0..args.users {
                log(
                    EventKind::UserJoined,
                    meeting,
                    json!({ "fullName": format!("User {user}"), "role": "attendee" }),
                );
            }
            log(EventKind::MeetingEnded, meeting, json!({}));
        }
    }
    store.log_events(events).await?;
    Ok(())
}
