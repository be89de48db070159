//! Integrations (institutions) in the store: their secrets and plans.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{now_ms, StoreError};
use conflux_shared::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationId(pub i64);

/// An integration with its secrets (the first is the primary one) and its plan.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: IntegrationId,
    pub name: String,
    pub secrets: Vec<Secret>,
    pub api_enabled: bool,
    pub recording_allowed: bool,
    pub max_meetings: Option<u32>,
    pub max_users: Option<u32>,
    /// Names the integration in the URL (`/PREFIX/bigbluebutton/api/...`) or as the first label
    /// of the Host header.
    pub prefix: Option<String>,
    pub recorder: Option<Recorder>,
    /// Recordings are deleted this many days after they ended.
    pub retention_days: Option<u32>,
}

/// An integration's recording server.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorder {
    pub url: String,
    /// PKCS#8 PEM of its RSA public key.
    pub key: String,
    pub fingerprint: String,
}

/// What `integrations update` may change; `None` leaves a field alone, `Some(None)` clears a
/// limit.
#[derive(Debug, Clone, Default)]
pub struct IntegrationUpdate {
    pub name: Option<String>,
    pub api_enabled: Option<bool>,
    pub recording_allowed: Option<bool>,
    pub max_meetings: Option<Option<u32>>,
    pub max_users: Option<Option<u32>>,
    pub prefix: Option<Option<String>>,
    /// `Some(None)` removes the recording server.
    pub recorder: Option<Option<Recorder>>,
    pub retention_days: Option<Option<u32>>,
}

/// What `integrations add` stores.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub name: String,
    pub secret: Secret,
}

impl Integration {
    /// The mobile salt: the first five characters of the primary secret (Mconf-LB).
    pub fn mobile_salt(&self) -> Option<String> {
        let secret = &self.secrets.first()?.0;
        (secret.chars().count() >= 5).then(|| secret.chars().take(5).collect())
    }
}

fn from_row(conn: &Connection, row: &Row<'_>) -> rusqlite::Result<Integration> {
    let id = IntegrationId(row.get(0)?);
    let mut stmt = conn.prepare_cached(
        "SELECT secret FROM integration_secrets WHERE integration_id = ?1 ORDER BY position, rowid",
    )?;
    let secrets = stmt
        .query_map([id.0], |r| Ok(Secret(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Integration {
        id,
        name: row.get(1)?,
        secrets,
        api_enabled: row.get(2)?,
        recording_allowed: row.get(3)?,
        max_meetings: row.get(4)?,
        max_users: row.get(5)?,
        prefix: row.get(6)?,
        recorder: match (row.get(7)?, row.get(8)?, row.get(9)?) {
            (Some(url), Some(key), Some(fingerprint)) => Some(Recorder {
                url,
                key,
                fingerprint,
            }),
            _ => None,
        },
        retention_days: row.get(10)?,
    })
}

const COLUMNS: &str = "id, name, api_enabled, recording_allowed, max_meetings, max_users, prefix, \
    recorder_url, recorder_key, recorder_fingerprint, retention_days";

pub fn list(conn: &Connection) -> Result<Vec<Integration>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM integrations ORDER BY name"))?;
    let rows = stmt
        .query_map([], |row| from_row(conn, row))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// An integration by id (digits) or name.
pub fn find(conn: &Connection, key: &str) -> Result<Integration, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM integrations WHERE name = ?1 OR CAST(id AS TEXT) = ?1"
    ))?;
    stmt.query_row([key], |row| from_row(conn, row))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("integration {key:?}")))
}

pub fn insert(conn: &mut Connection, new: &NewIntegration) -> Result<Integration, StoreError> {
    let tx = conn.transaction()?;
    if tx
        .query_row(
            "SELECT 1 FROM integrations WHERE name = ?1",
            [&new.name],
            |_| Ok(()),
        )
        .optional()?
        .is_some()
    {
        return Err(StoreError::Conflict(format!(
            "an integration named {:?} exists already",
            new.name
        )));
    }
    if secret_taken(&tx, &new.secret.0)? {
        return Err(StoreError::Conflict(
            "another integration uses this secret".into(),
        ));
    }
    tx.execute(
        "INSERT INTO integrations (name, created_at) VALUES (?1, ?2)",
        params![new.name, now_ms()],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, 0)",
        params![id, new.secret.0],
    )?;
    tx.commit()?;
    find(conn, &id.to_string())
}

