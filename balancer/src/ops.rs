//! The domain layer: the operations the admin doors (the CLI, the admin pages and their JSON
//! API, the Scalelite API, agent enrolment, the demo) perform on nodes, integrations and users.
//! Each operation validates its input here, whichever door asked, and is one store transaction
//! that includes its audit row (who: `by`, the door's actor: `cli`, a user's name,
//! `token:NAME`, `scalelite`); then the snapshots are refreshed.

pub mod integrations;
pub mod nodes;
pub mod users;

use conflux_store::StoreError;

/// Input an operation refuses, with a sentence saying why (a usage error on the CLI, a form
/// message on the web, a failed answer on the Scalelite API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The input was refused.
    #[error("{0}")]
    Invalid(String),
    /// What it names does not exist ("server \"bbb9\"").
    #[error("no such {0}")]
    NotFound(String),
    /// It would clash with what exists (a name or secret taken).
    #[error("{0}")]
    Conflict(String),
    /// The store failed: nothing was changed.
    #[error(transparent)]
    Store(StoreError),
}

/// Refreshes the snapshots after a change (a failure is logged: the change is stored, and the
/// next change signal or poll reloads them).
async fn refresh(state: &crate::state::AppState) {
    if let Err(e) = state.refresh().await {
        tracing::error!(error = %e, "Could not refresh the snapshots after a change.");
    }
}

impl OpError {
    /// Whether the operator can fix it (bad input, not found, conflict), unlike a store
    /// failure.
    pub fn is_usage(&self) -> bool {
        !matches!(self, OpError::Store(_))
    }
}

impl From<Invalid> for OpError {
    fn from(e: Invalid) -> Self {
        OpError::Invalid(e.0)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => OpError::NotFound(what),
            StoreError::Conflict(why) => OpError::Conflict(why),
            other => OpError::Store(other),
        }
    }
}
