//! Web accounts, their sessions and the audit log in the store. Passwords arrive here already
//! hashed (argon2, in `dashboard/auth.rs`); session tokens only as their sha256.

use crate::sql::{params, Db, Row};

use super::{now_ms, Audit, Store, StoreError};

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

fn user_from(row: &Row<'_>) -> Result<User, StoreError> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        role: role.parse().unwrap_or(Role::Viewer),
    })
}

pub(crate) fn add(
    conn: &Db<'_>,
    username: &str,
    hash: &str,
    role: Role,
) -> Result<User, StoreError> {
    let taken: bool = conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
        params![username],
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

pub(crate) fn find(conn: &Db<'_>, username: &str) -> Result<User, StoreError> {
    conn.query_opt(
        "SELECT id, username, password_hash, role FROM users WHERE username = ?1",
        params![username],
        user_from,
    )?
    .ok_or_else(|| StoreError::NotFound(format!("user {username:?}")))
}

pub(crate) fn list(conn: &Db<'_>) -> Result<Vec<User>, StoreError> {
    let users = conn.query(
        "SELECT id, username, password_hash, role FROM users ORDER BY username",
        params![],
        user_from,
    )?;
    Ok(users)
}

pub(crate) fn remove(conn: &Db<'_>, username: &str) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM users WHERE username = ?1", params![username])? == 0 {
        return Err(StoreError::NotFound(format!("user {username:?}")));
    }
    Ok(())
}

pub(crate) fn set_password(conn: &Db<'_>, username: &str, hash: &str) -> Result<(), StoreError> {
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
        params![username],
    )?;
    Ok(())
}

pub(crate) fn create_session(
    conn: &Db<'_>,
    token_hash: &str,
    user: i64,
    csrf: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM sessions WHERE expires_at < ?1",
        params![now_ms()],
    )?;
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user, csrf, expires_at],
    )?;
    Ok(())
}

/// The live session with this token hash, if any.
pub(crate) fn session(conn: &Db<'_>, token_hash: &str) -> Result<Option<Session>, StoreError> {
    conn.query_opt(
        "SELECT u.id, u.username, u.password_hash, u.role, s.csrf FROM sessions s
         JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        params![token_hash, now_ms()],
        |r| {
            Ok(Session {
                user: user_from(r)?,
                csrf: r.get(4)?,
            })
        },
    )
}

pub(crate) fn end_session(conn: &Db<'_>, token_hash: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        params![token_hash],
    )?;
    Ok(())
}

/// Records who did what.
pub(crate) fn audit(
    conn: &Db<'_>,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), actor, action, detail],
    )?;
    Ok(())
}

/// The latest audit entries, newest first: (at, actor, action, detail).
pub(crate) fn audit_log(
    conn: &Db<'_>,
    limit: u32,
) -> Result<Vec<(i64, String, String, String)>, StoreError> {
    let rows = conn.query(
        "SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?1",
        params![limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(rows)
}

/// A JSON admin API token's name and role.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub name: String,
    pub role: Role,
}

pub(crate) fn add_token(
    conn: &Db<'_>,
    name: &str,
    token_hash: &str,
    role: Role,
) -> Result<(), StoreError> {
    let taken: bool = conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)",
        params![name],
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
pub(crate) fn token(conn: &Db<'_>, token_hash: &str) -> Result<Option<Token>, StoreError> {
    conn.query_opt(
        "SELECT name, role FROM api_tokens WHERE token_hash = ?1",
        params![token_hash],
        |r| {
            let role: String = r.get(1)?;
            Ok(Token {
                name: r.get(0)?,
                role: role.parse().unwrap_or(Role::Viewer),
            })
        },
    )
}

pub(crate) fn tokens(conn: &Db<'_>) -> Result<Vec<Token>, StoreError> {
    let rows = conn.query(
        "SELECT name, role FROM api_tokens ORDER BY name",
        params![],
        |r| {
            let role: String = r.get(1)?;
            Ok(Token {
                name: r.get(0)?,
                role: role.parse().unwrap_or(Role::Viewer),
            })
        },
    )?;
    Ok(rows)
}

pub(crate) fn remove_token(conn: &Db<'_>, name: &str) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM api_tokens WHERE name = ?1", params![name])? == 0 {
        return Err(StoreError::NotFound(format!("token {name:?}")));
    }
    Ok(())
}

/// One change to the web's accounts or API tokens; [`Store::change_users`] applies it with its
/// audit row. Passwords and tokens arrive hashed.
#[derive(Debug, Clone)]
pub enum UserChange {
    Add {
        username: String,
        password_hash: String,
        role: Role,
    },
    Remove(String),
    SetPassword {
        username: String,
        password_hash: String,
    },
    AddToken {
        name: String,
        token_hash: String,
        role: Role,
    },
    RemoveToken(String),
}

