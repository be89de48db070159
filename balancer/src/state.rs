//! The balancer's shared state: configuration, store, and read-mostly snapshots of nodes,
//! integrations and meeting routes that the request path reads without waiting on I/O.
//!
//! SQLite is the source of truth. The snapshots are replaced as a whole (arc-swap) by
//! [`AppState::refresh`] after each poll and when the store signals that another process (the
//! admin CLI) committed; request handlers update the routes they change themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use conflux_shared::SignedQuery;
use tokio::sync::broadcast;
use warp::hyper::body::Bytes;

use crate::config::Config;
use crate::health::Monitor;
use crate::node_client::NodeClient;
use conflux_store::{self as store, Integration, IntegrationId, Node, NodeId, Store, StoreError};

/// How long a local route change is kept for replay over snapshots (far longer than a
/// snapshot read takes).
const ROUTE_CHANGES_KEPT: Duration = Duration::from_secs(60);

/// Why the balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("geoip: {0}")]
    GeoIp(#[from] conflux_geoip::GeoIpError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Templates(#[from] conflux_templates::TemplateError),
}

/// The GeoIP files: the configured ones, else every `*.mmdb` in `<data_dir>/geoip`.
pub fn geoip_files(config: &Config) -> Vec<std::path::PathBuf> {
    if !config.geoip_files.is_empty() {
        return config.geoip_files.clone();
    }
    let mut found: Vec<_> = std::fs::read_dir(config.data_dir.join("geoip"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
        .collect();
    found.sort();
    found
}

/// Everything the servers share, behind one `Arc`.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// Held by the one balancer (of those sharing the store) that runs the singleton work:
    /// polling, active checks, history pruning, spool import, retention.
    pub singletons: conflux_store::Lease,
    pub node_client: NodeClient,
    pub monitor: Monitor,
    pub metrics: crate::metrics::Metrics,
    pub templates: conflux_templates::Templates,
    /// Failed web logins per client address, and failed API checksums per client and
    /// integration (guessing secrets online).
    pub failures: crate::failures::Failures,
    /// When the poller's previous round ended (usage accounting).
    pub last_round: Mutex<Option<Instant>>,
    pub nodes: ArcSwap<NodeTable>,
    pub integrations: ArcSwap<IntegrationTable>,
    /// Meeting routes; the lock is held only to read or write one entry (or swap the map).
    routes: RwLock<HashMap<String, Route>>,
    /// This process's recent route changes (when, meeting, route), replayed over a snapshot
    /// read while they happened: a snapshot that began before a create committed must not
    /// drop the route the create has just set.
    route_changes: Mutex<Vec<(Instant, String, Option<Route>)>>,
    /// Creates and joins sent to each node since the poll it was last seen at (Scalelite adds
    /// 1 × the multiplier to a node's load for each until the next poll recomputes it).
    load_bumps: Mutex<HashMap<NodeId, (Option<i64>, u32)>>,
    /// Meetings to ask their nodes for again soon, so getMeetings is current between polls.
    pub changing: crate::changing::Changing,
    /// Meetings this balancer is moving to their first user's node; their joins wait.
    pub moving: crate::moving::Moving,
    /// Meetings placed recently, per node: counted at once so bursts spread (see placement).
    pub recent: Mutex<HashMap<NodeId, Vec<Instant>>>,
    pub shutdown: broadcast::Sender<()>,
    /// Bumped whenever any meeting may have changed; invalidates all of `meetings_cache`.
    generation: AtomicU64,
    /// Each integration's rendered getMeetings answer, with the [`Generation`] it was built at;
    /// an integration's own count is bumped when one of its meetings changed, so a create in
    /// one integration leaves the others' answers cached.
    meetings_cache: Mutex<MeetingsCache>,
    /// Users in each integration's meetings, as of the last poll.
    pub integration_users: ArcSwap<HashMap<IntegrationId, u32>>,
    /// Held while a getMeetings answer is rebuilt, so concurrent misses build it once.
    pub meetings_rebuild: tokio::sync::Mutex<()>,
}

/// What a cached getMeetings answer was built at: the global count and its integration's own.
pub type Generation = (u64, u64);

#[derive(Default)]
struct MeetingsCache {
    /// Each integration's own count of changes (absent: none yet).
    changes: HashMap<IntegrationId, u64>,
    answers: HashMap<IntegrationId, (Generation, Arc<MeetingsAnswer>)>,
}

/// A rendered getMeetings answer, and its gzip once a client that accepts it asked.
#[derive(Debug)]
pub struct MeetingsAnswer {
    pub xml: Bytes,
    pub gzip: std::sync::OnceLock<Bytes>,
}

/// The nodes, by id.
#[derive(Debug, Default)]
pub struct NodeTable {
    pub nodes: Vec<Arc<Node>>,
    /// Each node's host (`host_of` its URL), in the order of `nodes`.
    pub hosts: Vec<String>,
    by_id: HashMap<NodeId, usize>,
}

/// Where a meeting lives and who owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub integration: IntegrationId,
    pub node: NodeId,
}

