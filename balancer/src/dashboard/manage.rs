//! The admin pages: integrations (create, rename, rotate the secret — shown once — remove),
//! nodes (add, enable, cordon, disable, panic, force, edit location, multiplier and tags) and
//! accounts, with the audit log. Admins only; every change is a POST with the session's CSRF
//! token and lands in the audit log with who and when.

use std::sync::Arc;

use conflux_shared::Query;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{message, page, redirect};
use crate::ops::integrations::IntegrationEdit;
use crate::ops::nodes::{NodeEdit, NodeSpec};
use crate::ops::{self, OpError};
use crate::state::AppState;
use conflux_store::users::{Role, Session};
use conflux_store::{Forced, NodeState};

/// The actions a node row offers, and what the page asks before those that end meetings or
/// stop the node taking any (`{}`: the node's name).
const NODE_ACTIONS: [(&str, Option<&str>); 7] = [
    ("enable", None),
    ("cordon", None),
    (
        "disable",
        Some("Disable {}? It takes no new meetings, and meetings still on it are ended."),
    ),
    (
        "panic",
        Some("Panic {}? Every meeting on it is ended and forgotten, and it is disabled."),
    ),
    ("force-on", None),
    (
        "force-off",
        Some("Force {} off? It takes no new meetings, whatever its checks say."),
    ),
    ("auto", None),
];

