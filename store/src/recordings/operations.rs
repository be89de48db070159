//! The store's typed operations on recordings: listings, the node's lists from polls, edits,
//! archives from agents and recorders, retention.

use super::*;

/// A listed recording's edit (publish, protect, update metadata, delete), as the API computed
/// it: its new state, `<recording>` element and protection.
#[derive(Debug, Clone)]
pub struct RecordingEdit {
    pub record_id: String,
    pub state: String,
    pub xml: String,
    pub protected: bool,
}

impl Store {
    /// The integration that created `meeting_id` most recently (see [`owner_of`]).
    pub async fn owner_of(
        &self,
        meeting_id: &str,
        node: Option<NodeId>,
    ) -> Result<Option<IntegrationId>, StoreError> {
        let id = meeting_id.to_owned();
        self.run(move |c| owner_of(c, &id, node)).await
    }

    /// The integration's recordings with these ids.
    pub async fn recordings_by_id(
        &self,
        integration: IntegrationId,
        ids: Vec<String>,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.run(move |c| by_ids(c, integration, &ids)).await
    }

    /// getRecordings: the integration's recordings matching `q` (filtered and paginated in
    /// SQL, on a read connection).
    pub async fn recordings(
        &self,
        integration: IntegrationId,
        q: RecordingQuery,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.read(move |c| query(c, integration, &q)).await
    }

    /// Stores recordings as a node lists them (with their start and end times).
    pub async fn upsert_recordings(
        &self,
        records: Vec<(RecordingRecord, u64, u64)>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            for (record, start, end) in &records {
                upsert(c, record, *start, *end)?;
            }
            Ok(())
        })
        .await
    }

    /// A node's whole recording list (from a poll): each recording is filed under the
    /// integration whose create on that node is the latest for its meeting (unowned ones are
    /// skipped), and the node's recordings not seen since `started` are dropped.
    pub async fn sync_node_recordings(
        &self,
        node: NodeId,
        list: Vec<conflux_shared::response::Recording>,
        started: i64,
    ) -> Result<(), StoreError> {
        self.write_background(move |c| {
            for r in list {
                let Some(owner) = owner_of(c, &r.meeting_id, Some(node))? else {
                    continue;
                };
                let record = RecordingRecord::on_node(&r, owner, node);
                upsert(c, &record, r.start_time, r.end_time)?;
            }
            remove_unseen(c, node, started)?;
            Ok(())
        })
        .await
    }

    /// Applies edits of archived recordings and queues `changes` for the recorder, or (when
    /// `deleting`) marks them deleted, in one transaction.
    pub async fn edit_archived(
        &self,
        integration: IntegrationId,
        edits: Vec<RecordingEdit>,
        changes: Vec<Change>,
        deleting: bool,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            for e in &edits {
                if deleting {
                    delete(c, integration, &e.record_id, &e.xml)?;
                    continue;
                }
                set_xml(c, &e.record_id, &e.state, &e.xml, e.protected)?;
                for change in &changes {
                    push_change(c, integration, &e.record_id, change)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Marks a recording deleted (see [`delete`]).
    pub async fn delete_recording(
        &self,
        integration: IntegrationId,
        record_id: &str,
        xml: String,
    ) -> Result<(), StoreError> {
        let id = record_id.to_owned();
        self.write(move |c| delete(c, integration, &id, &xml)).await
    }

    /// The integration's recordings older than `before_ms` (retention).
    pub async fn expired_recordings(
        &self,
        integration: IntegrationId,
        before_ms: i64,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.run(move |c| expired(c, integration, before_ms)).await
    }

    /// An archive handed over by an agent (see [`arrive`]).
    pub async fn archive_arrived(&self, arrival: Arrival) -> Result<Arrived, StoreError> {
        self.run(move |c| arrive(c, &arrival)).await
    }

    /// The recorder feed of `integration` after `since` (see [`feed`]).
    pub async fn recorder_feed(
        &self,
        integration: IntegrationId,
        since: i64,
        limit: usize,
    ) -> Result<Feed, StoreError> {
        self.run(move |c| feed(c, integration, since, limit)).await
    }

    /// Whether `integration` owns an archive of `record_id` waiting for its recorder.
    pub async fn archive_waiting(
        &self,
        integration: IntegrationId,
        record_id: &str,
    ) -> Result<bool, StoreError> {
        let id = record_id.to_owned();
        self.run(move |c| archive_waiting(c, integration, &id))
            .await
    }

    /// The recorder has the recording (see [`processed`]).
    pub async fn archive_processed(
        &self,
        integration: IntegrationId,
        record_id: &str,
        state: String,
        xml: String,
    ) -> Result<bool, StoreError> {
        let id = record_id.to_owned();
        self.write(move |c| processed(c, integration, &id, &state, &xml))
            .await
    }

    /// The recorder refused the archive (see [`failed`]).
    pub async fn archive_failed(
        &self,
        integration: IntegrationId,
        record_id: &str,
        reason: String,
    ) -> Result<bool, StoreError> {
        let id = record_id.to_owned();
        self.run(move |c| failed(c, integration, &id, &reason))
            .await
    }

    /// Per integration: how many archives its recorder refused, and the latest reason.
    pub async fn refused_archives(
        &self,
    ) -> Result<std::collections::HashMap<IntegrationId, (u64, String)>, StoreError> {
        self.run(refused_archives).await
    }

    /// Per integration: how many archives wait for its recorder, and when the oldest was
    /// seen (ms).
    pub async fn archive_backlog(
        &self,
    ) -> Result<std::collections::HashMap<IntegrationId, (u64, i64)>, StoreError> {
        self.run(archive_backlog).await
    }

    /// The record ids whose archives from `node` reached their recorder (the node may delete).
    pub async fn settled_on(&self, node: NodeId) -> Result<Vec<String>, StoreError> {
        self.run(move |c| settled_on(c, node)).await
    }

    /// The node deleted its copy of `record_id`.
    pub async fn archive_dropped(&self, node: NodeId, record_id: &str) -> Result<(), StoreError> {
        let id = record_id.to_owned();
        self.run(move |c| dropped(c, node, &id)).await
    }
}
