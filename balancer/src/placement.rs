//! Choosing the node for a new meeting. Pure: it takes a snapshot of candidates and returns a
//! decision with its reason; it does no I/O.
//!
//! First the pool: eligible nodes (enabled, online, no WARNING or CRITICAL check unless an
//! admin forced them on). Mconf's `preferredServer` wins when it names an eligible node.
//! Scalelite's server tags narrow the pool: `meta_server-tag=TAG` prefers nodes tagged TAG
//! (falling back to untagged nodes), `TAG!` requires them, no tag means untagged nodes only;
//! `;` separates alternatives and `none` means untagged.
//!
//! Then the policy picks within the pool:
//! - `geo` (Mconf's, the default): the node nearest the client; the candidates are the nodes
//!   within `radius_km` of that node whose CPU is under `cpu_limit`; the least CPU-loaded wins.
//!   When the client or the nodes have no known location, or no candidate qualifies, the
//!   fallback policy picks among the whole pool.
//! - `scalelite`: least load = (users + meetings placed within the join buffer × the minimum
//!   user count) × the node's multiplier, so a burst of creates spreads.
//! - `least_cpu`, `least_users`, `least_meetings`: as named; ties go to the least load.
//!
//! A node without an agent has no CPU figure: it counts as at the CPU limit (still a
//! candidate, after every node known to be below it).

use std::fmt;
use std::str::FromStr;

use conflux_geoip::Position;

use conflux_store::NodeId;

/// One node as placement sees it, borrowing its names and tags from the node table (a create
/// among 10,000 nodes builds 10,000 of these).
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: NodeId,
    pub name: &'a str,
    /// Host of the node's URL, also accepted by `preferredServer`.
    pub host: &'a str,
    pub eligible: bool,
    /// Scalelite's load, young meetings included.
    pub load: f64,
    pub tags: &'a [String],
    pub position: Option<Position>,
    /// CPU use from the node's agent, %.
    pub cpu: Option<f64>,
    pub users: u32,
    /// Meetings, young ones included.
    pub meetings: u32,
}

/// What the create asked for.
#[derive(Debug, Clone, Default)]
pub struct Wish<'a> {
    /// The raw `meta_server-tag` value.
    pub tag: Option<&'a str>,
    pub preferred: Option<&'a str>,
    /// Where the client is, from GeoIP.
    pub client: Option<Position>,
}

/// How to pick among the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Geo,
    Scalelite,
    LeastCpu,
    LeastUsers,
    LeastMeetings,
}

impl Policy {
    pub const NAMES: &str = "geo, scalelite, least_cpu, least_users, least_meetings";
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "geo" => Policy::Geo,
            "scalelite" => Policy::Scalelite,
            "least_cpu" => Policy::LeastCpu,
            "least_users" => Policy::LeastUsers,
            "least_meetings" => Policy::LeastMeetings,
            other => return Err(format!("unknown policy {other:?} ({})", Policy::NAMES)),
        })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Geo => "geo",
            Policy::Scalelite => "scalelite",
            Policy::LeastCpu => "least_cpu",
            Policy::LeastUsers => "least_users",
            Policy::LeastMeetings => "least_meetings",
        })
    }
}

/// The configured policy and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub policy: Policy,
    /// Used by `geo` when it cannot decide; never `geo` itself.
    pub fallback: Policy,
    pub radius_km: f64,
    pub cpu_limit: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            policy: Policy::Geo,
            fallback: Policy::Scalelite,
            radius_km: 300.0,
            cpu_limit: 70.0,
        }
    }
}

/// The chosen node and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub node: NodeId,
    pub reason: String,
    /// The requested tag the node was chosen for: what the node gets as `meta_server-tag`
    /// (none for an untagged choice).
    pub tag: Option<String>,
}

/// Why no node was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPlacement {
    NoServer,
    /// A required tag (named without its `!`) matched no eligible node.
    TagUnavailable(String),
}

