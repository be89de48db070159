//! Operations on nodes, for every door (the CLI, the admin pages and JSON API, the Scalelite
//! API, agent enrolment): what a node URL must look like, panicking a node.

use std::sync::Arc;

use conflux_shared::signed_url::api_base_of;
use conflux_store::{self as store, Node, NodeState};

use super::Invalid;
use crate::state::AppState;

/// Checks a node URL and returns its API base.
pub fn api_url(url: &str) -> Result<String, Invalid> {
    let trimmed = url.trim();
    let valid = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !trimmed.contains(char::is_whitespace);
    if !valid {
        return Err(Invalid(format!(
            "Server URL must start with http:// or https:// and name a host: {url:?}"
        )));
    }
    Ok(api_base_of(trimmed).into_owned())
}

/// Forgets every meeting of `node`, ends them there and (unless `keep_state`) disables it;
/// returns how many meetings were forgotten. Shared by the CLI and the admin pages.
pub async fn panic(
    state: &Arc<AppState>,
    node: &Node,
    keep_state: bool,
) -> Result<usize, store::StoreError> {
    let id = node.id;
    let forgotten = state
        .store
        .run(move |c| {
            let ids = store::meetings::remove_on_node(c, id)?;
            store::nodes::set_offline(c, id)?;
            if !keep_state {
                store::nodes::set_state(c, id, NodeState::Disabled)?;
            }
            Ok(ids)
        })
        .await?;
    end_on_node(state, node, &forgotten).await;
    for meeting in &forgotten {
        state.set_route(meeting, None);
    }
    Ok(forgotten.len())
}

/// Asks `node` to end `meetings` (best effort: failures are warnings, as in Scalelite).
pub async fn end_on_node(state: &AppState, node: &Node, meetings: &[String]) {
    for meeting_id in meetings {
        let query = format!("meetingID={}", conflux_shared::query::encode(meeting_id));
        if let Err(e) = state
            .node_client
            .call(
                node,
                "end",
                &query,
                None,
                "Unable to access meeting on server.",
            )
            .await
        {
            tracing::warn!(meeting_id, node = %node.name, error = %e, "Could not end a meeting on its node.");
        }
    }
}

/// `LAT,LON` in degrees, or empty for none (the CLI, the admin pages and the JSON API).
pub fn parse_location(text: &str) -> Result<Option<(f64, f64)>, Invalid> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = || {
        Invalid(format!(
            "{text:?} is not LAT,LON in degrees (e.g. -30.03,-51.22)"
        ))
    };
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    let (lat, lon): (f64, f64) = (
        lat.trim().parse().map_err(|_| bad())?,
        lon.trim().parse().map_err(|_| bad())?,
    );
    conflux_geoip::Position::new(lat, lon).ok_or_else(bad)?;
    Ok(Some((lat, lon)))
}
