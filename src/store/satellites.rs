//! The cloud's satellites: who they are, what they serve, and what they last
//! reported (their product instances, demand, events, reports, history).

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Satellite {
    pub id: i64,
    pub satellite_id: String,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub token_expires_at: i64,
    pub created_at: i64,
    pub registered_at: Option<i64>,
    pub signer_ca_sha256: Option<String>,
    /// The satellite's bundle signer certificate, once seen.
    pub signer_sha256: Option<String>,
    /// The signer that one replaced.
    pub retired_signer_sha256: Option<String>,
    pub revoked_at: Option<i64>,
    pub last_contact_at: Option<i64>,
    pub virtual_accounts: Vec<String>,
}

pub struct NewSatellite<'a> {
    pub satellite_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub token_expires_at: i64,
    pub virtual_account_ids: &'a [i64],
}

pub fn create(c: &Db, s: &NewSatellite<'_>, now: i64) -> Result<i64> {
    let id = c.query_row(
        "INSERT INTO satellites (satellite_id, name, token_hash, token_expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![
            s.satellite_id,
            s.name,
            s.token_hash,
            s.token_expires_at,
            now
        ],
        |r| r.get::<i64>(0),
    )?;
    for va in s.virtual_account_ids {
        c.execute(
            "INSERT INTO satellite_virtual_accounts (satellite_id, virtual_account_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![id, va],
        )?;
    }
    Ok(id)
}

const SELECT: &str = "SELECT s.id, s.satellite_id, s.name, s.token_hash, s.token_expires_at,
        s.created_at, s.registered_at, s.signer_ca_sha256, s.revoked_at, s.last_contact_at,
        s.signer_sha256, s.retired_signer_sha256
     FROM satellites s";

/// A satellite's row; its virtual accounts are read by `with_virtual_accounts`.
fn row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<Satellite> {
    Ok(Satellite {
        id: r.get(0)?,
        satellite_id: r.get(1)?,
        name: r.get(2)?,
        token_hash: r.get(3)?,
        token_expires_at: r.get(4)?,
        created_at: r.get(5)?,
        registered_at: r.get(6)?,
        signer_ca_sha256: r.get(7)?,
        revoked_at: r.get(8)?,
        last_contact_at: r.get(9)?,
        signer_sha256: r.get(10)?,
        retired_signer_sha256: r.get(11)?,
        virtual_accounts: Vec::new(),
    })
}

/// The satellite with the names of the virtual accounts it serves (a
/// query of their own: a cloud has a few dozen satellites at most).
fn with_virtual_accounts(c: &Db, mut satellite: Satellite) -> Result<Satellite> {
    satellite.virtual_accounts = virtual_account_ids(c, satellite.id)?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    Ok(satellite)
}

pub fn find_by_satellite_id(c: &Db, satellite_id: &str) -> Result<Option<Satellite>> {
    let sql = format!("{SELECT} WHERE s.satellite_id = ?1");
    optional(c.query_row(&sql, [satellite_id], row))?
        .map(|s| with_virtual_accounts(c, s))
        .transpose()
}

pub fn find_by_name(c: &Db, name: &str) -> Result<Option<Satellite>> {
    let sql = format!("{SELECT} WHERE s.name = ?1");
    optional(c.query_row(&sql, [name], row))?
        .map(|s| with_virtual_accounts(c, s))
        .transpose()
}

pub fn list(c: &Db) -> Result<Vec<Satellite>> {
    let sql = format!("{SELECT} ORDER BY s.name");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map((), row)?;
    rows.map(|s| with_virtual_accounts(c, s?))
        .collect::<Result<_>>()
}

