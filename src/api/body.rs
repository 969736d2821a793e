//! Request bodies: JSON (or a form where OAuth allows it), bounded, and a
//! refusal that names the field.

use super::error::ApiError;
use crate::ops::OpsError;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Largest body the API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Reads a request body of at most `MAX_BODY` bytes.
pub async fn read(payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    read_limited(payload, MAX_BODY as u64).await
}

/// Reads a request body; past `limit` bytes it is refused (413, as JSON
/// like every other refusal).
pub async fn read_limited(mut payload: web::Payload, limit: u64) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid("body", e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(OpsError::TooLarge(format!(
                "the request body is over the limit of {limit} bytes"
            ))
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Parses a JSON body; an empty body is `{}` (Cisco's clients POST the
/// licenses and alerts calls with or without one).
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(&field, e.inner().to_string())
    })
}

/// JSON or `application/x-www-form-urlencoded`, by the content type.
pub fn json_or_form<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, ApiError> {
    let form = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::invalid("body", e.to_string()))
    } else {
        json(bytes)
    }
}
