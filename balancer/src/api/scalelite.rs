//! Scalelite's management API (`/scalelite/api/CALL`), answered as Scalelite answers it so that
//! operators' automation keeps working: servers (getServers, getServerInfo, addServer,
//! updateServer, deleteServer, panicServer) and tenants, which are Conflux's integrations
//! (getTenants, getTenantInfo, addTenant, updateTenant, deleteTenant).
//!
//! Authentication is Scalelite's: a checksum of the call name and the URL query (never the
//! body) with the load balancer's secrets, which in Conflux are the default integration's
//! (`LOADBALANCER_SECRET[S]`); without them every call is refused. A failed checksum is BBB's
//! XML error with HTTP 200; everything else is JSON. Every change is in the audit log as
//! `scalelite-api`.

use std::sync::Arc;

use conflux_shared::response::messages;
use conflux_shared::{checksum, Query, Response as BbbResponse};
use serde_json::{json, Value};
use warp::http::{Method, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::Reply;

use crate::ops;
use crate::ops::integrations::IntegrationEdit;
use crate::ops::nodes::{split_tags, NodeEdit, NodeSpec};
use crate::state::AppState;
use conflux_shared::status::CheckName;
use conflux_shared::Secret;
use conflux_store::{Integration, IntegrationId, Node, NodeState};

const ACTOR: &str = "scalelite-api";

/// One call of the management API.
pub async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    call: &str,
    raw_query: &str,
    content_type: Option<&str>,
    body: &Bytes,
) -> Response {
    let secrets: &[Secret] = state
        .config
        .default_integration
        .as_ref()
        .map_or(&[], |d| d.secrets.as_slice());
    let authentic = secrets
        .iter()
        .any(|s| checksum::verify(call, raw_query, &s.0, state.config.api.algorithms).is_ok());
    if !authentic {
        return super::xml(&BbbResponse::failed(messages::CHECKSUM_ERROR));
    }
    if !body.is_empty() && content_type != Some("application/json") {
        return super::xml(&BbbResponse::failed(messages::UNSUPPORTED_CONTENT_TYPE));
    }
    let query = Query::parse(raw_query).unwrap_or_default();
    let input: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("Invalid JSON: {e}")}),
                )
            }
        }
    };
    let args = Args { query, input };
    let (status, value) = match (method.as_str(), call) {
        ("GET", "getServers") => get_servers(state).await,
        ("GET", "getServerInfo") => get_server_info(state, &args).await,
        ("POST", "addServer") => add_server(state, &args).await,
        ("POST", "updateServer") => update_server(state, &args).await,
        ("POST", "deleteServer") => delete_server(state, &args).await,
        ("POST", "panicServer") => panic_server(state, &args).await,
        ("GET", "getTenants") => get_tenants(state).await,
        ("GET", "getTenantInfo") => get_tenant_info(state, &args).await,
        ("POST", "addTenant") => add_tenant(state, &args).await,
        ("POST", "updateTenant") => update_tenant(state, &args).await,
        ("POST", "deleteTenant") => delete_tenant(state, &args).await,
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("Unknown call {call}")}),
        ),
    };
    answer(status, value)
}

fn answer(status: StatusCode, value: Value) -> Response {
    warp::reply::with_status(warp::reply::json(&value), status).into_response()
}

/// The call's parameters: the URL query and the JSON body, whose `server`/`tenant` object may be
/// nested or flat (Scalelite wraps a flat body).
struct Args {
    query: Query,
    input: Value,
}