/// Virtual account ids a satellite serves.
pub fn virtual_account_ids(c: &Db, satellite_row: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT va.id, va.name FROM satellite_virtual_accounts sv
         JOIN virtual_accounts va ON va.id = sv.virtual_account_id
         WHERE sv.satellite_id = ?1 ORDER BY va.name",
    )?;
    let rows = stmt.query_map([satellite_row], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// The satellites (not revoked) that serve a virtual account: none when
/// the cloud serves it itself; more than one only in a database from
/// before a virtual account had one serving node.
pub fn serving(c: &Db, virtual_account_id: i64) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.name FROM satellite_virtual_accounts sv
         JOIN satellites s ON s.id = sv.satellite_id
         WHERE sv.virtual_account_id = ?1 AND s.revoked_at IS NULL ORDER BY s.name",
    )?;
    let rows = stmt.query_map([virtual_account_id], |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Virtual accounts that more than one satellite (not revoked) serves,
/// with those satellites' names.
pub fn shared_virtual_accounts(c: &Db) -> Result<Vec<(String, Vec<String>)>> {
    let mut stmt = c.prepare_cached(
        "SELECT va.id, va.name FROM satellite_virtual_accounts sv
         JOIN satellites s ON s.id = sv.satellite_id
         JOIN virtual_accounts va ON va.id = sv.virtual_account_id
         WHERE s.revoked_at IS NULL
         GROUP BY va.id, va.name HAVING COUNT(*) > 1 ORDER BY va.name",
    )?;
    let shared = stmt
        .query_map((), |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)))?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    shared
        .into_iter()
        .map(|(id, name)| Ok((name, serving(c, id)?)))
        .collect()
}

/// Makes `satellite_row` (none: the cloud itself) the one node serving a
/// virtual account.
pub fn reassign(c: &Db, virtual_account_id: i64, satellite_row: Option<i64>) -> Result<()> {
    c.execute(
        "DELETE FROM satellite_virtual_accounts WHERE virtual_account_id = ?1",
        [virtual_account_id],
    )?;
    if let Some(satellite_row) = satellite_row {
        c.execute(
            "INSERT INTO satellite_virtual_accounts (satellite_id, virtual_account_id) VALUES (?1, ?2)",
            params![satellite_row, virtual_account_id],
        )?;
    }
    Ok(())
}

/// Pins the satellite's bundle signer CA at its first, token-proved contact.
pub fn register(c: &Db, satellite_row: i64, signer_ca_sha256: &str, now: i64) -> Result<()> {
    c.execute(
        "UPDATE satellites SET registered_at = ?2, signer_ca_sha256 = ?3, last_contact_at = ?2 WHERE id = ?1",
        params![satellite_row, now, signer_ca_sha256],
    )?;
    Ok(())
}

/// Pins the satellite's bundle signer (and the one it replaced, if any).
pub fn pin_signer(
    c: &Db,
    satellite_row: i64,
    signer_sha256: &str,
    retired_sha256: Option<&str>,
) -> Result<()> {
    c.execute(
        "UPDATE satellites SET signer_sha256 = ?2,
           retired_signer_sha256 = COALESCE(?3, retired_signer_sha256) WHERE id = ?1",
        params![satellite_row, signer_sha256, retired_sha256],
    )?;
    Ok(())
}

pub fn touch(c: &Db, satellite_row: i64, now: i64) -> Result<()> {
    c.execute(
        "UPDATE satellites SET last_contact_at = ?2 WHERE id = ?1",
        params![satellite_row, now],
    )?;
    Ok(())
}

pub fn revoke(c: &Db, satellite_row: i64, now: i64) -> Result<()> {
    c.execute(
        "UPDATE satellites SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![satellite_row, now],
    )?;
    Ok(())
}

/// A product instance as a satellite reported it.
#[derive(Debug, Clone)]
pub struct RemoteInstance {
    pub instance_id: String,
    pub virtual_account_id: i64,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub status: String,
    pub registered_at: i64,
    pub last_contact_at: i64,
    pub entitlements: Vec<(String, i64)>,
}

/// A satellite's new snapshot, loaded row by row as it is parsed into a
/// staging table, then compared with what it last reported in SQL: the
/// cloud holds one product instance at a time in memory, not two
/// snapshots of a million (1.3 GB, measured). Only what changed is written
/// (a month's snapshot of a large site is mostly the same rows), and each
/// pool moves once by its net change, not once per usage row.
///
/// The staging tables are TEMP: per connection, in the temporary store
/// (a file for a command; the server's writer keeps it in memory), and
/// rolled back with the caller's transaction.
pub struct SnapshotLoad<'c> {
    c: &'c Db,
    put_instance: super::db::Statement<'c>,
    put_usage: super::db::Statement<'c>,
    rows: usize,
}

