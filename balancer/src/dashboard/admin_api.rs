//! The JSON admin API (`/api/v1/...`, described in `docs/openapi.yaml`): everything the pages
//! show and do, for scripts. Credentials are bearer tokens (`tokens add`), never BBB secrets;
//! reads also accept the pages' session cookie. Viewer tokens read; admin tokens also change,
//! through the same actions as the admin pages (`manage::perform`), audited under the token's
//! name. No answer contains a secret, except a new integration secret once.

use std::sync::Arc;

use conflux_shared::Query;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::Reply;

use super::{api_view, auth, manage};
use crate::state::AppState;
use conflux_store::users::Role;

/// Who is calling: a name for the audit log and a role.
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The caller of a request with `authorization` (a bearer token) or a session `cookie`.
pub async fn caller(
    state: &AppState,
    authorization: Option<String>,
    cookie: Option<String>,
) -> Option<Caller> {
    if let Some(token) =
        authorization.and_then(|a| a.strip_prefix("Bearer ").map(str::trim).map(String::from))
    {
        let hash = auth::token_hash(&token);
        let found = state.store.token(&hash).await.ok().flatten()?;
        return Some(Caller {
            name: format!("token:{}", found.name),
            role: found.role,
        });
    }
    let session = auth::session(state, cookie).await?;
    Some(Caller {
        name: session.user.username,
        role: session.user.role,
    })
}

pub(super) fn error(status: StatusCode, why: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&json!({"error": why})), status).into_response()
}

pub(super) fn ok(value: Value) -> Response {
    warp::reply::json(&value).into_response()
}

/// `GET /api/v1/PATH`.
pub async fn get(state: &Arc<AppState>, path: &str, raw_query: &str) -> Response {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["nodes"] => ok(json!(api_view::network(state).0)),
        ["network"] => {
            let (nodes, totals) = api_view::network(state);
            ok(json!({"totals": totals, "nodes": nodes}))
        }
        ["nodes", name] => match state.nodes.load().nodes.iter().find(|n| n.name == *name) {
            Some(n) => ok(json!(api_view::node(state, n))),
            None => error(StatusCode::NOT_FOUND, &format!("no node {name:?}")),
        },
        ["nodes", name, "history"] => super::live::history_json(state, Some(name), raw_query).await,
        ["network", "history"] => super::live::history_json(state, None, raw_query).await,
        ["integrations"] => {
            let list: Vec<Value> = state
                .integrations
                .load()
                .iter()
                .map(|i| {
                    json!({
                        "id": i.id.0, "name": i.name, "prefix": i.prefix,
                        "api_enabled": i.api_enabled, "recording_allowed": i.recording_allowed,
                        "max_meetings": i.max_meetings, "max_users": i.max_users,
                        "meetings": state.meetings_of(i.id),
                        "recorder": i.recorder.as_ref().map(|r| json!({"url": r.url, "fingerprint": r.fingerprint})),
                    })
                })
                .collect();
            ok(json!(list))
        }
        ["users"] => match state.store.users().await {
            Ok(list) => ok(json!(list
                .iter()
                .map(|u| json!({"username": u.username, "role": u.role}))
                .collect::<Vec<_>>())),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the store could not be read"),
        },
        ["audit"] => match state.store.audit_log(200).await {
            Ok(rows) => ok(json!(rows
                .iter()
                .map(|(at, actor, action, detail)| json!({"at": at, "actor": actor, "action": action, "detail": detail}))
                .collect::<Vec<_>>())),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the store could not be read"),
        },
        ["reports"] => super::reports::report_json(state, raw_query).await,
        ["meetings"] => super::api_lists::meetings(state, raw_query).await,
        ["meetings", id] => match conflux_shared::query::decode(id) {
            Ok(id) => super::api_lists::meeting(state, &id).await,
            Err(_) => error(StatusCode::BAD_REQUEST, "the meeting ID is not UTF-8"),
        },
        ["recordings"] => super::api_lists::recordings(state, raw_query).await,
        ["alerts"] => super::api_lists::alerts(state, raw_query).await,
        _ => error(StatusCode::NOT_FOUND, "no such resource"),
    }
}

/// `POST /api/v1/ENTITY/ACTION` with a JSON object: the admin pages' actions.
pub async fn post(
    state: &Arc<AppState>,
    caller: &Caller,
    entity: &str,
    action: &str,
    body: &Bytes,
) -> Response {
    if caller.role != Role::Admin {
        return error(StatusCode::FORBIDDEN, "this token or account may only read");
    }
    let fields: serde_json::Map<String, Value> = if body.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            _ => return error(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
        }
    };
    // The pages' actions read form fields: the object's values become them.
    let pairs: Vec<(String, String)> = fields
        .into_iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Bool(true) => "1".into(),
                Value::Bool(false) | Value::Null => return None,
                other => other.to_string(),
            };
            Some((k, text))
        })
        .collect();
    let encoded = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                conflux_shared::query::encode(k),
                conflux_shared::query::encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let Ok(form) = Query::parse(&encoded) else {
        return error(StatusCode::BAD_REQUEST, "the fields could not be read");
    };
    match manage::perform(state, &caller.name, entity, action, &form).await {
        Ok(done) => ok(json!({
            "ok": true,
            "notice": done.notice,
            "secret": done.secret.map(|(_, s)| s),
        })),
        Err(manage::Failure::NotFound) => error(StatusCode::NOT_FOUND, "no such item or action"),
        Err(manage::Failure::Op(e)) if e.is_usage() => {
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(manage::Failure::Op(e)) => {
            tracing::error!(error = %e, "An admin API change failed.");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change could not be stored",
            )
        }
    }
}
