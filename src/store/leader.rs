//! Which of two satellite nodes on one PostgreSQL database is the active
//! one: the node whose writer session holds a session-level advisory lock.
//!
//! The lock lives and dies with the writer's session, and every write of
//! the node goes through that session. So a node that lost the session (its
//! database failed over, the network dropped it, the node was killed) can
//! acknowledge nothing more: its next group fails and it is standby at once,
//! while PostgreSQL releases the lock as the session ends and the other
//! node, trying every second, takes it. There is no lease to expire and no
//! clock to trust. A killed node's socket closes with it (the lock is free
//! at once); a node cut off without a word is found by TCP keepalives on
//! both sides within about 5 s (`postgres::KEEPALIVE_*` here, and the server's
//! `tcp_keepalives_*`, which `packaging/ha/patroni.yml` sets).
//!
//! The embedded database has one node: it is always active.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The advisory lock key of the active node.
pub(in crate::store) const LEADER_LOCK: i64 = 0x5a7e_0002;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves routers, runs the jobs.
    Active,
    /// Answers the admin listener's reads; `/readyz` says `standby`.
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Standby => "standby",
        }
    }
}

/// This node's role, kept by the writer thread, read by everyone.
#[derive(Debug)]
pub struct Leadership {
    active: AtomicBool,
    /// When the role last changed, in ms since `epoch`.
    changed_ms: AtomicU64,
    epoch: Instant,
}

impl Leadership {
    pub(in crate::store) fn new(role: Role) -> Self {
        Self {
            active: AtomicBool::new(role == Role::Active),
            changed_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub fn role(&self) -> Role {
        if self.active.load(Ordering::Acquire) {
            Role::Active
        } else {
            Role::Standby
        }
    }

    /// How long this node has had its role.
    pub fn held_for(&self) -> std::time::Duration {
        let changed = std::time::Duration::from_millis(self.changed_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(changed)
    }

    pub(in crate::store) fn set(&self, role: Role) {
        let was = self.active.swap(role == Role::Active, Ordering::AcqRel);
        if was != (role == Role::Active) {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.changed_ms.store(now, Ordering::Release);
            match role {
                Role::Active => tracing::warn!(
                    "this node is now the active node: it serves routers and runs the jobs"
                ),
                Role::Standby => tracing::warn!(
                    "this node is the standby: another node holds the database's leadership lock \
                     (or the database is out of reach); it takes over when that node stops"
                ),
            }
        }
    }
}

/// The `settings` key naming the node that last became active, and when.
const ACTIVE_NODE: &str = "node.active";

/// The node that took the leadership, as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActiveNode {
    pub host: String,
    /// Unix time it became active.
    pub since: i64,
    /// Whether a node holds the leadership now (a shared database only:
    /// the lock is PostgreSQL's; on the embedded database, whether the
    /// record says so).
    pub held: bool,
}

/// Records that this node (`host`) became the active node at `now`, with
/// an event: a takeover is something an operator wants to find later.
pub fn record_takeover(c: &super::Db, host: &str, now: i64) -> crate::error::Result<()> {
    super::settings::set(c, ACTIVE_NODE, &format!("{now} {host}"))?;
    super::events::record(
        c,
        now,
        super::events::NewEvent {
            kind: "system",
            severity: super::events::Severity::Minor,
            virtual_account: None,
            subject: Some(host),
            message: format!("{host} is now the active node: it serves routers and runs the jobs"),
        },
    )
}

/// The node that last became active, if any did.
pub fn active_node(c: &super::Db) -> crate::error::Result<Option<ActiveNode>> {
    let Some(record) = super::settings::get(c, ACTIVE_NODE)? else {
        return Ok(None);
    };
    let Some((since, host)) = record.split_once(' ') else {
        return Ok(None);
    };
    let held = if c.sqlite().is_ok() {
        true
    } else {
        // Key LEADER_LOCK as pg_locks spells a bigint key: high and low halves.
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND CAST(classid AS BIGINT) = ?1 AND CAST(objid AS BIGINT) = ?2 AND objsubid = 1)",
            super::sql::params![LEADER_LOCK >> 32, LEADER_LOCK & 0xffff_ffff],
            |r| r.get(0),
        )?
    };
    Ok(Some(ActiveNode {
        host: host.to_string(),
        since: since.parse().unwrap_or_default(),
        held,
    }))
}

/// What names a node of a pair: its host, and its data dir (two nodes may
/// share a host in a test or a lab).
pub fn node_name(data_dir: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_change_restarts_the_clock_and_a_repeat_does_not() {
        let leadership = Leadership::new(Role::Standby);
        std::thread::sleep(std::time::Duration::from_millis(20));
        leadership.set(Role::Standby);
        assert!(leadership.held_for() >= std::time::Duration::from_millis(20));
        leadership.set(Role::Active);
        assert_eq!(leadership.role(), Role::Active);
        assert!(leadership.held_for() < std::time::Duration::from_millis(20));
    }
}
