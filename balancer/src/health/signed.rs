//! The agents' signed requests: a report's or an upload's signature, clock skew and form are
//! checked here before the monitor takes a report in.

use std::sync::Arc;

use conflux_shared::report::{self, Report};
use conflux_store::{self as store, Node, NodeId};

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    #[error("unknown node {0}")]
    UnknownNode(i64),
    #[error("node {0} has no agent key: enrol it first")]
    NotEnrolled(i64),
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    #[error("bad signature")]
    Signature,
    #[error("timestamp is {0} ms away from the balancer's clock (limit {max})", max = report::MAX_SKEW_MS)]
    Skew(i64),
    #[error("replayed or out-of-order report (timestamp not newer than the last accepted)")]
    Replay,
    #[error("malformed report: {0}")]
    Body(String),
    #[error("the report could not be stored: {0}")]
    Store(String),
}

/// A report whose signature and freshness were checked ([`signed_report`]).
pub struct SignedReport {
    pub(super) node: NodeId,
    pub(super) timestamp: i64,
    pub(super) report: Report,
    pub(super) json: String,
}

/// Checks a report's signature, freshness and form.
pub fn signed_report(
    nodes: &[Arc<Node>],
    headers: &dyn Fn(&'static str) -> Option<String>,
    body: &[u8],
) -> Result<SignedReport, ReportError> {
    let (node, timestamp) = authenticate_agent(nodes, headers, body)?;
    let report: Report =
        serde_json::from_slice(body).map_err(|e| ReportError::Body(e.to_string()))?;
    if !(report.interval_secs.is_finite() && report.interval_secs > 0.0) {
        return Err(ReportError::Body("interval_secs must be positive".into()));
    }
    Ok(SignedReport {
        node: node.id,
        timestamp,
        report,
        json: String::from_utf8_lossy(body).into_owned(),
    })
}

/// Reads a request's headers as [`authenticate_agent`] and [`signed_report`] take them.
pub fn header_reader(
    headers: &warp::http::HeaderMap,
) -> impl Fn(&'static str) -> Option<String> + '_ {
    |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

/// The enrolled node whose agent signed `signed` (with the node, timestamp and signature
/// headers), within the allowed clock skew, and the signature's timestamp.
pub fn authenticate_agent<'a>(
    nodes: &'a [Arc<Node>],
    headers: &dyn Fn(&'static str) -> Option<String>,
    signed: &[u8],
) -> Result<(&'a Arc<Node>, i64), ReportError> {
    let node_id: i64 = headers(report::NODE_HEADER)
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ReportError::Header(report::NODE_HEADER))?;
    let timestamp: i64 = headers(report::TIMESTAMP_HEADER)
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ReportError::Header(report::TIMESTAMP_HEADER))?;
    let signature =
        headers(report::SIGNATURE_HEADER).ok_or(ReportError::Header(report::SIGNATURE_HEADER))?;
    let node = nodes
        .iter()
        .find(|n| n.id.0 == node_id)
        .ok_or(ReportError::UnknownNode(node_id))?;
    let key = node
        .agent_key
        .as_ref()
        .ok_or(ReportError::NotEnrolled(node_id))?;
    if !report::verify(key.0.as_bytes(), node_id, timestamp, signed, &signature) {
        return Err(ReportError::Signature);
    }
    let now = store::now_ms();
    if (now - timestamp).abs() > report::MAX_SKEW_MS {
        return Err(ReportError::Skew(now - timestamp));
    }
    Ok((node, timestamp))
}
