//! `users ...` and `tokens ...`: the web's accounts and the JSON admin API's tokens. Passwords come from standard input (never the command
//! line, where other users could see them) and are stored as argon2id hashes. Every change is
//! in the audit log with the actor `cli`.
#![allow(clippy::print_stdout)] // command output

use std::io::BufRead;

use super::{usage, UsageError};
use crate::auth::hash_password;
use crate::cli::{RoleArg, TokensCommand, UsersCommand};
use crate::state::AppState;
use conflux_store::users::{self, Role};

const MIN_PASSWORD: usize = 8;

pub fn run(state: &AppState, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List => {
            let list = state.store.blocking(|c| users::list(c))?;
            if list.is_empty() {
                eprintln!("No users: add one with `users add NAME --role admin`.");
            }
            for u in list {
                println!("{}\t{}", u.username, u.role.as_str());
            }
            Ok(())
        }
        UsersCommand::Add { username, role } => {
            let username = username.trim().to_owned();
            if username.is_empty() || username.contains(char::is_whitespace) {
                return Err(UsageError(format!("{username:?} is not a user name")).into());
            }
            let hash = read_password()?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Viewer => Role::Viewer,
            };
            state
                .store
                .blocking(|c| {
                    users::add(c, &username, &hash, role)?;
                    users::audit(
                        c,
                        "cli",
                        "user added",
                        &format!("{username} ({})", role.as_str()),
                    )
                })
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
        UsersCommand::Passwd { username } => {
            let hash = read_password()?;
            state
                .store
                .blocking(|c| {
                    users::set_password(c, &username, &hash)?;
                    users::audit(c, "cli", "password set", &username)
                })
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
        UsersCommand::Remove { username } => {
            state
                .store
                .blocking(|c| {
                    users::remove(c, &username)?;
                    users::audit(c, "cli", "user removed", &username)
                })
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
    }
}

pub fn tokens(state: &AppState, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List => {
            for t in state.store.blocking(|c| users::tokens(c))? {
                println!("{}\t{}", t.name, t.role.as_str());
            }
            Ok(())
        }
        TokensCommand::Add { name, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Viewer => Role::Viewer,
            };
            let token = crate::auth::token();
            let hash = crate::auth::token_hash(&token);
            state
                .store
                .blocking(|c| {
                    users::add_token(c, &name, &hash, role)?;
                    users::audit(
                        c,
                        "cli",
                        "token added",
                        &format!("{name} ({})", role.as_str()),
                    )
                })
                .map_err(usage)?;
            println!("token: {token}");
            Ok(())
        }
        TokensCommand::Remove { name } => {
            state
                .store
                .blocking(|c| {
                    users::remove_token(c, &name)?;
                    users::audit(c, "cli", "token removed", &name)
                })
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
    }
}

/// One line from standard input, hashed.
fn read_password() -> anyhow::Result<String> {
    eprint!("Password: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD {
        return Err(UsageError(format!(
            "the password needs {MIN_PASSWORD} characters or more"
        ))
        .into());
    }
    hash_password(password).map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}
