//! `servers ...`: add, list, change state, panic, update, and the status table.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::{usage, UsageError, CLI};
use crate::cli::{AddServer, ForceMode, Resolution, ServersCommand, UpdateServer};
use crate::ops;
use crate::ops::nodes::{NodeEdit, NodeSpec};
use crate::state::AppState;
use conflux_store::{self as store, Forced, Node, NodeState};

pub async fn run(state: &Arc<AppState>, command: ServersCommand) -> anyhow::Result<()> {
    match command {
        ServersCommand::List => list(state).await,
        ServersCommand::Add(add) => add_server(state, add).await,
        ServersCommand::Remove { server } => {
            let node = find(state, &server).await?;
            ops::nodes::remove(state, CLI, &node).await.map_err(usage)?;
            println!("OK");
            Ok(())
        }
        ServersCommand::Enable { server } => set_state(state, &server, NodeState::Enabled).await,
        ServersCommand::Cordon { server } => set_state(state, &server, NodeState::Cordoned).await,
        ServersCommand::Disable { server, yes } => disable(state, &server, yes).await,
        ServersCommand::Panic { server, keep_state } => panic(state, &server, keep_state).await,
        ServersCommand::Update(update) => update_server(state, update).await,
        ServersCommand::Force { server, mode } => force(state, &server, mode).await,
        ServersCommand::Checks { server } => checks(state, &server).await,
        ServersCommand::History {
            server,
            resolution,
            hours,
        } => history(state, &server, resolution, hours).await,
        ServersCommand::Status => status(state).await,
        ServersCommand::Sync {
            file,
            mode,
            dry_run,
        } => super::sync::sync(state, &file, mode, dry_run).await,
        ServersCommand::Yaml { verbose } => super::sync::yaml(state, verbose).await,
    }
}

async fn find(state: &AppState, key: &str) -> anyhow::Result<Node> {
    state.store.node(key).await.map_err(usage)
}

async fn list(state: &AppState) -> anyhow::Result<()> {
    let nodes = state.store.nodes().await?;
    if nodes.is_empty() {
        eprintln!("No servers are configured");
    }
    for n in nodes {
        println!("id: {}", n.id);
        println!("\tname: {}", n.name);
        println!("\turl: {}", n.shown_url());
        println!("\t{}", n.state);
        println!("\tload multiplier: {}", n.load_multiplier);
        println!("\ttags: {}", n.tags.join(","));
        println!("\t{}", if n.online { "online" } else { "offline" });
    }
    Ok(())
}

async fn add_server(state: &AppState, add: AddServer) -> anyhow::Result<()> {
    let spec = NodeSpec {
        url: add.url,
        secret: add.secret,
        name: add.name,
        load_multiplier: add.load_multiplier,
        tags: add.tags,
        enabled: add.enable,
    };
    let checked = match add.no_check {
        true => None,
        false => {
            let new = spec.clone().validate().map_err(|e| UsageError(e.0))?;
            let version = state
                .node_client
                .probe(&new.url, &new.secret.0)
                .await
                .map_err(|e| UsageError(format!("{e}. Add it anyway with --no-check.")))?;
            Some(format!(
                "checked: BBB {version} at {} accepts the secret",
                new.url
            ))
        }
    };
    let node = ops::nodes::add(state, CLI, spec).await.map_err(usage)?;
    // Scalelite's two lines first: scripts read them.
    println!("OK");
    println!("id: {}", node.id);
    if let Some(checked) = checked {
        println!("{checked}");
    }
    Ok(())
}

async fn update_server(state: &AppState, update: UpdateServer) -> anyhow::Result<()> {
    let node = find(state, &update.server).await?;
    let edit = NodeEdit {
        url: update.url,
        secret: update.secret,
        load_multiplier: update.load_multiplier,
        tags: update.tags,
        location: update.location,
        ports: update.ports,
    };
    ops::nodes::edit(state, CLI, &node, edit)
        .await
        .map_err(usage)?;
    println!("OK");
    Ok(())
}

async fn set_state(state: &AppState, key: &str, new: NodeState) -> anyhow::Result<()> {
    let node = find(state, key).await?;
    ops::nodes::set_state(state, CLI, &node, new)
        .await
        .map_err(usage)?;
    println!("OK");
    Ok(())
}

async fn force(state: &AppState, key: &str, mode: ForceMode) -> anyhow::Result<()> {
    let node = find(state, key).await?;
    let forced = match mode {
        ForceMode::On => Some(Forced::Enabled),
        ForceMode::Off => Some(Forced::Disabled),
        ForceMode::Auto => None,
    };
    ops::nodes::force(state, CLI, &node, forced)
        .await
        .map_err(usage)?;
    println!("OK");
    Ok(())
}

