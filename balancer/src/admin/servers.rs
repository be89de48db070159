//! `servers ...`: add, list, change state, panic, update, and the status table.
#![allow(clippy::print_stdout)] // command output

use std::sync::Arc;

use super::{usage, UsageError};
use crate::cli::{AddServer, ForceMode, Resolution, ServersCommand, UpdateServer};
use crate::ops;
use crate::state::AppState;
use conflux_shared::Secret;
use conflux_store::{self as store, Forced, NewNode, Node, NodeState, NodeUpdate};

pub async fn run(state: &Arc<AppState>, command: ServersCommand) -> anyhow::Result<()> {
    match command {
        ServersCommand::List => list(state),
        ServersCommand::Add(add) => add_server(state, add),
        ServersCommand::Remove { server } => {
            let node = find(state, &server)?;
            state.store.blocking(|c| {
                store::meetings::remove_on_node(c, node.id)?;
                store::nodes::remove(c, node.id)
            })?;
            println!("OK");
            Ok(())
        }
        ServersCommand::Enable { server } => set_state(state, &server, NodeState::Enabled),
        ServersCommand::Cordon { server } => set_state(state, &server, NodeState::Cordoned),
        ServersCommand::Disable { server, yes } => disable(state, &server, yes).await,
        ServersCommand::Panic { server, keep_state } => panic(state, &server, keep_state).await,
        ServersCommand::Update(update) => update_server(state, update),
        ServersCommand::Force { server, mode } => force(state, &server, mode),
        ServersCommand::Checks { server } => checks(state, &server),
        ServersCommand::History {
            server,
            resolution,
            hours,
        } => history(state, &server, resolution, hours),
        ServersCommand::Status => status(state),
        ServersCommand::Sync {
            file,
            mode,
            dry_run,
        } => super::sync::sync(state, &file, mode, dry_run).await,
        ServersCommand::Yaml { verbose } => super::sync::yaml(state, verbose),
    }
}

fn find(state: &AppState, key: &str) -> anyhow::Result<Node> {
    state
        .store
        .blocking(|c| store::nodes::find(c, key))
        .map_err(usage)
}

fn list(state: &AppState) -> anyhow::Result<()> {
    let nodes = state.store.blocking(|c| store::nodes::list(c))?;
    if nodes.is_empty() {
        eprintln!("No servers are configured");
    }
    for n in nodes {
        println!("id: {}", n.id);
        println!("\tname: {}", n.name);
        println!("\turl: {}", n.url);
        println!("\t{}", n.state);
        println!("\tload multiplier: {}", n.load_multiplier);
        println!("\ttags: {}", n.tags.join(","));
        println!("\t{}", if n.online { "online" } else { "offline" });
    }
    Ok(())
}

fn add_server(state: &AppState, add: AddServer) -> anyhow::Result<()> {
    let url = ops::nodes::api_url(&add.url).map_err(UsageError::from)?;
    if add.secret.trim().is_empty() {
        return Err(UsageError("the secret must not be empty".into()).into());
    }
    if !(add.load_multiplier.is_finite() && add.load_multiplier > 0.0) {
        return Err(UsageError("the load multiplier must be a positive number".into()).into());
    }
    let name = add
        .name
        .unwrap_or_else(|| conflux_shared::signed_url::host_of(&url));
    let new = NewNode {
        name,
        url,
        secret: Secret(add.secret.trim().to_owned()),
        load_multiplier: add.load_multiplier,
        tags: add.tags.into_iter().filter(|t| !t.is_empty()).collect(),
        state: if add.enable {
            NodeState::Enabled
        } else {
            NodeState::Disabled
        },
    };
    let node = state
        .store
        .blocking(|c| store::nodes::insert(c, &new))
        .map_err(usage)?;
    println!("OK");
    println!("id: {}", node.id);
    Ok(())
}

