//! `servers sync` and `servers yaml`: Scalelite's declarative pool file. The whole file is
//! validated before anything changes, and the changes are applied in one transaction.
#![allow(clippy::print_stdout)] // command output

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::{usage, UsageError, CLI};
use crate::cli::SyncMode;
use crate::ops::nodes::NodeSpec;
use crate::state::AppState;
use conflux_store::{NewNode, Node, NodeChange, NodeState, NodeUpdate};

/// The file: `servers: {ID: {...}}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    secret: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "one")]
    load_multiplier: f64,
    /// Comma list of tags (Scalelite has one tag; Conflux nodes may have several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    // Written by `servers yaml --verbose`; ignored on input, as in Scalelite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    load: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// One planned change.
enum Change {
    Add(NewNode),
    Update(Node, NodeUpdate),
    SetState(Node, NodeState),
    Remove(Node),
}

pub async fn sync(
    state: &AppState,
    file: &str,
    mode: SyncMode,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| UsageError(format!("cannot read {file}: {e}")))?
    };
    let pool: PoolFile =
        serde_yaml_ng::from_str(&text).map_err(|e| UsageError(format!("{file}: {e}")))?;
    let nodes = state.store.nodes().await?;
    let meetings = state.store.meetings().await?;
    let changes = plan(
        &pool,
        &nodes,
        |n| meetings.iter().any(|m| m.node_id == n.id),
        mode,
    )?;
    for change in &changes {
        println!(
            "{}{}",
            if dry_run { "would " } else { "" },
            describe(change)
        );
    }
    if dry_run || changes.is_empty() {
        println!(
            "OK ({} changes{})",
            changes.len(),
            if dry_run { ", dry run" } else { "" }
        );
        return Ok(());
    }
    let count = changes.len();
    let changes = changes
        .into_iter()
        .map(|change| match change {
            Change::Add(new) => (None, NodeChange::Add(new)),
            Change::Update(node, update) => (None, NodeChange::Update(node.id, update)),
            Change::SetState(node, s) => (None, NodeChange::SetState(node.id, s)),
            // force: the removed nodes' meetings are ended there too.
            Change::Remove(node) => {
                let id = node.id;
                (Some(node), NodeChange::Remove(id))
            }
        })
        .collect();
    let detail = format!("{file} ({mode:?})");
    crate::ops::nodes::sync(state, CLI, changes, detail)
        .await
        .map_err(usage)?;
    println!("OK ({count} changes)");
    Ok(())
}

/// The changes that make `nodes` match `pool`; refuses an invalid file as a whole.
fn plan(
    pool: &PoolFile,
    nodes: &[Node],
    has_meetings: impl Fn(&Node) -> bool,
    mode: SyncMode,
) -> Result<Vec<Change>, UsageError> {
    let mut changes = Vec::new();
    for (id, entry) in &pool.servers {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(UsageError(format!(
                "ERROR: server id {id:?} must match [A-Za-z0-9_.-]+"
            )));
        }
        let spec = NodeSpec {
            url: entry
                .url
                .clone()
                .unwrap_or_else(|| format!("https://{id}/bigbluebutton/api")),
            secret: entry.secret.clone(),
            name: Some(id.clone()),
            load_multiplier: entry.load_multiplier,
            tags: entry
                .tag
                .as_deref()
                .map(crate::ops::nodes::split_tags)
                .unwrap_or_default(),
            enabled: entry.enabled,
        };
        let new = spec
            .validate()
            .map_err(|e| UsageError(format!("ERROR: server {id}: {e}")))?;
        match nodes.iter().find(|n| n.name == *id) {
            None => changes.push(Change::Add(NewNode {
                // A disabled entry is cordoned, as Scalelite's sync does.
                state: if entry.enabled {
                    NodeState::Enabled
                } else {
                    NodeState::Cordoned
                },
                ..new
            })),
            Some(node) => {
                let update = NodeUpdate {
                    given_url: (node.given_url != new.given_url).then_some(new.given_url),
                    url: (node.url != new.url).then_some(new.url),
                    secret: (node.secret != new.secret).then_some(new.secret),
                    load_multiplier: (node.load_multiplier != new.load_multiplier)
                        .then_some(new.load_multiplier),
                    tags: (node.tags != new.tags).then_some(new.tags),
                    ..NodeUpdate::default()
                };
                if update.url.is_some()
                    || update.given_url.is_some()
                    || update.secret.is_some()
                    || update.load_multiplier.is_some()
                    || update.tags.is_some()
                {
                    changes.push(Change::Update(node.clone(), update));
                }
                if entry.enabled && node.state != NodeState::Enabled {
                    changes.push(Change::SetState(node.clone(), NodeState::Enabled));
                } else if !entry.enabled && node.state == NodeState::Enabled {
                    changes.push(Change::SetState(node.clone(), NodeState::Cordoned));
                }
            }
        }
    }
    for node in nodes.iter().filter(|n| !pool.servers.contains_key(&n.name)) {
        match mode {
            SyncMode::Keep => {}
            SyncMode::Cordon if has_meetings(node) => {
                changes.push(Change::SetState(node.clone(), NodeState::Cordoned))
            }
            SyncMode::Cordon | SyncMode::Force => changes.push(Change::Remove(node.clone())),
        }
    }
    Ok(changes)
}

fn describe(change: &Change) -> String {
    match change {
        Change::Add(n) => format!(
            "add {} ({}, {})",
            n.name,
            n.given_url.as_deref().unwrap_or(&n.url),
            n.state
        ),
        Change::Update(n, _) => format!("update {}", n.name),
        Change::SetState(n, s) => format!("set {} {s}", n.name),
        Change::Remove(n) => format!("remove {}", n.name),
    }
}

pub async fn yaml(state: &AppState, verbose: bool) -> anyhow::Result<()> {
    let nodes = state.store.nodes().await?;
    let servers = nodes
        .into_iter()
        .map(|n| {
            let entry = Entry {
                url: Some(n.shown_url().to_owned()),
                secret: n.secret.0.clone(),
                enabled: n.state == NodeState::Enabled,
                load_multiplier: n.load_multiplier,
                tag: (!n.tags.is_empty()).then(|| n.tags.join(",")),
                state: verbose.then(|| n.state.to_string()),
                load: verbose.then_some(f64::from(n.users) * n.load_multiplier),
                online: verbose.then_some(n.online),
            };
            (n.name, entry)
        })
        .collect();
    print!("{}", serde_yaml_ng::to_string(&PoolFile { servers })?);
    Ok(())
}
