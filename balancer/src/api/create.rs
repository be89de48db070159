//! `create`: place a new meeting (or find the node of a running one), rewrite the parameters,
//! forward, record the meeting and answer with the node's response.

use std::sync::Arc;

use conflux_shared::response::{messages, Body, Meeting};
use conflux_shared::transfer;
use conflux_shared::Response;
use serde_json::json;

use super::error::ApiError;
use super::params::{effective, rewrite, Rewrite};
use super::request::ApiRequest;
use crate::node_client::NodeError;
use crate::placement::{self, Candidate, NoPlacement, Policy, Wish};
use crate::state::{AppState, Route};
use conflux_store::{EventKind, Integration, NewEvent, NewMeeting, Node, NodeState};

pub(super) const CREATE_FAILED: &str = "Unable to create meeting on server.";

/// Parameters the balancer consumes itself.
const BALANCER_PARAMS: [&str; 2] = ["checksum", "preferredServer"];
/// Scalelite's server tag: read by placement, and the node gets only the tag it was chosen for.
const SERVER_TAG: &str = "meta_server-tag";

pub async fn handle(
    state: &Arc<AppState>,
    req: ApiRequest,
    integration: Arc<Integration>,
) -> Result<Response, ApiError> {
    let meeting_id = req.meeting_id()?;
    if req.params.params().iter().any(|p| {
        let name = p.name.to_ascii_lowercase();
        name.starts_with("meta_mconflb-")
            || name
                .strip_prefix("meta_")
                .is_some_and(|k| k.starts_with(transfer::RESERVED_META_PREFIX))
    }) {
        return Err(ApiError::Bbb(messages::INVALID_PARAMETERS));
    }
    let wants_record = req
        .params
        .get_trimmed("record")
        .is_some_and(|r| r.eq_ignore_ascii_case("true"));
    if wants_record && !integration.recording_allowed {
        return Err(ApiError::PermissionDenied(
            "This application is not allowed to record meetings.",
        ));
    }
    let existing = state.find_route(&meeting_id).await;
    let ((mut node, tag), is_new) = match existing {
        Some(route) if route.integration != integration.id => {
            return Err(ApiError::Bbb(messages::ID_NOT_UNIQUE))
        }
        Some(route) => match state.nodes.load().get(route.node).cloned() {
            Some(node)
                if node.state == NodeState::Enabled
                    || running_on(state, &node, &meeting_id).await =>
            {
                ((node, None), false)
            }
            Some(_) => {
                // Pinned to a cordoned (Scalelite) or disabled node that no longer runs it:
                // placed again.
                forget(state, &meeting_id).await;
                (place(state, &req, &integration, &meeting_id).await?, true)
            }
            None => (place(state, &req, &integration, &meeting_id).await?, true),
        },
        None => (place(state, &req, &integration, &meeting_id).await?, true),
    };
    let query_for = |tag: Option<String>| {
        node_query(
            state,
            &req,
            &integration,
            &meeting_id,
            wants_record,
            tag.as_deref(),
        )
    };
    let mut query = query_for(tag);
    let body = req.node_body();
    let mut attempts = 0;
    let mut failovers = 0;
    let response = loop {
        let answer = state
            .node_client
            .call(&node, "create", &query, body.clone(), CREATE_FAILED)
            .await;
        let response = match answer.and_then(|a| a.parse(CREATE_FAILED)) {
            Ok(r) => r,
            Err(NodeError::Unreachable { detail, .. }) if is_new && failovers < FAILOVERS => {
                // Nothing reached the node: it is suspect at once (the poller clears it when
                // the node answers again) and the meeting goes to the next candidate.
                suspect(state, &node, &detail);
                forget(state, &meeting_id).await;
                failovers += 1;
                let (next, tag) = place(state, &req, &integration, &meeting_id).await?;
                node = next;
                query = query_for(tag);
                continue;
            }
            Err(e) => {
                if let NodeError::Unreachable { detail, .. } = &e {
                    suspect(state, &node, detail);
                }
                if is_new {
                    forget(state, &meeting_id).await;
                }
                return Err(e.into());
            }
        };
        // voiceBridge is unique per node, not per network: the balancer picks another and the
        // client reads the one used from the answer (Mconf-LB).
        if response.key() != Some("nonUniqueVoiceBridge") || attempts >= 5 {
            break response;
        }
        attempts += 1;
        query = with_voice_bridge(&query, &random_voice_bridge());
    };
    match (&response.body, response.is_success()) {
        (Body::Created(created), true) => {
            let info = Meeting {
                meeting_name: req.params.get_trimmed("name").unwrap_or_default(),
                meeting_id: created.meeting_id.clone(),
                internal_meeting_id: created.internal_meeting_id.clone(),
                create_time: created.create_time,
                create_date: created.create_date.clone(),
                voice_bridge: created.voice_bridge.clone(),
                dial_number: created.dial_number.clone(),
                attendee_pw: created.attendee_pw.clone(),
                moderator_pw: created.moderator_pw.clone(),
                duration: created.duration,
                recording: wants_record
                    && (integration.recorder.is_some()
                        || !state.config.recordings.require_recorder),
                metadata: req
                    .params
                    .with_prefix("meta_")
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                    .collect(),
                ..Meeting::default()
            };
            if is_new {
                // Kept so that the meeting can move to its first user's node (`relocate`).
                let replay = body.is_none().then(|| query.clone());
                record_created(state, &meeting_id, &integration, &node, &req, info, replay).await?;
            }
        }
        _ if is_new => forget(state, &meeting_id).await,
        _ => {}
    }
    Ok(response)
}

