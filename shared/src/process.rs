//! What every binary's process needs at its edges and nothing else does: the shutdown signal.
//! Behind the `process` feature, so the protocol core stays free of an async runtime.

/// Resolves on SIGTERM or Ctrl-C (only Ctrl-C if SIGTERM cannot be watched).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            ctrl_c.await.ok();
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
