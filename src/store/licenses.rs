//! Licenses held by virtual accounts: perpetual or term, with a quantity.

use super::sql::params;
use super::Db;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct License {
    pub id: i64,
    pub virtual_account: String,
    pub sku: String,
    pub tag: String,
    pub quantity: i64,
    pub license_type: String,
    pub start: String,
    pub end: Option<String>,
    #[serde(skip)]
    pub start_at: i64,
    #[serde(skip)]
    pub end_at: Option<i64>,
    /// Whether the term covers now.
    pub active: bool,
}

pub struct NewLicense<'a> {
    pub virtual_account_id: i64,
    pub sku: &'a str,
    pub tag: &'a str,
    pub quantity: i64,
    pub start_at: i64,
    pub end_at: Option<i64>,
}

pub fn insert(c: &Db, license: &NewLicense<'_>, now: i64) -> Result<i64> {
    let id = c.query_row(
        "INSERT INTO licenses (virtual_account_id, sku, tag, quantity, license_type, start_at, end_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            license.virtual_account_id,
            license.sku,
            license.tag,
            license.quantity,
            if license.end_at.is_some() { "TERM" } else { "PERPETUAL" },
            license.start_at,
            license.end_at,
            now
        ], |r| r.get::<i64>(0)
    )?;
    Ok(id)
}

/// Adds to the virtual account's row of the same SKU and term (start, end,
/// hence type) if it has one, so moving licenses back and forth leaves one
/// row per purchase, not one per move; otherwise inserts. Returns the row id.
pub fn add_or_merge(c: &Db, license: &NewLicense<'_>, now: i64) -> Result<i64> {
    let existing: Option<i64> = super::optional(
        c.prepare_cached(
            "SELECT id FROM licenses WHERE virtual_account_id = ?1 AND sku = ?2 AND tag = ?3
               AND start_at = ?4 AND end_at IS NOT DISTINCT FROM ?5 ORDER BY id LIMIT 1",
        )?
        .query_row(
            params![
                license.virtual_account_id,
                license.sku,
                license.tag,
                license.start_at,
                license.end_at
            ],
            |r| r.get(0),
        ),
    )?;
    match existing {
        Some(id) => {
            c.execute(
                "UPDATE licenses SET quantity = quantity + ?2 WHERE id = ?1",
                params![id, license.quantity],
            )?;
            Ok(id)
        }
        None => insert(c, license, now),
    }
}

/// Units of `tag` the virtual account holds at time `t`.
pub fn available(c: &Db, virtual_account_id: i64, tag: &str, t: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM licenses
         WHERE virtual_account_id = ?1 AND tag = ?2 AND start_at <= ?3 AND (end_at IS NULL OR end_at > ?3)",
    )?
    .query_row(params![virtual_account_id, tag, t], |r| r.get(0))?)
}

pub fn list(
    c: &Db,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Vec<License>> {
    let mut stmt = c.prepare_cached(
        "SELECT l.id, va.name, l.sku, l.tag, l.quantity, l.license_type, l.start_at, l.end_at,
                l.start_at <= ?3 AND (l.end_at IS NULL OR l.end_at > ?3)
         FROM licenses l JOIN virtual_accounts va ON va.id = l.virtual_account_id
         JOIN accounts a ON a.id = va.account_id
         WHERE a.name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR va.name = ?2)
         ORDER BY va.name, l.tag, l.sku, l.start_at, l.id",
    )?;
    // `active` is the same term rule `available` counts by (DESIGN §6).
    let rows = stmt.query_map(params![account, virtual_account, now], |r| {
        let start_at: i64 = r.get(6)?;
        let end_at: Option<i64> = r.get(7)?;
        Ok(License {
            id: r.get(0)?,
            virtual_account: r.get(1)?,
            sku: r.get(2)?,
            tag: r.get(3)?,
            quantity: r.get(4)?,
            license_type: r.get(5)?,
            start: rfc3339(start_at),
            end: end_at.map(rfc3339),
            start_at,
            end_at,
            active: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Moves `quantity` units of `sku` from one virtual account to another,
/// taking from the licenses that end soonest last (perpetual first kept).
/// Returns the tag moved.
pub fn transfer(
    c: &Db,
    from_va: i64,
    to_va: i64,
    sku: &str,
    quantity: i64,
    now: i64,
) -> Result<String> {
    let mut stmt = c.prepare_cached(
        "SELECT id, tag, quantity, start_at, end_at FROM licenses
         WHERE virtual_account_id = ?1 AND sku = ?2 AND (end_at IS NULL OR end_at > ?3)
         ORDER BY end_at IS NULL DESC, end_at DESC, id",
    )?;
    let rows: Vec<(i64, String, i64, i64, Option<i64>)> = stmt
        .query_map(params![from_va, sku, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<super::sql::SqlResult<_>>()?;
    let held: i64 = rows.iter().map(|r| r.2).sum();
    if held < quantity {
        return Err(Error::invalid(
            "quantity",
            format!("the source virtual account holds {held} current units of {sku}, fewer than {quantity}"),
        ));
    }
    let mut left = quantity;
    let mut tag = String::new();
    for (id, row_tag, row_quantity, start_at, end_at) in rows {
        if left == 0 {
            break;
        }
        let take = left.min(row_quantity);
        if take == row_quantity {
            c.execute("DELETE FROM licenses WHERE id = ?1", [id])?;
        } else {
            c.execute(
                "UPDATE licenses SET quantity = quantity - ?2 WHERE id = ?1",
                params![id, take],
            )?;
        }
        add_or_merge(
            c,
            &NewLicense {
                virtual_account_id: to_va,
                sku,
                tag: &row_tag,
                quantity: take,
                start_at,
                end_at,
            },
            now,
        )?;
        left -= take;
        tag = row_tag;
    }
    Ok(tag)
}

/// Tags whose availability changes in `(after, until]` because a term starts or ends.
pub fn pools_changing_between(c: &Db, after: i64, until: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT DISTINCT virtual_account_id, tag FROM licenses
         WHERE (end_at > ?1 AND end_at <= ?2) OR (start_at > ?1 AND start_at <= ?2)",
    )?;
    let rows = stmt.query_map(params![after, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