/// Nodes tried after the first when they cannot be reached.
const FAILOVERS: u32 = 3;

/// Marks `node` as failing its API check now, so placement skips it until the poller sees it
/// answer again.
fn suspect(state: &AppState, node: &Node, detail: &str) {
    tracing::warn!(node = %node.name, detail, "Node unreachable on create; placing elsewhere.");
    state.monitor.set(
        node.id,
        conflux_shared::status::CheckName::Api,
        conflux_shared::status::Status::Critical,
        format!("create could not connect: {detail}"),
    );
}

/// Chooses a node, stores the meeting and its route before forwarding (so concurrent calls
/// for the same meeting find it).
async fn place(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: &Integration,
    meeting_id: &str,
) -> Result<(Arc<Node>, Option<String>), ApiError> {
    if let Some(max) = integration.max_meetings {
        if state.meetings_of(integration.id) >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(ApiError::PermissionDenied(
                "This application is not allowed to have any more concurrent meetings.",
            ));
        }
    }
    let client_ip = located_by(req, integration);
    let client = client_ip
        .and_then(|ip| state.monitor.geoip.locate(ip))
        .map(|place| place.position);
    let tag = effective(&req.params, &create_rules(state), SERVER_TAG);
    let wish = Wish {
        tag: tag.as_deref(),
        preferred: req.params.get("preferredServer"),
        client,
    };
    let (node, decision) = choose(state, &wish)?;
    tracing::info!(meeting_id, node = %node.name, reason = %decision.reason, "Meeting placed.");
    let new = NewMeeting {
        meeting_id: meeting_id.to_owned(),
        integration_id: integration.id,
        node_id: node.id,
        name: req.params.get_trimmed("name").unwrap_or_default(),
        client_ip: client_ip.map(|ip| ip.to_string()),
        placement_reason: decision.reason,
        logout_url: effective(&req.params, &create_rules(state), "logoutURL"),
    };
    state.store.add_meeting(new).await?;
    state.set_route(
        meeting_id,
        Some(Route {
            integration: integration.id,
            node: node.id,
        }),
    );
    Ok((node, decision.tag))
}