impl Args {
    fn id(&self) -> Option<String> {
        self.query
            .get("id")
            .map(String::from)
            .or_else(|| match &self.input["id"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    /// A field of the `object` (`server` or `tenant`), nested or flat.
    fn field(&self, object: &str, key: &str) -> Option<Value> {
        let nested = self.input.get(object).and_then(|o| o.get(key));
        nested
            .or_else(|| self.input.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    }

    fn text(&self, object: &str, key: &str) -> Option<String> {
        self.field(object, key).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.input.get(key), Some(Value::Bool(true)))
            || matches!(self.input.get(key), Some(Value::String(s)) if s == "true")
            || self.query.get(key) == Some("true")
    }
}

async fn nodes(state: &AppState) -> Vec<Node> {
    state.store.nodes().await.unwrap_or_default()
}

async fn node(state: &AppState, args: &Args) -> Result<Node, (StatusCode, Value)> {
    let id = args.id().unwrap_or_default();
    state.store.node(&id).await.map_err(|_| {
        (
            StatusCode::NOT_FOUND,
            json!({"error": format!("Couldn't find server with id={id}")}),
        )
    })
}

/// Scalelite's server JSON.
fn server_json(state: &AppState, n: &Node) -> Value {
    let health = state.monitor.health(n.id);
    let version = health
        .and_then(|h| h.checks.get(&CheckName::Version).map(|c| c.output.clone()))
        .and_then(|o| {
            o.strip_prefix("BBB API version ")
                .map(|v| v.split(',').next().unwrap_or(v).to_owned())
        })
        .unwrap_or_default();
    json!({
        "id": n.name,
        "url": n.shown_url(),
        "secret": n.secret.0,
        "tag": n.tags.join(","),
        "bbb_version": version,
        "state": n.state.as_str(),
        "load": if n.online && n.state != NodeState::Disabled {
            json!(state.scalelite_load(n))
        } else {
            json!("unavailable")
        },
        "load_multiplier": format!("{:.1}", n.load_multiplier),
        "online": if n.online { "online" } else { "offline" },
    })
}

async fn get_servers(state: &AppState) -> (StatusCode, Value) {
    let list = nodes(state).await;
    if list.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": "No servers are configured"}),
        );
    }
    (
        StatusCode::OK,
        Value::Array(list.iter().map(|n| server_json(state, n)).collect()),
    )
}

async fn get_server_info(state: &AppState, args: &Args) -> (StatusCode, Value) {
    match node(state, args).await {
        Ok(n) => (StatusCode::OK, server_json(state, &n)),
        Err(e) => e,
    }
}

fn multiplier(args: &Args) -> Result<Option<f64>, (StatusCode, Value)> {
    match args.text("server", "load_multiplier") {
        None => Ok(None),
        Some(text) => match text.trim().parse::<f64>() {
            Ok(m) if m.is_finite() && m > 0.0 => Ok(Some(m)),
            _ => Err((
                StatusCode::BAD_REQUEST,
                json!({"error": "Load-multiplier must be a non-zero number"}),
            )),
        },
    }
}

async fn add_server(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let (Some(url), Some(secret)) = (args.text("server", "url"), args.text("server", "secret"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "Server needs a URL and a secret"}),
        );
    };
    if ops::nodes::api_url(&url).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "Server needs a URL and a secret"}),
        );
    }
    let load_multiplier = match args
        .text("server", "load_multiplier")
        .as_deref()
        .map(str::trim)
    {
        None | Some("0") | Some("0.0") | Some("") => 1.0,
        Some(_) => match multiplier(args) {
            Ok(m) => m.unwrap_or(1.0),
            Err(e) => return e,
        },
    };
    let spec = NodeSpec {
        url,
        secret,
        name: None,
        load_multiplier,
        tags: split_tags(&args.text("server", "tag").unwrap_or_default()),
        enabled: false,
    };
    match ops::nodes::add(state, ACTOR, spec).await {
        Ok(n) => (StatusCode::CREATED, server_json(state, &n)),
        Err(e) => (StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

async fn update_server(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let n = match node(state, args).await {
        Ok(n) => n,
        Err(e) => return e,
    };
    let new_state = match args.text("server", "state").as_deref() {
        None => None,
        Some("enable") => Some(NodeState::Enabled),
        Some("cordon") => Some(NodeState::Cordoned),
        Some("disable") => Some(NodeState::Disabled),
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("Invalid state parameter: {other}")}),
            )
        }
    };
    let load_multiplier = match multiplier(args) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let edit = NodeEdit {
        secret: args.text("server", "secret"),
        load_multiplier,
        tags: args.text("server", "tag"),
        ..NodeEdit::default()
    };
    if let Some(new) = new_state {
        if let Err(e) = ops::nodes::set_state(state, ACTOR, &n, new).await {
            return (StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
        }
    }
    match ops::nodes::edit(state, ACTOR, &n, edit).await {
        Ok(n) => (StatusCode::OK, server_json(state, &n)),
        Err(e) => (StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

async fn delete_server(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let n = match node(state, args).await {
        Ok(n) => n,
        Err(e) => return e,
    };
    match ops::nodes::remove(state, ACTOR, &n).await {
        Ok(_) => (
            StatusCode::OK,
            json!({"success": format!("Server id={} was destroyed", n.name)}),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("Couldn't destroy server id={}: {e}", n.name)}),
        ),
    }
}

async fn panic_server(state: &Arc<AppState>, args: &Args) -> (StatusCode, Value) {
    let n = match node(state, args).await {
        Ok(n) => n,
        Err(e) => return e,
    };
    match ops::nodes::panic(state, ACTOR, &n, args.flag("keep_state")).await {
        Ok(_) => (
            StatusCode::OK,
            json!({"success": format!(
                "Server id={} has been disabled and the meetings have been destroyed",
                n.name
            )}),
        ),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("Couldn't disable server id={}", n.name)}),
        ),
    }
}

