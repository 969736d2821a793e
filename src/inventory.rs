//! Operator operations on the inventory: virtual accounts, registration
//! tokens, product instances. Each runs inside the caller's transaction, so
//! the CLI and the REST API share them and a failure changes nothing.

use crate::clock::rfc3339;
use crate::domain::{check_name, TokenSecret, TokenTerms, Udi};
use crate::error::{Error, Result};
use crate::store::events::{NewEvent, Severity};
use crate::store::instances::Instance;
use crate::store::{accounts, certificates, events, instances, tokens};
use rusqlite::Connection;
use serde::Serialize;

/// `token create --json`: the fields scripts rely on, then the terms.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub token: String,
    pub virtual_account: String,
    pub expires_at: String,
    pub description: String,
    pub max_uses: Option<u32>,
    pub export_controlled: bool,
}

pub fn create_virtual_account(
    c: &Connection,
    account: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<accounts::VirtualAccount> {
    check_name("virtual account name", name).map_err(|r| Error::invalid("name", r))?;
    let va = accounts::create_virtual_account(c, account, name, description, now)?;
    events::record(
        c,
        now,
        NewEvent {
            kind: "virtual_account",
            severity: Severity::Info,
            virtual_account: Some(name),
            subject: None,
            message: format!("virtual account {name:?} created"),
        },
    )?;
    Ok(va)
}

pub fn create_token(
    c: &Connection,
    account: &str,
    virtual_account: &str,
    terms: &TokenTerms,
    now: i64,
) -> Result<CreatedToken> {
    terms.check().map_err(|r| Error::invalid("token", r))?;
    let va = accounts::require(c, account, virtual_account, now)?;
    let secret = TokenSecret::generate()?;
    tokens::insert(c, va.id, &secret, terms, now)?;
    let expires_at = now + i64::from(terms.days) * 86_400;
    events::record(
        c,
        now,
        NewEvent {
            kind: "token",
            severity: Severity::Info,
            virtual_account: Some(&va.name),
            subject: secret.prefix(),
            message: format!(
                "registration token {}… created, valid {} days{}",
                secret.prefix().unwrap_or(""),
                terms.days,
                terms
                    .max_uses
                    .map(|n| format!(", at most {n} uses"))
                    .unwrap_or_default()
            ),
        },
    )?;
    Ok(CreatedToken {
        token: secret.as_str().to_string(),
        virtual_account: va.name,
        expires_at: rfc3339(expires_at),
        description: terms.description.clone(),
        max_uses: terms.max_uses,
        export_controlled: terms.export_controlled,
    })
}

/// Revokes a token. Devices it already registered stay registered.
pub fn revoke_token(c: &Connection, account: &str, token: &str, now: i64) -> Result<String> {
    let (prefix, va) = tokens::revoke(c, account, token, now)?;
    events::record(
        c,
        now,
        NewEvent {
            kind: "token",
            severity: Severity::Info,
            virtual_account: Some(&va),
            subject: Some(&prefix),
            message: format!(
                "registration token {prefix}… revoked; devices it registered stay registered"
            ),
        },
    )?;
    Ok(prefix)
}

/// Finds an instance by instance id, `PID:SN` or `PID:x,SN:y`.
pub fn find_instance(c: &Connection, key: &str) -> Result<Instance> {
    let key = key.trim();
    let by_udi = parse_udi(key)
        .map(|udi| instances::find_by_udi(c, &udi.pid, &udi.sn))
        .transpose()?
        .flatten();
    match by_udi {
        Some(found) => Ok(found),
        None => instances::find_by_instance_id(c, key)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no product instance {key:?}; give its instance id or UDI (PID:SN), see `satellite instance list`"
            ))
        }),
    }
}

fn parse_udi(key: &str) -> Option<Udi> {
    if let Some(rest) = key.strip_prefix("PID:") {
        let (pid, sn) = rest.split_once(",SN:")?;
        return Some(Udi {
            pid: pid.into(),
            sn: sn.into(),
        });
    }
    let (pid, sn) = key.split_once(':')?;
    Some(Udi {
        pid: pid.into(),
        sn: sn.into(),
    })
}

/// Removes an instance: its certificates are revoked and its licenses released.
pub fn remove_instance(c: &Connection, key: &str, now: i64) -> Result<Instance> {
    let instance = find_instance(c, key)?;
    certificates::revoke_for_instance(c, instance.id, now, "removed by an operator")?;
    instances::delete(c, instance.id)?;
    let udi = format!("PID:{},SN:{}", instance.pid, instance.sn);
    events::record(
        c,
        now,
        NewEvent {
            kind: "deregistration",
            severity: Severity::Info,
            virtual_account: Some(&instance.virtual_account),
            subject: Some(&udi),
            message: format!(
                "product instance {udi} removed by an operator; its licenses were released"
            ),
        },
    )?;
    Ok(instance)
}
