//! Registration tokens: list, create, revoke within the caller's reach.

use super::{Action, Caller, Page, Result};
use crate::domain::TokenTerms;
use crate::error::Error;
use crate::inventory::{self, CreatedToken};
use crate::store::tokens::TokenInfo;
use crate::store::Db;

pub fn list(
    c: &Db,
    caller: &Caller,
    account: &str,
    virtual_account: Option<&str>,
    page: Page,
    now: i64,
) -> Result<Vec<TokenInfo>> {
    caller.authorize(Action::Read, virtual_account)?;
    let mut tokens = inventory::token_list(c, account, virtual_account, now)?;
    tokens.retain(|t| caller.reaches(&t.virtual_account));
    Ok(page.of(tokens))
}

pub fn create(
    c: &Db,
    caller: &Caller,
    account: &str,
    virtual_account: &str,
    terms: &TokenTerms,
    now: i64,
) -> Result<CreatedToken> {
    caller.authorize(Action::Operate, Some(virtual_account))?;
    Ok(inventory::create_token(
        c,
        account,
        virtual_account,
        terms,
        now,
    )?)
}

/// Revokes a token (whole secret or prefix). The caller must reach the
/// token's virtual account, and `virtual_account` (when the path names
/// one) must be it.
pub fn revoke(
    c: &Db,
    caller: &Caller,
    account: &str,
    virtual_account: Option<&str>,
    token: &str,
    now: i64,
) -> Result<String> {
    caller.authorize(Action::Operate, virtual_account)?;
    if virtual_account.is_none() && caller.scope().is_none() {
        // An admin reaches every token: the inventory's own refusals
        // (prefix too short, unknown token) say best what is wrong.
        return Ok(inventory::revoke_token(c, account, token, now)?);
    }
    let prefix: String = token
        .trim()
        .trim_end_matches('…')
        .chars()
        .take(crate::domain::token::PREFIX_LEN)
        .collect();
    let visible = inventory::token_list(c, account, virtual_account, now)?
        .into_iter()
        .find(|t| t.token_prefix == prefix);
    let Some(found) = visible else {
        return Err(Error::NotFound(format!(
            "no registration token {prefix}…{}; see the token list",
            virtual_account
                .map(|va| format!(" in {va:?}"))
                .unwrap_or_default()
        ))
        .into());
    };
    caller.authorize(Action::Operate, Some(&found.virtual_account))?;
    Ok(inventory::revoke_token(c, account, token, now)?)
}
