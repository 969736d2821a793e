//! Counters an operator can scrape at `/metrics` (Prometheus text format).
//! Counting is an atomic add on the hot path; rendering happens only on scrape.

use crate::store::Writer;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// One pool's numbers, read from the database at scrape time.
pub struct PoolGauge {
    pub virtual_account: String,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
    pub shortfall: i64,
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

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

    pub fn render(&self, writer: &Writer, pools: &[PoolGauge]) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "satellite_pool_in_use",
                "Units in use per virtual account and entitlement tag.",
                0,
            ),
            (
                "satellite_pool_available",
                "Units held per virtual account and entitlement tag.",
                1,
            ),
            (
                "satellite_pool_shortfall",
                "Units short per virtual account and entitlement tag.",
                2,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for pool in pools {
                let v = [pool.in_use, pool.available, pool.shortfall][value];
                let _ = writeln!(
                    out,
                    "{name}{{virtual_account=\"{}\",tag=\"{}\"}} {v}",
                    label(&pool.virtual_account),
                    label(&pool.tag)
                );
            }
        }
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
