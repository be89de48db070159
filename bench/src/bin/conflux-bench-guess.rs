//! `conflux-bench-guess`: online guessing of the 5-character mobile salt against the real
//! release `conflux-balancer` with its default limits. One client guesses as fast as it can
//! while honest clients behind one NAT address (many users, one IP) call the API, all at once;
//! prints how many guesses were actually checked, the time all 16^5 salts would take at that
//! rate, and what the honest clients got. A benchmark: it asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conflux_shared::{checksum, Algorithm};
use conflux_tests::harness::{bench_config, http, serve_balancer, BbbClient};

const SECRET: &str = "bench-guess-secret-0123456789";

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent honest clients behind the NAT address.
    #[arg(long, default_value_t = 16)]
    honest: usize,
    /// Concurrent guessers (one address).
    #[arg(long, default_value_t = 16)]
    guessers: usize,
}

#[derive(Default)]
struct Counts {
    checked: AtomicUsize,
    refused: AtomicUsize,
    honest_ok: AtomicUsize,
    honest_refused: AtomicUsize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = bench_config(
        dir.path(),
        &format!("[default_integration]\nsecret = {SECRET:?}\n"),
    );
    let (_lb, addr) = serve_balancer(&config, dir.path());
    let base = format!("http://{addr}");
    let counts = Arc::new(Counts::default());
    let client = http();
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for g in 0..args.guessers {
        let (base, counts, client) = (base.clone(), counts.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = g;
            while Instant::now() < until {
                let salt = format!("{:05x}", n % 0x10_0000);
                n += 16;
                let query = "action=getTimestamp";
                let sum = checksum::compute(Algorithm::Sha1, "", query, &salt);
                let url = format!("{base}/bigbluebutton/demo/mobile.jsp?{query}&checksum={sum}");
                let text = answer(&client, &url, "198.51.100.7").await;
                if text.contains("tooManyFailures") {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.checked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let bbb = Arc::new(BbbClient::new(&base, SECRET, Algorithm::Sha256));
    for _ in 0..args.honest {
        let (bbb, counts, client) = (bbb.clone(), counts.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let url = bbb.url("getMeetings", &[]);
                let text = answer(&client, &url, "203.0.113.50").await;
                if text.contains("<returncode>SUCCESS</returncode>") || text.contains("noMeetings")
                {
                    counts.honest_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.honest_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let seconds = args.seconds;
    let checked = counts.checked.load(Ordering::Relaxed);
    let refused = counts.refused.load(Ordering::Relaxed);
    // After the burst, checked guesses come at the refill rate (30 an hour by default).
    let refill_per_hour = 30.0;
    let space = f64::from(0x10_0000);
    println!(
        "guesser (one address): {} requests in {seconds:.0} s ({:.0}/s), {checked} checked, {refused} refused unchecked",
        checked + refused,
        (checked + refused) as f64 / seconds
    );
    println!(
        "at the limit ({refill_per_hour:.0} checked an hour): all 16^5 salts take {:.0} days, half of them {:.0} days",
        space / refill_per_hour / 24.0,
        space / 2.0 / refill_per_hour / 24.0
    );
    let ok = counts.honest_ok.load(Ordering::Relaxed);
    println!(
        "honest clients behind one NAT address: {ok} answered ({:.0}/s), {} refused",
        ok as f64 / seconds,
        counts.honest_refused.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn answer(http: &reqwest::Client, url: &str, client: &str) -> String {
    match http.get(url).header("x-forwarded-for", client).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
