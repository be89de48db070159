//! Integrations (institutions) in the store: their secrets and plans.

use crate::sql::{params, Db, Row};

use super::{now_ms, Audit, Store, StoreError};
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
    /// Its signed calls' X-Forwarded-For names the end user, whose location places meetings.
    pub forwarded_for: bool,
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
    pub forwarded_for: Option<bool>,
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

fn from_row(conn: &Db<'_>, row: &Row<'_>) -> Result<Integration, StoreError> {
    let id = IntegrationId(row.get(0)?);
    let secrets = conn.query("SELECT secret FROM integration_secrets WHERE integration_id = ?1 ORDER BY position, secret", params![id.0], |r| Ok(Secret(r.get(0)?)))?;
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
        forwarded_for: row.get(11)?,
    })
}

const COLUMNS: &str = "id, name, api_enabled, recording_allowed, max_meetings, max_users, prefix, \
    recorder_url, recorder_key, recorder_fingerprint, retention_days, forwarded_for";

pub(crate) fn list(conn: &Db<'_>) -> Result<Vec<Integration>, StoreError> {
    let rows = conn.query(
        &format!("SELECT {COLUMNS} FROM integrations ORDER BY name"),
        params![],
        |row| from_row(conn, row),
    )?;
    Ok(rows)
}

/// An integration by id (digits) or name.
pub(crate) fn find(conn: &Db<'_>, key: &str) -> Result<Integration, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM integrations WHERE name = ?1 OR CAST(id AS TEXT) = ?1"),
        params![key],
        |row| from_row(conn, row),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("integration {key:?}")))
}

pub(crate) fn insert(conn: &Db<'_>, new: &NewIntegration) -> Result<Integration, StoreError> {
    if conn.exists(
        "SELECT 1 FROM integrations WHERE name = ?1",
        params![&new.name],
    )? {
        return Err(StoreError::Conflict(format!(
            "an integration named {:?} exists already",
            new.name
        )));
    }
    if secret_taken(conn, &new.secret.0)? {
        return Err(StoreError::Conflict(
            "another integration uses this secret".into(),
        ));
    }
    let id: i64 = conn.query_one(
        "INSERT INTO integrations (name, created_at) VALUES (?1, ?2) RETURNING id",
        params![new.name, now_ms()],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, 0)",
        params![id, new.secret.0],
    )?;
    find(conn, &id.to_string())
}

/// Creates or updates the integration named in the configuration (LOADBALANCER_SECRET[S]) so
/// that its secrets are exactly `secrets`.
pub(crate) fn ensure(
    conn: &Db<'_>,
    name: &str,
    secrets: &[Secret],
) -> Result<Integration, StoreError> {
    let id: i64 = match conn.query_opt(
        "SELECT id FROM integrations WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )? {
        Some(id) => id,
        None => conn.query_one(
            "INSERT INTO integrations (name, created_at) VALUES (?1, ?2) RETURNING id",
            params![name, now_ms()],
            |r| r.get(0),
        )?,
    };
    for secret in secrets {
        let owner: Option<i64> = conn.query_opt(
            "SELECT integration_id FROM integration_secrets WHERE secret = ?1",
            params![&secret.0],
            |r| r.get(0),
        )?;
        if owner.is_some_and(|o| o != id) {
            return Err(StoreError::Conflict(format!(
                "a secret of {name:?} belongs to another integration"
            )));
        }
    }
    conn.execute(
        "DELETE FROM integration_secrets WHERE integration_id = ?1",
        params![id],
    )?;
    for (position, secret) in secrets.iter().enumerate() {
        conn.execute(
            "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, ?3)",
            params![id, secret.0, i64::try_from(position).unwrap_or(i64::MAX)],
        )?;
    }
    find(conn, &id.to_string())
}

pub(crate) fn remove(conn: &Db<'_>, id: IntegrationId) -> Result<(), StoreError> {
    conn.execute("DELETE FROM integrations WHERE id = ?1", params![id.0])?;
    Ok(())
}

