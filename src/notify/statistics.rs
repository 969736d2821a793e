//! `show call-home statistics`: what was delivered, failed, dropped, and
//! what still waits, per profile and message type.

use super::Alert;
use crate::config::CallHomeProfile;
use crate::error::Result;
use crate::store::outbox;
use crate::store::Db;
use serde::Serialize;
use std::collections::BTreeMap;

/// A row of `show call-home statistics`, as `satellite status` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    pub profile: String,
    pub message_type: String,
    pub success: i64,
    pub failed: i64,
    pub inqueue: i64,
    pub dropped: i64,
    pub last_sent: Option<String>,
}

/// The counts so far, and per configured profile what still waits for it
/// in the outbox (Inqueue).
pub fn statistics(c: &Db, profiles: &[CallHomeProfile]) -> Result<Vec<Statistics>> {
    let mut rows: BTreeMap<(String, String), Statistics> = BTreeMap::new();
    let blank = |profile: &str, message_type: &str| Statistics {
        profile: profile.to_string(),
        message_type: message_type.to_string(),
        success: 0,
        failed: 0,
        inqueue: 0,
        dropped: 0,
        last_sent: None,
    };
    for (profile, message_type, success, failed, dropped, last_sent) in outbox::counted(c)? {
        let mut row = blank(&profile, &message_type);
        row.success = success;
        row.failed = failed;
        row.dropped = dropped;
        row.last_sent = last_sent.map(crate::clock::rfc3339);
        rows.insert((profile, message_type), row);
    }
    for waiting in outbox::all(c)? {
        let category = Alert::from_waiting(&waiting).category;
        for profile in profiles.iter().filter(|p| {
            (p.categories.is_empty() || p.categories.contains(&category))
                && !waiting.done.contains(&p.name)
        }) {
            rows.entry((profile.name.clone(), waiting.message_type.clone()))
                .or_insert_with(|| blank(&profile.name, &waiting.message_type))
                .inqueue += 1;
        }
    }
    Ok(rows.into_values().collect())
}
