//! Counters an operator can scrape at `/metrics` (Prometheus text format).
//! Counting is an atomic add on the hot path; rendering happens only on scrape.

use crate::store::Writer;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// (message type, outcome code) → count; outcome is `ok` or the error code.
    device_messages: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    pub fn count_device_message(&self, message_type: &'static str, outcome: &'static str) {
        if let Ok(mut map) = self.device_messages.lock() {
            *map.entry((message_type, outcome)).or_default() += 1;
        }
    }

    pub fn render(&self, writer: &Writer) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP satellite_device_messages_total Device API messages by type and outcome.\n",
        );
        out.push_str("# TYPE satellite_device_messages_total counter\n");
        if let Ok(map) = self.device_messages.lock() {
            for ((message_type, outcome), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "satellite_device_messages_total{{type=\"{message_type}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let stats = writer.stats();
        for (name, help, value) in [
            (
                "satellite_db_commits_total",
                "Group commits to the database.",
                &stats.commits,
            ),
            (
                "satellite_db_writes_total",
                "Writes carried by those commits.",
                &stats.writes,
            ),
            (
                "satellite_db_failed_commits_total",
                "Group commits that failed (their writes were answered 503).",
                &stats.failed_commits,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}