/// Chooses a node for `wish` and counts the placement (burst protection, Scalelite's load).
pub(super) fn choose(
    state: &AppState,
    wish: &Wish<'_>,
) -> Result<(Arc<Node>, placement::Decision), ApiError> {
    let nodes = state.nodes.load();
    let now = conflux_store::now_ms();
    let config = &state.config;
    let mut candidates: Vec<Candidate> = nodes
        .nodes
        .iter()
        .zip(&nodes.hosts)
        .map(|(n, host)| Candidate {
            id: n.id,
            name: &n.name,
            host,
            eligible: n.state == NodeState::Enabled && n.online && state.monitor.accepts(n),
            load: 0.0,
            tags: &n.tags,
            position: state.monitor.position(n),
            cpu: state.monitor.cpu(n.id, config, now),
            users: n.users,
            meetings: n.meetings,
        })
        .collect();
    // Choosing and counting the placement happen under one lock, so concurrent creates on
    // different threads see each other's placements.
    let decision = state
        .place(config.placement.join_buffer, |young| {
            // Exactly Scalelite's under its policy: the poll's load, + 1 per create and join since.
            let scalelite = (config.placement.rules.policy == Policy::Scalelite)
                .then(|| state.scalelite_loads(&nodes.nodes));
            for (i, (c, n)) in candidates.iter_mut().zip(&nodes.nodes).enumerate() {
                let young = young.get(&n.id).copied().unwrap_or(0);
                c.load = if let Some(loads) = &scalelite {
                    loads[i]
                } else {
                    // Conflux's burst protection: each young meeting weighs min_user_count.
                    placement::load(
                        n.users,
                        young,
                        config.placement.min_user_count,
                        n.load_multiplier,
                    )
                };
                c.meetings += young;
            }
            let decision = placement::choose(&candidates, wish, &config.placement.rules)?;
            if let Some(node) = nodes.get(decision.node) {
                state.bump_load(node);
            }
            Ok(decision)
        })
        .map_err(|e| match e {
            NoPlacement::NoServer => ApiError::NoServer,
            NoPlacement::TagUnavailable(tag) => ApiError::NoTaggedServer(tag),
        })?;
    let node = nodes
        .get(decision.node)
        .cloned()
        .ok_or(ApiError::NoServer)?;
    Ok((node, decision))
}

async fn record_created(
    state: &Arc<AppState>,
    meeting_id: &str,
    integration: &Integration,
    node: &Node,
    req: &ApiRequest,
    info: Meeting,
    create_query: Option<String>,
) -> Result<(), ApiError> {
    let (id, integration_id, node_id) = (meeting_id.to_owned(), integration.id, node.id);
    let params: serde_json::Map<String, serde_json::Value> = req
        .params
        .params()
        .iter()
        .filter(|p| !p.name.ends_with("PW") && p.name != "checksum")
        .map(|p| (p.name.clone(), json!(p.value)))
        .collect();
    let data = json!({ "name": info.meeting_name, "node": node.name, "query": params });
    let xml = info.to_element().to_xml();
    let internal = info.internal_meeting_id.clone();
    let event = NewEvent::meeting(
        EventKind::MeetingCreated,
        integration_id,
        &id,
        node_id,
        data,
    );
    state
        .store
        .meeting_created(internal, xml, create_query, event)
        .await?;
    // After the write, so no stale list is cached as current.
    state.meetings_changed_in(integration_id);
    Ok(())
}

/// The address whose location places the meeting: the user the integration names in
/// X-Forwarded-For when it passes them (Mconf; on unless switched off), else the client.
pub(super) fn located_by(req: &ApiRequest, integration: &Integration) -> Option<std::net::IpAddr> {
    match integration.forwarded_for {
        true => req.user_ip.or(req.client_ip),
        false => req.client_ip,
    }
}

/// Whether `node` says the meeting runs there (false when it does not answer).
async fn running_on(state: &AppState, node: &Node, meeting_id: &str) -> bool {
    let answer = state
        .node_client
        .meeting_call(node, "isMeetingRunning", meeting_id)
        .await;
    answer.is_ok_and(|r| r.field("running") == Some("true"))
}

/// Drops a meeting the node refused or never got.
async fn forget(state: &Arc<AppState>, meeting_id: &str) {
    if let Err(e) = state.store.remove_meeting(meeting_id, None).await {
        tracing::error!(error = %e, meeting_id, "Could not forget a meeting.");
    }
    state.set_route(meeting_id, None);
}

