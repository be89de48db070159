//! Logging set-up shared by the binaries: `tracing_subscriber::fmt` filtered by `RUST_LOG`.
//!
//! This is the crate's one side effect; libraries only emit events. Logs go to stderr so that
//! stdout stays free for the lines tests and operators parse (`listening on ...`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: lifecycle at INFO; warp's per-connection errors (a
/// client hanging up mid-request) are not an operator's business.
pub const DEFAULT_FILTER: &str = "info,warp::server=off";

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset
/// (for example `"info"`). Calling it twice is harmless.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