/// Replaces the primary secret (the old one stops working at once).
pub(crate) fn rotate(conn: &Db<'_>, id: IntegrationId, secret: &Secret) -> Result<(), StoreError> {
    if secret_taken(conn, &secret.0)? {
        return Err(StoreError::Conflict(
            "another integration uses this secret".into(),
        ));
    }
    conn.execute(
        "DELETE FROM integration_secrets WHERE integration_id = ?1 AND position = 0",
        params![id.0],
    )?;
    conn.execute(
        "INSERT INTO integration_secrets (integration_id, secret, position) VALUES (?1, ?2, 0)",
        params![id.0, secret.0],
    )?;
    Ok(())
}

/// Changes the name and plan.
pub(crate) fn update(
    conn: &Db<'_>,
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
        forwarded_for,
    } = change;
    if let Some(v) = forwarded_for {
        conn.execute(
            "UPDATE integrations SET forwarded_for = ?2 WHERE id = ?1",
            params![id.0, v],
        )?;
    }
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
        let taken = conn.exists(
            "SELECT 1 FROM integrations WHERE prefix = ?1 AND id != ?2",
            params![p, id.0],
        )?;
        if taken {
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

fn secret_taken(conn: &Db<'_>, secret: &str) -> Result<bool, StoreError> {
    conn.exists(
        "SELECT 1 FROM integration_secrets WHERE secret = ?1",
        params![secret],
    )
}

/// One change to an integration; [`Store::change_integration`] applies it with its audit row.
#[derive(Debug, Clone)]
pub enum IntegrationChange {
    Add(NewIntegration),
    /// Creates the integration (refused if the name exists) with exactly these secrets (the
    /// Scalelite API's tenants).
    AddWithSecrets {
        name: String,
        secrets: Vec<Secret>,
    },
    Update(IntegrationId, IntegrationUpdate),
    /// A new primary secret (the old one stops working at once).
    Rotate(IntegrationId, Secret),
    /// Exactly these secrets, the first one primary.
    SetSecrets(IntegrationId, Vec<Secret>),
    Remove(IntegrationId),
}

fn apply(c: &Db<'_>, change: IntegrationChange) -> Result<Option<Integration>, StoreError> {
    let now = |id: IntegrationId| find(c, &id.0.to_string()).map(Some);
    match change {
        IntegrationChange::Add(new) => insert(c, &new).map(Some),
        IntegrationChange::AddWithSecrets { name, secrets } => {
            if find(c, &name).is_ok_and(|i| i.name == name) {
                return Err(StoreError::Conflict(format!(
                    "Tenant {name} exists already"
                )));
            }
            ensure(c, &name, &secrets).map(Some)
        }
        IntegrationChange::Update(id, change) => {
            find(c, &id.0.to_string())?;
            update(c, id, &change)?;
            now(id)
        }
        IntegrationChange::Rotate(id, secret) => {
            find(c, &id.0.to_string())?;
            rotate(c, id, &secret)?;
            now(id)
        }
        IntegrationChange::SetSecrets(id, secrets) => {
            let current = find(c, &id.0.to_string())?;
            ensure(c, &current.name, &secrets).map(Some)
        }
        IntegrationChange::Remove(id) => {
            find(c, &id.0.to_string())?;
            remove(c, id)?;
            Ok(None)
        }
    }
}

impl Store {
    /// Every integration, by name.
    pub async fn integrations(&self) -> Result<Vec<Integration>, StoreError> {
        self.run(list).await
    }

    /// An integration by id (digits) or name.
    pub async fn integration(&self, key: &str) -> Result<Integration, StoreError> {
        let key = key.to_owned();
        self.run(move |c| find(c, &key)).await
    }

    /// Applies `changes` in order with their audit row, all or nothing; returns the
    /// integration as the last change left it (`None` once removed).
    pub async fn change_integration(
        &self,
        changes: Vec<IntegrationChange>,
        audit: Audit,
    ) -> Result<Option<Integration>, StoreError> {
        self.audited(audit, move |c| {
            let mut last = None;
            for change in changes {
                last = apply(c, change)?;
            }
            Ok(last)
        })
        .await
    }

    /// Creates or updates the configured default integration (`LOADBALANCER_SECRET[S]`) so
    /// that its secrets are exactly `secrets` (at start-up).
    pub fn ensure_integration_blocking(
        &self,
        name: &str,
        secrets: &[Secret],
    ) -> Result<Integration, StoreError> {
        self.blocking_write(|c| ensure(c, name, secrets))
    }
}

#[cfg(test)]
mod tests {
    //! Through the store's interface, on each backend.
    use super::*;

    fn add(name: &str, secret: &str) -> IntegrationChange {
        IntegrationChange::Add(NewIntegration {
            name: name.into(),
            secret: Secret(secret.into()),
        })
    }

    fn audit() -> Audit {
        Audit::new("test", "integrations", "detail")
    }

    #[tokio::test]
    async fn integrations_are_added_changed_and_removed_with_their_audit_rows() {
        for store in crate::testing::stores() {
            let uni = store
                .change_integration(vec![add("uni", "secret-uni")], audit())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(store.integration("uni").await.unwrap().id, uni.id);
            for clash in [add("uni", "other-secret"), add("other", "secret-uni")] {
                assert!(matches!(
                    store.change_integration(vec![clash], audit()).await,
                    Err(StoreError::Conflict(_))
                ));
            }
            let rotated = store
                .change_integration(
                    vec![IntegrationChange::Rotate(
                        uni.id,
                        Secret("new-secret".into()),
                    )],
                    audit(),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(rotated.secrets, vec![Secret("new-secret".into())]);
            let updated = store
                .change_integration(
                    vec![
                        IntegrationChange::Update(
                            uni.id,
                            IntegrationUpdate {
                                name: Some("university".into()),
                                max_users: Some(Some(10)),
                                ..IntegrationUpdate::default()
                            },
                        ),
                        IntegrationChange::SetSecrets(
                            uni.id,
                            vec![Secret("s1-0123456".into()), Secret("s2-0123456".into())],
                        ),
                    ],
                    audit(),
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(updated.name, "university");
            assert_eq!(updated.max_users, Some(10));
            assert_eq!(updated.secrets.len(), 2);
            assert!(matches!(
                store
                    .change_integration(
                        vec![IntegrationChange::AddWithSecrets {
                            name: "university".into(),
                            secrets: vec![Secret("x-0123456".into())],
                        }],
                        audit(),
                    )
                    .await,
                Err(StoreError::Conflict(_))
            ));
            let removed = store
                .change_integration(vec![IntegrationChange::Remove(uni.id)], audit())
                .await
                .unwrap();
            assert!(removed.is_none());
            assert!(store.integrations().await.unwrap().is_empty());
            assert!(matches!(
                store
                    .change_integration(vec![IntegrationChange::Remove(uni.id)], audit())
                    .await,
                Err(StoreError::NotFound(_))
            ));
            // Two refusals and a not-found wrote no audit row; three changes did.
            assert_eq!(store.audit_log(10).await.unwrap().len(), 4);
        }
    }

    #[tokio::test]
    async fn the_configured_integration_gets_exactly_its_secrets() {
        for store in crate::testing::stores() {
            let secrets = [Secret("lb-secret-1".into()), Secret("lb-secret-2".into())];
            let first = store
                .ensure_integration_blocking("default", &secrets)
                .unwrap();
            let again = store
                .ensure_integration_blocking("default", &secrets[1..])
                .unwrap();
            assert_eq!(first.id, again.id);
            assert_eq!(again.secrets, secrets[1..].to_vec());
        }
    }
}
