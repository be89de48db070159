//! The one place where errors become BBB answers: every [`ApiError`] maps to a `messageKey`
//! and text, rendered as BBB does (HTTP 200, FAILED envelope).

use conflux_shared::response::{messages, Message};
use conflux_shared::Response;

use crate::node_client::NodeError;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A BBB error with BBB's key and text (checksum, validation, not found...).
    #[error("{}: {}", .0.key, .0.text)]
    Bbb(Message),
    /// Mconf-LB's refusal for a plan limit.
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    /// A node failed (unreachable, timed out, answered garbage).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// No node can take the meeting.
    #[error("no available server")]
    NoServer,
    /// A required server tag matches no eligible node.
    #[error("no server with tag {0}")]
    NoTaggedServer(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] conflux_store::StoreError),
}

impl ApiError {
    pub fn message_key(&self) -> &'static str {
        match self {
            ApiError::Bbb(m) => m.key,
            ApiError::PermissionDenied(_) => messages::PERMISSION_DENIED.key,
            ApiError::Node(_) | ApiError::NoServer | ApiError::Store(_) => "internalError",
            ApiError::NoTaggedServer(_) => "serverTagUnavailable",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Bbb(m) => m.text.to_owned(),
            ApiError::PermissionDenied(text) => (*text).to_owned(),
            ApiError::Node(
                NodeError::Failed { context, .. } | NodeError::Unreachable { context, .. },
            ) => (*context).to_owned(),
            ApiError::NoServer => "Could not find any available servers.".into(),
            ApiError::NoTaggedServer(tag) => {
                format!("There is no available server with the required tag={tag}.")
            }
            ApiError::Store(_) => "An unexpected error occurred, please try again later.".into(),
        }
    }

    /// Logs by source (client: debug, node: warn, internal: error) and renders the answer.
    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Bbb(_) | ApiError::PermissionDenied(_) | ApiError::NoTaggedServer(_) => {
                tracing::debug!(error = %self, "Request refused.")
            }
            ApiError::Node(_) | ApiError::NoServer => {
                tracing::warn!(error = %self, "Node failure.")
            }
            ApiError::Store(_) => tracing::error!(error = %self, "Internal failure."),
        }
        Response::failed_with(self.message_key(), self.message())
    }
}

impl From<Message> for ApiError {
    fn from(m: Message) -> Self {
        ApiError::Bbb(m)
    }
}