impl<'c> SnapshotLoad<'c> {
    pub fn begin(c: &'c Db) -> Result<Self> {
        c.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_instances (
                 instance_id        TEXT PRIMARY KEY,
                 virtual_account_id INTEGER NOT NULL,
                 pid                TEXT NOT NULL,
                 sn                 TEXT NOT NULL,
                 hostname           TEXT,
                 status             TEXT NOT NULL,
                 registered_at      INTEGER NOT NULL,
                 last_contact_at    INTEGER NOT NULL
             );
             CREATE TEMP TABLE IF NOT EXISTS incoming_usage (
                 instance_id        TEXT NOT NULL,
                 tag                TEXT NOT NULL,
                 virtual_account_id INTEGER NOT NULL,
                 count              INTEGER NOT NULL,
                 PRIMARY KEY (instance_id, tag)
             );
             DELETE FROM incoming_instances;
             DELETE FROM incoming_usage;",
        )?;
        Ok(Self {
            c,
            put_instance: c.prepare_cached(
                "INSERT INTO incoming_instances (instance_id, virtual_account_id, pid, sn,
                    hostname, status, registered_at, last_contact_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
            put_usage: c.prepare_cached(
                "INSERT INTO incoming_usage (instance_id, tag, virtual_account_id, count)
                 VALUES (?1, ?2, ?3, ?4)",
            )?,
            rows: 0,
        })
    }

