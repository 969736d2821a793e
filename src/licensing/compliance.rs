//! The compliance view: per virtual account and tag, what is held, what is
//! used and what is short.

use super::catalog::Catalog;
use super::pool;
use super::rules;
use crate::error::Result;
use crate::store::Db;
use crate::store::{accounts, usage};
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
            let state = pool::state(c, catalog, va_id, &tag, now)?;
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
