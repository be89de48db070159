//! What the pages show, built from the in-memory snapshots (nodes, monitoring): plain values
//! ready for the templates. Never a secret: node and integration secrets are not in here.

use serde::Serialize;

use crate::state::AppState;
use conflux_store::{Forced, Node, NodeState};

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub name: String,
    pub location: String,
    pub state: &'static str,
    pub forced: Option<&'static str>,
    pub online: bool,
    pub accepting: bool,
    pub problem: bool,
    pub checks: Vec<CheckView>,
    pub cpu: String,
    pub memory: String,
    pub disk: String,
    pub network: String,
    pub load: String,
    pub meetings: u32,
    pub users: u32,
    pub voice: u32,
    pub video: u32,
}

#[derive(Debug, Serialize)]
pub struct CheckView {
    pub name: &'static str,
    pub status: &'static str,
    pub output: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub nodes: usize,
    pub online: usize,
    pub accepting: usize,
    pub problems: usize,
    pub meetings: u32,
    pub users: u32,
    pub voice: u32,
    pub video: u32,
    pub net_in: String,
    pub net_out: String,
}

/// Every node, and the network totals.
pub fn network(state: &AppState) -> (Vec<NodeView>, Totals) {
    let nodes = state.nodes.load();
    let views: Vec<NodeView> = nodes.nodes.iter().map(|n| node(state, n)).collect();
    let (mut net_in, mut net_out) = (0.0, 0.0);
    for n in &nodes.nodes {
        if let Some(r) = state.monitor.health(n.id).and_then(|h| h.report) {
            net_in += r.net_in;
            net_out += r.net_out;
        }
    }
    let totals = Totals {
        nodes: views.len(),
        online: views.iter().filter(|v| v.online).count(),
        accepting: views.iter().filter(|v| v.accepting).count(),
        problems: views.iter().filter(|v| v.problem).count(),
        meetings: views.iter().map(|v| v.meetings).sum(),
        users: views.iter().map(|v| v.users).sum(),
        voice: views.iter().map(|v| v.voice).sum(),
        video: views.iter().map(|v| v.video).sum(),
        net_in: rate(net_in),
        net_out: rate(net_out),
    };
    (views, totals)
}

pub fn node(state: &AppState, n: &Node) -> NodeView {
    let health = state.monitor.health(n.id).unwrap_or_default();
    let report = health.report.as_deref();
    let checks: Vec<CheckView> = health
        .checks
        .iter()
        .map(|(name, c)| CheckView {
            name: name.as_str(),
            status: c.status.as_str(),
            output: c.output.clone(),
        })
        .collect();
    let accepting = n.state == NodeState::Enabled && n.online && state.monitor.accepts(n);
    let (meetings, users, voice, video) = match report.and_then(|r| r.bbb.as_ref().ok()) {
        Some(b) => (b.meetings, b.users, b.voice, b.video),
        None => (n.meetings, n.users, n.voice, n.videos),
    };
    NodeView {
        name: n.name.clone(),
        location: state
            .monitor
            .position(n)
            .map(|p| format!("{:.2}, {:.2}", p.lat, p.lon))
            .unwrap_or_else(|| "location unknown".into()),
        state: n.state.as_str(),
        forced: forced(n.forced),
        online: n.online,
        accepting,
        problem: !n.online
            || checks
                .iter()
                .any(|c| c.status == "WARNING" || c.status == "CRITICAL"),
        checks,
        cpu: report.map_or("–".into(), |r| format!("{:.0}%", r.cpu_percent)),
        memory: report.map_or("–".into(), |r| format!("{:.0}%", r.memory_percent())),
        disk: report
            .and_then(|r| r.fullest_disk())
            .map_or("–".into(), |d| format!("{:.0}%", d.percent())),
        network: report.map_or("–".into(), |r| {
            format!("{} / {}", rate(r.net_in), rate(r.net_out))
        }),
        load: report.map_or("–".into(), |r| format!("{:.2}", r.load[0])),
        meetings,
        users,
        voice,
        video,
    }
}

/// An admin's override of monitoring, as the pages and the API name it.
pub fn forced(forced: Option<Forced>) -> Option<&'static str> {
    forced.map(|f| match f {
        Forced::Enabled => "forced on",
        Forced::Disabled => "forced off",
    })
}

/// Bytes per second as bits per second, humanly.
fn rate(bytes_per_sec: f64) -> String {
    let bits = bytes_per_sec * 8.0;
    if bits >= 1e9 {
        format!("{:.1} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.0} kbit/s", bits / 1e3)
    }
}
