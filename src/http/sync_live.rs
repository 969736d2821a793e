//! The cloud's live sync endpoints on the device listener (DESIGN §2
//! options 2 and 3): `GET /sync/ca`, `POST /sync/register`, and
//! `POST /sync/usage` over mutual TLS with the upstream identity
//! certificate. The bundle rules are the sync layer's; this only moves
//! bytes and maps refusals to JSON errors.

use super::AppState;
use crate::device::PeerCertificate;
use crate::error::http::{error_body, log_and_body};
use crate::sync::bundle::Limits;
use crate::sync::live::link::{CA_PATH, IDENTITY_PATH, REGISTER_PATH, USAGE_PATH};
use crate::sync::SyncError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(CA_PATH, web::get().to(ca))
        .route(REGISTER_PATH, web::post().to(register))
        .route(USAGE_PATH, web::post().to(usage))
        .route(IDENTITY_PATH, web::post().to(renew));
}

fn refusal(e: &SyncError) -> HttpResponse {
    let (status, body) = match e {
        SyncError::Service(e) => (crate::error::http::status_and_code(e).0, log_and_body(e)),
        SyncError::Refused(b) => {
            tracing::info!(error = %b, "live sync bundle refused");
            (
                if b.rule == crate::sync::bundle::Rule::UntrustedSigner {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                error_body("bundle_refused", &e.to_string()),
            )
        }
        other => {
            tracing::error!(error = %other, "live sync failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body("internal_error", "internal error; see the cloud's log"),
            )
        }
    };
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}

/// A registration request bundle is a few KiB; anyone may send one, so
/// it gets a small limit. Usage bundles of large sites are tens of MiB.
const REGISTER_LIMIT: usize = 1 << 20;

fn bundle_limit() -> usize {
    usize::try_from(Limits::default().max_bundle_bytes).unwrap_or(usize::MAX)
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            HttpResponse::BadRequest()
                .content_type("application/json")
                .body(error_body("invalid_request", &format!("body: {e}")))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(HttpResponse::PayloadTooLarge()
                .content_type("application/json")
                .body(error_body(
                    "payload_too_large",
                    &format!("a bundle is at most {limit} bytes"),
                )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Runs the blocking sync work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(refusal(&e)),
        Err(e) => {
            tracing::error!(error = %e, "live sync work did not finish");
            Err(HttpResponse::InternalServerError()
                .content_type("application/json")
                .body(error_body(
                    "internal_error",
                    "internal error; see the cloud's log",
                )))
        }
    }
}

async fn ca(state: web::Data<AppState>) -> HttpResponse {
    match state.cloud_end.ca_pem() {
        Ok(pem) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(pem),
        Err(e) => refusal(&e),
    }
}

async fn register(state: web::Data<AppState>, payload: web::Payload) -> HttpResponse {
    let body = match read_body(payload, REGISTER_LIMIT).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let end = state.cloud_end.clone();
    match blocking(move || end.register(&body)).await {
        Ok(answer) => HttpResponse::Ok()
            .content_type("application/json")
            .body(answer.to_string()),
        Err(response) => response,
    }
}

async fn usage(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let peer = req.conn_data::<PeerCertificate>().map(|p| p.fingerprint);
    if peer.is_none() {
        // Refused before a large body is read.
        return refusal(&crate::error::Error::CertificateRequired.into());
    }
    let body = match read_body(payload, bundle_limit()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let end = state.cloud_end.clone();
    match blocking(move || end.usage(peer, &body)).await {
        Ok(answer) => HttpResponse::Ok()
            .content_type("application/zip")
            .body(answer),
        Err(response) => response,
    }
}

async fn renew(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let peer = req.conn_data::<PeerCertificate>().map(|p| p.fingerprint);
    if peer.is_none() {
        return refusal(&crate::error::Error::CertificateRequired.into());
    }
    let body = match read_body(payload, REGISTER_LIMIT).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let end = state.cloud_end.clone();
    match blocking(move || end.renew(peer, &body)).await {
        Ok(answer) => HttpResponse::Ok()
            .content_type("application/json")
            .body(answer.to_string()),
        Err(response) => response,
    }
}
