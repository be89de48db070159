//! The JSON admin API's read-only meetings, recordings and alert history, for automation:
//! pages of meetings with their owner, node and placement reason, recordings with their state
//! and archive, and the checks' state changes. Never a password or a secret: a meeting's
//! attendee and moderator passwords stay out.

use conflux_shared::response::Meeting;
use conflux_shared::response::{MetaRule, RecordingQuery};
use conflux_shared::{Element, Query};
use conflux_store::{IntegrationId, MeetingFilter};
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use super::admin_api::{error, ok};
use crate::state::AppState;

/// The most a page holds (`limit`), and its default.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// `offset` and `limit` of a query.
fn page(q: &Query) -> Result<(usize, usize), String> {
    let number = |name: &str, default: usize| match q.get(name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("{name}={v:?} is not a number")),
    };
    Ok((
        number("offset", 0)?,
        number("limit", DEFAULT_LIMIT)?.min(MAX_LIMIT),
    ))
}

/// The integration named by `integration=ID` (None: every integration).
fn integration(state: &AppState, q: &Query) -> Result<Option<IntegrationId>, String> {
    let Some(id) = q.get("integration").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let known = state.integrations.load();
    id.parse::<i64>()
        .ok()
        .and_then(|id| known.iter().find(|i| i.id.0 == id))
        .map(|i| Some(i.id))
        .ok_or_else(|| format!("no integration {id:?}"))
}

fn names(state: &AppState) -> (impl Fn(i64) -> String, impl Fn(i64) -> String) {
    let integrations = state.integrations.load_full();
    let nodes = state.nodes.load_full();
    (
        move |id| {
            integrations
                .iter()
                .find(|i| i.id.0 == id)
                .map_or_else(String::new, |i| i.name.clone())
        },
        move |id| {
            nodes
                .nodes
                .iter()
                .find(|n| n.id.0 == id)
                .map_or_else(String::new, |n| n.name.clone())
        },
    )
}

/// Why a listing was not made: the status and the reason.
pub type Refusal = (StatusCode, String);

fn unreadable() -> Refusal {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store could not be read".to_owned(),
    )
}

/// `GET /meetings?integration=ID&node=NAME&q=TEXT&offset=&limit=`: oldest first; `q` finds
/// the meetings whose ID or name holds it (any case).
pub async fn meetings(state: &AppState, raw_query: &str) -> Response {
    match meetings_json(state, raw_query).await {
        Ok(v) => ok(v),
        Err((status, why)) => error(status, &why),
    }
}

/// The page of meetings a query asks for, as the API answers it (the web page shows the same).
pub async fn meetings_json(state: &AppState, raw_query: &str) -> Result<Value, Refusal> {
    let q = Query::parse(raw_query).unwrap_or_default();
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let integration = integration(state, &q).map_err(bad)?;
    let (offset, limit) = page(&q).map_err(bad)?;
    let node = match q.get("node").filter(|v| !v.is_empty()) {
        None => None,
        Some(name) => match state.nodes.load().nodes.iter().find(|n| n.name == name) {
            Some(n) => Some(n.id),
            None => return Err(bad(format!("no node {name:?}"))),
        },
    };
    let filter = MeetingFilter {
        integration,
        node,
        search: q
            .get("q")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
    };
    let (total, rows) = state
        .store
        .meeting_summaries(filter, offset, limit)
        .await
        .map_err(|_| unreadable())?;
    let (integration_name, node_name) = names(state);
    let meetings: Vec<Value> = rows
        .iter()
        .map(|m| {
            json!({
                "meeting_id": m.meeting_id, "name": m.name, "created_at": m.created_at,
                "integration_id": m.integration_id.0, "integration": integration_name(m.integration_id.0),
                "node_id": m.node_id.0, "node": node_name(m.node_id.0),
                "placement_reason": m.placement_reason,
            })
        })
        .collect();
    Ok(json!({"total": total, "offset": offset, "limit": limit, "meetings": meetings}))
}

