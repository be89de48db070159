//! Sessions for the web: session cookies (random token, only its sha256 stored; HttpOnly,
//! SameSite=Strict, Secure unless configured off), a CSRF token per session checked on every
//! form, and a login CSRF cookie. Hashes, tokens and the login limits are in `crate::auth`.

use std::time::Duration;

pub use crate::auth::{dummy_hash, token, token_hash, verify_password};
use crate::config::WebConfig;
use crate::state::AppState;
use conflux_store::users::Session;

pub const SESSION_COOKIE: &str = "conflux_session";
pub const LOGIN_CSRF_COOKIE: &str = "conflux_login";

/// The `Set-Cookie` value of a cookie (`max_age` 0 clears it).
pub fn cookie(web: &WebConfig, name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if web.secure_cookies { "; Secure" } else { "" }
    )
}

/// The live session of the request's cookie, if any.
pub async fn session(state: &AppState, cookie: Option<String>) -> Option<Session> {
    let hash = token_hash(&cookie?);
    state.store.session(&hash).await.ok().flatten()
}
