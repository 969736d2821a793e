//! rustls configuration for both listeners.
//!
//! The device listener asks for a client certificate but does not require
//! one: REGISTRATION has none yet, and refusing a certificate inside the
//! handshake would be a silent TLS alert. Certificates are enforced per
//! message by the device service, which answers with a JSON error.

use crate::clock::Clock;
use crate::setup::ServerIdentity;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(String),
}

/// Sessions kept for resumption: a returning router skips the full handshake.
const SESSION_CACHE: usize = 16 * 1024;

pub use crate::pki::tls_provider as provider;

fn load_identity(
    identity: &ServerIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let file_error = |path: &std::path::Path, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&identity.cert)
        .map_err(|e| file_error(&identity.cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(&identity.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            &identity.cert,
            "contains no PEM certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&identity.key)
        .map_err(|e| file_error(&identity.key, format!("no usable PEM private key: {e}")))?;
    Ok((chain, key))
}

fn finish(mut config: ServerConfig) -> Arc<ServerConfig> {
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub fn device_config(
    identity: &ServerIdentity,
    ca_der: Vec<u8>,
    clock: Clock,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let (chain, key) = load_identity(identity)?;
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der))?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = Arc::new(DeviceCertVerifier { inner, clock });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(finish(config))
}

pub fn admin_config(identity: &ServerIdentity) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = load_identity(identity)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(finish(config))
}

/// Checks client certificates against the satellite CA at the injected
/// clock's time. A certificate that fails is let through the handshake but
/// never trusted: the device service identifies a caller only by the
/// fingerprint of a certificate this satellite issued and has on record, and
/// refuses everything else with `certificate_unknown`. The handshake's
/// signature checks still prove the client holds the key.
#[derive(Debug)]
struct DeviceCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    clock: Clock,
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(self.clock.unix()).unwrap_or(0),
        ));
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            // Debug, not warn: anyone can present a foreign certificate, and
            // each refused request is logged by the device service anyway.
            tracing::debug!(
                error = %e,
                "a client presented a certificate that does not verify against the satellite CA; \
                 its requests will be refused with certificate_unknown"
            );
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
