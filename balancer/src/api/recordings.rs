//! The recording calls. `getRecordings` is answered from the store (recordings the poller found
//! on the nodes, owned by the integration whose meeting produced them); publish, delete and
//! update are carried to the node holding each recording and then recorded;
//! getRecordingTextTracks is proxied to that node.

use std::collections::BTreeMap;
use std::sync::Arc;

use conflux_shared::response::{messages, Body, Message, Recording, RecordingQuery};
use conflux_shared::{query::encode, Element, Response};

use super::error::ApiError;
use super::request::ApiRequest;
use super::{forward, Answer};
use crate::state::AppState;
use crate::store::{self, Integration, NodeId};

const MISSING_PARAMETERS: Message = Message {
    key: "missingParameters",
    text: "param meetingID or recordID must be included.",
};

pub async fn handle(
    state: &Arc<AppState>,
    req: ApiRequest,
    integration: Integration,
) -> Result<Answer, ApiError> {
    let api = &state.config.api;
    if api.recording_disabled {
        return Ok(Answer::Xml(match req.call.as_str() {
            "getRecordings" => Response::success(Body::Recordings(Vec::new()))
                .with_message(messages::NO_RECORDINGS),
            _ => Response::failed(messages::RECORDINGS_NOT_FOUND),
        }));
    }
    let stored = owned(state, &integration).await?;
    if req.call == "getRecordings" {
        let filters = RecordingQuery::from_query(&req.params)?;
        if api.get_recordings_filtered && !filters.is_filtered() {
            return Err(ApiError::Bbb(MISSING_PARAMETERS));
        }
        let found = filters.apply(stored.into_iter().map(|(r, _)| r));
        let empty = found.is_empty();
        let response = Response::success(Body::Recordings(found));
        return Ok(Answer::Xml(if empty {
            response.with_message(messages::NO_RECORDINGS)
        } else {
            response
        }));
    }
    let ids = req.params.list("recordID");
    if ids.is_empty() {
        return Err(ApiError::Bbb(messages::MISSING_RECORD_ID));
    }
    if req.call == "publishRecordings"
        && !matches!(
            req.params.get_trimmed("publish").as_deref(),
            Some("true" | "false")
        )
    {
        return Err(ApiError::Bbb(messages::MISSING_PUBLISH));
    }
    let mut by_node: BTreeMap<NodeId, Vec<Recording>> = BTreeMap::new();
    for (recording, node) in stored
        .into_iter()
        .filter(|(r, _)| ids.contains(&r.record_id))
    {
        if let Some(node) = node {
            by_node.entry(node).or_default().push(recording);
        }
    }
    if by_node.is_empty() {
        return Err(if req.call == "getRecordingTextTracks" {
            ApiError::Bbb(Message {
                key: "noRecordings",
                text: "No recording found",
            })
        } else {
            ApiError::Bbb(messages::RECORDINGS_NOT_FOUND)
        });
    }
    let rest = req.params_raw_without(&["checksum", "recordID"]);
    let mut last = None;
    for (node_id, recordings) in by_node {
        let Some(node) = state.nodes.load().get(node_id).cloned() else {
            continue;
        };
        let list: Vec<&str> = recordings.iter().map(|r| r.record_id.as_str()).collect();
        let query = [
            format!("recordID={}", encode(&list.join(","))),
            rest.clone(),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("&");
        let answer = forward::call(
            state,
            &node,
            &req.call,
            &query,
            None,
            "Unable to access server.",
        )
        .await?;
        if req.call == "getRecordingTextTracks" {
            return Ok(Answer::Json(answer.body));
        }
        let response = answer.parse("Unable to access server.")?;
        if response.is_success() {
            record_change(state, &req, &integration, node_id, recordings).await?;
        }
        last = Some(response);
    }
    last.map(Answer::Xml)
        .ok_or(ApiError::Bbb(messages::RECORDINGS_NOT_FOUND))
}

/// The integration's stored recordings with the node holding each.
async fn owned(
    state: &Arc<AppState>,
    integration: &Integration,
) -> Result<Vec<(Recording, Option<NodeId>)>, ApiError> {
    let id = integration.id;
    let rows = state
        .store
        .run(move |c| store::recordings::for_integration(c, id))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let element = Element::parse(&row.xml).ok()?;
            Some((Recording::from_element(&element).ok()?, row.node_id))
        })
        .collect())
}

/// Applies a successful publish/delete/update to the stored copies.
async fn record_change(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: &Integration,
    node: NodeId,
    recordings: Vec<Recording>,
) -> Result<(), ApiError> {
    let publish = req.params.get_trimmed("publish").map(|p| p == "true");
    let meta: Vec<(String, String)> = req
        .params
        .with_prefix("meta_")
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let call = req.call.clone();
    let integration_id = integration.id;
    state
        .store
        .run(move |c| {
            for mut r in recordings {
                match call.as_str() {
                    "publishRecordings" if r.state != "deleted" => {
                        let published = publish.unwrap_or(r.published);
                        r.published = published;
                        r.state = if published {
                            "published"
                        } else {
                            "unpublished"
                        }
                        .into();
                    }
                    "deleteRecordings" => {
                        r.published = false;
                        r.state = "deleted".into();
                    }
                    "updateRecordings" => {
                        for (key, value) in &meta {
                            r.metadata.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
                            if !value.is_empty() {
                                r.metadata.push((key.clone(), value.clone()));
                            }
                        }
                    }
                    _ => {}
                }
                let record = store::recordings::RecordingRecord {
                    record_id: r.record_id.clone(),
                    integration_id,
                    node_id: Some(node),
                    meeting_id: r.meeting_id.clone(),
                    state: r.state.clone(),
                    xml: r.to_element().to_xml(),
                };
                store::recordings::upsert(c, &record, r.start_time)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}
