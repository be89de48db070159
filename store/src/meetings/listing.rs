//! The admin API's meeting listing: a page of meetings with their owner, node and placement
//! reason, without the stored `<meeting>` elements (a listing of 100,000 meetings would
//! otherwise read hundreds of MB).

use crate::sql::{Db, Param};
use crate::{IntegrationId, NodeId, Store, StoreError};

/// A meeting as the admin API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingSummary {
    pub meeting_id: String,
    pub integration_id: IntegrationId,
    pub node_id: NodeId,
    pub name: String,
    pub created_at: i64,
    pub placement_reason: String,
}

/// Which meetings: of one integration, on one node, whose ID or name holds a text (any
/// case), or all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingFilter {
    pub integration: Option<IntegrationId>,
    pub node: Option<NodeId>,
    pub search: Option<String>,
}

impl Store {
    /// How many meetings match `filter`, and the page of them at `offset` (oldest first), on a
    /// read connection.
    pub async fn meeting_summaries(
        &self,
        filter: MeetingFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<MeetingSummary>), StoreError> {
        self.read(move |c| summaries(c, filter, offset, limit))
            .await
    }
}

fn summaries(
    conn: &Db<'_>,
    filter: MeetingFilter,
    offset: usize,
    limit: usize,
) -> Result<(u64, Vec<MeetingSummary>), StoreError> {
    let integration = filter.integration.map(|i| i.0);
    let node = filter.node.map(|n| n.0);
    let mut conditions = Vec::new();
    let mut params: Vec<&dyn Param> = Vec::new();
    if let Some(i) = &integration {
        params.push(i);
        conditions.push(format!("integration_id = ?{}", params.len()));
    }
    if let Some(n) = &node {
        params.push(n);
        conditions.push(format!("node_id = ?{}", params.len()));
    }
    // LIKE's own wildcards in the text are matched as themselves.
    let pattern = filter.search.as_ref().map(|text| {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    if let Some(p) = &pattern {
        params.push(p);
        let n = params.len();
        conditions.push(format!(
            "(LOWER(meeting_id) LIKE ?{n} ESCAPE '\\' OR LOWER(name) LIKE ?{n} ESCAPE '\\')"
        ));
    }
    let condition = match conditions.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conditions.join(" AND ")),
    };
    let total: i64 = conn.query_one(
        &format!("SELECT COUNT(*) FROM meetings {condition}"),
        &params,
        |r| r.get(0),
    )?;
    let (limit, offset) = (
        i64::try_from(limit).unwrap_or(i64::MAX),
        i64::try_from(offset).unwrap_or(i64::MAX),
    );
    let mut page = params.clone();
    page.push(&limit);
    page.push(&offset);
    let sql = format!(
        "SELECT meeting_id, integration_id, node_id, name, created_at, placement_reason \
         FROM meetings {condition} ORDER BY created_at, meeting_id LIMIT ?{} OFFSET ?{}",
        page.len() - 1,
        page.len()
    );
    let rows = conn.query(&sql, &page, |r| {
        Ok(MeetingSummary {
            meeting_id: r.get(0)?,
            integration_id: IntegrationId(r.get(1)?),
            node_id: NodeId(r.get(2)?),
            name: r.get(3)?,
            created_at: r.get(4)?,
            placement_reason: r.get(5)?,
        })
    })?;
    Ok((total.unsigned_abs(), rows))
}
