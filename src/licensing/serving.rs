//! A virtual account is served by exactly one node: the cloud itself (its
//! routers register there) or one satellite (DESIGN §2). At the cloud,
//! nothing may put routers into a virtual account a satellite serves: the
//! satellite hands out that account's whole pool, and the cloud would
//! count the same licenses twice.

use crate::error::{Error, Result};
use crate::store::satellites;
use crate::store::Db;

/// Refuses `what` (a token, a registration, a move) into a virtual account
/// that a satellite serves, naming it.
pub fn check_served_here(c: &Db, virtual_account_id: i64, va_name: &str, what: &str) -> Result<()> {
    match satellites::serving(c, virtual_account_id)?.first() {
        None => Ok(()),
        Some(satellite) => Err(Error::Conflict(format!(
            "virtual account {va_name:?} is served by satellite {satellite:?}, so {what} belongs \
             there; to serve it from this cloud again, run `satellite va serve {va_name} --by cloud`"
        ))),
    }
}
