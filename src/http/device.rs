//! The device listener: `POST /SmartTransport` (JSON) and the Call Home
//! transport (`POST /Transportgateway/services/DeviceRequestHandler`, the
//! same JSON messages inside an AML SOAP envelope).

use super::AppState;
use crate::device::wire::{Message, MAX_BODY};
use crate::device::PeerCertificate;
use crate::error::http::{error_body, status_and_code};
use crate::notify::callhome;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tracing::Instrument;

/// An envelope adds a kilobyte or two around the 64 KiB message.
const MAX_ENVELOPE: usize = MAX_BODY + 16 * 1024;

/// A refusal before the message reached the device service.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// Reads the body up to `limit`; bigger bodies are refused before they are buffered.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, Refusal> {
    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("a device message is at most {MAX_BODY} bytes"),
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: format!("body: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses and handles one JSON message; returns the status and JSON answer.
async fn answer(state: &AppState, req: &HttpRequest, body: &[u8]) -> (StatusCode, String) {
    if body.len() > MAX_BODY {
        state
            .metrics
            .count_device_message("UNKNOWN", "payload_too_large");
        let message = format!("a device message is at most {MAX_BODY} bytes");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            error_body("payload_too_large", &message),
        );
    }
    let message = match Message::parse(body) {
        Ok(message) => message,
        Err(e) => {
            state
                .metrics
                .count_device_message("UNKNOWN", "invalid_request");
            let (status, _) = status_and_code(&e);
            return (status, crate::error::http::log_and_body(&e));
        }
    };
    let peer = req.conn_data::<PeerCertificate>().copied();
    let message_type = message.message_type.as_str();
    let span = tracing::info_span!(
        "device_message",
        r#type = message_type,
        message_id = %message.message_id,
        udi = message.udi.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        client_cert = peer.is_some(),
    );
    let outcome = state
        .device
        .handle(message, peer)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    match outcome {
        Ok(answer) => {
            state.metrics.count_device_message(message_type, "ok");
            tracing::debug!("answered");
            (StatusCode::OK, answer)
        }
        Err(e) => {
            let (status, code) = status_and_code(&e);
            state.metrics.count_device_message(message_type, code);
            (status, crate::error::http::log_and_body(&e))
        }
    }
}

pub async fn smart_transport(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (status, body) = match read_body(&req, payload, MAX_BODY).await {
        Ok(body) => answer(&state, &req, &body).await,
        Err(refusal) => {
            state.metrics.count_device_message("UNKNOWN", refusal.code);
            (refusal.status, error_body(refusal.code, &refusal.message))
        }
    };
    crate::error::http::with_retry_after(HttpResponse::build(status), status)
        .content_type("application/json")
        .body(body)
}

/// Call Home: unwraps the envelope, answers in the same envelope, with the
/// same HTTP status the JSON transport would give.
pub async fn call_home(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (status, json, reply_to) = match read_body(&req, payload, MAX_ENVELOPE).await {
        Err(refusal) => {
            state.metrics.count_device_message("UNKNOWN", refusal.code);
            (
                refusal.status,
                error_body(refusal.code, &refusal.message),
                None,
            )
        }
        Ok(body) => {
            let envelope = std::str::from_utf8(&body)
                .map_err(|_| "the envelope is not UTF-8".to_string())
                .and_then(|text| callhome::unwrap_envelope(text).map_err(|e| e.to_string()));
            match envelope {
                Err(reason) => {
                    state
                        .metrics
                        .count_device_message("UNKNOWN", "invalid_request");
                    (
                        StatusCode::BAD_REQUEST,
                        error_body("invalid_request", &format!("envelope: {reason}")),
                        None,
                    )
                }
                Ok(envelope) => {
                    let (status, json) = answer(&state, &req, envelope.content.as_bytes()).await;
                    (status, json, envelope.message_id)
                }
            }
        }
    };
    let message_id = format!("R:{}", reply_to.as_deref().unwrap_or("unknown"));
    let from = format!("https://{}{}", req.connection_info().host(), callhome::PATH);
    let xml = callhome::wrap(
        &json,
        &from,
        &message_id,
        "satellite",
        state.device.clock().now(),
    );
    crate::error::http::with_retry_after(HttpResponse::build(status), status)
        .content_type(callhome::CONTENT_TYPE)
        .body(xml)
}
