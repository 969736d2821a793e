//! The account calls of Cisco's manager: licenses, alerts, registration
//! tokens, license transfer.

use super::auth::Authenticated;
use super::body;
use super::error::{ApiError, ErrorBody};
use super::paging;
use super::Api;
use crate::domain::token::DEFAULT_DAYS;
use crate::domain::TokenTerms;
use crate::inventory::Transfer;
use crate::ops::{self, Page};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// `{"limit": -1 | n, "offset", "virtualAccounts": [...]}`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountQuery {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
    #[serde(default)]
    pub virtual_accounts: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Licenses {
    pub licenses: Vec<super::wire::LicenseSummary>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alerts {
    pub alerts: Vec<super::wire::Alert>,
}

#[utoipa::path(post, path = "/api/v1/accounts/{account}/licenses", tag = "licenses", params(("account" = String, Path, description = "The smart account")), request_body = AccountQuery, responses((status = 200, description = "License pools", body = Licenses), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn licenses(
    req: HttpRequest,
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let account = api.check_account(&path)?;
    let query: AccountQuery = body::json(&bytes)?;
    let page = Page::new(query.limit, query.offset)?;
    let now = api.now();
    let catalog = api.catalog();
    let mut licenses = api
        .into_inner()
        .read(move |c| {
            ops::licenses::summary(
                c,
                &catalog,
                &caller,
                &account,
                &query.virtual_accounts,
                paging::probe(page),
                now,
            )
        })
        .await?;
    let next_offset = paging::cut(page, &mut licenses);
    Ok(paging::ok(&req, next_offset).json(Licenses {
        licenses: licenses.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/accounts/{account}/alerts", tag = "licenses", params(("account" = String, Path, description = "The smart account")), request_body = AccountQuery, responses((status = 200, description = "Alerts", body = Alerts), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn alerts(
    req: HttpRequest,
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let account = api.check_account(&path)?;
    let query: AccountQuery = body::json(&bytes)?;
    let page = Page::new(query.limit, query.offset)?;
    let now = api.now();
    let catalog = api.catalog();
    let mut alerts = api
        .into_inner()
        .read(move |c| {
            ops::alerts::list(
                c,
                &catalog,
                &caller,
                &account,
                &query.virtual_accounts,
                paging::probe(page),
                now,
            )
        })
        .await?;
    let next_offset = paging::cut(page, &mut alerts);
    Ok(paging::ok(&req, next_offset).json(Alerts {
        alerts: alerts.into_iter().map(Into::into).collect(),
    }))
}

/// `?limit&offset` on listings.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A token as listings show it (its prefix: the secret is not kept).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub token: String,
    pub virtual_account: String,
    pub description: String,
    pub created_at: String,
    pub expiration_date: String,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub export_controlled: &'static str,
    pub status: &'static str,
}

fn export_word(allowed: bool) -> &'static str {
    if allowed {
        "Allowed"
    } else {
        "Not Allowed"
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    pub tokens: Vec<TokenView>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account"), PageQuery), responses((status = 200, description = "Registration tokens (prefixes)", body = Tokens), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn token_list(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (account, va) = path.into_inner();
    let account = api.check_account(&account)?;
    let page = Page::new(query.limit, query.offset)?;
    let now = api.now();
    let tokens = api
        .into_inner()
        .read(move |c| ops::tokens::list(c, &caller, &account, Some(&va), page, now))
        .await?;
    let tokens = tokens
        .into_iter()
        .map(|t| TokenView {
            token: t.token_prefix,
            virtual_account: t.virtual_account,
            description: t.description,
            created_at: t.created_at,
            expiration_date: t.expires_at,
            max_uses: t.max_uses,
            uses: t.uses,
            export_controlled: export_word(t.export_controlled),
            status: t.status,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Tokens { tokens }))
}

/// `expiresAfterDays` arrives as a number or a string ("365").
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Days {
    Number(i64),
    Text(String),
}

/// `{"description","expiresAfterDays","exportControlled":"Allowed|Not Allowed"}`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub expires_after_days: Option<Days>,
    #[serde(default)]
    pub export_controlled: Option<String>,
    #[serde(default)]
    pub max_uses: Option<u32>,
}

impl NewToken {
    fn terms(self) -> Result<TokenTerms, ApiError> {
        let days = match self.expires_after_days {
            None => i64::from(DEFAULT_DAYS),
            Some(Days::Number(n)) => n,
            // Digits only, as Cisco's clients write them ("365"): not "+30".
            Some(Days::Text(text)) => text
                .parse()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0'))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "expiresAfterDays",
                        format!("{text:?} is not a number of days (1-365)"),
                    )
                })?,
        };
        let days = u32::try_from(days)
            .map_err(|_| ApiError::invalid("expiresAfterDays", format!("{days} is not 1-365")))?;
        let export_controlled = match self.export_controlled.as_deref() {
            None | Some("Allowed") => true,
            Some("Not Allowed") => false,
            Some(other) => {
                return Err(ApiError::invalid(
                    "exportControlled",
                    format!("{other:?}: use \"Allowed\" or \"Not Allowed\""),
                ))
            }
        };
        let terms = TokenTerms {
            days,
            max_uses: self.max_uses,
            description: self.description.unwrap_or_default(),
            export_controlled,
        };
        terms.check().map_err(|reason| {
            let field = if reason.contains("days") {
                "expiresAfterDays"
            } else if reason.contains("max uses") {
                "maxUses"
            } else {
                "description"
            };
            ApiError::invalid(field, reason)
        })?;
        Ok(terms)
    }
}

