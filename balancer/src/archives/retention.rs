//! Retention (an integration's recordings are deleted N days after they ended, everywhere:
//! the store, the balancer's archive, the node through the agent's settlement, the recorder
//! through its feed) and the recording-ready callback relayed once a recording is on its
//! recorder.

use std::sync::Arc;
use std::time::Duration;

use conflux_shared::response::Recording;
use conflux_shared::transfer;

use crate::state::AppState;
use conflux_store::{self as store, Integration};

pub const EVERY: Duration = Duration::from_secs(3600);

/// Deletes every recording past its integration's retention.
pub async fn sweep(state: &Arc<AppState>) {
    let integrations = state.integrations.load_full();
    for integration in integrations.iter() {
        let Some(days) = integration.retention_days else {
            continue;
        };
        let before = store::now_ms() - i64::from(days) * 86_400_000;
        let id = integration.id;
        let expired = match state.store.expired_recordings(id, before).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "Could not read expired recordings.");
                continue;
            }
        };
        for row in expired {
            delete(state, integration, &row).await;
        }
    }
}

async fn delete(
    state: &Arc<AppState>,
    integration: &Integration,
    row: &store::recordings::RecordingRecord,
) {
    if row.archive.is_none() {
        // On a node: ask it to delete first, so a node that is down keeps it listed and the next
        // sweep tries again.
        let Some(node) = row.node_id.and_then(|n| state.nodes.load().get(n).cloned()) else {
            return;
        };
        let query = format!("recordID={}", conflux_shared::query::encode(&row.record_id));
        if let Err(e) = state
            .node_client
            .call(
                &node,
                "deleteRecordings",
                &query,
                None,
                "Unable to delete recording.",
            )
            .await
        {
            tracing::warn!(record_id = %row.record_id, node = %node.name, error = ?e, "Retention: the node did not delete the recording; will retry.");
            return;
        }
    }
    let mut deleted = Recording::from_xml(&row.xml).unwrap_or_else(|_| Recording {
        record_id: row.record_id.clone(),
        meeting_id: row.meeting_id.clone(),
        ..Recording::default()
    });
    deleted.mark_deleted();
    let (id, rid, xml) = (
        integration.id,
        row.record_id.clone(),
        deleted.to_element().to_xml(),
    );
    match state.store.delete_recording(id, &rid, xml).await {
        Ok(()) => {
            super::discard(&state.config, &row.record_id);
            tracing::info!(record_id = %row.record_id, integration = %integration.name, "Retention: recording deleted.");
        }
        Err(e) => {
            tracing::error!(record_id = %row.record_id, error = %e, "Retention: could not delete.")
        }
    }
}

/// POSTs `signed_parameters` (an HS256 JWT of meeting_id and record_id, as BBB sends it) to the
/// recording-ready URL the front-end gave at create, trying the integration's secrets in turn
/// until one is accepted; 404 and 410 stop (Scalelite's rules).
pub async fn relay_ready(state: &AppState, integration: &Integration, recording: &Recording) {
    let (meeting, id) = (recording.meeting_id.clone(), integration.id);
    let url = match state.store.created_params(&meeting, id).await {
        Ok(Some(params)) => conflux_shared::transfer::READY_URL_KEYS
            .iter()
            .find_map(|k| params.get(*k).and_then(|v| v.as_str()).map(str::to_owned)),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "Could not read the meeting's create parameters.");
            None
        }
    };
    let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) else {
        return;
    };
    let client = match state.node_client.http() {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "No HTTP client for the callback."),
    };
    let claims = serde_json::json!({
        "meeting_id": recording.meeting_id,
        "record_id": recording.record_id,
    });
    for secret in &integration.secrets {
        let token = transfer::jwt_hs256(&secret.0, &claims);
        match client
            .post(&url)
            .form(&[("signed_parameters", token)])
            .send()
            .await
        {
            Ok(answer) if answer.status().is_success() => {
                tracing::info!(%url, record_id = %recording.record_id, "Recording-ready callback sent.");
                return;
            }
            Ok(answer) if matches!(answer.status().as_u16(), 404 | 410) => {
                tracing::warn!(%url, status = answer.status().as_u16(), "Recording-ready callback refused; giving up.");
                return;
            }
            Ok(answer) => {
                tracing::warn!(%url, status = answer.status().as_u16(), "Recording-ready callback refused.")
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "Recording-ready callback failed.");
                return;
            }
        }
    }
}
