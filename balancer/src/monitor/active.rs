//! The balancer's own checks of each node (besides `api`, which the poller sets):
//! - `version`: the API index answers, with the expected version when one is configured;
//! - `ports`: TCP connects to the node's ports (its own list, else `monitor.ports`);
//! - `demo`: BBB's demo pages are not installed (each path must not answer 200).
//!
//! Each runs on its own interval over the enabled and cordoned nodes, with the poller's
//! concurrency bound and timeouts.

use std::sync::Arc;
use std::time::Duration;

use conflux_shared::status::{CheckName, Status};
use conflux_shared::Response;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::state::AppState;
use conflux_store::{Node, NodeState};

/// Starts one task per check kind.
pub fn spawn(state: &Arc<AppState>) -> Vec<JoinHandle<()>> {
    let m = &state.config.monitor;
    let client = match state.node_client.http() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "No HTTP client: active checks are off.");
            return Vec::new();
        }
    };
    let mut tasks = vec![
        every(state, m.version_interval, {
            let client = client.clone();
            move |state, node| {
                let client = client.clone();
                async move { version(&state, &client, &node).await }
            }
        }),
        every(state, m.ports_interval, |state, node| async move {
            ports(&state, &node).await
        }),
    ];
    if !m.demo_paths.is_empty() {
        tasks.push(every(state, m.demo_interval, move |state, node| {
            let client = client.clone();
            async move { demo(&state, &client, &node).await }
        }));
    }
    tasks
}

/// Runs `check` over the monitored nodes every `interval`.
fn every<F, Fut>(state: &Arc<AppState>, interval: Duration, check: F) -> JoinHandle<()>
where
    F: Fn(Arc<AppState>, Arc<Node>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<(CheckName, Status, String)>> + Send,
{
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !state.singletons.held().await {
                continue;
            }
            let nodes = state.nodes.load_full();
            let monitored = nodes
                .nodes
                .iter()
                .filter(|n| n.state != NodeState::Disabled)
                .cloned();
            futures_util::stream::iter(monitored)
                .for_each_concurrent(state.config.poller.concurrency, |node| {
                    let state = state.clone();
                    let check = &check;
                    async move {
                        let id = node.id;
                        if let Some((name, status, output)) = check(state.clone(), node).await {
                            state.monitor.set(id, name, status, output);
                        }
                    }
                })
                .await;
        }
    })
}

async fn version(
    state: &AppState,
    client: &reqwest::Client,
    node: &Node,
) -> Option<(CheckName, Status, String)> {
    let expected = &state.config.monitor.expected_version;
    let answer = async {
        let text = client
            .get(&node.url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let response = Response::from_xml(&text).map_err(|e| e.to_string())?;
        if !response.is_success() {
            return Err("the API index did not answer SUCCESS".to_string());
        }
        Ok(response
            .field("version")
            .unwrap_or_default()
            .trim()
            .to_owned())
    };
    Some(match answer.await {
        Ok(v) if expected.is_empty() || v.starts_with(expected.as_str()) => (
            CheckName::Version,
            Status::Ok,
            format!("BBB API version {v}"),
        ),
        Ok(v) => (
            CheckName::Version,
            Status::Warning,
            format!("BBB API version {v}, expected {expected}"),
        ),
        Err(e) => (
            CheckName::Version,
            Status::Critical,
            format!("API index: {e}"),
        ),
    })
}

async fn ports(state: &AppState, node: &Node) -> Option<(CheckName, Status, String)> {
    let ports = if node.ports.is_empty() {
        &state.config.monitor.ports
    } else {
        &node.ports
    };
    if ports.is_empty() {
        return None;
    }
    let host = conflux_shared::signed_url::host_of(&node.url);
    let timeout = state.config.poller.connect_timeout;
    let mut closed = Vec::new();
    for port in ports {
        let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => closed.push(format!("{port}: {e}")),
            Err(_) => closed.push(format!("{port}: no answer within {timeout:?}")),
        }
    }
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Some(if closed.is_empty() {
        (CheckName::Ports, Status::Ok, format!("TCP {list} open"))
    } else {
        (
            CheckName::Ports,
            Status::Critical,
            format!("closed: {}", closed.join("; ")),
        )
    })
}

async fn demo(
    state: &AppState,
    client: &reqwest::Client,
    node: &Node,
) -> Option<(CheckName, Status, String)> {
    let origin = node
        .url
        .strip_suffix("/bigbluebutton/api")
        .unwrap_or(&node.url);
    for path in &state.config.monitor.demo_paths {
        let url = format!("{origin}{path}");
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return Some((
                    CheckName::Demo,
                    Status::Warning,
                    format!("demo installed: {path} answers {}", r.status()),
                ));
            }
        }
    }
    Some((CheckName::Demo, Status::Ok, "no demo pages served".into()))
}