/// The node's checks as the running balancer last stored them.
async fn checks(state: &AppState, key: &str) -> anyhow::Result<()> {
    let node = find(state, key).await?;
    let store::Health { checks, reports } = state.store.health().await?;
    let rows: Vec<_> = checks.into_iter().filter(|r| r.node == node.id).collect();
    let forced = node
        .forced
        .map_or("auto (follows the checks)", |f| match f {
            Forced::Enabled => "forced on",
            Forced::Disabled => "forced off",
        });
    println!("{}: {}, {}", node.name, node.state, forced);
    let now = store::now_ms();
    match reports.iter().find(|r| r.0 == node.id) {
        Some((_, received_at, _, _)) => {
            println!(
                "last report {:.1}s ago",
                (now - received_at) as f64 / 1000.0
            )
        }
        None => println!("no agent report yet"),
    }
    if rows.is_empty() {
        println!("no checks yet");
    }
    for r in rows {
        println!(
            "{:<9} {:<8} for {:>6}  {}",
            r.name,
            r.state,
            age((now - r.since) / 1000),
            r.output
        );
    }
    Ok(())
}

async fn history(
    state: &AppState,
    key: &str,
    resolution: Resolution,
    hours: f64,
) -> anyhow::Result<()> {
    if !(hours.is_finite() && hours > 0.0) {
        return Err(UsageError(format!("--hours {hours} must be a positive number")).into());
    }
    let node = find(state, key).await?;
    let since = store::now_ms() / 1000 - (hours * 3600.0) as i64;
    let rows = state
        .store
        .history(node.id, resolution.seconds(), since)
        .await?;
    println!(
        "{:<20} {:>5} {:>6} {:>5} {:>10} {:>10} {:>8} {:>6} {:>6} {:>6}",
        "TIME (UTC)",
        "CPU%",
        "MEM%",
        "DISK%",
        "IN B/s",
        "OUT B/s",
        "MEETINGS",
        "USERS",
        "VOICE",
        "VIDEO"
    );
    for (ts, s) in rows {
        let time = time::OffsetDateTime::from_unix_timestamp(ts)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
            })
            .unwrap_or_else(|| ts.to_string());
        println!(
            "{time:<20} {:>5.1} {:>6.1} {:>5.1} {:>10.0} {:>10.0} {:>8.1} {:>6.1} {:>6.1} {:>6.1}",
            s.cpu, s.memory, s.disk, s.net_in, s.net_out, s.meetings, s.users, s.voice, s.video
        );
    }
    Ok(())
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Disables a node, asking first when it still hosts meetings (as Scalelite's
/// servers:disable): only "yes" ends and forgets them; anything else changes nothing.
async fn disable(state: &Arc<AppState>, key: &str, yes: bool) -> anyhow::Result<()> {
    let node = find(state, key).await?;
    let hosted = state.store.meetings_on(node.id).await?;
    if !hosted.is_empty() && !yes {
        eprint!(
            "{} hosts {} meetings; end them and disable it? (yes/no) ",
            node.name,
            hosted.len()
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("yes") {
            println!("OK (nothing changed)");
            return Ok(());
        }
    }
    ops::nodes::disable(state, CLI, &node)
        .await
        .map_err(usage)?;
    println!("OK");
    Ok(())
}

/// Forgets the node's meetings, asks the node to end them, and disables it.
async fn panic(state: &Arc<AppState>, key: &str, keep_state: bool) -> anyhow::Result<()> {
    let node = find(state, key).await?;
    let forgotten = ops::nodes::panic(state, CLI, &node, keep_state)
        .await
        .map_err(usage)?;
    println!("OK ({forgotten} meetings forgotten)");
    Ok(())
}

/// Scalelite's status table.
pub async fn status(state: &AppState) -> anyhow::Result<()> {
    let nodes = state.store.nodes().await?;
    let rows: Vec<[String; 8]> = nodes
        .iter()
        .map(|n| {
            [
                conflux_shared::signed_url::host_of(&n.url),
                n.state.to_string(),
                if n.online { "online" } else { "offline" }.to_owned(),
                n.meetings.to_string(),
                n.users.to_string(),
                n.largest_meeting.to_string(),
                n.videos.to_string(),
                n.name.clone(),
            ]
        })
        .collect();
    // Scalelite's columns, in its order (scripts read them), then the node's name.
    let header = [
        "HOSTNAME",
        "STATE",
        "STATUS",
        "MEETINGS",
        "USERS",
        "LARGEST MEETING",
        "VIDEOS",
        "NAME",
    ];
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.to_vec()));
    for row in &rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
    Ok(())
}
