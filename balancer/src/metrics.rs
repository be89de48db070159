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
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};

mod exposition;
mod process;

use exposition::Described;
pub use exposition::Format;

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
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegrationLabels {
    integration: String,
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

/// What a scrape shows beside the request metrics.
pub struct Scrape<'a> {
    pub nodes: Vec<Arc<Node>>,
    pub health: &'a Monitor,
    pub integrations: Vec<IntegrationFigures>,
}

/// One integration's figures at a scrape.
#[derive(Debug, Default)]
pub struct IntegrationFigures {
    pub name: String,
    pub meetings: usize,
    pub users: u32,
    /// Encrypted recordings waiting for its recorder, and how long the oldest has waited.
    pub archives_waiting: u64,
    pub oldest_wait_secs: f64,
    /// Archives its recorder refused (kept for inspection).
    pub archives_refused: u64,
}

/// The families registered for one scrape, so each is described even without a sample.
struct Families {
    registry: Registry,
    described: Vec<Described>,
}

impl Families {
    /// Registers `metric` as `conflux_NAME` (`process_NAME` for `process`, the names
    /// Prometheus' client libraries use).
    fn add(&mut self, name: &'static str, help: &'static str, metric: impl Metric) {
        let kind = match metric.metric_type() {
            MetricType::Counter => "counter",
            MetricType::Histogram => "histogram",
            _ => "gauge",
        };
        if name.starts_with("process_") {
            self.registry.register(name, help, metric);
        } else {
            self.registry
                .sub_registry_with_prefix("conflux")
                .register(name, help, metric);
        }
        let name = if name.starts_with("process_") {
            name.to_owned()
        } else {
            format!("conflux_{name}")
        };
        self.described.push(Described { name, help, kind });
    }

    fn gauge<L>(
        &mut self,
        name: &'static str,
        help: &'static str,
    ) -> Family<L, Gauge<f64, AtomicU64>>
    where
        L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    {
        let family = Family::<L, Gauge<f64, AtomicU64>>::default();
        self.add(name, help, family.clone());
        family
    }
}

impl Metrics {
    /// The whole exposition for one scrape, in `format`.
    pub fn render(&self, scrape: &Scrape<'_>, format: Format) -> String {
        let mut f = Families {
            registry: Registry::default(),
            described: Vec::new(),
        };
        self.requests_families(&mut f);
        nodes_families(&mut f, scrape);
        integrations_families(&mut f, &scrape.integrations);
        let build = f.gauge::<BuildLabels>("build_info", "The balancer's version (always 1)");
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1.0);
        process::register(&mut f);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &f.registry) {
            tracing::error!(error = %e, "Could not encode metrics.");
        }
        exposition::render(&text, &f.described, format)
    }
}

impl Metrics {
    fn requests_families(&self, f: &mut Families) {
        f.add(
            "api_requests",
            "BBB API calls answered, by call and outcome",
            self.requests.clone(),
        );
        f.add(
            "api_request_duration_seconds",
            "Time to answer a BBB API call",
            self.latency.clone(),
        );
        f.add(
            "open_connections",
            "Client connections open now",
            self.open_connections.clone(),
        );
        f.add(
            "connections_refused",
            "Client connections refused for being over server.max_connections",
            self.connections_refused.clone(),
        );
        f.add(
            "api_checksum_failures",
            "API requests whose checksum matched no secret, by API (bbb, mobile)",
            self.checksum_failures.clone(),
        );
        f.add(
            "api_checksum_refusals",
            "API requests refused unchecked after too many failed checksums, by API",
            self.checksum_refusals.clone(),
        );
        f.add(
            "recording_archives_refused",
            "Recording archives refused, by the balancer on upload or by the recorder",
            self.archives_refused.clone(),
        );
    }
}

