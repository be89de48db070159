//! The admin commands (`serve`, `servers`, `meetings`, `integrations`, `users`, `tokens`,
//! `poll`): the meaning of Scalelite's rake tasks, printed for a terminal. They open the same
//! store as `serve` (WAL lets both run at once) and change it through `ops`, audited as `cli`.
//! Bad input is a [`UsageError`] (exit 2) and changes nothing.

pub(crate) mod integrations;
mod meetings;
pub(crate) mod servers;
mod sync;
mod users;

use std::sync::Arc;

use crate::cli::Command;
use crate::config::Config;
use crate::ops::OpError;
use crate::state::AppState;

/// Bad input from the operator: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn run(config: Config, command: Command) -> anyhow::Result<()> {
    // Single-threaded: `serve` adds one more single-threaded runtime per further core. Store
    // writes serialize on one connection and heavy reads are few, so a few blocking threads
    // (each runtime's own) are enough.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()?;
    let store = match config.store_url {
        Some(_) => "the PostgreSQL store (store.url)".to_owned(),
        None => format!("data dir {}", config.data_dir.display()),
    };
    let file = conflux_store::Store::sqlite_file(&config.data_dir);
    if config.store_url.is_none() && command.only_reads() && !file.exists() {
        return Err(UsageError(format!(
            "there is no store at {}: nothing to show. The balancer creates it when it first \
             starts or is changed; check --data-dir, server.data_dir or --config.",
            file.display()
        ))
        .into());
    }
    let state = match AppState::open(config) {
        Ok(state) => state,
        // A database that does not answer is the operator's to fix, like bad configuration.
        Err(crate::state::OpenError::Store(conflux_store::StoreError::Unreachable(e))) => {
            return Err(UsageError(format!("while starting with {store}: {e}")).into())
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("while starting with {store}"))),
    };
    runtime.block_on(async move {
        match command {
            Command::Serve { listen } => serve(state.clone(), listen).await,
            Command::Servers(c) => servers::run(&state, c).await,
            Command::Meetings(c) => meetings::run(&state, c).await,
            Command::Integrations(c) => integrations::run(&state, c).await,
            Command::Users(c) => users::run(&state, c).await,
            Command::Tokens(c) => users::tokens(&state, c).await,
            Command::Poll => {
                crate::poller::poll_all(&state, true).await;
                servers::status(&state).await
            }
            Command::Demo { .. } | Command::Completions { .. } | Command::ManPages { .. } => {
                Err(UsageError("not an admin command".into()).into())
            }
        }
    })
}

/// The actor the CLI's changes are audited under.
const CLI: &str = "cli";

async fn serve(state: Arc<AppState>, listen: Option<String>) -> anyhow::Result<()> {
    let addr = listen.unwrap_or_else(|| state.config.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
    #[allow(clippy::print_stdout)] // the one stdout line tests and scripts parse
    {
        println!("listening on http://{}", listener.local_addr()?);
    }
    tracing::info!(addr = %listener.local_addr()?, store = %state.store.location(), "Balancer serving.");
    crate::serve(listener, state, conflux_shared::process::shutdown_signal()).await
}

/// Turns refused input, "not found" and "conflict" into usage errors (exit 2).
fn usage(e: impl Into<OpError>) -> anyhow::Error {
    match e.into() {
        OpError::Store(e) => e.into(),
        refused => UsageError(refused.to_string()).into(),
    }
}
