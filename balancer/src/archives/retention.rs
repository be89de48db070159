//! Retention: an integration's recordings are deleted N days after they ended, everywhere:
//! the store, the balancer's archive, the node through the agent's settlement, the recorder
//! through its feed.

use std::sync::Arc;
use std::time::Duration;

use conflux_shared::response::Recording;

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
