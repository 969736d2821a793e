//! The signed sync bundle (DESIGN §8): a zip holding `manifest.json`,
//! `manifest.sig` (DER ECDSA P-256 SHA-256 over the exact manifest bytes, by
//! the key of `signer.pem`), `signer.pem` (the signer certificate then its CA)
//! and the payload files the manifest lists, nothing else.
//!
//! The same bytes travel on a USB stick and over live sync. `seal` builds
//! one; `open` checks everything that needs no outside knowledge (structure,
//! names, limits, signature, hashes); the caller then checks the peer
//! (`Opened::check_signer`), the address and the dates
//! (`Opened::check_addressed`) and, with its database, the sequence
//! (`Rule::Replay`). Every refusal names the rule it broke.

mod central;
mod names;

pub use names::unsafe_name;

use crate::pki::signer::BundleSigner;
use openssl::hash::MessageDigest;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509KeyUsage, X509StoreContext, X509};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const FORMAT: &str = "satellite-bundle/1";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.sig";
pub const SIGNER_FILE: &str = "signer.pem";

/// The entries every bundle has besides its payload.
const RESERVED: [&str; 3] = [MANIFEST_FILE, SIGNATURE_FILE, SIGNER_FILE];

/// How far ahead of our clock a bundle's `created_at` may be: clocks on
/// air-gapped sites drift, but a bundle from tomorrow is a wrong clock or a
/// forgery, and would outlive its real validity.
pub const MAX_CLOCK_AHEAD_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    RegistrationRequest,
    Usage,
    Entitlements,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RegistrationRequest => "registration-request",
            Kind::Usage => "usage",
            Kind::Entitlements => "entitlements",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `manifest.json`. Field order here is the key order in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub kind: Kind,
    pub from: String,
    pub to: String,
    pub sequence: u64,
    pub in_reply_to: Option<String>,
    pub previous_sha256: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    /// Payload name -> SHA-256 of its content, lowercase hex.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// `created_at` as Unix seconds.
    pub fn created_unix(&self) -> Result<i64, BundleError> {
        parse_time("created_at", &self.created_at)
    }

    /// `expires_at` as Unix seconds.
    pub fn expires_unix(&self) -> Result<i64, BundleError> {
        parse_time("expires_at", &self.expires_at)
    }
}

/// What the sender states about a bundle it seals. Times in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub from: String,
    pub to: String,
    pub sequence: u64,
    pub in_reply_to: Option<String>,
    pub previous_sha256: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A bundle ready to write or send.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub bytes: Vec<u8>,
    /// SHA-256 of the whole zip, lowercase hex: the next bundle's
    /// `previous_sha256` and the name replies refer to.
    pub sha256: String,
    pub manifest: Manifest,
}

/// Bounds on what `open` reads, so a hostile file costs bounded memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Size of the zip file itself.
    pub max_bundle_bytes: u64,
    /// Number of entries, the three fixed ones included.
    pub max_entries: usize,
    /// Uncompressed size of any one entry, as actually read.
    pub max_entry_bytes: u64,
    /// Uncompressed size of all entries together, as actually read.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// Generous for real exchanges, bounded for hostile ones. A usage bundle
    /// of a large site (tens of thousands of instances with a month of daily
    /// history, as pretty JSON) is tens of MiB and deflates about tenfold;
    /// an entitlement bundle is far smaller. A payload is split in a handful
    /// of files, so 64 entries is plenty. The expanded limits let honest
    /// JSON compress as well as it does while keeping the worst case (every
    /// entry a bomb) at 1 GiB of memory instead of whatever a zip declares.
    fn default() -> Self {
        Self {
            max_bundle_bytes: 256 << 20,
            max_entries: 64,
            max_entry_bytes: 512 << 20,
            max_total_bytes: 1 << 30,
        }
    }
}

