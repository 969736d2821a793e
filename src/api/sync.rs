//! Sync over the API: download a usage export, upload the cloud's answer,
//! read the sync status. Admin only (`ops::sync`).

use super::auth::Authenticated;
use super::error::ApiError;
use super::Api;
use crate::ops::{self, OpsError};
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

fn blocked(_: actix_web::error::BlockingError) -> ApiError {
    crate::store::StoreError::WorkPanicked.into()
}

/// Writes a usage bundle into the export folder, as `satellite export`
/// does, and sends it back as the download.
pub async fn export(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let now = api.now();
    let config = api.config.clone();
    let keys = {
        let (caller, config) = (caller.clone(), config.clone());
        web::block(move || ops::sync::keys(&caller, &config, now))
            .await
            .map_err(blocked)??
    };
    let written = api
        .write(move |c| ops::sync::export(c, &caller, &config, &keys, now))
        .await?;
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
pub async fn import(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(ops::Action::Administer, None)?;
    let limit = ops::sync::max_upload();
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid("body", e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(OpsError::TooLarge(format!("a bundle is at most {limit} bytes")).into());
        }
        bytes.extend_from_slice(&chunk);
    }
    let opened = web::block(move || ops::sync::open(&bytes))
        .await
        .map_err(blocked)??;
    let now = api.now();
    let config = api.config.clone();
    let keys = {
        let (caller, config) = (caller.clone(), config.clone());
        web::block(move || ops::sync::keys(&caller, &config, now))
            .await
            .map_err(blocked)??
    };
    let (applied, transitions) = api
        .write(move |c| ops::sync::import(c, &caller, &config, &keys, &opened, now))
        .await?;
    api.notify(&transitions);
    Ok(HttpResponse::Ok().json(applied))
}

pub async fn status(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let now = api.now();
    let config = api.config.clone();
    let status = api
        .read(move |c| ops::sync::status(c, &caller, &config, now))
        .await?;
    Ok(HttpResponse::Ok().json(status))
}
