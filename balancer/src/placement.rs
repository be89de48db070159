//! Choosing the node for a new meeting. Pure: it takes a snapshot of candidates and returns a
//! decision with its reason; it does no I/O.
//!
//! Default policy (Scalelite's): the eligible node (enabled and online) with the least load,
//! where load = (users + meetings placed within the join buffer × the minimum user count) ×
//! the node's multiplier, so a burst of creates spreads instead of landing on one node.
//! Scalelite's server tags choose among nodes: `meta_server-tag=TAG` prefers nodes tagged TAG
//! (falling back to untagged nodes), `TAG!` requires them, no tag means untagged nodes only;
//! `;` separates alternatives and `none` means untagged. Mconf's `preferredServer` wins when
//! it names an eligible node.

use crate::store::NodeId;

/// One node as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: NodeId,
    pub name: String,
    /// Host of the node's URL, also accepted by `preferredServer`.
    pub host: String,
    pub eligible: bool,
    pub load: f64,
    pub tags: Vec<String>,
}

/// What the create asked for.
#[derive(Debug, Clone, Default)]
pub struct Wish<'a> {
    /// The raw `meta_server-tag` value.
    pub tag: Option<&'a str>,
    pub preferred: Option<&'a str>,
}

/// The chosen node and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub node: NodeId,
    pub reason: String,
}

/// Why no node was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPlacement {
    NoServer,
    /// A required tag (named without its `!`) matched no eligible node.
    TagUnavailable(String),
}

pub fn choose(candidates: &[Candidate], wish: &Wish<'_>) -> Result<Decision, NoPlacement> {
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
    let untagged = |c: &&&Candidate| c.tags.is_empty();
    if wanted.is_empty() {
        return least_loaded(
            eligible.iter().filter(untagged),
            "least load among untagged nodes",
        )
        .ok_or(NoPlacement::NoServer);
    }
    let matches = |c: &&&Candidate| {
        wanted
            .iter()
            .any(|t| (*t == "none" && c.tags.is_empty()) || c.tags.iter().any(|ct| ct == t))
    };
    let label = wanted.join(";");
    if let Some(d) = least_loaded(
        eligible.iter().filter(matches),
        &format!("least load among nodes tagged {label}"),
    ) {
        return Ok(d);
    }
    if required {
        return Err(NoPlacement::TagUnavailable(label));
    }
    least_loaded(
        eligible.iter().filter(untagged),
        &format!("no node tagged {label}; least load among untagged nodes"),
    )
    .ok_or(NoPlacement::NoServer)
}

fn least_loaded<'a>(nodes: impl Iterator<Item = &'a &'a Candidate>, why: &str) -> Option<Decision> {
    nodes
        .min_by(|a, b| a.load.total_cmp(&b.load).then(a.id.cmp(&b.id)))
        .map(|c| decision(c, format!("{why} (load {:.1})", c.load)))
}

fn decision(c: &Candidate, reason: String) -> Decision {
    Decision {
        node: c.id,
        reason: format!("{}: {reason}", c.name),
    }
}

/// Scalelite's load of a node.
pub fn load(users: u32, young_meetings: u32, min_user_count: u32, multiplier: f64) -> f64 {
    (f64::from(users) + f64::from(young_meetings) * f64::from(min_user_count)) * multiplier
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, load: f64, tags: &[&str], eligible: bool) -> Candidate {
        Candidate {
            id: NodeId(id),
            name: format!("bbb{id}"),
            host: format!("bbb{id}.example.org"),
            eligible,
            load,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn check(
        nodes: &[Candidate],
        tag: Option<&str>,
        preferred: Option<&str>,
        expected: Result<i64, NoPlacement>,
    ) {
        let got = choose(nodes, &Wish { tag, preferred }).map(|d| d.node.0);
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
            let d = choose(&nodes, &Wish::default()).unwrap();
            loads[d.node.0 as usize] += 15.0;
        }
        assert!(loads.iter().all(|l| *l == 375.0), "{loads:?}");
    }
}
