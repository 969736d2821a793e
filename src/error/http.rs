//! The one place where service errors become HTTP answers.

use crate::domain::TokenProblem;
use crate::error::Error;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

/// The status and stable JSON code for an error.
pub fn status_and_code(error: &Error) -> (StatusCode, &'static str) {
    match error {
        Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
        Error::Token(TokenProblem::Unknown) => (StatusCode::UNAUTHORIZED, "token_unknown"),
        Error::Token(TokenProblem::Expired) => (StatusCode::UNAUTHORIZED, "token_expired"),
        Error::Token(TokenProblem::Revoked) => (StatusCode::UNAUTHORIZED, "token_revoked"),
        Error::Token(TokenProblem::Exhausted) => (StatusCode::UNAUTHORIZED, "token_exhausted"),
        Error::CertificateRequired => (StatusCode::FORBIDDEN, "certificate_required"),
        Error::CertificateRevoked => (StatusCode::FORBIDDEN, "certificate_revoked"),
        Error::CertificateUnknown => (StatusCode::FORBIDDEN, "certificate_unknown"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        Error::WrongRole(_) => (StatusCode::CONFLICT, "wrong_role"),
        Error::Store(StoreError::Overloaded) => {
            (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
        }
        Error::Store(StoreError::Standby) => (StatusCode::SERVICE_UNAVAILABLE, "standby"),
        Error::Store(StoreError::WorkPanicked) | Error::Pki(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
        Error::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
    }
}

/// `{"error": {"code", "message"}}`
pub fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"error": {"code": code, "message": message}}).to_string()
}

/// Logs the error (internals only to the log) and returns the JSON body;
/// a malformed request also names its `field`.
pub fn log_and_body(error: &Error) -> String {
    let (status, code) = status_and_code(error);
    if let Error::Invalid { field, .. } = error {
        tracing::info!(error = %error, code, "request refused");
        return serde_json::json!({"error": {"code": code, "message": error.to_string(), "field": field}})
            .to_string();
    }
    let message = if status.is_server_error() {
        tracing::error!(error = %error, code, "request failed");
        match code {
            "standby" => error.to_string(),
            "storage_unavailable" => {
                "storage is unavailable; nothing was recorded, retry later".to_string()
            }
            _ => "internal error; see the satellite's log".to_string(),
        }
    } else {
        tracing::info!(error = %error, code, "request refused");
        error.to_string()
    };
    error_body(code, &message)
}

pub fn with_retry_after(
    mut response: HttpResponseBuilder,
    status: StatusCode,
) -> HttpResponseBuilder {
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "5"));
    }
    response
}

/// Unknown paths and methods answer in JSON too.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no {} {} here", req.method(), req.path()),
    )
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    with_retry_after(HttpResponse::build(status), status)
        .content_type("application/json")
        .body(error_body(code, message))
}
