//! Operations on integrations (the institutions and their secrets), for every door: the CLI,
//! the admin pages and JSON API, the Scalelite API's tenants.

use conflux_shared::Secret;
use conflux_store::integrations::Recorder;
use conflux_store::{Audit, Integration, IntegrationChange, IntegrationUpdate, NewIntegration};

use super::{refresh, Invalid, OpError};
use crate::state::AppState;

/// The shortest secret an operator may choose.
const MIN_SECRET: usize = 8;

/// What an operator may change on an integration, before validation; `None` leaves a field
/// alone.
#[derive(Debug, Clone, Default)]
pub struct IntegrationEdit {
    pub name: Option<String>,
    pub api_enabled: Option<bool>,
    pub recording_allowed: Option<bool>,
    /// 0 = no limit.
    pub max_meetings: Option<u32>,
    /// 0 = no limit.
    pub max_users: Option<u32>,
    /// Empty = no prefix.
    pub prefix: Option<String>,
    /// `Some(None)` removes the recording server; `Some(Some((url, pem)))` sets it.
    pub recorder: Option<Option<(String, String)>>,
    /// 0 = kept forever.
    pub retention_days: Option<u32>,
    pub forwarded_for: Option<bool>,
}

/// First path segments the API reads itself (`api::Target::of`): a prefix there could never be
/// reached.
pub const RESERVED_PREFIXES: [&str; 3] = ["bigbluebutton", "demo", "mobile"];

impl IntegrationEdit {
    pub fn validate(self) -> Result<IntegrationUpdate, Invalid> {
        let limit = |v: Option<u32>| v.map(|n| (n > 0).then_some(n));
        let prefix = match self.prefix.map(|p| p.trim().to_ascii_lowercase()) {
            Some(p) if p.is_empty() => Some(None),
            Some(p) if RESERVED_PREFIXES.contains(&p.as_str()) => {
                return Err(Invalid(format!("prefix {p:?} is a path of the API")))
            }
            Some(p)
                if p.len() <= 63 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Some(Some(p))
            }
            Some(p) => {
                return Err(Invalid(format!(
                    "prefix {p:?} must be 1-63 of a-z, 0-9 and -"
                )))
            }
            None => None,
        };
        let recorder = match self.recorder {
            Some(Some((url, pem))) => Some(Some(recorder(&url, &pem)?)),
            Some(None) => Some(None),
            None => None,
        };
        Ok(IntegrationUpdate {
            name: self.name.as_deref().map(checked_name).transpose()?,
            api_enabled: self.api_enabled,
            recording_allowed: self.recording_allowed,
            max_meetings: limit(self.max_meetings),
            max_users: limit(self.max_users),
            prefix,
            recorder,
            retention_days: limit(self.retention_days),
            forwarded_for: self.forwarded_for,
        })
    }
}

fn checked_name(name: &str) -> Result<String, Invalid> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Invalid("the integration name must not be empty".into()));
    }
    Ok(name.to_owned())
}

/// The operator's secret, checked, or a random one (as long as BBB's).
fn secret_or_random(secret: Option<String>) -> Result<String, Invalid> {
    match secret.map(|s| s.trim().to_owned()) {
        Some(s) if s.len() < MIN_SECRET => Err(Invalid(format!(
            "a secret needs at least {MIN_SECRET} characters"
        ))),
        Some(s) => Ok(s),
        None => Ok(crate::auth::random_secret()),
    }
}

/// A recording server from its URL and PEM public key, checked (http(s) URL, RSA key of 3072
/// bits or more).
pub fn recorder(url: &str, pem: &str) -> Result<Recorder, Invalid> {
    let url = url.trim().trim_end_matches('/');
    if !conflux_shared::signed_url::is_web_url(url) {
        return Err(Invalid(format!(
            "the recording server URL {url:?} must be http(s)://HOST[...]"
        )));
    }
    let key =
        conflux_shared::crypto::RecorderKey::from_pem(pem).map_err(|e| Invalid(e.to_string()))?;
    Ok(Recorder {
        url: url.to_owned(),
        key: key.pem,
        fingerprint: key.fingerprint,
    })
}

