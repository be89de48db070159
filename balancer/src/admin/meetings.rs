//! `meetings ...`: list, inspect (with placement reason and events) and end meetings.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::{usage, CLI};
use crate::cli::MeetingsCommand;
use crate::ops::OpError;
use crate::state::AppState;
use conflux_store::{Audit, MeetingRecord};

pub async fn run(state: &Arc<AppState>, command: MeetingsCommand) -> anyhow::Result<()> {
    match command {
        MeetingsCommand::List => {
            let list = state.store.meetings().await?;
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
            let m = find(state, &meeting_id).await?;
            // This run of the meeting: its create and what followed (bounded).
            let events = state
                .store
                .current_run(&meeting_id, m.integration_id, INFO_EVENTS)
                .await?;
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
            let m = find(state, &meeting_id).await?;
            if let Some(node) = state.nodes.load().get(m.node_id).cloned() {
                crate::ops::nodes::end_on_node(state, &node, std::slice::from_ref(&meeting_id))
                    .await;
            }
            let audit = Audit::new(CLI, "meetings end", meeting_id.clone());
            state.store.end_meeting(&meeting_id, audit).await?;
            state.set_route(&meeting_id, None);
            println!("OK");
            Ok(())
        }
    }
}

async fn find(state: &AppState, meeting_id: &str) -> anyhow::Result<MeetingRecord> {
    state
        .store
        .meeting(meeting_id)
        .await?
        .ok_or_else(|| usage(OpError::NotFound(format!("meeting {meeting_id:?}"))))
}
