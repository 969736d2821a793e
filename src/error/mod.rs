//! The service layer's error: what the licensing operations can refuse with.
//! The HTTP layer maps it to a status and a JSON code in one place
//! (`http`, below); the CLI prints its message.

pub mod http;

use crate::domain::TokenProblem;
use crate::pki::PkiError;
use crate::store::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input; `field` names what to fix.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{}", token_message(*.0))]
    Token(TokenProblem),
    #[error("this request needs the identity certificate issued at registration")]
    CertificateRequired,
    #[error("the identity certificate was revoked (deregistered or replaced); register again")]
    CertificateRevoked,
    #[error(
        "the identity certificate was not issued by this satellite or has expired; register again"
    )]
    CertificateUnknown,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The operation belongs to the other role (e.g. `license add` on a satellite).
    #[error("{0}")]
    WrongRole(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("certificate authority: {0}")]
    Pki(#[from] PkiError),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Self::Pki(PkiError::from(e))
    }
}

fn token_message(problem: TokenProblem) -> &'static str {
    match problem {
        TokenProblem::Unknown => "the registration token is not known here; check it was copied whole from `satellite token create`",
        TokenProblem::Expired => "the registration token has expired; create a new one",
        TokenProblem::Revoked => "the registration token was revoked; create a new one",
        TokenProblem::Exhausted => "the registration token has been used its maximum number of times; create a new one",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
