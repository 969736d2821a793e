//! Product instances, reports and the event log.

use super::accounts::PageQuery;
use super::auth::Authenticated;
use super::body;
use super::error::{ApiError, ErrorBody};
use super::paging;
use super::wire::{EntitlementUsage, ReportSummary};
use super::wire::{Event, ProductInstance};
use super::Api;
use crate::licensing::reports;
use crate::ops::events::EventQuery;
use crate::ops::instances::InstanceFilter;
use crate::ops::{self, Page};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct InstanceQuery {
    pub virtual_account: Option<String>,
    pub status: Option<String>,
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instances {
    pub product_instances: Vec<ProductInstance>,
    /// The offset of the next page when this one was cut (more follow).
    pub next_offset: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/product-instances", tag = "product instances", params(("account" = String, Path, description = "The smart account"), InstanceQuery), responses((status = 200, description = "A page of product instances", body = Instances), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn instance_list(
    req: actix_web::HttpRequest,
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    query: web::Query<InstanceQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = api.check_account(&path)?;
    let query = query.into_inner();
    let page = Page::new(query.limit, query.offset)?;
    let filter = InstanceFilter {
        virtual_account: query.virtual_account,
        status: query.status,
        search: query.search,
    };
    let now = api.now();
    let mut product_instances = api
        .into_inner()
        .read(move |c| {
            ops::instances::list(c, &caller, &account, &filter, paging::probe(page), now)
        })
        .await?;
    let next_offset = paging::cut(page, &mut product_instances);
    Ok(paging::ok(&req, next_offset).json(Instances {
        product_instances: product_instances.into_iter().map(Into::into).collect(),
        next_offset,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceDetail {
    #[serde(flatten)]
    pub instance: ProductInstance,
    pub entitlements: Vec<EntitlementUsage>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/product-instances/{instance}", tag = "product instances", params(("account" = String, Path, description = "The smart account"), ("instance" = String, Path, description = "Instance id or UDI (PID:SN)")), responses((status = 200, description = "The instance and what it consumes", body = InstanceDetail), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "At a cloud: the instance is a satellite's (it is shown and changed there)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn instance_show(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, key) = path.into_inner();
    api.check_account(&account)?;
    let now = api.now();
    let (instance, entitlements) = api
        .into_inner()
        .read(move |c| ops::instances::show(c, &caller, &key, now))
        .await?;
    Ok(HttpResponse::Ok().json(InstanceDetail {
        instance: instance.into(),
        entitlements: entitlements.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{account}/product-instances/{instance}", tag = "product instances", params(("account" = String, Path, description = "The smart account"), ("instance" = String, Path, description = "Instance id or UDI (PID:SN)")), responses((status = 200, description = "Removed: certificate revoked, licenses released", body = ProductInstance), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "At a cloud: the instance is a satellite's (it is removed there)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn instance_remove(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (account, key) = path.into_inner();
    api.check_account(&account)?;
    let now = api.now();
    let catalog = api.catalog();
    let (removed, _) = api
        .change_pools(caller, move |c, caller| {
            ops::instances::remove(c, &catalog, caller, &key, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProductInstance::from(removed)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveRequest {
    pub target_virtual_account: String,
}

#[utoipa::path(post, path = "/api/v1/accounts/{account}/product-instances/{instance}/move", tag = "product instances", params(("account" = String, Path, description = "The smart account"), ("instance" = String, Path, description = "Instance id or UDI (PID:SN)")), request_body = MoveRequest, responses((status = 200, description = "Moved with its usage", body = ProductInstance), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "Already in that virtual account, the target is served by a satellite, or the instance is a satellite's", body = ErrorBody)), security(("bearer" = [])))]
pub async fn instance_move(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let (account, key) = path.into_inner();
    let account = api.check_account(&account)?;
    let request: MoveRequest = body::json(&bytes)?;
    let now = api.now();
    let catalog = api.catalog();
    let (moved, _) = api
        .change_pools(caller, move |c, caller| {
            ops::instances::move_to(
                c,
                &catalog,
                caller,
                &account,
                &key,
                &request.target_virtual_account,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProductInstance::from(moved)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reports {
    pub reports: Vec<ReportSummary>,
    /// The offset of the next page when this one was cut (more follow).
    pub next_offset: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/reports", tag = "reports", params(("account" = String, Path, description = "The smart account"), PageQuery), responses((status = 200, description = "Stored reports, newest first", body = Reports), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn report_list(
    req: actix_web::HttpRequest,
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    api.check_account(&path)?;
    let page = Page::new(query.limit, query.offset)?;
    let mut reports = api
        .into_inner()
        .read(move |c| ops::reports::list(c, &caller, paging::probe(page)))
        .await?;
    let next_offset = paging::cut(page, &mut reports);
    Ok(paging::ok(&req, next_offset).json(Reports {
        reports: reports.into_iter().map(Into::into).collect(),
        next_offset,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default), `csv` or `text`.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/reports/{id}", tag = "reports", params(("account" = String, Path, description = "The smart account"), ("id" = i64, Path, description = "Report id"), ReportQuery), responses((status = 200, description = "The report as JSON, CSV or text", content((serde_json::Value = "application/json"), (String = "text/csv"), (String = "text/plain"))), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody)), security(("bearer" = [])))]
pub async fn report_show(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (account, id) = path.into_inner();
    api.check_account(&account)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not a report id")))?;
    let (format, content_type) = match query.format.as_deref() {
        None | Some("json") => (reports::Format::Json, "application/json"),
        Some("csv") => (reports::Format::Csv, "text/csv; charset=utf-8"),
        Some("text") => (reports::Format::Text, "text/plain; charset=utf-8"),
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("{other:?}: use json, csv or text"),
            ))
        }
    };
    let report = api
        .into_inner()
        .read(move |c| ops::reports::show(c, &caller, id))
        .await?;
    let mut response = HttpResponse::Ok();
    if format == reports::Format::Csv {
        response.insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"report-{id}.csv\""),
        ));
    }
    Ok(response
        .content_type(content_type)
        .body(reports::render(&report, format)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    pub kind: Option<String>,
    pub severity: Option<String>,
    /// RFC 3339: only events at or after it.
    pub since: Option<String>,
    /// RFC 3339: only events before it.
    pub until: Option<String>,
    pub virtual_account: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Events {
    pub events: Vec<Event>,
    /// The offset of the next page when this one was cut (more follow).
    pub next_offset: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/events", tag = "events", params(("account" = String, Path, description = "The smart account"), EventsQuery), responses((status = 200, description = "A page of events, newest first", body = Events), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn event_list(
    req: actix_web::HttpRequest,
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    api.check_account(&path)?;
    let query = query.into_inner();
    let page = Page::new(query.limit, query.offset)?;
    let since = rfc3339_param("since", query.since.as_deref())?;
    let until = rfc3339_param("until", query.until.as_deref())?;
    let mut events = api
        .into_inner()
        .read(move |c| {
            ops::events::list(
                c,
                &caller,
                &EventQuery {
                    kind: query.kind.as_deref(),
                    severity: query.severity.as_deref(),
                    since,
                    until,
                    virtual_account: query.virtual_account.as_deref(),
                },
                paging::probe(page),
            )
        })
        .await?;
    let next_offset = paging::cut(page, &mut events);
    Ok(paging::ok(&req, next_offset).json(Events {
        events: events.into_iter().map(Into::into).collect(),
        next_offset,
    }))
}

/// An optional RFC 3339 query parameter as a Unix time.
fn rfc3339_param(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|text| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|_| ApiError::invalid(field, format!("{text:?} is not RFC 3339")))
    })
    .transpose()
}
