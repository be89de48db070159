//! `integrations ...`: institutions, their secrets and plans.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::{usage, UsageError};
use crate::auth::random_secret;
use crate::cli::{IntegrationsCommand, UpdateIntegration};
use crate::state::AppState;
use conflux_shared::Secret;
use conflux_store::{self as store, IntegrationUpdate, NewIntegration};

pub async fn run(state: &Arc<AppState>, command: IntegrationsCommand) -> anyhow::Result<()> {
    match command {
        IntegrationsCommand::List => {
            let list = state.store.blocking(|c| store::integrations::list(c))?;
            println!(
                "{:<6} {:<24} {:<5} {:<9} {:<12} {:<9} RECORDING SERVER",
                "ID", "NAME", "API", "RECORDING", "MAX MEETINGS", "MAX USERS"
            );
            let limit = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
            for i in list {
                let recorder = i.recorder.as_ref().map_or("-".to_owned(), |r| {
                    format!("{} (key {})", r.url, &r.fingerprint[..16])
                });
                println!(
                    "{:<6} {:<24} {:<5} {:<9} {:<12} {:<9} {recorder}",
                    i.id.0,
                    i.name,
                    i.api_enabled,
                    i.recording_allowed,
                    limit(i.max_meetings),
                    limit(i.max_users)
                );
            }
            Ok(())
        }
        IntegrationsCommand::Add { name, secret } => {
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(UsageError("the integration name must not be empty".into()).into());
            }
            let secret = checked_secret(secret)?;
            let new = NewIntegration {
                name,
                secret: Secret(secret.clone()),
            };
            let integration = state
                .store
                .blocking(|c| store::integrations::insert(c, &new))
                .map_err(usage)?;
            println!("id: {}", integration.id.0);
            println!("secret: {secret}");
            Ok(())
        }
        IntegrationsCommand::Remove { integration } => {
            let i = state
                .store
                .blocking(|c| store::integrations::find(c, &integration))
                .map_err(usage)?;
            state
                .store
                .blocking(|c| store::integrations::remove(c, i.id))?;
            println!("OK");
            Ok(())
        }
        IntegrationsCommand::Rotate {
            integration,
            secret,
        } => {
            let i = state
                .store
                .blocking(|c| store::integrations::find(c, &integration))
                .map_err(usage)?;
            let secret = checked_secret(secret)?;
            let new = Secret(secret.clone());
            state
                .store
                .blocking(|c| store::integrations::rotate(c, i.id, &new))
                .map_err(usage)?;
            println!("secret: {secret}");
            Ok(())
        }
        IntegrationsCommand::Update(update) => update_integration(state, update),
    }
}

fn checked_secret(secret: Option<String>) -> Result<String, UsageError> {
    match secret.map(|s| s.trim().to_owned()) {
        Some(s) if s.len() < 8 => Err(UsageError("a secret needs at least 8 characters".into())),
        Some(s) => Ok(s),
        None => Ok(random_secret()),
    }
}

fn update_integration(state: &AppState, u: UpdateIntegration) -> anyhow::Result<()> {
    let i = state
        .store
        .blocking(|c| store::integrations::find(c, &u.integration))
        .map_err(usage)?;
    if u.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(UsageError("the integration name must not be empty".into()).into());
    }
    let limit = |v: Option<u32>| v.map(|n| (n > 0).then_some(n));
    let prefix = match u.prefix.map(|p| p.trim().to_ascii_lowercase()) {
        Some(p) if p.is_empty() => Some(None),
        Some(p) if p.len() <= 63 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Some(Some(p))
        }
        Some(p) => {
            return Err(UsageError(format!("prefix {p:?} must be 1-63 of a-z, 0-9 and -")).into())
        }
        None => None,
    };
    let recorder = match (&u.recorder_url, &u.recorder_key) {
        (Some(url), Some(file)) => {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            Some(Some(
                crate::ops::integrations::recorder(url, &pem).map_err(|e| UsageError(e.0))?,
            ))
        }
        _ if u.no_recorder => Some(None),
        _ => None,
    };
    let change = IntegrationUpdate {
        recorder,
        name: u.name.map(|n| n.trim().to_owned()),
        api_enabled: u.api_enabled,
        recording_allowed: u.recording_allowed,
        max_meetings: limit(u.max_meetings),
        max_users: limit(u.max_users),
        prefix,
        retention_days: limit(u.retention_days),
    };
    state
        .store
        .blocking(|c| store::integrations::update(c, i.id, &change))
        .map_err(usage)?;
    println!("OK");
    Ok(())
}
