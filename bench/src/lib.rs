//! Support for the bench binaries in `src/bin/`: each starts real processes through the test
//! harness (`conflux-tests`) and prints its figures. `procfs` reads CPU time and memory.
//!
//! This is the only crate beside the balancer itself that links the balancer's library (for
//! placement timing and for filling a store directly); the simulator and the end-to-end tests
//! do not, so they build in parallel with it.

pub mod procfs;

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