impl Store {
    /// Applies `change` with its audit row.
    pub async fn change_users(&self, change: UserChange, audit: Audit) -> Result<(), StoreError> {
        self.audited(audit, move |c| match change {
            UserChange::Add {
                username,
                password_hash,
                role,
            } => add(c, &username, &password_hash, role).map(drop),
            UserChange::Remove(username) => remove(c, &username),
            UserChange::SetPassword {
                username,
                password_hash,
            } => set_password(c, &username, &password_hash),
            UserChange::AddToken {
                name,
                token_hash,
                role,
            } => add_token(c, &name, &token_hash, role),
            UserChange::RemoveToken(name) => remove_token(c, &name),
        })
        .await
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.run(list).await
    }

    /// Every API token (names and roles), by name.
    pub async fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.run(tokens).await
    }

    /// The API token with this hash, if any.
    pub async fn token(&self, token_hash: &str) -> Result<Option<Token>, StoreError> {
        let hash = token_hash.to_owned();
        self.run(move |c| token(c, &hash)).await
    }

    /// The account of this name.
    pub async fn user(&self, username: &str) -> Result<User, StoreError> {
        let name = username.to_owned();
        self.run(move |c| find(c, &name)).await
    }

    /// Starts a session (the token as its hash) with its audit row (a login).
    pub async fn create_session(
        &self,
        token_hash: String,
        user: i64,
        csrf: String,
        expires_at: i64,
        audit: Audit,
    ) -> Result<(), StoreError> {
        self.audited(audit, move |c| {
            create_session(c, &token_hash, user, &csrf, expires_at)
        })
        .await
    }

    /// The live session of this token hash, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let hash = token_hash.to_owned();
        self.run(move |c| session(c, &hash)).await
    }

    /// Ends a session with its audit row (a logout).
    pub async fn end_session(&self, token_hash: &str, audit: Audit) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        self.audited(audit, move |c| end_session(c, &hash)).await
    }

    /// The latest audit entries, newest first: (at, actor, action, detail).
    pub async fn audit_log(
        &self,
        limit: u32,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        self.read(move |c| audit_log(c, limit)).await
    }
}

#[cfg(test)]
mod tests {
    //! Through the store's interface, on each backend.
    use super::*;

    fn audit(action: &str) -> Audit {
        Audit::new("cli", action, "detail")
    }

    #[tokio::test]
    async fn accounts_tokens_and_sessions() {
        for store in crate::testing::stores() {
            let add = |name: &str| UserChange::Add {
                username: name.into(),
                password_hash: "hash".into(),
                role: Role::Admin,
            };
            store
                .change_users(add("ana"), audit("users add"))
                .await
                .unwrap();
            assert!(matches!(
                store.change_users(add("ana"), audit("users add")).await,
                Err(StoreError::Conflict(_))
            ));
            store
                .change_users(
                    UserChange::SetPassword {
                        username: "ana".into(),
                        password_hash: "hash2".into(),
                    },
                    audit("users passwd"),
                )
                .await
                .unwrap();
            let ana = store.user("ana").await.unwrap();
            assert_eq!(
                (ana.password_hash.as_str(), ana.role),
                ("hash2", Role::Admin)
            );
            store
                .create_session(
                    "t1".into(),
                    ana.id,
                    "csrf".into(),
                    now_ms() + 60_000,
                    audit("login"),
                )
                .await
                .unwrap();
            let session = store.session("t1").await.unwrap().unwrap();
            assert_eq!(
                (session.user.username.as_str(), session.csrf.as_str()),
                ("ana", "csrf")
            );
            store.end_session("t1", audit("logout")).await.unwrap();
            assert!(store.session("t1").await.unwrap().is_none());
            store
                .change_users(
                    UserChange::AddToken {
                        name: "ci".into(),
                        token_hash: "th".into(),
                        role: Role::Viewer,
                    },
                    audit("tokens add"),
                )
                .await
                .unwrap();
            assert_eq!(store.token("th").await.unwrap().unwrap().name, "ci");
            assert_eq!(store.tokens().await.unwrap().len(), 1);
            store
                .change_users(UserChange::RemoveToken("ci".into()), audit("tokens remove"))
                .await
                .unwrap();
            assert!(store.token("th").await.unwrap().is_none());
            store
                .change_users(UserChange::Remove("ana".into()), audit("users remove"))
                .await
                .unwrap();
            assert!(matches!(
                store
                    .change_users(UserChange::Remove("ana".into()), audit("users remove"))
                    .await,
                Err(StoreError::NotFound(_))
            ));
            let actions: Vec<String> = store
                .audit_log(20)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, _, action, _)| action)
                .collect();
            assert_eq!(
                actions,
                [
                    "users remove",
                    "tokens remove",
                    "tokens add",
                    "logout",
                    "login",
                    "users passwd",
                    "users add"
                ]
            );
        }
    }
}
