//! The satellite's certificate authority and the certificates it issues.
//!
//! ECDSA P-256 everywhere: handshakes are about ten times cheaper than with
//! RSA-2048. The CA key is parsed once and kept; CSRs are decoded from DER.

pub(crate) mod csr;
pub mod files;
mod issue;
pub mod password;
pub mod purpose;
pub mod signer;

pub use csr::{build_csr, parse_csr, CheckedCsr, CsrError};
pub use issue::{IssuedCertificate, DEVICE_CERT_DAYS};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};
use std::path::{Path, PathBuf};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server.key";

const CA_DAYS: u32 = 20 * 365;
const SERVER_DAYS: u32 = 825;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("cannot hash the password: {0}")]
    Password(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The one TLS crypto provider, for the listeners and the cloud link alike.
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 over data given in pieces.
pub use openssl::sha::Sha256;

/// SHA-256 as an `io::Write` (for `io::copy`, or any stream written once).
#[derive(Default)]
pub struct Sha256Writer(Sha256);

impl Sha256Writer {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The hash, lowercase hex.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finish())
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

/// SHA-256 of `data`, lowercase hex (fingerprints, bundle and file hashes).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Fills `buf` from the operating system's random generator (via OpenSSL).
pub fn fill_random(buf: &mut [u8]) -> Result<(), openssl::error::ErrorStack> {
    openssl::rand::rand_bytes(buf)
}

/// A certificate's subject common name, if it has one.
pub fn common_name(cert: &openssl::x509::X509Ref) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
}

/// Whether two secrets (or hashes of them) are equal, compared in constant
/// time: the one comparison every secret check uses. Different lengths are
/// unequal (and say only that).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// Loads OpenSSL's configuration and seeds its random generator now
/// rather than at first use (see `setup::open_existing`).
pub fn warm_up() {
    openssl::init();
    let _ = openssl::rand::rand_bytes(&mut [0u8; 16]);
}

pub fn new_p256_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// A positive 127-bit random serial, unique in practice without coordination.
pub(crate) fn random_serial() -> Result<BigNum, PkiError> {
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(serial)
}

/// A positive 120-bit serial: the issuing second, then 88 random bits
/// (unique in practice without coordination, as a random one). Device
/// certificates are issued by the thousand; serials that grow with time
/// land at the end of the serial index instead of on a random page each.
pub(crate) fn time_ordered_serial(now: i64) -> Result<BigNum, PkiError> {
    let mut bytes = [0u8; 15];
    let second = u32::try_from(now.max(1)).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&second.to_be_bytes());
    openssl::rand::rand_bytes(&mut bytes[4..])?;
    Ok(BigNum::from_slice(&bytes)?)
}

pub(crate) fn asn1_time(unix: i64) -> Result<Asn1Time, PkiError> {
    Ok(Asn1Time::from_unix(unix)?)
}

/// The satellite CA: signs device identity certificates and the server certificate.
pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
    cert_pem: String,
    device_extensions: Vec<openssl::x509::X509Extension>,
}

impl CertificateAuthority {
    /// Loads `ca.pem` and `ca.key` from the data dir.
    pub fn load(data_dir: &Path) -> Result<Self, PkiError> {
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
        let key_pem = std::fs::read(&key_path).map_err(io_error(&key_path))?;
        let cert = X509::from_pem(cert_pem.as_bytes()).map_err(|e| PkiError::BadFile {
            path: cert_path.clone(),
            reason: format!("not a PEM certificate: {e}"),
        })?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(|e| PkiError::BadFile {
            path: key_path.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        // A legacy EC key signs in a fifth of the time a provider key takes
        // in OpenSSL 3.0 (measured), and the CA signs every registration.
        let key = match key.ec_key() {
            Ok(ec) => PKey::from_ec_key(ec)?,
            Err(_) => key,
        };
        if !cert.public_key()?.public_eq(&key) {
            return Err(PkiError::BadFile {
                path: key_path,
                reason: format!("this key does not belong to {}", cert_path.display()),
            });
        }
        Ok(Self {
            cert,
            key,
            cert_pem,
            device_extensions: issue::device_extensions()?,
        })
    }

    /// Creates a new CA in the data dir. Fails if one is already there.
    pub fn create(data_dir: &Path, common_name: &str, now: i64) -> Result<Self, PkiError> {
        let key = new_p256_key()?;
        let mut name = X509Name::builder()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "Smart Licensing Satellite")?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(random_serial()?.to_asn1_integer()?.as_ref())?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(asn1_time(now - 3600)?.as_ref())?;
        builder.set_not_after(asn1_time(now + i64::from(CA_DAYS) * 86_400)?.as_ref())?;
        builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        builder.sign(&key, MessageDigest::sha256())?;
        let cert = builder.build();
        let cert_pem = String::from_utf8_lossy(&cert.to_pem()?).into_owned();

        let key_path = data_dir.join(CA_KEY_FILE);
        files::create_private(&key_path, &key.private_key_to_pem_pkcs8()?)
            .map_err(io_error(&key_path))?;
        let cert_path = data_dir.join(CA_CERT_FILE);
        files::create_public(&cert_path, cert_pem.as_bytes()).map_err(io_error(&cert_path))?;
        Ok(Self {
            cert,
            key,
            cert_pem,
            device_extensions: issue::device_extensions()?,
        })
    }

    pub fn certificate(&self) -> &X509 {
        &self.cert
    }

    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn certificate_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.cert.to_der()?)
    }

    /// SHA-256 over the DER certificate: what a satellite token pins.
    pub fn fingerprint_hex(&self) -> Result<String, PkiError> {
        Ok(hex::encode(openssl::sha::sha256(&self.cert.to_der()?)))
    }

    /// Creates the server certificate for both listeners, with the configured
    /// host names as SANs. Fails if one is already there.
    pub fn create_server_certificate(
        &self,
        data_dir: &Path,
        hostnames: &[String],
        now: i64,
    ) -> Result<(), PkiError> {
        let key = new_p256_key()?;
        let mut name = X509Name::builder()?;
        let cn = hostnames.first().map(String::as_str).unwrap_or("localhost");
        name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(random_serial()?.to_asn1_integer()?.as_ref())?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(asn1_time(now - 3600)?.as_ref())?;
        builder.set_not_after(asn1_time(now + i64::from(SERVER_DAYS) * 86_400)?.as_ref())?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for host in hostnames {
            if host.parse::<std::net::IpAddr>().is_ok() {
                san.ip(host);
            } else {
                san.dns(host);
            }
        }
        let san = san.build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(san)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        let cert = builder.build();

        let key_path = data_dir.join(SERVER_KEY_FILE);
        files::create_private(&key_path, &key.private_key_to_pem_pkcs8()?)
            .map_err(io_error(&key_path))?;
        let mut chain = cert.to_pem()?;
        chain.extend_from_slice(self.cert_pem.as_bytes());
        let cert_path = data_dir.join(SERVER_CERT_FILE);
        files::create_public(&cert_path, &chain).map_err(io_error(&cert_path))?;
        Ok(())
    }
}

