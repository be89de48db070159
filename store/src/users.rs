//! Web accounts, their sessions and the audit log in the store. Passwords arrive here already
//! hashed (argon2, in `dashboard/auth.rs`); session tokens only as their sha256.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, StoreError};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?} (admin, viewer)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

/// A live session with its user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

fn user_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        role: role.parse().unwrap_or(Role::Viewer),
    })
}

pub fn add(conn: &Connection, username: &str, hash: &str, role: Role) -> Result<User, StoreError> {
    let taken: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
        [username],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "user {username:?} exists already"
        )));
    }
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![username, hash, role.as_str(), now_ms()],
    )?;
    find(conn, username)
}

pub fn find(conn: &Connection, username: &str) -> Result<User, StoreError> {
    conn.query_row(
        "SELECT id, username, password_hash, role FROM users WHERE username = ?1",
        [username],
        user_from,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("user {username:?}")))
}

pub fn list(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, username, password_hash, role FROM users ORDER BY username")?;
    let users = stmt.query_map([], user_from)?.collect::<Result<_, _>>()?;
    Ok(users)
}

pub fn remove(conn: &Connection, username: &str) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM users WHERE username = ?1", [username])? == 0 {
        return Err(StoreError::NotFound(format!("user {username:?}")));
    }
    Ok(())
}

pub fn set_password(conn: &Connection, username: &str, hash: &str) -> Result<(), StoreError> {
    if conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE username = ?1",
        params![username, hash],
    )? == 0
    {
        return Err(StoreError::NotFound(format!("user {username:?}")));
    }
    // A new password ends every session of the account.
    conn.execute(
        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
        [username],
    )?;
    Ok(())
}

pub fn create_session(
    conn: &Connection,
    token_hash: &str,
    user: i64,
    csrf: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms()])?;
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user, csrf, expires_at],
    )?;
    Ok(())
}

/// The live session with this token hash, if any.
pub fn session(conn: &Connection, token_hash: &str) -> Result<Option<Session>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT u.id, u.username, u.password_hash, u.role, s.csrf FROM sessions s
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )?
        .query_row(params![token_hash, now_ms()], |r| {
            Ok(Session {
                user: user_from(r)?,
                csrf: r.get(4)?,
            })
        })
        .optional()?;
    Ok(found)
}

pub fn end_session(conn: &Connection, token_hash: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

/// Records who did what.
pub fn audit(conn: &Connection, actor: &str, action: &str, detail: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), actor, action, detail],
    )?;
    Ok(())
}

/// The latest audit entries, newest first: (at, actor, action, detail).
pub fn audit_log(
    conn: &Connection,
    limit: u32,
) -> Result<Vec<(i64, String, String, String)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A JSON admin API token's name and role.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub name: String,
    pub role: Role,
}

pub fn add_token(
    conn: &Connection,
    name: &str,
    token_hash: &str,
    role: Role,
) -> Result<(), StoreError> {
    let taken: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "a token named {name:?} exists already"
        )));
    }
    conn.execute(
        "INSERT INTO api_tokens (name, token_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, token_hash, role.as_str(), now_ms()],
    )?;
    Ok(())
}

/// The token with this hash, if any.
pub fn token(conn: &Connection, token_hash: &str) -> Result<Option<Token>, StoreError> {
    let found = conn
        .prepare_cached("SELECT name, role FROM api_tokens WHERE token_hash = ?1")?
        .query_row([token_hash], |r| {
            let role: String = r.get(1)?;
            Ok(Token {
                name: r.get(0)?,
                role: role.parse().unwrap_or(Role::Viewer),
            })
        })
        .optional()?;
    Ok(found)
}

pub fn tokens(conn: &Connection) -> Result<Vec<Token>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name, role FROM api_tokens ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| {
            let role: String = r.get(1)?;
            Ok(Token {
                name: r.get(0)?,
                role: role.parse().unwrap_or(Role::Viewer),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn remove_token(conn: &Connection, name: &str) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM api_tokens WHERE name = ?1", [name])? == 0 {
        return Err(StoreError::NotFound(format!("token {name:?}")));
    }
    Ok(())
}
