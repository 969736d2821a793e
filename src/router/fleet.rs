//! `satellite-router fleet`: many routers in one process, for load tests.
//! Each router has its own key and UDI, registers, then sends its
//! ENTITLEMENT messages; worker threads share the routers.

use super::agent::{Agent, AuthKind};
use super::cli::FleetArgs;
use super::client::{HttpLink, Identity, Link, SendError};
use super::identity;
use super::state::{Endpoint, State, Udi};
use super::stats::{MsgType, Stats};
use crate::clock::Clock;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Counts failures by message type and code, and times every exchange.
struct Measured {
    inner: HttpLink,
    failures: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    /// The same times by message type.
    by_type: BTreeMap<String, Vec<Duration>>,
}

impl Link for Measured {
    fn send(&mut self, identity: Option<&Identity>, message: &Value) -> Result<Value, SendError> {
        let started = Instant::now();
        let result = self.inner.send(identity, message);
        let elapsed = started.elapsed();
        self.latencies.push(elapsed);
        let kind = message.get("type").and_then(Value::as_str).unwrap_or("?");
        self.by_type
            .entry(kind.to_string())
            .or_default()
            .push(elapsed);
        if let Err(e) = &result {
            *self
                .failures
                .entry(format!("{kind} {}", e.code()))
                .or_default() += 1;
        }
        result
    }
}

#[derive(Default)]
pub struct Summary {
    pub routers: u32,
    pub registered: u32,
    pub stats: Stats,
    pub failures: BTreeMap<String, u64>,
    pub latencies: Vec<Duration>,
    /// Latencies by message type.
    pub by_type: BTreeMap<String, Vec<Duration>>,
    pub elapsed: Duration,
}

impl Summary {
    fn merge(&mut self, other: Summary) {
        self.routers += other.routers;
        self.registered += other.registered;
        self.stats.add(&other.stats);
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.latencies.extend(other.latencies);
        for (kind, times) in other.by_type {
            self.by_type.entry(kind).or_default().extend(times);
        }
    }

    pub fn failed(&self) -> u64 {
        MsgType::ALL.iter().map(|k| self.stats.get(*k).failed).sum()
    }

