//! Calling a node: re-sign the client's query with the node's secret (never re-encoding it),
//! send it, and read the node's BBB answer.

use conflux_shared::{Response, SignedUrl};
use warp::http::Method;
use warp::hyper::body::Bytes;

use super::error::ApiError;
use crate::state::AppState;
use crate::store::Node;

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
    SignedUrl::new(&node.url, call)
        .raw_query(raw_query)
        .sign(&node.secret.0, state.config.api.node_algorithm)
}

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
    let request = match body {
        Some((content_type, body)) if !body.is_empty() => {
            let mut r = client(state).request(Method::POST, &url).body(body);
            if let Some(ct) = content_type {
                r = r.header("content-type", ct);
            }
            r
        }
        _ => client(state).get(&url),
    };
    let node_error = |detail: String| ApiError::Node {
        context,
        detail: format!("{}: {detail}", node.name),
    };
    let response = request
        .send()
        .await
        .map_err(|e| node_error(e.to_string()))?;
    let status = response.status();
    if status.is_server_error() || status.is_client_error() {
        return Err(node_error(format!("HTTP {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| node_error(e.to_string()))?;
    Ok(NodeAnswer { body })
}

thread_local! {
    /// One HTTP client per server thread: its pooled connections are driven by the thread's
    /// own runtime, so a proxied call never wakes another thread.
    static CLIENT: std::cell::OnceCell<reqwest::Client> = const { std::cell::OnceCell::new() };
}

fn client(state: &AppState) -> reqwest::Client {
    CLIENT.with(|c| {
        c.get_or_init(|| {
            // AppState::open built one with this configuration already: building cannot fail.
            crate::state::http_client(&state.config).unwrap_or_default()
        })
        .clone()
    })
}
