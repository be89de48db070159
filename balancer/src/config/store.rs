//! `[store]`: where the balancer keeps its state. Unset, SQLite in `server.data_dir` (one
//! balancer, no database server); `url = "postgres://user@host:port/db"` puts it in a
//! PostgreSQL database that several balancers share (Scalelite's `DATABASE_URL` is accepted).

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
}

impl RawStore {
    /// The PostgreSQL URL, if one is set (an empty one means SQLite, as unset).
    pub fn validate(self) -> Result<Option<String>, ConfigError> {
        match self.url.map(|u| u.trim().to_owned()) {
            None => Ok(None),
            Some(url) if url.is_empty() => Ok(None),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Some(url))
            }
            Some(_) => Err(invalid(
                "store.url",
                "must be a postgres:// or postgresql:// URL (leave it out for SQLite)".into(),
            )),
        }
    }
}
