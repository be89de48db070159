//! `join`: the browser must reach the node itself (its session cookie lives there), so the
//! balancer answers with a 302 to the node's join URL signed with the node's secret, as
//! Scalelite does; with `redirect=false` it proxies and returns the node's XML.
//!
//! A join the balancer refuses (bad checksum, unknown meeting, missing fullName, a plan limit)
//! sends the browser back as bbb-web 2.7 does: a 302 to the join's `errorRedirectUrl` (only
//! from a correctly signed join: else anyone could make the balancer redirect anywhere), else
//! the meeting's `logoutURL`, else `api.join_error_url`, with
//! `?errors=[{"message":...,"key":...}]`. With `redirect=false`, or nowhere to go, the error
//! is BBB's XML.

use std::sync::Arc;

use conflux_shared::response::messages;
use conflux_shared::Response;
use serde_json::json;

use super::error::ApiError;
use super::params::{effective, rewrite, Rewrite};
use super::request::ApiRequest;
use super::Answer;
use crate::config::ApiConfig;
use crate::state::AppState;
use conflux_shared::query::encode;
use conflux_shared::signed_url::is_web_url;
use conflux_store::{EventKind, Integration, NewEvent, NodeState};

/// What a join the balancer accepted answers: a redirect or XML.
pub(super) enum Joined {
    Redirect(String),
    Xml(Response),
}

/// Answers a join whose checksum check gave `authenticated`.
pub async fn answer(
    state: &Arc<AppState>,
    req: ApiRequest,
    authenticated: Result<Arc<Integration>, ApiError>,
) -> Answer {
    let signed = authenticated.is_ok();
    let joined = match authenticated {
        Ok(integration) => handle(state, &req, integration).await,
        Err(e) => Err(e),
    };
    let error = match joined {
        Ok(Joined::Redirect(url)) => return Answer::Redirect(url),
        Ok(Joined::Xml(response)) => return Answer::Xml(response),
        Err(e) => e,
    };
    let target = match redirects(state, &req) {
        true => error_target(state, &req, signed).await,
        false => None,
    };
    match target {
        Some(target) => {
            tracing::debug!(error = %error, %target, "Join refused; the browser is sent back.");
            Answer::Redirect(with_errors(&target, &error))
        }
        None => Answer::Xml(error.into_response()),
    }
}

/// Whether the join redirects the browser: `redirect` as the node would get it (an override
/// wins over the client's), true unless `false`.
fn redirects(state: &AppState, req: &ApiRequest) -> bool {
    effective(&req.params, &rules(&state.config.api), "redirect")
        .is_none_or(|r| !r.eq_ignore_ascii_case("false"))
}

fn rules(api: &ApiConfig) -> Rewrite<'_> {
    Rewrite {
        drop: &["checksum"],
        exclude: &api.join_exclude_params,
        defaults: &api.default_join_params,
        overrides: &api.override_join_params,
    }
}

/// Where a refused join sends the browser: the signed join's `errorRedirectUrl`, the meeting's
/// `logoutURL`, the configured default.
async fn error_target(state: &AppState, req: &ApiRequest, signed: bool) -> Option<String> {
    let asked = signed
        .then(|| req.params.get_trimmed("errorRedirectUrl"))
        .flatten()
        .filter(|u| is_web_url(u));
    if asked.is_some() {
        return asked;
    }
    let meeting = match req.params.get_trimmed("meetingID") {
        Some(id) => state.store.meeting(&id).await.ok().flatten(),
        None => None,
    };
    meeting
        .and_then(|m| m.logout_url)
        .filter(|u| is_web_url(u))
        .or_else(|| state.config.api.join_error_url.clone())
}

/// `target` with bbb-web's `errors` parameter: a JSON list of the error's key and message.
fn with_errors(target: &str, error: &ApiError) -> String {
    let errors = json!([{ "message": error.message(), "key": error.message_key() }]);
    let separator = if target.contains('?') { '&' } else { '?' };
    format!("{target}{separator}errors={}", encode(&errors.to_string()))
}

pub(super) async fn handle(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: Arc<Integration>,
) -> Result<Joined, ApiError> {
    let meeting_id = req.meeting_id()?;
    if req.params.get_trimmed("fullName").is_none() {
        return Err(ApiError::Bbb(messages::MISSING_FULL_NAME));
    }
    // A move of the meeting to its first user's node, under way here: follow it.
    state.moving.wait(&meeting_id).await;
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
    if node.state == NodeState::Disabled || !node.online {
        return Err(ApiError::Bbb(messages::SERVER_UNAVAILABLE));
    }
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
    let mut query = rewrite(&req.params, &rules(&state.config.api));
    let moved = super::relocate::first_join(state, req, &integration, &meeting_id, &node).await;
    let node = match moved {
        Some(moved) => {
            // The meeting's createTime is the new node's now: a join naming the old one would
            // be refused there.
            query = without(&query, "createTime");
            moved
        }
        None => node,
    };
    let data = json!({
        "fullName": req.params.get_trimmed("fullName"),
        "role": role_of(req),
        "userID": req.params.get_trimmed("userID"),
    });
    let (id, integration_id, node_id) = (meeting_id.clone(), integration.id, node.id);
    let event = NewEvent::meeting(EventKind::UserJoined, integration_id, &id, node_id, data);
    state.store.log(event).await?;
    state.changing.mark(&meeting_id);
    state.bump_load(&node);
    if redirects(state, req) {
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
            crate::node_client::MEETING_CONTEXT,
        )
        .await?;
    Ok(Joined::Xml(
        answer.parse(crate::node_client::MEETING_CONTEXT)?,
    ))
}

/// `query` without the parameter `name`.
fn without(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
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
