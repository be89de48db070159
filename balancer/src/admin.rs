//! The admin commands (`serve`, `servers`, `meetings`, `integrations`, `users`, `tokens`,
//! `poll`): the meaning of
//! Scalelite's rake tasks. They open the same SQLite store as `serve` (WAL lets both run at
//! once). Bad input is a [`UsageError`] (exit 2) and changes nothing.

pub(crate) mod integrations;
mod meetings;
pub(crate) mod servers;
mod sync;
mod users;

use std::sync::Arc;

use anyhow::Context;

use crate::cli::Command;
use crate::config::Config;
use crate::state::AppState;
use conflux_store::StoreError;

/// Bad input from the operator: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<crate::ops::Invalid> for UsageError {
    fn from(e: crate::ops::Invalid) -> Self {
        UsageError(e.0)
    }
}

pub fn run(config: Config, command: Command) -> anyhow::Result<()> {
    // Single-threaded: `serve` adds one more single-threaded runtime per further core. Store
    // writes serialize on one connection and heavy reads are few, so a few blocking threads
    // (each runtime's own) are enough.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()?;
    let data_dir = config.data_dir.clone();
    let state = AppState::open(config)
        .with_context(|| format!("while starting with data dir {}", data_dir.display()))?;
    let audited = describe(&command);
    runtime.block_on(async move {
        let result = match command {
            Command::Serve { listen } => serve(state.clone(), listen).await,
            Command::Servers(c) => servers::run(&state, c).await,
            Command::Meetings(c) => meetings::run(&state, c).await,
            Command::Integrations(c) => integrations::run(&state, c).await,
            Command::Users(c) => users::run(&state, c),
            Command::Tokens(c) => users::tokens(&state, c),
            Command::Poll => {
                crate::poller::poll_all(&state, true).await;
                servers::status(&state)
            }
            Command::Demo { .. } => Err(UsageError("demo is not an admin command".into()).into()),
        };
        if let (Ok(()), Some(what)) = (&result, audited) {
            let (action, detail) = what;
            if let Err(e) = state
                .store
                .blocking(|c| conflux_store::users::audit(c, "cli", &action, &detail))
            {
                tracing::warn!(error = %e, "Could not record the change in the audit log.");
            }
        }
        result
    })
}

/// What a changing command goes into the audit log as (action, detail), never with a secret;
/// `None` for reads. (`users` and `tokens` record themselves.)
fn describe(command: &Command) -> Option<(String, String)> {
    use crate::cli::{IntegrationsCommand as I, MeetingsCommand as M, ServersCommand as S};
    let entry = |action: &str, detail: &str| Some((action.to_owned(), detail.to_owned()));
    match command {
        Command::Servers(c) => match c {
            S::Add(a) => entry("servers add", &a.url),
            S::Remove { server } => entry("servers remove", server),
            S::Enable { server } => entry("servers enable", server),
            S::Disable { server, .. } => entry("servers disable", server),
            S::Cordon { server } => entry("servers cordon", server),
            S::Panic { server, .. } => entry("servers panic", server),
            S::Update(u) => entry("servers update", &u.server),
            S::Force { server, mode } => entry("servers force", &format!("{server} {mode:?}")),
            S::Sync {
                file,
                mode,
                dry_run: false,
            } => entry("servers sync", &format!("{file} ({mode:?})")),
            _ => None,
        },
        Command::Meetings(M::End { meeting_id }) => entry("meetings end", meeting_id),
        Command::Integrations(c) => match c {
            I::Add { name, .. } => entry("integrations add", name),
            I::Remove { integration } => entry("integrations remove", integration),
            I::Rotate { integration, .. } => entry("integrations rotate", integration),
            I::Update(u) => entry("integrations update", &u.integration),
            I::List => None,
        },
        _ => None,
    }
}

async fn serve(state: Arc<AppState>, listen: Option<String>) -> anyhow::Result<()> {
    let addr = listen.unwrap_or_else(|| state.config.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
    #[allow(clippy::print_stdout)] // the one stdout line tests and scripts parse
    {
        println!("listening on http://{}", listener.local_addr()?);
    }
    tracing::info!(addr = %listener.local_addr()?, store = %state.store.path().display(), "Balancer serving.");
    crate::serve(listener, state, conflux_shared::process::shutdown_signal()).await
}

/// Turns "not found" and "conflict" from the store into usage errors (exit 2).
fn usage(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound(what) => UsageError(format!("no such {what}")).into(),
        StoreError::Conflict(why) => UsageError(why).into(),
        other => other.into(),
    }
}
