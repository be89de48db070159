//! The alert history: every change of a node's check state, kept 90 days.

use crate::sql::{params, Db};
use crate::{NodeId, StoreError};

/// One change of a check's state (the alert history).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckChange {
    pub node_id: NodeId,
    pub node: String,
    pub name: String,
    pub state: String,
    pub previous: Option<String>,
    pub output: String,
    /// ms since the epoch.
    pub at: i64,
}

/// How long the alert history is kept.
const CHANGES_KEPT_MS: i64 = 90 * 86_400_000;

/// Drops the changes older than the history keeps; how many.
pub(crate) fn prune(conn: &Db<'_>, now_secs: i64) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM check_changes WHERE at < ?1",
        params![now_secs * 1000 - CHANGES_KEPT_MS],
    )
}

/// The latest `limit` check changes, newest first; of one node, or of all.
pub(crate) fn check_changes(
    conn: &Db<'_>,
    node: Option<NodeId>,
    limit: usize,
) -> Result<Vec<CheckChange>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let row = |r: &crate::sql::Row<'_>| {
        Ok(CheckChange {
            node_id: NodeId(r.get(0)?),
            node: r.get(1)?,
            name: r.get(2)?,
            state: r.get(3)?,
            previous: r.get(4)?,
            output: r.get(5)?,
            at: r.get(6)?,
        })
    };
    const SELECT: &str = "SELECT c.node_id, n.name, c.name, c.state, c.previous, c.output, c.at \
                          FROM check_changes c JOIN nodes n ON n.id = c.node_id";
    match node {
        Some(node) => conn.query(
            &format!("{SELECT} WHERE c.node_id = ?1 ORDER BY c.at DESC, c.id DESC LIMIT ?2"),
            params![node.0, limit],
            row,
        ),
        None => conn.query(
            &format!("{SELECT} ORDER BY c.at DESC, c.id DESC LIMIT ?1"),
            params![limit],
            row,
        ),
    }
}
