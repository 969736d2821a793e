//! What a portal request can be refused with, mapped to a status and an
//! HTML page once. A refused form is usually shown again with its notice
//! instead (`Notice`); this is for what has no page to go back to.

use super::layout;
use crate::error::http::status_and_code;
use crate::ops::OpsError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No session, or one that ended: the login page.
    #[error("log in to continue")]
    LoggedOut,
    /// No session on a page asked for by address: log in, then back to it.
    #[error("log in first")]
    LoginFirst(String),
    /// A form without its CSRF token, or a request from another site.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Ops(OpsError),
}

impl<E: Into<OpsError>> From<E> for PortalError {
    fn from(e: E) -> Self {
        Self::Ops(e.into())
    }
}

/// The status an operations refusal reads as, in the portal as in the API.
pub fn status_of(e: &OpsError) -> StatusCode {
    match e {
        OpsError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        OpsError::Forbidden(_) => StatusCode::FORBIDDEN,
        OpsError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        OpsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        OpsError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        OpsError::Service(e) => status_and_code(e).0,
    }
}

/// A refused form is shown again with the reason, at the refusal's
/// status; an ended session goes to the login instead.
pub fn refused(e: OpsError) -> Result<(super::flash::Notice, StatusCode), PortalError> {
    if let OpsError::Unauthenticated(_) = e {
        return Err(PortalError::LoggedOut);
    }
    log(&e);
    let status = status_of(&e);
    Ok((super::flash::Notice::error(e.to_string()), status))
}

/// Logs a refusal the way an operator wants to read it: server faults
/// loud, a person's mistakes quiet.
pub fn log(e: &OpsError) {
    let status = status_of(e);
    if status.is_server_error() {
        tracing::warn!(error = %e, status = status.as_u16(), "portal request failed");
    } else {
        tracing::info!(error = %e, status = status.as_u16(), "portal request refused");
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoggedOut | Self::LoginFirst(_) | Self::Ops(OpsError::Unauthenticated(_)) => {
                StatusCode::SEE_OTHER
            }
            Self::Refused(_) => StatusCode::FORBIDDEN,
            Self::Ops(e) => status_of(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::LoggedOut | Self::Ops(OpsError::Unauthenticated(_)) => HttpResponse::SeeOther()
                .insert_header(("Location", super::LOGIN_PATH))
                .finish(),
            Self::LoginFirst(next) => HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!(
                        "{}?{}",
                        super::LOGIN_PATH,
                        serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
                    ),
                ))
                .finish(),
            Self::Refused(reason) => {
                tracing::warn!(reason = %reason, "portal request refused");
                layout::bare(StatusCode::FORBIDDEN, "Refused", reason)
            }
            Self::Ops(e) => {
                log(e);
                let text = super::flash::for_the_web(&e.to_string());
                let mut response = layout::bare(self.status_code(), "Refused", &text);
                if let OpsError::TooManyAttempts { retry_after, .. } = e {
                    if let Ok(value) = retry_after.to_string().parse() {
                        response
                            .headers_mut()
                            .insert(actix_web::http::header::RETRY_AFTER, value);
                    }
                }
                response
            }
        }
    }
}

/// A destructive form acts only when its confirmation box was ticked (the
/// browser insists; this is for anything else that posts it).
pub fn confirmed(confirm: &str, consequence: &str) -> Result<(), PortalError> {
    if confirm == "yes" {
        return Ok(());
    }
    Err(OpsError::from(crate::error::Error::invalid(
        "confirm",
        format!("Nothing was changed: tick the box to confirm that {consequence}."),
    ))
    .into())
}
