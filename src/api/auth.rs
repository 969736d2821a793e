//! Authentication, in one place: every API handler takes an `Authenticated`
//! caller, so no route can forget it. What the caller may do is the
//! operations layer's policy (`ops::access`).

use super::error::ApiError;
use super::Api;
use crate::ops::{login, Caller, OpsError};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// The caller a valid bearer token stands for.
pub struct Authenticated(pub Caller);

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty() && t.len() <= 512)
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let api = req.app_data::<web::Data<Api>>().cloned();
        let token = bearer(req);
        let status = if req.path().starts_with("/backend/") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        Box::pin(async move {
            let refuse = |inner: OpsError| ApiError {
                inner,
                unauthenticated_status: status,
            };
            let api = api.ok_or_else(|| {
                refuse(OpsError::Unauthenticated(
                    "the API is not configured".into(),
                ))
            })?;
            let token = token.ok_or_else(|| {
                refuse(OpsError::Unauthenticated(
                    "this call needs `Authorization: Bearer TOKEN`; get a token at /backend/oauth/token".into(),
                ))
            })?;
            let now = api.now();
            let caller = api
                .read(move |c| login::authenticate(c, &token, now))
                .await
                .map_err(|e| match e {
                    inner @ OpsError::Unauthenticated(_) => refuse(inner),
                    e => e.into(),
                })?;
            Ok(Authenticated(caller))
        })
    }
}
