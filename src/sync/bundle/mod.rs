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
mod checks;
mod error;
mod manifest;
mod names;
mod open;
mod seal;
mod shape;

pub use checks::{PeerPins, SignerTrust, TrustedSigner};
pub use error::{BundleError, Rule};
pub use manifest::sha256_hex;
pub use names::unsafe_name;
pub use open::{open, open_file, read_file, read_limited};
pub use seal::seal;
pub use shape::Shape;

use manifest::parse_time;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
///
/// The payload stays compressed in the bundle's bytes: `open` only hashed
/// it, as a stream. A file is inflated when it is read (`file`, `json`),
/// which callers do after trusting the signer, so a hostile bundle costs
/// its own size and a few buffers, never what its entries expand to.
#[derive(Debug)]
pub struct Opened {
    pub manifest: Manifest,
    /// The exact bytes the signature covers.
    pub manifest_bytes: Vec<u8>,
    /// From `signer.pem`: the signer certificate first, its CA last.
    pub signer_chain: Vec<X509>,
    /// SHA-256 of the whole zip, lowercase hex.
    pub sha256: String,
    /// The bundle itself, in memory or in its file.
    source: open::Source,
    /// Payload file name -> (index in the zip, uncompressed size).
    payload: BTreeMap<String, (usize, u64)>,
}

#[cfg(test)]
mod tests;
