//! `meetings ...`: list, inspect (with placement reason and events) and end meetings.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::usage;
use crate::cli::MeetingsCommand;
use crate::state::AppState;
use conflux_store::{self as store, StoreError};

pub async fn run(state: &Arc<AppState>, command: MeetingsCommand) -> anyhow::Result<()> {
    match command {
        MeetingsCommand::List => {
            let list = state.store.blocking(|c| store::meetings::list(c))?;
            let nodes = state.nodes.load();
            println!("{:<32} {:<24} {:<20} CREATED", "MEETING", "NAME", "SERVER");
            for m in list {
                let node = nodes
                    .get(m.node_id)
                    .map_or("?".to_owned(), |n| n.name.clone());
                println!(
                    "{:<32} {:<24} {:<20} {}",
                    m.meeting_id,
                    m.name,
                    node,
                    conflux_shared::date::java_date(m.created_at.max(0) as u64)
                );
            }
            Ok(())
        }
        MeetingsCommand::Info { meeting_id } => {
            const INFO_EVENTS: u32 = 1000;
            let (m, events) = state
                .store
                .blocking(|c| {
                    let m = store::meetings::find(c, &meeting_id)?
                        .ok_or_else(|| StoreError::NotFound(format!("meeting {meeting_id:?}")))?;
                    // This run of the meeting: its create and what followed (bounded).
                    let created = store::events::latest_created(c, &meeting_id, m.integration_id)?;
                    let events = match created {
                        Some(created) => {
                            let run = store::events::run_of(c, &created, INFO_EVENTS)?;
                            std::iter::once(created).chain(run).collect()
                        }
                        None => Vec::new(),
                    };
                    Ok((m, events))
                })
                .map_err(usage)?;
            let node = state
                .nodes
                .load()
                .get(m.node_id)
                .map_or("?".to_owned(), |n| n.name.clone());
            println!("meeting: {}", m.meeting_id);
            println!("name: {}", m.name);
            println!("internal id: {}", m.internal_meeting_id);
            println!("integration: {}", m.integration_id.0);
            println!("server: {node}");
            println!("client ip: {}", m.client_ip.as_deref().unwrap_or("-"));
            println!("placement: {}", m.placement_reason);
            println!("events:");
            for e in events {
                println!(
                    "  {} {} {}",
                    conflux_shared::date::java_date(e.at.max(0) as u64),
                    e.kind,
                    e.data
                );
            }
            Ok(())
        }
        MeetingsCommand::End { meeting_id } => {
            let m = state
                .store
                .blocking(|c| {
                    store::meetings::find(c, &meeting_id)?
                        .ok_or_else(|| StoreError::NotFound(format!("meeting {meeting_id:?}")))
                })
                .map_err(usage)?;
            if let Some(node) = state.nodes.load().get(m.node_id).cloned() {
                crate::ops::nodes::end_on_node(state, &node, std::slice::from_ref(&meeting_id))
                    .await;
            }
            state
                .store
                .blocking(|c| store::meetings::remove(c, &meeting_id))?;
            println!("OK");
            Ok(())
        }
    }
}
