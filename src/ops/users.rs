//! Users: people who log in with a password. Admin only.

use super::{Action, Caller, OpsError, Page, Result, Role};
use crate::clock::rfc3339;
use crate::domain::check_name;
use crate::error::Error;
use crate::store::events::{self, NewEvent, Severity};
use crate::store::Db;
use crate::store::{accounts, users};
use serde::Serialize;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// A user as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub username: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
    pub created_at: String,
}

impl From<users::User> for UserView {
    fn from(u: users::User) -> Self {
        Self {
            username: u.username,
            role: u.role,
            virtual_accounts: u.virtual_accounts,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// Hashes a new password; slow on purpose, so callers run it off the
/// database writer and the async workers.
pub fn hash_new_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        )
        .into());
    }
    Ok(crate::pki::password::hash(password).map_err(Error::from)?)
}

/// Checks role and scope together: an admin has no list of virtual
/// accounts, the other roles need at least one that exists.
pub(crate) fn check_scope(
    c: &Db,
    account: &str,
    role: Role,
    virtual_accounts: &[String],
    now: i64,
) -> Result<Vec<String>> {
    if role == Role::Admin {
        if !virtual_accounts.is_empty() {
            return Err(Error::invalid(
                "va",
                "an admin reaches every virtual account: give it none",
            )
            .into());
        }
        return Ok(Vec::new());
    }
    if virtual_accounts.is_empty() {
        return Err(Error::invalid(
            "va",
            format!("a {} needs at least one virtual account", role.as_str()),
        )
        .into());
    }
    let mut names = Vec::new();
    for va in virtual_accounts {
        names.push(accounts::require(c, account, va, now)?.name);
    }
    names.sort();
    names.dedup();
    Ok(names)
}

pub struct NewUser<'a> {
    pub username: &'a str,
    /// From `hash_new_password`.
    pub password_hash: &'a str,
    pub role: Role,
    pub virtual_accounts: &'a [String],
}

pub fn add(
    c: &Db,
    caller: &Caller,
    account: &str,
    user: &NewUser<'_>,
    now: i64,
) -> Result<UserView> {
    caller.authorize(Action::Administer, None)?;
    check_name("user name", user.username).map_err(|r| Error::invalid("username", r))?;
    let vas = check_scope(c, account, user.role, user.virtual_accounts, now)?;
    users::insert(
        c,
        user.username,
        user.password_hash,
        user.role.as_str(),
        &vas,
        now,
    )?;
    record(
        c,
        now,
        user.username,
        format!(
            "user {:?} added with role {}{}",
            user.username,
            user.role.as_str(),
            scope_text(&vas)
        ),
    )?;
    found(c, user.username)
}

fn scope_text(vas: &[String]) -> String {
    if vas.is_empty() {
        String::new()
    } else {
        format!(" on {}", vas.join(", "))
    }
}

fn record(c: &Db, now: i64, subject: &str, message: String) -> Result<()> {
    events::record(
        c,
        now,
        NewEvent {
            kind: "user",
            severity: Severity::Info,
            virtual_account: None,
            subject: Some(subject),
            message,
        },
    )?;
    Ok(())
}

fn found(c: &Db, username: &str) -> Result<UserView> {
    users::find(c, username)?
        .map(UserView::from)
        .ok_or_else(|| not_found(username))
}

fn not_found(username: &str) -> OpsError {
    Error::NotFound(format!("no user {username:?}; see `satellite user list`")).into()
}

pub fn list(c: &Db, caller: &Caller, page: Page) -> Result<Vec<UserView>> {
    caller.authorize(Action::Administer, None)?;
    Ok(users::list(c, page.limit, page.offset)?
        .into_iter()
        .map(UserView::from)
        .collect())
}

pub fn show(c: &Db, caller: &Caller, username: &str) -> Result<UserView> {
    caller.authorize(Action::Administer, None)?;
    found(c, username)
}

/// Removes a user and ends its sessions; the last admin stays.
pub fn remove(c: &Db, caller: &Caller, username: &str, now: i64) -> Result<UserView> {
    caller.authorize(Action::Administer, None)?;
    let user = found(c, username)?;
    if user.role == Role::Admin.as_str() && users::count_admins(c)? <= 1 {
        return Err(Error::Conflict(format!(
            "{username:?} is the last admin; add another admin before removing it"
        ))
        .into());
    }
    users::delete(c, username)?;
    record(c, now, username, format!("user {username:?} removed"))?;
    Ok(user)
}

/// Sets a new password (hashed by `hash_new_password`) and ends the
/// user's sessions.
pub fn set_password(
    c: &Db,
    caller: &Caller,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<UserView> {
    if !is_self(caller, username) {
        caller.authorize(Action::Administer, None)?;
    }
    let (user, _) = users::find_with_hash(c, username)?.ok_or_else(|| not_found(username))?;
    users::set_password(c, user.id, password_hash)?;
    record(
        c,
        now,
        username,
        format!("password of user {username:?} changed; its sessions ended"),
    )?;
    Ok(UserView::from(user))
}

/// Whether the caller is the user `username` (a person changing their own
/// password; an API client never is).
pub fn is_self(caller: &Caller, username: &str) -> bool {
    caller.name.strip_prefix("user:") == Some(username)
}
