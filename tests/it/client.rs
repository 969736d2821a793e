//! A raw HTTPS client of the device API for tests: real TLS, real
//! certificates, JSON bodies built by hand.

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub fn agent(ca: &Path, identity: Option<(&str, &PKey<Private>)>) -> ureq::Agent {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert_pem, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("cert");
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.private_key_to_pkcs8().expect("pkcs8"),
            ));
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(Duration::from_secs(30))
        .build()
}

pub fn p256() -> PKey<Private> {
    satellite::pki::new_p256_key().expect("key")
}

pub fn csr(key: &PKey<Private>) -> String {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "router")
        .expect("cn");
    let mut req = X509ReqBuilder::new().expect("req");
    req.set_subject_name(&name.build()).expect("subject");
    req.set_pubkey(key).expect("pubkey");
    req.sign(key, MessageDigest::sha256()).expect("sign");
    String::from_utf8(req.build().to_pem().expect("pem")).expect("utf8")
}

pub struct Device {
    agent: ureq::Agent,
    url: String,
}

impl Device {
    pub fn new(base: &str, ca: &Path, identity: Option<(&str, &PKey<Private>)>) -> Self {
        Self {
            agent: agent(ca, identity),
            url: format!("{base}/SmartTransport"),
        }
    }

    /// Posts raw bytes; returns status and parsed JSON (Null if not JSON).
    pub fn post_raw(&self, body: &[u8]) -> (u16, Value) {
        let result = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .send_bytes(body);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string().as_bytes())
    }

    /// Posts, giving up after 10 s as a router would; the status, or None
    /// when there was no answer.
    pub fn try_post(&self, body: &Value) -> (Option<u16>, Value) {
        let result = self
            .agent
            .post(&self.url)
            .timeout(Duration::from_secs(10))
            .set("Content-Type", "application/json")
            .send_bytes(body.to_string().as_bytes());
        match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                let text = r.into_string().unwrap_or_default();
                (
                    Some(status),
                    serde_json::from_str(&text).unwrap_or(Value::Null),
                )
            }
            Err(e) => (None, Value::String(e.to_string())),
        }
    }
}

pub fn registration(message_id: &str, sn: &str, token: &str, csr: &str) -> Value {
    json!({
        "type": "REGISTRATION",
        "message_id": message_id,
        "udi": {"pid": "N540-24Z8Q2C-M", "sn": sn},
        "idtoken": token,
        "hostname": format!("router-{sn}"),
        "csr": csr,
    })
}

/// A registered device: its key, certificate and a client that presents it.
pub struct Registered {
    pub key: PKey<Private>,
    pub certificate: String,
    pub instance_id: String,
    pub answer: Value,
    pub client: Device,
}

pub fn register(server: &crate::fixture::Server, sn: &str, token: &str) -> Registered {
    let key = p256();
    let (status, answer) =
        server
            .device()
            .post(&registration(&format!("reg-{sn}"), sn, token, &csr(&key)));
    assert_eq!(status, 200, "registration failed: {answer}");
    let certificate = answer["certificate"]
        .as_str()
        .expect("certificate")
        .to_string();
    let client = Device::new(
        &server.device_url,
        &server.ca_path(),
        Some((&certificate, &key)),
    );
    Registered {
        key,
        instance_id: answer["instance_id"]
            .as_str()
            .expect("instance id")
            .to_string(),
        certificate,
        answer,
        client,
    }
}

pub fn error_code(answer: &Value) -> &str {
    answer["error"]["code"]
        .as_str()
        .unwrap_or("<no error code>")
}
