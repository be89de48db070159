//! `join`: the browser must reach the node itself (its session cookie lives there), so the
//! balancer answers with a 302 to the node's join URL signed with the node's secret, as
//! Scalelite does; with `redirect=false` it proxies and returns the node's XML.

use std::sync::Arc;

use conflux_shared::response::messages;
use conflux_shared::Response;
use serde_json::json;

use super::error::ApiError;
use super::params::{rewrite, Rewrite};
use super::request::ApiRequest;
use crate::state::AppState;
use conflux_store::{EventKind, Integration, NewEvent};

/// What a join answers: a redirect or XML.
pub enum Joined {
    Redirect(String),
    Xml(Response),
}

pub async fn handle(
    state: &Arc<AppState>,
    req: ApiRequest,
    integration: Arc<Integration>,
) -> Result<Joined, ApiError> {
    let meeting_id = req.meeting_id()?;
    if req.params.get_trimmed("fullName").is_none() {
        return Err(ApiError::Bbb(messages::MISSING_FULL_NAME));
    }
    let route = state
        .find_route(&meeting_id)
        .await
        .filter(|r| r.integration == integration.id)
        .ok_or(ApiError::Bbb(messages::INVALID_MEETING_ID))?;
    let node = state
        .nodes
        .load()
        .get(route.node)
        .cloned()
        .ok_or(ApiError::Bbb(messages::INVALID_MEETING_ID))?;
    if let Some(max) = integration.max_users {
        let users = state
            .integration_users
            .load()
            .get(&integration.id)
            .copied()
            .unwrap_or(0);
        if users >= max {
            return Err(ApiError::PermissionDenied(
                "This application is not allowed to have any more concurrent users.",
            ));
        }
    }
    let api = &state.config.api;
    let query = rewrite(
        &req.params,
        &Rewrite {
            drop: &["checksum"],
            exclude: &api.join_exclude_params,
            defaults: &api.default_join_params,
            overrides: &api.override_join_params,
        },
    );
    let data = json!({
        "fullName": req.params.get_trimmed("fullName"),
        "role": role_of(&req),
        "userID": req.params.get_trimmed("userID"),
    });
    let (id, integration_id, node_id) = (meeting_id.clone(), integration.id, node.id);
    let event = NewEvent::meeting(EventKind::UserJoined, integration_id, &id, node_id, data);
    state.store.log(event).await?;
    let redirect = req
        .params
        .get_trimmed("redirect")
        .is_none_or(|r| !r.eq_ignore_ascii_case("false"));
    if redirect {
        return Ok(Joined::Redirect(
            state.node_client.url(&node, "join", &query),
        ));
    }
    let answer = state
        .node_client
        .call(
            &node,
            "join",
            &query,
            None,
            "Unable to access meeting on server.",
        )
        .await?;
    Ok(Joined::Xml(
        answer.parse("Unable to access meeting on server.")?,
    ))
}

/// MODERATOR or VIEWER as far as the balancer can tell (role, else unknown with a password).
fn role_of(req: &ApiRequest) -> &'static str {
    match req
        .params
        .get_trimmed("role")
        .map(|r| r.to_ascii_uppercase())
        .as_deref()
    {
        Some("MODERATOR") => "moderator",
        Some("VIEWER") => "attendee",
        _ => "unknown",
    }
}
