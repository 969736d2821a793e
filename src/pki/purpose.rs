//! What a certificate of our CA was issued for, read from its extensions.
//!
//! One CA certifies router identities, satellites' upstream identities, the
//! server certificate and the bundle signer. Chaining to that CA therefore
//! proves nothing about bundles: only the purpose the certificate carries
//! does, and each kind the CA issues carries a purpose of its own.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The extended key usage only bundle-signer certificates carry: an OID in
/// the `2.25` arc (ITU-T X.667), derived from UUID
/// 0fa37ac5-4170-48d7-9520-d59004765bae, so it needs no registration and
/// collides with nothing. `openssl x509 -ext extendedKeyUsage` prints it.
pub const BUNDLE_SIGNING_OID: &str = "2.25.20787254406886845128240638220802874286";

/// The same OID as DER content bytes (what a parsed extension holds); a
/// test checks it against OpenSSL's encoding of the dotted form.
const BUNDLE_SIGNING_OID_DER: [u8; 19] = [
    0x69, 0x9f, 0xa3, 0xbd, 0xb1, 0xa8, 0x97, 0x82, 0xa3, 0xaf, 0x95, 0x90, 0xb5, 0xb2, 0x80, 0xa3,
    0xd9, 0xb7, 0x2e,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Extended key usage bundle signing, nothing else.
    BundleSigner,
    /// A signer issued before signers carried their extended key usage: key
    /// usage digitalSignature alone and no extended key usage at all, a shape
    /// no other certificate of ours has. Trusted only as a pinned signer or
    /// at first contact, so nodes paired before the change keep exchanging.
    LegacyBundleSigner,
    /// Extended key usage clientAuth: a router's identity, or a satellite's
    /// upstream identity at its cloud.
    Identity,
    /// Extended key usage serverAuth: a listener's certificate.
    Server,
    /// A CA certificate.
    Authority,
    /// Anything else (unreadable, mixed or foreign purposes).
    Other,
}

impl Purpose {
    /// Reads the purpose from a DER certificate.
    pub fn of(der: &[u8]) -> Purpose {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Purpose::Other;
        };
        Self::of_parsed(&cert)
    }

    fn of_parsed(cert: &X509Certificate<'_>) -> Purpose {
        let (Ok(constraints), Ok(usage), Ok(extended)) = (
            cert.basic_constraints(),
            cert.key_usage(),
            cert.extended_key_usage(),
        ) else {
            return Purpose::Other;
        };
        let usage = usage.map(|u| u.value);
        if constraints.is_some_and(|c| c.value.ca) || usage.is_some_and(|u| u.key_cert_sign()) {
            return Purpose::Authority;
        }
        let Some(extended) = extended.map(|e| e.value) else {
            let signature_only = usage.is_some_and(|u| u.digital_signature() && u.flags == 1);
            return if signature_only {
                Purpose::LegacyBundleSigner
            } else {
                Purpose::Other
            };
        };
        let bundle_signing = extended
            .other
            .iter()
            .any(|oid| oid.as_bytes() == BUNDLE_SIGNING_OID_DER);
        let standard = [
            extended.any,
            extended.server_auth,
            extended.client_auth,
            extended.code_signing,
            extended.email_protection,
            extended.time_stamping,
            extended.ocsp_signing,
        ];
        match (bundle_signing, extended.client_auth, extended.server_auth) {
            (true, _, _) if extended.other.len() == 1 && !standard.contains(&true) => {
                Purpose::BundleSigner
            }
            (true, _, _) => Purpose::Other,
            (false, true, false) => Purpose::Identity,
            (false, false, true) => Purpose::Server,
            _ => Purpose::Other,
        }
    }

    /// Whether a bundle may be signed by a certificate of this purpose.
    pub fn signs_bundles(self) -> bool {
        matches!(self, Purpose::BundleSigner | Purpose::LegacyBundleSigner)
    }

    /// The kind of certificate, as a refusal names it.
    pub fn describe(self) -> &'static str {
        match self {
            Purpose::BundleSigner => "a bundle-signer certificate",
            Purpose::LegacyBundleSigner => {
                "a bundle-signer certificate (issued before signers carried the bundle-signing \
                 extended key usage)"
            }
            Purpose::Identity => {
                "an identity certificate (extended key usage clientAuth: a router's identity or a \
                 satellite's upstream identity)"
            }
            Purpose::Server => "a server certificate (extended key usage serverAuth)",
            Purpose::Authority => "a CA certificate",
            Purpose::Other => {
                "a certificate without the bundle-signing extended key usage (or with other \
                 purposes beside it)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::signer::BundleSigner;
    use crate::pki::{new_p256_key, parse_csr, CertificateAuthority};
    use openssl::x509::X509;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn the_oid_bytes_are_the_dotted_oid() {
        let object = openssl::asn1::Asn1Object::from_str(BUNDLE_SIGNING_OID).expect("oid");
        assert_eq!(object.as_slice(), BUNDLE_SIGNING_OID_DER);
    }

    #[test]
    fn every_certificate_the_ca_issues_has_its_own_purpose() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", NOW).expect("ca");
        let der = |pem: &[u8]| X509::from_pem(pem).and_then(|c| c.to_der()).expect("pem");

        assert_eq!(
            Purpose::of(&ca.certificate_der().expect("der")),
            Purpose::Authority
        );

        let signer = BundleSigner::ensure(dir.path(), &ca, "sat", NOW).expect("signer");
        let signer_purpose = Purpose::of(&der(signer.chain_pem().as_bytes()));
        assert_eq!(signer_purpose, Purpose::BundleSigner);
        assert!(signer_purpose.signs_bundles());

        let key = new_p256_key().expect("key");
        let csr = parse_csr(&crate::pki::csr::tests::csr_pem(&key)).expect("csr");
        let router = ca
            .issue_device_certificate(&csr, "inst-1", NOW)
            .expect("router");
        assert_eq!(Purpose::of(&der(router.pem.as_bytes())), Purpose::Identity);
        assert!(!Purpose::Identity.signs_bundles());

        ca.create_server_certificate(dir.path(), &["localhost".into()], NOW)
            .expect("server");
        let server = std::fs::read(dir.path().join(crate::pki::SERVER_CERT_FILE)).expect("pem");
        assert_eq!(Purpose::of(&der(&server)), Purpose::Server);

        let legacy = ca
            .issue_legacy_bundle_signer_for_tests(&key, NOW)
            .expect("legacy");
        assert_eq!(
            Purpose::of(&legacy.to_der().expect("der")),
            Purpose::LegacyBundleSigner
        );
        assert_eq!(Purpose::of(b"not a certificate"), Purpose::Other);
    }
}