fn tenant_json(i: &Integration) -> Value {
    json!({
        "id": i.id.0.to_string(),
        "name": i.name,
        "secrets": i.secrets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(":"),
    })
}

async fn tenant(state: &AppState, args: &Args) -> Result<Arc<Integration>, (StatusCode, Value)> {
    let id = args.id().unwrap_or_default();
    let found = id.parse::<i64>().ok().and_then(|n| {
        state
            .integrations
            .load()
            .iter()
            .find(|i| i.id == IntegrationId(n))
            .cloned()
    });
    found.ok_or((
        StatusCode::NOT_FOUND,
        json!({"error": format!("Couldn't find Tenant with id={id}")}),
    ))
}

async fn get_tenants(state: &AppState) -> (StatusCode, Value) {
    let list = state.integrations.load();
    if list.is_empty() {
        return (StatusCode::OK, json!({"message": "No tenants exist"}));
    }
    (
        StatusCode::OK,
        Value::Array(list.iter().map(|i| tenant_json(i)).collect()),
    )
}

async fn get_tenant_info(state: &AppState, args: &Args) -> (StatusCode, Value) {
    match tenant(state, args).await {
        Ok(i) => (StatusCode::OK, tenant_json(&i)),
        Err(e) => e,
    }
}

fn secrets(args: &Args) -> Option<Vec<Secret>> {
    let text = args.text("tenant", "secrets")?;
    let list: Vec<Secret> = text
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Secret(s.to_owned()))
        .collect();
    (!list.is_empty()).then_some(list)
}

async fn add_tenant(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let (Some(name), Some(secrets)) = (
        args.text("tenant", "name").filter(|n| !n.trim().is_empty()),
        secrets(args),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"message": "Error: both name and secrets are required to create a Tenant"}),
        );
    };
    match ops::integrations::add_with_secrets(state, ACTOR, &name, secrets).await {
        Ok(i) => (StatusCode::CREATED, json!({"tenant": tenant_json(&i)})),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": e.to_string()}),
        ),
    }
}

async fn update_tenant(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let i = match tenant(state, args).await {
        Ok(i) => i,
        Err(e) => return e,
    };
    let edit = IntegrationEdit {
        name: args.text("tenant", "name").filter(|n| !n.trim().is_empty()),
        ..IntegrationEdit::default()
    };
    let updated = ops::integrations::edit(state, ACTOR, &i, edit, secrets(args)).await;
    match updated {
        Ok(i) => (StatusCode::OK, json!({"tenant": tenant_json(&i)})),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": e.to_string()}),
        ),
    }
}

async fn delete_tenant(state: &AppState, args: &Args) -> (StatusCode, Value) {
    let i = match tenant(state, args).await {
        Ok(i) => i,
        Err(e) => return e,
    };
    match ops::integrations::remove(state, ACTOR, &i).await {
        Ok(()) => (
            StatusCode::OK,
            json!({"success": format!("Tenant id={} was destroyed", i.id.0)}),
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": e.to_string()}),
        ),
    }
}
