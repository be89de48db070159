//! The meetings and recordings pages: the admin API's listings (`api_lists`) as tables, with
//! a filter form (integration, node, a search) and previous/next links.

use std::sync::Arc;

use serde_json::{json, Value};
use warp::reply::Response;

use super::{api_lists, manage, message, page, reader};
use crate::state::AppState;
use conflux_shared::Query;

/// The choices of the filter form: every integration (id, name) and node name, with the
/// query's own values selected.
fn choices(state: &AppState, q: &Query) -> Value {
    let integration = q.get("integration").unwrap_or("");
    let node = q.get("node").unwrap_or("");
    json!({
        "integrations": state.integrations.load().iter().map(|i| json!({
            "id": i.id.0, "name": i.name, "selected": i.id.0.to_string() == integration,
        })).collect::<Vec<_>>(),
        "nodes": state.nodes.load().nodes.iter().map(|n| json!({
            "name": n.name, "selected": n.name == node,
        })).collect::<Vec<_>>(),
        "q": q.get("q").unwrap_or(""),
        "meeting": q.get("meeting").unwrap_or(""),
        "state": q.get("state").unwrap_or(""),
    })
}

/// The query with another offset (for the previous and next links).
fn at_offset(q: &Query, offset: usize) -> String {
    let mut pairs: Vec<String> = ["integration", "node", "q", "meeting", "state", "limit"]
        .iter()
        .filter_map(|k| {
            q.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", conflux_shared::query::encode(v)))
        })
        .collect();
    pairs.push(format!("offset={offset}"));
    pairs.join("&")
}

/// Previous and next links around a page of `shown` rows at `offset` (`total` when known).
fn paging(q: &Query, offset: usize, limit: usize, shown: usize, total: Option<u64>) -> Value {
    let more = total.map_or(shown >= limit, |t| ((offset + shown) as u64) < t);
    json!({
        "previous": (offset > 0).then(|| at_offset(q, offset.saturating_sub(limit))),
        "next": more.then(|| at_offset(q, offset + limit)),
        "from": if shown == 0 { 0 } else { offset + 1 },
        "to": offset + shown,
        "total": total,
    })
}

/// `/meetings`: the meetings, oldest first, with their owner, node and placement reason.
pub async fn meetings(raw_query: String, state: Arc<AppState>, cookie: Option<String>) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let q = Query::parse(&raw_query).unwrap_or_default();
    let mut listing = match api_lists::meetings_json(&state, &raw_query).await {
        Ok(v) => v,
        Err((status, why)) => return message(&state, status, "Not shown", &why),
    };
    let (offset, limit) = (number(&listing["offset"]), number(&listing["limit"]));
    let rows = listing["meetings"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|mut m| {
            m["created"] = json!(manage::utc(m["created_at"].as_i64().unwrap_or(0)));
            m
        })
        .collect();
    let pages = paging(&q, offset, limit, rows.len(), listing["total"].as_u64());
    page(
        &state,
        "meetings",
        session.as_ref(),
        json!({"title": "Meetings", "meetings": rows, "pages": pages, "filter": choices(&state, &q)}),
    )
}

/// `/recordings`: the recordings, newest first, with their state, node and archive.
pub async fn recordings(
    raw_query: String,
    state: Arc<AppState>,
    cookie: Option<String>,
) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let q = Query::parse(&raw_query).unwrap_or_default();
    let listing = match api_lists::recordings_json(&state, &raw_query).await {
        Ok(v) => v,
        Err((status, why)) => return message(&state, status, "Not shown", &why),
    };
    let (offset, limit) = (number(&listing["offset"]), number(&listing["limit"]));
    let rows = listing["recordings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pages = paging(&q, offset, limit, rows.len(), None);
    page(
        &state,
        "recordings",
        session.as_ref(),
        json!({"title": "Recordings", "recordings": rows, "pages": pages, "filter": choices(&state, &q)}),
    )
}

fn number(v: &Value) -> usize {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}
