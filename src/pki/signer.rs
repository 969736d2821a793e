//! The bundle-signing key: what signs every sync bundle this satellite (or
//! cloud) sends.
//!
//! A key of its own rather than the CA key, for two reasons: the CA key, which
//! every router's identity depends on, stays out of the bundle code (which
//! runs on a schedule, writes files to USB folders and talks to peers); and a
//! leaked or lost bundle key is replaced by issuing a new one from the same CA
//! (delete `signer.key` and `signer.pem`), without re-registering any router
//! (`satellite bundle rotate-signer`) without re-registering any router.
//!
//! The peer pins this signer's certificate, not merely our CA: the CA also
//! certifies router identities, upstream identities and the server
//! certificate, and none of those may sign a bundle. Rotating therefore
//! leaves a rollover proof beside the new signer: the previous signer's
//! chain (`signer-rollover.pem`) and its signature over the new signer
//! certificate's DER (`signer-rollover.sig`). Every bundle carries both, so
//! a peer that pinned the previous signer moves its pin to the new one.

use super::{asn1_time, files, io_error, new_p256_key, random_serial};
use super::{CertificateAuthority, PkiError};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};
use std::path::Path;

pub const SIGNER_KEY_FILE: &str = "signer.key";
pub const SIGNER_CERT_FILE: &str = "signer.pem";
/// The previous signer's chain, after a rotation (also its bundle entry name).
pub const ROLLOVER_CERT_FILE: &str = "signer-rollover.pem";
/// The previous signer's signature over the current signer certificate's DER.
pub const ROLLOVER_SIGNATURE_FILE: &str = "signer-rollover.sig";

/// The previous signer vouching for the current one.
#[derive(Debug, Clone)]
pub struct Rollover {
    pub previous_chain_pem: String,
    pub signature: Vec<u8>,
}

/// The bundle-signing key with its certificate chain (leaf, then the CA).
pub struct BundleSigner {
    key: PKey<Private>,
    chain_pem: String,
    rollover: Option<Rollover>,
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
        finish_rotation(data_dir)?;
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
        finish_rotation(data_dir)?;
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
        let rollover = load_rollover(data_dir, &chain[0])?;
        Ok(Self {
            key,
            chain_pem,
            rollover,
        })
    }

    /// The rollover proof bundles carry, if this signer replaced another.
    pub fn rollover(&self) -> Option<&Rollover> {
        self.rollover.as_ref()
    }

    /// Replaces the signer with a new key and certificate from `ca`, the
    /// old signer vouching for the new one (see the module comment). The
    /// old key is gone afterwards: a leaked one can no longer roll over.
    pub fn rotate(
        data_dir: &Path,
        ca: &CertificateAuthority,
        name: &str,
        now: i64,
    ) -> Result<Self, PkiError> {
        let old = Self::load(data_dir)?;
        old.check_issued_by(ca, &data_dir.join(SIGNER_CERT_FILE))?;
        let key = new_p256_key()?;
        let cert = ca.issue_bundle_signer(&key, &format!("{name} bundle signer"), now)?;
        let signature = old.sign(&cert.to_der()?)?;
        let mut chain = cert.to_pem()?;
        chain.extend_from_slice(ca.certificate_pem().as_bytes());
        let chain_pem = String::from_utf8_lossy(&chain).into_owned();

        // Staged beside their targets, then renamed: proof first, the key
        // last. `finish_rotation` completes a rotation cut short between
        // the certificate and the key; any other cut leaves a signer whose
        // files agree.
        let staged = |file: &str| data_dir.join(format!("{file}.new"));
        let files: [(&str, &[u8], bool); 4] = [
            (ROLLOVER_CERT_FILE, old.chain_pem.as_bytes(), false),
            (ROLLOVER_SIGNATURE_FILE, &signature, false),
            (SIGNER_CERT_FILE, chain_pem.as_bytes(), false),
            (SIGNER_KEY_FILE, &key.private_key_to_pem_pkcs8()?, true),
        ];
        for (file, contents, private) in &files {
            let path = staged(file);
            remove_if_present(&path)?;
            if *private {
                files::create_private(&path, contents).map_err(io_error(&path))?;
            } else {
                files::create_public(&path, contents).map_err(io_error(&path))?;
            }
        }
        for (file, _, _) in &files {
            let path = staged(file);
            std::fs::rename(&path, data_dir.join(file)).map_err(io_error(&path))?;
        }
        sync_dir(data_dir)?;
        Self::load(data_dir)
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
        Ok(Self {
            key,
            chain_pem,
            rollover: None,
        })
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

fn remove_if_present(path: &Path) -> Result<(), PkiError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// A rotation cut short after the new certificate was renamed into place
/// but before its key was: the staged key belongs to `signer.pem`, so
/// finish. Staged files of a rotation cut shorter belong to nothing and go.
fn finish_rotation(data_dir: &Path) -> Result<(), PkiError> {
    let staged_key = data_dir.join(format!("{SIGNER_KEY_FILE}.new"));
    if !staged_key.exists() {
        return Ok(());
    }
    let cert_path = data_dir.join(SIGNER_CERT_FILE);
    let belongs = (|| {
        let key = PKey::private_key_from_pem(&std::fs::read(&staged_key).ok()?).ok()?;
        let cert = X509::from_pem(&std::fs::read(&cert_path).ok()?).ok()?;
        cert.public_key().ok()?.public_eq(&key).then_some(())
    })()
    .is_some();
    if belongs {
        std::fs::rename(&staged_key, data_dir.join(SIGNER_KEY_FILE))
            .map_err(io_error(&staged_key))?;
        tracing::warn!("finished a bundle-signer rotation that was interrupted");
    } else {
        for file in [
            SIGNER_KEY_FILE,
            SIGNER_CERT_FILE,
            ROLLOVER_CERT_FILE,
            ROLLOVER_SIGNATURE_FILE,
        ] {
            remove_if_present(&data_dir.join(format!("{file}.new")))?;
        }
    }
    sync_dir(data_dir)
}

/// The rollover proof, if present and still about `leaf`: a proof left
/// from an interrupted rotation vouches for nothing and is not sent.
fn load_rollover(data_dir: &Path, leaf: &X509) -> Result<Option<Rollover>, PkiError> {
    let cert_path = data_dir.join(ROLLOVER_CERT_FILE);
    let sig_path = data_dir.join(ROLLOVER_SIGNATURE_FILE);
    if !cert_path.exists() || !sig_path.exists() {
        return Ok(None);
    }
    let previous_chain_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
    let signature = std::fs::read(&sig_path).map_err(io_error(&sig_path))?;
    let vouches = X509::stack_from_pem(previous_chain_pem.as_bytes())
        .ok()
        .and_then(|chain| chain.into_iter().next())
        .and_then(|previous| previous.public_key().ok())
        .and_then(|key| {
            let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &key).ok()?;
            verifier
                .verify_oneshot(&signature, &leaf.to_der().ok()?)
                .ok()
        })
        .unwrap_or(false);
    if !vouches {
        tracing::warn!(
            file = %sig_path.display(),
            "the bundle-signer rollover proof does not vouch for signer.pem; bundles are sent without it"
        );
        return Ok(None);
    }
    Ok(Some(Rollover {
        previous_chain_pem,
        signature,
    }))
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
        let mut builder = self.signing_only_certificate(key, common_name, now)?;
        // Critical, and no other purpose: the one thing that tells this
        // certificate from the identities the same CA issues.
        builder.append_extension(
            ExtendedKeyUsage::new()
                .critical()
                .other(super::purpose::BUNDLE_SIGNING_OID)
                .build()?,
        )?;
        let ski =
            SubjectKeyIdentifier::new().build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(ski)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build())
    }

    /// What every bundle signer is, before its purpose: a leaf of this CA
    /// for signatures only, valid as long as the CA.
    fn signing_only_certificate(
        &self,
        key: &PKey<Private>,
        common_name: &str,
        now: i64,
    ) -> Result<openssl::x509::X509Builder, PkiError> {
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
        Ok(builder)
    }
}

