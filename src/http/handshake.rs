//! Admission before the TLS handshake.
//!
//! A connection costs a slot from the moment it is accepted, and until its
//! handshake ends nothing says who it is: a flood of connections that start
//! a handshake and never finish it would hold every slot and starve routers
//! whose certificates would have proved them. So connections still in their
//! handshake are bounded apart from the rest (what remains of the listener
//! is reserved for connections that finished their handshake). When all
//! places are taken, a newcomer takes the place of the oldest unfinished
//! handshake of the address that holds the most: a flood's addresses each
//! hold many, a router or a monitoring client one, so the flood evicts
//! itself while a router's handshake (a millisecond on a LAN) finishes.
//! Nothing is refused for its address alone: a site's NAT may start fifty
//! handshakes at once. Under pressure the deadline also shrinks from
//! seconds to one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// Connections in their handshake in all.
    pub total: usize,
    /// Time to finish the handshake.
    pub deadline: Duration,
    /// ...once more than half of `total` are in their handshake.
    pub deadline_under_pressure: Duration,
}

/// What a permit and the gate share.
#[derive(Default)]
struct PermitState {
    /// Its place was given back (handshake done, or evicted).
    released: AtomicBool,
    /// A newcomer took its place.
    evicted: AtomicBool,
    evict: tokio::sync::Notify,
}

/// A connection in its handshake, as the gate knows it.
struct Pending {
    /// Admission order: the smallest is the oldest.
    seq: u64,
    state: Arc<PermitState>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Each source's connections in their handshake, by admission order.
    by_source: HashMap<IpAddr, std::collections::BTreeSet<u64>>,
    /// Connections in their handshake, by peer: the handshake's end finds
    /// its permit here.
    pending: HashMap<SocketAddr, Pending>,
    /// The same connections, oldest first.
    order: std::collections::BTreeMap<u64, SocketAddr>,
    next_seq: u64,
}

pub struct HandshakeGate {
    name: &'static str,
    clock: crate::clock::Clock,
    /// Evictions, logged once a minute per address.
    logged: super::limits::OncePerMinute,
    limits: HandshakeLimits,
    counts: Mutex<Counts>,
    evicted: std::sync::atomic::AtomicU64,
}

/// A connection admitted to its handshake; releases its place when the
/// handshake ends (`HandshakeGate::completed`) or when it is dropped.
pub struct Permit {
    gate: Arc<HandshakeGate>,
    peer: SocketAddr,
    state: Arc<PermitState>,
}

impl Permit {
    /// Whether the handshake has finished (and the connection may live on).
    pub fn completed(&self) -> bool {
        self.state.released.load(Ordering::Acquire) && !self.was_evicted()
    }

    /// Whether a newcomer took this connection's place.
    pub fn was_evicted(&self) -> bool {
        self.state.evicted.load(Ordering::Acquire)
    }

    /// Resolves when a newcomer takes this connection's place.
    pub async fn evicted(&self) {
        self.state.evict.notified().await
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.state.released.swap(true, Ordering::AcqRel) {
            self.gate.release(self.peer);
        }
    }
}