pub fn choose(
    candidates: &[Candidate<'_>],
    wish: &Wish<'_>,
    rules: &Rules,
) -> Result<Decision, NoPlacement> {
    let eligible: Vec<&Candidate> = candidates.iter().filter(|c| c.eligible).collect();
    if let Some(preferred) = wish.preferred.map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(c) = eligible
            .iter()
            .find(|c| c.name == preferred || c.host == preferred)
        {
            return Ok(decision(c, format!("preferredServer {preferred}")));
        }
    }
    let raw = wish.tag.map(str::trim).unwrap_or("");
    let required = raw.ends_with('!');
    let wanted: Vec<&str> = raw
        .trim_end_matches('!')
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let untagged: Vec<&Candidate> = eligible
        .iter()
        .copied()
        .filter(|c| c.tags.is_empty())
        .collect();
    if wanted.is_empty() {
        return pick(&untagged, "untagged nodes", wish, rules).ok_or(NoPlacement::NoServer);
    }
    let tagged: Vec<&Candidate> = eligible
        .iter()
        .copied()
        .filter(|c| {
            wanted
                .iter()
                .any(|t| (*t == "none" && c.tags.is_empty()) || c.tags.iter().any(|ct| ct == t))
        })
        .collect();
    let label = wanted.join(";");
    if let Some(mut d) = pick(&tagged, &format!("nodes tagged {label}"), wish, rules) {
        let chosen = tagged.iter().find(|c| c.id == d.node);
        d.tag = chosen
            .and_then(|c| wanted.iter().find(|t| c.tags.iter().any(|ct| ct == *t)))
            .map(|t| (*t).to_owned());
        return Ok(d);
    }
    if required {
        return Err(NoPlacement::TagUnavailable(label));
    }
    pick(
        &untagged,
        &format!("untagged nodes (none tagged {label})"),
        wish,
        rules,
    )
    .ok_or(NoPlacement::NoServer)
}