/// `GET /meetings/ID`: the meeting and, from its node's last answer, who is in it.
pub async fn meeting(state: &AppState, meeting_id: &str) -> Response {
    let m = match state.store.meeting(meeting_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return error(StatusCode::NOT_FOUND, &format!("no meeting {meeting_id:?}")),
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not be read",
            )
        }
    };
    let (integration_name, node_name) = names(state);
    let live = m
        .info_xml
        .as_deref()
        .and_then(|xml| Element::parse(xml).ok())
        .and_then(|e| Meeting::from_element(&e).ok());
    ok(json!({
        "meeting_id": m.meeting_id, "name": m.name, "created_at": m.created_at,
        "internal_meeting_id": m.internal_meeting_id,
        "integration_id": m.integration_id.0, "integration": integration_name(m.integration_id.0),
        "node_id": m.node_id.0, "node": node_name(m.node_id.0),
        "placement_reason": m.placement_reason,
        "running": live.as_ref().map(|l| l.running),
        "participants": live.as_ref().map(|l| l.participant_count),
        "moderators": live.as_ref().map(|l| l.moderator_count),
        "listeners": live.as_ref().map(|l| l.listener_count),
        "voice": live.as_ref().map(|l| l.voice_participant_count),
        "video": live.as_ref().map(|l| l.video_count),
    }))
}

/// `GET /recordings?integration=ID&meeting=ID&state=S&offset=&limit=`: newest first, per
/// integration (every integration's in turn without `integration`).
pub async fn recordings(state: &AppState, raw_query: &str) -> Response {
    match recordings_json(state, raw_query).await {
        Ok(v) => ok(v),
        Err((status, why)) => error(status, &why),
    }
}

/// The recordings a query asks for, as the API answers it (the web page shows the same).
pub async fn recordings_json(state: &AppState, raw_query: &str) -> Result<Value, Refusal> {
    let q = Query::parse(raw_query).unwrap_or_default();
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let only = integration(state, &q).map_err(bad)?;
    let (offset, limit) = page(&q).map_err(bad)?;
    let query = RecordingQuery {
        meeting_ids: q
            .get("meeting")
            .map(|m| vec![m.to_owned()])
            .unwrap_or_default(),
        states: q
            .get("state")
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        record_ids: Vec::new(),
        meta: Vec::new(),
        meta_rule: MetaRule::All,
        offset,
        limit: Some(limit),
    };
    let integrations: Vec<IntegrationId> = match only {
        Some(i) => vec![i],
        None => state.integrations.load().iter().map(|i| i.id).collect(),
    };
    let (integration_name, node_name) = names(state);
    let mut list = Vec::new();
    for id in integrations {
        let rows = state
            .store
            .recordings(id, query.clone())
            .await
            .map_err(|_| unreadable())?;
        list.extend(rows.iter().map(|r| {
            json!({
                "record_id": r.record_id, "meeting_id": r.meeting_id, "state": r.state,
                "integration_id": r.integration_id.0, "integration": integration_name(r.integration_id.0),
                "node_id": r.node_id.map(|n| n.0), "node": r.node_id.map(|n| node_name(n.0)),
                "archive": r.archive.map(|a| a.as_str()), "protected": r.protected,
            })
        }));
        if list.len() >= limit {
            list.truncate(limit);
            break;
        }
    }
    Ok(json!({"offset": offset, "limit": limit, "recordings": list}))
}

/// The alert history asked for by `node=NAME&limit=` (newest first; at most 1000, 200 by
/// default), or why not.
pub async fn changes(
    state: &AppState,
    raw_query: &str,
) -> Result<(Option<String>, Vec<conflux_store::monitor::CheckChange>), (StatusCode, String)> {
    let q = Query::parse(raw_query).unwrap_or_default();
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => 200,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("limit={v:?} is not a number"),
                )
            })?
            .min(MAX_LIMIT),
    };
    let node = match q.get("node").filter(|v| !v.is_empty()) {
        None => None,
        Some(name) => match state.nodes.load().nodes.iter().find(|n| n.name == name) {
            Some(n) => Some((n.name.clone(), n.id)),
            None => return Err((StatusCode::BAD_REQUEST, format!("no node {name:?}"))),
        },
    };
    let list = state
        .store
        .check_changes(node.as_ref().map(|(_, id)| *id), limit)
        .await
        .map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not be read".to_owned(),
            )
        })?;
    Ok((node.map(|(name, _)| name), list))
}

/// `GET /alerts?node=NAME&limit=`: the checks' state changes, newest first.
pub async fn alerts(state: &AppState, raw_query: &str) -> Response {
    match changes(state, raw_query).await {
        Ok((_, list)) => ok(json!({"changes": list.iter().map(|c| json!({
            "node_id": c.node_id.0, "node": c.node, "check": c.name, "state": c.state,
            "previous": c.previous, "output": c.output, "at": c.at,
        })).collect::<Vec<_>>()})),
        Err((status, why)) => error(status, &why),
    }
}
