//! Mconf's "location of the first user who joins" (seed 000). A front-end that creates its
//! meetings ahead of time, from its own server, has them placed by where that server is. The
//! first join is the balancer's first sight of the user: when that user is farther than
//! `placement.radius_km` from the meeting's node and placement, from the user's location, picks
//! a node within that radius, the meeting moves there once, before anyone entered it:
//!
//! 1. the move is claimed in the store (`Store::claim_relocation`): only for a meeting nobody
//!    joined yet, created without a body (its create, as forwarded, was kept), not moved
//!    before, so one join on one balancer does it;
//! 2. the old node is asked: nobody may be in the meeting;
//! 3. the kept create is repeated on the new node, and the meeting, its route and a
//!    `meeting_created` event for the new node are stored;
//! 4. the meeting is ended on the old node.
//!
//! Any step failing leaves the meeting where it is. This balancer's other joins of the meeting
//! wait for the move (`moving::Moving`) and follow it.

use std::sync::Arc;

use conflux_shared::response::{Body, Meeting};
use conflux_shared::Query;
use conflux_store::{EventKind, Integration, NewEvent, Node};
use serde_json::json;

use super::create::{choose, located_by, CREATE_FAILED};
use super::request::ApiRequest;
use crate::placement::{Policy, Wish};
use crate::state::{AppState, Route};

/// The node the join should go to when its meeting moved to it; `None`: stay.
pub(super) async fn first_join(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: &Integration,
    meeting_id: &str,
    from: &Arc<Node>,
) -> Option<Arc<Node>> {
    let rules = &state.config.placement.rules;
    if rules.policy != Policy::Geo {
        return None;
    }
    let user = located_by(req, integration)
        .and_then(|ip| state.monitor.geoip.locate(ip))?
        .position;
    let here = state.monitor.position(from)?;
    let far = here.distance_km(user);
    if far <= rules.radius_km {
        return None;
    }
    let query = match state.store.claim_relocation(meeting_id, from.id).await {
        Ok(query) => query?,
        Err(e) => {
            tracing::error!(error = %e, meeting_id, "Could not claim a meeting's move.");
            return None;
        }
    };
    let _move = state.moving.start(meeting_id);
    let tag = Query::parse(&query)
        .ok()
        .and_then(|q| q.get_trimmed("meta_server-tag"));
    let wish = Wish {
        tag: tag.as_deref(),
        preferred: None,
        client: Some(user),
    };
    let (to, decision) = choose(state, &wish).ok()?;
    let near = state.monitor.position(&to).map(|p| p.distance_km(user));
    if to.id == from.id || near.is_none_or(|km| km > rules.radius_km) {
        return None;
    }
    if !empty_on(state, from, meeting_id).await {
        return None;
    }
    let created = match state
        .node_client
        .call(&to, "create", &query, None, CREATE_FAILED)
        .await
        .and_then(|a| a.parse(CREATE_FAILED))
    {
        Ok(r) if r.is_success() => match r.body {
            Body::Created(created) => created,
            _ => return None,
        },
        Ok(r) => {
            tracing::warn!(meeting_id, node = %to.name, key = ?r.key(), "The move's create was refused.");
            return None;
        }
        Err(e) => {
            tracing::warn!(meeting_id, node = %to.name, error = %e, "The move's create failed.");
            return None;
        }
    };
    let stored = state.store.meeting(meeting_id).await.ok().flatten();
    let mut info = stored
        .and_then(|m| m.info_xml)
        .and_then(|xml| conflux_shared::Element::parse(&xml).ok())
        .and_then(|e| Meeting::from_element(&e).ok())
        .unwrap_or_default();
    info.meeting_id = created.meeting_id.clone();
    info.internal_meeting_id = created.internal_meeting_id.clone();
    info.create_time = created.create_time;
    info.create_date = created.create_date.clone();
    info.voice_bridge = created.voice_bridge.clone();
    info.dial_number = created.dial_number.clone();
    let reason = format!(
        "moved at its first join, the user being {far:.0} km from {}: {}",
        from.name, decision.reason
    );
    let params = state
        .store
        .created_params(meeting_id, integration.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let event = NewEvent::meeting(
        EventKind::MeetingCreated,
        integration.id,
        meeting_id,
        to.id,
        json!({ "name": info.meeting_name, "node": to.name, "query": params, "moved_from": from.name }),
    );
    let moved = state
        .store
        .relocate_meeting(
            from.id,
            to.id,
            info.internal_meeting_id.clone(),
            info.to_element().to_xml(),
            reason.clone(),
            event,
        )
        .await;
    if !matches!(moved, Ok(true)) {
        // Ended or removed meanwhile: the copy on the new node goes too.
        let _ = state.node_client.meeting_call(&to, "end", meeting_id).await;
        return None;
    }
    state.set_route(
        meeting_id,
        Some(Route {
            integration: integration.id,
            node: to.id,
        }),
    );
    tracing::info!(meeting_id, from = %from.name, to = %to.name, %reason, "Meeting moved to its first user.");
    if let Err(e) = state
        .node_client
        .meeting_call(from, "end", meeting_id)
        .await
    {
        tracing::warn!(meeting_id, node = %from.name, error = %e, "Could not end a moved meeting on its old node.");
    }
    Some(to)
}

/// Whether `node` says nobody is in the meeting (false when it cannot tell).
async fn empty_on(state: &AppState, node: &Node, meeting_id: &str) -> bool {
    let answer = state
        .node_client
        .meeting_call(node, "getMeetingInfo", meeting_id)
        .await;
    match answer {
        Ok(r) if r.is_success() => match r.body {
            Body::Meeting(m) => !m.has_user_joined && m.participant_count == 0,
            _ => false,
        },
        _ => false,
    }
}
