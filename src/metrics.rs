//! Counters an operator can scrape at `/metrics` (Prometheus text format).
//! Counting is an atomic add on the hot path; rendering happens only on scrape.

use crate::store::Store;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

tokio::task_local! {
    /// When the device request being handled arrived: the HTTP layer sets it
    /// around each request, so the handler can time the message it parsed.
    pub static REQUEST_STARTED: Instant;
}

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Instance statuses always reported (0 when none), so an alert on
/// AUTHORIZATION_EXPIRED has a series to watch before the first one.
const INSTANCE_STATUSES: [&str; 6] = [
    "REGISTERED",
    "AUTHORIZED",
    "OUT_OF_COMPLIANCE",
    "INVALID",
    "AUTHORIZATION_EXPIRED",
    "GRACE_PERIOD_EXPIRED",
];

#[derive(Default, Clone)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is above every bound.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Product instances per virtual account and status, read at scrape time.
pub struct InstanceGauge {
    pub virtual_account: String,
    pub status: String,
    pub count: i64,
}

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
    /// Message type → time from request arrival to answer.
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl Metrics {
    pub fn count_device_message(&self, message_type: &'static str, outcome: &'static str) {
        if let Ok(mut map) = self.device_messages.lock() {
            *map.entry((message_type, outcome)).or_default() += 1;
        }
        if let Ok(started) = REQUEST_STARTED.try_with(|t| *t) {
            self.observe_latency(message_type, started.elapsed());
        }
    }

    pub fn observe_latency(&self, message_type: &'static str, elapsed: Duration) {
        if let Ok(mut map) = self.latency.lock() {
            map.entry(message_type).or_default().observe(elapsed);
        }
    }

    pub fn render(
        &self,
        store: &Store,
        pools: &[PoolGauge],
        instances: &[InstanceGauge],
    ) -> String {
        let writer = store.writer();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP satellite_build_info The running build.\n# TYPE satellite_build_info gauge\n\
             satellite_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let leadership = store.leadership();
        let _ = writeln!(
            out,
            "# HELP satellite_node_info This node: its storage backend, and its role (a pair on \
             one PostgreSQL database has one active node; the embedded database, one node).\n\
             # TYPE satellite_node_info gauge\n\
             satellite_node_info{{backend=\"{}\",role=\"{}\"}} 1\n\
             # HELP satellite_node_role_seconds How long this node has had its role.\n\
             # TYPE satellite_node_role_seconds gauge\n\
             satellite_node_role_seconds {:.3}",
            store.location().backend(),
            leadership.role().as_str(),
            leadership.held_for().as_secs_f64()
        );
        out.push_str(
            "# HELP satellite_product_instances Product instances per virtual account and status.\n\
             # TYPE satellite_product_instances gauge\n",
        );
        let mut by_va: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
        for gauge in instances {
            let statuses = by_va
                .entry(&gauge.virtual_account)
                .or_insert_with(|| INSTANCE_STATUSES.iter().map(|s| (*s, 0)).collect());
            *statuses.entry(&gauge.status).or_default() += gauge.count;
        }
        for (va, statuses) in &by_va {
            for (status, n) in statuses {
                let _ = writeln!(
                    out,
                    "satellite_product_instances{{virtual_account=\"{}\",status=\"{}\"}} {n}",
                    label(va),
                    label(status)
                );
            }
        }
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
        self.render_latency(&mut out);
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
        for (name, help, value) in [
            (
                "satellite_db_longest_group_seconds",
                "The longest a group commit held the write lock since start (BEGIN to the end of COMMIT).",
                &stats.longest_hold_us,
            ),
            (
                "satellite_db_longest_commit_seconds",
                "The longest COMMIT (its fsync) since start.",
                &stats.longest_commit_us,
            ),
            (
                "satellite_db_longest_checkpoint_seconds",
                "The longest the writer spent finishing a WAL checkpoint between two groups since start.",
                &stats.longest_checkpoint_us,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {:.6}",
                value.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        out
    }

    fn render_latency(&self, out: &mut String) {
        let name = "satellite_device_message_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a device request's arrival to its answer, by message type.\n\
             # TYPE {name} histogram"
        );
        let Ok(map) = self.latency.lock() else {
            return;
        };
        for (message_type, h) in map.iter() {
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{type=\"{message_type}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{type=\"{message_type}\",le=\"+Inf\"}} {}\n\
                 {name}_sum{{type=\"{message_type}\"}} {}\n{name}_count{{type=\"{message_type}\"}} {}",
                h.count, h.sum, h.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_and_end_at_the_count() {
        let metrics = Metrics::default();
        metrics.observe_latency("ENTITLEMENT", Duration::from_micros(500));
        metrics.observe_latency("ENTITLEMENT", Duration::from_millis(30));
        metrics.observe_latency("ENTITLEMENT", Duration::from_secs(60));
        let mut out = String::new();
        metrics.render_latency(&mut out);
        let line = |le: &str| {
            out.lines()
                .find(|l| l.contains(&format!("le=\"{le}\"")))
                .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
        };
        assert_eq!(line("0.001").as_deref(), Some("1"), "{out}");
        assert_eq!(line("0.05").as_deref(), Some("2"), "{out}");
        assert_eq!(line("10").as_deref(), Some("2"), "{out}");
        assert_eq!(line("+Inf").as_deref(), Some("3"), "{out}");
        assert!(
            out.contains("satellite_device_message_duration_seconds_count{type=\"ENTITLEMENT\"} 3")
        );
    }
}
