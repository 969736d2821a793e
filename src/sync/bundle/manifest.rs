//! The manifest's rules beyond its JSON shape, and its time and hash text.

use super::names::unsafe_name;
use super::{BundleError, Manifest, Rule, FORMAT, RESERVED};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(super) fn parse_time(field: &str, text: &str) -> Result<i64, BundleError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| {
            BundleError::new(
                Rule::BadManifest,
                format!("{field} {text:?} is not an RFC 3339 time: {e}"),
            )
        })
}

pub(super) fn format_time(field: &str, unix: i64) -> Result<String, BundleError> {
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

pub use crate::pki::sha256_hex;

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What `seal` guarantees and `open` requires of a manifest beyond its JSON
/// shape.
pub(super) fn check_manifest(manifest: &Manifest) -> Result<(), BundleError> {
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
