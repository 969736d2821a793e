//! The device listener: `POST /SmartTransport`.

use super::error::{error_response, json_error};
use super::AppState;
use crate::device::wire::{Message, MAX_BODY};
use crate::device::PeerCertificate;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tracing::Instrument;

/// Reads the body up to the device API's limit; bigger bodies are refused
/// before they are buffered.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, HttpResponse> {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("a device message is at most {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(4096).min(MAX_BODY));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub async fn smart_transport(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_body(&req, payload).await {
        Ok(body) => body,
        Err(response) => {
            state
                .metrics
                .count_device_message("UNKNOWN", "payload_too_large");
            return response;
        }
    };
    let message = match Message::parse(&body) {
        Ok(message) => message,
        Err(e) => {
            state
                .metrics
                .count_device_message("UNKNOWN", "invalid_request");
            return error_response(&e);
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
            HttpResponse::Ok()
                .content_type("application/json")
                .body(answer)
        }
        Err(e) => {
            let (_, code) = super::error::status_and_code(&e);
            state.metrics.count_device_message(message_type, code);
            error_response(&e)
        }
    }
}
