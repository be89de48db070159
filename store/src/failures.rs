//! Failed logins and API checksums shared by the balancers on one database (PostgreSQL), so
//! that each one's failure limits count what the others saw. A single balancer keeps its
//! limits in memory and never writes here.

use crate::sql::{params, Db};
use crate::{IntegrationId, Store, StoreError};

/// How long stored failures are kept (ms): longer than any limit takes to refill.
pub const KEPT_MS: i64 = 3_600_000;

/// A failure another balancer saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Orders the failures; a row is taken in once.
    pub seq: i64,
    pub limiter: String,
    pub client: Option<String>,
    pub scope: Option<IntegrationId>,
    pub at: i64,
}

fn record(
    conn: &Db<'_>,
    instance: &str,
    limiter: &str,
    client: Option<&str>,
    scope: Option<IntegrationId>,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO failures (limiter, client, scope, at, instance) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![limiter, client, scope.map(|s| s.0), at, instance],
    )?;
    Ok(())
}

fn others_since(conn: &Db<'_>, instance: &str, since: i64) -> Result<Vec<Failure>, StoreError> {
    conn.query(
        "SELECT seq, limiter, client, scope, at FROM failures
         WHERE at >= ?1 AND instance <> ?2 ORDER BY seq",
        params![since, instance],
        |r| {
            Ok(Failure {
                seq: r.get(0)?,
                limiter: r.get(1)?,
                client: r.get(2)?,
                scope: r.get::<Option<i64>>(3)?.map(IntegrationId),
                at: r.get(4)?,
            })
        },
    )
}

impl Store {
    /// This process's name among the balancers sharing the store (empty on SQLite).
    fn instance(&self) -> String {
        self.postgres()
            .map(|p| p.instance.clone())
            .unwrap_or_default()
    }

    /// Stores a failure this balancer saw, for the others (`limiter` names the limits).
    pub async fn record_failure(
        &self,
        limiter: &'static str,
        client: Option<String>,
        scope: Option<IntegrationId>,
    ) -> Result<(), StoreError> {
        let instance = self.instance();
        let at = crate::now_ms();
        self.run(move |c| record(c, &instance, limiter, client.as_deref(), scope, at))
            .await
    }

    /// The failures other balancers stored at or after `since` (ms), in order.
    pub async fn failures_since(&self, since: i64) -> Result<Vec<Failure>, StoreError> {
        let instance = self.instance();
        self.run(move |c| others_since(c, &instance, since)).await
    }

    /// Drops failures older than [`KEPT_MS`]; how many.
    pub async fn prune_failures(&self) -> Result<usize, StoreError> {
        let before = crate::now_ms() - KEPT_MS;
        self.run(move |c| c.execute("DELETE FROM failures WHERE at < ?1", params![before]))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balancer_reads_the_failures_the_others_stored() {
        for store in crate::testing::stores() {
            store
                .blocking(|c| record(c, "a", "login", Some("192.0.2.1"), None, 1_000))
                .unwrap();
            store
                .blocking(|c| record(c, "b", "checksum", None, Some(IntegrationId(7)), 2_000))
                .unwrap();
            let on_b = store.blocking(|c| others_since(c, "b", 0)).unwrap();
            assert_eq!(on_b.len(), 1, "its own are left out");
            assert_eq!(
                (on_b[0].limiter.as_str(), on_b[0].client.as_deref()),
                ("login", Some("192.0.2.1"))
            );
            let on_c = store.blocking(|c| others_since(c, "c", 1_500)).unwrap();
            assert_eq!(on_c.len(), 1);
            assert_eq!(on_c[0].scope, Some(IntegrationId(7)));
            assert!(on_c[0].seq > on_b[0].seq);
        }
    }
}
