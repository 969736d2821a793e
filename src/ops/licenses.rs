//! Licenses: the pool view in the shape of Cisco's on-prem manager, and
//! transfers between virtual accounts.

use super::{Action, Caller, Page, Result};
use crate::inventory::{self, Transfer};
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::Transition;
use crate::store::licenses::License;
use crate::store::Db;
use serde::Serialize;

/// One license pool (virtual account and entitlement tag), as
/// `POST /api/v1/accounts/{account}/licenses` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    pub license: String,
    /// Units held whose term covers now.
    pub quantity: i64,
    pub in_use: i64,
    /// Held minus in use (negative when short).
    pub available: i64,
    /// `In Compliance` or `Out of Compliance`.
    pub status: String,
    pub virtual_account: String,
    pub license_details: Vec<LicenseDetail>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetail {
    /// `PERPETUAL` or `TERM`.
    pub license_type: String,
    pub license: String,
    pub quantity: i64,
    pub start_date: String,
    pub end_date: Option<String>,
}

/// The virtual accounts a request is about: the ones it names (each must
/// be reachable), else every one the caller reaches.
pub(crate) fn requested<'a>(caller: &Caller, named: &'a [String]) -> Result<Option<Vec<&'a str>>> {
    for va in named {
        caller.authorize(Action::Read, Some(va))?;
    }
    Ok((!named.is_empty()).then(|| named.iter().map(String::as_str).collect()))
}

pub fn summary(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    virtual_accounts: &[String],
    page: Page,
    now: i64,
) -> Result<Vec<LicenseSummary>> {
    let named = requested(caller, virtual_accounts)?;
    let wanted = |va: &str| caller.reaches(va) && named.as_ref().is_none_or(|n| n.contains(&va));
    let rows = inventory::compliance_rows(c, catalog, account, None, now)?;
    let licenses: Vec<License> = inventory::license_list(c, account, None, now)?;
    let summaries = rows
        .into_iter()
        .filter(|r| wanted(&r.virtual_account))
        .map(|r| LicenseSummary {
            license_details: licenses
                .iter()
                .filter(|l| l.virtual_account == r.virtual_account && l.tag == r.tag)
                .map(|l| LicenseDetail {
                    license_type: l.license_type.clone(),
                    license: l.sku.clone(),
                    quantity: l.quantity,
                    start_date: l.start.clone(),
                    end_date: l.end.clone(),
                })
                .collect(),
            license: r.tag,
            quantity: r.available,
            in_use: r.in_use,
            available: r.available - r.in_use,
            status: r.status.to_string(),
            virtual_account: r.virtual_account,
        })
        .collect();
    Ok(page.of(summaries))
}

/// License rows (one per purchase) of the reachable virtual accounts.
pub fn list(
    c: &Db,
    caller: &Caller,
    account: &str,
    virtual_account: Option<&str>,
    page: Page,
    now: i64,
) -> Result<Vec<License>> {
    caller.authorize(Action::Read, virtual_account)?;
    let mut licenses = inventory::license_list(c, account, virtual_account, now)?;
    licenses.retain(|l| caller.reaches(&l.virtual_account));
    Ok(page.of(licenses))
}

/// Moves licenses between two virtual accounts the caller operates.
pub fn transfer(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    role: crate::config::Role,
    account: &str,
    transfer: &Transfer<'_>,
    now: i64,
) -> Result<Vec<Transition>> {
    caller.authorize(Action::Operate, Some(transfer.from))?;
    caller.authorize(Action::Operate, Some(transfer.to))?;
    if role != crate::config::Role::Cloud {
        return Err(crate::error::Error::WrongRole(
            "a satellite's licenses are its cloud's: transfer them there (`satellite license transfer` \
             on the cloud, or the cloud's API) and bring the result here by sync"
                .into(),
        )
        .into());
    }
    Ok(inventory::transfer_license(
        c, catalog, account, transfer, now,
    )?)
}

/// Adds purchased licenses (the cloud's job; a satellite refuses).
pub fn add(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    role: crate::config::Role,
    account: &str,
    order: &inventory::LicenseOrder<'_>,
    now: i64,
) -> Result<(i64, Vec<Transition>)> {
    caller.authorize(super::Action::Administer, None)?;
    Ok(inventory::add_license(
        c, catalog, role, account, order, now,
    )?)
}
