//! Building and signing a bundle.

use super::manifest::{check_manifest, format_time, sha256_hex};
use super::names::unsafe_name;
use super::{BundleError, Header, Limits, Manifest, Rule, Sealed, FORMAT, RESERVED};
use super::{MANIFEST_FILE, SIGNATURE_FILE, SIGNER_FILE};
use crate::pki::signer::{BundleSigner, ROLLOVER_CERT_FILE, ROLLOVER_SIGNATURE_FILE};
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use time::OffsetDateTime;

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
    // A rotated signer carries the proof that its predecessor vouched for
    // it, so a peer that pinned the predecessor can move its pin.
    if let Some(rollover) = signer.rollover() {
        for (name, content) in [
            (ROLLOVER_CERT_FILE, rollover.previous_chain_pem.as_bytes()),
            (ROLLOVER_SIGNATURE_FILE, rollover.signature.as_slice()),
        ] {
            if payload.insert(name.to_string(), content.to_vec()).is_some() {
                return Err(BundleError::new(
                    Rule::UnsafeName,
                    format!("{name:?} is the signer rollover proof's own entry"),
                ));
            }
        }
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
        // The fastest level: pretty JSON still shrinks about tenfold, and
        // a million product instances seal in seconds instead of a minute.
        .compression_level(Some(1))
        .unix_permissions(0o644)
        .last_modified_time(when);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        zip.start_file(name, options).map_err(|e| failed(&e))?;
        zip.write_all(content).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}
