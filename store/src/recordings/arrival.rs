//! Encrypted archives arriving from agents (or the spool importer): stored and queued in the
//! feed of the owning integration's recorder, in one transaction.

use super::*;

/// A recording whose encrypted archive an agent (or the spool importer) handed over.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub record_id: String,
    pub integration_id: IntegrationId,
    /// The node keeping its copy until the recorder has it (None for spool imports).
    pub node_id: Option<NodeId>,
    pub meeting_id: String,
    pub start_time: u64,
    pub end_time: u64,
    /// The `<recording>` element (state `processing`, no playback yet).
    pub xml: String,
    pub published: bool,
    pub size: u64,
    pub sha256: String,
    pub protected: bool,
}

/// What became of an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrived {
    /// New (or a different archive of a recording not yet processed): queued for the recorder.
    Queued,
    /// The same archive again (an agent retrying): nothing changed.
    Known,
    /// The recorder already has this recording, or it was deleted: the node may drop its copy.
    Settled,
    /// The record id is held from another node or integration: refused, nothing replaced.
    Conflict,
}

/// Stores an arrival and queues it in the feed of its integration's recorder (the caller
/// holds a transaction).
pub(crate) fn arrive(tx: &Db<'_>, a: &Arrival) -> Result<Arrived, StoreError> {
    type Existing = (
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let existing: Option<Existing> = tx.query_opt(
        "SELECT archive, archive_sha256, integration_id, archive_node, node_id FROM recordings \
             WHERE record_id = ?1",
        params![&a.record_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let uploader = a.node_id.map(|n| n.0);
    let outcome = match &existing {
        Some((_, _, owner, archive_node, node))
            if uploader.is_some()
                && (*owner != a.integration_id.0
                    || archive_node.is_some_and(|n| Some(n) != uploader)
                    || node.is_some_and(|n| Some(n) != uploader)) =>
        {
            Arrived::Conflict
        }
        Some((Some(state), ..)) if state == "done" || state == "deleted" => Arrived::Settled,
        Some((Some(_), Some(sha), ..)) if *sha == a.sha256 => Arrived::Known,
        _ => Arrived::Queued,
    };
    if outcome == Arrived::Queued {
        tx.execute(
            "INSERT INTO recordings (record_id, integration_id, node_id, meeting_id, state, start_time, end_time, xml, seen_at, \
             archive, archive_size, archive_sha256, archive_node, protected, failure) \
             VALUES (?1, ?2, NULL, ?3, 'processing', ?4, ?5, ?6, ?7, 'stored', ?8, ?9, ?10, ?11, NULL) \
             ON CONFLICT (record_id) DO UPDATE SET integration_id = ?2, node_id = NULL, meeting_id = ?3, state = 'processing', \
             start_time = ?4, end_time = ?5, xml = ?6, seen_at = ?7, archive = 'stored', archive_size = ?8, archive_sha256 = ?9, \
             archive_node = ?10, protected = ?11, failure = NULL",
            params![
                a.record_id,
                a.integration_id.0,
                a.meeting_id,
                clamp(a.start_time),
                clamp(a.end_time),
                a.xml,
                now_ms(),
                clamp(a.size),
                a.sha256,
                a.node_id.map(|n| n.0),
                a.protected
            ],
        )?;
        super::index_meta(tx, &a.record_id)?;
        push_change(
            tx,
            a.integration_id,
            &a.record_id,
            &Change::Archive {
                meeting_id: a.meeting_id.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
                published: a.published,
                protected: a.protected,
            },
        )?;
    }
    Ok(outcome)
}