    fn messages(&self) -> u64 {
        MsgType::ALL
            .iter()
            .map(|k| self.stats.get(*k).success + self.stats.get(*k).failed)
            .sum()
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }

    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "registered: {} of {} routers\n\n",
            self.registered, self.routers
        );
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>8}",
            "Msg Subtype", "Success", "Failed"
        );
        for kind in MsgType::ALL {
            let c = self.stats.get(kind);
            if c.success + c.failed > 0 {
                let _ = writeln!(out, "{:<16} {:>8} {:>8}", kind.wire(), c.success, c.failed);
            }
        }
        out.push_str("\nfailures by code:");
        if self.failures.is_empty() {
            out.push_str(" none\n");
        } else {
            out.push('\n');
            for (code, n) in &self.failures {
                let _ = writeln!(out, "  {code}: {n}");
            }
        }
        let _ = writeln!(
            out,
            "\nelapsed: {:.3} s; {} messages, {:.1} messages/s, {:.1} registrations/s",
            secs,
            self.messages(),
            self.messages() as f64 / secs,
            f64::from(self.registered) / secs
        );
        let _ = writeln!(
            out,
            "latency (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(1.0)
        );
        out
    }

    pub fn to_json(&self) -> Value {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        json!({
            "routers": self.routers,
            "registered": self.registered,
            "messages": self.messages(),
            "failed": self.failed(),
            "statistics": self.stats,
            "failures": self.failures,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "messages_per_second": self.messages() as f64 / secs,
            "registrations_per_second": f64::from(self.registered) / secs,
            "latency_ms": {"p50": self.percentile(0.5), "p90": self.percentile(0.9),
                "p99": self.percentile(0.99), "max": self.percentile(1.0)},
            "latency_ms_by_type": self.by_type.iter().map(|(kind, times)| {
                (kind.clone(), json!({"count": times.len(), "p50": percentile(times, 0.5),
                    "p99": percentile(times, 0.99), "max": percentile(times, 1.0)}))
            }).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The `p` quantile of `times` in milliseconds (0 for none).
fn percentile(times: &[Duration], p: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Checks the arguments and runs the fleet to completion.
pub fn run(args: &FleetArgs, clock: &Clock) -> Result<Summary, String> {
    let ca_pem = std::fs::read_to_string(&args.ca)
        .map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
    super::check_ca(&ca_pem).map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
    let url = super::check_url(&args.url)?;
    if let Some(p) = &args.proxy {
        super::client::check_proxy(p)?;
    }
    let endpoint = url.endpoint(args.transport, args.proxy.clone(), ca_pem)?;
    let prefix = args.sn_prefix.clone().unwrap_or_else(|| {
        let random = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        format!("FLT{}", &random[..5])
    });
    // Checked once here so no worker fails on it.
    Udi {
        pid: args.pid.clone(),
        sn: format!("{prefix}000000"),
    }
    .check()?;
    let next = AtomicU32::new(0);
    let started = Instant::now();
    let workers = args.concurrency.min(args.count);
    let mut summary = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut local = Summary::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.count {
                            break;
                        }
                        local.merge(one_router(args, &endpoint, &prefix, i, clock));
                    }
                    local
                })
            })
            .collect();
        let mut total = Summary::default();
        for h in handles {
            match h.join() {
                Ok(s) => total.merge(s),
                Err(_) => *total.failures.entry("worker panicked".into()).or_default() += 1,
            }
        }
        total
    });
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn one_router(
    args: &FleetArgs,
    endpoint: &Endpoint,
    prefix: &str,
    i: u32,
    clock: &Clock,
) -> Summary {
    let mut summary = Summary {
        routers: 1,
        ..Summary::default()
    };
    let udi = Udi {
        pid: args.pid.clone(),
        sn: format!("{prefix}{i:06}"),
    };
    let key = match identity::new_key() {
        Ok(k) => k,
        Err(e) => {
            *summary
                .failures
                .entry(format!("local key: {e}"))
                .or_default() += 1;
            return summary;
        }
    };
    let mut state = State::new(
        udi.clone(),
        format!("fleet-{}", udi.sn),
        endpoint.clone(),
        key,
    );
    if args.count_each > 0 {
        state.requests.insert(args.tag.clone(), args.count_each);
    }
    let mut link = Measured {
        inner: HttpLink::new(endpoint.clone(), udi, clock.clone()),
        failures: BTreeMap::new(),
        latencies: Vec::new(),
        by_type: BTreeMap::new(),
    };
    {
        let mut agent = Agent::new(&mut state, &mut link, clock.now());
        agent.send_acknowledgements = !args.no_ack;
        match agent.register(&args.token, false, false) {
            Ok(()) => {
                summary.registered = 1;
                for _ in 0..args.requests_per_router {
                    agent.now = clock.now();
                    if let Err(e) = agent.authorize(AuthKind::Entitlement) {
                        unseen_by_link(&mut summary, "ENTITLEMENT", &e);
                        if !agent.state.is_registered() {
                            break;
                        }
                    }
                }
            }
            Err(e) => unseen_by_link(&mut summary, "REGISTRATION", &e),
        }
    }
    summary.stats = state.stats;
    summary.failures.extend(link.failures);
    summary.latencies = link.latencies;
    summary.by_type = link.by_type;
    summary
}

/// Failures the link cannot see: unusable answers and local errors.
fn unseen_by_link(summary: &mut Summary, kind: &str, error: &super::agent::AgentError) {
    let code = match error.send_error() {
        Some(SendError::BadResponse(_)) => "bad_response".to_string(),
        Some(_) => return,
        None => format!("local: {error}"),
    };
    *summary
        .failures
        .entry(format!("{kind} {code}"))
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_also_reported_by_message_type() {
        let ms = Duration::from_millis;
        let mut summary = Summary {
            latencies: vec![ms(1), ms(2), ms(40)],
            ..Summary::default()
        };
        summary
            .by_type
            .insert("ENTITLEMENT".into(), vec![ms(2), ms(1)]);
        summary.by_type.insert("REGISTRATION".into(), vec![ms(40)]);
        let json = summary.to_json();
        assert_eq!(json["latency_ms"]["max"], 40.0);
        let entitlement = &json["latency_ms_by_type"]["ENTITLEMENT"];
        assert_eq!(entitlement["count"], 2);
        assert_eq!(entitlement["max"], 2.0);
        assert_eq!(json["latency_ms_by_type"]["REGISTRATION"]["p50"], 40.0);
    }
}
