//! What changes by itself: the server-sent events of the live pages and the history JSON
//! behind the charts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use conflux_shared::Query;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::admin_api::error as json_error;
use super::{reader, view};
use crate::state::AppState;

/// How often a live page's data is rendered and, if it changed, sent.
const LIVE_EVERY: Duration = Duration::from_millis(500);

/// Server-sent events: the rendered rows and totals whenever they change.
pub async fn events(state: Arc<AppState>, cookie: Option<String>) -> Response {
    if reader(&state, cookie).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let updates =
        futures_util::stream::unfold((state, String::new()), |(state, last)| async move {
            loop {
                let (nodes, totals) = view::network(&state);
                let rows = state
                    .templates
                    .render("node_rows", &json!({"nodes": nodes}));
                let totals = state.templates.render("totals", &json!({"totals": totals}));
                if let (Ok(rows), Ok(totals)) = (rows, totals) {
                    let data = json!({"rows": rows, "totals": totals}).to_string();
                    if data != last {
                        let event = warp::sse::Event::default()
                            .event("dashboard")
                            .data(data.clone());
                        return Some((Ok::<_, Infallible>(event), (state, data)));
                    }
                }
                tokio::time::sleep(LIVE_EVERY).await;
            }
        });
    let stream = warp::sse::keep_alive().stream(updates);
    warp::sse::reply(stream).into_response()
}

/// A node's stored history for a range (`hour`, `day`, `month`, `year`) as columns:
/// `name`'s history, or the whole network's with `None` (per-node rows are not aligned in
/// time, so the network's shortest range uses 5-minute rows).
pub(crate) async fn history_json(
    state: &AppState,
    name: Option<&str>,
    raw_query: &str,
) -> Response {
    let range = Query::parse(raw_query)
        .ok()
        .and_then(|q| q.get("range").map(String::from))
        .unwrap_or_else(|| "hour".into());
    let (resolution, span) = match range.as_str() {
        "hour" => (0, 3_600),
        "day" => (300, 86_400),
        "month" => (300, 31 * 86_400),
        "year" => (3_600, 365 * 86_400),
        other => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("unknown range {other:?} (hour, day, month, year)"),
            )
        }
    };
    let since = conflux_store::now_ms() / 1000 - span;
    let rows = match name {
        Some(name) => {
            let Some(node) = state
                .nodes
                .load()
                .nodes
                .iter()
                .find(|n| n.name == name)
                .cloned()
            else {
                return json_error(StatusCode::NOT_FOUND, &format!("no node {name:?}"));
            };
            state.store.history(node.id, resolution, since).await
        }
        None => {
            let resolution = resolution.max(300);
            state.store.network_history(resolution, since).await
        }
    }
    .unwrap_or_default();
    let column = |f: fn(&conflux_store::monitor::Sample) -> f64| {
        rows.iter().map(|(_, s)| f(s)).collect::<Vec<_>>()
    };
    warp::reply::json(&json!({
        "range": range,
        "resolution": resolution,
        "ts": rows.iter().map(|(ts, _)| ts).collect::<Vec<_>>(),
        "cpu": column(|s| s.cpu),
        "memory": column(|s| s.memory),
        "disk": column(|s| s.disk),
        "net_in": column(|s| s.net_in),
        "net_out": column(|s| s.net_out),
        "users": column(|s| s.users),
        "meetings": column(|s| s.meetings),
        "voice": column(|s| s.voice),
        "video": column(|s| s.video),
    }))
    .into_response()
}
