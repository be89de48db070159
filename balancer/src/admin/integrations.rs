//! `integrations ...`: institutions, their secrets and plans.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::{usage, UsageError, CLI};
use crate::cli::{IntegrationsCommand, UpdateIntegration};
use crate::ops;
use crate::ops::integrations::IntegrationEdit;
use crate::state::AppState;

pub async fn run(state: &Arc<AppState>, command: IntegrationsCommand) -> anyhow::Result<()> {
    match command {
        IntegrationsCommand::List => {
            let list = state.store.integrations().await?;
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
            let (integration, secret) = ops::integrations::add(state, CLI, &name, secret)
                .await
                .map_err(usage)?;
            println!("id: {}", integration.id.0);
            println!("secret: {secret}");
            Ok(())
        }
        IntegrationsCommand::Remove { integration } => {
            let i = state.store.integration(&integration).await.map_err(usage)?;
            ops::integrations::remove(state, CLI, &i)
                .await
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
        IntegrationsCommand::Rotate {
            integration,
            secret,
        } => {
            let i = state.store.integration(&integration).await.map_err(usage)?;
            let secret = ops::integrations::rotate(state, CLI, &i, secret)
                .await
                .map_err(usage)?;
            println!("secret: {secret}");
            Ok(())
        }
        IntegrationsCommand::Update(update) => update_integration(state, update).await,
    }
}

async fn update_integration(state: &AppState, u: UpdateIntegration) -> anyhow::Result<()> {
    let i = state
        .store
        .integration(&u.integration)
        .await
        .map_err(usage)?;
    let recorder = match (&u.recorder_url, &u.recorder_key) {
        (Some(url), Some(file)) => {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            Some(Some((url.clone(), pem)))
        }
        _ if u.no_recorder => Some(None),
        _ => None,
    };
    let edit = IntegrationEdit {
        name: u.name,
        api_enabled: u.api_enabled,
        recording_allowed: u.recording_allowed,
        max_meetings: u.max_meetings,
        max_users: u.max_users,
        prefix: u.prefix,
        recorder,
        retention_days: u.retention_days,
        forwarded_for: u.forwarded_for,
    };
    ops::integrations::edit(state, CLI, &i, edit, None)
        .await
        .map_err(usage)?;
    println!("OK");
    Ok(())
}
