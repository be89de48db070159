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
use crate::state::AppState;
use conflux_shared::Secret;
use conflux_store::users::{self, Role, Session};
use conflux_store::{
    self as store, Forced, IntegrationUpdate, NewIntegration, NewNode, NodeState, NodeUpdate,
};

/// The actions a node row offers.
const NODE_ACTIONS: [&str; 7] = [
    "enable",
    "cordon",
    "disable",
    "panic",
    "force-on",
    "force-off",
    "auto",
];

/// The admin page; `notice` and a one-time `secret` come from the action just done.
pub async fn admin_page(
    state: &Arc<AppState>,
    session: &Session,
    notice: Option<String>,
    secret: Option<(String, String)>,
) -> Response {
    let loaded = state
        .store
        .run(|c| {
            Ok((
                store::integrations::list(c)?,
                store::nodes::list(c)?,
                users::list(c)?,
                users::audit_log(c, 50)?,
                store::recordings::refused_archives(c)?,
            ))
        })
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
                "actions": NODE_ACTIONS,
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

fn utc(ms: i64) -> String {
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
        Err(Failure::Invalid(why)) => message(state, StatusCode::BAD_REQUEST, "Not changed", &why),
        Err(Failure::Store(e)) => match e {
            store::StoreError::Conflict(why) | store::StoreError::NotFound(why) => {
                message(state, StatusCode::BAD_REQUEST, "Not changed", &why)
            }
            e => {
                tracing::error!(error = %e, "An admin change failed.");
                message(
                    state,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "The change could not be stored.",
                )
            }
        },
    }
}

/// Does `action` on `entity` for `actor` (an admin, already checked): the one implementation
/// behind the admin pages and the JSON admin API. Audited and followed by a snapshot refresh.
pub async fn perform(
    state: &Arc<AppState>,
    actor: &str,
    entity: &str,
    action: &str,
    form: &Query,
) -> Result<Done, Failure> {
    let done = match entity {
        "integrations" => integration(state, action, form).await,
        "nodes" => node(state, action, form).await,
        "users" => account(state, action, form).await,
        _ => Err(Failure::NotFound),
    }?;
    let (actor, what, detail) = (
        actor.to_owned(),
        format!("{entity} {action}"),
        done.detail.clone(),
    );
    let _ = state
        .store
        .run(move |c| users::audit(c, &actor, &what, &detail))
        .await;
    if let Err(e) = state.refresh().await {
        tracing::error!(error = %e, "Could not refresh after an admin change.");
    }
    Ok(done)
}

/// What an action did: a notice, the audit detail, and a new secret to show once.
pub struct Done {
    pub notice: String,
    pub detail: String,
    pub secret: Option<(String, String)>,
}

pub enum Failure {
    NotFound,
    Invalid(String),
    Store(store::StoreError),
}

impl From<crate::ops::Invalid> for Failure {
    fn from(e: crate::ops::Invalid) -> Self {
        Failure::Invalid(e.0)
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Failure::Store(e)
    }
}

fn done(detail: String) -> Result<Done, Failure> {
    Ok(Done {
        notice: detail.clone(),
        detail,
        secret: None,
    })
}

fn id(form: &Query) -> Result<i64, Failure> {
    form.get("id")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Failure::Invalid("the form names no item".into()))
}

async fn integration(state: &Arc<AppState>, action: &str, form: &Query) -> Result<Done, Failure> {
    let name = form.get_trimmed("name").unwrap_or_default();
    match action {
        "add" => {
            if name.is_empty() {
                return Err(Failure::Invalid("the integration needs a name".into()));
            }
            let secret = crate::auth::random_secret();
            let new = NewIntegration {
                name: name.clone(),
                secret: Secret(secret.clone()),
            };
            let created = state
                .store
                .run(move |c| store::integrations::insert(c, &new))
                .await?;
            Ok(Done {
                notice: format!("Integration {name} created."),
                detail: format!("{name} (#{})", created.id.0),
                secret: Some((name, secret)),
            })
        }
        "rename" => {
            let id = store::IntegrationId(id(form)?);
            if name.is_empty() {
                return Err(Failure::Invalid("the integration needs a name".into()));
            }
            let change = IntegrationUpdate {
                name: Some(name.clone()),
                ..IntegrationUpdate::default()
            };
            state
                .store
                .run(move |c| store::integrations::update(c, id, &change))
                .await?;
            done(format!("#{} renamed {name}", id.0))
        }
        "rotate" => {
            let id = store::IntegrationId(id(form)?);
            let secret = crate::auth::random_secret();
            let new = Secret(secret.clone());
            let name = state
                .store
                .run(move |c| {
                    let i = store::integrations::find(c, &id.0.to_string())?;
                    store::integrations::rotate(c, id, &new)?;
                    Ok(i.name)
                })
                .await?;
            Ok(Done {
                notice: format!("New secret for {name}; the old one no longer works."),
                detail: format!("{name} (#{})", id.0),
                secret: Some((name, secret)),
            })
        }
        "remove" => {
            let id = store::IntegrationId(id(form)?);
            state
                .store
                .run(move |c| store::integrations::remove(c, id))
                .await?;
            done(format!("#{} removed", id.0))
        }
        "recorder" => {
            let id = store::IntegrationId(id(form)?);
            let url = form.get_trimmed("url").unwrap_or_default();
            let recorder = if url.is_empty() {
                None
            } else {
                let key = form.get("key").unwrap_or_default();
                Some(crate::ops::integrations::recorder(&url, key)?)
            };
            let detail = recorder.as_ref().map_or_else(
                || format!("#{} recording server removed", id.0),
                |r| {
                    format!(
                        "#{} recording server {} (key {})",
                        id.0, r.url, r.fingerprint
                    )
                },
            );
            let change = IntegrationUpdate {
                recorder: Some(recorder),
                ..IntegrationUpdate::default()
            };
            state
                .store
                .run(move |c| store::integrations::update(c, id, &change))
                .await?;
            done(detail)
        }
        _ => Err(Failure::NotFound),
    }
}

