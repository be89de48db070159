//! Operations on nodes, for every door (the CLI, the admin pages and JSON API, the Scalelite
//! API, pool files, agent enrolment): each validates its input here, writes its change and
//! audit row in one store transaction, refreshes the snapshots, and ends on the node the
//! meetings it forgot.

use conflux_shared::signed_url::{api_base_of, host_of};
use conflux_shared::Secret;
use conflux_store::{
    Audit, Enrolment, Forced, NewNode, Node, NodeChange, NodeChanged, NodeState, NodeUpdate,
};

use super::{refresh, Invalid, OpError};
use crate::state::AppState;

/// A node as an operator describes it, before validation.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub url: String,
    pub secret: String,
    /// Defaults to the URL's host.
    pub name: Option<String>,
    pub load_multiplier: f64,
    pub tags: Vec<String>,
    pub enabled: bool,
}

/// What an operator may change on a node, before validation; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct NodeEdit {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub load_multiplier: Option<f64>,
    /// Comma-separated.
    pub tags: Option<String>,
    /// `LAT,LON` in degrees, or empty to clear.
    pub location: Option<String>,
    /// Comma-separated TCP ports, or empty for the configured default.
    pub ports: Option<String>,
}

impl NodeSpec {
    pub fn validate(self) -> Result<NewNode, Invalid> {
        let url = api_url(&self.url)?;
        let given_url = given(&self.url, &url);
        let secret = self.secret.trim();
        if secret.is_empty() {
            return Err(Invalid("the node's secret must not be empty".into()));
        }
        let name = self
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| host_of(&url));
        Ok(NewNode {
            name,
            url,
            given_url,
            secret: Secret(secret.to_owned()),
            load_multiplier: load_multiplier(self.load_multiplier)?,
            tags: self
                .tags
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            state: if self.enabled {
                NodeState::Enabled
            } else {
                NodeState::Disabled
            },
        })
    }
}

impl NodeEdit {
    pub fn validate(self) -> Result<NodeUpdate, Invalid> {
        let secret = match self.secret.as_deref().map(str::trim) {
            Some("") => return Err(Invalid("the node's secret must not be empty".into())),
            other => other.map(|s| Secret(s.to_owned())),
        };
        let url = self.url.as_deref().map(api_url).transpose()?;
        Ok(NodeUpdate {
            given_url: self
                .url
                .as_deref()
                .zip(url.as_deref())
                .map(|(raw, url)| given(raw, url)),
            url,
            secret,
            load_multiplier: self.load_multiplier.map(load_multiplier).transpose()?,
            tags: self.tags.as_deref().map(split_tags),
            location: self.location.as_deref().map(parse_location).transpose()?,
            ports: self.ports.as_deref().map(parse_ports).transpose()?,
        })
    }
}

/// The URL as given, kept for listings when it is not `url` (its API base) already.
fn given(raw: &str, url: &str) -> Option<String> {
    let raw = raw.trim();
    (raw != url).then(|| raw.to_owned())
}

/// Checks a node URL and returns its API base.
pub fn api_url(url: &str) -> Result<String, Invalid> {
    let trimmed = url.trim();
    if !conflux_shared::signed_url::is_web_url(trimmed) {
        return Err(Invalid(format!(
            "Server URL must start with http:// or https:// and name a host: {url:?}"
        )));
    }
    Ok(api_base_of(trimmed).into_owned())
}

fn load_multiplier(m: f64) -> Result<f64, Invalid> {
    if m.is_finite() && m > 0.0 {
        Ok(m)
    } else {
        Err(Invalid(
            "the load multiplier must be a positive number".into(),
        ))
    }
}

/// Tags from a comma-separated list, trimmed, empty ones dropped.
pub fn split_tags(tags: &str) -> Vec<String> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// `LAT,LON` in degrees, or empty for none.
pub fn parse_location(text: &str) -> Result<Option<(f64, f64)>, Invalid> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = || {
        Invalid(format!(
            "{text:?} is not LAT,LON in degrees (e.g. -30.03,-51.22)"
        ))
    };
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    let (lat, lon): (f64, f64) = (
        lat.trim().parse().map_err(|_| bad())?,
        lon.trim().parse().map_err(|_| bad())?,
    );
    conflux_geoip::Position::new(lat, lon).ok_or_else(bad)?;
    Ok(Some((lat, lon)))
}

fn parse_ports(text: &str) -> Result<Vec<u16>, Invalid> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(Invalid(format!("{p:?} is not a TCP port"))),
        })
        .collect()
}