/// Applies the policy to a non-empty pool.
fn pick(pool: &[&Candidate<'_>], among: &str, wish: &Wish<'_>, rules: &Rules) -> Option<Decision> {
    if pool.is_empty() {
        return None;
    }
    if rules.policy != Policy::Geo {
        return by_policy(pool, rules.policy, among, rules);
    }
    let fallback = |why: String| {
        let policy = if rules.fallback == Policy::Geo {
            Policy::Scalelite
        } else {
            rules.fallback
        };
        by_policy(pool, policy, &format!("{among}; {why}"), rules)
    };
    let Some(client) = wish.client else {
        return fallback("client location unknown".into());
    };
    let located = pool
        .iter()
        .filter_map(|c| c.position.map(|p| (*c, p)))
        .map(|(c, p)| (c, p, client.distance_km(p)));
    let Some((nearest, here, km)) = located.min_by(|a, b| a.2.total_cmp(&b.2)) else {
        return fallback("no node location known".into());
    };
    let near = pool
        .iter()
        .filter(|c| {
            c.position
                .is_some_and(|p| p.distance_km(here) <= rules.radius_km)
        })
        .filter(|c| c.cpu.is_none_or(|cpu| cpu < rules.cpu_limit));
    match near.min_by(|a, b| cpu_order(a, rules).total_cmp(&cpu_order(b, rules)).then(by_load(a, b))) {
        Some(c) => Some(decision(
            c,
            format!(
                "geo: nearest node {} is {km:.0} km from the client; least CPU within {:.0} km and under {:.0}% ({}) among {among}",
                nearest.name,
                rules.radius_km,
                rules.cpu_limit,
                cpu_text(c.cpu),
            ),
        )),
        None => fallback(format!(
            "no node within {:.0} km of {} under {:.0}% CPU",
            rules.radius_km, nearest.name, rules.cpu_limit
        )),
    }
}

fn by_policy(
    pool: &[&Candidate<'_>],
    policy: Policy,
    among: &str,
    rules: &Rules,
) -> Option<Decision> {
    let chosen = match policy {
        Policy::LeastCpu => pool.iter().min_by(|a, b| {
            cpu_order(a, rules)
                .total_cmp(&cpu_order(b, rules))
                .then(by_load(a, b))
        }),
        Policy::LeastUsers => pool
            .iter()
            .min_by(|a, b| a.users.cmp(&b.users).then(by_load(a, b))),
        Policy::LeastMeetings => pool
            .iter()
            .min_by(|a, b| a.meetings.cmp(&b.meetings).then(by_load(a, b))),
        // Scalelite breaks ties by server id, its sorted set's order: here the node's name.
        Policy::Scalelite => pool
            .iter()
            .min_by(|a, b| a.load.total_cmp(&b.load).then(a.name.cmp(b.name))),
        Policy::Geo => pool.iter().min_by(|a, b| by_load(a, b)),
    }?;
    let figure = match policy {
        Policy::LeastCpu => cpu_text(chosen.cpu),
        Policy::LeastUsers => format!("{} users", chosen.users),
        Policy::LeastMeetings => format!("{} meetings", chosen.meetings),
        Policy::Scalelite | Policy::Geo => format!("load {:.1}", chosen.load),
    };
    let name = match policy {
        Policy::Scalelite | Policy::Geo => "least load".to_string(),
        other => other.to_string().replace('_', " "),
    };
    Some(decision(chosen, format!("{name} ({figure}) among {among}")))
}

fn by_load(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.load.total_cmp(&b.load).then(a.id.cmp(&b.id))
}

/// CPU for ordering: unknown counts as at the limit.
fn cpu_order(c: &Candidate, rules: &Rules) -> f64 {
    c.cpu.unwrap_or(rules.cpu_limit)
}

fn cpu_text(cpu: Option<f64>) -> String {
    cpu.map_or_else(|| "CPU unknown".into(), |c| format!("CPU {c:.0}%"))
}

fn decision(c: &Candidate<'_>, reason: String) -> Decision {
    Decision {
        node: c.id,
        reason: format!("{}: {reason}", c.name),
        tag: None,
    }
}

/// Scalelite's load of a node.
pub fn load(users: u32, young_meetings: u32, min_user_count: u32, multiplier: f64) -> f64 {
    (f64::from(users) + f64::from(young_meetings) * f64::from(min_user_count)) * multiplier
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaked, so that the candidate may borrow it for the test's life.
    fn leak(text: String) -> &'static str {
        Box::leak(text.into_boxed_str())
    }

    fn node(id: i64, load: f64, tags: &[&str], eligible: bool) -> Candidate<'static> {
        Candidate {
            id: NodeId(id),
            name: leak(format!("bbb{id}")),
            host: leak(format!("bbb{id}.example.org")),
            eligible,
            load,
            tags: Box::leak(
                tags.iter()
                    .map(|t| t.to_string())
                    .collect::<Box<[String]>>(),
            ),
            position: None,
            cpu: None,
            users: 0,
            meetings: 0,
        }
    }

    fn check(
        nodes: &[Candidate],
        tag: Option<&str>,
        preferred: Option<&str>,
        expected: Result<i64, NoPlacement>,
    ) {
        let wish = Wish {
            tag,
            preferred,
            client: None,
        };
        let got = choose(nodes, &wish, &Rules::default()).map(|d| d.node.0);
        assert_eq!(got, expected, "tag {tag:?} preferred {preferred:?}");
    }

    #[test]
    fn least_load_among_eligible_untagged_nodes() {
        let nodes = [
            node(1, 30.0, &[], true),
            node(2, 10.0, &[], true),
            node(3, 0.0, &[], false),
            node(4, 0.0, &["gpu"], true),
        ];
        check(&nodes, None, None, Ok(2));
        check(&nodes, Some(""), None, Ok(2));
        check(
            &[node(3, 0.0, &[], false)],
            None,
            None,
            Err(NoPlacement::NoServer),
        );
        check(&[], None, None, Err(NoPlacement::NoServer));
    }

    #[test]
    fn scalelite_tags() {
        let nodes = [
            node(1, 5.0, &[], true),
            node(2, 50.0, &["gpu"], true),
            node(3, 40.0, &["gpu", "eu"], true),
        ];
        check(&nodes, Some("gpu"), None, Ok(3));
        check(&nodes, Some("gpu!"), None, Ok(3));
        check(&nodes, Some("eu;asia"), None, Ok(3));
        check(&nodes, Some("asia"), None, Ok(1));
        check(
            &nodes,
            Some("asia!"),
            None,
            Err(NoPlacement::TagUnavailable("asia".into())),
        );
        check(&nodes, Some("none"), None, Ok(1));
        check(&nodes, Some("!"), None, Ok(1));
        // The node gets only the tag it was chosen for.
        let tag = |raw| {
            choose(
                &nodes,
                &Wish {
                    tag: Some(raw),
                    ..Wish::default()
                },
                &Rules::default(),
            )
            .unwrap()
            .tag
        };
        assert_eq!(tag("big;eu!").as_deref(), Some("eu"));
        assert_eq!(tag("gpu").as_deref(), Some("gpu"));
        assert_eq!(
            tag("asia"),
            None,
            "an unknown optional tag: untagged, none sent"
        );
        assert_eq!(tag("none;gpu"), None, "untagged wins on load");
    }

    #[test]
    fn preferred_server_when_eligible() {
        let nodes = [
            node(1, 5.0, &[], true),
            node(2, 50.0, &[], true),
            node(3, 0.0, &[], false),
        ];
        check(&nodes, None, Some("bbb2"), Ok(2));
        check(&nodes, None, Some("bbb2.example.org"), Ok(2));
        check(&nodes, None, Some("bbb3"), Ok(1));
        check(&nodes, None, Some("nope"), Ok(1));
    }

    #[test]
    fn young_meetings_count_at_once() {
        assert_eq!(load(10, 0, 15, 1.0), 10.0);
        assert_eq!(load(10, 2, 15, 2.0), 80.0);
        // A burst: placing one meeting at a time with its weight spreads over equal nodes.
        let mut loads = [0.0f64; 4];
        for _ in 0..100 {
            let nodes: Vec<Candidate> = loads
                .iter()
                .enumerate()
                .map(|(i, l)| node(i as i64, *l, &[], true))
                .collect();
            let d = choose(&nodes, &Wish::default(), &Rules::default()).unwrap();
            loads[d.node.0 as usize] += 15.0;
        }
        assert!(loads.iter().all(|l| *l == 375.0), "{loads:?}");
    }

    /// Three cities: Porto Alegre and Canoas (15 km apart), São Paulo (850 km away).
    fn cities() -> Vec<Candidate<'static>> {
        let at = |id: i64, lat: f64, lon: f64, cpu: Option<f64>| Candidate {
            position: Position::new(lat, lon),
            cpu,
            ..node(id, id as f64, &[], true)
        };
        vec![
            at(1, -30.03, -51.22, Some(40.0)),
            at(2, -29.92, -51.18, Some(20.0)),
            at(3, -23.55, -46.63, Some(10.0)),
        ]
    }

    fn geo(nodes: &[Candidate], client: Option<(f64, f64)>) -> Decision {
        let wish = Wish {
            client: client.and_then(|(lat, lon)| Position::new(lat, lon)),
            ..Wish::default()
        };
        choose(nodes, &wish, &Rules::default()).unwrap()
    }

    #[test]
    fn geo_takes_the_least_cpu_near_the_nearest_node() {
        let nodes = cities();
        // A client in Porto Alegre: node 1 is nearest, node 2 is within 300 km with less CPU.
        let d = geo(&nodes, Some((-30.05, -51.23)));
        assert_eq!(d.node.0, 2, "{}", d.reason);
        assert!(d.reason.contains("nearest node bbb1"), "{}", d.reason);
        // A client in São Paulo gets São Paulo.
        assert_eq!(geo(&nodes, Some((-23.5, -46.6))).node.0, 3);
    }

    #[test]
    fn geo_skips_busy_nodes_and_falls_back() {
        let mut nodes = cities();
        nodes[1].cpu = Some(90.0);
        assert_eq!(geo(&nodes, Some((-30.05, -51.23))).node.0, 1);
        nodes[0].cpu = Some(75.0);
        // Both southern nodes are over 70%: the fallback (least load) takes the whole pool.
        let d = geo(&nodes, Some((-30.05, -51.23)));
        assert_eq!(d.node.0, 1, "node 1 has the least load: {}", d.reason);
        assert!(d.reason.contains("no node within 300 km"), "{}", d.reason);
        // No client location: the fallback.
        let d = geo(&nodes, None);
        assert!(d.reason.contains("client location unknown"), "{}", d.reason);
    }

    #[test]
    fn geo_treats_unknown_cpu_as_at_the_limit() {
        let mut nodes = cities();
        nodes[0].cpu = None;
        nodes[1].cpu = Some(65.0);
        assert_eq!(geo(&nodes, Some((-30.05, -51.23))).node.0, 2);
        nodes[1].cpu = None;
        assert_eq!(
            geo(&nodes, Some((-30.05, -51.23))).node.0,
            1,
            "then least load"
        );
    }

    #[test]
    fn other_policies() {
        let mut nodes = cities();
        nodes[0].users = 5;
        nodes[1].users = 9;
        nodes[2].users = 7;
        nodes[0].meetings = 3;
        nodes[1].meetings = 1;
        nodes[2].meetings = 2;
        let with = |policy: Policy| {
            let rules = Rules {
                policy,
                ..Rules::default()
            };
            choose(&nodes, &Wish::default(), &rules).unwrap().node.0
        };
        assert_eq!(with(Policy::LeastCpu), 3);
        assert_eq!(with(Policy::LeastUsers), 1);
        assert_eq!(with(Policy::LeastMeetings), 2);
        assert_eq!(with(Policy::Scalelite), 1);
        assert_eq!("least_cpu".parse::<Policy>(), Ok(Policy::LeastCpu));
        assert!("nearest".parse::<Policy>().is_err());
    }

    #[test]
    fn ineligible_nodes_never_win_even_when_near() {
        let mut nodes = cities();
        nodes[0].eligible = false;
        nodes[1].eligible = false;
        assert_eq!(geo(&nodes, Some((-30.05, -51.23))).node.0, 3);
    }
}
