//! Sync bookkeeping: this node's id, the bundle ledger (sequence numbers and
//! hash chain per peer), the upstream cloud of a satellite, catalog
//! additions, and the reads a usage bundle is made of.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::Result;

const NODE_ID: &str = "sync.node_id";
const CATALOG_VERSION: &str = "catalog.version";

/// This node's id towards its peers: made once, never changed.
pub fn node_id(c: &Db) -> Result<String> {
    if let Some(id) = super::settings::get(c, NODE_ID)? {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![NODE_ID, id],
    )?;
    Ok(super::settings::get(c, NODE_ID)?.unwrap_or(id))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// One line of the ledger.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub direction: Direction,
    pub peer: String,
    pub kind: String,
    pub sequence: u64,
    pub sha256: String,
    pub in_reply_to: Option<String>,
    pub created_at: i64,
    pub recorded_at: i64,
    pub file_name: Option<String>,
    /// JSON: what the bundle carried, in counts.
    pub summary: String,
    /// JSON: for a sent usage bundle, how far it reached into each log.
    pub watermarks: Option<String>,
    /// For a usage bundle received by the cloud: the answer bundle's bytes.
    pub response: Option<Vec<u8>>,
}

pub fn record(c: &Db, e: &LedgerEntry) -> Result<i64> {
    let id = c.query_row(
        "INSERT INTO sync_bundles (direction, peer, kind, sequence, sha256, in_reply_to, created_at,
            recorded_at, file_name, summary, watermarks, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        params![
            e.direction.as_str(),
            e.peer,
            e.kind,
            i64::try_from(e.sequence).unwrap_or(i64::MAX),
            e.sha256,
            e.in_reply_to,
            e.created_at,
            e.recorded_at,
            e.file_name,
            e.summary,
            e.watermarks,
            e.response
        ], |r| r.get::<i64>(0)
    )?;
    Ok(id)
}

/// The highest sequence recorded with `peer` in one direction.
pub fn last_sequence(c: &Db, direction: Direction, peer: &str) -> Result<Option<u64>> {
    let n: Option<i64> = c.query_row(
        "SELECT MAX(sequence) FROM sync_bundles WHERE direction = ?1 AND peer = ?2",
        params![direction.as_str(), peer],
        |r| r.get(0),
    )?;
    Ok(n.and_then(|n| u64::try_from(n).ok()))
}

/// The SHA-256 of the last bundle sent to `peer` (the hash chain's link).
pub fn last_sent_sha256(c: &Db, peer: &str) -> Result<Option<String>> {
    Ok(optional(c.query_row(
        "SELECT sha256 FROM sync_bundles WHERE direction = 'sent' AND peer = ?1
         ORDER BY sequence DESC LIMIT 1",
        [peer],
        |r| r.get(0),
    ))?)
}

/// A bundle already applied, found by its hash.
#[derive(Debug, Clone)]
pub struct Received {
    pub sequence: u64,
    pub kind: String,
    /// The answer the cloud gave to it, to give again.
    pub response: Option<Vec<u8>>,
}

pub fn received(c: &Db, sha256: &str) -> Result<Option<Received>> {
    Ok(optional(c.query_row(
        "SELECT sequence, kind, response FROM sync_bundles WHERE direction = 'received' AND sha256 = ?1",
        [sha256],
        |r| {
            let seq: i64 = r.get(0)?;
            Ok(Received {
                sequence: u64::try_from(seq).unwrap_or(0),
                kind: r.get(1)?,
                response: r.get(2)?,
            })
        },
    ))?)
}

/// A sent bundle's watermarks, by its hash, if it was sent to `peer`.
pub fn sent_watermarks(c: &Db, peer: &str, sha256: &str) -> Result<Option<Option<String>>> {
    Ok(optional(c.query_row(
        "SELECT watermarks FROM sync_bundles WHERE direction = 'sent' AND peer = ?1 AND sha256 = ?2",
        params![peer, sha256],
        |r| r.get(0),
    ))?)
}

/// The file name a sent bundle was written under, by its hash.
pub fn sent_file_name(c: &Db, peer: &str, sha256: &str) -> Result<Option<String>> {
    Ok(optional(c.query_row(
        "SELECT file_name FROM sync_bundles WHERE direction = 'sent' AND peer = ?1 AND sha256 = ?2",
        params![peer, sha256],
        |r| r.get(0),
    ))?
    .flatten())
}