#[cfg(test)]
impl CertificateAuthority {
    /// A signer as issued before signers carried their extended key usage.
    pub(crate) fn issue_legacy_bundle_signer_for_tests(
        &self,
        key: &PKey<Private>,
        now: i64,
    ) -> Result<X509, PkiError> {
        let mut builder = self.signing_only_certificate(key, "legacy bundle signer", now)?;
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

    #[test]
    fn rotate_issues_a_new_signer_vouched_for_by_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", NOW).expect("ca");
        let old = BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW).expect("signer");
        assert!(old.rollover().is_none());
        let new = BundleSigner::rotate(dir.path(), &ca, "sat-1", NOW + 60).expect("rotate");
        assert_ne!(new.chain_pem(), old.chain_pem());
        let rollover = new.rollover().expect("proof");
        assert_eq!(rollover.previous_chain_pem, old.chain_pem());
        let old_leaf = X509::stack_from_pem(old.chain_pem().as_bytes()).expect("old")[0].clone();
        let new_leaf = X509::stack_from_pem(new.chain_pem().as_bytes()).expect("new")[0].clone();
        let old_key = old_leaf.public_key().expect("old key");
        let mut verifier = Verifier::new(MessageDigest::sha256(), &old_key).expect("verifier");
        assert!(verifier
            .verify_oneshot(&rollover.signature, &new_leaf.to_der().expect("der"))
            .expect("verify"));
        let again = BundleSigner::load(dir.path()).expect("load");
        assert_eq!(again.chain_pem(), new.chain_pem());
        assert!(again.rollover().is_some());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".new"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_rotation_cut_between_certificate_and_key_is_finished_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", NOW).expect("ca");
        BundleSigner::ensure(dir.path(), &ca, "sat-1", NOW).expect("signer");
        let key = new_p256_key().expect("key");
        let cert = ca
            .issue_bundle_signer(&key, "sat-1 bundle signer", NOW)
            .expect("cert");
        let mut chain = cert.to_pem().expect("pem");
        chain.extend_from_slice(ca.certificate_pem().as_bytes());
        std::fs::write(dir.path().join(SIGNER_CERT_FILE), &chain).expect("cert in place");
        files::create_private(
            &dir.path().join("signer.key.new"),
            &key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("staged key");
        let loaded = BundleSigner::load(dir.path()).expect("finished");
        assert_eq!(loaded.chain_pem().as_bytes(), chain.as_slice());
        assert!(!dir.path().join("signer.key.new").exists());
    }
}