    /// One product instance of the snapshot. An instance id (or a tag of
    /// one instance) given twice is refused: `Conflict` names it.
    pub fn add(&mut self, i: &RemoteInstance) -> Result<()> {
        let twice = |what: String| {
            move |e: super::sql::SqlError| match e {
                super::sql::SqlError::Constraint(_) => crate::error::Error::Conflict(what),
                other => other.into(),
            }
        };
        self.put_instance
            .execute(params![
                i.instance_id,
                i.virtual_account_id,
                i.pid,
                i.sn,
                i.hostname,
                i.status,
                i.registered_at,
                i.last_contact_at
            ])
            .map_err(twice(format!(
                "product instance {} is listed twice",
                i.instance_id
            )))?;
        for (tag, count) in &i.entitlements {
            self.put_usage
                .execute(params![i.instance_id, tag, i.virtual_account_id, count])
                .map_err(twice(format!(
                    "product instance {} lists {tag} twice",
                    i.instance_id
                )))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Product instances loaded so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Moves the pools by the net change, writes what changed, and returns
    /// the pools whose demand moved.
    pub fn finish(self, satellite_row: i64) -> Result<Vec<(i64, String)>> {
        let c = self.c;
        drop(self.put_instance);
        drop(self.put_usage);
        // Demand that went (rows no longer reported as they were) and
        // demand that came, per pool, before either table changes.
        let mut demand = PoolChanges::default();
        {
            let mut stmt = c.prepare_cached(
                "SELECT va, tag, CAST(SUM(delta) AS BIGINT) FROM (
                     SELECT r.virtual_account_id AS va, r.tag AS tag, -r.count AS delta
                       FROM remote_usage r
                      WHERE r.satellite_id = ?1 AND NOT EXISTS (
                            SELECT 1 FROM incoming_usage n
                             WHERE n.instance_id = r.instance_id AND n.tag = r.tag
                               AND n.virtual_account_id = r.virtual_account_id
                               AND n.count = r.count)
                     UNION ALL
                     SELECT n.virtual_account_id, n.tag, n.count
                       FROM incoming_usage n
                      WHERE NOT EXISTS (
                            SELECT 1 FROM remote_usage r
                             WHERE r.satellite_id = ?1 AND r.instance_id = n.instance_id
                               AND r.tag = n.tag AND r.virtual_account_id = n.virtual_account_id
                               AND r.count = n.count)) changes
                 GROUP BY va, tag",
            )?;
            stmt.for_each([satellite_row], |r| {
                let tag: String = r.get(1)?;
                demand.add(r.get(0)?, &tag, r.get(2)?);
                Ok(true)
            })?;
        }
        c.execute(
            "DELETE FROM remote_usage AS r WHERE r.satellite_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM incoming_usage n
                  WHERE n.instance_id = r.instance_id AND n.tag = r.tag
                    AND n.virtual_account_id = r.virtual_account_id AND n.count = r.count)",
            [satellite_row],
        )?;
        c.execute(
            "INSERT INTO remote_usage (satellite_id, instance_id, virtual_account_id, tag, count)
             SELECT ?1, n.instance_id, n.virtual_account_id, n.tag, n.count
               FROM incoming_usage n
              WHERE NOT EXISTS (
                    SELECT 1 FROM remote_usage r
                     WHERE r.satellite_id = ?1 AND r.instance_id = n.instance_id
                       AND r.tag = n.tag)
              ORDER BY n.instance_id, n.tag",
            [satellite_row],
        )?;
        c.execute(
            "DELETE FROM remote_instances AS r WHERE r.satellite_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM incoming_instances n WHERE n.instance_id = r.instance_id)",
            [satellite_row],
        )?;
        // New or changed instances only; `IS` compares NULL hostnames too.
        c.execute(
            "INSERT INTO remote_instances (satellite_id, instance_id, virtual_account_id, pid, sn,
                hostname, status, registered_at, last_contact_at)
             SELECT ?1, n.instance_id, n.virtual_account_id, n.pid, n.sn, n.hostname, n.status,
                    n.registered_at, n.last_contact_at
               FROM incoming_instances n
              WHERE NOT EXISTS (
                    SELECT 1 FROM remote_instances r
                     WHERE r.satellite_id = ?1 AND r.instance_id = n.instance_id
                       AND r.virtual_account_id = n.virtual_account_id AND r.pid = n.pid
                       AND r.sn = n.sn AND r.hostname IS NOT DISTINCT FROM n.hostname AND r.status = n.status
                       AND r.registered_at = n.registered_at
                       AND r.last_contact_at = n.last_contact_at)
              ORDER BY n.instance_id
             ON CONFLICT (satellite_id, instance_id) DO UPDATE SET
                virtual_account_id = excluded.virtual_account_id, pid = excluded.pid,
                sn = excluded.sn, hostname = excluded.hostname, status = excluded.status,
                registered_at = excluded.registered_at, last_contact_at = excluded.last_contact_at",
            [satellite_row],
        )?;
        c.execute_batch("DELETE FROM incoming_instances; DELETE FROM incoming_usage;")?;
        demand.apply(c)
    }
}

/// The net change of demand per pool while a snapshot is applied.
#[derive(Default)]
struct PoolChanges(std::collections::BTreeMap<i64, std::collections::HashMap<String, i64>>);

impl PoolChanges {
    fn add(&mut self, virtual_account_id: i64, tag: &str, count: i64) {
        let tags = self.0.entry(virtual_account_id).or_default();
        match tags.get_mut(tag) {
            Some(n) => *n += count,
            None => {
                tags.insert(tag.to_string(), count);
            }
        }
    }

    fn apply(self, c: &Db) -> Result<Vec<(i64, String)>> {
        let mut moved = c.prepare_cached(
            "INSERT INTO pools (virtual_account_id, tag, in_use) VALUES (?1, ?2, ?3)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pools.in_use + excluded.in_use",
        )?;
        let mut changed = Vec::new();
        for (va, tags) in self.0 {
            for (tag, n) in tags.into_iter().filter(|(_, n)| *n != 0) {
                moved.execute(params![va, tag, n])?;
                changed.push((va, tag));
            }
        }
        changed.sort();
        Ok(changed)
    }
}