/// A bundle whose structure, limits, signature and hashes are checked, but
/// not yet who signed it, whom it is for, or whether it is fresh.
#[derive(Debug, Clone)]
pub struct Opened {
    pub manifest: Manifest,
    /// The exact bytes the signature covers.
    pub manifest_bytes: Vec<u8>,
    /// From `signer.pem`: the signer certificate first, its CA last.
    pub signer_chain: Vec<X509>,
    /// Payload files by name (the three fixed entries are not in here).
    pub files: BTreeMap<String, Vec<u8>>,
    /// SHA-256 of the whole zip, lowercase hex.
    pub sha256: String,
}

/// The rule a bundle broke. Each is named in the refusal so an operator can
/// tell a wrong stick from a forged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    NotABundle,
    UnsafeName,
    TooLarge,
    MissingEntry,
    ExtraEntry,
    HashMismatch,
    BadManifest,
    BadSignature,
    UntrustedSigner,
    WrongRecipient,
    Expired,
    /// Sequence not greater than the last applied from that sender (a
    /// replayed or rolled-back bundle). Checked by the caller, which holds
    /// the sequence numbers; see `BundleError::replay`.
    Replay,
    /// A payload file the manifest lists is not what its reader expects
    /// (`Opened::json`).
    BadPayload,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NotABundle => "not a bundle",
            Rule::UnsafeName => "unsafe name",
            Rule::TooLarge => "too large",
            Rule::MissingEntry => "missing entry",
            Rule::ExtraEntry => "extra entry",
            Rule::HashMismatch => "hash mismatch",
            Rule::BadManifest => "bad manifest",
            Rule::BadSignature => "bad signature",
            Rule::UntrustedSigner => "untrusted signer",
            Rule::WrongRecipient => "wrong recipient",
            Rule::Expired => "expired",
            Rule::Replay => "replay",
            Rule::BadPayload => "bad payload",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{rule}: {detail}")]
pub struct BundleError {
    pub rule: Rule,
    pub detail: String,
}

impl BundleError {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
        }
    }

    /// The refusal for a sequence number at or below the last one applied.
    pub fn replay(from: &str, sequence: u64, last_applied: u64) -> Self {
        Self::new(
            Rule::Replay,
            format!(
                "sequence {sequence} from {from} is not greater than {last_applied}, the last \
                 applied (an old bundle imported again, or a rollback); nothing was changed"
            ),
        )
    }
}

fn parse_time(field: &str, text: &str) -> Result<i64, BundleError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| {
            BundleError::new(
                Rule::BadManifest,
                format!("{field} {text:?} is not an RFC 3339 time: {e}"),
            )
        })
}

fn format_time(field: &str, unix: i64) -> Result<String, BundleError> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| {
            BundleError::new(
                Rule::BadManifest,
                format!("{field} {unix} is out of range for a date"),
            )
        })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Builds and signs a bundle. `files`: (name, content) pairs, names must
/// pass the same safety rules `open` applies.
pub fn seal(
    header: Header,
    files: Vec<(String, Vec<u8>)>,
    signer: &BundleSigner,
) -> Result<Sealed, BundleError> {
    let mut payload = BTreeMap::new();
    let mut folded = std::collections::BTreeSet::new();
    for (name, content) in files {
        if let Some(why) = unsafe_name(&name) {
            return Err(BundleError::new(
                Rule::UnsafeName,
                format!("{name:?}: {why}"),
            ));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(BundleError::new(
                Rule::UnsafeName,
                format!("{name:?} is one of the bundle's own entries"),
            ));
        }
        if !folded.insert(name.to_lowercase()) {
            return Err(BundleError::new(
                Rule::UnsafeName,
                format!("{name:?}: duplicate name (names are compared ignoring case)"),
            ));
        }
        payload.insert(name, content);
    }
    check_sealable(&payload)?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        kind: header.kind,
        from: header.from,
        to: header.to,
        sequence: header.sequence,
        in_reply_to: header.in_reply_to,
        previous_sha256: header.previous_sha256,
        created_at: format_time("created_at", header.created_at)?,
        expires_at: format_time("expires_at", header.expires_at)?,
        files: payload
            .iter()
            .map(|(name, content)| (name.clone(), sha256_hex(content)))
            .collect(),
    };
    check_manifest(&manifest)?;
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::new(Rule::BadManifest, format!("cannot encode: {e}")))?;
    manifest_bytes.push(b'\n');
    let signature = signer.sign(&manifest_bytes).map_err(|e| {
        BundleError::new(Rule::BadSignature, format!("cannot sign the manifest: {e}"))
    })?;

    let entries = [
        (MANIFEST_FILE, manifest_bytes.as_slice()),
        (SIGNATURE_FILE, signature.as_slice()),
        (SIGNER_FILE, signer.chain_pem().as_bytes()),
    ]
    .into_iter()
    .chain(payload.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    let bytes = write_zip(entries, header.created_at)?;
    let limits = Limits::default();
    if bytes.len() as u64 > limits.max_bundle_bytes {
        return Err(BundleError::new(
            Rule::TooLarge,
            format!(
                "the bundle would be {} bytes; receivers refuse more than {}",
                bytes.len(),
                limits.max_bundle_bytes
            ),
        ));
    }
    Ok(Sealed {
        sha256: sha256_hex(&bytes),
        bytes,
        manifest,
    })
}

