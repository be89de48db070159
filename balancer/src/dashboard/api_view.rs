//! What the JSON admin API answers about nodes: the same facts as the pages' [`super::view`],
//! as numbers in base units (ratios from 0 to 1, bytes a second, milliseconds since the epoch)
//! and with the ids every action needs, instead of display strings. Never a secret.

use serde::Serialize;

use crate::state::AppState;
use conflux_store::Node;

#[derive(Debug, Serialize)]
pub struct ApiNode {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub state: &'static str,
    pub forced: Option<&'static str>,
    pub online: bool,
    /// Takes new meetings now.
    pub accepting: bool,
    pub problem: bool,
    pub tags: Vec<String>,
    pub load_multiplier: f64,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub meetings: u32,
    pub users: u32,
    pub voice: u32,
    pub video: u32,
    pub largest_meeting: u32,
    pub checks: Vec<ApiCheck>,
    /// From the agent's latest report (absent without an agent).
    pub report: Option<ApiReport>,
}

#[derive(Debug, Serialize)]
pub struct ApiCheck {
    pub name: &'static str,
    pub status: &'static str,
    pub output: String,
    /// When the status last changed (ms since the epoch).
    pub since: i64,
}

#[derive(Debug, Serialize)]
pub struct ApiReport {
    /// When it arrived (ms since the epoch).
    pub received_at: i64,
    pub cpu_ratio: f64,
    pub memory_ratio: f64,
    /// The fullest reported disk.
    pub disk_ratio: Option<f64>,
    pub load1: f64,
    pub network_receive_bytes_per_second: f64,
    pub network_transmit_bytes_per_second: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct ApiTotals {
    pub nodes: usize,
    pub online: usize,
    pub accepting: usize,
    pub problems: usize,
    pub meetings: u32,
    pub users: u32,
    pub voice: u32,
    pub video: u32,
    pub network_receive_bytes_per_second: f64,
    pub network_transmit_bytes_per_second: f64,
}

/// Every node, and the network's totals.
pub fn network(state: &AppState) -> (Vec<ApiNode>, ApiTotals) {
    let nodes: Vec<ApiNode> = state
        .nodes
        .load()
        .nodes
        .iter()
        .map(|n| node(state, n))
        .collect();
    let mut totals = ApiTotals {
        nodes: nodes.len(),
        ..ApiTotals::default()
    };
    for n in &nodes {
        totals.online += usize::from(n.online);
        totals.accepting += usize::from(n.accepting);
        totals.problems += usize::from(n.problem);
        totals.meetings += n.meetings;
        totals.users += n.users;
        totals.voice += n.voice;
        totals.video += n.video;
        if let Some(r) = &n.report {
            totals.network_receive_bytes_per_second += r.network_receive_bytes_per_second;
            totals.network_transmit_bytes_per_second += r.network_transmit_bytes_per_second;
        }
    }
    (nodes, totals)
}

pub fn node(state: &AppState, n: &Node) -> ApiNode {
    let page = super::view::node(state, n);
    let health = state.monitor.health(n.id).unwrap_or_default();
    let position = state.monitor.position(n);
    ApiNode {
        id: n.id.0,
        name: n.name.clone(),
        url: n.shown_url().to_owned(),
        state: n.state.as_str(),
        forced: super::view::forced(n.forced),
        online: n.online,
        accepting: page.accepting,
        problem: page.problem,
        tags: n.tags.clone(),
        load_multiplier: n.load_multiplier,
        latitude: position.map(|p| p.lat),
        longitude: position.map(|p| p.lon),
        meetings: page.meetings,
        users: page.users,
        voice: page.voice,
        video: page.video,
        largest_meeting: if n.online { n.largest_meeting } else { 0 },
        checks: health
            .checks
            .iter()
            .map(|(name, c)| ApiCheck {
                name: name.as_str(),
                status: c.status.as_str(),
                output: c.output.clone(),
                since: c.since,
            })
            .collect(),
        report: health.report.as_deref().map(|r| ApiReport {
            received_at: health.received_at,
            cpu_ratio: r.cpu_percent / 100.0,
            memory_ratio: r.memory_percent() / 100.0,
            disk_ratio: r.fullest_disk().map(|d| d.percent() / 100.0),
            load1: r.load[0],
            network_receive_bytes_per_second: r.net_in,
            network_transmit_bytes_per_second: r.net_out,
        }),
    }
}
