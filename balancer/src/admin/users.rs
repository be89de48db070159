//! `users ...` and `tokens ...`: the web's accounts and the JSON admin API's tokens. Passwords come from standard input (never the command
//! line, where other users could see them) and are stored as argon2id hashes. Every change is
//! in the audit log with the actor `cli`.
#![allow(clippy::print_stdout)] // command output

use std::io::BufRead;

use super::{usage, UsageError, CLI};
use crate::cli::{RoleArg, TokensCommand, UsersCommand};
use crate::ops;
use crate::state::AppState;
use conflux_store::users::Role;

pub async fn run(state: &AppState, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List => {
            let list = state.store.users().await?;
            if list.is_empty() {
                eprintln!("No users: add one with `users add NAME --role admin`.");
            }
            for u in list {
                println!("{}\t{}", u.username, u.role.as_str());
            }
            Ok(())
        }
        UsersCommand::Add { username, role } => {
            let password = read_password()?;
            ops::users::add(state, CLI, &username, password, role_of(role))
                .await
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
        UsersCommand::Passwd { username } => {
            let password = read_password()?;
            ops::users::set_password(state, CLI, &username, password)
                .await
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
        UsersCommand::Remove { username } => {
            ops::users::remove(state, CLI, &username)
                .await
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
    }
}

pub async fn tokens(state: &AppState, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List => {
            for t in state.store.tokens().await? {
                println!("{}\t{}", t.name, t.role.as_str());
            }
            Ok(())
        }
        TokensCommand::Add { name, role } => {
            let token = ops::users::add_token(state, CLI, &name, role_of(role))
                .await
                .map_err(usage)?;
            println!("token: {token}");
            Ok(())
        }
        TokensCommand::Remove { name } => {
            ops::users::remove_token(state, CLI, &name)
                .await
                .map_err(usage)?;
            println!("OK");
            Ok(())
        }
    }
}

fn role_of(role: RoleArg) -> Role {
    match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Viewer => Role::Viewer,
    }
}

/// One line from standard input (checked and hashed by `ops::users`).
fn read_password() -> anyhow::Result<String> {
    eprint!("Password: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < ops::users::MIN_PASSWORD {
        return Err(UsageError(format!(
            "the password needs {} characters or more",
            ops::users::MIN_PASSWORD
        ))
        .into());
    }
    Ok(password)
}
