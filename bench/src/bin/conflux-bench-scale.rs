//! `conflux-bench-scale`: the state of a national network. Fills a store directly with
//! `--nodes` nodes and `--meetings` meetings (one integration, `big`, owning `--big` of them),
//! serves every node from one fake BBB server in this process (`/n<i>/bigbluebutton/api/...`:
//! getMeetings with `--users` attendees a meeting, getMeetingInfo, the index), starts the real
//! release `conflux-balancer` on the store, and prints: how long it took to answer with every
//! meeting routed; its CPU per poll round of every node (and as a share of one core at a 60 s
//! interval); its RSS per meeting; placement among that many nodes (in process, before the
//! balancer starts); getMeetings of the big integration; a join storm. A benchmark: it prints figures and asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conflux_balancer::placement::Policy;
use conflux_bench::procfs::{cpu_seconds, memory_mb};
use conflux_shared::response::{Attendee, Body, Meeting};
use conflux_shared::{Algorithm, Response, Secret};
use conflux_store::{Audit, NewMeeting, NewNode, NodeChange, NodeState};
use conflux_tests::harness::{bench_config, serve_balancer, BbbClient};
use futures_util::StreamExt;
use warp::Filter;

const SECRET: &str = "bench-scale-secret";
const BIG_SECRET: &str = "bench-scale-big-secret";

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    #[arg(long, default_value_t = 100_000)]
    meetings: usize,
    /// Attendees of each meeting (10 × 100,000 meetings = 1,000,000 users).
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Meetings of the `big` integration, whose getMeetings is timed.
    #[arg(long, default_value_t = 10_000)]
    big: usize,
    /// The balancer's poll interval while its CPU per round is measured (seconds).
    #[arg(long, default_value_t = 20)]
    poll_secs: u64,
    /// Poll rounds measured.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Joins sent, spread over `--join-secs`.
    #[arg(long, default_value_t = 4000)]
    joins: usize,
    #[arg(long, default_value_t = 60)]
    join_secs: u64,
}

/// The meetings of node `node`: every `nodes`-th meeting id.
fn meetings_of(node: usize, args: &Args) -> impl Iterator<Item = usize> + '_ {
    (node..args.meetings).step_by(args.nodes)
}

fn meeting(id: usize, users: usize) -> Meeting {
    Meeting {
        meeting_name: format!("Room {id}"),
        meeting_id: format!("m{id}"),
        internal_meeting_id: format!("{id:040x}-1700000000000"),
        create_time: 1_700_000_000_000,
        voice_bridge: format!("{}", 70_000 + id % 29_999),
        running: true,
        has_user_joined: true,
        start_time: 1_700_000_000_000,
        participant_count: u32::try_from(users).unwrap_or(u32::MAX),
        moderator_count: 1,
        attendees: (0..users)
            .map(|u| Attendee {
                user_id: format!("w_{id}_{u}"),
                full_name: format!("User {u}"),
                role: if u == 0 { "MODERATOR" } else { "VIEWER" }.into(),
                is_listening_only: u % 2 == 1,
                client_type: "HTML5".into(),
                ..Attendee::default()
            })
            .collect(),
        ..Meeting::default()
    }
}

