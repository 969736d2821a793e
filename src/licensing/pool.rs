//! Re-evaluating pools after anything that changes demand or availability,
//! and recording the compliance events that follow.

use super::catalog::Catalog;
use super::reports::{self, ReportKind};
use super::rules::{self, PoolStatus};
use crate::error::Result;
use crate::store::events::{NewEvent, Severity};
use crate::store::{events, licenses, usage};
use rusqlite::Connection;

/// A pool whose compliance changed.
#[derive(Debug, Clone)]
pub struct Transition {
    pub virtual_account: String,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
    pub to: PoolStatus,
}

/// The current state of one pool.
pub struct PoolState {
    pub in_use: i64,
    pub available: i64,
    pub status: PoolStatus,
}

pub fn state(
    c: &Connection,
    catalog: &Catalog,
    va_id: i64,
    tag: &str,
    now: i64,
) -> Result<PoolState> {
    let available = licenses::available(c, va_id, tag, now)?;
    let (in_use, _) = usage::in_use(c, va_id, tag)?;
    Ok(PoolState {
        in_use,
        available,
        status: rules::pool_status(catalog.is_tracking(tag), in_use, available),
    })
}

/// Re-evaluates the given pools of one virtual account; records an event for
/// each change and, when any pool fell short, a Compliance Warning Report.
pub fn evaluate(
    c: &Connection,
    catalog: &Catalog,
    va_id: i64,
    va_name: &str,
    tags: &[String],
    now: i64,
) -> Result<Vec<Transition>> {
    let mut transitions = Vec::new();
    for tag in tags {
        let current = state(c, catalog, va_id, tag, now)?;
        let (_, stored) = usage::in_use(c, va_id, tag)?;
        if PoolStatus::parse(&stored) == current.status {
            continue;
        }
        usage::set_pool_status(c, va_id, tag, current.status.as_str())?;
        transitions.push(Transition {
            virtual_account: va_name.to_string(),
            tag: tag.clone(),
            in_use: current.in_use,
            available: current.available,
            to: current.status,
        });
    }
    for t in &transitions {
        let (severity, message) = match t.to {
            PoolStatus::OutOfCompliance => (
                Severity::Major,
                format!(
                    "{} is out of compliance in virtual account {:?}: {} in use, {} available, short {}",
                    t.tag,
                    t.virtual_account,
                    t.in_use,
                    t.available,
                    t.in_use - t.available
                ),
            ),
            PoolStatus::InCompliance => (
                Severity::Info,
                format!(
                    "{} is back in compliance in virtual account {:?}: {} in use, {} available",
                    t.tag, t.virtual_account, t.in_use, t.available
                ),
            ),
        };
        events::record(
            c,
            now,
            NewEvent {
                kind: "compliance",
                severity,
                virtual_account: Some(&t.virtual_account),
                subject: Some(&t.tag),
                message,
            },
        )?;
    }
    if transitions
        .iter()
        .any(|t| t.to == PoolStatus::OutOfCompliance)
    {
        warn(c, catalog, va_id, va_name, now)?;
    }
    Ok(transitions)
}

/// Writes a Compliance Warning Report for one virtual account.
pub fn warn(c: &Connection, catalog: &Catalog, va_id: i64, va_name: &str, now: i64) -> Result<i64> {
    let account: String = c.query_row(
        "SELECT a.name FROM accounts a JOIN virtual_accounts va ON va.account_id = a.id WHERE va.id = ?1",
        [va_id],
        |r| r.get(0),
    )?;
    reports::generate(
        c,
        catalog,
        ReportKind::ComplianceWarning,
        &account,
        Some(va_name),
        now,
    )
}
