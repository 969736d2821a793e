//! The license authority: catalog, pool arithmetic, authorization,
//! compliance, reports and the jobs that run on the clock.

pub mod catalog;
pub mod compliance;
pub mod jobs;
pub mod pool;
pub mod reports;
pub mod rules;

use crate::alerts::{Alert, CallHome};
use crate::clock::Clock;
use crate::config::CallHomeCategory;
use crate::device::wire::EntitlementRequest;
use crate::error::Result;
use crate::store::instances::{self, Instance};
use crate::store::usage;
use crate::syslog::{Severity, Syslog};
use catalog::Catalog;
use pool::Transition;
use rules::{EntitlementStatus, PoolStatus};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of an ENTITLEMENT or RENEW auth message.
#[derive(Debug)]
pub struct Authorization {
    pub overall: EntitlementStatus,
    pub entitlements: Vec<(String, u32, EntitlementStatus)>,
    pub authorized_at: i64,
    pub next_communication: i64,
    pub deadline: i64,
    pub transitions: Vec<Transition>,
}

/// Applies a device's full current demand and decides its status (DESIGN §6).
/// Runs inside the writer's transaction, so pools are exact under any
/// concurrency: requests are decided one after another against the counts
/// the previous ones left.
pub fn authorize(
    c: &Connection,
    catalog: &Catalog,
    instance: &Instance,
    requested: &[EntitlementRequest],
    now: i64,
) -> Result<Authorization> {
    // The same tag twice in one message adds up.
    let mut demand: BTreeMap<&str, u32> = BTreeMap::new();
    for e in requested {
        let count = demand.entry(e.tag.as_str()).or_default();
        *count = count.saturating_add(e.count);
    }
    let mut touched = BTreeSet::new();
    for (tag, count) in &demand {
        if catalog.tag(tag).is_none() {
            continue;
        }
        if *count == 0 {
            usage::remove(c, instance.id, tag)?;
        } else {
            usage::set(
                c,
                instance.id,
                instance.virtual_account_id,
                tag,
                i64::from(*count),
                now,
            )?;
        }
        touched.insert(tag.to_string());
    }
    for (tag, _, _) in usage::of_instance(c, instance.id)? {
        if !demand.contains_key(tag.as_str()) {
            usage::remove(c, instance.id, &tag)?;
            touched.insert(tag);
        }
    }
    let touched: Vec<String> = touched.into_iter().collect();
    let transitions = pool::evaluate(
        c,
        catalog,
        instance.virtual_account_id,
        &instance.virtual_account,
        &touched,
        now,
    )?;
    let mut entitlements = Vec::with_capacity(demand.len());
    for (tag, count) in demand {
        let status = if catalog.tag(tag).is_none() {
            EntitlementStatus::Invalid
        } else if count == 0 {
            EntitlementStatus::Authorized
        } else {
            let state = pool::state(c, catalog, instance.virtual_account_id, tag, now)?;
            rules::entitlement_status(state.status)
        };
        entitlements.push((tag.to_string(), count, status));
    }
    let overall = rules::overall(entitlements.iter().map(|e| e.2));
    let (next_communication, deadline) =
        instances::record_authorization(c, instance.id, overall.as_str(), now)?;
    Ok(Authorization {
        overall,
        entitlements,
        authorized_at: now,
        next_communication,
        deadline,
        transitions,
    })
}

/// Tells the operator about compliance changes, after they are committed:
/// the service log always, syslog when configured, and it wakes Call Home
/// delivery for the alerts the change queued in its transaction.
pub struct Notifier {
    syslog: Option<Syslog>,
    call_home: Option<CallHome>,
    clock: Clock,
}

impl Notifier {
    pub fn new(syslog: Option<Syslog>, call_home: Option<CallHome>, clock: Clock) -> Self {
        Self {
            syslog,
            call_home,
            clock,
        }
    }

    pub fn compliance(&self, transitions: &[Transition]) {
        for t in transitions {
            let (severity, text) = match t.to {
                PoolStatus::OutOfCompliance => {
                    let text = if t.deeper() {
                        format!(
                            "%SMART_LIC-4-OUT_OF_COMPLIANCE: {} in virtual account {} is further out of compliance: {} in use, {} available, short {} (was short {}); add licenses or release usage",
                            t.tag, t.virtual_account, t.in_use, t.available, t.shortfall(), t.previous_shortfall
                        )
                    } else {
                        format!(
                            "%SMART_LIC-4-OUT_OF_COMPLIANCE: {} in virtual account {} is out of compliance: {} in use, {} available, short {}; add licenses or release usage",
                            t.tag, t.virtual_account, t.in_use, t.available, t.shortfall()
                        )
                    };
                    tracing::warn!(virtual_account = %t.virtual_account, tag = %t.tag, in_use = t.in_use, available = t.available, "{text}");
                    (Severity::Warning, text)
                }
                PoolStatus::InCompliance => {
                    let text = format!(
                        "%SMART_LIC-5-IN_COMPLIANCE: {} in virtual account {} is back in compliance: {} in use, {} available",
                        t.tag, t.virtual_account, t.in_use, t.available
                    );
                    tracing::info!(virtual_account = %t.virtual_account, tag = %t.tag, "{text}");
                    (Severity::Notice, text)
                }
            };
            if let Some(syslog) = &self.syslog {
                syslog.send(severity, "COMPLIANCE", &text, self.clock.now());
            }
        }
        if transitions.iter().any(|t| t.to == PoolStatus::OutOfCompliance) {
            if let Some(call_home) = &self.call_home {
                call_home.wake();
            }
        }
    }

    /// Alerts were queued in a committed transaction: deliver them now.
    pub fn queued(&self) {
        if let Some(call_home) = &self.call_home {
            call_home.wake();
        }
    }

    /// A registration the satellite refused (e.g. an expired token). The
    /// refusal changes nothing, so the alert has a transaction of its own.
    pub fn registration_refused(&self, udi: &str, reason: &str) {
        if let Some(call_home) = &self.call_home {
            call_home.announce(&Alert::new(
                CallHomeCategory::Registration,
                "REGISTRATION",
                "Minor",
                format!("registration of {udi} refused: {reason}"),
                format!("show events (registration)\nProduct instance: {udi}\nReason: {reason}\n"),
                self.clock.unix(),
            ));
        }
    }

    /// The server started serving.
    pub fn started(&self, detail: String) {
        self.system("started", detail);
    }

    /// The server stops: the alert is delivered before the delivery thread ends.
    pub fn stopped(&self) {
        self.system("stopped", String::new());
        if let Some(call_home) = &self.call_home {
            call_home.stop();
        }
    }

    fn system(&self, what: &str, detail: String) {
        let text = format!("%SMART_LIC-6-SYSTEM: satellite {what}");
        tracing::info!("{text}");
        if let Some(syslog) = &self.syslog {
            syslog.send(Severity::Notice, "SYSTEM", &text, self.clock.now());
        }
        if let Some(call_home) = &self.call_home {
            call_home.announce(&Alert::new(
                CallHomeCategory::System,
                "SYSTEM",
                "Minor",
                format!("satellite {what}"),
                detail,
                self.clock.unix(),
            ));
        }
    }
}
