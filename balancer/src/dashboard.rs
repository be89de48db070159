//! The operator's web, served by the balancer: login and logout, the network dashboard (live
//! through server-sent events), a node page with history charts, the history as JSON, and the
//! static files. Pages need a session unless `web.public`; they never show a secret.

mod admin_api;
mod auth;
mod manage;
mod reports;
mod view;

pub use auth::{hash_password, token as new_token, token_hash, LoginLimiter};

/// A random password for generated accounts (the demo's): 16 letters and digits.
pub fn random_password() -> String {
    auth::token()[..16].to_owned()
}

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conflux_shared::Query;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::state::AppState;
use crate::store::users::{self, Session};
use auth::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};

/// How often a live page's data is rendered and, if it changed, sent.
const LIVE_EVERY: Duration = Duration::from_millis(500);

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let with_state = warp::any().map(move || state.clone());
    let session = warp::cookie::optional::<String>(SESSION_COOKIE);
    let statics = warp::get()
        .and(warp::path("static"))
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| static_file(tail.as_str()));
    let login_page = warp::get()
        .and(warp::path!("login"))
        .and(with_state.clone())
        .and(warp::cookie::optional::<String>(LOGIN_CSRF_COOKIE))
        .then(login_page);
    let login = warp::post()
        .and(warp::path!("login"))
        .and(with_state.clone())
        .and(warp::addr::remote())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::cookie::optional::<String>(LOGIN_CSRF_COOKIE))
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .then(login);
    let logout = warp::post()
        .and(warp::path!("logout"))
        .and(with_state.clone())
        .and(session)
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .then(logout);
    let dashboard = warp::get()
        .and(warp::path::end())
        .and(with_state.clone())
        .and(session)
        .then(dashboard);
    let network_page = warp::get()
        .and(warp::path!("network"))
        .and(with_state.clone())
        .and(session)
        .then(network_page);
    let node_page = warp::get()
        .and(warp::path!("nodes" / String))
        .and(with_state.clone())
        .and(session)
        .then(node_page);
    let events = warp::get()
        .and(warp::path!("events"))
        .and(with_state.clone())
        .and(session)
        .then(events);
    let admin_page = warp::get()
        .and(warp::path!("admin"))
        .and(with_state.clone())
        .and(session)
        .then(admin_page);
    let admin_action = warp::post()
        .and(warp::path!("admin" / String / String))
        .and(with_state.clone())
        .and(session)
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(admin_action);
    let raw_query = || warp::query::raw().or(warp::any().map(String::new)).unify();
    let report_page = warp::get()
        .and(warp::path!("reports"))
        .and(raw_query())
        .and(with_state.clone())
        .and(session)
        .then(report_page);
    let report_csv = warp::get()
        .and(warp::path!("reports.csv"))
        .and(raw_query())
        .and(with_state.clone())
        .and(session)
        .then(report_csv);
    let api_get = warp::get()
        .and(warp::path("api"))
        .and(warp::path("v1"))
        .and(warp::path::tail())
        .and(raw_query())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(session)
        .then(api_get);
    let api_post = warp::post()
        .and(warp::path!("api" / "v1" / String / String))
        .and(with_state.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(api_post);
    statics
        .or(login_page)
        .unify()
        .or(login)
        .unify()
        .or(logout)
        .unify()
        .or(dashboard)
        .unify()
        .or(node_page)
        .unify()
        .or(network_page)
        .unify()
        .or(events)
        .unify()
        .or(api_get)
        .unify()
        .or(api_post)
        .unify()
        .or(admin_page)
        .unify()
        .or(report_page)
        .unify()
        .or(report_csv)
        .unify()
        .or(admin_action)
        .unify()
        .boxed()
}

/// Who is looking: a session, or nobody on a public install; otherwise the login page.
async fn reader(state: &AppState, cookie: Option<String>) -> Result<Option<Session>, Response> {
    match auth::session(state, cookie).await {
        Some(session) => Ok(Some(session)),
        None if state.config.web.public => Ok(None),
        None => Err(redirect("/login")),
    }
}

