//! The Mconf-LB additions to the BBB API: `getServers` (the pool as the balancer sees it; no
//! secrets) and `getMeetingEvents` (the calling integration's meeting history from the event
//! log).

use std::sync::Arc;

use conflux_shared::date::java_date;
use conflux_shared::response::messages;
use conflux_shared::{Element, Response};
use time::macros::format_description;

use super::error::ApiError;
use super::request::ApiRequest;
use crate::state::AppState;
use conflux_store::{Event, EventKind, Integration, NodeState, RunQuery};

pub fn get_servers(state: &AppState) -> Response {
    let mut servers = Element::new("servers");
    for node in &state.nodes.load().nodes {
        let host = conflux_shared::signed_url::host_of(&node.url);
        let base = node.url.trim_end_matches("/bigbluebutton/api");
        let (status, disable_state) = match node.state {
            NodeState::Enabled => (if node.online { 2 } else { 3 }, 3),
            NodeState::Cordoned => (if node.online { 2 } else { 3 }, 1),
            NodeState::Disabled => (if node.online { 2 } else { 4 }, 1),
        };
        servers.push(
            Element::new("server")
                .with_text("name", &node.name)
                .with_text("address", &host)
                .with_text("url", base)
                .with_text("apiUrl", &node.url)
                .with_text("status", status)
                .with_text("disableState", disable_state)
                .with(Element::new("geoloc").with_text("address", &host))
                .with_text("isDisabled", node.state != NodeState::Enabled),
        );
    }
    Response::success(conflux_shared::Body::Fields(vec![servers]))
}

/// Events answered at most per call (`limit`, as Mconf-LB).
const MAX_EVENTS: u32 = 100;
/// Users listed at most per event.
const MAX_USERS: u32 = 1000;

pub async fn get_meeting_events(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: Arc<Integration>,
) -> Result<Response, ApiError> {
    let q = &req.params;
    let day = |name: &str, default: i64| -> Result<i64, ApiError> {
        match q.get_trimmed(name) {
            None => Ok(default),
            Some(text) => time::Date::parse(&text, format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
                .map_err(|_| ApiError::Bbb(messages::INVALID_PARAMETERS)),
        }
    };
    let from = day("createdAt", 0)?;
    let to = day("endedAt", i64::MAX - 86_400_000)?.saturating_add(86_400_000);
    let min_users: usize = q
        .get_trimmed("users")
        .map_or(Ok(1), |u| u.parse())
        .map_err(|_| ApiError::Bbb(messages::INVALID_PARAMETERS))?;
    let number = |name: &str, default: u32| -> Result<u32, ApiError> {
        q.get_trimmed(name)
            .map_or(Ok(default), |v| v.parse())
            .map_err(|_| ApiError::Bbb(messages::INVALID_PARAMETERS))
    };
    let limit = number("limit", 50)?.clamp(1, MAX_EVENTS);
    let offset = number("offset", 0)?;
    let nodes = state.nodes.load_full();
    let query = RunQuery {
        integration: integration.id,
        from,
        to,
        min_users,
        offset,
        limit,
    };
    let events = state.store.meeting_runs(query).await?;
    let mut list = Element::new("events");
    for (created, later) in events {
        let users: Vec<&Event> = later
            .iter()
            .filter(|e| e.kind == EventKind::UserJoined.as_str())
            .collect();
        let ended = later
            .iter()
            .find(|e| e.kind == EventKind::MeetingEnded.as_str())
            .map_or(0, |e| e.at);
        let node = created.node_id.and_then(|n| nodes.get(n).cloned());
        let mut users_e = Element::new("users");
        for u in users.into_iter().take(MAX_USERS as usize) {
            users_e.push(
                Element::new("user")
                    .with_text("name", u.data["fullName"].as_str().unwrap_or_default())
                    .with_text("role", u.data["role"].as_str().unwrap_or("attendee"))
                    .with_text("createdAt", u.at),
            );
        }
        let mut query = Element::new("query");
        if let Some(params) = created.data["query"].as_object() {
            for (k, v) in params {
                query.push(Element::text(k.clone(), v.as_str().unwrap_or_default()));
            }
        }
        list.push(
            Element::new("event")
                .with_text(
                    "meetingID",
                    created.meeting_id.as_deref().unwrap_or_default(),
                )
                .with_text("name", created.data["name"].as_str().unwrap_or_default())
                .with_text("createdAt", created.at)
                .with_text(
                    "createDate",
                    java_date(u64::try_from(created.at).unwrap_or(0)),
                )
                .with_text("endedAt", ended)
                .with(
                    Element::new("server")
                        .with_text("name", node.as_ref().map_or("", |n| n.name.as_str()))
                        .with_text("url", node.as_ref().map_or("", |n| n.url.as_str())),
                )
                .with(users_e)
                .with(query),
        );
    }
    Ok(Response::success(conflux_shared::Body::Fields(vec![list])))
}