/// Marks a sent bundle and every earlier one to the same peer acknowledged.
pub fn acknowledge(c: &Db, peer: &str, sha256: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE sync_bundles SET acknowledged_at = ?3
         WHERE direction = 'sent' AND peer = ?1 AND acknowledged_at IS NULL
           AND sequence <= (SELECT sequence FROM sync_bundles
                            WHERE direction = 'sent' AND peer = ?1 AND sha256 = ?2)",
        params![peer, sha256, now],
    )?;
    Ok(())
}

/// A bundle this node sent, as the ledger has it.
#[derive(Debug, Clone)]
pub struct SentBundle {
    pub sequence: u64,
    pub kind: String,
    pub sha256: String,
    pub created_at: i64,
    pub file_name: Option<String>,
    /// The counts it carried (JSON).
    pub summary: String,
}

/// The last bundle sent to `peer`, when it is a usage bundle that `peer`
/// has not acknowledged: a live retry sends it again rather than a new one.
pub fn pending_usage(c: &Db, peer: &str) -> Result<Option<SentBundle>> {
    Ok(optional(c.query_row(
        "SELECT sequence, kind, sha256, created_at, file_name, summary FROM sync_bundles
         WHERE direction = 'sent' AND peer = ?1
           AND sequence = (SELECT MAX(sequence) FROM sync_bundles WHERE direction = 'sent' AND peer = ?1)
           AND kind = 'usage' AND acknowledged_at IS NULL",
        [peer],
        |r| {
            let sequence: i64 = r.get(0)?;
            Ok(SentBundle {
                sequence: u64::try_from(sequence).unwrap_or(0),
                kind: r.get(1)?,
                sha256: r.get(2)?,
                created_at: r.get(3)?,
                file_name: r.get(4)?,
                summary: r.get(5)?,
            })
        },
    ))?)
}

/// The files of acknowledged bundles sent to `peer`, past the newest `keep`.
pub fn acknowledged_files(c: &Db, peer: &str, keep: u32) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT file_name FROM sync_bundles
         WHERE direction = 'sent' AND peer = ?1 AND acknowledged_at IS NOT NULL
           AND file_name IS NOT NULL
         ORDER BY sequence DESC",
    )?;
    let rows = stmt.query_map([peer], |r| r.get(0))?;
    Ok(rows
        .skip(keep as usize)
        .collect::<super::sql::SqlResult<_>>()?)
}

/// Per direction: the last bundle (sequence, kind, recorded_at, file name).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LedgerSummary {
    pub last_sent_sequence: Option<u64>,
    pub last_sent_kind: Option<String>,
    pub last_sent_at: Option<i64>,
    pub last_sent_file: Option<String>,
    pub last_received_sequence: Option<u64>,
    pub last_received_kind: Option<String>,
    pub last_received_at: Option<i64>,
    pub last_acknowledged_at: Option<i64>,
}

pub fn summary(c: &Db, peer: &str) -> Result<LedgerSummary> {
    let mut s = LedgerSummary::default();
    type Last = (i64, String, i64, Option<String>);
    let last = |direction: &str| -> super::sql::SqlResult<Option<Last>> {
        optional(c.query_row(
            "SELECT sequence, kind, recorded_at, file_name FROM sync_bundles
             WHERE direction = ?1 AND peer = ?2 ORDER BY sequence DESC LIMIT 1",
            params![direction, peer],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        ))
    };
    if let Some((seq, kind, at, file)) = last("sent")? {
        s.last_sent_sequence = u64::try_from(seq).ok();
        s.last_sent_kind = Some(kind);
        s.last_sent_at = Some(at);
        s.last_sent_file = file;
    }
    if let Some((seq, kind, at, _)) = last("received")? {
        s.last_received_sequence = u64::try_from(seq).ok();
        s.last_received_kind = Some(kind);
        s.last_received_at = Some(at);
    }
    s.last_acknowledged_at = c.query_row(
        "SELECT MAX(acknowledged_at) FROM sync_bundles WHERE direction = 'sent' AND peer = ?1",
        [peer],
        |r| r.get(0),
    )?;
    Ok(s)
}

/// The cloud a satellite syncs with.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub satellite_id: String,
    pub cloud_id: String,
    pub cloud_ca_sha256: String,
    pub requested_at: i64,
    pub registered_at: Option<i64>,
    pub cloud_account: Option<String>,
    /// The cloud's bundle signer certificate, once seen.
    pub cloud_signer_sha256: Option<String>,
    /// The signer that one replaced.
    pub retired_cloud_signer_sha256: Option<String>,
}

