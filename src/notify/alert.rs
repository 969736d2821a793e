//! An alert as it waits in the outbox and as profiles receive it.

use crate::config::CallHomeCategory;
use crate::error::Result;
use crate::store::outbox;
use crate::store::Db;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Alert {
    pub category: CallHomeCategory,
    /// e.g. `COMPLIANCE`
    pub message_type: String,
    /// `Major` or `Minor`, as the REST alerts say.
    pub severity: &'static str,
    /// One line.
    pub summary: String,
    /// What a full-text message attaches (the relevant `show` output).
    pub detail: String,
    pub at: OffsetDateTime,
}

impl Alert {
    pub fn new(
        category: CallHomeCategory,
        message_type: &str,
        severity: &'static str,
        summary: String,
        detail: String,
        now: i64,
    ) -> Self {
        Self {
            category,
            message_type: message_type.to_string(),
            severity,
            summary,
            detail,
            at: OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// Writes the alert to the outbox, in the caller's transaction.
    pub fn enqueue(&self, c: &Db) -> Result<i64> {
        outbox::enqueue(
            c,
            &outbox::NewAlert {
                category: category_name(self.category),
                message_type: &self.message_type,
                severity: self.severity,
                summary: &self.summary,
                detail: &self.detail,
            },
            self.at.unix_timestamp(),
        )
    }

    pub(super) fn from_waiting(w: &outbox::Waiting) -> Self {
        let category = match w.category.as_str() {
            "registration" => CallHomeCategory::Registration,
            "sync" => CallHomeCategory::Sync,
            "system" => CallHomeCategory::System,
            _ => CallHomeCategory::Compliance,
        };
        let severity = if w.severity == "Major" {
            "Major"
        } else {
            "Minor"
        };
        Self::new(
            category,
            &w.message_type,
            severity,
            w.summary.clone(),
            w.detail.clone(),
            w.created_at,
        )
    }
}

pub fn category_name(category: CallHomeCategory) -> &'static str {
    match category {
        CallHomeCategory::Compliance => "compliance",
        CallHomeCategory::Registration => "registration",
        CallHomeCategory::Sync => "sync",
        CallHomeCategory::System => "system",
    }
}

/// The sync code calls this when no successful sync happened for too long
/// (connected: since the last live sync; disconnected: since the last
/// imported entitlement bundle). Written in the caller's transaction.
pub fn sync_overdue(c: &Db, last_sync: Option<i64>, due: i64, now: i64) -> Result<i64> {
    let last = last_sync.map_or_else(|| "never".to_string(), crate::clock::rfc3339);
    Alert::new(
        CallHomeCategory::Sync,
        "SYNC",
        "Major",
        format!(
            "synchronization with the cloud is overdue since {}; last successful sync: {last}",
            crate::clock::rfc3339(due)
        ),
        format!(
            "show sync status\nLast successful sync: {last}\nDue: {}\nCheck sync.cloud_url and the network (connected mode) or carry a usage bundle to the cloud and import its answer (disconnected mode).\n",
            crate::clock::rfc3339(due)
        ),
        now,
    )
    .enqueue(c)
}