impl HandshakeGate {
    pub fn new(
        name: &'static str,
        limits: HandshakeLimits,
        clock: crate::clock::Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            clock,
            logged: Default::default(),
            limits,
            counts: Mutex::new(Counts::default()),
            evicted: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A place for `peer`'s handshake (None only if the gate is broken: the
    /// caller closes the connection). A full listener makes room by
    /// evicting an unfinished handshake (see the module comment).
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Permit> {
        let Ok(mut counts) = self.counts.lock() else {
            return None;
        };
        let source = peer.ip();
        if counts.total >= self.limits.total {
            // The oldest of the address holding the most (the oldest of all
            // among equals).
            let victim = counts
                .by_source
                .values()
                .filter_map(|held| Some((held.len(), held.first().copied()?)))
                .max_by(|(n1, seq1), (n2, seq2)| n1.cmp(n2).then(seq2.cmp(seq1)))
                .and_then(|(_, seq)| counts.order.get(&seq).copied());
            if let Some(oldest) = victim {
                if let Some(pending) = counts.pending.get(&oldest) {
                    pending.state.evicted.store(true, Ordering::Release);
                    pending.state.released.store(true, Ordering::Release);
                    pending.state.evict.notify_one();
                }
                Self::forget(&mut counts, oldest);
                self.evicted.fetch_add(1, Ordering::Relaxed);
                if self.logged.first(oldest.ip(), self.clock.unix()) {
                    tracing::warn!(
                        listener = self.name,
                        source = %oldest.ip(),
                        in_handshake = self.limits.total,
                        "closed an unfinished TLS handshake to make room: this address holds the \
                         most connections that have not finished theirs (logged once a minute \
                         per address)"
                    );
                }
            }
        }
        let state = Arc::new(PermitState::default());
        let seq = counts.next_seq;
        counts.next_seq += 1;
        counts.total += 1;
        counts.by_source.entry(source).or_default().insert(seq);
        counts.order.insert(seq, peer);
        counts.pending.insert(
            peer,
            Pending {
                seq,
                state: state.clone(),
            },
        );
        Some(Permit {
            gate: self.clone(),
            peer,
            state,
        })
    }

    /// The handshake of `peer` finished: its place goes back now, not when
    /// the connection ends.
    pub fn completed(&self, peer: SocketAddr) {
        if let Ok(mut counts) = self.counts.lock() {
            let finished = counts
                .pending
                .get(&peer)
                .is_some_and(|p| !p.state.released.swap(true, Ordering::AcqRel));
            if finished {
                Self::forget(&mut counts, peer);
            }
        }
    }

    fn release(&self, peer: SocketAddr) {
        if let Ok(mut counts) = self.counts.lock() {
            Self::forget(&mut counts, peer);
        }
    }

    /// Takes `peer` out of the counts (once: later calls find nothing).
    fn forget(counts: &mut Counts, peer: SocketAddr) {
        let Some(pending) = counts.pending.remove(&peer) else {
            return;
        };
        counts.order.remove(&pending.seq);
        counts.total = counts.total.saturating_sub(1);
        let source = peer.ip();
        if let Some(held) = counts.by_source.get_mut(&source) {
            held.remove(&pending.seq);
            if held.is_empty() {
                counts.by_source.remove(&source);
            }
        }
    }

    /// The handshake deadline for a connection admitted now.
    pub fn deadline(&self) -> Duration {
        let busy = self.counts.lock().map(|c| c.total).unwrap_or(0);
        if busy * 2 > self.limits.total {
            self.limits.deadline_under_pressure
        } else {
            self.limits.deadline
        }
    }

    pub fn limits(&self) -> HandshakeLimits {
        self.limits
    }

    /// Unfinished handshakes closed to make room for a newcomer since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections in their handshake now.
    pub fn in_handshake(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Arc<HandshakeGate> {
        HandshakeGate::new(
            "test",
            HandshakeLimits {
                total: 4,
                deadline: Duration::from_secs(5),
                deadline_under_pressure: Duration::from_secs(1),
            },
            crate::clock::Clock::system(),
        )
    }

    fn peer(source: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, source], port))
    }

    #[test]
    fn a_full_listener_evicts_the_oldest_handshake_of_the_address_holding_most() {
        let gate = gate();
        let a1 = gate.admit(peer(1, 1)).expect("first");
        let a2 = gate.admit(peer(1, 2)).expect("second");
        assert_eq!(gate.deadline(), Duration::from_secs(5));
        let b1 = gate.admit(peer(2, 1)).expect("other source");
        assert_eq!(gate.deadline(), Duration::from_secs(1), "under pressure");
        let _c1 = gate.admit(peer(3, 1)).expect("fourth");
        // Full: 127.0.0.1 holds two, so its oldest makes room.
        let _d1 = gate.admit(peer(4, 1)).expect("newcomer");
        assert_eq!(gate.evicted(), 1);
        assert!(a1.was_evicted() && !a1.completed(), "told to close");
        assert!(!b1.was_evicted(), "a single handshake is left alone");
        assert_eq!(gate.in_handshake(), 4);
        drop(a1);
        assert_eq!(gate.in_handshake(), 4, "evicted once, counted once");

        // A finished handshake gives its place back at once, and only once.
        gate.completed(peer(1, 2));
        assert!(a2.completed());
        assert_eq!(gate.in_handshake(), 3);
        drop(a2);
        assert_eq!(gate.in_handshake(), 3);
        drop(b1);
        assert_eq!(gate.in_handshake(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_evicted_permit_is_told() {
        let gate = gate();
        let first = gate.admit(peer(1, 1)).expect("first");
        let _others: Vec<_> = (2..=4).map(|n| gate.admit(peer(n, 1))).collect();
        let _newcomer = gate.admit(peer(5, 1)).expect("newcomer");
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("told at once");
    }

    #[test]
    fn an_abandoned_handshake_gives_its_place_back_when_dropped() {
        let gate = gate();
        let permit = gate.admit(peer(1, 1)).expect("admitted");
        drop(permit);
        assert_eq!(gate.in_handshake(), 0);
        gate.completed(peer(1, 1));
        assert_eq!(gate.in_handshake(), 0);
    }
}