/// Refuses at the sender what every receiver would refuse (default
/// limits), so an export fails where it can be fixed.
fn check_sealable(payload: &BTreeMap<String, Vec<u8>>) -> Result<(), BundleError> {
    let limits = Limits::default();
    let too_large = |detail: String| BundleError::new(Rule::TooLarge, detail);
    if payload.len() + RESERVED.len() > limits.max_entries {
        return Err(too_large(format!(
            "{} payload files; a bundle holds at most {}",
            payload.len(),
            limits.max_entries - RESERVED.len()
        )));
    }
    let mut total: u64 = 0;
    for (name, content) in payload {
        let size = content.len() as u64;
        if size > limits.max_entry_bytes {
            return Err(too_large(format!(
                "{name:?} is {size} bytes; receivers refuse entries over {}",
                limits.max_entry_bytes
            )));
        }
        total = total.saturating_add(size);
    }
    if total > limits.max_total_bytes {
        return Err(too_large(format!(
            "the payload is {total} bytes; receivers refuse more than {} in total",
            limits.max_total_bytes
        )));
    }
    Ok(())
}

fn write_zip<'a>(
    entries: impl Iterator<Item = (&'a str, &'a [u8])>,
    created_at: i64,
) -> Result<Vec<u8>, BundleError> {
    use zip::write::SimpleFileOptions;
    let failed = |e: &dyn std::fmt::Display| {
        BundleError::new(Rule::NotABundle, format!("cannot write the zip: {e}"))
    };
    // Entry times say when the bundle was made, from the injected clock,
    // not when the zip library ran.
    let when = OffsetDateTime::from_unix_timestamp(created_at)
        .ok()
        .and_then(|t| {
            zip::DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            )
            .ok()
        })
        .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644)
        .last_modified_time(when);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        zip.start_file(name, options).map_err(|e| failed(&e))?;
        zip.write_all(content).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}

/// What `seal` guarantees and `open` requires of a manifest beyond its JSON
/// shape.
fn check_manifest(manifest: &Manifest) -> Result<(), BundleError> {
    let bad = |detail: String| BundleError::new(Rule::BadManifest, detail);
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format {:?} is unknown; this version reads {FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.from.trim().is_empty() || manifest.to.trim().is_empty() {
        return Err(bad(
            "from and to must name the sender and the receiver".into()
        ));
    }
    // These are printed by `bundle show` before anyone trusts the signer:
    // no terminal control sequences.
    for (field, value) in [
        ("from", Some(&manifest.from)),
        ("to", Some(&manifest.to)),
        ("in_reply_to", manifest.in_reply_to.as_ref()),
    ] {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(bad(format!("{field} contains a control character")));
        }
    }
    if let Some(previous) = &manifest.previous_sha256 {
        if !is_sha256_hex(previous) {
            return Err(bad(format!(
                "previous_sha256 {previous:?} is not a lowercase hex SHA-256"
            )));
        }
    }
    let created = manifest.created_unix()?;
    let expires = manifest.expires_unix()?;
    if expires <= created {
        return Err(bad(format!(
            "expires_at {} is not after created_at {}",
            manifest.expires_at, manifest.created_at
        )));
    }
    for (name, hash) in &manifest.files {
        if let Some(why) = unsafe_name(name) {
            return Err(BundleError::new(
                Rule::UnsafeName,
                format!("manifest lists {name:?}: {why}"),
            ));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(bad(format!(
                "lists {name:?}, one of the bundle's own entries, as a payload file"
            )));
        }
        if !is_sha256_hex(hash) {
            return Err(bad(format!(
                "hash of {name:?} is not a lowercase hex SHA-256: {hash:?}"
            )));
        }
    }
    Ok(())
}