/// One server answering for every node (`/n<i>/bigbluebutton/api[/CALL]`); checksums are
/// not checked.
async fn fake_nodes(args: Arc<Args>) -> anyhow::Result<String> {
    let answer = warp::get()
        .and(warp::path!(String / "bigbluebutton" / "api" / String))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |node: String, call: String, query: String| {
            let node: usize = node.trim_start_matches('n').parse().unwrap_or(0);
            let response = match call.as_str() {
                "getMeetings" => Response::success(Body::Meetings(
                    meetings_of(node, &args)
                        .map(|id| meeting(id, args.users))
                        .collect(),
                )),
                "getMeetingInfo" | "isMeetingRunning" => {
                    let id = conflux_shared::Query::parse(&query)
                        .ok()
                        .and_then(|q| {
                            q.get("meetingID")
                                .map(|m| m.trim_start_matches('m').to_owned())
                        })
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    Response::success(Body::Meeting(Box::new(meeting(id, args.users))))
                }
                _ => Response::fields(&[("version", "2.0")]),
            };
            response.to_xml()
        });
    let index = warp::get()
        .and(warp::path!(String / "bigbluebutton" / "api"))
        .map(|_| Response::fields(&[("version", "2.0"), ("apiVersion", "2.0")]).to_xml());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(warp::serve(answer.or(index)).incoming(listener).run());
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let nodes_url = fake_nodes(args.clone()).await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let filled = Instant::now();
    let (store, bench) = conflux_bench::bench_store(&data, SECRET).await?;
    let big = store
        .change_integration(
            vec![conflux_store::IntegrationChange::Add(
                conflux_store::NewIntegration {
                    name: "big".into(),
                    secret: Secret(BIG_SECRET.into()),
                },
            )],
            Audit::new("bench", "integrations add", "big"),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no integration"))?
        .id;
    let added = store
        .change_nodes(
            (0..args.nodes)
                .map(|i| {
                    NodeChange::Add(NewNode {
                        name: format!("n{i}"),
                        url: format!("{nodes_url}/n{i}/bigbluebutton/api"),
                        given_url: None,
                        secret: Secret("node-secret".into()),
                        load_multiplier: 1.0,
                        tags: Vec::new(),
                        state: NodeState::Enabled,
                    })
                })
                .collect(),
            Audit::new("bench", "servers add", "scale"),
        )
        .await?;
    let ids: Vec<_> = added
        .iter()
        .filter_map(|a| a.node.as_ref().map(|n| n.id))
        .collect();
    let meetings = (0..args.meetings)
        .map(|m| NewMeeting {
            meeting_id: format!("m{m}"),
            integration_id: if m < args.big { big } else { bench },
            node_id: ids[m % args.nodes],
            name: format!("Room {m}"),
            client_ip: None,
            placement_reason: "bench".into(),
            logout_url: None,
        })
        .collect();
    store.add_meetings(meetings).await?;
    drop(store);
    println!(
        "store: {} nodes, {} meetings ({} users) in {:.1} s",
        args.nodes,
        args.meetings,
        args.meetings * args.users,
        filled.elapsed().as_secs_f64()
    );

    // Before the balancer runs: the machine is quiet.
    println!(
        "placement among {} nodes: scalelite {}; geo {}",
        args.nodes,
        conflux_bench::placement_figures(args.nodes, Policy::Scalelite),
        conflux_bench::placement_figures(args.nodes, Policy::Geo)
    );
    let config = bench_config(
        dir.path(),
        &format!(
            "[poller]\ninterval_secs = {}\nunhealthy_threshold = 100\n",
            args.poll_secs
        ),
    );
    let started = Instant::now();
    let (balancer, addr) = serve_balancer(&config, dir.path());
    let pid = balancer.pid();
    let base = format!("http://{addr}");
    let big_client = Arc::new(BbbClient::new(&base, BIG_SECRET, Algorithm::Sha256));
    let last = format!("m{}", args.big - 1);
    loop {
        let r = big_client
            .call("getMeetingInfo", &[("meetingID", &last)])
            .await;
        if r.is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "restart: serving with {} meetings routed after {:.2} s",
        args.meetings,
        started.elapsed().as_secs_f64()
    );

    // Poll rounds: the first one stores every meeting's <meeting>; then the steady ones.
    let cpu_at_start = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(args.poll_secs)).await;
    let first = cpu_seconds(pid) - cpu_at_start;
    let steady_start = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(args.poll_secs * args.rounds)).await;
    let per_round = (cpu_seconds(pid) - steady_start) / args.rounds as f64;
    let (rss, anon) = (memory_mb(pid, "VmRSS:"), memory_mb(pid, "RssAnon:"));
    println!(
        "poll: first round {first:.2} s of CPU; then {per_round:.2} s a round of {} nodes = {:.1}% of one core at a 60 s interval ({:.1}% at {} s)",
        args.nodes,
        per_round / 60.0 * 100.0,
        per_round / args.poll_secs as f64 * 100.0,
        args.poll_secs
    );
    println!(
        "memory: RSS {rss:.1} MB after the rounds = {:.2} kB a meeting ({anon:.1} MB of it the process's own, {:.2} kB a meeting; the rest the database's pages, mapped)",
        rss * 1024.0 / args.meetings as f64,
        anon * 1024.0 / args.meetings as f64
    );

    // Timed twice: until the answer's head arrives (the balancer's work) and until its last
    // byte is read (the transfer of tens of MB over loopback, to a client on the same cores).
    let url = big_client.url("getMeetings", &[]);
    let http = reqwest::Client::new();
    // The first call builds the answer from the store; the next ones find it built until the
    // integration's meetings change.
    let cold = Instant::now();
    let first = http.get(&url).send().await?;
    let cold_head = cold.elapsed();
    first.bytes().await?;
    println!(
        "getMeetings, first call (built from the store): head after {:.1} ms, whole answer after {:.1} ms",
        cold_head.as_secs_f64() * 1e3,
        cold.elapsed().as_secs_f64() * 1e3
    );
    for (accept, form) in [("identity", "plain"), ("gzip", "gzipped")] {
        if accept == "gzip" {
            // The first gzip call compresses the cached answer once.
            let cold = Instant::now();
            let first = http
                .get(&url)
                .header("accept-encoding", accept)
                .send()
                .await?;
            first.bytes().await?;
            println!(
                "getMeetings, first gzip call (compressed once): whole answer after {:.1} ms",
                cold.elapsed().as_secs_f64() * 1e3
            );
        }
        let heads = std::sync::Mutex::new(Vec::new());
        let times = timed(200, 8, || {
            let (http, url, heads) = (http.clone(), url.clone(), &heads);
            async move {
                let started = Instant::now();
                let answer = http
                    .get(&url)
                    .header("accept-encoding", accept)
                    .send()
                    .await
                    .expect("getMeetings answered");
                heads.lock().unwrap().push(started.elapsed());
                answer.bytes().await.map_or(0, |b| b.len())
            }
        })
        .await;
        let size = times.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let (p50, p99) = conflux_bench::percentiles(times.iter().map(|(t, _)| *t).collect());
        let (h50, h99) = conflux_bench::percentiles(heads.into_inner().unwrap());
        println!(
            "getMeetings of {} meetings, {form} ({:.1} MB), 8 clients: answer head p50 {h50:.2} ms, p99 {h99:.2} ms; whole answer p50 {p50:.2} ms, p99 {p99:.2} ms",
            args.big,
            size as f64 / 1e6
        );
    }

    if args.joins == 0 {
        return Ok(());
    }
    // A join storm: `joins` over `join_secs`, each on a meeting of its own.
    let client = Arc::new(BbbClient::new(&base, SECRET, Algorithm::Sha256));
    let gap = Duration::from_secs_f64(args.join_secs as f64 / args.joins as f64);
    let storm_start = Instant::now();
    let cpu_before = cpu_seconds(pid);
    let handles: Vec<_> = (0..args.joins)
        .map(|i| {
            let client = client.clone();
            let meeting = format!("m{}", args.big + i % (args.meetings - args.big));
            let at = storm_start + gap * u32::try_from(i).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let url = client.url(
                    "join",
                    &[
                        ("meetingID", &meeting),
                        ("fullName", "Ann"),
                        ("role", "VIEWER"),
                    ],
                );
                let started = Instant::now();
                let answer = client.get(&url).await;
                (started.elapsed(), answer.status == 302)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for h in handles {
        let (t, ok) = h.await?;
        latencies.push(t);
        failed += usize::from(!ok);
    }
    let (p50, p99) = conflux_bench::percentiles(latencies);
    println!(
        "join storm: {} joins in {:.1} s, {failed} failed, p50 {p50:.2} ms, p99 {p99:.2} ms; balancer CPU {:.2} s",
        args.joins,
        storm_start.elapsed().as_secs_f64(),
        cpu_seconds(pid) - cpu_before
    );
    Ok(())
}

async fn timed<F, Fut>(calls: usize, concurrency: usize, call: F) -> Vec<(Duration, usize)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    futures_util::stream::iter(0..calls)
        .map(|_| {
            let fut = call();
            async move {
                let started = Instant::now();
                let n = fut.await;
                (started.elapsed(), n)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}