/// The admin page; `notice` and a one-time `secret` come from the action just done.
pub async fn admin_page(
    state: &Arc<AppState>,
    session: &Session,
    notice: Option<String>,
    secret: Option<(String, String)>,
) -> Response {
    let store = &state.store;
    let loaded = async {
        Ok::<_, conflux_store::StoreError>((
            store.integrations().await?,
            store.nodes().await?,
            store.users().await?,
            store.audit_log(50).await?,
            store.refused_archives().await?,
        ))
    }
    .await;
    let Ok((integrations, nodes, accounts, audit, refused)) = loaded else {
        return message(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The store could not be read.",
        );
    };
    let integrations: Vec<_> = integrations
        .iter()
        .map(|i| {
            let limit = |v: Option<u32>| v.map_or("unlimited".to_string(), |n| n.to_string());
            json!({
                "id": i.id.0,
                "name": i.name,
                "plan": format!(
                    "API {}, recording {}, meetings {}, users {}",
                    if i.api_enabled { "on" } else { "off" },
                    if i.recording_allowed { "allowed" } else { "off" },
                    limit(i.max_meetings),
                    limit(i.max_users),
                ),
                "prefix": i.prefix.clone().unwrap_or_default(),
                "meetings": state.meetings_of(i.id),
                "recorder_url": i.recorder.as_ref().map(|r| r.url.clone()).unwrap_or_default(),
                "recorder_fingerprint": i.recorder.as_ref().map(|r| r.fingerprint.clone()),
                "refused_archives": refused.get(&i.id).map(|(n, _)| *n),
                "refused_reason": refused.get(&i.id).map(|(_, why)| why.clone()),
            })
        })
        .collect();
    let nodes: Vec<_> = nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id.0,
                "name": n.name,
                "url": n.url,
                "state": n.state.as_str(),
                "forced": n.forced.map(Forced::as_str),
                "location": n.latitude.zip(n.longitude).map(|(a, b)| format!("{a},{b}")).unwrap_or_default(),
                "multiplier": n.load_multiplier,
                "tags": n.tags.join(","),
                "actions": NODE_ACTIONS
                    .iter()
                    .map(|(name, ask)| json!({"name": name, "confirm": ask.map(|a| a.replace("{}", &n.name))}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let accounts: Vec<_> = accounts
        .iter()
        .map(|u| json!({"username": u.username, "role": u.role.as_str()}))
        .collect();
    let audit: Vec<_> = audit
        .iter()
        .map(|(at, actor, action, detail)| {
            json!({"at": utc(*at), "actor": actor, "action": action, "detail": detail})
        })
        .collect();
    page(
        state,
        "admin",
        Some(session),
        json!({
            "title": "Administration",
            "notice": notice,
            "secret": secret.map(|(integration, value)| json!({"integration": integration, "value": value})),
            "api_url": "/bigbluebutton/api/",
            "integrations": integrations,
            "nodes": nodes,
            "users": accounts,
            "audit": audit,
        }),
    )
}

pub(super) fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A POST to `/admin/{entity}/{action}`.
pub async fn act(
    state: &Arc<AppState>,
    session: &Session,
    entity: &str,
    action: &str,
    form: &Query,
) -> Response {
    if session.user.role != Role::Admin {
        return message(
            state,
            StatusCode::FORBIDDEN,
            "Refused",
            "Only administrators can change anything.",
        );
    }
    if !crate::auth::same(&session.csrf, form.get("csrf").unwrap_or_default()) {
        return message(
            state,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's CSRF token is missing or wrong.",
        );
    }
    match perform(state, &session.user.username, entity, action, form).await {
        Ok(done) => match done.secret {
            // A secret is shown once, on the answer itself (never in a URL or a log).
            Some(secret) => admin_page(state, session, Some(done.notice), Some(secret)).await,
            None => redirect("/admin"),
        },
        Err(Failure::NotFound) => message(
            state,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such item or action.",
        ),
        Err(Failure::Op(e)) if e.is_usage() => message(
            state,
            StatusCode::BAD_REQUEST,
            "Not changed",
            &e.to_string(),
        ),
        Err(Failure::Op(e)) => {
            tracing::error!(error = %e, "An admin change failed.");
            message(
                state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The change could not be stored.",
            )
        }
    }
}

/// Does `action` on `entity` for `actor` (an admin, already checked): the one implementation
/// behind the admin pages and the JSON admin API, through `ops` (audited as `actor`).
pub async fn perform(
    state: &Arc<AppState>,
    actor: &str,
    entity: &str,
    action: &str,
    form: &Query,
) -> Result<Done, Failure> {
    match entity {
        "integrations" => integration(state, actor, action, form).await,
        "nodes" => node(state, actor, action, form).await,
        "users" => account(state, actor, action, form).await,
        _ => Err(Failure::NotFound),
    }
}

/// What an action did: a notice, and a new secret to show once.
pub struct Done {
    pub notice: String,
    pub secret: Option<(String, String)>,
}

pub enum Failure {
    /// No such entity or action.
    NotFound,
    Op(OpError),
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        Failure::Op(e)
    }
}

impl From<conflux_store::StoreError> for Failure {
    fn from(e: conflux_store::StoreError) -> Self {
        Failure::Op(e.into())
    }
}

fn done(notice: String) -> Result<Done, Failure> {
    Ok(Done {
        notice,
        secret: None,
    })
}

fn id(form: &Query) -> Result<i64, Failure> {
    form.get("id")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| OpError::Invalid("the form names no item".into()).into())
}

async fn integration(
    state: &Arc<AppState>,
    by: &str,
    action: &str,
    form: &Query,
) -> Result<Done, Failure> {
    let name = form.get_trimmed("name").unwrap_or_default();
    if action == "add" {
        let (_, secret) = ops::integrations::add(state, by, &name, None).await?;
        return Ok(Done {
            notice: format!("Integration {name} created."),
            secret: Some((name, secret)),
        });
    }
    let i = state.store.integration(&id(form)?.to_string()).await?;
    match action {
        "rename" => {
            let edit = IntegrationEdit {
                name: Some(name.clone()),
                ..IntegrationEdit::default()
            };
            ops::integrations::edit(state, by, &i, edit, None).await?;
            done(format!("#{} renamed {name}", i.id.0))
        }
        "rotate" => {
            let secret = ops::integrations::rotate(state, by, &i, None).await?;
            Ok(Done {
                notice: format!("New secret for {}; the old one no longer works.", i.name),
                secret: Some((i.name.clone(), secret)),
            })
        }
        "remove" => {
            ops::integrations::remove(state, by, &i).await?;
            done(format!("#{} removed", i.id.0))
        }
        "recorder" => {
            let url = form.get_trimmed("url").unwrap_or_default();
            let recorder = if url.is_empty() {
                None
            } else {
                Some((url, form.get("key").unwrap_or_default().to_owned()))
            };
            let edit = IntegrationEdit {
                recorder: Some(recorder),
                ..IntegrationEdit::default()
            };
            let changed = ops::integrations::edit(state, by, &i, edit, None).await?;
            done(match &changed.recorder {
                Some(r) => format!(
                    "#{} recording server {} (key {})",
                    i.id.0, r.url, r.fingerprint
                ),
                None => format!("#{} recording server removed", i.id.0),
            })
        }
        _ => Err(Failure::NotFound),
    }
}