/// Adds a node.
pub async fn add(state: &AppState, by: &str, spec: NodeSpec) -> Result<Node, OpError> {
    let new = spec.validate()?;
    let audit = Audit::new(by, "servers add", new.url.clone());
    let changed = state.store.change_node(NodeChange::Add(new), audit).await?;
    refresh(state).await;
    changed
        .node
        .ok_or_else(|| OpError::NotFound("server".into()))
}

/// Changes a node's settings.
pub async fn edit(
    state: &AppState,
    by: &str,
    node: &Node,
    edit: NodeEdit,
) -> Result<Node, OpError> {
    let change = edit.validate()?;
    let audit = Audit::new(by, "servers update", node.name.clone());
    let changed = state
        .store
        .change_node(NodeChange::Update(node.id, change), audit)
        .await?;
    refresh(state).await;
    changed
        .node
        .ok_or_else(|| OpError::NotFound("server".into()))
}

/// Enables, cordons or disables a node (its meetings stay; see [`disable`]).
pub async fn set_state(
    state: &AppState,
    by: &str,
    node: &Node,
    new: NodeState,
) -> Result<(), OpError> {
    let action = format!("servers {}", state_verb(new));
    state
        .store
        .change_node(
            NodeChange::SetState(node.id, new),
            Audit::new(by, &action, node.name.clone()),
        )
        .await?;
    refresh(state).await;
    Ok(())
}

/// Disables a node and ends its meetings there (forgetting them), as Scalelite's
/// `servers:disable` does once confirmed; returns how many were ended.
pub async fn disable(state: &AppState, by: &str, node: &Node) -> Result<usize, OpError> {
    let changed = state
        .store
        .change_node(
            NodeChange::Disable(node.id),
            Audit::new(by, "servers disable", node.name.clone()),
        )
        .await?;
    settle(state, node, changed).await
}

fn state_verb(state: NodeState) -> &'static str {
    match state {
        NodeState::Enabled => "enable",
        NodeState::Cordoned => "cordon",
        NodeState::Disabled => "disable",
    }
}

/// Sets or clears an admin's override of monitoring.
pub async fn force(
    state: &AppState,
    by: &str,
    node: &Node,
    forced: Option<Forced>,
) -> Result<(), OpError> {
    let detail = format!("{} {}", node.name, forced.map_or("auto", Forced::as_str));
    state
        .store
        .change_node(
            NodeChange::Force(node.id, forced),
            Audit::new(by, "servers force", detail),
        )
        .await?;
    refresh(state).await;
    Ok(())
}

/// Removes a node; its meetings are forgotten (not ended: the node may be gone).
pub async fn remove(state: &AppState, by: &str, node: &Node) -> Result<usize, OpError> {
    let changed = state
        .store
        .change_node(
            NodeChange::Remove(node.id),
            Audit::new(by, "servers remove", node.name.clone()),
        )
        .await?;
    let forgotten = changed.forgotten.len();
    forget_routes(state, &changed.forgotten);
    refresh(state).await;
    Ok(forgotten)
}

/// Forgets every meeting of `node`, ends them there and (unless `keep_state`) disables it;
/// returns how many meetings were forgotten.
pub async fn panic(
    state: &AppState,
    by: &str,
    node: &Node,
    keep_state: bool,
) -> Result<usize, OpError> {
    let changed = state
        .store
        .change_node(
            NodeChange::Panic {
                id: node.id,
                keep_state,
            },
            Audit::new(by, "servers panic", node.name.clone()),
        )
        .await?;
    settle(state, node, changed).await
}

/// Applies a pool file's changes (already validated against the pool) in one transaction; the
/// removed nodes' meetings are ended there (best effort, as Scalelite does).
pub async fn sync(
    state: &AppState,
    by: &str,
    changes: Vec<(Option<Node>, NodeChange)>,
    detail: String,
) -> Result<(), OpError> {
    let (nodes, changes): (Vec<_>, Vec<_>) = changes.into_iter().unzip();
    let changed = state
        .store
        .change_nodes(changes, Audit::new(by, "servers sync", detail))
        .await?;
    for (node, changed) in nodes.into_iter().zip(changed) {
        if let Some(node) = node {
            end_on_node(state, &node, &changed.forgotten).await;
            forget_routes(state, &changed.forgotten);
        }
    }
    refresh(state).await;
    Ok(())
}

