//! Limits on failed checksums, so secrets (above all the 5-character mobile salt, 16^5 values)
//! cannot be guessed online: each client address (an IPv6 /64 counts as one) and each scope
//! (the integration a request names by its prefix, else all of them together) has a bucket of
//! failures that refills slowly.
//!
//! A client whose own bucket is empty is refused without its checksum being looked at, so
//! guessing runs at the refill rate. Once a scope's bucket is empty, clients with any recent
//! failure are refused for that scope too (a botnet spreading guesses over many addresses),
//! while clients that never failed, such as the users behind a campus NAT, go on untouched.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use conflux_store::{IntegrationId, Store};

/// Buckets tracked at most; beyond it new failing clients share one bucket.
const MAX_TRACKED: usize = 65_536;

/// How many failures a bucket holds and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub burst: f64,
    pub per_hour: f64,
}

/// The failure budgets for clients and for scopes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureLimits {
    pub client: Budget,
    pub scope: Budget,
}

/// Whose failures a bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    /// The /64 of an IPv6 address.
    V6(u64),
    /// Clients that arrived once the table was full.
    Overflow,
    Integration(IntegrationId),
    /// Requests naming no integration.
    Everyone,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed as of `at`.
    left: f64,
    at: Instant,
}

/// What a request may do before its checksum is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Check,
    /// Refused unchecked: too many failures.
    Refuse,
}

/// The failure buckets, shared by every server thread. Checking takes a read lock only.
#[derive(Debug)]
pub struct FailureLimiter {
    limits: FailureLimits,
    buckets: RwLock<HashMap<Key, Bucket, foldhash::fast::RandomState>>,
}

impl FailureLimiter {
    pub fn new(limits: FailureLimits) -> Self {
        FailureLimiter {
            limits,
            buckets: RwLock::new(HashMap::default()),
        }
    }

    /// Whether a request from `client` for `scope` (asked only when the client has failed
    /// lately) gets its checksum checked.
    pub fn verdict(
        &self,
        client: Option<IpAddr>,
        scope: impl FnOnce() -> Option<IntegrationId>,
    ) -> Verdict {
        let Ok(buckets) = self.buckets.read() else {
            return Verdict::Check;
        };
        if buckets.is_empty() {
            return Verdict::Check;
        }
        let client = self.client_key(&buckets, client);
        let now = Instant::now();
        let client_left = buckets.get(&client).map(|b| self.left(client, *b, now));
        match client_left {
            None => Verdict::Check,
            Some(left) if left < 1.0 => Verdict::Refuse,
            Some(_) => {
                let scope = scope_key(scope());
                match buckets.get(&scope) {
                    Some(b) if self.left(scope, *b, now) < 1.0 => Verdict::Refuse,
                    _ => Verdict::Check,
                }
            }
        }
    }

    /// Counts a failed checksum; true when it emptied the client's bucket (worth a log line).
    pub fn failed(&self, client: Option<IpAddr>, scope: Option<IntegrationId>) -> bool {
        self.failed_at(client, scope, Instant::now())
    }

    /// Counts a failure that happened at `now` (another balancer's, taken in late).
    fn failed_at(
        &self,
        client: Option<IpAddr>,
        scope: Option<IntegrationId>,
        now: Instant,
    ) -> bool {
        let Ok(mut buckets) = self.buckets.write() else {
            return false;
        };
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|key, bucket| self.left(*key, *bucket, now) < self.budget(*key).burst);
        }
        let client = self.client_key(&buckets, client);
        let mut emptied = false;
        for key in [client, scope_key(scope)] {
            let budget = self.budget(key);
            let bucket = buckets.entry(key).or_insert(Bucket {
                left: budget.burst,
                at: now,
            });
            let left = self.left(key, *bucket, now) - 1.0;
            *bucket = Bucket {
                left: left.max(0.0),
                at: now.max(bucket.at),
            };
            emptied |= key == client && (0.0..1.0).contains(&left);
        }
        emptied
    }

    fn client_key(
        &self,
        buckets: &HashMap<Key, Bucket, foldhash::fast::RandomState>,
        client: Option<IpAddr>,
    ) -> Key {
        let key = match client {
            Some(IpAddr::V4(v4)) => Key::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Key::V4(u32::from(v4)),
                None => Key::V6((u128::from(v6) >> 64) as u64),
            },
            None => Key::Overflow,
        };
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            return Key::Overflow;
        }
        key
    }

    fn budget(&self, key: Key) -> Budget {
        match key {
            Key::V4(_) | Key::V6(_) | Key::Overflow => self.limits.client,
            Key::Integration(_) | Key::Everyone => self.limits.scope,
        }
    }

    /// Failures left in `bucket` at `now`, refilled since it was written.
    fn left(&self, key: Key, bucket: Bucket, now: Instant) -> f64 {
        let budget = self.budget(key);
        let refilled =
            now.saturating_duration_since(bucket.at).as_secs_f64() * budget.per_hour / 3600.0;
        (bucket.left + refilled).min(budget.burst)
    }
}