fn page(
    state: &AppState,
    template: &str,
    session: Option<&Session>,
    data: serde_json::Value,
) -> Response {
    let mut context = json!({
        "user": session.map(|s| json!({
            "name": s.user.username,
            "role": s.user.role,
            "admin": s.user.role == users::Role::Admin,
        })),
        "csrf": session.map_or("", |s| s.csrf.as_str()),
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (context.as_object_mut(), data) {
        all.extend(extra);
    }
    match state.templates.render(template, &context) {
        Ok(html) => warp::reply::html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Could not render a page.");
            warp::reply::with_status(
                "The page could not be rendered.",
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .into_response()
        }
    }
}

fn message(state: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    let body = page(
        state,
        "message",
        None,
        json!({"title": title, "message": text}),
    );
    warp::reply::with_status(body, status).into_response()
}

fn redirect(to: &str) -> Response {
    warp::reply::with_header(StatusCode::SEE_OTHER, header::LOCATION, to).into_response()
}

fn static_file(path: &str) -> Response {
    match conflux_templates::static_file(path) {
        Some((bytes, kind)) => {
            let reply = warp::reply::with_header(bytes, header::CONTENT_TYPE, kind);
            warp::reply::with_header(reply, header::CACHE_CONTROL, "public, max-age=3600")
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn login_page(state: Arc<AppState>, csrf: Option<String>) -> Response {
    let csrf = csrf.filter(|c| c.len() == 64).unwrap_or_else(auth::token);
    login_form(&state, &csrf, None, StatusCode::OK)
}

fn login_form(state: &AppState, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    // The form's token is the login cookie's value (double submit): a cross-site form cannot
    // read it.
    let body = page(
        state,
        "login",
        None,
        json!({"title": "Log in", "error": error, "csrf": csrf}),
    );
    let mut reply = warp::reply::with_status(body, status).into_response();
    let cookie = auth::cookie(
        &state.config.web,
        LOGIN_CSRF_COOKIE,
        csrf,
        Duration::from_secs(3600),
    );
    set_cookie(&mut reply, &cookie);
    reply
}

fn set_cookie(reply: &mut Response, cookie: &str) {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        reply.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn form(body: &Bytes) -> Option<Query> {
    Query::parse(std::str::from_utf8(body).ok()?).ok()
}

async fn login(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    xff: Option<String>,
    cookie: Option<String>,
    body: Bytes,
) -> Response {
    let Some(ip) =
        crate::api::request::client_ip(peer, xff.as_deref(), &state.config.trusted_proxies)
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let fresh = auth::token();
    let Some(form) = form(&body) else {
        return login_form(
            &state,
            &fresh,
            Some("The form could not be read."),
            StatusCode::BAD_REQUEST,
        );
    };
    let csrf = form.get("csrf").unwrap_or_default();
    if !cookie.as_deref().is_some_and(|c| auth::same(c, csrf)) {
        tracing::warn!(%ip, "Login refused: CSRF check failed.");
        return login_form(
            &state,
            &fresh,
            Some("The form expired or came from another site; please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    if !state.login_limiter.allows(ip) {
        tracing::warn!(%ip, "Login refused: too many failures.");
        return login_form(
            &state,
            &fresh,
            Some("Too many failed attempts from your address; wait a few minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let username = form.get_trimmed("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    let store = state.store.clone();
    let name = username.clone();
    let user = tokio::task::spawn_blocking(move || {
        let user = store.blocking(|c| users::find(c, &name)).ok();
        // Verify against a dummy hash when the user does not exist, so timing tells nothing.
        let hash = user.as_ref().map_or_else(
            || auth::dummy_hash().to_owned(),
            |u| u.password_hash.clone(),
        );
        let ok = auth::verify_password(&password, &hash);
        user.filter(|_| ok)
    })
    .await
    .ok()
    .flatten();
    let Some(user) = user else {
        state.login_limiter.failed(ip);
        tracing::warn!(%ip, user = %username, "Login failed.");
        return login_form(
            &state,
            &fresh,
            Some("Wrong user or password."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let token = auth::token();
    let (hash, csrf, id, name) = (
        auth::token_hash(&token),
        auth::token(),
        user.id,
        user.username.clone(),
    );
    let lifetime = state.config.web.session;
    let expires = crate::store::now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let stored = state
        .store
        .run(move |c| {
            users::create_session(c, &hash, id, &csrf, expires)?;
            users::audit(c, &name, "login", &ip.to_string())
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "Could not store a session.");
        return message(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The session could not be stored.",
        );
    }
    tracing::info!(%ip, user = %user.username, "Logged in.");
    let mut reply = redirect("/");
    set_cookie(
        &mut reply,
        &auth::cookie(&state.config.web, SESSION_COOKIE, &token, lifetime),
    );
    set_cookie(
        &mut reply,
        &auth::cookie(&state.config.web, LOGIN_CSRF_COOKIE, "", Duration::ZERO),
    );
    reply
}

async fn logout(state: Arc<AppState>, cookie: Option<String>, body: Bytes) -> Response {
    let Some(token) = cookie else {
        return redirect("/login");
    };
    let Some(session) = auth::session(&state, Some(token.clone())).await else {
        return redirect("/login");
    };
    if !form(&body).is_some_and(|f| auth::same(&session.csrf, f.get("csrf").unwrap_or_default())) {
        return message(
            &state,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's CSRF token is missing or wrong.",
        );
    }
    let hash = auth::token_hash(&token);
    let name = session.user.username.clone();
    let _ = state
        .store
        .run(move |c| {
            users::end_session(c, &hash)?;
            users::audit(c, &name, "logout", "")
        })
        .await;
    let mut reply = redirect("/login");
    set_cookie(
        &mut reply,
        &auth::cookie(&state.config.web, SESSION_COOKIE, "", Duration::ZERO),
    );
    reply
}

async fn dashboard(state: Arc<AppState>, cookie: Option<String>) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let (nodes, totals) = view::network(&state);
    page(
        &state,
        "dashboard",
        session.as_ref(),
        json!({"title": "Network", "nodes": nodes, "totals": totals}),
    )
}

async fn node_page(name: String, state: Arc<AppState>, cookie: Option<String>) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let nodes = state.nodes.load();
    let Some(node) = nodes.nodes.iter().find(|n| n.name == name) else {
        return message(
            &state,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no node {name:?}."),
        );
    };
    let view = view::node(&state, node);
    page(
        &state,
        "node",
        session.as_ref(),
        json!({"title": node.name, "node": view, "nodes": [view]}),
    )
}

async fn report_page(raw_query: String, state: Arc<AppState>, cookie: Option<String>) -> Response {
    match reader(&state, cookie).await {
        Ok(session) => reports::report_page(&state, session.as_ref(), &raw_query).await,
        Err(to_login) => to_login,
    }
}

async fn report_csv(raw_query: String, state: Arc<AppState>, cookie: Option<String>) -> Response {
    match reader(&state, cookie).await {
        Ok(_) => reports::report_csv(&state, &raw_query).await,
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// An admin's session, or the page to show instead.
async fn admin(state: &AppState, cookie: Option<String>) -> Result<Session, Response> {
    match auth::session(state, cookie).await {
        Some(s) if s.user.role == users::Role::Admin => Ok(s),
        Some(_) => Err(message(
            state,
            StatusCode::FORBIDDEN,
            "Refused",
            "Only administrators can see this page.",
        )),
        None => Err(redirect("/login")),
    }
}

async fn admin_page(state: Arc<AppState>, cookie: Option<String>) -> Response {
    match admin(&state, cookie).await {
        Ok(session) => manage::admin_page(&state, &session, None, None).await,
        Err(reply) => reply,
    }
}

async fn admin_action(
    entity: String,
    action: String,
    state: Arc<AppState>,
    cookie: Option<String>,
    body: Bytes,
) -> Response {
    // A viewer gets the explicit refusal from `act`, not the page's.
    let Some(session) = auth::session(&state, cookie).await else {
        return redirect("/login");
    };
    let Some(form) = form(&body) else {
        return message(
            &state,
            StatusCode::BAD_REQUEST,
            "Not changed",
            "The form could not be read.",
        );
    };
    manage::act(&state, &session, &entity, &action, &form).await
}

async fn network_page(state: Arc<AppState>, cookie: Option<String>) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let (_, totals) = view::network(&state);
    page(
        &state,
        "network",
        session.as_ref(),
        json!({"title": "Network history", "totals": totals}),
    )
}

/// Server-sent events: the rendered rows and totals whenever they change.
async fn events(state: Arc<AppState>, cookie: Option<String>) -> Response {
    if reader(&state, cookie).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let updates =
        futures_util::stream::unfold((state, String::new()), |(state, last)| async move {
            loop {
                let (nodes, totals) = view::network(&state);
                let rows = state
                    .templates
                    .render("node_rows", &json!({"nodes": nodes}));
                let totals = state.templates.render("totals", &json!({"totals": totals}));
                if let (Ok(rows), Ok(totals)) = (rows, totals) {
                    let data = json!({"rows": rows, "totals": totals}).to_string();
                    if data != last {
                        let event = warp::sse::Event::default()
                            .event("dashboard")
                            .data(data.clone());
                        return Some((Ok::<_, Infallible>(event), (state, data)));
                    }
                }
                tokio::time::sleep(LIVE_EVERY).await;
            }
        });
    let stream = warp::sse::keep_alive().stream(updates);
    warp::sse::reply(stream).into_response()
}

/// A node's stored history for a range (`hour`, `day`, `month`, `year`) as columns.
/// `name`'s history, or the whole network's with `None` (per-node rows are not aligned in
/// time, so the network's shortest range uses 5-minute rows).
pub(crate) async fn history_json(
    state: &AppState,
    name: Option<&str>,
    raw_query: &str,
) -> Response {
    let range = Query::parse(raw_query)
        .ok()
        .and_then(|q| q.get("range").map(String::from))
        .unwrap_or_else(|| "hour".into());
    let (resolution, span) = match range.as_str() {
        "hour" => (0, 3_600),
        "day" => (300, 86_400),
        "month" => (300, 31 * 86_400),
        "year" => (3_600, 365 * 86_400),
        other => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("unknown range {other:?} (hour, day, month, year)"),
            )
        }
    };
    let since = crate::store::now_ms() / 1000 - span;
    let rows = match name {
        Some(name) => {
            let Some(node) = state
                .nodes
                .load()
                .nodes
                .iter()
                .find(|n| n.name == name)
                .cloned()
            else {
                return json_error(StatusCode::NOT_FOUND, &format!("no node {name:?}"));
            };
            state
                .store
                .run(move |c| crate::store::monitor::history(c, node.id, resolution, since))
                .await
        }
        None => {
            let resolution = resolution.max(300);
            state
                .store
                .run(move |c| crate::store::monitor::network_history(c, resolution, since))
                .await
        }
    }
    .unwrap_or_default();
    let column = |f: fn(&crate::store::monitor::Sample) -> f64| {
        rows.iter().map(|(_, s)| f(s)).collect::<Vec<_>>()
    };
    warp::reply::json(&json!({
        "range": range,
        "resolution": resolution,
        "ts": rows.iter().map(|(ts, _)| ts).collect::<Vec<_>>(),
        "cpu": column(|s| s.cpu),
        "memory": column(|s| s.memory),
        "disk": column(|s| s.disk),
        "net_in": column(|s| s.net_in),
        "net_out": column(|s| s.net_out),
        "users": column(|s| s.users),
        "meetings": column(|s| s.meetings),
        "voice": column(|s| s.voice),
        "video": column(|s| s.video),
    }))
    .into_response()
}

/// `GET /api/v1/...`: a token or a session.
async fn api_get(
    tail: warp::path::Tail,
    raw_query: String,
    state: Arc<AppState>,
    authorization: Option<String>,
    cookie: Option<String>,
) -> Response {
    let known = admin_api::caller(&state, authorization, cookie)
        .await
        .is_some();
    if !known && !state.config.web.public {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "a bearer token or a session is needed",
        );
    }
    admin_api::get(&state, tail.as_str(), &raw_query).await
}

/// `POST /api/v1/ENTITY/ACTION`: bearer tokens only (a cookie could be sent by another site).
async fn api_post(
    entity: String,
    action: String,
    state: Arc<AppState>,
    authorization: Option<String>,
    body: Bytes,
) -> Response {
    let Some(caller) = admin_api::caller(&state, authorization, None).await else {
        return json_error(StatusCode::UNAUTHORIZED, "a bearer token is needed");
    };
    admin_api::post(&state, &caller, &entity, &action, &body).await
}

fn json_error(status: StatusCode, why: &str) -> Response {
    warp::reply::with_status(warp::reply::json(&json!({"error": why})), status).into_response()
}
