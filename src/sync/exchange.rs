//! What both ends do with bundles: seal the next one to a peer (sequence,
//! hash chain, file in the export folder, ledger line), and check a received
//! one against the ledger before it is applied.

use super::bundle::{self, BundleError, Header, Kind, Opened, Sealed};
use super::{folder, Node, SyncError, Written, BUNDLE_LIFETIME};
use crate::store::sync::{self as ledger, Direction, LedgerEntry};
use crate::store::Db;

/// A bundle to seal: what it is, for whom, and what it carries.
pub struct Outgoing {
    pub kind: Kind,
    pub from: String,
    pub to: String,
    /// How the receiver is named in the file name (a person reads it).
    pub to_label: String,
    pub in_reply_to: Option<String>,
    pub files: Vec<(String, Vec<u8>)>,
    pub counts: serde_json::Value,
    /// For a usage bundle: how far into each log it reached.
    pub watermarks: Option<String>,
}

/// A bundle sealed from what one read saw, not yet written or recorded.
#[derive(Debug)]
pub struct Prepared {
    kind: Kind,
    from: String,
    to: String,
    to_label: String,
    in_reply_to: Option<String>,
    counts: serde_json::Value,
    watermarks: Option<String>,
    sequence: u64,
    previous_sha256: Option<String>,
    created_at: i64,
    /// The file name; its bytes are already on disk under a hidden name.
    name: String,
    sealed: Sealed,
}

impl Prepared {
    pub fn counts(&self) -> &serde_json::Value {
        &self.counts
    }

    /// Whether the ledger still ends where it ended when this was sealed.
    pub fn still_current(&self, c: &Db) -> Result<bool, SyncError> {
        let next = ledger::last_sequence(c, Direction::Sent, &self.to)?.unwrap_or(0) + 1;
        Ok(next == self.sequence && ledger::last_sent_sha256(c, &self.to)? == self.previous_sha256)
    }
}

/// Seals the next bundle to `out.to`, writes it to the export folder and
/// records it, all inside the caller's transaction (a failed write leaves
/// no ledger line; a failed commit leaves a file the peer will refuse as a
/// replay or accept as the same content).
pub fn send(c: &Db, node: &Node<'_>, out: Outgoing) -> Result<(Written, Sealed), SyncError> {
    let prepared = prepare(c, node, out)?;
    finish(c, node, prepared)
}

/// Seals the next bundle to `out.to` from what `c` reads (a read snapshot
/// will do): the sealing, the heavy part, holds no write lock.
pub fn prepare(c: &Db, node: &Node<'_>, out: Outgoing) -> Result<Prepared, SyncError> {
    let sequence = ledger::last_sequence(c, Direction::Sent, &out.to)?.unwrap_or(0) + 1;
    let previous_sha256 = ledger::last_sent_sha256(c, &out.to)?;
    let header = Header {
        kind: out.kind,
        from: out.from.clone(),
        to: out.to.clone(),
        sequence,
        in_reply_to: out.in_reply_to.clone(),
        previous_sha256: previous_sha256.clone(),
        created_at: node.now,
        expires_at: node.now + BUNDLE_LIFETIME,
    };
    let sealed = bundle::seal(header, out.files, node.signer)?;
    let name = folder::bundle_file_name(
        node.now,
        out.kind.as_str(),
        &node.config.name,
        &out.to_label,
        sequence,
    );
    // Written (and synced) here, before any write lock is taken; the
    // record only renames it into view.
    if node.carried {
        folder::write_part(&node.config.sync.export_dir, &name, &sealed.bytes)?;
    }
    Ok(Prepared {
        name,
        kind: out.kind,
        from: out.from,
        to: out.to,
        to_label: out.to_label,
        in_reply_to: out.in_reply_to,
        counts: out.counts,
        watermarks: out.watermarks,
        sequence,
        previous_sha256,
        created_at: node.now,
        sealed,
    })
}

/// Writes a prepared bundle to the export folder and records it, in the
/// caller's write transaction; refused (nothing written) when another
/// bundle to the same peer was recorded since it was prepared.
pub fn finish(c: &Db, node: &Node<'_>, p: Prepared) -> Result<(Written, Sealed), SyncError> {
    let sequence = p.sequence;
    if !p.still_current(c)? {
        if node.carried {
            folder::discard_part(&node.config.sync.export_dir, &p.name);
        }
        return Err(crate::error::Error::Conflict(format!(
            "another bundle to {} was written while this one was being sealed; run it again",
            p.to_label
        ))
        .into());
    }
    let name = p.name;
    let path = if node.carried {
        folder::publish(&node.config.sync.export_dir, &name)?
            .display()
            .to_string()
    } else {
        String::new()
    };
    ledger::record(
        c,
        &LedgerEntry {
            direction: Direction::Sent,
            peer: p.to.clone(),
            kind: p.kind.as_str().to_string(),
            sequence,
            sha256: p.sealed.sha256.clone(),
            in_reply_to: p.in_reply_to,
            created_at: p.created_at,
            recorded_at: node.now,
            file_name: node.carried.then_some(name),
            summary: p.counts.to_string(),
            watermarks: p.watermarks,
            response: None,
        },
    )?;
    let written = Written {
        path,
        kind: p.kind.as_str().to_string(),
        from: p.from,
        to: p.to,
        sequence,
        sha256: p.sealed.sha256.clone(),
        bytes: p.sealed.bytes.len(),
        counts: p.counts,
    };
    Ok((written, p.sealed))
}

/// Refuses a bundle whose sequence is not past the last one applied from
/// its sender (a replay, or an older bundle carried after a newer one).
pub fn check_sequence(c: &Db, opened: &Opened) -> Result<(), SyncError> {
    let m = &opened.manifest;
    if let Some(last) = ledger::last_sequence(c, Direction::Received, &m.from)? {
        if m.sequence <= last {
            return Err(BundleError::replay(&m.from, m.sequence, last).into());
        }
    }
    Ok(())
}

/// Records a received bundle as applied (with the answer given, if any).
pub fn record_received(
    c: &Db,
    opened: &Opened,
    now: i64,
    counts: &serde_json::Value,
    response: Option<Vec<u8>>,
) -> Result<(), SyncError> {
    let m = &opened.manifest;
    let created_at = m.created_unix()?;
    ledger::record(
        c,
        &LedgerEntry {
            direction: Direction::Received,
            peer: m.from.clone(),
            kind: m.kind.as_str().to_string(),
            sequence: m.sequence,
            sha256: opened.sha256.clone(),
            in_reply_to: m.in_reply_to.clone(),
            created_at,
            recorded_at: now,
            file_name: None,
            summary: counts.to_string(),
            watermarks: None,
            response,
        },
    )?;
    Ok(())
}
