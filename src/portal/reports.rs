//! Reports: the list, one report as text, its CSV download, and a Manual
//! Record or Compliance Warning Report generated on demand.

use super::error::PortalError;
use super::layout::{self, csrf, select, when, Notice, Section};
use super::session::Operator;
use crate::licensing::reports::{self, Format, ReportKind};
use crate::ops::Service;
use crate::ops::{self, OpsError, Page};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

async fn render_list(
    service: &Service,
    operator: &Operator,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let notice = notice.or_else(|| operator.take_notice());
    let (caller, account, now) = (
        operator.caller.clone(),
        service.config().account.clone(),
        service.now(),
    );
    let (list, vas) = service
        .read(move |c| {
            Ok((
                ops::reports::list(c, &caller, Page::ALL)?,
                ops::accounts::list(c, &caller, &account, now)?,
            ))
        })
        .await?;
    let mut scopes: Vec<(String, String)> = Vec::new();
    if operator.is_admin() {
        scopes.push((String::new(), "All virtual accounts".into()));
    }
    scopes.extend(
        vas.iter()
            .filter(|va| operator.can_operate(&va.name))
            .map(|va| (va.name.clone(), va.name.clone())),
    );
    let kinds = [
        ("manual".to_string(), "Manual Record".to_string()),
        (
            "warning".to_string(),
            "Compliance Warning Report".to_string(),
        ),
    ];
    let content = html! {
        @if !scopes.is_empty() {
            form.filters #report-generate method="post" action="/portal/reports/generate" {
                (csrf(operator))
                label for="report-va" { "Virtual Account" }
                (select("va", "report-va", &scopes, ""))
                label for="report-kind" { "Kind" }
                (select("kind", "report-kind", &kinds, "manual"))
                button type="submit" { "Generate Report" }
            }
        }
        @if list.is_empty() {
            p.empty { "No reports yet. Periodic Records follow the report schedule; Compliance Warning Reports follow every shortfall." }
        } @else {
            table #reports {
                thead { tr {
                    th scope="col" { "Report" } th scope="col" { "Kind" } th scope="col" { "Created" }
                    th scope="col" { "Virtual Account" } th scope="col" { "Summary" } th scope="col" { "Download" }
                } }
                tbody {
                    @for r in &list {
                        tr {
                            th scope="row" { a href=(format!("/portal/reports/{}", r.id)) { "#" (r.id) } }
                            td { (r.kind) }
                            td { (when(&r.created_at)) }
                            td { (r.virtual_account.as_deref().unwrap_or("all")) }
                            td { (r.summary) }
                            td { a href=(format!("/portal/reports/{}/csv", r.id)) download { "CSV" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        status,
        layout::page(
            operator,
            Section::Reports,
            "Reports",
            notice.as_ref(),
            content,
        ),
    ))
}

pub async fn list(
    service: web::Data<Service>,
    operator: Operator,
) -> Result<HttpResponse, PortalError> {
    render_list(&service, &operator, None, StatusCode::OK).await
}

async fn load(
    service: &Service,
    operator: &Operator,
    id: i64,
) -> Result<reports::Report, PortalError> {
    let caller = operator.caller.clone();
    Ok(service
        .read(move |c| ops::reports::show(c, &caller, id))
        .await?)
}

pub async fn show(
    service: web::Data<Service>,
    operator: Operator,
    id: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let id = id.into_inner();
    let report = load(&service, &operator, id).await?;
    let title = format!("{} #{}", report.kind.as_str(), report.id);
    let content = html! {
        p {
            a href="/portal/reports" { "← All reports" } " · "
            a href=(format!("/portal/reports/{id}/csv")) download { "Download CSV" }
        }
        pre.report { (reports::render(&report, Format::Text)) }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page(&operator, Section::Reports, &title, None, content),
    ))
}

pub async fn csv(
    service: web::Data<Service>,
    operator: Operator,
    id: web::Path<i64>,
) -> Result<HttpResponse, PortalError> {
    let id = id.into_inner();
    let report = load(&service, &operator, id).await?;
    Ok(layout::download(
        "text/csv; charset=utf-8",
        &format!("report-{id}.csv"),
        reports::render(&report, Format::Csv),
    ))
}

#[derive(Debug, Deserialize)]
pub struct Generate {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    va: String,
    #[serde(default)]
    kind: String,
}

pub async fn generate(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<Generate>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let kind = match form.kind.as_str() {
        "" | "manual" => Ok(ReportKind::Manual),
        "warning" => Ok(ReportKind::ComplianceWarning),
        other => Err(OpsError::from(crate::error::Error::invalid(
            "kind",
            format!("{other:?} is not a report kind; use manual or warning"),
        ))),
    };
    let (caller, catalog, account, now) = (
        operator.caller.clone(),
        service.catalog(),
        service.config().account.clone(),
        service.now(),
    );
    let va = (!form.va.is_empty()).then_some(form.va);
    let outcome = match kind {
        Ok(kind) => {
            service
                .change(caller, move |c, caller| {
                    ops::accounts::generate_report(
                        c,
                        &catalog,
                        caller,
                        kind,
                        &account,
                        va.as_deref(),
                        now,
                    )
                })
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(id) => Ok(operator.redirect(
            "/portal/reports",
            Notice::ok(format!("Report #{id} generated.")),
        )),
        Err(e) => {
            let (notice, status) = super::error::refused(e)?;
            render_list(&service, &operator, Some(notice), status).await
        }
    }
}
