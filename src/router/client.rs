//! HTTPS transport to the device API: rustls trusting only the configured
//! CA, the device certificate as client certificate once registered, an
//! optional HTTP CONNECT proxy, Smart Transport JSON or the Call Home
//! envelope.

use super::identity;
use super::state::{Endpoint, TransportKind, Udi};
use crate::clock::Clock;
use crate::notify::callhome;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Answers larger than this are not device API answers.
const MAX_ANSWER: u64 = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The certificate and key presented to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub certificate_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing usable came back: connection, TLS, proxy, timeout.
    #[error("transport_error: {0}")]
    Transport(String),
    /// The server answered with an error status.
    #[error("{code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// A 2xx answer we cannot use.
    #[error("bad_response: {0}")]
    BadResponse(String),
    /// Our own side could not build the request (key, certificate).
    #[error("local_error: {0}")]
    Local(String),
}

impl SendError {
    /// Failures worth retrying later: they say nothing about the licence.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Transport(_) | SendError::BadResponse(_) => true,
            SendError::Status { status, .. } => *status == 429 || *status >= 500,
            SendError::Local(_) => false,
        }
    }

    /// The server no longer accepts our identity certificate.
    pub fn identity_refused(&self) -> bool {
        matches!(self, SendError::Status { status: 403, code, .. }
            if code == "certificate_revoked" || code == "certificate_unknown")
    }

    pub fn code(&self) -> String {
        match self {
            SendError::Transport(_) => "transport_error".into(),
            SendError::Status { code, .. } => code.clone(),
            SendError::BadResponse(_) => "bad_response".into(),
            SendError::Local(_) => "local_error".into(),
        }
    }
}

/// Sends one message and returns the JSON answer. A trait so the agent's
/// logic is tested against scripted answers.
pub trait Link {
    fn send(&mut self, identity: Option<&Identity>, message: &Value) -> Result<Value, SendError>;
}

/// The real transport. Keeps one ureq agent (and its connection pool) per
/// identity, so a burst of messages reuses a TLS session.
pub struct HttpLink {
    endpoint: Endpoint,
    udi: Udi,
    clock: Clock,
    agent: Option<(Option<Identity>, ureq::Agent)>,
}

impl HttpLink {
    pub fn new(endpoint: Endpoint, udi: Udi, clock: Clock) -> Self {
        Self {
            endpoint,
            udi,
            clock,
            agent: None,
        }
    }

    fn agent(&mut self, identity: Option<&Identity>) -> Result<ureq::Agent, SendError> {
        if let Some((id, agent)) = &self.agent {
            if id.as_ref() == identity {
                return Ok(agent.clone());
            }
        }
        let agent = build_agent(&self.endpoint, identity)?;
        self.agent = Some((identity.cloned(), agent.clone()));
        Ok(agent)
    }
}

impl Link for HttpLink {
    fn send(&mut self, identity: Option<&Identity>, message: &Value) -> Result<Value, SendError> {
        let agent = self.agent(identity)?;
        exchange(&agent, &self.endpoint, &self.udi, message, self.clock.now())
    }
}

/// The TLS client configuration: only `ca_pem` is trusted.
pub fn tls_config(
    ca_pem: &str,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, SendError> {
    let local = |e: &dyn std::fmt::Display| SendError::Local(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for der in identity::certificates_der(ca_pem, "the trusted CA").map_err(|e| local(&e))? {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| local(&format!("the trusted CA: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| local(&e))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> =
                identity::certificates_der(&id.certificate_pem, "the device certificate")
                    .map_err(|e| local(&e))?
                    .into_iter()
                    .map(CertificateDer::from)
                    .collect();
            let key = identity::key_pkcs8_der(&id.key_pem).map_err(|e| local(&e))?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| local(&format!("the device certificate and key: {e}")))
        }
    }
}

fn build_agent(endpoint: &Endpoint, identity: Option<&Identity>) -> Result<ureq::Agent, SendError> {
    let tls = tls_config(&endpoint.ca_pem, identity)?;
    let mut builder = ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls))
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("satellite-router/", env!("CARGO_PKG_VERSION")));
    if let Some(proxy) = &endpoint.proxy {
        let proxy =
            ureq::Proxy::new(proxy).map_err(|e| SendError::Local(format!("proxy {proxy}: {e}")))?;
        builder = builder.proxy(proxy);
    }
    Ok(builder.build())
}

