//! Prometheus metrics at `GET /metrics` (OpenMetrics text): the balancer's own API request
//! counters and latencies, recorded on every call, and per-node gauges (state, meetings,
//! users, the agent's figures and each check's state) built from the snapshots at scrape time.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::failures::Api;
use crate::health::Monitor;
use conflux_store::{Node, NodeState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    /// A node's answer passed on unchanged (its returncode is not parsed).
    Proxied,
    Redirect,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Proxied => "proxied",
            Outcome::Redirect => "redirect",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    node: String,
    check: String,
}

type Latency = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// The request metrics, shared by every server thread.
pub struct Metrics {
    requests: Family<CallLabels, Counter>,
    latency: Latency,
    /// Client connections open now (kept by `server::Gate`).
    pub open_connections: Gauge<i64, AtomicI64>,
    connections_refused: Counter,
    checksum_failures: Family<ApiLabels, Counter>,
    checksum_refusals: Family<ApiLabels, Counter>,
    archives_refused: Family<ByLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByLabels {
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                // 0.25 ms .. about 4 s.
                Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
            }),
            open_connections: Gauge::default(),
            connections_refused: Counter::default(),
            checksum_failures: Family::default(),
            checksum_refusals: Family::default(),
            archives_refused: Family::default(),
        }
    }
}

/// The label a call is counted under (no allocation on the request path).
/// Anything but a known call is counted as `other`, so clients cannot grow the label set.
pub fn call_label(call: &str) -> &'static str {
    conflux_shared::Call::from_name(call).map_or("other", conflux_shared::Call::name)
}

impl Metrics {
    /// Counts a connection refused for being over `server.max_connections`.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts a wrong checksum.
    pub fn checksum_failed(&self, api: Api) {
        let api = api.as_str();
        self.checksum_failures
            .get_or_create(&ApiLabels { api })
            .inc();
    }

    /// Counts a request refused unchecked for too many failed checksums.
    pub fn checksum_refused(&self, api: Api) {
        let api = api.as_str();
        self.checksum_refusals
            .get_or_create(&ApiLabels { api })
            .inc();
    }

    /// Counts a recording archive refused `by` the balancer (on upload) or the recorder.
    pub fn archive_refused(&self, by: &'static str) {
        self.archives_refused.get_or_create(&ByLabels { by }).inc();
    }

    /// Counts one API call.
    pub fn observe(&self, call: &'static str, outcome: Outcome, elapsed: Duration) {
        self.requests
            .get_or_create(&CallLabels {
                call,
                outcome: outcome.as_str(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { call })
            .observe(elapsed.as_secs_f64());
    }
}

/// Whether a scrape with this `Authorization` header may read the metrics: always without
/// `metrics.token`, else only with `Bearer <token>` (compared in constant time).
pub fn authorized(config: &crate::config::Config, authorization: Option<&str>) -> bool {
    let Some(token) = &config.metrics_token else {
        return true;
    };
    let given = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    crate::auth::same(given, &token.0)
}

impl Metrics {
    /// The whole exposition for one scrape.
    pub fn render(&self, nodes: &[Arc<Node>], health: &Monitor) -> String {
        let mut registry = Registry::with_prefix("conflux");
        registry.register(
            "api_requests",
            "BBB API calls answered, by call and outcome",
            self.requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "Time to answer a BBB API call",
            self.latency.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open now",
            self.open_connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Client connections refused for being over server.max_connections",
            self.connections_refused.clone(),
        );
        registry.register(
            "api_checksum_failures",
            "API requests whose checksum matched no secret, by API (bbb, mobile)",
            self.checksum_failures.clone(),
        );
        registry.register(
            "api_checksum_refusals",
            "API requests refused unchecked after too many failed checksums, by API",
            self.checksum_refusals.clone(),
        );
        registry.register(
            "recording_archives_refused",
            "Recording archives refused, by the balancer on upload or by the recorder",
            self.archives_refused.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<NodeLabels, Gauge<f64, AtomicU64>>::default();
            registry.register(name, help, family.clone());
            family
        };
        let online = gauge(
            &mut registry,
            "node_online",
            "1 if the node answers its API",
        );
        let enabled = gauge(
            &mut registry,
            "node_enabled",
            "1 if the node takes new meetings (admin state)",
        );
        let accepted = gauge(
            &mut registry,
            "node_accepting",
            "1 if monitoring lets the node take new meetings",
        );
        let meetings = gauge(
            &mut registry,
            "node_meetings",
            "Meetings on the node (last poll)",
        );
        let users = gauge(
            &mut registry,
            "node_users",
            "Participants on the node (last poll)",
        );
        let voice = gauge(
            &mut registry,
            "node_voice_users",
            "Participants with a microphone (last poll)",
        );
        let video = gauge(
            &mut registry,
            "node_video_users",
            "Participants with a camera (last poll)",
        );
        let cpu = gauge(
            &mut registry,
            "node_cpu_percent",
            "CPU use from the node's agent",
        );
        let memory = gauge(
            &mut registry,
            "node_memory_percent",
            "Memory use from the node's agent",
        );
        let disk = gauge(
            &mut registry,
            "node_disk_percent",
            "Fullest disk from the node's agent",
        );
        let net_in = gauge(
            &mut registry,
            "node_network_in_bytes_per_second",
            "Received, from the node's agent",
        );
        let net_out = gauge(
            &mut registry,
            "node_network_out_bytes_per_second",
            "Sent, from the node's agent",
        );
        let checks = Family::<CheckLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "node_check_state",
            "Each check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
            checks.clone(),
        );
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        for node in nodes {
            let l = NodeLabels {
                node: node.name.clone(),
            };
            online.get_or_create(&l).set(flag(node.online));
            enabled
                .get_or_create(&l)
                .set(flag(node.state == NodeState::Enabled));
            accepted.get_or_create(&l).set(flag(health.accepts(node)));
            meetings.get_or_create(&l).set(f64::from(node.meetings));
            users.get_or_create(&l).set(f64::from(node.users));
            voice.get_or_create(&l).set(f64::from(node.voice));
            video.get_or_create(&l).set(f64::from(node.videos));
            let Some(health) = health.health(node.id) else {
                continue;
            };
            if let Some(r) = &health.report {
                cpu.get_or_create(&l).set(r.cpu_percent);
                memory.get_or_create(&l).set(r.memory_percent());
                disk.get_or_create(&l)
                    .set(r.fullest_disk().map_or(0.0, |d| d.percent()));
                net_in.get_or_create(&l).set(r.net_in);
                net_out.get_or_create(&l).set(r.net_out);
            }
            for (name, check) in &health.checks {
                let labels = CheckLabels {
                    node: node.name.clone(),
                    check: name.as_str().to_owned(),
                };
                checks
                    .get_or_create(&labels)
                    .set(f64::from(check.status.exit_code()));
            }
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "Could not encode metrics.");
        }
        text
    }
}
