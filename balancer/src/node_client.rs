//! Calling a node: re-sign a query with the node's secret (never re-encoding it), send it, and
//! read the node's BBB answer. Used by the API's proxied calls, the poller, the admin commands
//! and the recordings' retention; knows nothing of clients or of the store.

use std::time::Duration;

use conflux_shared::{Algorithm, Response};
use conflux_store::Node;
use warp::http::StatusCode;
use warp::hyper::body::Bytes;

mod http1;

use http1::SendError;

/// How nodes are called: the checksum algorithm they are signed with and the timeouts.
#[derive(Debug, Clone)]
pub struct NodeClient {
    algorithm: Algorithm,
    connect_timeout: Duration,
    response_timeout: Duration,
}

/// The error context of a failed call about a meeting (BBB's text).
pub const MEETING_CONTEXT: &str = "Unable to access meeting on server.";

/// What a node answered.
pub struct NodeAnswer {
    pub body: Bytes,
}

/// A call to a node that failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node failed (timed out, answered an HTTP error or garbage).
    #[error("node error: {context}: {detail}")]
    Failed {
        context: &'static str,
        detail: String,
    },
    /// The node could not be reached: nothing was sent to it.
    #[error("node unreachable: {context}: {detail}")]
    Unreachable {
        context: &'static str,
        detail: String,
    },
}

impl NodeAnswer {
    /// The answer as a typed BBB response.
    pub fn parse(&self, context: &'static str) -> Result<Response, NodeError> {
        let failed = |detail: String| NodeError::Failed { context, detail };
        let text = std::str::from_utf8(&self.body).map_err(|e| failed(e.to_string()))?;
        Response::from_xml(text).map_err(|e| failed(e.to_string()))
    }
}

/// The largest node answer read (a getRecordings page of a busy node stays far below).
const ANSWER_LIMIT: usize = 64 << 20;

impl NodeClient {
    pub fn new(
        algorithm: Algorithm,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        NodeClient {
            algorithm,
            connect_timeout,
            response_timeout,
        }
    }

    /// The node URL of `call` with `raw_query` (already without checksum), signed for the node.
    pub fn url(&self, node: &Node, call: &str, raw_query: &str) -> String {
        conflux_shared::signed_url::sign(&node.url, call, raw_query, &node.secret.0, self.algorithm)
    }

    /// An HTTP client with these timeouts and no redirects, for the other requests to nodes
    /// (active checks, recording downloads).
    pub fn http(&self) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.response_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .build()
    }

    /// Sends `call` about one meeting (`meetingID` its only parameter) to `node` and reads the
    /// answer.
    pub async fn meeting_call(
        &self,
        node: &Node,
        call: &str,
        meeting_id: &str,
    ) -> Result<Response, NodeError> {
        let query = format!("meetingID={}", conflux_shared::query::encode(meeting_id));
        self.call(node, call, &query, None, MEETING_CONTEXT)
            .await?
            .parse(MEETING_CONTEXT)
    }

    /// Sends `call` to `node`; `body` (with its Content-Type) is forwarded unchanged for POSTs.
    pub async fn call(
        &self,
        node: &Node,
        call: &str,
        raw_query: &str,
        body: Option<(Option<&str>, Bytes)>,
        context: &'static str,
    ) -> Result<NodeAnswer, NodeError> {
        let url = self.url(node, call, raw_query);
        let answer = self.exchange(&url, body).await;
        answer.map(|body| NodeAnswer { body }).map_err(|e| {
            let detail = format!("{}: {e}", node.name);
            match e {
                SendError::NotSent(_) => NodeError::Unreachable { context, detail },
                SendError::Failed(_) => NodeError::Failed { context, detail },
            }
        })
    }
}

impl NodeClient {
    /// Sends one request to `url` and reads the answer, within the response timeout; an HTTP
    /// error status is a failure.
    async fn exchange(
        &self,
        url: &str,
        body: Option<(Option<&str>, Bytes)>,
    ) -> Result<Bytes, SendError> {
        let body = body.filter(|(_, b)| !b.is_empty());
        let timeout = self.response_timeout;
        let exchange = async {
            let (status, body) = http1::send(http1::Call {
                url,
                body,
                connect_timeout: self.connect_timeout,
                limit: ANSWER_LIMIT,
                tls: None,
            })
            .await?;
            check_status(status).map_err(SendError::Failed)?;
            Ok(body)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(SendError::Failed(format!("no answer within {timeout:?}"))),
        }
    }

    /// Whether a BBB API answers at `url` (its base) and accepts `secret`, before the node is
    /// added: its index, then a signed getMeetings. The node's BBB version, or why not.
    pub async fn probe(&self, url: &str, secret: &str) -> Result<String, String> {
        let read = |body: Bytes| {
            std::str::from_utf8(&body)
                .ok()
                .and_then(|text| Response::from_xml(text).ok())
                .ok_or_else(|| format!("{url} does not answer as a BBB API"))
        };
        let index = self
            .exchange(url, None)
            .await
            .map_err(|e| format!("{url} cannot be reached: {e}"))?;
        let index = read(index)?;
        if !index.is_success() {
            return Err(format!("{url} does not answer as a BBB API"));
        }
        let version = index.field("version").unwrap_or("unknown").to_owned();
        let signed =
            conflux_shared::signed_url::sign(url, "getMeetings", "", secret, self.algorithm);
        let meetings = self
            .exchange(&signed, None)
            .await
            .map_err(|e| format!("{url} failed a signed getMeetings: {e}"))?;
        let meetings = read(meetings)?;
        match meetings.key() {
            _ if meetings.is_success() => Ok(version),
            Some("checksumError") => Err(format!(
                "the node at {url} refuses the secret (checksumError with {})",
                self.algorithm
            )),
            key => Err(format!(
                "the node at {url} answered getMeetings with {key:?}"
            )),
        }
    }
}

fn check_status(status: StatusCode) -> Result<(), String> {
    if status.is_server_error() || status.is_client_error() {
        return Err(format!("HTTP {status}"));
    }
    Ok(())
}
