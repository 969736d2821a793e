//! The compliance view: per virtual account and tag, what is held, what is
//! used and what is short.

use super::catalog::Catalog;
use super::rules;
use super::rules::PoolStatus;
use crate::error::Result;
use crate::store::Db;
use crate::store::{accounts, licenses, usage};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ComplianceRow {
    pub virtual_account: String,
    pub tag: String,
    pub available: i64,
    pub in_use: i64,
    pub shortfall: i64,
    pub status: &'static str,
    /// On the cloud: the part of `in_use` reported by each satellite.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub in_use_by_satellite: std::collections::BTreeMap<String, i64>,
}

pub fn rows(
    c: &Db,
    catalog: &Catalog,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Vec<ComplianceRow>> {
    // O(pools): the virtual accounts' ids and names, not their counts.
    let vas = match virtual_account {
        Some(name) => vec![accounts::require_id(c, account, name)?],
        None => accounts::ids(c, account)?,
    };
    let mut rows = Vec::new();
    for (va_id, va_name) in vas {
        for tag in usage::pools_of(c, va_id)? {
            let state = state(c, catalog, va_id, &tag, now)?;
            if state.in_use == 0 && state.available == 0 {
                continue;
            }
            rows.push(ComplianceRow {
                virtual_account: va_name.clone(),
                shortfall: rules::shortfall(
                    catalog.is_tracking(&tag),
                    state.in_use,
                    state.available,
                ),
                tag,
                available: state.available,
                in_use: state.in_use,
                status: state.status.as_str(),
                in_use_by_satellite: Default::default(),
            });
        }
    }
    Ok(rows)
}

/// Every pool of every account (for `/metrics`).
pub fn all_accounts(c: &Db, catalog: &Catalog, now: i64) -> Result<Vec<ComplianceRow>> {
    let accounts = crate::store::names::account_names(c)?;
    let mut rows = Vec::new();
    for account in accounts {
        rows.extend(self::rows(c, catalog, &account, None, now)?);
    }
    Ok(rows)
}

/// The current state of one pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub in_use: i64,
    pub available: i64,
    pub status: PoolStatus,
}

pub fn state(c: &Db, catalog: &Catalog, va_id: i64, tag: &str, now: i64) -> Result<PoolState> {
    let available = licenses::available(c, va_id, tag, now)?;
    let (in_use, _) = usage::in_use(c, va_id, tag)?;
    Ok(PoolState {
        in_use,
        available,
        status: rules::pool_status(catalog.is_tracking(tag), in_use, available),
    })
}