impl NodeTable {
    pub fn new(nodes: Vec<Node>) -> NodeTable {
        let by_id = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let hosts = nodes
            .iter()
            .map(|n| conflux_shared::signed_url::host_of(&n.url))
            .collect();
        NodeTable {
            nodes: nodes.into_iter().map(Arc::new).collect(),
            hosts,
            by_id,
        }
    }

    pub fn get(&self, id: NodeId) -> Option<&Arc<Node>> {
        self.by_id.get(&id).map(|i| &self.nodes[*i])
    }
}

/// The integrations, with an index of their prefixes.
#[derive(Debug, Default)]
pub struct IntegrationTable {
    list: Vec<Arc<Integration>>,
    by_prefix: HashMap<String, Arc<Integration>>,
}

impl IntegrationTable {
    pub fn new(list: Vec<Integration>) -> IntegrationTable {
        let list: Vec<_> = list.into_iter().map(Arc::new).collect();
        let by_prefix = list
            .iter()
            .filter_map(|i| Some((i.prefix.as_ref()?.to_ascii_lowercase(), i.clone())))
            .collect();
        IntegrationTable { list, by_prefix }
    }

    /// The integration a (lower-case) prefix names.
    pub fn by_prefix(&self, prefix: &str) -> Option<&Arc<Integration>> {
        self.by_prefix.get(prefix)
    }
}

impl std::ops::Deref for IntegrationTable {
    type Target = [Arc<Integration>];

    fn deref(&self) -> &Self::Target {
        &self.list
    }
}

impl AppState {
    /// Opens the store, applies the configured default integration and loads the snapshots.
    pub fn open(config: Config) -> Result<Arc<AppState>, OpenError> {
        let store = match &config.store_url {
            Some(url) => Store::open_postgres(url)?,
            None => Store::open(&config.data_dir)?,
        };
        let geoip = conflux_geoip::GeoIp::open(&geoip_files(&config))?;
        if let Some(default) = &config.default_integration {
            store.ensure_integration_blocking(&default.name, &default.secrets)?;
        }
        let node_client = NodeClient::new(
            config.api.node_algorithm,
            config.poller.connect_timeout,
            config.poller.response_timeout,
        );
        // Fail at start-up, not on the first node call, if no client can be built (TLS roots).
        node_client
            .http()
            .map_err(|e| OpenError::Http(e.to_string()))?;
        let failures =
            crate::failures::Failures::new(crate::auth::login_limits(), config.api.failures);
        let state = Arc::new(AppState {
            failures,
            node_client,
            config: Arc::new(config),
            monitor: Monitor::new(geoip),
            metrics: crate::metrics::Metrics::default(),
            templates: conflux_templates::Templates::new()?,
            last_round: Mutex::new(None),
            singletons: store.lease("singletons"),
            store,
            nodes: ArcSwap::from_pointee(NodeTable::default()),
            integrations: ArcSwap::from_pointee(IntegrationTable::default()),
            routes: RwLock::new(HashMap::new()),
            route_changes: Mutex::new(Vec::new()),
            recent: Mutex::new(HashMap::new()),
            changing: Default::default(),
            moving: Default::default(),
            load_bumps: Mutex::new(HashMap::new()),
            shutdown: broadcast::channel(1).0,
            generation: AtomicU64::new(0),
            meetings_cache: Mutex::default(),
            meetings_rebuild: tokio::sync::Mutex::new(()),
            integration_users: ArcSwap::from_pointee(HashMap::new()),
        });
        state.load(state.store.snapshot_blocking()?, Instant::now());
        state.monitor.merge(state.store.health_blocking()?);
        Ok(state)
    }