fn scope_key(scope: Option<IntegrationId>) -> Key {
    scope.map_or(Key::Everyone, Key::Integration)
}

/// Which limits a failure counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// Web logins.
    Login,
    /// API checksums.
    Checksum,
}

impl Limits {
    fn as_str(self) -> &'static str {
        match self {
            Limits::Login => "login",
            Limits::Checksum => "checksum",
        }
    }

    /// The limits a stored failure names (one this version does not know: none).
    fn named(name: &str) -> Option<Limits> {
        [Limits::Login, Limits::Checksum]
            .into_iter()
            .find(|l| l.as_str() == name)
    }
}

/// The balancer's failure limits. On a shared store each failure is also stored, and the
/// failures the other balancers stored are taken in ([`Failures::sync`]), so the limits
/// count across balancers.
pub struct Failures {
    pub login: FailureLimiter,
    pub checksum: FailureLimiter,
    /// When the previous read began (ms), and the rows taken in since (seq → when).
    synced: tokio::sync::Mutex<(i64, HashMap<i64, i64>)>,
}

impl Failures {
    pub fn new(login: FailureLimits, checksum: FailureLimits) -> Failures {
        Failures {
            login: FailureLimiter::new(login),
            checksum: FailureLimiter::new(checksum),
            // At start, the last hour's failures elsewhere count too.
            synced: tokio::sync::Mutex::new((
                conflux_store::now_ms() - conflux_store::failures::KEPT_MS,
                HashMap::new(),
            )),
        }
    }

    fn limiter(&self, limits: Limits) -> &FailureLimiter {
        match limits {
            Limits::Login => &self.login,
            Limits::Checksum => &self.checksum,
        }
    }

    /// Counts a failure here and, on a shared store, stores it for the other balancers in
    /// the background (the task is returned, to wait for it). True when it emptied the
    /// client's bucket.
    pub fn failed(
        &self,
        store: &Store,
        limits: Limits,
        client: Option<IpAddr>,
        scope: Option<IntegrationId>,
    ) -> (bool, Option<tokio::task::JoinHandle<()>>) {
        let emptied = self.limiter(limits).failed(client, scope);
        let stored = store
            .is_shared()
            .then(|| tokio::spawn(share(store.clone(), limits, client, scope)));
        (emptied, stored)
    }

    /// Takes in the failures the other balancers stored since the previous call.
    pub async fn sync(&self, store: &Store) {
        if !store.is_shared() {
            return;
        }
        let mut synced = self.synced.lock().await;
        let began = conflux_store::now_ms();
        let since = synced.0 - conflux_store::SYNC_MARGIN_MS;
        let rows = match store.failures_since(since).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the other balancers' failures.");
                return;
            }
        };
        let now = Instant::now();
        for row in rows {
            if synced.1.insert(row.seq, row.at).is_some() {
                continue;
            }
            let Some(limits) = Limits::named(&row.limiter) else {
                continue;
            };
            let age = Duration::from_millis(u64::try_from(began - row.at).unwrap_or(0));
            let client = row.client.and_then(|c| c.parse().ok());
            self.limiter(limits)
                .failed_at(client, row.scope, now.checked_sub(age).unwrap_or(now));
        }
        synced.0 = began;
        synced
            .1
            .retain(|_, at| *at >= began - conflux_store::SYNC_MARGIN_MS);
    }
}

