//! The HTTPS link from a connected satellite to its cloud's device listener:
//! rustls trusting only the pinned cloud CA, the upstream identity
//! certificate as client certificate once registered, and `sync.proxy`
//! (HTTP CONNECT) when the site has one.

use crate::sync::bundle::Limits;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Where the cloud's device listener serves live sync.
pub const CA_PATH: &str = "/sync/ca";
pub const REGISTER_PATH: &str = "/sync/register";
pub const USAGE_PATH: &str = "/sync/usage";
pub const IDENTITY_PATH: &str = "/sync/identity";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A usage bundle of a large site is tens of MiB: give it time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nothing usable came back: connection, proxy, TLS, timeout. Retried.
    /// `hop` names the leg that failed: the proxy, or the cloud (through
    /// the proxy when there is one).
    #[error("cannot reach {hop}: {reason}")]
    Unreachable { hop: String, reason: String },
    /// The cloud answered with an error.
    #[error("the cloud refused ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "the cloud at {url} presents a CA with SHA-256 {found}, but the satellite token pins \
         {pinned}: this is not the cloud that issued the token; nothing was sent (check \
         sync.cloud_url, or ask the cloud's operator for a new token)"
    )]
    WrongCloud {
        url: String,
        found: String,
        pinned: String,
    },
    /// Our own side: key, certificate, proxy setting.
    #[error("{0}")]
    Local(String),
}

impl LinkError {
    /// Worth retrying later without anyone doing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            LinkError::Unreachable { .. } => true,
            LinkError::Refused { status, .. } => *status == 429 || *status >= 500,
            LinkError::WrongCloud { .. } | LinkError::Local(_) => false,
        }
    }
}

/// The client certificate and key presented to the cloud.
pub struct Identity {
    pub certificate_pem: String,
    pub key_pem: String,
}

pub struct CloudLink {
    base: String,
    agent: ureq::Agent,
    /// `sync.proxy` without credentials, to name it in errors.
    proxy: Option<String>,
}

fn local(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Local(format!("{what}: {e}"))
}

