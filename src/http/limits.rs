//! Protection against hostile load: per-source connection caps, per-source
//! rate limits on anonymous device requests (registration and token
//! guessing), and a deadline on reading request bodies.
//!
//! Header and handshake deadlines and the per-listener connection cap are
//! actix settings (see `serve`); what actix cannot do per source lives here.

use crate::clock::Clock;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections one source address may hold.
    pub connections_per_source: usize,
    /// Anonymous requests (no client certificate) one source may send per
    /// minute; `None` for no limit (the admin listener, whose API has its own
    /// authentication).
    pub anonymous_per_minute: Option<u32>,
    /// Time to send a whole request body once the headers arrived.
    pub body_deadline: Duration,
}

/// Per-source bookkeeping for one listener.
pub struct Guard {
    limits: Limits,
    clock: Clock,
    connections: Mutex<HashMap<IpAddr, usize>>,
    /// Source -> (minute, requests in it, refusal logged).
    anonymous: Mutex<HashMap<IpAddr, (i64, u32, bool)>>,
    /// Over-cap connections, logged once a minute per source.
    capped_logged: OncePerMinute,
}

/// Says whether a source's event is its first this minute: an attack must
/// not flood the log, and an operator must still see each address.
#[derive(Default)]
pub struct OncePerMinute(Mutex<HashMap<IpAddr, i64>>);

impl OncePerMinute {
    pub fn first(&self, source: IpAddr, now: i64) -> bool {
        let minute = now.div_euclid(60);
        let Ok(mut logged) = self.0.lock() else {
            return false;
        };
        // Bounded: a flood of sources cannot grow this without end.
        if logged.len() > 10_000 {
            logged.retain(|_, m| *m == minute);
        }
        logged.insert(source, minute) != Some(minute)
    }
}

/// Held in the connection's data for its lifetime: frees the source's slot
/// when actix drops the connection.
pub struct ConnectionSlot {
    guard: Arc<Guard>,
    source: IpAddr,
    /// Over the per-source cap: every request on it is refused.
    pub refused: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.refused {
            return;
        }
        if let Ok(mut open) = self.guard.connections.lock() {
            if let Some(n) = open.get_mut(&self.source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.source);
                }
            }
        }
    }
}

/// Why a request is refused before its handler runs.
pub enum Refusal {
    TooManyConnections(usize),
    TooManyRequests(u32),
}

impl Guard {
    pub fn new(limits: Limits, clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            limits,
            clock,
            connections: Mutex::new(HashMap::new()),
            anonymous: Mutex::new(HashMap::new()),
            capped_logged: OncePerMinute::default(),
        })
    }

    /// Connections open now (those that passed their handshake).
    pub fn all_open_connections(&self) -> usize {
        self.connections
            .lock()
            .map(|open| open.values().sum())
            .unwrap_or(0)
    }

    /// Counts a new connection from `source`.
    pub fn connect(self: &Arc<Self>, source: IpAddr) -> ConnectionSlot {
        let mut refused = true;
        if let Ok(mut open) = self.connections.lock() {
            let n = open.entry(source).or_insert(0);
            if *n < self.limits.connections_per_source {
                *n += 1;
                refused = false;
            }
        }
        if refused {
            self.log_capped(source);
        }
        ConnectionSlot {
            guard: self.clone(),
            source,
            refused,
        }
    }

    /// Once per source and minute: an attack must not flood the log.
    fn log_capped(&self, source: IpAddr) {
        if self.capped_logged.first(source, self.clock.unix()) {
            tracing::warn!(
                %source,
                cap = self.limits.connections_per_source,
                "this address holds too many connections; refusing its new ones with 429 for now"
            );
        }
    }

    /// Connections `source` holds now.
    pub fn open_connections(&self, source: IpAddr) -> usize {
        self.connections
            .lock()
            .ok()
            .and_then(|open| open.get(&source).copied())
            .unwrap_or(0)
    }

    /// Refuses a request on a connection over the cap, or an anonymous
    /// request over the source's rate.
    pub fn check(&self, req: &ServiceRequest, anonymous: bool) -> Result<(), Refusal> {
        if req.conn_data::<ConnectionSlot>().is_some_and(|s| s.refused) {
            return Err(Refusal::TooManyConnections(
                self.limits.connections_per_source,
            ));
        }
        let (Some(limit), true) = (self.limits.anonymous_per_minute, anonymous) else {
            return Ok(());
        };
        let Some(source) = req.peer_addr().map(|a| a.ip()) else {
            return Ok(());
        };
        let minute = self.clock.unix().div_euclid(60);
        let Ok(mut seen) = self.anonymous.lock() else {
            return Ok(());
        };
        // Old minutes are forgotten so the map stays as small as the attack.
        if seen.len() > 10_000 {
            seen.retain(|_, (m, _, _)| *m == minute);
        }
        let entry = seen.entry(source).or_insert((minute, 0, false));
        if entry.0 != minute {
            *entry = (minute, 0, false);
        }
        if entry.1 >= limit {
            if !entry.2 {
                entry.2 = true;
                // Once per source and minute: an attack must not flood the log.
                tracing::warn!(
                    %source,
                    limit,
                    "too many requests without a client certificate (registrations or token guesses) from this address; refusing with 429 until the minute is over"
                );
            }
            return Err(Refusal::TooManyRequests(limit));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Replaces the request's body with one that fails once the deadline passes.
    pub fn deadline_body(&self, req: &mut ServiceRequest) {
        let inner = req.take_payload();
        let deadline = Box::pin(tokio::time::sleep(self.limits.body_deadline));
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
            inner,
            deadline,
            seconds: self.limits.body_deadline.as_secs(),
        });
        req.set_payload(Payload::Stream { payload: stream });
    }
}

/// A body stream that ends in an error when its sender is too slow.
struct Deadline {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seconds: u64,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let seconds = self.seconds;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the body did not arrive within {seconds} s"),
            )))));
        }
        Poll::Pending
    }
}

/// Raises the soft open-file limit to the hard one (systemd's `LimitNOFILE`)
/// and returns it: every connection is a file, and running out of files
/// stops the admin listener and the database too.
pub fn raise_open_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_slots_back_when_connections_close() {
        let guard = Guard::new(
            Limits {
                connections_per_source: 2,
                anonymous_per_minute: None,
                body_deadline: Duration::from_secs(1),
            },
            Clock::system(),
        );
        let attacker: IpAddr = [10, 0, 0, 1].into();
        let router: IpAddr = [10, 0, 0, 2].into();
        let first = guard.connect(attacker);
        let second = guard.connect(attacker);
        let third = guard.connect(attacker);
        assert!(!first.refused && !second.refused);
        assert!(third.refused, "over the cap");
        assert!(
            !guard.connect(router).refused,
            "other sources are not affected"
        );
        drop(third);
        assert_eq!(
            guard.open_connections(attacker),
            2,
            "a refused one held no slot"
        );
        drop(first);
        assert_eq!(guard.open_connections(attacker), 1);
        assert!(
            !guard.connect(attacker).refused,
            "a freed slot is usable again"
        );
    }
}