/// A remote instance as the cloud's listings show it.
#[derive(Debug, Clone)]
pub struct RemoteInstanceRow {
    pub satellite: String,
    pub instance_id: String,
    pub virtual_account: String,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    /// The cloud's evaluation: OUT_OF_COMPLIANCE while any pool it uses is
    /// short here, as for a router registered at the cloud.
    pub status: String,
    /// What its satellite last told it.
    pub reported_status: String,
    pub registered_at: i64,
    pub last_contact_at: i64,
}

/// The cloud's status for a satellite's instance (column 9 of the remote
/// selects): while its satellite reports it authorized or short, any pool
/// it uses that is short at the cloud makes it OUT_OF_COMPLIANCE; what else
/// the satellite reports (expired, grace period over) stands.
const CLOUD_STATUS: &str = "CASE WHEN r.status IN ('AUTHORIZED', 'OUT_OF_COMPLIANCE') THEN
           CASE WHEN EXISTS (SELECT 1 FROM remote_usage u JOIN pools q
                  ON q.virtual_account_id = u.virtual_account_id AND q.tag = u.tag
                WHERE u.satellite_id = r.satellite_id AND u.instance_id = r.instance_id
                  AND q.status = 'Out of Compliance')
             THEN 'OUT_OF_COMPLIANCE' ELSE 'AUTHORIZED' END
         ELSE r.status END";

/// Satellites' instances counted by virtual account and the cloud's status.
pub fn remote_status_counts(c: &Db) -> Result<Vec<(String, String, i64)>> {
    let sql = format!(
        "SELECT va, cloud_status, COUNT(*) FROM
           (SELECT va.name AS va, {CLOUD_STATUS} AS cloud_status
            FROM remote_instances r JOIN virtual_accounts va ON va.id = r.virtual_account_id) judged
         GROUP BY va, cloud_status"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

pub fn remote_instances(c: &Db, virtual_account: Option<&str>) -> Result<Vec<RemoteInstanceRow>> {
    let sql = format!(
        "SELECT s.name, r.instance_id, va.name, r.pid, r.sn, r.hostname, r.status, r.registered_at,
                r.last_contact_at, {CLOUD_STATUS}
         FROM remote_instances r JOIN satellites s ON s.id = r.satellite_id
         JOIN virtual_accounts va ON va.id = r.virtual_account_id
         WHERE (CAST(?1 AS TEXT) IS NULL OR va.name = ?1)
         ORDER BY va.name, r.pid, r.sn"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([virtual_account], remote_row)?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// A remote-instance row from its first ten selected columns.
fn remote_row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<RemoteInstanceRow> {
    Ok(RemoteInstanceRow {
        satellite: r.get(0)?,
        instance_id: r.get(1)?,
        virtual_account: r.get(2)?,
        pid: r.get(3)?,
        sn: r.get(4)?,
        hostname: r.get(5)?,
        reported_status: r.get(6)?,
        status: r.get(9)?,
        registered_at: r.get(7)?,
        last_contact_at: r.get(8)?,
    })
}

/// Demand per (virtual account, tag) that came through each satellite.
pub fn remote_demand(c: &Db) -> Result<Vec<(String, String, String, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT va.name, u.tag, s.name, CAST(SUM(u.count) AS BIGINT) FROM remote_usage u
         JOIN satellites s ON s.id = u.satellite_id
         JOIN virtual_accounts va ON va.id = u.virtual_account_id
         GROUP BY va.name, u.tag, s.name ORDER BY va.name, u.tag, s.name",
    )?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

pub fn instance_count(c: &Db, satellite_row: i64) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM remote_instances WHERE satellite_id = ?1",
        [satellite_row],
        |r| r.get(0),
    )?)
}

pub fn add_event(c: &Db, satellite_row: i64, e: &super::sync::EventRow) -> Result<bool> {
    Ok(c.prepare_cached(
        "INSERT INTO remote_events (satellite_id, remote_id, at, kind, severity, virtual_account, subject, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
    )?
    .execute(params![satellite_row, e.id, e.at, e.kind, e.severity, e.virtual_account, e.subject, e.message],
    )? > 0)
}

pub fn add_report(c: &Db, satellite_row: i64, r: &super::sync::ReportRow) -> Result<bool> {
    Ok(c.prepare_cached(
        "INSERT INTO remote_reports (satellite_id, remote_id, kind, created_at, virtual_account, summary, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?
    .execute(params![satellite_row, r.id, r.kind, r.created_at, r.virtual_account, r.summary, r.body],
    )? > 0)
}

pub fn put_history(c: &Db, satellite_row: i64, h: &super::sync::HistoryRow) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO remote_usage_history (satellite_id, day, virtual_account, tag, in_use, available)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (satellite_id, day, virtual_account, tag) DO UPDATE SET
           in_use = excluded.in_use, available = excluded.available",
    )?
    .execute(params![satellite_row, h.day, h.virtual_account, h.tag, h.in_use, h.available],
    )?;
    Ok(())
}

