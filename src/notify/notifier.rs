//! After a change is committed: compliance moves to the service log and
//! syslog, and Call Home delivery woken for what the change queued.

use super::syslog::{Severity, Syslog};
use super::{Alert, CallHome};
use crate::clock::Clock;
use crate::config::CallHomeCategory;
use crate::domain::{PoolStatus, Transition};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Tells the operator about compliance changes, after they are committed:
/// the service log always, syslog when configured, and it wakes Call Home
/// delivery for the alerts the change queued in its transaction.
pub struct Notifier {
    syslog: Option<Syslog>,
    call_home: Option<CallHome>,
    clock: Clock,
    last_refusal: AtomicI64,
    refusals_suppressed: AtomicU64,
}

/// Seconds between two registration-refused alerts.
const REFUSALS_EVERY: i64 = 60;

impl Notifier {
    pub fn new(syslog: Option<Syslog>, call_home: Option<CallHome>, clock: Clock) -> Self {
        Self {
            syslog,
            call_home,
            clock,
            last_refusal: AtomicI64::new(i64::MIN / 2),
            refusals_suppressed: AtomicU64::new(0),
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
        if transitions
            .iter()
            .any(|t| t.to == PoolStatus::OutOfCompliance)
        {
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
    /// refusal changes nothing, so the alert is queued on its own; at most
    /// one a minute, so a device retrying a dead token (or a stranger
    /// guessing tokens) cannot flood the outbox or the operator.
    pub fn registration_refused(&self, udi: &str, reason: &str) {
        let Some(call_home) = &self.call_home else {
            return;
        };
        let now = self.clock.unix();
        let last = self.last_refusal.load(Ordering::Relaxed);
        if now - last < REFUSALS_EVERY
            || self
                .last_refusal
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.refusals_suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = self.refusals_suppressed.swap(0, Ordering::Relaxed);
        let more = if suppressed > 0 {
            format!(" ({suppressed} more refused before it in the last minutes)")
        } else {
            String::new()
        };
        call_home.announce(Alert::new(
            CallHomeCategory::Registration,
            "REGISTRATION",
            "Minor",
            format!("registration of {udi} refused: {reason}{more}"),
            format!("show license status (the device's view)\nProduct instance: {udi}\nRegistration: refused\nReason: {reason}\n"),
            now,
        ));
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
        // Not to syslog: the service's own log and its supervisor already
        // say when it starts and stops; syslog carries compliance.
        if let Some(call_home) = &self.call_home {
            call_home.announce(Alert::new(
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
