//! The recording calls. `getRecordings` is answered from the store: recordings the poller found
//! on nodes, and recordings that travel as encrypted archives to the integration's recording
//! server (listed as `processing` until the recorder has them, then with playback on the
//! recorder; protected ones get one-time links). publish, delete and update of archived
//! recordings are applied in the store and queued for the recorder; those of node-held
//! recordings are carried to the node; getRecordingTextTracks is proxied to the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use conflux_shared::response::{messages, Body, Message, MetaRule, Recording, RecordingQuery};
use conflux_shared::transfer::{self, Change};
use conflux_shared::{query::encode, Element, Response};

use super::error::ApiError;
use super::request::ApiRequest;
use super::Answer;
use crate::state::AppState;
use conflux_store::recordings::{ArchiveState, RecordingEdit, RecordingRecord};
use conflux_store::{self as store, Integration, NodeId};

const MISSING_PARAMETERS: Message = Message {
    key: "missingParameters",
    text: "param meetingID or recordID must be included.",
};

/// `api.recording_disabled`: no recordings, without a checksum (Scalelite).
pub fn disabled(call: &str) -> Response {
    match call {
        "getRecordings" => {
            Response::success(Body::Recordings(Vec::new())).with_message(messages::NO_RECORDINGS)
        }
        _ => Response::failed(messages::RECORDINGS_NOT_FOUND),
    }
}

pub async fn handle(
    state: &Arc<AppState>,
    req: ApiRequest,
    integration: Arc<Integration>,
) -> Result<Answer, ApiError> {
    if req.call == "getRecordings" {
        return list(state, &req, &integration).await;
    }
    let ids = req.params.list("recordID");
    if ids.is_empty() {
        return Err(ApiError::Bbb(messages::MISSING_RECORD_ID));
    }
    let publish = match req
        .params
        .get_trimmed("publish")
        .map(|p| p.to_ascii_lowercase())
        .as_deref()
    {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ if req.call == "publishRecordings" => {
            return Err(ApiError::Bbb(messages::MISSING_PUBLISH))
        }
        _ => None,
    };
    let mut rows = state.store.recordings_by_id(integration.id, ids).await?;
    if req.call != "deleteRecordings" {
        // A deleted recording is gone for publish and update too (BBB: notFound).
        rows.retain(|r| r.state != "deleted");
    }
    let (archived, on_nodes): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|r| r.archive.is_some());
    if archived.is_empty() && on_nodes.iter().all(|r| r.node_id.is_none()) {
        return Err(if req.call == "getRecordingTextTracks" {
            ApiError::Bbb(Message {
                key: "noRecordings",
                text: "No recording found",
            })
        } else {
            ApiError::Bbb(messages::RECORDINGS_NOT_FOUND)
        });
    }
    if req.call == "getRecordingTextTracks" && on_nodes.is_empty() {
        // Archived recordings carry their captions inside the recording on the recorder.
        return Ok(Answer::Json(
            r#"{"response":{"returncode":"SUCCESS","tracks":[]}}"#.into(),
        ));
    }
    let edit = Edit::from_request(&req, publish);
    let changed =
        !archived.is_empty() && change_archived(state, &integration, &edit, archived).await?;
    let answer = change_on_nodes(state, &req, &integration, &edit, on_nodes).await?;
    Ok(match answer {
        Some(answer) => answer,
        None => Answer::Xml(Response::success(Body::Fields(vec![
            match req.call.as_str() {
                "publishRecordings" => {
                    Element::text("published", publish.unwrap_or(false).to_string())
                }
                "deleteRecordings" => Element::text("deleted", "true"),
                _ => Element::text("updated", changed.to_string()),
            },
        ]))),
    })
}

/// getRecordings from the store: filters, state, metadata (Scalelite's rule) and pagination
/// as BBB 2.7 applies them, all in SQL on the store's indexes.
async fn list(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: &Integration,
) -> Result<Answer, ApiError> {
    let mut filters = RecordingQuery::from_query(&req.params)?;
    // Scalelite's rule: different meta_ keys OR-ed, a comma list of values within one.
    filters.meta_rule = MetaRule::AnyOf;
    if state.config.api.get_recordings_filtered && !filters.is_filtered() {
        return Err(ApiError::Bbb(MISSING_PARAMETERS));
    }
    let rows = state
        .store
        .recordings(integration.id, filters.clone())
        .await?;
    let found: Vec<Recording> = rows
        .iter()
        .filter_map(|row| present(state, integration, row))
        .collect();
    let empty = found.is_empty();
    let response = Response::success(Body::Recordings(found));
    Ok(Answer::Xml(if empty {
        response.with_message(messages::NO_RECORDINGS)
    } else {
        response
    }))
}

/// A stored recording as the integration sees it (Scalelite's document): the balancer's own
/// metadata and the repeated keys hidden, formats by name; archived ones say whether they are
/// protected, and protected playback links carry a fresh one-time token for the recorder.
fn present(
    state: &AppState,
    integration: &Integration,
    row: &RecordingRecord,
) -> Option<Recording> {
    let mut r = Recording::from_xml(&row.xml).ok()?;
    r.metadata.retain(|(k, _)| Recording::lists_meta(k));
    r.playback.sort_by(|a, b| a.format_type.cmp(&b.format_type));
    if row.archive.is_none() {
        return Some(r);
    }
    if row.archive == Some(ArchiveState::Failed) {
        // Refused by the recorder: said so, never left as a silent `processing`.
        r.state = "failed".into();
    }
    r.extra.retain(|e| e.name != "protected");
    r.extra
        .push(Element::text("protected", row.protected.to_string()));
    if row.protected {
        if let (Some(recorder), Some(secret)) = (&integration.recorder, integration.secrets.first())
        {
            let expires = store::now_ms() / 1000
                + i64::try_from(state.config.recordings.token_lifetime.as_secs()).unwrap_or(3600);
            for format in &mut r.playback {
                let token =
                    transfer::playback_token(&secret.0, &r.record_id, &format.format_type, expires);
                format.url = format!(
                    "{}/recording/{}/{}?token={token}",
                    recorder.url.trim_end_matches('/'),
                    encode(&r.record_id),
                    encode(&format.format_type)
                );
                format.preview = None;
            }
        }
    }
    Some(r)
}

