//! Calling a node: re-sign the client's query with the node's secret (never re-encoding it),
//! send it, and read the node's BBB answer.

use std::cell::OnceCell;

use conflux_shared::Response;
use warp::http::header::CONTENT_TYPE;
use warp::http::{Method, StatusCode};
use warp::hyper::body::Bytes;

use super::error::ApiError;
use crate::state::AppState;
use crate::store::Node;

mod plain;

use plain::SendError;

/// What a node answered.
pub struct NodeAnswer {
    pub body: Bytes,
}

impl NodeAnswer {
    /// The answer as a typed BBB response.
    pub fn parse(&self, context: &'static str) -> Result<Response, ApiError> {
        let text = std::str::from_utf8(&self.body).map_err(|e| ApiError::Node {
            context,
            detail: e.to_string(),
        })?;
        Response::from_xml(text).map_err(|e| ApiError::Node {
            context,
            detail: e.to_string(),
        })
    }
}

/// The node URL of `call` with `raw_query` (already without checksum), signed for the node.
pub fn node_url(state: &AppState, node: &Node, call: &str, raw_query: &str) -> String {
    conflux_shared::signed_url::sign(
        &node.url,
        call,
        raw_query,
        &node.secret.0,
        state.config.api.node_algorithm,
    )
}

/// The largest node answer read (a getRecordings page of a busy node stays far below).
const ANSWER_LIMIT: usize = 64 << 20;

/// Sends `call` to `node`; `body` (with its Content-Type) is forwarded unchanged for POSTs.
pub async fn call(
    state: &AppState,
    node: &Node,
    call: &str,
    raw_query: &str,
    body: Option<(Option<&str>, Bytes)>,
    context: &'static str,
) -> Result<NodeAnswer, ApiError> {
    let url = node_url(state, node, call, raw_query);
    let body = body.filter(|(_, b)| !b.is_empty());
    let timeout = state.config.poller.response_timeout;
    let exchange = async {
        if url.starts_with("http://") {
            plain(state, url, body).await
        } else {
            tls(state, &url, body).await
        }
    };
    let answer = match tokio::time::timeout(timeout, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(SendError::Failed(format!("no answer within {timeout:?}"))),
    };
    answer.map(|body| NodeAnswer { body }).map_err(|e| {
        let detail = format!("{}: {e}", node.name);
        match e {
            SendError::NotSent(_) => ApiError::NodeUnreachable { context, detail },
            SendError::Failed(_) => ApiError::Node { context, detail },
        }
    })
}

/// A plain-HTTP node (the hot path of every proxied call).
async fn plain(
    state: &AppState,
    url: String,
    body: Option<(Option<&str>, Bytes)>,
) -> Result<Bytes, SendError> {
    let (status, body) = plain::send(plain::Call {
        url: &url,
        body,
        connect_timeout: state.config.poller.connect_timeout,
        limit: ANSWER_LIMIT,
    })
    .await?;
    check_status(status).map_err(SendError::Failed)?;
    Ok(body)
}

/// An HTTPS node, through reqwest (rustls with the system's roots).
async fn tls(
    state: &AppState,
    url: &str,
    body: Option<(Option<&str>, Bytes)>,
) -> Result<Bytes, SendError> {
    let request = match body {
        Some((content_type, body)) => {
            let mut r = tls_client(state).request(Method::POST, url).body(body);
            if let Some(ct) = content_type {
                r = r.header(CONTENT_TYPE, ct);
            }
            r
        }
        None => tls_client(state).get(url),
    };
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            SendError::NotSent(error_chain(&e))
        } else {
            SendError::Failed(error_chain(&e))
        }
    })?;
    check_status(response.status()).map_err(SendError::Failed)?;
    response
        .bytes()
        .await
        .map_err(|e| SendError::Failed(error_chain(&e)))
}

fn check_status(status: StatusCode) -> Result<(), String> {
    if status.is_server_error() || status.is_client_error() {
        return Err(format!("HTTP {status}"));
    }
    Ok(())
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: ...").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

thread_local! {
    /// One HTTPS client per server thread: its pooled connections are driven by the thread's
    /// own runtime, so a proxied call never wakes another thread.
    static TLS: OnceCell<reqwest::Client> = const { OnceCell::new() };
}

fn tls_client(state: &AppState) -> reqwest::Client {
    TLS.with(|c| {
        c.get_or_init(|| {
            // AppState::open built one with this configuration already: building cannot fail.
            crate::state::http_client(&state.config).unwrap_or_default()
        })
        .clone()
    })
}
