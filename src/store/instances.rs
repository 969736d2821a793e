//! Product instances: registered devices.

use super::batch::{Batched, Column};
use super::optional;
use super::sql::params;
use super::Db;
use crate::clock::rfc3339;
use crate::domain::Udi;
use crate::error::Result;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: i64,
    pub instance_id: String,
    pub virtual_account_id: i64,
    pub virtual_account: String,
    pub account: String,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub registered_at: i64,
    pub renewed_at: Option<i64>,
    pub last_contact_at: i64,
    pub authorized_at: Option<i64>,
    pub next_communication: Option<i64>,
    pub deadline: Option<i64>,
    /// Overall status of the last authorization, in the device API's words.
    pub authorization_status: Option<String>,
    /// Whether a pool it uses is short now.
    pub short: bool,
}

/// What listings print and scripts read.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub instance_id: String,
    pub udi: String,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub virtual_account: String,
    pub status: String,
    pub registered_at: String,
    pub last_contact_at: String,
    pub next_communication: Option<String>,
    pub deadline: Option<String>,
    /// On the cloud: the satellite the instance came through (none: direct).
    pub satellite: Option<String>,
    /// On the cloud, for a satellite's instance: the status its satellite
    /// last reported (`status` is the cloud's own evaluation).
    pub satellite_status: Option<String>,
}

impl Instance {
    pub fn udi(&self) -> Udi {
        Udi {
            pid: self.pid.clone(),
            sn: self.sn.clone(),
        }
    }

    /// The listing row, with the status the licensing rules derived.
    pub fn facts_view(&self, status: &str) -> InstanceView {
        InstanceView {
            instance_id: self.instance_id.clone(),
            udi: self.udi().to_string(),
            pid: self.pid.clone(),
            sn: self.sn.clone(),
            hostname: self.hostname.clone(),
            virtual_account: self.virtual_account.clone(),
            status: status.to_string(),
            registered_at: rfc3339(self.registered_at),
            last_contact_at: rfc3339(self.last_contact_at),
            next_communication: self.next_communication.map(rfc3339),
            deadline: self.deadline.map(rfc3339),
            satellite: None,
            satellite_status: None,
        }
    }
}

const SELECT: &str =
    "SELECT p.id, p.instance_id, p.virtual_account_id, va.name, a.name, p.pid, p.sn,
        p.hostname, p.registered_at, p.renewed_at, p.last_contact_at,
        p.authorized_at, p.next_communication, p.deadline, p.authorization_status,
        EXISTS (SELECT 1 FROM entitlement_usage u JOIN pools q
                  ON q.virtual_account_id = u.virtual_account_id AND q.tag = u.tag
                WHERE u.instance_id = p.id AND q.status = 'Out of Compliance')
     FROM product_instances p
     JOIN virtual_accounts va ON va.id = p.virtual_account_id
     JOIN accounts a ON a.id = va.account_id";

fn row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<Instance> {
    Ok(Instance {
        id: r.get(0)?,
        instance_id: r.get(1)?,
        virtual_account_id: r.get(2)?,
        virtual_account: r.get(3)?,
        account: r.get(4)?,
        pid: r.get(5)?,
        sn: r.get(6)?,
        hostname: r.get(7)?,
        registered_at: r.get(8)?,
        renewed_at: r.get(9)?,
        last_contact_at: r.get(10)?,
        authorized_at: r.get(11)?,
        next_communication: r.get(12)?,
        deadline: r.get(13)?,
        authorization_status: r.get(14)?,
        short: r.get(15)?,
    })
}

pub fn find_by_udi(conn: &Db, pid: &str, sn: &str) -> Result<Option<Instance>> {
    let sql = format!("{SELECT} WHERE p.pid = ?1 AND p.sn = ?2");
    Ok(optional(
        conn.prepare_cached(&sql)?.query_row(params![pid, sn], row),
    )?)
}

pub fn find_by_row_id(conn: &Db, id: i64) -> Result<Option<Instance>> {
    let sql = format!("{SELECT} WHERE p.id = ?1");
    Ok(optional(conn.prepare_cached(&sql)?.query_row([id], row))?)
}

/// The instance a device message comes from, on the hot path: the same
/// record without `short` (always false here), which would cost a join
/// over its usage that no device answer needs.
pub fn find_for_message(conn: &Db, id: i64) -> Result<Option<Instance>> {
    Ok(optional(
        conn.prepare_cached(
            "SELECT p.id, p.instance_id, p.virtual_account_id, va.name, a.name, p.pid, p.sn,
                p.hostname, p.registered_at, p.renewed_at, p.last_contact_at,
                p.authorized_at, p.next_communication, p.deadline, p.authorization_status, 0
             FROM product_instances p
             JOIN virtual_accounts va ON va.id = p.virtual_account_id
             JOIN accounts a ON a.id = va.account_id
             WHERE p.id = ?1",
        )?
        .query_row([id], row),
    )?)
}