/// Checks a proxy URL the way the transport will read it.
pub fn check_proxy(proxy: &str) -> Result<(), String> {
    if !proxy.starts_with("http://") {
        return Err(format!(
            "--proxy {proxy}: use an HTTP CONNECT proxy URL like http://proxy.example:3128"
        ));
    }
    ureq::Proxy::new(proxy)
        .map(|_| ())
        .map_err(|e| format!("--proxy {proxy}: {e}"))
}

fn exchange(
    agent: &ureq::Agent,
    endpoint: &Endpoint,
    udi: &Udi,
    message: &Value,
    now: OffsetDateTime,
) -> Result<Value, SendError> {
    let json = message.to_string();
    let response = match endpoint.transport {
        TransportKind::Smart => agent
            .post(&endpoint.post_url())
            .set("Content-Type", "application/json")
            .set("Accept", "application/json")
            .send_string(&json),
        TransportKind::Callhome => {
            let url = endpoint.post_url();
            let id = message
                .get("message_id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let aml_id = format!("M1:{}:{}", udi.sn, id);
            let device_id = format!("{}@C@{}", udi.pid, udi.sn);
            let xml = callhome::wrap(&json, &url, &aml_id, &device_id, now);
            agent
                .post(&url)
                .set("Content-Type", callhome::CONTENT_TYPE)
                .send_string(&xml)
        }
    };
    match response {
        Ok(resp) => {
            let status = resp.status();
            let body = read_body(resp)?;
            decode_answer(&body).map_err(|e| SendError::BadResponse(format!("HTTP {status}: {e}")))
        }
        Err(ureq::Error::Status(status, resp)) => {
            let body = read_body(resp).unwrap_or_default();
            Err(error_from(status, &body))
        }
        Err(ureq::Error::Transport(t)) => Err(SendError::Transport(one_line(&t.to_string()))),
    }
}

fn read_body(resp: ureq::Response) -> Result<String, SendError> {
    let mut body = String::new();
    resp.into_reader()
        .take(MAX_ANSWER)
        .read_to_string(&mut body)
        .map_err(|e| SendError::Transport(format!("reading the answer: {e}")))?;
    Ok(body)
}

/// JSON, or JSON inside a Call Home envelope.
fn decode_answer(body: &str) -> Result<Value, String> {
    let trimmed = body.trim_start_matches('\u{feff}').trim_start();
    let json = if trimmed.starts_with('<') {
        callhome::unwrap(trimmed).map_err(|e| e.to_string())?
    } else {
        trimmed.to_string()
    };
    let value: Value =
        serde_json::from_str(&json).map_err(|e| format!("answer is not JSON: {e}"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("answer is not a JSON object".into())
    }
}

/// Reads `{"error": {"code", "message"}}`; anything else keeps the status.
pub fn error_from(status: u16, body: &str) -> SendError {
    let parsed = decode_answer(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let code = field("code").unwrap_or_else(|| format!("http_{status}"));
    let message = field("message").unwrap_or_else(|| {
        let text = one_line(body);
        if text.is_empty() {
            format!("HTTP {status} without an error body")
        } else {
            format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            )
        }
    });
    SendError::Status {
        status,
        code,
        message: one_line(&message),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_json_or_the_envelope() {
        let json = r#"{"error":{"code":"token_expired","message":"token expired on 2027-01-01"}}"#;
        let e = error_from(401, json);
        assert_eq!(e.to_string(), "token_expired: token expired on 2027-01-01");
        assert!(!e.is_retryable());
        let xml = callhome::wrap(json, "u", "m", "d", OffsetDateTime::UNIX_EPOCH);
        assert_eq!(error_from(401, &xml), e);
        let e = error_from(503, "<html>busy\n</html>");
        assert_eq!(e.code(), "http_503");
        assert!(e.is_retryable());
        let e = error_from(
            403,
            r#"{"error":{"code":"certificate_revoked","message":"m"}}"#,
        );
        assert!(e.identity_refused());
        assert!(!error_from(
            403,
            r#"{"error":{"code":"certificate_required","message":"m"}}"#
        )
        .identity_refused());
    }

    #[test]
    fn tls_config_needs_a_real_ca() {
        assert!(matches!(tls_config("junk", None), Err(SendError::Local(_))));
    }

    #[test]
    fn proxies_must_be_http_connect() {
        assert!(check_proxy("http://proxy.example:3128").is_ok());
        assert!(check_proxy("socks5://proxy.example:1080").is_err());
    }
}
