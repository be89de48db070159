//! Support for the bench binaries in `src/bin/`: each starts real processes through the test
//! harness (`conflux-tests`) and prints its figures. `procfs` reads CPU time and memory.
//!
//! This is the only crate beside the balancer itself that links the balancer's library (for
//! placement timing and for filling a store directly); the simulator and the end-to-end tests
//! do not, so they build in parallel with it.

pub mod procfs;

use std::time::{Duration, Instant};

use conflux_balancer::placement::{self, Candidate, Wish};
use conflux_geoip::Position;
use conflux_store::NodeId;

/// Opens (creating) a store in `data` with one integration, `bench`, signed with `secret`, as
/// the benchmarks that fill a store directly start; returns the store and the integration.
pub async fn bench_store(
    data: &std::path::Path,
    secret: &str,
) -> anyhow::Result<(conflux_store::Store, conflux_store::IntegrationId)> {
    use conflux_store::{Audit, IntegrationChange, NewIntegration, Store};
    let store = Store::open(data)?;
    let new = NewIntegration {
        name: "bench".into(),
        secret: conflux_shared::Secret(secret.into()),
    };
    let integration = store
        .change_integration(
            vec![IntegrationChange::Add(new)],
            Audit::new("bench", "integrations add", "bench"),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("the integration was not stored"))?
        .id;
    Ok((store, integration))
}

/// p50/p99 of building the candidates of `nodes` nodes and `placement::choose`, in process,
/// with the given policy (geo: nodes spread over the globe, clients in many places).
pub fn placement_figures(nodes: usize, policy: placement::Policy) -> String {
    let names: Vec<(String, String)> = (0..nodes)
        .map(|i| (format!("node{i}"), format!("node{i}.example.org")))
        .collect();
    let (gpu, untagged) = (vec!["gpu".to_owned()], Vec::new());
    let candidates: Vec<Candidate> = names
        .iter()
        .enumerate()
        .map(|(i, (name, host))| Candidate {
            id: NodeId(i as i64),
            name,
            host,
            eligible: i % 10 != 0,
            load: ((i * 7919) % 1000) as f64,
            tags: if i % 3 == 0 { &gpu } else { &untagged },
            position: Position::new(
                ((i * 37) % 160) as f64 - 80.0,
                ((i * 53) % 360) as f64 - 180.0,
            ),
            cpu: Some(((i * 13) % 100) as f64),
            users: (i % 50) as u32,
            meetings: (i % 7) as u32,
        })
        .collect();
    let rules = placement::Rules {
        policy,
        ..placement::Rules::default()
    };
    let mut times: Vec<Duration> = (0..10_000)
        .map(|i| {
            let tag = if i % 2 == 0 { Some("gpu") } else { None };
            let client = Position::new((i % 140) as f64 - 70.0, (i % 340) as f64 - 170.0);
            let t = Instant::now();
            // The create path builds the candidates from the node table each time: included.
            let snapshot = candidates.clone();
            let d = placement::choose(
                &snapshot,
                &Wish {
                    tag,
                    preferred: None,
                    client,
                },
                &rules,
            );
            std::hint::black_box(d).ok();
            t.elapsed()
        })
        .collect();
    times.sort();
    format!(
        "p50 {:.1} µs, p99 {:.1} µs",
        times[5000].as_secs_f64() * 1e6,
        times[9899].as_secs_f64() * 1e6
    )
}

/// The p50 and p99 of `times`, in milliseconds (`times` must not be empty).
pub fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}
