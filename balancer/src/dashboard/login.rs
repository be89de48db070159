//! Logging in and out: the login form with its double-submit CSRF cookie, the per-address
//! limit on failures, argon2 verification off the async threads (against a dummy hash for
//! unknown users, so timing tells nothing), and the session cookie.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warp::http::StatusCode;
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::Reply;

use super::auth::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::{form, message, page, redirect, set_cookie};
use crate::failures::{Limits, Verdict};
use crate::state::AppState;
use conflux_store::Audit;

pub async fn login_page(state: Arc<AppState>, csrf: Option<String>) -> Response {
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

pub async fn login(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    xff: Option<String>,
    cookie: Option<String>,
    body: Bytes,
) -> Response {
    let Some(ip) =
        crate::connection::client_ip(peer, xff.as_deref(), &state.config.trusted_proxies)
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
    if !cookie
        .as_deref()
        .is_some_and(|c| crate::auth::same(c, csrf))
    {
        tracing::warn!(%ip, "Login refused: CSRF check failed.");
        return login_form(
            &state,
            &fresh,
            Some("The form expired or came from another site; please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    // Failures other balancers saw count here at once.
    state.failures.sync(&state.store).await;
    if state.failures.login.verdict(Some(ip), || None) == Verdict::Refuse {
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
    let user = state.store.user(&username).await.ok();
    let user = tokio::task::spawn_blocking(move || {
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
        let failures = &state.failures;
        let (_, stored) = failures.failed(&state.store, Limits::Login, Some(ip), None);
        // Stored before the answer: the next attempt, on any balancer, counts it.
        if let Some(stored) = stored {
            let _ = stored.await;
        }
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
    let expires = conflux_store::now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let audit = Audit::new(&name, "login", ip.to_string());
    let stored = state
        .store
        .create_session(hash, id, csrf, expires, audit)
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

pub async fn logout(state: Arc<AppState>, cookie: Option<String>, body: Bytes) -> Response {
    let Some(token) = cookie else {
        return redirect("/login");
    };
    let Some(session) = auth::session(&state, Some(token.clone())).await else {
        return redirect("/login");
    };
    if !form(&body)
        .is_some_and(|f| crate::auth::same(&session.csrf, f.get("csrf").unwrap_or_default()))
    {
        return message(
            &state,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's CSRF token is missing or wrong.",
        );
    }
    let hash = auth::token_hash(&token);
    let name = session.user.username.clone();
    if let Err(e) = state
        .store
        .end_session(&hash, Audit::new(&name, "logout", ""))
        .await
    {
        tracing::error!(error = %e, "Could not end a session.");
    }
    let mut reply = redirect("/login");
    set_cookie(
        &mut reply,
        &auth::cookie(&state.config.web, SESSION_COOKIE, "", Duration::ZERO),
    );
    reply
}