/// What a publish/delete/update call asks for.
struct Edit {
    call: String,
    publish: Option<bool>,
    /// Lower-cased keys; an empty value removes the key.
    meta: Vec<(String, String)>,
    protect: Option<bool>,
}

impl Edit {
    fn from_request(req: &ApiRequest, publish: Option<bool>) -> Edit {
        Edit {
            call: req.call.clone(),
            publish,
            meta: req
                .params
                .with_prefix("meta_")
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .filter(|(k, _)| !k.starts_with(transfer::RESERVED_META_PREFIX))
                .collect(),
            protect: req
                .params
                .get_trimmed("protect")
                .map(|p| p.eq_ignore_ascii_case("true")),
        }
    }

    /// Applies the edit to `r`.
    fn apply(&self, r: &mut Recording) {
        match self.call.as_str() {
            "publishRecordings" if r.state != "deleted" => {
                let published = self.publish.unwrap_or(r.published);
                r.published = published;
                if r.state != "processing" {
                    r.state = if published {
                        "published"
                    } else {
                        "unpublished"
                    }
                    .into();
                }
            }
            "deleteRecordings" => r.mark_deleted(),
            "updateRecordings" => {
                for (key, value) in &self.meta {
                    r.metadata.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
                    if !value.is_empty() {
                        r.metadata.push((key.clone(), value.clone()));
                    }
                }
            }
            _ => {}
        }
    }

    /// The changes the recorder must apply.
    fn changes(&self) -> Vec<Change> {
        match self.call.as_str() {
            "publishRecordings" => self
                .publish
                .map(|published| Change::Publish { published })
                .into_iter()
                .collect(),
            "updateRecordings" => {
                let mut changes = Vec::new();
                if !self.meta.is_empty() {
                    changes.push(Change::Update {
                        meta: self.meta.clone(),
                    });
                }
                if let Some(protected) = self.protect {
                    changes.push(Change::Protect { protected });
                }
                changes
            }
            _ => Vec::new(),
        }
    }
}

/// Applies an edit to archived recordings in the store and queues it for the recorder; a
/// deletion also removes the balancer's copy of the archive. Whether any recording changed
/// (nothing is written when none did).
async fn change_archived(
    state: &Arc<AppState>,
    integration: &Integration,
    edit: &Edit,
    rows: Vec<RecordingRecord>,
) -> Result<bool, ApiError> {
    let deleting = edit.call == "deleteRecordings";
    let mut updates = Vec::new();
    for row in &rows {
        let Ok(mut r) = Recording::from_xml(&row.xml) else {
            continue;
        };
        edit.apply(&mut r);
        let protected = edit.protect.unwrap_or(row.protected);
        let xml = r.to_element().to_xml();
        if edit.call == "updateRecordings" && xml == row.xml && protected == row.protected {
            continue;
        }
        updates.push(RecordingEdit {
            record_id: row.record_id.clone(),
            state: r.state.clone(),
            xml,
            protected,
        });
    }
    if updates.is_empty() {
        return Ok(false);
    }
    let changes = edit.changes();
    state
        .store
        .edit_archived(integration.id, updates, changes, deleting)
        .await?;
    if deleting {
        for row in rows {
            crate::archives::discard(&state.config, &row.record_id);
        }
    }
    Ok(true)
}

/// Carries an edit to the nodes holding the recordings and records it; the last node's answer.
async fn change_on_nodes(
    state: &Arc<AppState>,
    req: &ApiRequest,
    integration: &Integration,
    edit: &Edit,
    rows: Vec<RecordingRecord>,
) -> Result<Option<Answer>, ApiError> {
    let mut by_node: BTreeMap<NodeId, Vec<Recording>> = BTreeMap::new();
    for row in rows {
        let Some(node) = row.node_id else { continue };
        if let Ok(r) = Recording::from_xml(&row.xml) {
            by_node.entry(node).or_default().push(r);
        }
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
        let answer = state
            .node_client
            .call(&node, &req.call, &query, None, "Unable to access server.")
            .await?;
        if req.call == "getRecordingTextTracks" {
            return Ok(Some(Answer::Json(answer.body)));
        }
        let response = answer.parse("Unable to access server.")?;
        if response.is_success() {
            record_change(state, integration, edit, node_id, recordings).await?;
        }
        last = Some(Answer::Xml(response));
    }
    Ok(last)
}

/// Applies a publish/delete/update the node accepted to the stored copies.
async fn record_change(
    state: &Arc<AppState>,
    integration: &Integration,
    edit: &Edit,
    node: NodeId,
    recordings: Vec<Recording>,
) -> Result<(), ApiError> {
    let integration_id = integration.id;
    let records: Vec<(RecordingRecord, u64, u64)> = recordings
        .into_iter()
        .map(|mut r| {
            edit.apply(&mut r);
            let record = RecordingRecord::on_node(&r, integration_id, node);
            (record, r.start_time, r.end_time)
        })
        .collect();
    state.store.upsert_recordings(records).await?;
    Ok(())
}
