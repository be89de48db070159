//! The operator's web, served by the balancer: login and logout, the network dashboard (live
//! through server-sent events), a node page with history charts, the history as JSON, and the
//! static files. Pages need a session unless `web.public`; they never show a secret.

mod admin_api;
mod api_lists;
mod api_view;
mod auth;
mod list_pages;
mod live;
mod login;
mod manage;
mod reports;
mod view;

use std::sync::Arc;

use conflux_shared::Query;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::state::AppState;
use auth::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use conflux_store::users::{self, Session};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let hsts = state.config.web.secure_cookies;
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
        .then(login::login_page);
    let login = warp::post()
        .and(warp::path!("login"))
        .and(with_state.clone())
        .and(crate::connection::peer())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::cookie::optional::<String>(LOGIN_CSRF_COOKIE))
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .then(login::login);
    let logout = warp::post()
        .and(warp::path!("logout"))
        .and(with_state.clone())
        .and(session)
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .then(login::logout);
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
        .then(live::events);
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
    let alerts_page = warp::get()
        .and(warp::path!("alerts"))
        .and(raw_query())
        .and(with_state.clone())
        .and(session)
        .then(alerts_page);
    let meetings_page = warp::get()
        .and(warp::path!("meetings"))
        .and(raw_query())
        .and(with_state.clone())
        .and(session)
        .then(list_pages::meetings);
    let recordings_page = warp::get()
        .and(warp::path!("recordings"))
        .and(raw_query())
        .and(with_state.clone())
        .and(session)
        .then(list_pages::recordings);
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
        .or(alerts_page)
        .unify()
        .or(meetings_page)
        .unify()
        .or(recordings_page)
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
        .map(move |reply| with_security_headers(reply, hsts))
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

/// What every web answer carries: a Content-Security-Policy allowing only the balancer's own
/// scripts and styles (no inline script), no framing, no sniffing, no referrer outside the
/// site; and HSTS when the web is served as secure (`web.secure_cookies`).
fn with_security_headers(mut reply: Response, hsts: bool) -> Response {
    use warp::http::header::{self, HeaderValue};
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    reply
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

fn set_cookie(reply: &mut Response, cookie: &str) {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        reply.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn form(body: &Bytes) -> Option<Query> {
    Query::parse(std::str::from_utf8(body).ok()?).ok()
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

/// The alert history page (`/alerts?node=NAME`).
async fn alerts_page(raw_query: String, state: Arc<AppState>, cookie: Option<String>) -> Response {
    let session = match reader(&state, cookie).await {
        Ok(s) => s,
        Err(to_login) => return to_login,
    };
    let (node, list) = match api_lists::changes(&state, &raw_query).await {
        Ok(found) => found,
        Err((status, why)) => return message(&state, status, "Not shown", &why),
    };
    let changes: Vec<_> = list
        .iter()
        .map(|c| {
            json!({
                "when": manage::utc(c.at), "node": c.node, "check": c.name, "state": c.state,
                "previous": c.previous, "output": c.output,
                "problem": c.state == "WARNING" || c.state == "CRITICAL",
            })
        })
        .collect();
    page(
        &state,
        "alerts",
        session.as_ref(),
        json!({"title": "Alert history", "node": node, "changes": changes}),
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
        return admin_api::error(
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
        return admin_api::error(StatusCode::UNAUTHORIZED, "a bearer token is needed");
    };
    admin_api::post(&state, &caller, &entity, &action, &body).await
}