/// The per-node families, in base units (ratios 0 to 1, bytes). An offline node counts no
/// meetings or users: what it last reported is gone with it.
fn nodes_families(f: &mut Families, scrape: &Scrape<'_>) {
    let online = f.gauge::<NodeLabels>("node_online", "1 if the node answers its API");
    let enabled = f.gauge::<NodeLabels>(
        "node_enabled",
        "1 if the node takes new meetings (admin state)",
    );
    let accepted = f.gauge::<NodeLabels>(
        "node_accepting",
        "1 if monitoring lets the node take new meetings",
    );
    let meetings = f.gauge::<NodeLabels>("node_meetings", "Meetings on the node (last poll)");
    let users = f.gauge::<NodeLabels>("node_users", "Participants on the node (last poll)");
    let voice = f.gauge::<NodeLabels>(
        "node_voice_users",
        "Participants with a microphone (last poll)",
    );
    let video = f.gauge::<NodeLabels>("node_video_users", "Participants with a camera (last poll)");
    let largest = f.gauge::<NodeLabels>(
        "node_largest_meeting_users",
        "Participants of the node's largest meeting (last poll)",
    );
    let cpu = f.gauge::<NodeLabels>(
        "node_cpu_usage_ratio",
        "CPU in use, 0 to 1, from the node's agent",
    );
    let memory = f.gauge::<NodeLabels>(
        "node_memory_usage_ratio",
        "Memory in use, 0 to 1, from the node's agent",
    );
    let disk = f.gauge::<NodeLabels>(
        "node_disk_usage_ratio",
        "The fullest reported disk's use, 0 to 1, from the node's agent",
    );
    let received = Family::<NodeLabels, Counter<f64, AtomicU64>>::default();
    f.add(
        "node_network_receive_bytes",
        "Bytes the node received since this balancer started, from its agent's rates",
        received.clone(),
    );
    let sent = Family::<NodeLabels, Counter<f64, AtomicU64>>::default();
    f.add(
        "node_network_transmit_bytes",
        "Bytes the node sent since this balancer started, from its agent's rates",
        sent.clone(),
    );
    let checks = Family::<CheckLabels, Gauge<f64, AtomicU64>>::default();
    f.add(
        "node_check_state",
        "Each check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
        checks.clone(),
    );
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    for node in &scrape.nodes {
        let l = NodeLabels {
            node: node.name.clone(),
        };
        let counted = |n: u32| if node.online { f64::from(n) } else { 0.0 };
        online.get_or_create(&l).set(flag(node.online));
        enabled
            .get_or_create(&l)
            .set(flag(node.state == NodeState::Enabled));
        accepted
            .get_or_create(&l)
            .set(flag(scrape.health.accepts(node)));
        meetings.get_or_create(&l).set(counted(node.meetings));
        users.get_or_create(&l).set(counted(node.users));
        voice.get_or_create(&l).set(counted(node.voice));
        video.get_or_create(&l).set(counted(node.videos));
        largest.get_or_create(&l).set(counted(node.largest_meeting));
        let Some(health) = scrape.health.health(node.id) else {
            continue;
        };
        if let Some(r) = &health.report {
            cpu.get_or_create(&l).set(r.cpu_percent / 100.0);
            memory.get_or_create(&l).set(r.memory_percent() / 100.0);
            disk.get_or_create(&l)
                .set(r.fullest_disk().map_or(0.0, |d| d.percent() / 100.0));
            received.get_or_create(&l).inc_by(health.received_bytes);
            sent.get_or_create(&l).inc_by(health.sent_bytes);
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
}

/// The per-integration families.
fn integrations_families(f: &mut Families, integrations: &[IntegrationFigures]) {
    let meetings = f.gauge::<IntegrationLabels>(
        "integration_meetings",
        "Meetings of the integration (institution) now",
    );
    let users = f.gauge::<IntegrationLabels>(
        "integration_users",
        "Participants in the integration's meetings, as of the last poll",
    );
    let waiting = f.gauge::<IntegrationLabels>(
        "integration_archives_waiting",
        "Encrypted recordings waiting for the integration's recording server",
    );
    let oldest = f.gauge::<IntegrationLabels>(
        "integration_archive_wait_seconds",
        "How long the oldest waiting recording has waited for its recording server (0: none)",
    );
    let refused = f.gauge::<IntegrationLabels>(
        "integration_archives_refused",
        "Archives the integration's recording server refused, kept for inspection",
    );
    for i in integrations {
        let l = IntegrationLabels {
            integration: i.name.clone(),
        };
        meetings.get_or_create(&l).set(i.meetings as f64);
        users.get_or_create(&l).set(f64::from(i.users));
        waiting.get_or_create(&l).set(i.archives_waiting as f64);
        oldest.get_or_create(&l).set(i.oldest_wait_secs);
        refused.get_or_create(&l).set(i.archives_refused as f64);
    }
}