    /// Reloads every snapshot from the store (when another writer committed: see
    /// [`conflux_store::Changes`]; this process's own writes keep the snapshots current).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        self.load(self.store.snapshot().await?, started);
        Ok(())
    }

    /// Takes in `snapshot`, read from `started` on, with this process's route changes since.
    fn load(&self, snapshot: store::Snapshot, started: Instant) {
        self.nodes.store(Arc::new(NodeTable::new(snapshot.nodes)));
        self.integrations
            .store(Arc::new(IntegrationTable::new(snapshot.integrations)));
        let routes = snapshot
            .meetings
            .into_iter()
            .map(|(meeting_id, m)| {
                let route = Route {
                    integration: m.integration_id,
                    node: m.node_id,
                };
                (meeting_id, route)
            })
            .collect::<HashMap<_, _>>();
        let mut routes = routes;
        {
            let mut changes = self.route_changes.lock().unwrap_or_else(|p| p.into_inner());
            changes.retain(|(at, ..)| at.elapsed() < ROUTE_CHANGES_KEPT);
            for (_, meeting_id, route) in changes.iter().filter(|(at, ..)| *at >= started) {
                match route {
                    Some(r) => routes.insert(meeting_id.clone(), *r),
                    None => routes.remove(meeting_id),
                };
            }
        }
        let mut current = self.routes.write().unwrap_or_else(|p| p.into_inner());
        if *current != routes {
            *current = routes;
            self.meetings_changed();
        }
    }

    /// The integration whose secret signed this request for `call`; with a `prefix`, only the
    /// integration it names is tried.
    pub fn integration_for(
        &self,
        call: &str,
        signed: &SignedQuery,
        prefix: Option<&str>,
    ) -> Option<Arc<Integration>> {
        let signed_by =
            |i: &&Arc<Integration>| i.secrets.iter().any(|s| signed.matches(call, &s.0));
        let table = self.integrations.load();
        match prefix {
            Some(prefix) => table.by_prefix(prefix).filter(signed_by).cloned(),
            None => table.iter().find(signed_by).cloned(),
        }
    }

    /// The prefix naming an integration in this request: the path's, else the Host header's
    /// first label when an integration uses it.
    pub fn request_prefix(
        &self,
        path_prefix: Option<String>,
        host: Option<&str>,
    ) -> Option<String> {
        path_prefix.or_else(|| {
            let label = host?.split(['.', ':']).next()?;
            let label = match label.bytes().any(|b| b.is_ascii_uppercase()) {
                true => std::borrow::Cow::Owned(label.to_ascii_lowercase()),
                false => std::borrow::Cow::Borrowed(label),
            };
            self.integrations
                .load()
                .by_prefix(&label)
                .map(|_| label.into_owned())
        })
    }

    /// Runs `choose` with the meetings placed on each node within `window` and records the
    /// chosen node, all under one lock, so a burst of creates spreads instead of piling up.
    pub fn place<E>(
        &self,
        window: Duration,
        choose: impl FnOnce(&HashMap<NodeId, u32>) -> Result<crate::placement::Decision, E>,
    ) -> Result<crate::placement::Decision, E> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        recent.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < window);
            !times.is_empty()
        });
        let young: HashMap<NodeId, u32> = recent
            .iter()
            .map(|(id, times)| (*id, u32::try_from(times.len()).unwrap_or(u32::MAX)))
            .collect();
        let decision = choose(&young)?;
        recent.entry(decision.node).or_default().push(now);
        Ok(decision)
    }

    /// Counts a create or join sent to `node` towards its Scalelite load.
    pub fn bump_load(&self, node: &Node) {
        let mut bumps = self.load_bumps.lock().unwrap_or_else(|p| p.into_inner());
        let entry = bumps.entry(node.id).or_insert((node.polled_at, 0));
        if entry.0 != node.polled_at {
            *entry = (node.polled_at, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Scalelite's load of `node`: its last poll's, plus 1 for each create and join sent to it
    /// since, times its load multiplier.
    pub fn scalelite_load(&self, node: &Node) -> f64 {
        self.scalelite_loads(std::slice::from_ref(node))[0]
    }

    /// [`AppState::scalelite_load`] of each of `nodes`, under one lock (placement's path).
    pub fn scalelite_loads<N: std::borrow::Borrow<Node>>(&self, nodes: &[N]) -> Vec<f64> {
        let bumps = self.load_bumps.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .map(|node| {
                let node = node.borrow();
                let since = bumps
                    .get(&node.id)
                    .filter(|(polled_at, _)| *polled_at == node.polled_at)
                    .map_or(0, |(_, n)| *n);
                (node.poll_load + f64::from(since)) * node.load_multiplier
            })
            .collect()
    }

    /// Sets or clears one meeting route in the snapshot (the store was written already).
    pub fn set_route(&self, meeting_id: &str, route: Option<Route>) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        self.route_changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Instant::now(), meeting_id.to_owned(), route));
        let previous = match route {
            Some(r) => routes.insert(meeting_id.to_owned(), r),
            None => routes.remove(meeting_id),
        };
        drop(routes);
        for changed in [previous, route].into_iter().flatten() {
            self.meetings_changed_in(changed.integration);
        }
    }

    /// Marks every cached meeting list stale.
    pub fn meetings_changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Marks `integration`'s cached meeting list stale.
    pub fn meetings_changed_in(&self, integration: IntegrationId) {
        let mut cache = self.meetings_cache();
        *cache.changes.entry(integration).or_default() += 1;
    }

    fn meetings_cache(&self) -> MutexGuard<'_, MeetingsCache> {
        self.meetings_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The cached getMeetings answer of `integration`, if still current.
    pub fn cached_meetings(&self, integration: IntegrationId) -> Option<Arc<MeetingsAnswer>> {
        let cache = self.meetings_cache();
        let (built_at, answer) = cache.answers.get(&integration)?;
        (*built_at == self.generation_in(&cache, integration)).then(|| answer.clone())
    }

    /// Caches `integration`'s getMeetings answer, built from what the store held at `built_at`.
    pub fn cache_meetings(
        &self,
        integration: IntegrationId,
        built_at: Generation,
        xml: Bytes,
    ) -> Arc<MeetingsAnswer> {
        let answer = Arc::new(MeetingsAnswer {
            xml,
            gzip: std::sync::OnceLock::new(),
        });
        self.meetings_cache()
            .answers
            .insert(integration, (built_at, answer.clone()));
        answer
    }

    /// Where `integration`'s meeting list stands now: taken before reading the store for it.
    pub fn meetings_generation(&self, integration: IntegrationId) -> Generation {
        let cache = self.meetings_cache();
        self.generation_in(&cache, integration)
    }

    fn generation_in(&self, cache: &MeetingsCache, integration: IntegrationId) -> Generation {
        let own = cache.changes.get(&integration).copied().unwrap_or(0);
        (self.generation.load(Ordering::Acquire), own)
    }

    /// Where `meeting_id` lives, if the balancer knows it.
    pub fn route(&self, meeting_id: &str) -> Option<Route> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(meeting_id)
            .copied()
    }

    /// Where `meeting_id` lives: from memory, or, when other balancers share the store and
    /// memory does not know it, from the store (a meeting another balancer created an instant
    /// ago, before its change notification arrived).
    pub async fn find_route(&self, meeting_id: &str) -> Option<Route> {
        if let Some(route) = self.route(meeting_id) {
            return Some(route);
        }
        if !self.store.is_shared() {
            return None;
        }
        let stored = match self.store.meeting(meeting_id).await {
            Ok(stored) => stored?,
            Err(e) => {
                tracing::warn!(error = %e, meeting_id, "Route read-through failed.");
                return None;
            }
        };
        let route = Route {
            integration: stored.integration_id,
            node: stored.node_id,
        };
        self.set_route(&stored.meeting_id, Some(route));
        Some(route)
    }

    /// How many meetings each integration has (one pass over the routes).
    pub fn meetings_per_integration(&self) -> HashMap<IntegrationId, usize> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut counts = HashMap::new();
        for route in routes.values() {
            *counts.entry(route.integration).or_default() += 1;
        }
        counts
    }

    /// How many meetings `integration` has.
    pub fn meetings_of(&self, integration: IntegrationId) -> usize {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes
            .values()
            .filter(|r| r.integration == integration)
            .count()
    }
}

#[cfg(test)]
mod tests;
