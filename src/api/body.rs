//! Request bodies: JSON (or a form where OAuth allows it), bounded, and a
//! refusal that names the field.

use super::error::ApiError;
use crate::ops::OpsError;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Largest body the API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Reads a JSON request body of at most `MAX_BODY` bytes. A body declared
/// as something else (`text/plain`, a form) is refused, not parsed as
/// JSON; no `Content-Type` at all is read as JSON (Cisco's clients post
/// some calls bare).
pub async fn read_json(req: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    check_content_type(req, &["application/json"])?;
    read_limited(payload, MAX_BODY as u64).await
}

/// The declared media type, without parameters, in lower case (one that
/// is not text at all reads as itself: refused, not taken for none).
fn content_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("Content-Type")?;
    let Ok(value) = value.to_str() else {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Refuses a body declared as none of `accepted` (415); `+json` types
/// count as JSON.
pub fn check_content_type(req: &HttpRequest, accepted: &[&str]) -> Result<(), ApiError> {
    let Some(declared) = content_type(req) else {
        return Ok(());
    };
    let json = accepted.contains(&"application/json") && declared.ends_with("+json");
    if accepted.contains(&declared.as_str()) || json {
        return Ok(());
    }
    // `curl -d` declares a form unless told otherwise: say how.
    let hint = if accepted == ["application/json"] {
        " (with curl: -H 'Content-Type: application/json')"
    } else {
        ""
    };
    Err(OpsError::UnsupportedMediaType(format!(
        "Content-Type {declared} is not read here: send {}{hint}",
        accepted.join(" or ")
    ))
    .into())
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
/// licenses and alerts calls with or without one). The body must be an
/// object (serde would read a struct from an array), and a number with a
/// zero fraction (`3.0`) counts as the whole number it is, as JSON Schema
/// has it.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    whole_numbers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(&field, e.inner().to_string())
    })
}

/// `3.0` → `3`, everywhere in a value.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Query {
        #[serde(default)]
        limit: Option<i64>,
        #[serde(default)]
        offset: Option<i64>,
    }

    #[test]
    fn a_body_is_a_json_object_and_whole_floats_are_numbers() {
        assert_eq!(
            json::<Query>(b"").ok(),
            Some(Query {
                limit: None,
                offset: None
            })
        );
        assert_eq!(
            json::<Query>(br#"{"limit": 3.0}"#).ok(),
            Some(Query {
                limit: Some(3),
                offset: None
            })
        );
        assert!(json::<Query>(br#"{"limit": 3.5}"#).is_err());
        assert!(json::<Query>(b"[null, null]").is_err(), "not an object");
        assert!(json::<Query>(b"[1, 2]").is_err());
        assert!(json::<Query>(b"{").is_err());
    }

    #[test]
    fn a_content_type_is_json_none_or_refused_even_unreadable() {
        use actix_web::http::header::HeaderValue;
        use actix_web::test::TestRequest;
        let with = |value: HeaderValue| {
            TestRequest::default()
                .insert_header(("Content-Type", value))
                .to_http_request()
        };
        let json = ["application/json"];
        assert!(check_content_type(&TestRequest::default().to_http_request(), &json).is_ok());
        let charset = with(HeaderValue::from_static("application/json; charset=utf-8"));
        assert!(check_content_type(&charset, &json).is_ok());
        let problem = with(HeaderValue::from_static("application/problem+json"));
        assert!(check_content_type(&problem, &json).is_ok());
        let text = with(HeaderValue::from_static("text/plain"));
        assert!(check_content_type(&text, &json).is_err());
        let unreadable = with(HeaderValue::from_bytes(b"application/j\xf6son").expect("value"));
        assert!(check_content_type(&unreadable, &json).is_err());
    }
}