pub fn find_by_instance_id(conn: &Db, instance_id: &str) -> Result<Option<Instance>> {
    let sql = format!("{SELECT} WHERE p.instance_id = ?1");
    Ok(optional(
        conn.prepare_cached(&sql)?.query_row([instance_id], row),
    )?)
}

/// The first `limit` instances in listing order.
pub fn list_first(
    conn: &Db,
    account: &str,
    virtual_account: Option<&str>,
    limit: usize,
) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    page(conn, account, virtual_account, None, 0, limit, |i| {
        out.push(i);
        true
    })?;
    Ok(out)
}

/// How many instances an account (or one of its virtual accounts) holds.
pub fn count(conn: &Db, account: &str, virtual_account: Option<&str>) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM product_instances p
             JOIN virtual_accounts va ON va.id = p.virtual_account_id
             JOIN accounts a ON a.id = va.account_id
             WHERE a.name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR va.name = ?2)",
        )?
        .query_row(params![account, virtual_account], |r| r.get(0))?)
}

/// Where a listing stopped: the last (virtual account, PID, SN) it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingKey {
    pub virtual_account: String,
    pub pid: String,
    pub sn: String,
}

impl Instance {
    pub fn listing_key(&self) -> ListingKey {
        ListingKey {
            virtual_account: self.virtual_account.clone(),
            pid: self.pid.clone(),
            sn: self.sn.clone(),
        }
    }
}

/// Instances in listing order (virtual account, PID, SN): after `after` if
/// given, else past the first `offset`; at most `limit`, each handed to
/// `each` as the cursor reads it (nothing is collected); `each` returns
/// false to stop early. Each virtual account is an index range in order.
pub fn page(
    conn: &Db,
    account: &str,
    virtual_account: Option<&str>,
    after: Option<&ListingKey>,
    offset: usize,
    limit: usize,
    mut each: impl FnMut(Instance) -> bool,
) -> Result<()> {
    let vas: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT va.id, va.name FROM virtual_accounts va JOIN accounts a ON a.id = va.account_id
             WHERE a.name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR va.name = ?2) ORDER BY va.name",
        )?
        .query_map(params![account, virtual_account], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<super::sql::SqlResult<_>>()?;
    let mut skip = offset;
    let mut left = limit;
    for (va_id, va_name) in vas {
        if left == 0 {
            break;
        }
        let from = match after {
            Some(k) if va_name < k.virtual_account => continue,
            Some(k) if va_name == k.virtual_account => Some((k.pid.as_str(), k.sn.as_str())),
            _ => None,
        };
        if skip > 0 {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM product_instances WHERE virtual_account_id = ?1",
                )?
                .query_row([va_id], |r| r.get(0))?;
            let n = usize::try_from(n).unwrap_or(0);
            if skip >= n {
                skip -= n;
                continue;
            }
        }
        let sql = match from {
            None => format!(
                "{SELECT} WHERE p.virtual_account_id = ?1 ORDER BY p.pid, p.sn LIMIT ?2 OFFSET ?3"
            ),
            Some(_) => format!(
                "{SELECT} WHERE p.virtual_account_id = ?1 AND (p.pid, p.sn) > (?4, ?5)
                 ORDER BY p.pid, p.sn LIMIT ?2 OFFSET ?3"
            ),
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let bound = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (page, skipped) = (bound(left), bound(skip));
        let mut stopped = false;
        let mut take = |r: &super::sql::Row<'_>| -> super::sql::SqlResult<bool> {
            left -= 1;
            if !each(row(r)?) {
                stopped = true;
                return Ok(false);
            }
            Ok(left > 0)
        };
        match from {
            None => stmt.for_each(params![va_id, page, skipped], &mut take)?,
            Some((pid, sn)) => stmt.for_each(params![va_id, page, skipped, pid, sn], &mut take)?,
        };
        if stopped {
            return Ok(());
        }
        skip = 0;
    }
    Ok(())
}

pub struct NewRegistration<'a> {
    pub instance_id: &'a str,
    pub virtual_account_id: i64,
    pub pid: &'a str,
    pub sn: &'a str,
    pub hostname: Option<&'a str>,
    pub token_id: i64,
    pub now: i64,
}

