//! The agents' door: enrolment (`POST /conflux/agent/enrol`, with the operator's enrolment
//! token) and signed reports (`POST /conflux/agent/report`); the protocol is in
//! [`conflux_shared::report`]. Answers are JSON: `{"error": "..."}` with 400/401/403/409 on
//! refusal, and every refusal is logged with the peer's address.

use std::net::SocketAddr;
use std::sync::Arc;

use conflux_shared::report::{Enrolled, Enrolment};
use rand::Rng;
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::hyper::body::Bytes;
use warp::{Filter, Reply};

use crate::health::ReportError;
use crate::ops::nodes::EnrolSpec;
use crate::ops::OpError;
use crate::state::AppState;

/// Enrolments and reports are small; anything bigger is refused unread.
const MAX_BODY: usize = 256 * 1024;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(warp::reply::Response,)> {
    let with_state = warp::any().map(move || state.clone());
    let body = warp::body::stream().then(|body| async move {
        conflux_shared::body::read_limited(body, MAX_BODY)
            .await
            .ok()
    });
    let enrol = warp::post()
        .and(warp::path!("conflux" / "agent" / "enrol"))
        .and(with_state.clone())
        .and(crate::connection::peer())
        .and(body)
        .then(enrol);
    let report = warp::post()
        .and(warp::path!("conflux" / "agent" / "report"))
        .and(with_state)
        .and(crate::connection::peer())
        .and(warp::header::headers_cloned())
        .and(body)
        .then(report);
    enrol.or(report).unify().boxed()
}

async fn enrol(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    body: Option<Bytes>,
) -> warp::reply::Response {
    let Some(body) = body else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, peer, "enrolment too large");
    };
    let request: Enrolment = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                peer,
                &format!("malformed enrolment: {e}"),
            )
        }
    };
    let Some(token) = &state.config.monitor.enrolment_token else {
        return refuse(
            StatusCode::FORBIDDEN,
            peer,
            "enrolment is closed (no monitor.enrolment_token)",
        );
    };
    if !bool::from(token.0.as_bytes().ct_eq(request.token.as_bytes())) {
        return refuse(StatusCode::UNAUTHORIZED, peer, "wrong enrolment token");
    }
    let key = conflux_shared::Secret(hex::encode(rand::rng().random::<[u8; 32]>()));
    let spec = EnrolSpec {
        url: request.url,
        name: request.name,
        secret: request.secret,
        latitude: request.latitude,
        longitude: request.longitude,
    };
    let result = crate::ops::nodes::enrol(&state, spec, key.clone()).await;
    match result {
        Ok(node) => {
            tracing::info!(node = %node.name, id = node.id.0, state = %node.state, ?peer, "Agent enrolled.");
            let answer = Enrolled {
                node: node.id.0,
                name: node.name,
                key: key.0,
            };
            warp::reply::json(&answer).into_response()
        }
        Err(OpError::Invalid(e)) => refuse(StatusCode::BAD_REQUEST, peer, &e),
        Err(OpError::Conflict(e)) => refuse(StatusCode::CONFLICT, peer, &e),
        Err(e) => {
            tracing::error!(error = %e, "Could not store an enrolment.");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                peer,
                "could not store the enrolment",
            )
        }
    }
}

async fn report(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    body: Option<Bytes>,
) -> warp::reply::Response {
    let Some(body) = body else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, peer, "report too large");
    };
    let header = crate::health::header_reader(&headers);
    let nodes = state.nodes.load();
    let signed = crate::health::signed_report(&nodes.nodes, &header, &body);
    drop(nodes);
    let accepted = match signed {
        Ok(signed) => {
            state
                .monitor
                .accept_report(&state.store, &state.config, signed)
                .await
        }
        Err(e) => Err(e),
    };
    match accepted {
        Ok(_) => match state.monitor.persist(&state.store).await {
            Ok(()) => warp::reply::json(&json!({ "ok": true })).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "Could not store a report.");
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    peer,
                    "the report could not be stored; send it again",
                )
            }
        },
        Err(e) => {
            let status = match e {
                ReportError::Body(_) | ReportError::Header(_) => StatusCode::BAD_REQUEST,
                ReportError::Replay => StatusCode::CONFLICT,
                ReportError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            refuse(status, peer, &format!("report refused: {e}"))
        }
    }
}

/// A JSON refusal (`{"error": why}`), logged with the peer.
pub(crate) fn refuse(
    status: StatusCode,
    peer: Option<SocketAddr>,
    why: &str,
) -> warp::reply::Response {
    tracing::warn!(?peer, status = status.as_u16(), "{why}");
    warp::reply::with_status(warp::reply::json(&json!({ "error": why })), status).into_response()
}