/// Why the generated server certificate no longer fits, if it does not:
/// host names added to `device.hostnames` since, or close to its end. Never
/// replaced silently: a second init changes nothing.
pub fn server_certificate_problem(path: &Path, hostnames: &[String], now: i64) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let cert = X509::from_pem(&pem).ok()?;
    let names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| {
                    n.dnsname().map(str::to_string).or_else(|| {
                        n.ipaddress().and_then(|ip| match ip.len() {
                            4 => <[u8; 4]>::try_from(ip)
                                .ok()
                                .map(|b| std::net::IpAddr::from(b).to_string()),
                            16 => <[u8; 16]>::try_from(ip)
                                .ok()
                                .map(|b| std::net::IpAddr::from(b).to_string()),
                            _ => None,
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<&str> = hostnames
        .iter()
        .filter(|h| !names.iter().any(|n| n == *h))
        .map(String::as_str)
        .collect();
    let renew = "delete server.pem and server.key in the data dir and start again to have them re-issued by the CA";
    if !missing.is_empty() {
        return Some(format!(
            "{} does not name {} (device.hostnames); {renew}",
            path.display(),
            missing.join(", ")
        ));
    }
    let soon = asn1_time(now + 30 * 86_400).ok()?;
    if cert.not_after() < soon.as_ref() {
        return Some(format!(
            "{} expires within 30 days; {renew}",
            path.display()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_serials_grow_with_the_second_and_never_repeat() {
        let hex = |now| {
            time_ordered_serial(now)
                .and_then(|s| Ok(s.to_hex_str()?.to_string()))
                .expect("serial")
        };
        let now = 1_796_000_000;
        let same_second: std::collections::BTreeSet<String> = (0..1000).map(|_| hex(now)).collect();
        assert_eq!(same_second.len(), 1000);
        assert!(same_second.iter().all(|s| s.len() == 30));
        let later = hex(now + 1);
        assert!(
            same_second.iter().all(|s| *s < later),
            "a later second sorts after"
        );
    }

    #[test]
    fn created_ca_loads_back_and_keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::create(dir.path(), "Test CA", 1_700_000_000).expect("ca");
        let again = CertificateAuthority::load(dir.path()).expect("load");
        assert_eq!(ca.certificate_pem(), again.certificate_pem());
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            CertificateAuthority::create(dir.path(), "Again", 1_700_000_000).is_err(),
            "a second CA must never overwrite the first"
        );
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        ca.create_server_certificate(dir.path(), &hosts, 1_700_000_000)
            .expect("server certificate");
        let server = dir.path().join(SERVER_CERT_FILE);
        assert_eq!(
            server_certificate_problem(&server, &hosts, 1_700_000_000),
            None
        );
        let more = vec!["localhost".to_string(), "sat.example".to_string()];
        let problem =
            server_certificate_problem(&server, &more, 1_700_000_000).expect("missing name");
        assert!(problem.contains("sat.example"), "{problem}");
        assert!(
            server_certificate_problem(&server, &hosts, 1_700_000_000 + 820 * 86_400).is_some()
        );
    }
}