async fn node(state: &Arc<AppState>, action: &str, form: &Query) -> Result<Done, Failure> {
    if action == "add" {
        let url = crate::ops::nodes::api_url(form.get("url").unwrap_or_default())?;
        let secret = form.get_trimmed("secret").unwrap_or_default();
        if secret.is_empty() {
            return Err(Failure::Invalid("the node needs its BBB secret".into()));
        }
        let name = form
            .get_trimmed("name")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| conflux_shared::signed_url::host_of(&url));
        let new = NewNode {
            name: name.clone(),
            url,
            secret: Secret(secret),
            load_multiplier: 1.0,
            tags: Vec::new(),
            state: if form.get("enable").is_some() {
                NodeState::Enabled
            } else {
                NodeState::Disabled
            },
        };
        state
            .store
            .run(move |c| store::nodes::insert(c, &new))
            .await?;
        return done(format!("{name} added"));
    }
    let id = id(form)?;
    let node = state
        .store
        .run(move |c| store::nodes::find(c, &id.to_string()))
        .await?;
    let node_id = node.id;
    let name = node.name.clone();
    match action {
        "enable" | "cordon" | "disable" => {
            let new = match action {
                "enable" => NodeState::Enabled,
                "cordon" => NodeState::Cordoned,
                _ => NodeState::Disabled,
            };
            state
                .store
                .run(move |c| store::nodes::set_state(c, node_id, new))
                .await?;
            done(format!("{name} {}", new.as_str()))
        }
        "force-on" | "force-off" | "auto" => {
            let forced = match action {
                "force-on" => Some(Forced::Enabled),
                "force-off" => Some(Forced::Disabled),
                _ => None,
            };
            state
                .store
                .run(move |c| store::nodes::set_forced(c, node_id, forced))
                .await?;
            done(format!(
                "{name} {}",
                forced.map_or("follows its checks", Forced::as_str)
            ))
        }
        "panic" => {
            let n = crate::ops::nodes::panic(state, &node, false).await?;
            done(format!(
                "{name} panicked: {n} meetings ended and forgotten, node disabled"
            ))
        }
        "update" => {
            let location = crate::ops::nodes::parse_location(
                &form.get_trimmed("location").unwrap_or_default(),
            )?;
            let multiplier = match form.get_trimmed("multiplier").filter(|m| !m.is_empty()) {
                Some(m) => Some(
                    m.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .ok_or_else(|| {
                            Failure::Invalid(format!("{m:?} is not a positive multiplier"))
                        })?,
                ),
                None => None,
            };
            let change = NodeUpdate {
                location: Some(location),
                load_multiplier: multiplier,
                tags: form.get("tags").map(store::nodes::split_tags),
                ..NodeUpdate::default()
            };
            state
                .store
                .run(move |c| store::nodes::update(c, node_id, &change))
                .await?;
            done(format!("{name} updated"))
        }
        _ => Err(Failure::NotFound),
    }
}

async fn account(state: &Arc<AppState>, action: &str, form: &Query) -> Result<Done, Failure> {
    let username = form.get_trimmed("username").unwrap_or_default();
    if username.is_empty() || username.contains(char::is_whitespace) {
        return Err(Failure::Invalid("not a user name".into()));
    }
    match action {
        "add" => {
            let password = form.get("password").unwrap_or_default().to_owned();
            if password.chars().count() < 8 {
                return Err(Failure::Invalid(
                    "the password needs 8 characters or more".into(),
                ));
            }
            let role: Role = form
                .get("role")
                .unwrap_or("viewer")
                .parse()
                .map_err(Failure::Invalid)?;
            let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
                .await
                .map_err(|e| Failure::Invalid(e.to_string()))?
                .map_err(Failure::Invalid)?;
            let name = username.clone();
            state
                .store
                .run(move |c| users::add(c, &name, &hash, role).map(|_| ()))
                .await?;
            done(format!("{username} ({}) added", role.as_str()))
        }
        "remove" => {
            let name = username.clone();
            state.store.run(move |c| users::remove(c, &name)).await?;
            done(format!("{username} removed"))
        }
        _ => Err(Failure::NotFound),
    }
}
