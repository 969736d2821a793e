//! API errors as JSON, `{"error": {"code", "message"[, "field"]}}`, with
//! the status mapped once: service errors as the device API maps them,
//! access errors here.

use crate::error::http::{error_body, log_and_body, status_and_code, with_retry_after};
use crate::error::Error;
use crate::ops::OpsError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// How every refusal reads: `{"error": {"code", "message"[, "field"]}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: `invalid_request`, `unauthenticated`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `too_many_requests`, ...
    pub code: String,
    pub message: String,
    /// The request field to fix (400 only).
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{inner}")]
pub struct ApiError {
    pub inner: OpsError,
    /// Cisco's manager answers 403 to unauthenticated calls under
    /// `/backend/api`; scripts written for it expect that.
    pub unauthenticated_status: StatusCode,
}

impl<E: Into<OpsError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self {
            inner: e.into(),
            unauthenticated_status: StatusCode::UNAUTHORIZED,
        }
    }
}

impl ApiError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Error::invalid(field, reason).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.inner {
            OpsError::Unauthenticated(_) => self.unauthenticated_status,
            OpsError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpsError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            OpsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            OpsError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OpsError::Service(e) => status_and_code(e).0,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = match &self.inner {
            OpsError::Service(e) => log_and_body(e),
            OpsError::Unauthenticated(m) => {
                tracing::info!(reason = %m, "API call refused: not authenticated");
                error_body("unauthenticated", m)
            }
            OpsError::Forbidden(m) => {
                tracing::info!(reason = %m, "API call refused: forbidden");
                error_body("forbidden", m)
            }
            OpsError::TooLarge(m) => error_body("payload_too_large", m),
            OpsError::UnsupportedMediaType(m) => error_body("unsupported_media_type", m),
            e @ OpsError::TooManyAttempts { .. } => error_body("too_many_requests", &e.to_string()),
        };
        let mut response = with_retry_after(HttpResponse::build(status), status);
        if let OpsError::TooManyAttempts { retry_after, .. } = &self.inner {
            response.insert_header(("Retry-After", retry_after.to_string()));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.content_type("application/json").body(body)
    }
}

/// A known path asked with a method it does not serve.
pub fn method_not_allowed(req: &actix_web::HttpRequest, allowed: &str) -> actix_web::HttpResponse {
    let mut response = crate::error::http::json_error(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!(
            "{} {} is not served; this path answers {allowed}",
            req.method(),
            req.path()
        ),
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allowed) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}
