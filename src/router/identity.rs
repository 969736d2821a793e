//! The device's key pair and certificate signing requests (openssl).

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// What goes wrong is always local (a damaged state file or openssl itself).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct IdentityError {
    what: &'static str,
    reason: String,
}

fn err(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> IdentityError {
    move |e| IdentityError {
        what,
        reason: e.to_string(),
    }
}

/// A new ECDSA P-256 key as PKCS#8 PEM.
pub fn new_key() -> Result<String, IdentityError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(err("P-256 curve"))?;
    let ec = EcKey::generate(&group).map_err(err("generating a P-256 key"))?;
    let key = PKey::from_ec_key(ec).map_err(err("generating a P-256 key"))?;
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(err("encoding the key"))?;
    String::from_utf8(pem).map_err(|e| IdentityError {
        what: "encoding the key",
        reason: e.to_string(),
    })
}

fn parse_key(key_pem: &str) -> Result<PKey<Private>, IdentityError> {
    PKey::private_key_from_pem(key_pem.as_bytes()).map_err(err(
        "the state file's key_pem is not a private key; re-create the router with `init --force`",
    ))
}

/// A PEM CSR signed by `key_pem`. The server names the certificate after
/// the instance it creates, so the subject only helps people reading logs.
pub fn csr(key_pem: &str, common_name: &str) -> Result<String, IdentityError> {
    let key = parse_key(key_pem)?;
    crate::pki::build_csr(&key, common_name).map_err(err("building the CSR"))
}

/// The key as DER PKCS#8, the form rustls takes.
pub fn key_pkcs8_der(key_pem: &str) -> Result<Vec<u8>, IdentityError> {
    parse_key(key_pem)?
        .private_key_to_pkcs8()
        .map_err(err("encoding the key"))
}

/// All certificates of a PEM bundle, as DER.
pub fn certificates_der(pem: &str, what: &'static str) -> Result<Vec<Vec<u8>>, IdentityError> {
    let certs = X509::stack_from_pem(pem.as_bytes()).map_err(err(what))?;
    if certs.is_empty() {
        return Err(IdentityError {
            what,
            reason: "no PEM certificate found".into(),
        });
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(err(what)))
        .collect()
}

/// Checks that a certificate the server issued carries our public key, so a
/// mix-up shows now and not as a TLS failure on the next message.
pub fn certificate_matches_key(cert_pem: &str, key_pem: &str) -> Result<(), IdentityError> {
    let what = "the issued certificate";
    let cert = X509::from_pem(cert_pem.as_bytes()).map_err(err(what))?;
    let key = parse_key(key_pem)?;
    let public = cert.public_key().map_err(err(what))?;
    if public.public_eq(&key) {
        Ok(())
    } else {
        Err(IdentityError {
            what,
            reason: "it does not carry the key of the CSR we sent".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_csr_round_trip() {
        let key = new_key().unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let pem = csr(&key, "N540-24Z8Q2C-M:FOC2104R0XX").unwrap();
        let req = openssl::x509::X509Req::from_pem(pem.as_bytes()).unwrap();
        let public = req.public_key().unwrap();
        assert!(req.verify(&public).unwrap());
        assert!(!key_pkcs8_der(&key).unwrap().is_empty());
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(csr("nonsense", "x").is_err());
        assert!(certificates_der("nonsense", "--ca").is_err());
    }
}
