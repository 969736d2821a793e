//! Synchronization: the sync status, the USB exchange from the browser
//! (download a usage export, upload the cloud's answer and see why a
//! bundle is refused), and a live exchange now in connected mode.
//! Administrators only, as in the API: a bundle speaks for the satellite.

use super::error::{refused, PortalError};
use super::layout::{self, csrf, when, Notice, Section};
use super::session::{CsrfForm, Operator};
use crate::config::Role;
use crate::ops::Service;
use crate::ops::{self, OpsError};
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use maud::html;

/// The file name of the last export, if it is one the portal serves.
fn export_name(path: Option<&str>) -> Option<&str> {
    std::path::Path::new(path?).file_name()?.to_str()
}

/// A form's end: the page with its notice when it was done (redirected,
/// so a reload repeats nothing), the page again with the refusal when not.
async fn settle(
    service: &Service,
    operator: &Operator,
    outcome: Result<Notice, PortalError>,
) -> Result<HttpResponse, PortalError> {
    match outcome {
        Ok(notice) => Ok(operator.redirect("/portal/sync", notice)),
        Err(PortalError::Ops(e)) => {
            let (notice, status) = refused(e)?;
            render(service, operator, Some(notice), status).await
        }
        Err(e) => Err(e),
    }
}

async fn render(
    service: &Service,
    operator: &Operator,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let notice = notice.or_else(|| operator.take_notice());
    if service.config().role == Role::Cloud {
        return render_cloud(service, operator, notice, status).await;
    }
    let (caller, config, now) = (
        operator.caller.clone(),
        service.config().clone(),
        service.now(),
    );
    let sync = service
        .read(move |c| ops::sync::status(c, &caller, &config, true, now))
        .await?;
    let connected = sync.mode == "connected";
    let row = |label: &str, value: Option<String>| {
        html! { tr { th scope="row" { (label) } td { (value.unwrap_or_else(|| "never".into())) } } }
    };
    let content = html! {
        table.facts #sync-status {
            tbody {
                tr { th scope="row" { "Mode" } td { (sync.mode) } }
                tr { th scope="row" { "Registered with the cloud" } td { (if sync.registered { "yes" } else { "no: run `satellite upstream register --token T`" }) } }
                @if let Some(id) = &sync.satellite_id { tr { th scope="row" { "Satellite id" } td { code { (id) } } } }
                @if let Some(id) = &sync.cloud_id { tr { th scope="row" { "Cloud id" } td { code { (id) } } } }
                (row("Last export", sync.last_export.as_deref().map(when)))
                tr {
                    th scope="row" { "Last export file" }
                    td {
                        @match export_name(sync.last_export_file.as_deref()) {
                            Some(name) => { a href=(format!("/portal/sync/files/{name}")) download { (name) } }
                            None => { "never" }
                        }
                    }
                }
                (row("Last import", sync.last_import.as_deref().map(when)))
                (row("Sequence sent", sync.sequence_sent.map(|s| s.to_string())))
                (row("Sequence received", sync.sequence_received.map(|s| s.to_string())))
                (row("Usage last acknowledged by the cloud", sync.last_acknowledged.as_deref().map(when)))
                @if let Some(days) = sync.days_since_acknowledged {
                    tr class=(if days > 30 { "short" } else { "" }) { th scope="row" { "Days since acknowledged" } td { (days) } }
                }
                @if connected {
                    (row("Last live sync", sync.last_success.as_deref().map(when)))
                    (row("Next attempt", sync.next_attempt.as_deref().map(when)))
                    @if let Some(error) = &sync.last_error {
                        tr.short { th scope="row" { "Last error" } td { (error) " (" (sync.failures) " failures in a row)" } }
                    }
                }
            }
        }
        section.actions {
            h2 { "Export usage" }
            p { "Writes a signed usage bundle to the export folder, to download and carry to the cloud." }
            form method="post" action="/portal/sync/export" {
                (csrf(operator))
                button type="submit" { "Write Usage Export" }
            }
            h2 { "Import from the cloud" }
            p { "The cloud's answer to an export (an entitlement bundle). It is verified before anything is written; a refusal says which rule failed." }
            form.stacked method="post" action="/portal/sync/import" enctype="multipart/form-data" {
                (csrf(operator))
                label for="bundle" { "Bundle (.zip)" }
                input #bundle type="file" name="bundle" accept=".zip,application/zip" required;
                button type="submit" { "Upload and Import" }
            }
            @if connected {
                h2 { "Live sync" }
                form method="post" action="/portal/sync/now" {
                    (csrf(operator))
                    button type="submit" { "Sync Now" }
                }
            }
        }
    };
    Ok(layout::html(
        status,
        layout::page(
            operator,
            Section::Synchronization,
            "Synchronization",
            notice.as_ref(),
            content,
        ),
    ))
}