fn update_server(state: &AppState, update: UpdateServer) -> anyhow::Result<()> {
    let node = find(state, &update.server)?;
    let change = NodeUpdate {
        url: update
            .url
            .as_deref()
            .map(ops::nodes::api_url)
            .transpose()
            .map_err(UsageError::from)?,
        secret: update.secret.map(Secret),
        load_multiplier: match update.load_multiplier {
            Some(m) if !(m.is_finite() && m > 0.0) => {
                return Err(
                    UsageError("the load multiplier must be a positive number".into()).into(),
                )
            }
            other => other,
        },
        tags: update.tags.map(|t| store::nodes::split_tags(&t)),
        location: update
            .location
            .as_deref()
            .map(ops::nodes::parse_location)
            .transpose()
            .map_err(UsageError::from)?,
        ports: update.ports.as_deref().map(parse_ports).transpose()?,
    };
    state
        .store
        .blocking(|c| store::nodes::update(c, node.id, &change))
        .map_err(usage)?;
    println!("OK");
    Ok(())
}

fn set_state(state: &AppState, key: &str, new: NodeState) -> anyhow::Result<()> {
    let node = find(state, key)?;
    state
        .store
        .blocking(|c| store::nodes::set_state(c, node.id, new))?;
    println!("OK");
    Ok(())
}

fn force(state: &AppState, key: &str, mode: ForceMode) -> anyhow::Result<()> {
    let node = find(state, key)?;
    let forced = match mode {
        ForceMode::On => Some(Forced::Enabled),
        ForceMode::Off => Some(Forced::Disabled),
        ForceMode::Auto => None,
    };
    state.store.blocking(|c| {
        store::nodes::set_forced(c, node.id, forced)?;
        store::events::log(
            c,
            store::EventKind::NodeState,
            None,
            None,
            Some(node.id),
            &serde_json::json!({ "forced": forced.map_or("auto", Forced::as_str) }),
        )
    })?;
    println!("OK");
    Ok(())
}

/// The node's checks as the running balancer last stored them.
fn checks(state: &AppState, key: &str) -> anyhow::Result<()> {
    let node = find(state, key)?;
    let (rows, reports) = state
        .store
        .blocking(|c| Ok((store::monitor::checks(c)?, store::monitor::reports(c)?)))?;
    let rows: Vec<_> = rows.into_iter().filter(|r| r.node == node.id).collect();
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

fn history(state: &AppState, key: &str, resolution: Resolution, hours: f64) -> anyhow::Result<()> {
    if !(hours.is_finite() && hours > 0.0) {
        return Err(UsageError(format!("--hours {hours} must be a positive number")).into());
    }
    let node = find(state, key)?;
    let since = store::now_ms() / 1000 - (hours * 3600.0) as i64;
    let rows = state
        .store
        .blocking(|c| store::monitor::history(c, node.id, resolution.seconds(), since))?;
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
    let node = find(state, key)?;
    let id = node.id;
    let hosted = state.store.blocking(|c| store::meetings::for_node(c, id))?;
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
    let forgotten = state.store.blocking(|c| {
        let ids = store::meetings::remove_on_node(c, id)?;
        store::nodes::set_state(c, id, NodeState::Disabled)?;
        Ok(ids)
    })?;
    crate::ops::nodes::end_on_node(state, &node, &forgotten).await;
    println!("OK");
    Ok(())
}

/// Forgets the node's meetings, asks the node to end them, and disables it.
async fn panic(state: &Arc<AppState>, key: &str, keep_state: bool) -> anyhow::Result<()> {
    let node = find(state, key)?;
    let forgotten = ops::nodes::panic(state, &node, keep_state).await?;
    println!("OK ({forgotten} meetings forgotten)");
    Ok(())
}

/// Scalelite's status table.
pub fn status(state: &AppState) -> anyhow::Result<()> {
    let nodes = state.store.blocking(|c| store::nodes::list(c))?;
    let rows: Vec<[String; 7]> = nodes
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
            ]
        })
        .collect();
    let header = [
        "HOSTNAME",
        "STATE",
        "STATUS",
        "MEETINGS",
        "USERS",
        "LARGEST MEETING",
        "VIDEOS",
    ];
    let widths: Vec<usize> = (0..7)
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

fn parse_ports(text: &str) -> anyhow::Result<Vec<u16>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(UsageError(format!("{p:?} is not a TCP port")).into()),
        })
        .collect()
}