impl CloudLink {
    /// A link that trusts only `ca_pem` (the pinned cloud CA).
    pub fn pinned(
        cloud_url: &str,
        proxy: Option<&str>,
        ca_pem: &str,
        identity: Option<&Identity>,
    ) -> Result<Self, LinkError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| local("the pinned cloud CA", e))?;
            roots
                .add(cert)
                .map_err(|e| local("the pinned cloud CA", e))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(crate::pki::tls_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| local("TLS", e))?
            .with_root_certificates(roots);
        let tls = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let chain = CertificateDer::pem_slice_iter(id.certificate_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| local("the upstream identity certificate", e))?;
                let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
                    .map_err(|e| local("the upstream identity key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| local("the upstream identity certificate and key", e))?
            }
        };
        Self::new(cloud_url, proxy, tls)
    }

    /// A link that accepts any server certificate: only for fetching the
    /// cloud's CA certificate, which is then checked against the pin before
    /// anything secret is sent.
    fn unpinned(cloud_url: &str, proxy: Option<&str>) -> Result<Self, LinkError> {
        let provider = crate::pki::tls_provider();
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| local("TLS", e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
            .with_no_client_auth();
        Self::new(cloud_url, proxy, tls)
    }

    fn new(
        cloud_url: &str,
        proxy: Option<&str>,
        tls: rustls::ClientConfig,
    ) -> Result<Self, LinkError> {
        let mut builder = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("satellite/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = proxy {
            let proxy = ureq::Proxy::new(proxy).map_err(|e| local("sync.proxy", e))?;
            builder = builder.proxy(proxy);
        }
        Ok(Self {
            base: cloud_url.trim_end_matches('/').to_string(),
            agent: builder.build(),
            proxy: proxy.map(without_credentials),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Fetches the cloud's CA certificate and accepts it only if its SHA-256
    /// is the one the satellite token pins. Returns the PEM.
    pub fn fetch_pinned_ca(
        cloud_url: &str,
        proxy: Option<&str>,
        pinned_sha256: &str,
    ) -> Result<String, LinkError> {
        let link = Self::unpinned(cloud_url, proxy)?;
        let url = link.url(CA_PATH);
        let response = link.agent.get(&url).call();
        let pem = link.body(&url, response)?;
        let text = String::from_utf8(pem).map_err(|_| LinkError::Refused {
            status: 200,
            code: "bad_response".into(),
            message: format!("{url} did not answer with a PEM certificate"),
        })?;
        let cert = openssl::x509::X509::from_pem(text.as_bytes())
            .and_then(|c| c.to_der())
            .map_err(|e| LinkError::Refused {
                status: 200,
                code: "bad_response".into(),
                message: format!("{url} did not answer with a PEM certificate: {e}"),
            })?;
        let found = crate::pki::sha256_hex(&cert);
        if !found.eq_ignore_ascii_case(pinned_sha256) {
            return Err(LinkError::WrongCloud {
                url: cloud_url.to_string(),
                found,
                pinned: pinned_sha256.to_string(),
            });
        }
        Ok(text)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>, LinkError> {
        let url = self.url(path);
        let response = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        self.body(&url, response)
    }

    pub fn post_bundle(&self, path: &str, bundle: &[u8]) -> Result<Vec<u8>, LinkError> {
        let url = self.url(path);
        let response = self
            .agent
            .post(&url)
            .set("Content-Type", "application/zip")
            .send_bytes(bundle);
        self.body(&url, response)
    }

    fn body(
        &self,
        url: &str,
        response: Result<ureq::Response, ureq::Error>,
    ) -> Result<Vec<u8>, LinkError> {
        let limit = Limits::default().max_bundle_bytes;
        let read = |r: ureq::Response| {
            let mut body = Vec::new();
            r.into_reader()
                .take(limit)
                .read_to_end(&mut body)
                .map(|_| body)
                .map_err(|e| LinkError::Unreachable {
                    hop: self.cloud_hop(url),
                    reason: format!("reading the answer: {e}"),
                })
        };
        match response {
            Ok(r) => read(r),
            Err(ureq::Error::Status(status, r)) => {
                let body = read(r).unwrap_or_default();
                Err(refused(status, &body))
            }
            Err(ureq::Error::Transport(t)) => Err(self.unreachable(url, &t)),
        }
    }

    /// A transport failure, naming the hop once: the proxy itself, or the
    /// cloud (through the proxy, which could not reach it, when there is one).
    fn unreachable(&self, url: &str, t: &ureq::Transport) -> LinkError {
        use ureq::ErrorKind;
        let reason = match t.message() {
            Some(message) => format!("{}: {}", t.kind(), one_line(message)),
            None => t.kind().to_string(),
        };
        let hop = match (&self.proxy, t.kind()) {
            (Some(proxy), ErrorKind::ConnectionFailed | ErrorKind::Dns) => {
                format!("the proxy {proxy} (on the way to {url})")
            }
            (Some(proxy), ErrorKind::ProxyUnauthorized) => {
                format!("the cloud through the proxy {proxy}, which refused our credentials")
            }
            _ => self.cloud_hop(url),
        };
        LinkError::Unreachable { hop, reason }
    }

    fn cloud_hop(&self, url: &str) -> String {
        match &self.proxy {
            Some(proxy) => format!("the cloud at {url} through the proxy {proxy}"),
            None => format!("the cloud at {url}"),
        }
    }
}

/// A proxy URL fit for a log line: any `user:password@` taken out.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_string(),
        },
        None => url.rsplit('@').next().unwrap_or(url).to_string(),
    }
}

/// Reads `{"error": {"code", "message"}}`; anything else keeps the status.
fn refused(status: u16, body: &[u8]) -> LinkError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v["error"][name].as_str())
            .map(one_line)
    };
    LinkError::Refused {
        status,
        code: field("code").unwrap_or_else(|| format!("http_{status}")),
        message: field("message").unwrap_or_else(|| {
            let text = one_line(&String::from_utf8_lossy(body));
            format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            )
        }),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Accepts any server certificate but still checks the handshake
/// signatures. Used once, to fetch a CA certificate that is then checked
/// against the token's fingerprint.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_read_and_classified() {
        let e = refused(
            403,
            br#"{"error":{"code":"satellite_revoked","message":"revoked on 2027-01-01"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "the cloud refused (satellite_revoked): revoked on 2027-01-01"
        );
        assert!(!e.is_retryable());
        let e = refused(503, b"<html>busy</html>");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("http_503"), "{e}");
    }

    #[test]
    fn only_http_connect_proxies_are_accepted() {
        assert!(
            CloudLink::unpinned("https://cloud.example", Some("http://p.example:3128")).is_ok()
        );
        assert!(CloudLink::unpinned("https://cloud.example", Some("socks9://x")).is_err());
    }
}
