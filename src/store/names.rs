//! Small look-ups by name and counts that several layers need.

use super::Db;
use crate::error::Result;

/// Every smart account's name.
pub fn account_names(c: &Db) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT name FROM accounts ORDER BY name")?;
    let rows = stmt.query_map((), |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// The name of a virtual account.
pub fn virtual_account(c: &Db, virtual_account_id: i64) -> Result<String> {
    Ok(
        c.prepare_cached("SELECT name FROM virtual_accounts WHERE id = ?1")?
            .query_row([virtual_account_id], |r| r.get(0))?,
    )
}

/// The smart account a virtual account belongs to.
pub fn account_of(c: &Db, virtual_account_id: i64) -> Result<String> {
    Ok(c.prepare_cached(
        "SELECT a.name FROM accounts a JOIN virtual_accounts va ON va.account_id = a.id WHERE va.id = ?1",
    )?
    .query_row([virtual_account_id], |r| r.get(0))?)
}

/// How many certificates this satellite's CA has signed.
pub fn issued_certificates(c: &Db) -> Result<i64> {
    Ok(c.prepare_cached("SELECT COUNT(*) FROM certificates")?
        .query_row((), |r| r.get(0))?)
}