/// Inserts the instance, or re-registers an existing UDI in place (it keeps
/// its instance id; the caller revokes its old certificates).
pub fn upsert(conn: &Db, reg: &NewRegistration<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO product_instances
           (instance_id, virtual_account_id, pid, sn, hostname, token_id, registered_at, last_contact_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT(pid, sn) DO UPDATE SET
           virtual_account_id = excluded.virtual_account_id,
           hostname = excluded.hostname,
           token_id = excluded.token_id,
           registered_at = excluded.registered_at,
           renewed_at = NULL,
           last_contact_at = excluded.last_contact_at",
    )?
    .execute(params![
        reg.instance_id,
        reg.virtual_account_id,
        reg.pid,
        reg.sn,
        reg.hostname,
        reg.token_id,
        reg.now
    ])?;
    Ok(conn
        .prepare_cached("SELECT id FROM product_instances WHERE pid = ?1 AND sn = ?2")?
        .query_row(params![reg.pid, reg.sn], |r| r.get(0))?)
}

/// Batched on PostgreSQL (see `batch`), as every router's contact is.
static TOUCH: Batched = Batched {
    one: "UPDATE product_instances SET last_contact_at = ?2 WHERE id = ?1",
    many: "UPDATE product_instances p SET last_contact_at = v.at
           FROM unnest($1::bigint[], $2::bigint[]) AS v(id, at) WHERE p.id = v.id",
    columns: &[Column::Int, Column::Int],
    domain: "instance",
    key: 1,
};

pub fn touch(conn: &Db, id: i64, now: i64) -> Result<()> {
    conn.execute_batched(&TOUCH, params![id, now])?;
    Ok(())
}

pub fn mark_renewed(conn: &Db, id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE product_instances SET renewed_at = ?2, last_contact_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

pub fn delete(conn: &Db, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM product_instances WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Records an authorization answered at `now` with the times the rules set.
static RECORD_AUTHORIZATION: Batched = Batched {
    one: "UPDATE product_instances SET authorized_at = ?2, next_communication = ?3, deadline = ?4,
            authorization_status = ?5, last_contact_at = ?2 WHERE id = ?1",
    many: "UPDATE product_instances p SET authorized_at = v.at, next_communication = v.next,
             deadline = v.deadline, authorization_status = v.status, last_contact_at = v.at
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
             AS v(id, at, next, deadline, status)
           WHERE p.id = v.id",
    columns: &[
        Column::Int,
        Column::Int,
        Column::Int,
        Column::Int,
        Column::Text,
    ],
    domain: "instance",
    key: 1,
};

/// Batched on PostgreSQL (see `batch`): every ENTITLEMENT writes it.
pub fn record_authorization(
    c: &Db,
    id: i64,
    status: &str,
    now: i64,
    next: i64,
    deadline: i64,
) -> Result<()> {
    c.execute_batched(
        &RECORD_AUTHORIZATION,
        params![id, now, next, deadline, status],
    )?;
    Ok(())
}

/// An instance whose deadline (moved by `offset`) passed.
#[derive(Debug, Clone)]
pub struct Lapsed {
    pub udi: Udi,
    pub hostname: Option<String>,
    pub virtual_account: String,
    pub last_contact_at: i64,
    /// `deadline + offset` and the row: where a batch of them ended.
    pub lapsed_at: i64,
    pub row_id: i64,
}

/// Instances whose `(deadline + offset, row id)` is past `after` and whose
/// `deadline + offset` is at most `now`, in that order, at most `limit`:
/// an index range on the deadline.
pub fn deadline_passed_after(
    c: &Db,
    offset: i64,
    after: (i64, i64),
    now: i64,
    limit: usize,
) -> Result<Vec<Lapsed>> {
    let mut stmt = c.prepare_cached(
        "SELECT p.pid, p.sn, p.hostname, va.name, p.last_contact_at, p.deadline, p.id
         FROM product_instances p
         JOIN virtual_accounts va ON va.id = p.virtual_account_id
         WHERE (p.deadline, p.id) > (CAST(?2 AS BIGINT) - ?1, ?3) AND p.deadline <= CAST(?4 AS BIGINT) - ?1
         ORDER BY p.deadline, p.id LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            offset,
            after.0,
            after.1,
            now,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok(Lapsed {
                udi: Udi {
                    pid: r.get(0)?,
                    sn: r.get(1)?,
                },
                hostname: r.get(2)?,
                virtual_account: r.get(3)?,
                last_contact_at: r.get(4)?,
                lapsed_at: r.get::<i64>(5)? + offset,
                row_id: r.get(6)?,
            })
        },
    )?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

pub fn move_to(c: &Db, id: i64, virtual_account_id: i64) -> Result<()> {
    c.execute(
        "UPDATE product_instances SET virtual_account_id = ?2 WHERE id = ?1",
        params![id, virtual_account_id],
    )?;
    crate::store::usage::move_instance(c, id, virtual_account_id)
}
