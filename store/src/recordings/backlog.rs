//! What monitoring reads of the encrypted archives: per integration, those refused by its
//! recorder and those still waiting for it.

use super::*;

/// Per integration, how many archives its recorder refused and the latest reason.
pub(crate) fn refused_archives(
    conn: &Db<'_>,
) -> Result<std::collections::HashMap<IntegrationId, (u64, String)>, StoreError> {
    let rows = conn.query(
        "SELECT integration_id, COUNT(*), \
         (SELECT failure FROM recordings l WHERE l.integration_id = r.integration_id \
          AND l.archive = 'failed' ORDER BY seen_at DESC LIMIT 1) \
         FROM recordings r WHERE archive = 'failed' GROUP BY integration_id",
        params![],
        |r| {
            Ok((
                IntegrationId(r.get(0)?),
                (
                    r.get::<i64>(1)?.unsigned_abs(),
                    r.get::<Option<String>>(2)?.unwrap_or_default(),
                ),
            ))
        },
    )?;
    Ok(rows.into_iter().collect())
}

/// Per integration: the archives waiting for its recorder, and when the oldest was seen (ms).
pub(crate) fn archive_backlog(
    conn: &Db<'_>,
) -> Result<std::collections::HashMap<IntegrationId, (u64, i64)>, StoreError> {
    let rows = conn.query(
        "SELECT integration_id, COUNT(*), MIN(seen_at) FROM recordings \
         WHERE archive = 'stored' GROUP BY integration_id",
        params![],
        |r| {
            Ok((
                IntegrationId(r.get(0)?),
                (r.get::<i64>(1)?.unsigned_abs(), r.get::<i64>(2)?),
            ))
        },
    )?;
    Ok(rows.into_iter().collect())
}
