//! `POST /backend/oauth/token`: client credentials (scripts, monitoring)
//! or a user's password, JSON or form, or the client in HTTP Basic.

use super::body;
use super::error::{ApiError, ErrorBody};
use super::wire::AccessToken;
use super::Api;
use crate::ops::login;
use crate::ops::OpsError;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

enum Credentials {
    Client { id: String, secret: String },
    Password { username: String, password: String },
}

/// `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1).
fn basic(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The longest client id, secret, user name or password read, in characters.
pub const MAX_CREDENTIAL: usize = 1024;

fn credentials(req: &HttpRequest, body: TokenRequest) -> Result<Credentials, ApiError> {
    let grant = body.grant_type.as_deref().unwrap_or("client_credentials");
    let need = |field: &str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty() && v.chars().count() <= MAX_CREDENTIAL)
            .ok_or_else(|| {
                ApiError::invalid(field, format!("{field} is required for grant_type {grant}"))
            })
    };
    match grant {
        "client_credentials" => {
            let (id, secret) = match (body.client_id, body.client_secret, basic(req)) {
                (Some(id), Some(secret), _) => (id, secret),
                (_, _, Some(pair)) => pair,
                (id, secret, None) => (need("client_id", id)?, need("client_secret", secret)?),
            };
            Ok(Credentials::Client {
                id: need("client_id", Some(id))?,
                secret: need("client_secret", Some(secret))?,
            })
        }
        "password" => Ok(Credentials::Password {
            username: need("username", body.username)?,
            password: need("password", body.password)?,
        }),
        other => Err(ApiError::invalid(
            "grant_type",
            format!("{other:?} is not supported; use client_credentials (or password for a user)"),
        )),
    }
}

#[utoipa::path(post, path = "/backend/oauth/token", tag = "auth", request_body(content = TokenRequest, description = "JSON or application/x-www-form-urlencoded"), responses((status = 200, description = "A bearer token", body = AccessToken), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Unknown credentials", body = ErrorBody), (status = 429, description = "Too many failed logins from this source", body = ErrorBody)))]
pub async fn token(
    api: web::Data<Api>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    body::check_content_type(
        &req,
        &["application/json", "application/x-www-form-urlencoded"],
    )?;
    let bytes = body::read_limited(payload, body::MAX_BODY as u64).await?;
    let source = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let now = api.now();
    let request: TokenRequest = body::json_or_form(&req, &bytes)?;
    let credentials = credentials(&req, request)?;
    let (who, name) = match &credentials {
        Credentials::Client { id, .. } => (format!("client_id {id}"), id.clone()),
        Credentials::Password { username, .. } => (format!("user {username}"), username.clone()),
    };
    api.limiter.attempt(&source, &name, now)?;
    let api = api.into_inner();
    let checked = api
        .read(move |c| match credentials {
            Credentials::Client { id, secret } => login::check_client(c, &id, &secret),
            Credentials::Password { username, password } => {
                login::check_password(c, &username, &password)
            }
        })
        .await;
    let verified = match checked {
        Ok(v) => v,
        Err(e) => {
            if matches!(e, OpsError::Unauthenticated(_)) {
                tracing::warn!(source = %source, who = %who, "failed API login");
            }
            return Err(e.into());
        }
    };
    api.limiter.succeeded(&source, &name);
    tracing::info!(source = %source, who = %verified.name, "API login");
    let issued = api.record(move |c| login::issue(c, &verified, now)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AccessToken::from(issued)))
}
