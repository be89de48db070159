//! Encrypted recording archives at the balancer (ARCHITECTURE.md, "Recordings"): agents hand
//! them over ([`agent`]), recording servers pull them and report back ([`recorder`]),
//! Scalelite-style tarballs from nodes without the agent are encrypted on arrival ([`spool`]),
//! and expired recordings are deleted everywhere ([`retention`]).
//!
//! Files live in `<archive_dir>/<recordID>` (`recordings.archive_dir`, by default
//! `<data_dir>/archives`) while their recorder has not confirmed them; refused ones move to
//! `<archive_dir>/.rejected/` for inspection. An archive is written under a temporary name in
//! the same folder and renamed when complete, so no reader sees a partial one; balancers
//! sharing a database share this folder (a mount), so any of them serves any archive. The
//! balancer never holds a recording in plaintext beyond the spool file it is encrypting.

pub mod agent;
pub mod recorder;
pub mod retention;
pub mod spool;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::Filter;

use crate::config::Config;
use crate::state::AppState;

pub fn dir(config: &Config) -> PathBuf {
    config
        .recordings
        .archive_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("archives"))
}

/// Where the archive of `record_id` (a checked, path-safe id) is kept.
pub fn path(config: &Config, record_id: &str) -> PathBuf {
    dir(config).join(record_id)
}

pub fn rejected_dir(config: &Config) -> PathBuf {
    dir(config).join(".rejected")
}

/// A fresh temporary name in the archives folder (same file system, so renames are atomic).
pub fn incoming(config: &Config, record_id: &str) -> PathBuf {
    dir(config).join(format!(
        ".incoming-{record_id}-{}",
        hex::encode(rand::random::<[u8; 6]>())
    ))
}

/// Removes the balancer's copy of an archive (the recorder has it, or it was deleted).
pub fn discard(config: &Config, record_id: &str) {
    remove(&path(config, record_id));
}

/// Moves a refused archive aside for inspection.
pub fn reject(config: &Config, record_id: &str) {
    let from = path(config, record_id);
    let to = rejected_dir(config).join(record_id);
    let moved =
        std::fs::create_dir_all(rejected_dir(config)).and_then(|()| std::fs::rename(&from, &to));
    match moved {
        Ok(()) => {
            tracing::warn!(record_id, kept = %to.display(), "Archive refused by its recorder; kept for inspection.")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(record_id, error = %e, "Could not keep a refused archive aside."),
    }
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "Could not remove an archive.")
        }
    }
}

/// The agents' and the recorders' recording calls.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(warp::reply::Response,)> {
    agent::routes(state.clone())
        .or(recorder::routes(state))
        .unify()
        .boxed()
}

/// Runs the spool importer and the retention sweep until shutdown.
pub async fn run(state: Arc<AppState>, mut shutdown: tokio::sync::broadcast::Receiver<()>) {
    if let Err(e) = std::fs::create_dir_all(dir(&state.config)) {
        tracing::error!(error = %e, "Cannot create the archives folder.");
    }
    let mut import = tokio::time::interval(state.config.recordings.import_interval);
    let mut sweep = tokio::time::interval(retention::EVERY);
    import.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = import.tick() => if state.singletons.held().await {
                spool::import_all(&state).await;
            },
            _ = sweep.tick() => if state.singletons.held().await {
                retention::sweep(&state).await;
            },
            _ = shutdown.recv() => break,
        }
    }
}

/// A JSON answer with a status.
pub(crate) fn json(
    status: warp::http::StatusCode,
    value: &serde_json::Value,
) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}
