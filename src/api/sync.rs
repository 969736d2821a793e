//! Sync over the API: download a usage export, upload the cloud's answer,
//! read the sync status. Admin only (`ops::sync`).

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::Api;
use crate::ops;
use actix_web::{web, HttpRequest, HttpResponse};

fn blocked(e: actix_web::error::BlockingError) -> ApiError {
    ops::OpsError::from(e).into()
}

/// Writes a usage bundle into the export folder, as `satellite export`
/// does, and sends it back as the download.
#[utoipa::path(post, path = "/api/v1/sync/export", tag = "sync", responses((status = 200, description = "The usage bundle written to the export folder", content_type = "application/zip", body = Vec<u8>), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "Not registered with a cloud, or the bundle could not be written", body = ErrorBody)), security(("bearer" = [])))]
pub async fn export(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let written = api.export(caller).await?;
    let path = written.path.clone();
    let bytes = web::block(move || std::fs::read(&path))
        .await
        .map_err(blocked)?
        .map_err(|e| {
            ApiError::from(crate::error::Error::Conflict(format!(
                "the bundle was written to {} but cannot be read back: {e}",
                written.path
            )))
        })?;
    let name = std::path::Path::new(&written.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("usage.zip")
        .to_string();
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Bundle-Sequence", written.sequence.to_string()))
        .insert_header(("X-Bundle-Sha256", written.sha256.clone()))
        .body(bytes))
}

/// Applies an uploaded bundle (the zip as the request body).
#[utoipa::path(post, path = "/api/v1/sync/import", tag = "sync", request_body(content = Vec<u8>, content_type = "application/zip"), responses((status = 200, description = "Applied (or already applied)", body = super::wire::AppliedBundle), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 413, description = "Over the bundle size limit", body = ErrorBody), (status = 409, description = "Refused by the state: not registered, not a bundle for this node, a revoked or unknown peer, a sequence gap", body = ErrorBody)), security(("bearer" = [])))]
pub async fn import(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(ops::Action::Administer, None)?;
    super::body::check_content_type(&req, &["application/zip", "application/octet-stream"])?;
    let bytes = super::body::read_limited(payload, ops::sync::max_upload()).await?;
    let opened = web::block(move || ops::sync::open(&bytes))
        .await
        .map_err(blocked)??;
    let now = api.now();
    let config = api.config().clone();
    let keys = {
        let (caller, config) = (caller.clone(), config.clone());
        web::block(move || ops::sync::keys(&caller, &config, now))
            .await
            .map_err(blocked)??
    };
    let (applied, _) = api
        .change_pools(caller, move |c, caller| {
            ops::sync::import(c, caller, &config, &keys, &opened, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::wire::AppliedBundle::from(applied)))
}

#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync", responses((status = 200, description = "Sync status", body = super::wire::SyncStatus), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn status(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let now = api.now();
    let config = api.config().clone();
    let status = api
        .read(move |c| ops::sync::status(c, &caller, &config, true, now))
        .await?;
    Ok(HttpResponse::Ok().json(super::wire::SyncStatus::from(status)))
}

/// One live exchange with the cloud now, as `satellite sync` does
/// (connected mode; 409 in disconnected mode or when the cloud cannot be reached).
#[utoipa::path(post, path = "/api/v1/sync/now", tag = "sync", responses((status = 200, description = "What was sent and received", body = super::wire::Synced), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "Disconnected mode, or the cloud could not be reached", body = ErrorBody)), security(("bearer" = [])))]
pub async fn now(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (synced, _) = api
        .on_own_connection(move |local| ops::sync::sync_now(local, &caller))
        .await?;
    Ok(HttpResponse::Ok().json(super::wire::Synced::from(synced)))
}

/// A consistent backup of the satellite (database, keys and certificates),
/// as `satellite backup FILE` writes it, as a download. Admin only.
#[utoipa::path(post, path = "/api/v1/backup", tag = "sync", responses((status = 200, description = "The backup zip", content_type = "application/zip", body = Vec<u8>), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "The backup could not be made", body = ErrorBody)), security(("bearer" = [])))]
pub async fn backup(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let config = api.config().clone();
    let clock = api.clock().clone();
    let (bytes, name) = web::block(move || ops::backup::download(&caller, &config, &clock))
        .await
        .map_err(blocked)??;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}