async fn node(
    state: &Arc<AppState>,
    by: &str,
    action: &str,
    form: &Query,
) -> Result<Done, Failure> {
    if action == "add" {
        let spec = NodeSpec {
            url: form.get("url").unwrap_or_default().to_owned(),
            secret: form.get("secret").unwrap_or_default().to_owned(),
            name: form.get_trimmed("name"),
            load_multiplier: 1.0,
            tags: Vec::new(),
            enabled: form.get("enable").is_some(),
        };
        let node = ops::nodes::add(state, by, spec).await?;
        return done(format!("{} added", node.name));
    }
    let node = state.store.node(&id(form)?.to_string()).await?;
    let name = node.name.clone();
    match action {
        "enable" | "cordon" | "disable" => {
            let new = match action {
                "enable" => NodeState::Enabled,
                "cordon" => NodeState::Cordoned,
                _ => NodeState::Disabled,
            };
            ops::nodes::set_state(state, by, &node, new).await?;
            done(format!("{name} {}", new.as_str()))
        }
        "force-on" | "force-off" | "auto" => {
            let forced = match action {
                "force-on" => Some(Forced::Enabled),
                "force-off" => Some(Forced::Disabled),
                _ => None,
            };
            ops::nodes::force(state, by, &node, forced).await?;
            done(format!(
                "{name} {}",
                forced.map_or("follows its checks", Forced::as_str)
            ))
        }
        "panic" => {
            let n = ops::nodes::panic(state, by, &node, false).await?;
            done(format!(
                "{name} panicked: {n} meetings ended and forgotten, node disabled"
            ))
        }
        "update" => {
            let multiplier = match form.get_trimmed("multiplier").filter(|m| !m.is_empty()) {
                Some(m) => Some(m.parse::<f64>().map_err(|_| {
                    OpError::Invalid(format!("{m:?} is not a positive multiplier"))
                })?),
                None => None,
            };
            let edit = NodeEdit {
                location: Some(form.get_trimmed("location").unwrap_or_default()),
                load_multiplier: multiplier,
                tags: form.get("tags").map(str::to_owned),
                ..NodeEdit::default()
            };
            ops::nodes::edit(state, by, &node, edit).await?;
            done(format!("{name} updated"))
        }
        _ => Err(Failure::NotFound),
    }
}

async fn account(
    state: &Arc<AppState>,
    by: &str,
    action: &str,
    form: &Query,
) -> Result<Done, Failure> {
    let username = form.get_trimmed("username").unwrap_or_default();
    match action {
        "add" => {
            let password = form.get("password").unwrap_or_default().to_owned();
            let role: Role = form
                .get("role")
                .unwrap_or("viewer")
                .parse()
                .map_err(OpError::Invalid)?;
            ops::users::add(state, by, &username, password, role).await?;
            done(format!("{username} ({}) added", role.as_str()))
        }
        "remove" => {
            ops::users::remove(state, by, &username).await?;
            done(format!("{username} removed"))
        }
        _ => Err(Failure::NotFound),
    }
}