/// Adds an integration with the given secret (8 characters or more) or a random one; returns
/// it and its secret, to be shown once.
pub async fn add(
    state: &AppState,
    by: &str,
    name: &str,
    secret: Option<String>,
) -> Result<(Integration, String), OpError> {
    let name = checked_name(name)?;
    let secret = secret_or_random(secret)?;
    let new = NewIntegration {
        name: name.clone(),
        secret: Secret(secret.clone()),
    };
    let added = change(
        state,
        by,
        "integrations add",
        name,
        vec![IntegrationChange::Add(new)],
    )
    .await?;
    Ok((
        added.ok_or_else(|| OpError::NotFound("integration".into()))?,
        secret,
    ))
}

/// Adds an integration with exactly these secrets (a Scalelite tenant).
pub async fn add_with_secrets(
    state: &AppState,
    by: &str,
    name: &str,
    secrets: Vec<Secret>,
) -> Result<Integration, OpError> {
    let name = checked_name(name)?;
    if secrets.iter().any(|s| s.0.trim().is_empty()) || secrets.is_empty() {
        return Err(Invalid("an integration needs a secret".into()).into());
    }
    let changes = vec![IntegrationChange::AddWithSecrets {
        name: name.clone(),
        secrets,
    }];
    change(state, by, "integrations add", name, changes)
        .await?
        .ok_or_else(|| OpError::NotFound("integration".into()))
}

/// Changes an integration's settings (and, for a Scalelite tenant, its secrets).
pub async fn edit(
    state: &AppState,
    by: &str,
    integration: &Integration,
    edit: IntegrationEdit,
    secrets: Option<Vec<Secret>>,
) -> Result<Integration, OpError> {
    let update = edit.validate()?;
    let detail = match &update.recorder {
        Some(Some(r)) => format!(
            "{} recording server {} (key {})",
            integration.name, r.url, r.fingerprint
        ),
        Some(None) => format!("{} recording server removed", integration.name),
        None => integration.name.clone(),
    };
    let mut changes = vec![IntegrationChange::Update(integration.id, update)];
    if let Some(secrets) = secrets {
        if secrets.is_empty() || secrets.iter().any(|s| s.0.trim().is_empty()) {
            return Err(Invalid("an integration needs a secret".into()).into());
        }
        changes.push(IntegrationChange::SetSecrets(integration.id, secrets));
    }
    change(state, by, "integrations update", detail, changes)
        .await?
        .ok_or_else(|| OpError::NotFound("integration".into()))
}

/// Replaces the primary secret with the given one (8 characters or more) or a random one; the
/// old one stops working at once. Returns the new secret, to be shown once.
pub async fn rotate(
    state: &AppState,
    by: &str,
    integration: &Integration,
    secret: Option<String>,
) -> Result<String, OpError> {
    let secret = secret_or_random(secret)?;
    let changes = vec![IntegrationChange::Rotate(
        integration.id,
        Secret(secret.clone()),
    )];
    change(
        state,
        by,
        "integrations rotate",
        integration.name.clone(),
        changes,
    )
    .await?;
    Ok(secret)
}

pub async fn remove(state: &AppState, by: &str, integration: &Integration) -> Result<(), OpError> {
    let changes = vec![IntegrationChange::Remove(integration.id)];
    change(
        state,
        by,
        "integrations remove",
        integration.name.clone(),
        changes,
    )
    .await?;
    Ok(())
}

async fn change(
    state: &AppState,
    by: &str,
    action: &str,
    detail: String,
    changes: Vec<IntegrationChange>,
) -> Result<Option<Integration>, OpError> {
    let changed = state
        .store
        .change_integration(changes, Audit::new(by, action, detail))
        .await?;
    refresh(state).await;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_is_checked_once() {
        let update = IntegrationEdit {
            name: Some(" Uni ".into()),
            max_meetings: Some(0),
            max_users: Some(5),
            prefix: Some("Uni-1".into()),
            ..IntegrationEdit::default()
        }
        .validate()
        .unwrap();
        assert_eq!(update.name.as_deref(), Some("Uni"));
        assert_eq!(update.max_meetings, Some(None));
        assert_eq!(update.max_users, Some(Some(5)));
        assert_eq!(update.prefix, Some(Some("uni-1".into())));
        for bad in [
            IntegrationEdit {
                name: Some(" ".into()),
                ..IntegrationEdit::default()
            },
            IntegrationEdit {
                prefix: Some("a/b".into()),
                ..IntegrationEdit::default()
            },
            IntegrationEdit {
                recorder: Some(Some(("ftp://x".into(), String::new()))),
                ..IntegrationEdit::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
        assert!(secret_or_random(Some("short".into())).is_err());
        assert_eq!(secret_or_random(None).unwrap().len(), 40);
    }
}