/// Counts of what a satellite has sent so far (for `satellite list`).
pub fn remote_counts(c: &Db, satellite_row: i64) -> Result<(i64, i64)> {
    Ok(c.query_row(
        "SELECT (SELECT COUNT(*) FROM remote_events WHERE satellite_id = ?1),
                (SELECT COUNT(*) FROM remote_reports WHERE satellite_id = ?1)",
        [satellite_row],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Records the upstream identity certificate issued to a satellite at its
/// connected registration (a repeated registration adds another).
pub fn add_identity(
    c: &Db,
    satellite_row: i64,
    fingerprint: &[u8],
    serial_hex: &str,
    issued_at: i64,
    not_after: i64,
) -> Result<()> {
    c.execute(
        "INSERT INTO satellite_identities (fingerprint, satellite_id, serial_hex, issued_at, not_after)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![fingerprint, satellite_row, serial_hex, issued_at, not_after],
    )?;
    Ok(())
}

/// The satellite holding the identity certificate with this fingerprint,
/// and when that certificate expires.
pub fn find_by_identity(c: &Db, fingerprint: &[u8]) -> Result<Option<(Satellite, i64)>> {
    let found: Option<(String, i64)> = optional(c.query_row(
        "SELECT s.satellite_id, i.not_after FROM satellite_identities i
         JOIN satellites s ON s.id = i.satellite_id WHERE i.fingerprint = ?1",
        [fingerprint],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ))?;
    match found {
        Some((satellite_id, not_after)) => {
            Ok(find_by_satellite_id(c, &satellite_id)?.map(|s| (s, not_after)))
        }
        None => Ok(None),
    }
}

/// A remote instance and its demand: (tag, count).
pub type RemoteWithUsage = (RemoteInstanceRow, Vec<(String, i64)>);

/// A remote instance by instance id or UDI, with its demand.
pub fn find_remote(
    c: &Db,
    instance_id: &str,
    udi: Option<(&str, &str)>,
) -> Result<Option<RemoteWithUsage>> {
    let (pid, sn) = udi.unwrap_or(("", ""));
    let found = optional(c.query_row(
        &format!(
            "SELECT s.name, r.instance_id, va.name, r.pid, r.sn, r.hostname, r.status, r.registered_at,
                r.last_contact_at, {CLOUD_STATUS}, r.satellite_id
         FROM remote_instances r JOIN satellites s ON s.id = r.satellite_id
         JOIN virtual_accounts va ON va.id = r.virtual_account_id
         WHERE r.instance_id = ?1 OR (r.pid = ?2 AND r.sn = ?3) LIMIT 1"
        ),
        params![instance_id, pid, sn],
        |r| Ok((remote_row(r)?, r.get::<i64>(10)?)),
    ))?;
    let Some((row, satellite_row)) = found else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT tag, count FROM remote_usage WHERE satellite_id = ?1 AND instance_id = ?2 ORDER BY tag",
    )?;
    let usage = stmt
        .query_map(params![satellite_row, row.instance_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<super::sql::SqlResult<_>>()?;
    Ok(Some((row, usage)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, va: i64, tags: &[(&str, i64)]) -> RemoteInstance {
        RemoteInstance {
            instance_id: id.into(),
            virtual_account_id: va,
            pid: "C9300".into(),
            sn: id.into(),
            hostname: None,
            status: "Authorized".into(),
            registered_at: 0,
            last_contact_at: 0,
            entitlements: tags.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn in_use(c: &Db, va: i64, tag: &str) -> i64 {
        c.query_row(
            "SELECT in_use FROM pools WHERE virtual_account_id = ?1 AND tag = ?2",
            params![va, tag],
            |r| r.get(0),
        )
        .unwrap_or(0)
    }

    /// A whole snapshot through [`SnapshotLoad`], as the cloud streams one.
    fn replace_instances(
        c: &Db,
        satellite_row: i64,
        instances: &[RemoteInstance],
    ) -> Result<Vec<(i64, String)>> {
        let mut load = SnapshotLoad::begin(c)?;
        for i in instances {
            load.add(i)?;
        }
        load.finish(satellite_row)
    }

    /// A database with virtual accounts 1 and 2 and a satellite serving both.
    fn with_satellite() -> (tempfile::TempDir, Db, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = crate::store::open_and_migrate(&dir.path().join("s.db")).expect("db");
        c.execute_batch(
            "INSERT INTO accounts (id, name, created_at) VALUES (1, 'A', 0);
             INSERT INTO virtual_accounts (id, account_id, name, created_at) VALUES (1, 1, 'one', 0), (2, 1, 'two', 0);",
        )
        .expect("accounts");
        let sat = create(
            &c,
            &NewSatellite {
                satellite_id: "sat-1",
                name: "site",
                token_hash: &[0; 32],
                token_expires_at: 0,
                virtual_account_ids: &[1, 2],
            },
            0,
        )
        .expect("satellite");
        (dir, c, sat)
    }

    #[test]
    fn a_snapshot_moves_each_pool_by_its_net_change() {
        let (_dir, c, sat) = with_satellite();
        let first = [
            instance("a", 1, &[("T", 2), ("U", 1)]),
            instance("b", 1, &[("T", 1)]),
        ];
        let changed = replace_instances(&c, sat, &first).expect("first");
        assert_eq!(changed, vec![(1, "T".into()), (1, "U".into())]);
        assert_eq!((in_use(&c, 1, "T"), in_use(&c, 1, "U")), (3, 1));

        // a moves to two, b is gone, c is new, U stays as it was.
        let second = [
            instance("a", 2, &[("T", 2)]),
            instance("c", 1, &[("T", 5), ("U", 1)]),
        ];
        let changed = replace_instances(&c, sat, &second).expect("second");
        assert_eq!(changed, vec![(1, "T".into()), (2, "T".into())]);
        assert_eq!(in_use(&c, 1, "T"), 5);
        assert_eq!(in_use(&c, 1, "U"), 1);
        assert_eq!(in_use(&c, 2, "T"), 2);

        let changed = replace_instances(&c, sat, &second).expect("same again");
        assert!(changed.is_empty(), "{changed:?}");
        let changed = replace_instances(&c, sat, &[]).expect("empty");
        assert_eq!(changed.len(), 3);
        assert_eq!(
            (in_use(&c, 1, "T"), in_use(&c, 1, "U"), in_use(&c, 2, "T")),
            (0, 0, 0)
        );
    }

    #[test]
    fn an_instance_listed_twice_is_refused_and_changes_nothing() {
        let (_dir, c, sat) = with_satellite();
        let twice = [instance("a", 1, &[("T", 2)]), instance("a", 1, &[("T", 1)])];
        let err = replace_instances(&c, sat, &twice).expect_err("twice");
        assert!(err.to_string().contains("listed twice"), "{err}");
        let tag_twice = [instance("b", 1, &[("T", 2), ("T", 1)])];
        let err = replace_instances(&c, sat, &tag_twice).expect_err("tag twice");
        assert!(err.to_string().contains("lists T twice"), "{err}");
        let kept: i64 = c
            .query_row("SELECT COUNT(*) FROM remote_instances", (), |r| r.get(0))
            .expect("count");
        assert_eq!((kept, in_use(&c, 1, "T")), (0, 0));
    }
}
