//! Entitlement demand per instance and the pools it adds up to. The pools'
//! `in_use` is maintained by triggers (migration 2), so every path that
//! changes usage keeps it exact.

use super::batch::{Batched, Column};
use super::sql::params;
use super::Db;
use crate::domain::PoolStatus;
use crate::error::Result;

/// The instance's current demand: (tag, count, status). The status is the
/// pool's now, not the one answered at request time: when a later request
/// pushes a pool short, every instance using it is out of compliance (§6).
pub fn of_instance(c: &Db, instance_row_id: i64) -> Result<Vec<(String, i64, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT u.tag, u.count,
                CASE WHEN p.status = 'Out of Compliance' THEN 'OUT_OF_COMPLIANCE' ELSE 'AUTHORIZED' END
         FROM entitlement_usage u
         LEFT JOIN pools p ON p.virtual_account_id = u.virtual_account_id AND p.tag = u.tag
         WHERE u.instance_id = ?1 ORDER BY u.tag",
    )?;
    let rows = stmt.query_map([instance_row_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// One row of an instance's demand as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub tag: String,
    pub count: i64,
    pub virtual_account_id: i64,
}

/// The instance's current demand per tag, as stored (no join): what an
/// ENTITLEMENT compares its request with, to write only what changed.
pub fn counts_of(c: &Db, instance_row_id: i64) -> Result<Vec<Demand>> {
    let mut stmt = c.prepare_cached(
        "SELECT tag, count, virtual_account_id FROM entitlement_usage WHERE instance_id = ?1 ORDER BY tag",
    )?;
    let rows = stmt.query_map([instance_row_id], |r| {
        Ok(Demand {
            tag: r.get(0)?,
            count: r.get(1)?,
            virtual_account_id: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// A router's usage changes with nearly every ENTITLEMENT: these writes
/// are batched on PostgreSQL (see `batch`), keyed by (instance, tag).
static SET: Batched = Batched {
    one: "INSERT INTO entitlement_usage (instance_id, tag, virtual_account_id, count, requested_at)
          VALUES (?1, ?2, ?3, ?4, ?5)
          ON CONFLICT (instance_id, tag) DO UPDATE SET
            count = excluded.count, virtual_account_id = excluded.virtual_account_id,
            requested_at = excluded.requested_at",
    many:
        "INSERT INTO entitlement_usage (instance_id, tag, virtual_account_id, count, requested_at)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
           ON CONFLICT (instance_id, tag) DO UPDATE SET
             count = excluded.count, virtual_account_id = excluded.virtual_account_id,
             requested_at = excluded.requested_at",
    columns: &[
        Column::Int,
        Column::Text,
        Column::Int,
        Column::Int,
        Column::Int,
    ],
    domain: "usage",
    key: 2,
};

static CHANGE_COUNT: Batched = Batched {
    one: "UPDATE entitlement_usage SET count = ?3, requested_at = ?4
          WHERE instance_id = ?1 AND tag = ?2",
    many: "UPDATE entitlement_usage u SET count = v.count, requested_at = v.at
           FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) AS v(instance_id, tag, count, at)
           WHERE u.instance_id = v.instance_id AND u.tag = v.tag",
    columns: &[Column::Int, Column::Text, Column::Int, Column::Int],
    domain: "usage",
    key: 2,
};

static REMOVE: Batched = Batched {
    one: "DELETE FROM entitlement_usage WHERE instance_id = ?1 AND tag = ?2",
    many: "DELETE FROM entitlement_usage u USING unnest($1::bigint[], $2::text[]) AS v(instance_id, tag)
           WHERE u.instance_id = v.instance_id AND u.tag = v.tag",
    columns: &[Column::Int, Column::Text],
    domain: "usage",
    key: 2,
};

pub fn set(
    c: &Db,
    instance_row_id: i64,
    virtual_account_id: i64,
    tag: &str,
    count: i64,
    now: i64,
) -> Result<()> {
    c.execute_batched(
        &SET,
        params![instance_row_id, tag, virtual_account_id, count, now],
    )?;
    Ok(())
}

/// A new count for a tag the instance already uses in the same virtual
/// account: one row and (by trigger) one pool row change.
pub fn change_count(c: &Db, instance_row_id: i64, tag: &str, count: i64, now: i64) -> Result<()> {
    c.execute_batched(&CHANGE_COUNT, params![instance_row_id, tag, count, now])?;
    Ok(())
}

pub fn remove(c: &Db, instance_row_id: i64, tag: &str) -> Result<()> {
    c.execute_batched(&REMOVE, params![instance_row_id, tag])?;
    Ok(())
}

/// Moves an instance's demand to another virtual account (triggers move the counts).
pub fn move_instance(c: &Db, instance_row_id: i64, to_va: i64) -> Result<()> {
    c.execute(
        "UPDATE entitlement_usage SET virtual_account_id = ?2 WHERE instance_id = ?1",
        params![instance_row_id, to_va],
    )?;
    Ok(())
}

/// Demand in one pool.
pub fn in_use(c: &Db, virtual_account_id: i64, tag: &str) -> Result<(i64, String)> {
    Ok(crate::store::optional(
        c.prepare_cached(
            "SELECT in_use, status FROM pools WHERE virtual_account_id = ?1 AND tag = ?2",
        )?
        .query_row(params![virtual_account_id, tag], |r| {
            Ok((r.get(0)?, r.get(1)?))
        }),
    )?
    .unwrap_or((0, PoolStatus::InCompliance.as_str().to_string())))
}

/// One pool's row as kept: demand, the status and the shortfall last
/// recorded. A pool never used nor evaluated is empty and in compliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    pub in_use: i64,
    pub status: String,
    pub shortfall: i64,
    /// When its status or shortfall was last announced.
    pub announced_at: Option<i64>,
    /// A deeper shortfall waits to be announced (coalesced).
    pub held: bool,
}

pub fn pool(c: &Db, virtual_account_id: i64, tag: &str) -> Result<PoolRow> {
    Ok(crate::store::optional(
        c.prepare_cached(
            "SELECT in_use, status, shortfall, announced_at, held FROM pools
             WHERE virtual_account_id = ?1 AND tag = ?2",
        )?
        .query_row(params![virtual_account_id, tag], |r| {
            Ok(PoolRow {
                in_use: r.get(0)?,
                status: r.get(1)?,
                shortfall: r.get(2)?,
                announced_at: r.get(3)?,
                held: r.get(4)?,
            })
        }),
    )?
    .unwrap_or_else(|| PoolRow {
        in_use: 0,
        status: PoolStatus::InCompliance.as_str().to_string(),
        shortfall: 0,
        announced_at: None,
        held: false,
    }))
}

/// Pool keys of a virtual account: tags with demand or licenses.
pub fn pools_of(c: &Db, virtual_account_id: i64) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT tag FROM pools WHERE virtual_account_id = ?1
         UNION SELECT tag FROM licenses WHERE virtual_account_id = ?1 ORDER BY 1",
    )?;
    let rows = stmt.query_map([virtual_account_id], |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