/// `{"tokenInfo": {"token", ...}}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub token_info: TokenInfo,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub token: String,
    pub virtual_account: String,
    pub description: String,
    pub expiration_date: String,
    pub expires_after_days: u32,
    pub export_controlled: &'static str,
    pub max_uses: Option<u32>,
    pub created_by: String,
}

#[utoipa::path(post, path = "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account")), request_body = NewToken, responses((status = 200, description = "The new token, shown once", body = CreatedToken), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn token_create(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let (account, va) = path.into_inner();
    let account = api.check_account(&account)?;
    let terms = body::json::<NewToken>(&bytes)?.terms()?;
    let days = terms.days;
    let now = api.now();
    let created_by = caller.name.clone();
    let created = api
        .change(caller, move |c, caller| {
            ops::tokens::create(c, caller, &account, &va, &terms, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(CreatedToken {
        token_info: TokenInfo {
            token: created.token,
            virtual_account: created.virtual_account,
            description: created.description,
            expiration_date: created.expires_at,
            expires_after_days: days,
            export_controlled: export_word(created.export_controlled),
            max_uses: created.max_uses,
            created_by,
        },
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    pub token: String,
    pub status: &'static str,
}

#[utoipa::path(delete, path = "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens/{token}", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account"), ("token" = String, Path, description = "The token, or the prefix listings show")), responses((status = 200, description = "Revoked", body = Revoked), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "The token is already revoked", body = ErrorBody)), security(("bearer" = [])))]
pub async fn token_revoke(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, va, token) = path.into_inner();
    let account = api.check_account(&account)?;
    let now = api.now();
    let prefix = api
        .change(caller, move |c, caller| {
            ops::tokens::revoke(c, caller, &account, Some(&va), &token, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Revoked {
        token: prefix,
        status: "REVOKED",
    }))
}

/// The most licenses one transfer call moves.
pub const MAX_TRANSFER_ITEMS: usize = 100;

/// `{"licenses":[{"license","licenseType","quantity","targetVirtualAccount"}]}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    pub licenses: Vec<TransferItem>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferItem {
    /// The SKU to move.
    pub license: String,
    #[serde(default)]
    pub license_type: Option<String>,
    pub quantity: i64,
    pub target_virtual_account: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transferred {
    pub status: &'static str,
    /// The source's pools after the transfer (a shortfall is allowed, and
    /// reported here, in the event log and by a warning report).
    pub licenses: Vec<super::wire::LicenseSummary>,
}

#[utoipa::path(post, path = "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses/transfer", tag = "licenses", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account")), request_body = TransferRequest, responses((status = 200, description = "Transferred; the source pools after it", body = Transferred), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "Refused here: a satellite's licenses are its cloud's, or the source holds too few", body = ErrorBody)), security(("bearer" = [])))]
pub async fn transfer(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let (account, va) = path.into_inner();
    let account = api.check_account(&account)?;
    let request: TransferRequest = body::json(&bytes)?;
    if request.licenses.is_empty() || request.licenses.len() > MAX_TRANSFER_ITEMS {
        return Err(ApiError::invalid(
            "licenses",
            format!("give 1 to {MAX_TRANSFER_ITEMS} licenses to transfer"),
        ));
    }
    for (i, item) in request.licenses.iter().enumerate() {
        if let Some(kind) = item.license_type.as_deref() {
            if kind != "PERPETUAL" && kind != "TERM" {
                return Err(ApiError::invalid(
                    &format!("licenses[{i}].licenseType"),
                    format!("{kind:?}: use PERPETUAL or TERM"),
                ));
            }
        }
    }
    let now = api.now();
    let catalog = api.catalog();
    let role = api.config().role;
    let (licenses, _) = api
        .change_pools(caller, move |c, caller| {
            let mut transitions = Vec::new();
            for item in &request.licenses {
                let transfer = Transfer {
                    from: &va,
                    to: &item.target_virtual_account,
                    sku: &item.license,
                    quantity: item.quantity,
                };
                transitions.extend(ops::licenses::transfer(
                    c, &catalog, caller, role, &account, &transfer, now,
                )?);
            }
            let licenses = ops::licenses::summary(
                c,
                &catalog,
                caller,
                &account,
                std::slice::from_ref(&va),
                Page::ALL,
                now,
            )?;
            Ok((licenses, transitions))
        })
        .await?;
    Ok(HttpResponse::Ok().json(Transferred {
        status: "SUCCESS",
        licenses: licenses.into_iter().map(Into::into).collect(),
    }))
}

/// The automation path of Cisco's manager: the same call as `token_list`.
#[utoipa::path(get, path = "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account"), PageQuery), responses((status = 200, description = "Registration tokens (prefixes); 403 when unauthenticated", body = Tokens), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn backend_token_list(
    api: web::Data<Api>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    token_list(api, caller, path, query).await
}

/// The automation path of Cisco's manager: the same call as `token_create`.
#[utoipa::path(post, path = "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account")), request_body = NewToken, responses((status = 200, description = "The new token, shown once; 403 when unauthenticated", body = CreatedToken), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn backend_token_create(
    api: web::Data<Api>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    token_create(api, caller, path, req, payload).await
}

/// The automation path of Cisco's manager: the same call as `token_revoke`.
#[utoipa::path(delete, path = "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens/{token}", tag = "tokens", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account"), ("token" = String, Path, description = "The token, or the prefix listings show")), responses((status = 200, description = "Revoked", body = Revoked), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "The token is already revoked", body = ErrorBody)), security(("bearer" = [])))]
pub async fn backend_token_revoke(
    api: web::Data<Api>,
    caller: Authenticated,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    token_revoke(api, caller, path).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServeRequest {
    /// A satellite's name, or `cloud`.
    pub served_by: String,
}

/// At the cloud: makes one satellite, or the cloud itself, the one node
/// serving a virtual account (`satellite va serve`).
#[utoipa::path(post, path = "/api/v1/accounts/{account}/virtual-accounts/{va}/serve", tag = "satellites", params(("account" = String, Path, description = "The smart account"), ("va" = String, Path, description = "The virtual account")), request_body = ServeRequest, responses((status = 200, description = "The serving node changed", body = super::wire::Served), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "No such virtual account or satellite", body = ErrorBody), (status = 409, description = "Already served so, routers registered here are in it, or not a cloud", body = ErrorBody)), security(("bearer" = [])))]
pub async fn serve(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let (account, va) = path.into_inner();
    api.check_account(&account)?;
    let request: ServeRequest = body::json(&bytes)?;
    let now = api.now();
    let config = api.config().clone();
    let keys = {
        let (caller, config) = (caller.clone(), config.clone());
        api.blocking(move || ops::sync::keys(&caller, &config, now))
            .await?
    };
    let served = api
        .change(caller, move |c, caller| {
            ops::sync::serve_virtual_account(
                c,
                caller,
                &config,
                &keys,
                &va,
                &request.served_by,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::wire::Served::from(served)))
}