/// The cloud's side of the exchange: its satellites, and a satellite's
/// carried bundle processed into the answer to carry back.
async fn render_cloud(
    service: &Service,
    operator: &Operator,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let caller = operator.caller.clone();
    let satellites = service
        .read(move |c| ops::sync::satellites(c, &caller))
        .await?;
    let content = html! {
        h2 { "Satellites" }
        @if satellites.is_empty() {
            p.empty { "No satellites yet: add one below." }
        } @else {
            table #satellites {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Virtual Accounts" }
                    th scope="col" { "Last Contact" } th scope="col" { "Received" } th scope="col" { "Sent" }
                    th scope="col" { "Product Instances" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for s in &satellites {
                        tr {
                            th scope="row" { (s.name) br; code { (s.satellite_id) } }
                            td { (s.status) }
                            td { (s.virtual_accounts.join(", ")) }
                            td { (s.last_contact_at.as_deref().map(when).unwrap_or_else(|| "never".into())) }
                            td.num { (s.sequence_received.map(|n| n.to_string()).unwrap_or_default()) }
                            td.num { (s.sequence_sent.map(|n| n.to_string()).unwrap_or_default()) }
                            td.num { (s.product_instances) }
                            td {
                                @if s.status != "REVOKED" {
                                    (layout::confirmed_action(
                                        operator,
                                        "/portal/sync/satellites/revoke",
                                        &[("name", &s.name)],
                                        "its bundles are refused from now on",
                                        "Revoke",
                                        Some(format!("Revoke satellite {}", s.name)),
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
        details.transfer {
            summary { "Add a Satellite" }
            form.stacked #add-satellite method="post" action="/portal/sync/satellites" {
                (csrf(operator))
                label for="satellite-name" { "Name (the satellite's " code { "name:" } ")" }
                input #satellite-name name="name" required maxlength="64" autocomplete="off";
                label for="satellite-vas" { "Virtual accounts it serves (comma-separated)" }
                input #satellite-vas name="virtual_accounts" required placeholder="Branch";
                label for="satellite-days" { "Days its token is valid" }
                input #satellite-days type="number" name="days" min="1" max="365" value=(crate::sync::cloud::TOKEN_DAYS) required;
                button type="submit" { "Add Satellite" }
            }
        }
        section.actions {
            h2 { "Process a satellite's bundle" }
            p { "A usage bundle or registration request carried from a satellite. It is verified before anything is written; the answer is written to the export folder, to carry back." }
            form.stacked method="post" action="/portal/sync/process" enctype="multipart/form-data" {
                (csrf(operator))
                label for="bundle" { "Bundle (.zip)" }
                input #bundle type="file" name="bundle" accept=".zip,application/zip" required;
                button type="submit" { "Upload and Process" }
            }
        }
    };
    Ok(layout::html(
        status,
        layout::page(
            operator,
            Section::Synchronization,
            "Synchronization",
            notice.as_ref(),
            content,
        ),
    ))
}

pub async fn page(
    service: web::Data<Service>,
    operator: Operator,
) -> Result<HttpResponse, PortalError> {
    render(&service, &operator, None, StatusCode::OK).await
}

/// Writes a usage export and shows the page again with a link to it: a
/// download in answer to the form would leave the page showing the state
/// from before the export.
pub async fn export(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let outcome = async {
        let written = service.export(operator.caller.clone()).await?;
        let name = std::path::Path::new(&written.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        tracing::info!(who = %operator.caller.name, file = %name, "usage export written from the portal");
        Ok::<_, PortalError>(Notice {
            ok: true,
            text: format!(
                "Wrote usage bundle {} ({}). Download it and carry it to the cloud:",
                written.sequence,
                crate::sync::counts_line(&written.counts)
            ),
            secret: None,
            link: Some((format!("/portal/sync/files/{name}"), name)),
        })
    }
    .await;
    settle(&service, &operator, outcome).await
}

/// The bundle keys, loaded off the async workers (made on first use).
async fn keys(service: &Service, operator: &Operator) -> Result<crate::sync::Keys, PortalError> {
    let (caller, config, now) = (
        operator.caller.clone(),
        service.config().clone(),
        service.now(),
    );
    Ok(web::block(move || ops::sync::keys(&caller, &config, now)).await??)
}

/// An uploaded bundle, read and opened, with the keys to apply it.
async fn received(
    service: &Service,
    operator: &Operator,
    form: Multipart,
) -> Result<(crate::sync::bundle::Opened, crate::sync::Keys), PortalError> {
    operator.caller.authorize(ops::Action::Administer, None)?;
    let bytes = upload(operator, form).await?;
    let opened = web::block(move || ops::sync::open(&bytes)).await??;
    Ok((opened, keys(service, operator).await?))
}

/// Reads the upload: the CSRF field first (the form puts it first), then the
/// bundle, never more than the bundle limit.
async fn upload(operator: &Operator, mut form: Multipart) -> Result<Vec<u8>, PortalError> {
    let limit = ops::sync::max_upload();
    let mut csrf_ok = false;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| crate::error::Error::invalid("bundle", e.to_string()))?;
        let name = field.name().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        let bound = if name == "bundle" { limit } else { 256 };
        if name == "bundle" && !csrf_ok {
            return Err(PortalError::Refused(
                "the form was not sent from this session (missing or stale CSRF token); reload the page and try again".into(),
            ));
        }
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| crate::error::Error::invalid("bundle", e.to_string()))?;
            if (bytes.len() + chunk.len()) as u64 > bound {
                return Err(OpsError::TooLarge(format!(
                    "the {name} field is over its limit of {bound} bytes"
                ))
                .into());
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => {
                operator.check_csrf(&String::from_utf8_lossy(&bytes))?;
                csrf_ok = true;
            }
            "bundle" if bytes.is_empty() => {
                return Err(crate::error::Error::invalid(
                    "bundle",
                    "choose a bundle file to upload",
                )
                .into())
            }
            "bundle" => return Ok(bytes),
            _ => {}
        }
    }
    Err(crate::error::Error::invalid("bundle", "choose a bundle file to upload").into())
}

pub async fn import(
    service: web::Data<Service>,
    operator: Operator,
    form: Multipart,
) -> Result<HttpResponse, PortalError> {
    let outcome = async {
        let (opened, keys) = received(&service, &operator, form).await?;
        let (config, now) = (service.config().clone(), service.now());
        let caller = operator.caller.clone();
        let (applied, _) = service
            .change_pools(caller, move |c, caller| ops::sync::import(c, caller, &config, &keys, &opened, now))
            .await?;
        tracing::info!(who = %operator.caller.name, sequence = applied.sequence, "bundle imported from the portal");
        Ok::<_, PortalError>(if applied.already_applied {
            Notice::ok(format!(
                "This {} bundle (sequence {}) was applied before: nothing changed.",
                applied.kind, applied.sequence
            ))
        } else {
            Notice::ok(format!(
                "Imported the {} bundle (sequence {}) from the cloud: {}.",
                applied.kind,
                applied.sequence,
                crate::sync::counts_line(&applied.counts)
            ))
        })
    }
    .await;
    settle(&service, &operator, outcome).await
}

pub async fn now(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let caller = operator.caller.clone();
    let outcome = service
        .on_own_connection(move |local| ops::sync::sync_now(local, &caller))
        .await;
    let outcome = match outcome {
        Ok((synced, _)) => Ok(Notice::ok(format!(
            "Synced with {} in {} ms: sent usage sequence {}, received sequence {} ({}).",
            synced.cloud_url,
            synced.millis,
            synced.sent.sequence,
            synced.received.sequence,
            crate::sync::counts_line(&synced.received.counts)
        ))),
        Err(e) => Err(PortalError::Ops(e)),
    };
    settle(&service, &operator, outcome).await
}

/// At the cloud: process an uploaded bundle; the notice links the answer.
pub async fn process(
    service: web::Data<Service>,
    operator: Operator,
    form: Multipart,
) -> Result<HttpResponse, PortalError> {
    let outcome = async {
        let (opened, keys) = received(&service, &operator, form).await?;
        let (config, now) = (service.config().clone(), service.now());
        let caller = operator.caller.clone();
        let (processed, _) = service
            .change_pools(caller, move |c, caller| ops::sync::process(c, caller, &config, &keys, &opened, now))
            .await?;
        let name = std::path::Path::new(&processed.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        tracing::info!(who = %operator.caller.name, satellite = %processed.satellite, answer = %name, "bundle processed from the portal");
        Ok::<_, PortalError>((processed, name))
    }
    .await;
    let outcome = outcome.map(|(processed, name)| Notice {
        ok: true,
        text: format!(
            "{} bundle {} from satellite {:?} {}. Carry the answer back and import it on the satellite:",
            processed.request.kind,
            processed.request.sequence,
            processed.satellite,
            if processed.request.already_applied {
                "was processed before (the same answer again)"
            } else {
                "processed"
            },
        ),
        secret: None,
        link: Some((format!("/portal/sync/files/{name}"), name)),
    });
    settle(&service, &operator, outcome).await
}

/// A bundle from this node's export folder, as a download.
pub async fn file(
    service: web::Data<Service>,
    operator: Operator,
    name: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (caller, config, name) = (
        operator.caller.clone(),
        service.config().clone(),
        name.into_inner(),
    );
    let shown = name.clone();
    let bytes = web::block(move || ops::sync::exported_file(&caller, &config, &name)).await??;
    Ok(layout::download("application/zip", &shown, bytes))
}

#[derive(Debug, serde::Deserialize)]
pub struct SatelliteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    virtual_accounts: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    confirm: String,
}

/// At the cloud: a new satellite and its token, shown once.
pub async fn add_satellite(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<SatelliteForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        let days = layout::number("days", &form.days)?.unwrap_or(crate::sync::cloud::TOKEN_DAYS);
        let keys = keys(&service, &operator).await?;
        let (config, now) = (service.config().clone(), service.now());
        let name = form.name.trim().to_string();
        let vas = layout::names(&form.virtual_accounts);
        let added = service
            .change(operator.caller.clone(), move |c, caller| {
                let request = ops::sync::NewSatellite {
                    name: &name,
                    virtual_accounts: &vas,
                    days,
                };
                ops::sync::add_satellite(c, caller, &config, &keys, &request, now)
            })
            .await?;
        Ok::<_, PortalError>(Notice {
            ok: true,
            text: format!(
                "Satellite {} added, serving {}. Its token is valid until {}; copy it now (it is not shown again) and register the satellite with it.",
                added.name,
                added.virtual_accounts.join(", "),
                when(&added.token_expires_at)
            ),
            secret: Some(added.token),
            link: None,
        })
    }
    .await;
    settle(&service, &operator, outcome).await
}

/// At the cloud: a satellite's bundles are refused from now on.
pub async fn revoke_satellite(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<SatelliteForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        super::error::confirmed(
            &form.confirm,
            "the satellite's bundles are refused from now on",
        )?;
        let keys = keys(&service, &operator).await?;
        let (config, now, name) = (service.config().clone(), service.now(), form.name.clone());
        let revoked = service
            .change(operator.caller.clone(), move |c, caller| {
                ops::sync::revoke_satellite(c, caller, &config, &keys, &name, now)
            })
            .await?;
        Ok::<_, PortalError>(Notice::ok(format!(
            "Satellite {} revoked: its bundles are refused from now on.",
            revoked.name
        )))
    }
    .await;
    settle(&service, &operator, outcome).await
}
