//! `conflux-bench-recordings`: getRecordings over a large index. Fills a balancer store with N
//! recordings of one integration (as recorders report them: published, metadata, one playback
//! format), starts the real `conflux-balancer` on it and times getRecordings calls from a few
//! concurrent clients: unfiltered pages (BBB 2.7's limit=100, first and deep), by meetingID, by
//! recordID prefix and by metadata. Prints p50/p99 per query. A benchmark: it asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::time::{Duration, Instant};

use clap::Parser;
use conflux_shared::response::{PlaybackFormat, Recording};
use conflux_shared::Algorithm;
use conflux_store::recordings::RecordingRecord;
use conflux_tests::harness::{bench_config, serve_balancer, BbbClient};
use futures_util::StreamExt;

const SECRET: &str = "bench-recordings-secret";

#[derive(Parser)]
struct Args {
    /// Recordings in the index.
    #[arg(long, default_value_t = 100_000)]
    recordings: usize,
    /// Calls per query.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Concurrent clients (getRecordings reads run on the store's read-only connections, side
    /// by side on the two cores).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let filled = Instant::now();
    fill(&data, args.recordings).await?;
    println!(
        "indexed {} recordings in {:.1} s",
        args.recordings,
        filled.elapsed().as_secs_f64()
    );
    let config = bench_config(dir.path(), "");
    let (_balancer, addr) = serve_balancer(&config, dir.path());
    let client = BbbClient::new(&format!("http://{addr}"), SECRET, Algorithm::Sha256);
    let deep = (args.recordings / 2).to_string();
    let queries: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("unfiltered, limit=100", vec![("limit", "100".into())]),
        (
            "unfiltered, offset=N/2, limit=100",
            vec![("limit", "100".into()), ("offset", deep)],
        ),
        ("meetingID", vec![("meetingID", "meeting-4242".into())]),
        ("recordID prefix", vec![("recordID", "rec-0004242".into())]),
        (
            "meta_course, limit=100",
            vec![("meta_course", "course-7".into()), ("limit", "100".into())],
        ),
    ];
    // Warm-up: the store opens its read-only connections (kept afterwards) on the first
    // concurrent calls; each query then times the steady state.
    let warm = client.url("getRecordings", &[("limit", "100")]);
    futures_util::stream::iter(0..args.concurrency * 4)
        .map(|_| client.get(&warm))
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    println!(
        "{:<36} {:>9} {:>9} {:>8}",
        "getRecordings", "p50 ms", "p99 ms", "results"
    );
    for (label, params) in queries {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = client.url("getRecordings", &params);
        let first = client.get(&url).await;
        let results = first.body.matches("<recording>").count();
        let times: Vec<Duration> = futures_util::stream::iter(0..args.calls)
            .map(|_| {
                let (client, url) = (&client, &url);
                async move {
                    let started = Instant::now();
                    let answer = client.get(url).await;
                    assert_eq!(answer.status, 200);
                    started.elapsed()
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let (p50, p99) = conflux_bench::percentiles(times);
        println!("{label:<36} {p50:>9.2} {p99:>9.2} {results:>8}");
    }
    Ok(())
}

/// N recordings of one integration, in one transaction.
async fn fill(data: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let (store, integration) = conflux_bench::bench_store(data, SECRET).await?;
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let record_id = format!("rec-{i:07}-{}", 1_700_000_000_000u64 + i as u64);
        let recording = Recording {
            record_id: record_id.clone(),
            meeting_id: format!("meeting-{}", i / 3),
            internal_meeting_id: record_id.clone(),
            name: format!("Lecture {i}"),
            published: true,
            state: "published".into(),
            start_time: 1_700_000_000_000 + i as u64 * 1000,
            end_time: 1_700_000_000_000 + i as u64 * 1000 + 3_600_000,
            participants: 12,
            metadata: vec![
                ("course".into(), format!("course-{}", i % 1000)),
                ("bbb-origin".into(), "Moodle".into()),
            ],
            playback: vec![PlaybackFormat {
                format_type: "presentation".into(),
                url: format!("https://rec.example.org/playback/presentation/{record_id}/"),
                length: 60,
                ..PlaybackFormat::default()
            }],
            ..Recording::default()
        };
        records.push((
            RecordingRecord {
                record_id,
                integration_id: integration,
                node_id: None,
                meeting_id: recording.meeting_id.clone(),
                state: recording.state.clone(),
                xml: recording.to_element().to_xml(),
                archive: None,
                protected: false,
            },
            recording.start_time,
            recording.end_time,
        ));
    }
    store.upsert_recordings(records).await?;
    Ok(())
}