/// Reads a bundle from a file (an import folder, a USB stick) without ever
/// holding more than `limits.max_bundle_bytes + 1` bytes: a huge file is
/// refused as too large, not read into memory first.
pub fn read_file(path: &std::path::Path, limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let file = std::fs::File::open(path).map_err(|e| {
        BundleError::new(
            Rule::NotABundle,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    read_limited(file, limits).map_err(|e| BundleError {
        detail: format!("{}: {}", path.display(), e.detail),
        ..e
    })
}

/// Reads a bundle from any stream (a request body, a file), refusing it as
/// soon as it exceeds `limits.max_bundle_bytes`.
pub fn read_limited(reader: impl Read, limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let mut bytes = Vec::new();
    reader
        .take(limits.max_bundle_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| BundleError::new(Rule::NotABundle, format!("read failed: {e}")))?;
    if bytes.len() as u64 > limits.max_bundle_bytes {
        return Err(BundleError::new(
            Rule::TooLarge,
            format!(
                "more than {} bytes, the limit for a bundle",
                limits.max_bundle_bytes
            ),
        ));
    }
    Ok(bytes)
}

/// Structure, names, limits, hashes and the manifest signature by
/// signer.pem's leaf key. Pure: bytes in, result out. No peer trust.
pub fn open(bytes: &[u8], limits: &Limits) -> Result<Opened, BundleError> {
    if bytes.len() as u64 > limits.max_bundle_bytes {
        return Err(BundleError::new(
            Rule::TooLarge,
            format!(
                "the file is {} bytes, more than the limit of {}",
                bytes.len(),
                limits.max_bundle_bytes
            ),
        ));
    }
    let mut entries = read_entries(bytes, limits)?;
    let take = |entries: &mut BTreeMap<String, Vec<u8>>, name: &str| {
        entries
            .remove(name)
            .ok_or_else(|| BundleError::new(Rule::MissingEntry, format!("no {name} in the bundle")))
    };
    let manifest_bytes = take(&mut entries, MANIFEST_FILE)?;
    let signature = take(&mut entries, SIGNATURE_FILE)?;
    let signer_pem = take(&mut entries, SIGNER_FILE)?;

    // Authenticate before reading anything the manifest says.
    let signer_chain = X509::stack_from_pem(&signer_pem)
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| {
            BundleError::new(
                Rule::BadSignature,
                format!("{SIGNER_FILE} holds no PEM certificate"),
            )
        })?;
    verify_signature(&signer_chain[0], &manifest_bytes, &signature)?;

    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::new(Rule::BadManifest, format!("{MANIFEST_FILE}: {e}")))?;
    check_manifest(&manifest)?;

    if let Some(extra) = entries.keys().find(|n| !manifest.files.contains_key(*n)) {
        return Err(BundleError::new(
            Rule::ExtraEntry,
            format!("{extra:?} is in the bundle but not in the manifest"),
        ));
    }
    for (name, expected) in &manifest.files {
        let content = entries.get(name).ok_or_else(|| {
            BundleError::new(
                Rule::MissingEntry,
                format!("the manifest lists {name:?} but the bundle does not hold it"),
            )
        })?;
        let actual = sha256_hex(content);
        if &actual != expected {
            return Err(BundleError::new(
                Rule::HashMismatch,
                format!("{name:?} has SHA-256 {actual}, the manifest says {expected}"),
            ));
        }
    }
    Ok(Opened {
        manifest,
        manifest_bytes,
        signer_chain,
        files: entries,
        sha256: sha256_hex(bytes),
    })
}

/// Every entry's content, read through caps: the sizes a zip declares are
/// never trusted, only the bytes that come out of the decompressor.
fn read_entries(bytes: &[u8], limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let listed = central::entries(bytes, limits.max_entries)?;
    let damaged =
        |e: &dyn std::fmt::Display| BundleError::new(Rule::NotABundle, format!("damaged zip: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| damaged(&e))?;
    if archive.len() != listed.len() {
        return Err(damaged(
            &"the zip reader and the central directory disagree",
        ));
    }
    let mut out = BTreeMap::new();
    let mut total: u64 = 0;
    for (index, entry) in listed.into_iter().enumerate() {
        let mut file = archive.by_index(index).map_err(|e| damaged(&e))?;
        if file.name_raw() != entry.raw_name.as_slice() {
            return Err(damaged(
                &"the zip reader and the central directory disagree",
            ));
        }
        let room = limits
            .max_entry_bytes
            .min(limits.max_total_bytes.saturating_sub(total));
        let mut content = Vec::new();
        (&mut file)
            .take(room.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|e| damaged(&format_args!("{:?}: {e}", entry.name)))?;
        let read = content.len() as u64;
        if read > limits.max_entry_bytes {
            return Err(BundleError::new(
                Rule::TooLarge,
                format!(
                    "{:?} expands to more than {} bytes (a zip bomb, or not a bundle)",
                    entry.name, limits.max_entry_bytes
                ),
            ));
        }
        if read > room {
            return Err(BundleError::new(
                Rule::TooLarge,
                format!(
                    "the entries expand to more than {} bytes in total",
                    limits.max_total_bytes
                ),
            ));
        }
        // Checked only after reading: a header that lies is a damaged (or
        // crafted) zip that other unzip tools would treat differently.
        if read != file.size() {
            return Err(damaged(&format_args!(
                "{:?} declares {} bytes but holds {read}",
                entry.name,
                file.size()
            )));
        }
        total += read;
        out.insert(entry.name, content);
    }
    Ok(out)
}

fn verify_signature(leaf: &X509, message: &[u8], signature: &[u8]) -> Result<(), BundleError> {
    let bad = |detail: String| BundleError::new(Rule::BadSignature, detail);
    let key = leaf
        .public_key()
        .map_err(|e| bad(format!("the signer certificate's key is unreadable: {e}")))?;
    let is_p256 = key
        .ec_key()
        .ok()
        .and_then(|ec| ec.group().curve_name())
        .is_some_and(|nid| nid == openssl::nid::Nid::X9_62_PRIME256V1);
    if !is_p256 {
        return Err(bad("the signer key is not ECDSA P-256".into()));
    }
    let valid = openssl::sign::Verifier::new(MessageDigest::sha256(), &key)
        .and_then(|mut v| v.verify_oneshot(signature, message))
        .unwrap_or(false);
    if valid {
        Ok(())
    } else {
        Err(bad(format!(
            "{SIGNATURE_FILE} is not a signature of {MANIFEST_FILE} by the key of {SIGNER_FILE} \
             (the manifest was changed, or signed by someone else)"
        )))
    }
}

impl Opened {
    /// The signer chain's last certificate is the CA whose SHA-256 (of DER,
    /// lowercase hex) is `pinned_ca_sha256`; the leaf is signed by it and
    /// valid at `now`.
    pub fn check_signer(&self, pinned_ca_sha256: &str, now: i64) -> Result<(), BundleError> {
        let untrusted = |detail: String| BundleError::new(Rule::UntrustedSigner, detail);
        let actual = self.signer_ca_sha256()?;
        // Accept the pin as `openssl x509 -fingerprint` prints it, too.
        let pinned: String = pinned_ca_sha256
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if actual != pinned {
            return Err(untrusted(format!(
                "{SIGNER_FILE} chains to the CA with SHA-256 {actual}, not the pinned peer CA {pinned}"
            )));
        }
        let [leaf, ca] = self.signer_chain.as_slice() else {
            return Err(untrusted(format!(
                "{SIGNER_FILE} holds {} certificates; it must hold the signer certificate then \
                 its CA",
                self.signer_chain.len()
            )));
        };
        let usage = leaf.key_usage().unwrap_or(X509KeyUsage::empty());
        if !usage.contains(X509KeyUsage::DIGITAL_SIGNATURE)
            || usage.contains(X509KeyUsage::KEY_CERT_SIGN)
        {
            return Err(untrusted(
                "the signer certificate is not a signing-only certificate (keyUsage \
                 digitalSignature, not keyCertSign)"
                    .into(),
            ));
        }
        let verified = (|| -> Result<Result<(), String>, openssl::error::ErrorStack> {
            let mut store = X509StoreBuilder::new()?;
            store.add_cert(ca.clone())?;
            let mut param = X509VerifyParam::new()?;
            // The pin, not self-signature, is what makes this CA trusted.
            param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
            param.set_time(now as _);
            store.set_param(&param)?;
            let store = store.build();
            let untrusted_chain = openssl::stack::Stack::new()?;
            let mut ctx = X509StoreContext::new()?;
            ctx.init(&store, leaf, &untrusted_chain, |c| {
                Ok(if c.verify_cert()? {
                    Ok(())
                } else {
                    Err(c.error().error_string().to_string())
                })
            })
        })()
        .map_err(|e| untrusted(format!("cannot check the signer certificate: {e}")))?;
        verified.map_err(|why| {
            untrusted(format!(
                "the signer certificate does not verify against the pinned CA at {}: {why}",
                crate::clock::rfc3339(now)
            ))
        })
    }

    /// `to` is `me` and `expires_at` is after `now` (and `created_at` not
    /// more than a day ahead of `now`).
    pub fn check_addressed(&self, me: &str, now: i64) -> Result<(), BundleError> {
        if self.manifest.to != me {
            return Err(BundleError::new(
                Rule::WrongRecipient,
                format!(
                    "the bundle is addressed to {:?}, this is {me:?}",
                    self.manifest.to
                ),
            ));
        }
        let expires = self.manifest.expires_unix()?;
        if expires <= now {
            return Err(BundleError::new(
                Rule::Expired,
                format!(
                    "the bundle expired at {} (now {}); ask {:?} for a fresh one",
                    self.manifest.expires_at,
                    crate::clock::rfc3339(now),
                    self.manifest.from
                ),
            ));
        }
        let created = self.manifest.created_unix()?;
        if created > now.saturating_add(MAX_CLOCK_AHEAD_SECS) {
            return Err(BundleError::new(
                Rule::Expired,
                format!(
                    "the bundle says it was created at {}, more than a day after now ({}); \
                     check the clock here and at {:?}",
                    self.manifest.created_at,
                    crate::clock::rfc3339(now),
                    self.manifest.from
                ),
            ));
        }
        Ok(())
    }

    /// SHA-256 hex of the signer chain's CA certificate (what the cloud pins
    /// for a new satellite).
    pub fn signer_ca_sha256(&self) -> Result<String, BundleError> {
        let ca = self.signer_chain.last().ok_or_else(|| {
            BundleError::new(Rule::UntrustedSigner, format!("{SIGNER_FILE} is empty"))
        })?;
        let der = ca.to_der().map_err(|e| {
            BundleError::new(
                Rule::UntrustedSigner,
                format!("unreadable CA certificate: {e}"),
            )
        })?;
        Ok(sha256_hex(&der))
    }

    /// A payload file as JSON; the error names the file.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, BundleError> {
        let content = self.files.get(name).ok_or_else(|| {
            BundleError::new(
                Rule::MissingEntry,
                format!("a {} bundle must hold {name:?}", self.manifest.kind),
            )
        })?;
        serde_json::from_slice(content)
            .map_err(|e| BundleError::new(Rule::BadPayload, format!("{name}: {e}")))
    }
}

#[cfg(test)]
mod tests;