async fn share(store: Store, limits: Limits, client: Option<IpAddr>, scope: Option<IntegrationId>) {
    let client = client.map(|c| c.to_string());
    if let Err(e) = store.record_failure(limits.as_str(), client, scope).await {
        tracing::warn!(error = %e, "Could not store a failure for the other balancers.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FailureLimiter {
        FailureLimiter::new(FailureLimits {
            client: Budget {
                burst: 3.0,
                per_hour: 60.0,
            },
            scope: Budget {
                burst: 5.0,
                per_hour: 120.0,
            },
        })
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_client_is_refused_once_its_failures_are_spent() {
        let l = limiter();
        let uni = Some(IntegrationId(1));
        assert_eq!(l.verdict(ip("192.0.2.1"), || uni), Verdict::Check);
        assert!(!l.failed(ip("192.0.2.1"), uni));
        assert!(!l.failed(ip("192.0.2.1"), uni));
        assert!(
            l.failed(ip("192.0.2.1"), uni),
            "the third failure empties it"
        );
        assert_eq!(l.verdict(ip("192.0.2.1"), || uni), Verdict::Refuse);
        assert_eq!(l.verdict(ip("192.0.2.1"), || None), Verdict::Refuse);
        assert_eq!(l.verdict(ip("192.0.2.2"), || uni), Verdict::Check);
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let l = limiter();
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
            l.failed(ip(host), None);
        }
        assert_eq!(l.verdict(ip("2001:db8::ffff"), || None), Verdict::Refuse);
        assert_eq!(l.verdict(ip("2001:db8:0:1::1"), || None), Verdict::Check);
    }

    #[test]
    fn a_spent_scope_refuses_failing_clients_only() {
        let l = limiter();
        let uni = Some(IntegrationId(1));
        for i in 0..5 {
            l.failed(ip(&format!("198.51.100.{i}")), uni);
        }
        assert_eq!(l.verdict(ip("198.51.100.0"), || uni), Verdict::Refuse);
        assert_eq!(
            l.verdict(ip("198.51.100.0"), || Some(IntegrationId(2))),
            Verdict::Check
        );
        assert_eq!(
            l.verdict(ip("203.0.113.7"), || uni),
            Verdict::Check,
            "a client that never failed is untouched"
        );
    }

    #[test]
    fn buckets_refill() {
        let l = limiter();
        let long_ago = Instant::now() - std::time::Duration::from_secs(180);
        let key = Key::V4(1);
        let bucket = Bucket {
            left: 0.0,
            at: long_ago,
        };
        let left = l.left(key, bucket, Instant::now());
        assert!((2.9..=3.0).contains(&left), "{left}");
    }

    #[tokio::test]
    async fn failures_seen_by_one_balancer_count_once_on_the_others() {
        let Some(url) = conflux_store::testing::postgres_database() else {
            return;
        };
        let (store_a, store_b) = (
            Store::open_postgres(&url).unwrap(),
            Store::open_postgres(&url).unwrap(),
        );
        let limits = limiter().limits;
        let (a, b) = (Failures::new(limits, limits), Failures::new(limits, limits));
        let fail_on_a = |client| {
            let (_, stored) = a.failed(&store_a, Limits::Checksum, client, None);
            stored.expect("stored on a shared store")
        };
        // Two failures on A: under the budget of three everywhere, however often B reads.
        let (one, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..2 {
            fail_on_a(one).await.unwrap();
        }
        for _ in 0..2 {
            a.sync(&store_a).await;
            b.sync(&store_b).await;
        }
        assert_eq!(
            a.checksum.verdict(one, || None),
            Verdict::Check,
            "A's own, once"
        );
        assert_eq!(
            b.checksum.verdict(one, || None),
            Verdict::Check,
            "taken in once"
        );
        // The third, on A, refuses the client on B too, for checksums only.
        fail_on_a(one).await.unwrap();
        b.sync(&store_b).await;
        assert_eq!(b.checksum.verdict(one, || None), Verdict::Refuse);
        assert_eq!(b.login.verdict(one, || None), Verdict::Check);
        assert_eq!(b.checksum.verdict(other, || None), Verdict::Check);
    }
}

/// Which API a checksum was for (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Bbb,
    Mobile,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Bbb => "bbb",
            Api::Mobile => "mobile",
        }
    }
}