/// An agent's enrolment request, before validation.
#[derive(Debug, Clone)]
pub struct EnrolSpec {
    pub url: String,
    pub name: String,
    pub secret: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Enrols an agent's node with a fresh `agent_key`: the node of its URL, created (enabled or
/// not, per `monitor.enrol_enabled`) if new.
pub async fn enrol(state: &AppState, spec: EnrolSpec, agent_key: Secret) -> Result<Node, OpError> {
    let url = api_url(&spec.url)?;
    let name = spec.name.trim().to_owned();
    let secret = spec.secret.trim().to_owned();
    if name.is_empty() || secret.is_empty() {
        return Err(Invalid("name and secret must not be empty".into()).into());
    }
    let location = match (spec.latitude, spec.longitude) {
        (Some(lat), Some(lon)) if conflux_geoip::Position::new(lat, lon).is_some() => {
            Some((lat, lon))
        }
        (None, None) => None,
        _ => {
            return Err(
                Invalid("latitude and longitude must both be given, in degrees".into()).into(),
            )
        }
    };
    let node = state
        .store
        .enrol_node(Enrolment {
            url,
            name,
            secret: Secret(secret),
            location,
            agent_key,
            state: if state.config.monitor.enrol_enabled {
                NodeState::Enabled
            } else {
                NodeState::Disabled
            },
        })
        .await?;
    refresh(state).await;
    Ok(node)
}

/// After a change that forgot meetings: routes dropped, meetings ended on the node, snapshots
/// refreshed.
async fn settle(state: &AppState, node: &Node, changed: NodeChanged) -> Result<usize, OpError> {
    forget_routes(state, &changed.forgotten);
    end_on_node(state, node, &changed.forgotten).await;
    refresh(state).await;
    Ok(changed.forgotten.len())
}

fn forget_routes(state: &AppState, meetings: &[String]) {
    for meeting in meetings {
        state.set_route(meeting, None);
    }
}

/// Asks `node` to end `meetings` (best effort: failures are warnings, as in Scalelite).
pub async fn end_on_node(state: &AppState, node: &Node, meetings: &[String]) {
    for meeting_id in meetings {
        if let Err(e) = state
            .node_client
            .meeting_call(node, "end", meeting_id)
            .await
        {
            tracing::warn!(meeting_id, node = %node.name, error = %e, "Could not end a meeting on its node.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSpec {
        NodeSpec {
            url: "https://bbb1.example.org/bigbluebutton/".into(),
            secret: " s3cret ".into(),
            name: None,
            load_multiplier: 1.0,
            tags: vec![" a ".into(), String::new()],
            enabled: true,
        }
    }

    #[test]
    fn a_spec_is_checked_and_normalised_once_for_every_door() {
        let new = spec().validate().unwrap();
        assert_eq!(new.url, "https://bbb1.example.org/bigbluebutton/api");
        assert_eq!(new.name, "bbb1.example.org");
        assert_eq!(new.secret.0, "s3cret");
        assert_eq!(new.tags, vec!["a".to_owned()]);
        for bad in [
            NodeSpec {
                url: "ftp://x".into(),
                ..spec()
            },
            NodeSpec {
                secret: "  ".into(),
                ..spec()
            },
            NodeSpec {
                load_multiplier: 0.0,
                ..spec()
            },
            NodeSpec {
                load_multiplier: f64::NAN,
                ..spec()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn an_edit_is_checked_field_by_field() {
        let edit = NodeEdit {
            location: Some("-30.03, -51.22".into()),
            ports: Some("443, 7443".into()),
            tags: Some("x,,y".into()),
            ..NodeEdit::default()
        }
        .validate()
        .unwrap();
        assert_eq!(edit.location, Some(Some((-30.03, -51.22))));
        assert_eq!(edit.ports, Some(vec![443, 7443]));
        assert_eq!(edit.tags, Some(vec!["x".to_owned(), "y".into()]));
        assert_eq!(
            NodeEdit {
                location: Some(String::new()),
                ..NodeEdit::default()
            }
            .validate()
            .unwrap()
            .location,
            Some(None)
        );
        for bad in [
            NodeEdit {
                location: Some("91,0".into()),
                ..NodeEdit::default()
            },
            NodeEdit {
                ports: Some("0".into()),
                ..NodeEdit::default()
            },
            NodeEdit {
                secret: Some(String::new()),
                ..NodeEdit::default()
            },
            NodeEdit {
                load_multiplier: Some(-1.0),
                ..NodeEdit::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
