//! Alerts: shortfalls and recent major and minor events, as the API's
//! `alerts` call returns them, within the operator's virtual accounts.

use super::error::PortalError;
use super::layout::{self, when, Section};
use super::session::Operator;
use crate::ops::Service;
use crate::ops::{self, Page};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;

pub async fn page(
    service: web::Data<Service>,
    operator: Operator,
) -> Result<HttpResponse, PortalError> {
    let (caller, catalog, account, now) = (
        operator.caller.clone(),
        service.catalog(),
        service.config().account.clone(),
        service.now(),
    );
    let alerts = service
        .read(move |c| ops::alerts::list(c, &catalog, &caller, &account, &[], Page::ALL, now))
        .await?;
    let content = html! {
        @if alerts.is_empty() {
            p.empty { "No alerts: every pool is in compliance and nothing went wrong in the last " (ops::alerts::RECENT_DAYS) " days." }
        } @else {
            table #alerts {
                thead { tr {
                    th scope="col" { "Severity" } th scope="col" { "Type" } th scope="col" { "Source" }
                    th scope="col" { "Virtual Account" } th scope="col" { "Message" } th scope="col" { "Since" }
                } }
                tbody {
                    @for a in &alerts {
                        tr {
                            td { span class=(format!("severity {}", a.severity.to_lowercase())) { (a.severity) } }
                            td { (a.message_type) }
                            td { (a.source) }
                            td { (a.virtual_account.as_deref().unwrap_or("—")) }
                            td { (a.message) }
                            td { (when(&a.timestamp)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page(&operator, Section::Alerts, "Alerts", None, content),
    ))
}
