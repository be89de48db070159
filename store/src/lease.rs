//! Leases: work that must run on one balancer at a time (polling, active checks, retention,
//! spool import, history pruning) runs where the lease is held. On SQLite there is one
//! balancer, which always holds it. On PostgreSQL the lease is a session advisory lock held by
//! a connection of its own: when its holder dies (even `kill -9`) the server drops the
//! connection and the lock, and the next balancer asking takes it.

use std::sync::{Arc, Mutex};

use crate::sql::postgres::Client;
use crate::{Store, StoreError};

/// One named lease of this store; cheap to clone (clones share it).
#[derive(Clone)]
pub struct Lease {
    store: Store,
    key: i64,
    name: &'static str,
    /// The connection holding the lock, when this process holds it.
    holder: Arc<Mutex<Option<Client>>>,
}

impl Store {
    /// The lease called `name`.
    pub fn lease(&self, name: &'static str) -> Lease {
        Lease {
            store: self.clone(),
            key: key(name),
            name,
            holder: Arc::default(),
        }
    }
}

impl Lease {
    /// Whether this process holds the lease now: keeps it if held (checking its connection
    /// is alive), else tries to take it. A store error counts as not held.
    pub async fn held(&self) -> bool {
        if !self.store.is_shared() {
            return true;
        }
        let lease = self.clone();
        let outcome = tokio::task::spawn_blocking(move || lease.hold())
            .await
            .map_err(|e| StoreError::Task(e.to_string()))
            .and_then(|held| held);
        match outcome {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(lease = self.name, error = %e, "Lease unknown; acting as not held.");
                false
            }
        }
    }

    fn hold(&self) -> Result<bool, StoreError> {
        let Some(pg) = self.store.postgres() else {
            return Ok(true);
        };
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = holder.as_mut() {
            if client.simple_query("").is_ok() {
                return Ok(true);
            }
            tracing::warn!(lease = self.name, "Lost the lease's connection.");
            *holder = None;
        }
        let mut client = Client::connect(&pg.config)?;
        let row = client.query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])?;
        let taken: bool = row.try_get(0)?;
        if taken {
            tracing::info!(lease = self.name, "Lease taken: this balancer runs it.");
            *holder = Some(client);
        }
        Ok(taken)
    }
}

/// A stable advisory-lock key for `name` (FNV-1a, 64 bits).
fn key(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_next_takes_over() {
        assert!(
            Store::open_in_memory()
                .unwrap()
                .lease("poller")
                .held()
                .await
        );
        let Some(url) = crate::testing::postgres_database() else {
            return;
        };
        let (a, b) = (
            Store::open_postgres(&url).unwrap(),
            Store::open_postgres(&url).unwrap(),
        );
        let (on_a, on_b) = (a.lease("poller"), b.lease("poller"));
        assert!(on_a.held().await);
        assert!(on_a.held().await, "kept");
        assert!(!on_b.held().await, "held elsewhere");
        assert!(
            b.lease("retention").held().await,
            "another name is another lease"
        );
        // The holder goes away (its connection closes): the other takes the lease.
        drop(on_a);
        drop(a);
        let mut taken = false;
        for _ in 0..50 {
            if on_b.held().await {
                taken = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(taken, "the lease did not move");
    }
}
