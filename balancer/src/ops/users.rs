//! Operations on the web's accounts and the JSON admin API's tokens, for the CLI and the admin
//! pages. Passwords are hashed here (argon2id, on the blocking pool); a token is shown once
//! and stored only as its sha256.

use conflux_store::users::{Role, UserChange};
use conflux_store::Audit;

use super::{Invalid, OpError};
use crate::state::AppState;

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

fn username(name: &str) -> Result<String, Invalid> {
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(Invalid(format!("{name:?} is not a user name")));
    }
    Ok(name.to_owned())
}

async fn hash(password: String) -> Result<String, OpError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Invalid(format!(
            "the password needs {MIN_PASSWORD} characters or more"
        ))
        .into());
    }
    tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(|e| OpError::Invalid(format!("cannot hash the password: {e}")))?
        .map_err(|e| OpError::Invalid(format!("cannot hash the password: {e}")))
}

pub async fn add(
    state: &AppState,
    by: &str,
    name: &str,
    password: String,
    role: Role,
) -> Result<(), OpError> {
    let username = username(name)?;
    let password_hash = hash(password).await?;
    let detail = format!("{username} ({})", role.as_str());
    let change = UserChange::Add {
        username,
        password_hash,
        role,
    };
    Ok(state
        .store
        .change_users(change, Audit::new(by, "users add", detail))
        .await?)
}

pub async fn set_password(
    state: &AppState,
    by: &str,
    name: &str,
    password: String,
) -> Result<(), OpError> {
    let username = username(name)?;
    let password_hash = hash(password).await?;
    let audit = Audit::new(by, "users passwd", username.clone());
    let change = UserChange::SetPassword {
        username,
        password_hash,
    };
    Ok(state.store.change_users(change, audit).await?)
}

pub async fn remove(state: &AppState, by: &str, name: &str) -> Result<(), OpError> {
    let username = username(name)?;
    let audit = Audit::new(by, "users remove", username.clone());
    Ok(state
        .store
        .change_users(UserChange::Remove(username), audit)
        .await?)
}

/// Creates an API token; returns it, to be shown once.
pub async fn add_token(
    state: &AppState,
    by: &str,
    name: &str,
    role: Role,
) -> Result<String, OpError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(Invalid("a token needs a name".into()).into());
    }
    let token = crate::auth::token();
    let detail = format!("{name} ({})", role.as_str());
    let change = UserChange::AddToken {
        name,
        token_hash: crate::auth::token_hash(&token),
        role,
    };
    state
        .store
        .change_users(change, Audit::new(by, "tokens add", detail))
        .await?;
    Ok(token)
}

pub async fn remove_token(state: &AppState, by: &str, name: &str) -> Result<(), OpError> {
    let audit = Audit::new(by, "tokens remove", name.to_owned());
    Ok(state
        .store
        .change_users(UserChange::RemoveToken(name.to_owned()), audit)
        .await?)
}
