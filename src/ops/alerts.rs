//! Alerts in the shape of Cisco's on-prem manager: the pools that are short
//! now (Major) and the warnings of the event log's last days.

use super::licenses::requested;
use super::{Caller, Page, Result};
use crate::inventory;
use crate::licensing::catalog::Catalog;
use crate::store::audit::{self, EventFilter};
use crate::store::Db;
use serde::Serialize;

/// Events this recent are alerts.
pub const RECENT_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub message_type: String,
    /// `Minor` or `Major`.
    pub severity: &'static str,
    /// What raised it: the license (entitlement tag) or the event subject.
    pub source: String,
    pub virtual_account: Option<String>,
    pub message: String,
    pub timestamp: String,
}

pub fn list(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    virtual_accounts: &[String],
    page: Page,
    now: i64,
) -> Result<Vec<Alert>> {
    let named = requested(caller, virtual_accounts)?;
    let wanted = |va: &str| caller.reaches(va) && named.as_ref().is_none_or(|n| n.contains(&va));
    // When each pool last changed compliance (newest first): the time a
    // shortfall alert carries, so it is the same on every poll.
    let changes = audit::events(
        c,
        &EventFilter {
            kind: Some("compliance"),
            severity: None,
            since: None,
            until: None,
            virtual_accounts: None,
        },
        super::MAX_PAGE,
        0,
    )?;
    let since = |va: &str, tag: &str| {
        changes
            .iter()
            .find(|e| e.virtual_account.as_deref() == Some(va) && e.subject.as_deref() == Some(tag))
            .map(|e| e.at.clone())
            .unwrap_or_else(|| crate::clock::rfc3339(now))
    };
    let mut alerts: Vec<Alert> = inventory::compliance_rows(c, catalog, account, None, now)?
        .into_iter()
        .filter(|r| r.shortfall > 0 && wanted(&r.virtual_account))
        .map(|r| Alert {
            message_type: "Insufficient Licenses".into(),
            severity: "Major",
            message: format!(
                "{} is short {} of {}: {} in use, {} available",
                r.virtual_account, r.shortfall, r.tag, r.in_use, r.available
            ),
            timestamp: since(&r.virtual_account, &r.tag),
            source: r.tag,
            virtual_account: Some(r.virtual_account),
        })
        .collect();
    // Events without a virtual account are the satellite's own (clock,
    // sync, system): only an admin sees them unless VAs were named.
    let scope: Option<Vec<String>> = match (&named, caller.scope()) {
        (Some(n), _) => Some(n.iter().map(|s| s.to_string()).collect()),
        (None, Some(s)) => Some(s.to_vec()),
        (None, None) => None,
    };
    for severity in ["major", "minor"] {
        let filter = EventFilter {
            kind: None,
            severity: Some(severity),
            since: Some(now - RECENT_DAYS * 86_400),
            until: None,
            virtual_accounts: scope.as_deref(),
        };
        for e in audit::events(c, &filter, super::MAX_PAGE, 0)? {
            // A pool's compliance is the shortfall alert above while it
            // lasts (one alert per shortfall, gone when it is).
            if e.kind == "compliance" {
                continue;
            }
            alerts.push(Alert {
                message_type: message_type(&e.kind),
                severity: if severity == "major" {
                    "Major"
                } else {
                    "Minor"
                },
                source: e.subject.clone().unwrap_or_else(|| e.kind.clone()),
                virtual_account: e.virtual_account,
                message: e.message,
                timestamp: e.at,
            });
        }
    }
    Ok(page.of(alerts))
}

/// Cisco-style words for our event kinds.
fn message_type(kind: &str) -> String {
    match kind {
        "compliance" => "License Compliance".into(),
        "license_transfer" => "License Transfer".into(),
        "authorization_expired" => "Authorization Expired".into(),
        "grace_period_expired" => "Grace Period Expired".into(),
        "sync" => "Synchronization".into(),
        "call_home" => "Call Home".into(),
        other => other
            .split('_')
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|f| f.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `show call-home statistics`: per profile and message type, what was
/// delivered, failed, dropped, and what still waits.
pub fn call_home_statistics(
    c: &Db,
    caller: &Caller,
    profiles: &[crate::config::CallHomeProfile],
) -> Result<Vec<crate::notify::Statistics>> {
    caller.authorize(super::Action::Read, None)?;
    Ok(crate::notify::statistics(c, profiles)?)
}
