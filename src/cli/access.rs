//! `user` and `client`: who may use the admin listener. The command line
//! runs as the local administrator through the same operations as the API.

use super::error::CliError;
use super::output::{print_json, show};
use super::table::Row;
use super::{ClientCommand, Command, UserCommand};
use crate::clock::Clock;
use crate::config::Config;
use crate::ops::clients::ClientView;
use crate::ops::users::{NewUser, UserView};
use crate::ops::{self, Caller, OpsError, Page};
use std::io::{BufRead, IsTerminal, Write};

impl From<OpsError> for CliError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Service(e) => CliError::Service(e),
            other => CliError::Other(other.to_string()),
        }
    }
}

/// A password from standard input (scripts: `echo "$PW" | satellite user
/// add ...`), or typed twice at a prompt with echo off.
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| {
            CliError::Other(format!("cannot read the password from standard input: {e}"))
        })?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = prompt("Password: ")?;
    let second = prompt("Repeat the password: ")?;
    if first != second {
        return Err(CliError::Other(
            "the two passwords differ; nothing was changed".into(),
        ));
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<String, CliError> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    echo(true);
    eprintln!();
    read.map_err(|e| CliError::Other(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn run(command: Command, config: &Config, clock: &Clock) -> Result<(), CliError> {
    let now = clock.unix();
    let caller = Caller::local_admin();
    let account = &config.account;
    match command {
        Command::User(UserCommand::Add {
            name,
            role,
            va,
            json,
        }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let password = read_password()?;
            let hash = ops::users::hash_new_password(&password)?;
            let user = conn.change(&caller, |c| {
                ops::users::add(
                    c,
                    &caller,
                    account,
                    &NewUser {
                        username: &name,
                        password_hash: &hash,
                        role: role.into(),
                        virtual_accounts: &va,
                    },
                    now,
                )
            })?;
            if json {
                return print_json(&user);
            }
            println!("user {:?} added with role {}", user.username, user.role);
            Ok(())
        }
        Command::User(UserCommand::List { json }) => {
            let conn = ops::Local::open(config, clock)?;
            let users = conn.read(|c| ops::users::list(c, &caller, Page::ALL))?;
            show(&users, json)
        }
        Command::User(UserCommand::Remove { name, json }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let user = conn.change(&caller, |c| ops::users::remove(c, &caller, &name, now))?;
            if json {
                return print_json(&user);
            }
            println!("user {:?} removed; its sessions ended", user.username);
            Ok(())
        }
        Command::User(UserCommand::Passwd { name, json }) => {
            let mut conn = ops::Local::open(config, clock)?;
            // Check the user exists before asking for a password.
            conn.read(|c| ops::users::show(c, &caller, &name))?;
            let password = read_password()?;
            let hash = ops::users::hash_new_password(&password)?;
            let user = conn.change(&caller, |c| {
                ops::users::set_password(c, &caller, &name, &hash, now)
            })?;
            if json {
                return print_json(&user);
            }
            println!(
                "password of {:?} changed; its sessions ended",
                user.username
            );
            Ok(())
        }
        Command::Client(ClientCommand::Add {
            name,
            role,
            va,
            json,
        }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let created = conn.change(&caller, |c| {
                ops::clients::add(c, &caller, account, &name, role.into(), &va, now)
            })?;
            if json {
                return print_json(&created);
            }
            println!("client_id:     {}", created.client_id);
            println!("client_secret: {}", created.client_secret);
            eprintln!(
                "\nthe secret is shown only now; get a token with POST /backend/oauth/token \
                 {{\"grant_type\":\"client_credentials\",\"client_id\",\"client_secret\"}}"
            );
            Ok(())
        }
        Command::Client(ClientCommand::List { json }) => {
            let conn = ops::Local::open(config, clock)?;
            let clients = conn.read(|c| ops::clients::list(c, &caller, Page::ALL))?;
            show(&clients, json)
        }
        Command::Client(ClientCommand::Revoke { client, json }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let revoked =
                conn.change(&caller, |c| ops::clients::revoke(c, &caller, &client, now))?;
            if json {
                return print_json(&revoked);
            }
            println!(
                "client {:?} ({}) revoked; its tokens ended",
                revoked.name, revoked.client_id
            );
            Ok(())
        }
        other => Err(CliError::Other(format!("not an access command: {other:?}"))),
    }
}

impl Row for UserView {
    const HEADERS: &'static [&'static str] = &["User", "Role", "Virtual Accounts", "Created"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.username.clone(),
            self.role.clone(),
            scope(&self.virtual_accounts),
            self.created_at.clone(),
        ]
    }
}

impl Row for ClientView {
    const HEADERS: &'static [&'static str] = &[
        "Client",
        "Client ID",
        "Role",
        "Virtual Accounts",
        "Status",
        "Created",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.client_id.clone(),
            self.role.clone(),
            scope(&self.virtual_accounts),
            self.status.to_string(),
            self.created_at.clone(),
        ]
    }
}

fn scope(vas: &[String]) -> String {
    if vas.is_empty() {
        "(all)".into()
    } else {
        vas.join(", ")
    }
}

impl Row for crate::ops::views::AuditedEvent {
    const HEADERS: &'static [&'static str] = &[
        "Time",
        "Kind",
        "Severity",
        "Virtual Account",
        "By",
        "Message",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.at.clone(),
            self.kind.clone(),
            self.severity.clone(),
            self.virtual_account.clone().unwrap_or_default(),
            self.actor.clone().unwrap_or_default(),
            self.message.clone(),
        ]
    }
}
