//! The bundle-signing key: what signs every sync bundle this satellite (or
//! cloud) sends.
//!
//! A key of its own rather than the CA key, for two reasons: the CA key, which
//! every router's identity depends on, stays out of the bundle code (which
//! runs on a schedule, writes files to USB folders and talks to peers); and a
//! leaked or lost bundle key is replaced by issuing a new one from the same CA
//! (delete `signer.key` and `signer.pem`), without re-registering any router
//! and without the peer re-pinning anything, since the peer pins the CA.

use super::{asn1_time, files, io_error, new_p256_key, random_serial};
use super::{CertificateAuthority, PkiError};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509Name, X509};
use std::path::Path;

pub const SIGNER_KEY_FILE: &str = "signer.key";
pub const SIGNER_CERT_FILE: &str = "signer.pem";

/// The bundle-signing key with its certificate chain (leaf, then the CA).
pub struct BundleSigner {
    key: PKey<Private>,
    chain_pem: String,
}

impl std::fmt::Debug for BundleSigner {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleSigner").finish_non_exhaustive()
    }
}

impl BundleSigner {
    /// Creates `signer.key` and `signer.pem` if both are absent, then loads
    /// them. One without the other is refused: the operator decides which
    /// to restore or delete, nothing is overwritten.
    pub fn ensure(
        data_dir: &Path,
        ca: &CertificateAuthority,
        name: &str,
        now: i64,
    ) -> Result<Self, PkiError> {
        let key_path = data_dir.join(SIGNER_KEY_FILE);
        let cert_path = data_dir.join(SIGNER_CERT_FILE);
        match (key_path.exists(), cert_path.exists()) {
            (true, true) => {
                let signer = Self::load(data_dir)?;
                signer.check_issued_by(ca, &cert_path)?;
                Ok(signer)
            }
            (false, false) => Self::create(data_dir, ca, name, now),
            _ => Err(PkiError::BadFile {
                path: if key_path.exists() {
                    cert_path
                } else {
                    key_path
                },
                reason: format!(
                    "missing, while {} and {} must both exist or both be absent; \
                     restore it from backup, or delete the other one to have a new \
                     bundle-signing key issued",
                    SIGNER_KEY_FILE, SIGNER_CERT_FILE
                ),
            }),
        }
    }

