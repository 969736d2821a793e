//! API clients: client-credentials identities for scripts and monitoring.
//! Admin only. The secret is shown once, at creation.

use super::users::check_scope;
use super::{Action, Caller, OpsError, Page, Result, Role};
use crate::clock::rfc3339;
use crate::domain::check_name;
use crate::error::Error;
use crate::store::clients::{self, NewClient};
use crate::store::events::{self, NewEvent, Severity};
use crate::store::Db;
use base64::Engine;
use serde::Serialize;

/// `client add --json`: the contract's fields.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    pub name: String,
    pub client_id: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
    pub created_at: String,
    pub status: &'static str,
}

impl From<clients::Client> for ClientView {
    fn from(k: clients::Client) -> Self {
        Self {
            name: k.name,
            client_id: k.client_id,
            role: k.role,
            virtual_accounts: k.virtual_accounts,
            created_at: rfc3339(k.created_at),
            status: if k.revoked_at.is_some() {
                "REVOKED"
            } else {
                "ACTIVE"
            },
        }
    }
}

fn random(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    crate::pki::fill_random(&mut buf).map_err(Error::from)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// What is kept of a client secret.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    crate::pki::sha256(secret.as_bytes())
}

pub fn add(
    c: &Db,
    caller: &Caller,
    account: &str,
    name: &str,
    role: Role,
    virtual_accounts: &[String],
    now: i64,
) -> Result<CreatedClient> {
    caller.authorize(Action::Administer, None)?;
    check_name("client name", name).map_err(|r| Error::invalid("name", r))?;
    let vas = check_scope(c, account, role, virtual_accounts, now)?;
    let client_id = format!("sat-{}", random(12)?);
    let client_secret = random(32)?;
    clients::insert(
        c,
        &NewClient {
            name,
            client_id: &client_id,
            secret_hash: &secret_hash(&client_secret),
            role: role.as_str(),
            virtual_accounts: &vas,
        },
        now,
    )?;
    record(
        c,
        now,
        name,
        format!(
            "API client {name:?} ({client_id}) added with role {}",
            role.as_str()
        ),
    )?;
    Ok(CreatedClient {
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        virtual_accounts: vas.clone(),
    })
}

fn record(c: &Db, now: i64, subject: &str, message: String) -> Result<()> {
    events::record(
        c,
        now,
        NewEvent {
            kind: "client",
            severity: Severity::Info,
            virtual_account: None,
            subject: Some(subject),
            message,
        },
    )?;
    Ok(())
}

pub fn list(c: &Db, caller: &Caller, page: Page) -> Result<Vec<ClientView>> {
    caller.authorize(Action::Administer, None)?;
    Ok(clients::list(c, page.limit, page.offset)?
        .into_iter()
        .map(ClientView::from)
        .collect())
}

/// Revokes a client (by name or client id); its bearer tokens die with it.
pub fn revoke(c: &Db, caller: &Caller, key: &str, now: i64) -> Result<ClientView> {
    caller.authorize(Action::Administer, None)?;
    let client = clients::find(c, key)?.ok_or_else(|| -> OpsError {
        Error::NotFound(format!(
            "no API client {key:?}; see `satellite client list`"
        ))
        .into()
    })?;
    clients::revoke(c, client.id, now)?;
    record(
        c,
        now,
        &client.name,
        format!(
            "API client {:?} ({}) revoked; its tokens ended",
            client.name, client.client_id
        ),
    )?;
    let revoked = clients::find_by_id(c, client.id)?
        .ok_or_else(|| Error::NotFound("the client vanished".into()))?;
    Ok(ClientView::from(revoked))
}
