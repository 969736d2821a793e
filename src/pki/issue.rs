//! Device identity certificates.

use super::csr::CheckedCsr;
use super::{asn1_time, time_ordered_serial, CertificateAuthority, PkiError};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509Extension, X509Name, X509};

/// Identity certificates are valid a year; devices renew after 180 days.
pub const DEVICE_CERT_DAYS: i64 = 365;

#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub pem: String,
    /// SHA-256 of the DER certificate: how the instance is found again when
    /// the router presents it.
    pub fingerprint: [u8; 32],
    pub serial_hex: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// The extensions every device certificate carries, built once.
pub(super) fn device_extensions() -> Result<Vec<X509Extension>, PkiError> {
    Ok(vec![
        BasicConstraints::new().critical().build()?,
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
        // Without clientAuth a verifier that ignores a missing EKU would
        // accept the certificate for any purpose.
        ExtendedKeyUsage::new().client_auth().build()?,
    ])
}

/// PEM armour around DER we already hold (cheaper than asking OpenSSL to
/// encode the certificate a second time).
fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

impl CertificateAuthority {
    /// Signs a checked CSR: subject CN = instance id. The UDI stays in the
    /// database: IOS-style UDIs do not fit X.520's 64-character PrintableString.
    pub fn issue_device_certificate(
        &self,
        csr: &CheckedCsr,
        instance_id: &str,
        now: i64,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, instance_id)?;
        let name = name.build();
        let serial = time_ordered_serial(now)?;
        let not_before = now - 300;
        let not_after = now + DEVICE_CERT_DAYS * 86_400;

        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(serial.to_asn1_integer()?.as_ref())?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(&csr.key)?;
        builder.set_not_before(asn1_time(not_before)?.as_ref())?;
        builder.set_not_after(asn1_time(not_after)?.as_ref())?;
        for extension in &self.device_extensions {
            builder.append_extension2(extension)?;
        }
        builder.sign(&self.key, MessageDigest::sha256())?;
        let cert = builder.build();
        let der = cert.to_der()?;
        Ok(IssuedCertificate {
            pem: pem_certificate(&der),
            fingerprint: openssl::sha::sha256(&der),
            serial_hex: serial.to_hex_str()?.to_string(),
            not_before,
            not_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::csr::tests::csr_pem;
    use crate::pki::{new_p256_key, parse_csr};
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    #[test]
    fn issued_certificate_verifies_against_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ca = CertificateAuthority::create(dir.path(), "Test CA", now).expect("ca");
        let key = new_p256_key().expect("key");
        let csr = parse_csr(&csr_pem(&key)).expect("csr");
        let issued = ca
            .issue_device_certificate(&csr, "inst-1", now)
            .expect("issue");
        let cert = X509::from_pem(issued.pem.as_bytes()).expect("pem");
        assert_eq!(
            issued.pem.as_bytes(),
            cert.to_pem().expect("openssl pem").as_slice(),
            "our PEM is OpenSSL's"
        );
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        assert_eq!(cn.as_deref(), Some("inst-1"));

        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(ca.certificate().clone()).expect("add");
        let store = store.build();
        let mut ctx = X509StoreContext::new().expect("ctx");
        let chain = Stack::new().expect("stack");
        let ok = ctx
            .init(&store, &cert, &chain, |c| c.verify_cert())
            .expect("verify");
        assert!(ok, "device certificate must chain to the CA");
    }
}