pub fn upstream(c: &Db) -> Result<Option<Upstream>> {
    Ok(optional(c.query_row(
        "SELECT satellite_id, cloud_id, cloud_ca_sha256, requested_at, registered_at, cloud_account,
                cloud_signer_sha256, retired_cloud_signer_sha256
         FROM upstream WHERE id = 1",
        (),
        |r| {
            Ok(Upstream {
                satellite_id: r.get(0)?,
                cloud_id: r.get(1)?,
                cloud_ca_sha256: r.get(2)?,
                requested_at: r.get(3)?,
                registered_at: r.get(4)?,
                cloud_account: r.get(5)?,
                cloud_signer_sha256: r.get(6)?,
                retired_cloud_signer_sha256: r.get(7)?,
            })
        },
    ))?)
}

/// Records a registration request (replacing an earlier one not yet
/// answered). A new token pins a cloud anew: its signer is pinned from its
/// first answer.
pub fn set_upstream(c: &Db, u: &Upstream) -> Result<()> {
    c.execute(
        "INSERT INTO upstream (id, satellite_id, cloud_id, cloud_ca_sha256, requested_at, registered_at,
           cloud_account, cloud_signer_sha256, retired_cloud_signer_sha256)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET satellite_id = excluded.satellite_id, cloud_id = excluded.cloud_id,
           cloud_ca_sha256 = excluded.cloud_ca_sha256, requested_at = excluded.requested_at,
           registered_at = excluded.registered_at, cloud_account = excluded.cloud_account,
           cloud_signer_sha256 = excluded.cloud_signer_sha256,
           retired_cloud_signer_sha256 = excluded.retired_cloud_signer_sha256",
        params![
            u.satellite_id,
            u.cloud_id,
            u.cloud_ca_sha256,
            u.requested_at,
            u.registered_at,
            u.cloud_account,
            u.cloud_signer_sha256,
            u.retired_cloud_signer_sha256
        ],
    )?;
    Ok(())
}

/// Pins the cloud's bundle signer (and the one it replaced, if any).
pub fn pin_cloud_signer(c: &Db, signer_sha256: &str, retired: Option<&str>) -> Result<()> {
    c.execute(
        "UPDATE upstream SET cloud_signer_sha256 = ?1,
           retired_cloud_signer_sha256 = COALESCE(?2, retired_cloud_signer_sha256) WHERE id = 1",
        params![signer_sha256, retired],
    )?;
    Ok(())
}

pub fn mark_registered(c: &Db, cloud_account: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE upstream SET registered_at = COALESCE(registered_at, ?1), cloud_account = ?2 WHERE id = 1",
        params![now, cloud_account],
    )?;
    Ok(())
}