/// Creates or updates the integration named in the configuration (LOADBALANCER_SECRET[S]) so
/// that its secrets are exactly `secrets`.
pub fn ensure(
    conn: &mut Connection,
    name: &str,
    secrets: &[Secret],
) -> Result<Integration, StoreError> {
    let tx = conn.transaction()?;
    let id: i64 = match tx
        .query_row("SELECT id FROM integrations WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?
    {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO integrations (name, created_at) VALUES (?1, ?2)",
                params![name, now_ms()],
            )?;
            tx.last_insert_rowid()
        }
    };
    for secret in secrets {
        let owner: Option<i64> = tx
            .query_row(
                "SELECT integration_id FROM integration_secrets WHERE secret = ?1",
                [&secret.0],
                |r| r.get(0),
            )
            .optional()?;
        if owner.is_some_and(|o| o != id) {
            return Err(StoreError::Conflict(format!(
                "a secret of {name:?} belongs to another integration"
            )));
        }
    }
    tx.execute(
        "DELETE FROM integration_secrets WHERE integration_id = ?1",
        [id],
    )?;
    for (position, secret) in secrets.iter().enumerate() {
        tx.execute(
            "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, ?3)",
            params![id, secret.0, i64::try_from(position).unwrap_or(i64::MAX)],
        )?;
    }
    tx.commit()?;
    find(conn, &id.to_string())
}

pub fn remove(conn: &Connection, id: IntegrationId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM integrations WHERE id = ?1", [id.0])?;
    Ok(())
}

/// Replaces the primary secret (the old one stops working at once).
pub fn rotate(conn: &mut Connection, id: IntegrationId, secret: &Secret) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    if secret_taken(&tx, &secret.0)? {
        return Err(StoreError::Conflict(
            "another integration uses this secret".into(),
        ));
    }
    tx.execute(
        "DELETE FROM integration_secrets WHERE integration_id = ?1 AND position = 0",
        [id.0],
    )?;
    tx.execute(
        "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, 0)",
        params![id.0, secret.0],
    )?;
    tx.commit()?;
    Ok(())
}

/// Changes the name and plan.
pub fn update(
    conn: &Connection,
    id: IntegrationId,
    change: &IntegrationUpdate,
) -> Result<(), StoreError> {
    let IntegrationUpdate {
        name,
        api_enabled,
        recording_allowed,
        max_meetings,
        max_users,
        prefix,
        recorder,
        retention_days,
    } = change;
    if let Some(days) = retention_days {
        conn.execute(
            "UPDATE integrations SET retention_days = ?2 WHERE id = ?1",
            params![id.0, days],
        )?;
    }
    if let Some(r) = recorder {
        conn.execute(
            "UPDATE integrations SET recorder_url = ?2, recorder_key = ?3, recorder_fingerprint = ?4 WHERE id = ?1",
            params![
                id.0,
                r.as_ref().map(|r| &r.url),
                r.as_ref().map(|r| &r.key),
                r.as_ref().map(|r| &r.fingerprint)
            ],
        )?;
    }
    if let Some(Some(p)) = prefix {
        let taken = conn
            .query_row(
                "SELECT 1 FROM integrations WHERE prefix = ?1 AND id != ?2",
                params![p, id.0],
                |_| Ok(()),
            )
            .optional()?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "another integration uses the prefix {p:?}"
            )));
        }
    }
    if let Some(v) = prefix {
        conn.execute(
            "UPDATE integrations SET prefix = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
    if let Some(name) = name {
        conn.execute(
            "UPDATE integrations SET name = ?2 WHERE id = ?1",
            params![id.0, name],
        )?;
    }
    if let Some(v) = api_enabled {
        conn.execute(
            "UPDATE integrations SET api_enabled = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
    if let Some(v) = recording_allowed {
        conn.execute(
            "UPDATE integrations SET recording_allowed = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
    if let Some(v) = max_meetings {
        conn.execute(
            "UPDATE integrations SET max_meetings = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
    if let Some(v) = max_users {
        conn.execute(
            "UPDATE integrations SET max_users = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
    Ok(())
}

fn secret_taken(conn: &Connection, secret: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM integration_secrets WHERE secret = ?1",
            [secret],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
