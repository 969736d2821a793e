//! The event log, paged and filtered, within the caller's reach.

use super::{Action, Caller, Page, Result};
use crate::error::Error;
use crate::store::audit::{self, AuditedEvent, EventFilter};
use crate::store::Db;

pub struct EventQuery<'a> {
    pub kind: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub virtual_account: Option<&'a str>,
}

pub fn list(
    c: &Db,
    caller: &Caller,
    query: &EventQuery<'_>,
    page: Page,
) -> Result<Vec<AuditedEvent>> {
    caller.authorize(Action::Read, query.virtual_account)?;
    if let Some(severity) = query.severity {
        if !["info", "minor", "major"].contains(&severity) {
            return Err(Error::invalid(
                "severity",
                format!("{severity:?} is not a severity; use info, minor or major"),
            )
            .into());
        }
    }
    if let Some(kind) = query.kind {
        // A typo would otherwise list nothing, silently.
        let known = crate::inventory::EVENT_KINDS.contains(&kind)
            || !audit::events(
                c,
                &EventFilter {
                    kind: Some(kind),
                    ..Default::default()
                },
                1,
                0,
            )?
            .is_empty();
        if !known {
            return Err(Error::invalid(
                "kind",
                format!(
                    "{kind:?} is not an event kind; use one of {}",
                    crate::inventory::EVENT_KINDS.join(", ")
                ),
            )
            .into());
        }
    }
    let named = query.virtual_account.map(|va| vec![va.to_string()]);
    let scope = named.as_deref().or(caller.scope());
    let filter = EventFilter {
        kind: query.kind,
        severity: query.severity,
        since: query.since,
        until: query.until,
        virtual_accounts: scope,
    };
    Ok(audit::events(c, &filter, page.limit, page.offset)?)
}