/// Catalog additions as stored: (kind `tag`|`sku`, name, JSON body).
pub fn catalog_entries(c: &Db) -> Result<Vec<(String, String, String)>> {
    let mut stmt =
        c.prepare_cached("SELECT kind, name, body FROM catalog_entries ORDER BY kind DESC, name")?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Adds or replaces one catalog entry; returns whether anything changed.
pub fn put_catalog_entry(c: &Db, kind: &str, name: &str, body: &str, now: i64) -> Result<bool> {
    let changed = c.execute(
        "INSERT INTO catalog_entries (kind, name, body, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
         WHERE catalog_entries.body <> excluded.body",
        params![kind, name, body, now],
    )?;
    if changed > 0 {
        c.execute(
            "INSERT INTO settings (key, value) VALUES (?1, '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)",
            [CATALOG_VERSION],
        )?;
    }
    Ok(changed > 0)
}

/// Bumped by every catalog change, so a running server knows to reload.
pub fn catalog_version(c: &Db) -> Result<i64> {
    Ok(super::settings::get(c, CATALOG_VERSION)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// One license as carried in an entitlement bundle.
#[derive(Debug, Clone)]
pub struct LicenseLine {
    pub sku: String,
    pub tag: String,
    pub quantity: i64,
    pub start_at: i64,
    pub end_at: Option<i64>,
}

/// The cloud is the source of truth: a virtual account's licenses become
/// exactly the lines given. Returns the tags held before or after.
pub fn replace_licenses(
    c: &Db,
    virtual_account_id: i64,
    lines: &[LicenseLine],
    now: i64,
) -> Result<Vec<String>> {
    let mut tags: Vec<String> = {
        let mut stmt =
            c.prepare_cached("SELECT DISTINCT tag FROM licenses WHERE virtual_account_id = ?1")?;
        let rows = stmt.query_map([virtual_account_id], |r| r.get(0))?;
        rows.collect::<super::sql::SqlResult<_>>()?
    };
    c.execute(
        "DELETE FROM licenses WHERE virtual_account_id = ?1",
        [virtual_account_id],
    )?;
    for l in lines {
        super::licenses::insert(
            c,
            &super::licenses::NewLicense {
                virtual_account_id,
                sku: &l.sku,
                tag: &l.tag,
                quantity: l.quantity,
                start_at: l.start_at,
                end_at: l.end_at,
            },
            now,
        )?;
        tags.push(l.tag.clone());
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// A product instance and its demand, as a usage bundle carries it.
#[derive(Debug, Clone)]
pub struct InstanceUsage {
    pub instance_id: String,
    pub virtual_account: String,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub registered_at: i64,
    pub last_contact_at: i64,
    pub deadline: Option<i64>,
    pub authorization_status: Option<String>,
    /// Whether a pool it uses is short now.
    pub short: bool,
    pub entitlements: Vec<(String, i64)>,
}

/// Every product instance with its demand, in one pass over each table.
pub fn instance_usage(c: &Db) -> Result<Vec<InstanceUsage>> {
    let mut stmt = c.prepare_cached(
        "SELECT p.id, p.instance_id, va.name, p.pid, p.sn, p.hostname, p.registered_at,
                p.last_contact_at, p.deadline, p.authorization_status,
                EXISTS (SELECT 1 FROM entitlement_usage u JOIN pools q
                          ON q.virtual_account_id = u.virtual_account_id AND q.tag = u.tag
                        WHERE u.instance_id = p.id AND q.status = 'Out of Compliance')
         FROM product_instances p JOIN virtual_accounts va ON va.id = p.virtual_account_id
         ORDER BY p.id",
    )?;
    let mut by_row: Vec<(i64, InstanceUsage)> = stmt
        .query_map((), |r| {
            Ok((
                r.get::<i64>(0)?,
                InstanceUsage {
                    instance_id: r.get(1)?,
                    virtual_account: r.get(2)?,
                    pid: r.get(3)?,
                    sn: r.get(4)?,
                    hostname: r.get(5)?,
                    registered_at: r.get(6)?,
                    last_contact_at: r.get(7)?,
                    deadline: r.get(8)?,
                    authorization_status: r.get(9)?,
                    short: r.get(10)?,
                    entitlements: Vec::new(),
                },
            ))
        })?
        .collect::<super::sql::SqlResult<_>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT instance_id, tag, count FROM entitlement_usage ORDER BY instance_id, tag",
    )?;
    let usage = stmt.query_map((), |r| {
        Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
    })?;
    for u in usage {
        let (row, tag, count) = u?;
        if let Ok(i) = by_row.binary_search_by_key(&row, |(id, _)| *id) {
            by_row[i].1.entitlements.push((tag, count));
        }
    }
    Ok(by_row.into_iter().map(|(_, i)| i).collect())
}

/// An event row as carried upstream.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub severity: String,
    pub virtual_account: Option<String>,
    pub subject: Option<String>,
    pub message: String,
}

pub fn events_after(c: &Db, after_id: i64) -> Result<Vec<EventRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, kind, severity, virtual_account, subject, message FROM events
         WHERE id > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([after_id], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            severity: r.get(3)?,
            virtual_account: r.get(4)?,
            subject: r.get(5)?,
            message: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// A stored report as carried upstream.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub id: i64,
    pub kind: String,
    pub created_at: i64,
    pub virtual_account: Option<String>,
    pub summary: String,
    pub body: String,
}

pub fn reports_after(c: &Db, after_id: i64) -> Result<Vec<ReportRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, kind, created_at, virtual_account, summary, body FROM reports
         WHERE id > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([after_id], |r| {
        Ok(ReportRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            created_at: r.get(2)?,
            virtual_account: r.get(3)?,
            summary: r.get(4)?,
            body: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// A day of one pool's usage as carried upstream.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub day: String,
    pub virtual_account: String,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
}

/// Daily snapshots from `from_day` on (inclusive: the last day may have changed).
pub fn history_from(c: &Db, from_day: &str) -> Result<Vec<HistoryRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT h.day, va.name, h.tag, h.in_use, h.available FROM usage_history h
         JOIN virtual_accounts va ON va.id = h.virtual_account_id
         WHERE h.day >= ?1 ORDER BY h.day, va.name, h.tag",
    )?;
    let rows = stmt.query_map([from_day], |r| {
        Ok(HistoryRow {
            day: r.get(0)?,
            virtual_account: r.get(1)?,
            tag: r.get(2)?,
            in_use: r.get(3)?,
            available: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// The highest ids of the logs right now (a usage bundle's watermarks).
pub fn log_heads(c: &Db) -> Result<(i64, i64)> {
    Ok(c.query_row(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM events), (SELECT COALESCE(MAX(id), 0) FROM reports)",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