    /// Loads `signer.key` and `signer.pem` from the data dir.
    pub fn load(data_dir: &Path) -> Result<Self, PkiError> {
        let key_path = data_dir.join(SIGNER_KEY_FILE);
        let cert_path = data_dir.join(SIGNER_CERT_FILE);
        let key_pem = std::fs::read(&key_path).map_err(io_error(&key_path))?;
        let chain_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(|e| PkiError::BadFile {
            path: key_path.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        let chain = X509::stack_from_pem(chain_pem.as_bytes()).map_err(|e| PkiError::BadFile {
            path: cert_path.clone(),
            reason: format!("not PEM certificates: {e}"),
        })?;
        if chain.len() != 2 {
            return Err(PkiError::BadFile {
                path: cert_path,
                reason: format!(
                    "holds {} certificates; it must hold the bundle signer's certificate \
                     followed by the CA certificate",
                    chain.len()
                ),
            });
        }
        if !chain[0].public_key()?.public_eq(&key) {
            return Err(PkiError::BadFile {
                path: key_path,
                reason: format!("this key does not belong to {}", cert_path.display()),
            });
        }
        Ok(Self { key, chain_pem })
    }

    /// The leaf certificate then the CA certificate, PEM: `signer.pem`.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// DER ECDSA-SHA256 signature over `data`, as `openssl dgst -sha256
    /// -sign` writes it.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key)?;
        Ok(signer.sign_oneshot_to_vec(data)?)
    }

    fn create(
        data_dir: &Path,
        ca: &CertificateAuthority,
        name: &str,
        now: i64,
    ) -> Result<Self, PkiError> {
        let key = new_p256_key()?;
        let cert = ca.issue_bundle_signer(&key, &format!("{name} bundle signer"), now)?;
        let mut chain = cert.to_pem()?;
        chain.extend_from_slice(ca.certificate_pem().as_bytes());
        let chain_pem = String::from_utf8_lossy(&chain).into_owned();

        let key_path = data_dir.join(SIGNER_KEY_FILE);
        files::create_private(&key_path, &key.private_key_to_pem_pkcs8()?)
            .map_err(io_error(&key_path))?;
        let cert_path = data_dir.join(SIGNER_CERT_FILE);
        files::create_public(&cert_path, chain_pem.as_bytes()).map_err(io_error(&cert_path))?;
        Ok(Self { key, chain_pem })
    }

    /// A signer left from another CA (a restored backup of only some files)
    /// would sign bundles the peer refuses; say so at start instead.
    fn check_issued_by(&self, ca: &CertificateAuthority, path: &Path) -> Result<(), PkiError> {
        let chain = X509::stack_from_pem(self.chain_pem.as_bytes())?;
        let issued_by_ca = match chain.as_slice() {
            [leaf, chain_ca] => {
                chain_ca.to_der()? == ca.certificate_der()?
                    && leaf.verify(ca.certificate().public_key()?.as_ref())?
            }
            _ => false,
        };
        if issued_by_ca {
            Ok(())
        } else {
            Err(PkiError::BadFile {
                path: path.to_path_buf(),
                reason: format!(
                    "was not issued by this data dir's CA ({}); delete {} and {} to have \
                     a new bundle-signing key issued",
                    super::CA_CERT_FILE,
                    SIGNER_KEY_FILE,
                    SIGNER_CERT_FILE
                ),
            })
        }
    }
}

impl CertificateAuthority {
    /// The bundle signer's certificate: signatures only, never a CA, valid
    /// as long as the CA so it never expires before what vouches for it.
    pub fn issue_bundle_signer(
        &self,
        key: &PKey<Private>,
        common_name: &str,
        now: i64,
    ) -> Result<X509, PkiError> {
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "Smart Licensing Satellite")?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(random_serial()?.to_asn1_integer()?.as_ref())?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(key)?;
        builder.set_not_before(asn1_time(now - 3600)?.as_ref())?;
        builder.set_not_after(self.cert.not_after())?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        let ski =
            SubjectKeyIdentifier::new().build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(ski)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;
    use openssl::x509::X509KeyUsage;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn ensure_creates_a_signing_key_chained_to_the_ca_and_keeps_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", NOW).expect("ca");
        let signer = BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW).expect("signer");
        let mode = std::fs::metadata(dir.path().join(SIGNER_KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let chain = X509::stack_from_pem(signer.chain_pem().as_bytes()).expect("chain");
        assert_eq!(chain.len(), 2);
        let leaf = &chain[0];
        assert_eq!(
            chain[1].to_der().expect("der"),
            ca.certificate_der().expect("ca der")
        );
        assert!(leaf
            .verify(ca.certificate().public_key().expect("ca key").as_ref())
            .expect("verify"));
        let cn = leaf
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        assert_eq!(cn.as_deref(), Some("sat-1 bundle signer"));
        let usage = leaf.key_usage().expect("key usage");
        assert!(usage.contains(X509KeyUsage::DIGITAL_SIGNATURE));
        assert!(!usage.contains(X509KeyUsage::KEY_CERT_SIGN));
        assert_eq!(leaf.not_after(), ca.certificate().not_after());
        assert!(
            !leaf
                .public_key()
                .expect("leaf key")
                .public_eq(ca.certificate().public_key().expect("ca key").as_ref()),
            "the bundle key must not be the CA key"
        );

        let signature = signer.sign(b"manifest").expect("sign");
        let leaf_key = leaf.public_key().expect("leaf key");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &leaf_key).expect("verifier");
        assert!(verifier
            .verify_oneshot(&signature, b"manifest")
            .expect("verify"));

        let again = BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW + 10).expect("again");
        assert_eq!(again.chain_pem(), signer.chain_pem(), "never re-issued");
        let loaded = BundleSigner::load(dir.path()).expect("load");
        assert_eq!(loaded.chain_pem(), signer.chain_pem());
    }

    #[test]
    fn ensure_refuses_half_a_signer_and_a_signer_from_another_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", NOW).expect("ca");
        BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW).expect("signer");
        let pem_path = dir.path().join(SIGNER_CERT_FILE);
        let pem = std::fs::read(&pem_path).expect("pem");
        std::fs::remove_file(&pem_path).expect("rm");
        let err = BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW).expect_err("half");
        assert!(err.to_string().contains("signer.pem"), "{err}");
        assert!(!pem_path.exists(), "nothing is re-created over a lone key");

        std::fs::write(&pem_path, &pem).expect("restore");
        let other = tempfile::tempdir().expect("tempdir");
        let other_ca = CertificateAuthority::create(other.path(), "Other CA", NOW).expect("ca");
        let err = BundleSigner::ensure(dir.path(), &other_ca, "sat-1", NOW).expect_err("foreign");
        assert!(err.to_string().contains("not issued by"), "{err}");
    }
}