/// The create query for the node: balancer parameters dropped, configured rules applied,
/// `duration` capped by MAX_MEETING_DURATION. A recorded meeting (Mconf's recording
/// architecture) keeps its record flag only when its integration has a recording server; then
/// the metadata names the institution and the server's key (the agent fetches it by
/// fingerprint), and the recording-ready URL is held back: the balancer calls it once the
/// recording is on the recorder, not when the node has processed it. `meta_server-tag` is
/// `tag`, the one the node was chosen for (Scalelite: no `!`, none for an untagged node), and
/// `meta_tenant-id`/`meta_tenant-name` name the integration. With `api.public_url`, the
/// callbacks BBB makes point at the balancer, which relays them (`callbacks`).
fn node_query(
    state: &AppState,
    req: &ApiRequest,
    integration: &Integration,
    meeting_id: &str,
    wants_record: bool,
    tag: Option<&str>,
) -> String {
    let api = &state.config.api;
    let not_tag = |(k, _): &&(String, String)| k != SERVER_TAG;
    let mut overrides: Vec<_> = api
        .override_create_params
        .iter()
        .filter(not_tag)
        .cloned()
        .collect();
    let defaults: Vec<_> = api
        .default_create_params
        .iter()
        .filter(not_tag)
        .cloned()
        .collect();
    let mut exclude = api.create_exclude_params.clone();
    exclude.push(SERVER_TAG.into());
    if let Some(tag) = tag {
        overrides.push((SERVER_TAG.into(), tag.into()));
    }
    // Scalelite's tenant metadata: the node's recordings name their owner without the store.
    overrides.push(("meta_tenant-id".into(), integration.id.0.to_string()));
    overrides.push(("meta_tenant-name".into(), integration.name.clone()));
    if api.max_meeting_duration > 0 {
        let asked = req
            .params
            .get_trimmed("duration")
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0);
        if asked == 0 || asked > api.max_meeting_duration {
            overrides.push(("duration".into(), api.max_meeting_duration.to_string()));
        }
    }
    let to_recorder = integration.recorder.is_some() && wants_record;
    if let Some(public_url) = &api.public_url {
        let (dropped, relayed) = crate::callbacks::node_metadata(
            public_url,
            integration,
            meeting_id,
            &req.params,
            !to_recorder,
        );
        exclude.extend(dropped);
        overrides.extend(relayed);
    }
    match (&integration.recorder, wants_record) {
        (Some(recorder), true) => {
            overrides.push((
                format!("meta_{}", transfer::META_INSTITUTION),
                integration.id.0.to_string(),
            ));
            overrides.push((
                format!("meta_{}", transfer::META_RECORDER),
                recorder.fingerprint.clone(),
            ));
            exclude.extend(
                conflux_shared::transfer::READY_URL_KEYS
                    .iter()
                    .map(|k| (*k).to_owned()),
            );
        }
        (None, true) if state.config.recordings.require_recorder => {
            overrides.push(("record".into(), "false".into()));
        }
        _ => {}
    }
    rewrite(
        &req.params,
        &Rewrite {
            drop: &BALANCER_PARAMS,
            exclude: &exclude,
            defaults: &defaults,
            overrides: &overrides,
        },
    )
}

/// The integration's create parameters as the configuration rewrites them.
fn create_rules(state: &AppState) -> Rewrite<'_> {
    let api = &state.config.api;
    Rewrite {
        drop: &BALANCER_PARAMS,
        exclude: &api.create_exclude_params,
        defaults: &api.default_create_params,
        overrides: &api.override_create_params,
    }
}

/// `query` with its voiceBridge replaced by `voice_bridge`.
fn with_voice_bridge(query: &str, voice_bridge: &str) -> String {
    let replacement = format!("voiceBridge={voice_bridge}");
    let mut pieces: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("voiceBridge="))
        .collect();
    pieces.push(&replacement);
    pieces.join("&")
}

fn random_voice_bridge() -> String {
    use rand::Rng;
    rand::rng().random_range(70_000..100_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_bridge_is_replaced_in_place_of_the_old_one() {
        assert_eq!(
            with_voice_bridge("meetingID=a&voiceBridge=71111&name=x", "72222"),
            "meetingID=a&name=x&voiceBridge=72222"
        );
        assert_eq!(
            with_voice_bridge("meetingID=a", "72222"),
            "meetingID=a&voiceBridge=72222"
        );
    }
}
