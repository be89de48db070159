//! Enrolment and the report loop. The first run enrols with the balancer's enrolment token
//! and keeps the node id and key in the state file (mode 0600); every interval after that it
//! sends a report signed with that key (see `conflux_shared::report`).
//!
//! Through a balancer outage it keeps running: a failed report is dropped, not queued (the
//! next one carries fresher figures), and attempts back off from the interval up to five
//! minutes, so memory stays flat however long the outage lasts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conflux_shared::report::{self, Enrolled, Report};
use tokio::time::Instant;

use crate::collect::{bbb, Collector};
use crate::config::Config;
use crate::node_key::{self, NodeKey};

const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a report or an enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("balancer unreachable: {0}")]
    Network(String),
    #[error("balancer refused ({status}): {error}")]
    Refused { status: u16, error: String },
}

impl SendError {
    /// Whether the balancer no longer knows our key (node removed, store reset): enrol again.
    fn needs_enrolment(&self) -> bool {
        matches!(self, SendError::Refused { status: 401, error } if error.contains("unknown node") || error.contains("no agent key") || error.contains("bad signature"))
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    config.check_reporting()?;
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut collector = Collector::new(&config.disks)?;
    let mut enrolled = node_key::load(&config.state_file, &config.balancer_url)?;
    let (keys, outbox_key) = tokio::sync::watch::channel(enrolled.clone());
    tokio::spawn(crate::outbox::run(config.clone(), outbox_key));
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = config.interval;
    let mut next_attempt = Instant::now();
    tracing::info!(balancer = %config.balancer_url, node = %config.name, interval = ?config.interval, "Agent started.");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut shutdown => break,
        }
        if Instant::now() < next_attempt {
            continue;
        }
        let result = match &enrolled {
            None => enrol(&client, &config).await.map(|e| {
                tracing::info!(node = e.node, name = %e.name, "Enrolled with the balancer.");
                if let Err(err) = node_key::save(&config.state_file, &e) {
                    tracing::error!(error = %err, "Could not keep the enrolment; it will be redone after a restart.");
                }
                keys.send_replace(Some(e.clone()));
                enrolled = Some(e);
            }),
            Some(e) => {
                let machine = collector.sample();
                let counts = bbb::counts(&client, &config.local_api_url, &config.secret).await;
                if let Err(problem) = &counts {
                    tracing::warn!(%problem, "Could not read the BBB counts.");
                }
                let report = Report {
                    cpu_percent: machine.cpu_percent,
                    load: machine.load,
                    memory_used: machine.memory_used,
                    memory_total: machine.memory_total,
                    disks: machine.disks,
                    net_in: machine.net_in,
                    net_out: machine.net_out,
                    bbb: counts,
                    interval_secs: config.interval.as_secs_f64(),
                };
                send(&client, &config.balancer_url, e, &report).await
            }
        };
        match result {
            Ok(()) => {
                backoff = config.interval;
                next_attempt = Instant::now();
            }
            Err(e) => {
                if e.needs_enrolment() {
                    tracing::warn!(error = %e, "The balancer no longer knows this node; enrolling again.");
                    enrolled = None;
                    keys.send_replace(None);
                }
                tracing::warn!(error = %e, retry_in = ?backoff, "Report failed.");
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!("Agent stopped.");
    Ok(())
}

async fn enrol(client: &reqwest::Client, config: &Config) -> Result<NodeKey, SendError> {
    let request = report::Enrolment {
        token: config.enrolment_token.clone(),
        name: config.name.clone(),
        url: config.api_url.clone(),
        secret: config.secret.clone(),
        latitude: config.location.map(|l| l.0),
        longitude: config.location.map(|l| l.1),
    };
    let response = client
        .post(format!("{}{}", config.balancer_url, report::ENROL_PATH))
        .json(&request)
        .send()
        .await
        .map_err(|e| SendError::Network(e.to_string()))?;
    let answer: Enrolled = answer(response).await?;
    Ok(NodeKey {
        balancer: config.balancer_url.clone(),
        node: answer.node,
        name: answer.name,
        key: answer.key,
    })
}

async fn send(
    client: &reqwest::Client,
    balancer: &str,
    enrolled: &NodeKey,
    report: &Report,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(report).map_err(|e| SendError::Network(e.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let signature = report::sign(enrolled.key.as_bytes(), enrolled.node, now, &body);
    let response = client
        .post(format!("{balancer}{}", report::REPORT_PATH))
        .header(report::NODE_HEADER, enrolled.node.to_string())
        .header(report::TIMESTAMP_HEADER, now.to_string())
        .header(report::SIGNATURE_HEADER, signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Network(e.to_string()))?;
    answer::<serde_json::Value>(response).await.map(|_| ())
}

async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, SendError> {
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| SendError::Network(e.to_string()))?;
    if !(200..300).contains(&status) {
        let error = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or(text);
        return Err(SendError::Refused { status, error });
    }
    serde_json::from_str(&text).map_err(|e| SendError::Refused {
        status,
        error: format!("unexpected answer: {e}"),
    })
}
