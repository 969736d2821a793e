//! Our own walk of the zip central directory, before the zip crate sees the
//! archive.
//!
//! The zip crate keeps one entry per name (a duplicate silently replaces the
//! first) and decodes names its own way; a verifier must see what other
//! unzip tools will see. So the raw directory is read here: entry count,
//! names as bytes, duplicates, entry types, encryption and compression
//! method. The caller then checks that the crate's view matches this one.

use super::names::unsafe_name;
use super::{BundleError, Rule};
use std::collections::BTreeSet;

const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const MAX_COMMENT: usize = 0xffff;

const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
const FLAG_ENCRYPTED: u16 = 1;
const HOST_UNIX: u8 = 3;
const UNIX_TYPE_MASK: u32 = 0o170_000;
const UNIX_REGULAR: u32 = 0o100_000;
const UNIX_DIRECTORY: u32 = 0o040_000;
const UNIX_SYMLINK: u32 = 0o120_000;
const DOS_DIRECTORY: u32 = 0x10;

/// One entry as the central directory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralEntry {
    pub name: String,
    pub raw_name: Vec<u8>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn not_a_bundle(detail: impl Into<String>) -> BundleError {
    BundleError::new(Rule::NotABundle, detail)
}

/// The end-of-central-directory record: the last signature whose comment
/// runs exactly to the end of the file.
fn find_eocd(bytes: &[u8]) -> Option<usize> {
    let earliest = bytes.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    let last = bytes.len().checked_sub(EOCD_LEN)?;
    (earliest..=last).rev().find(|&at| {
        u32_at(bytes, at) == Some(EOCD_SIGNATURE)
            && u16_at(bytes, at + 20).map(usize::from) == Some(bytes.len() - at - EOCD_LEN)
    })
}

/// How much of a bundle's end is read to find its central directory: the
/// end record with the longest comment, and a directory of 64 entries with
/// far more room than real names need.
pub const TAIL_BYTES: u64 = (EOCD_LEN + MAX_COMMENT) as u64 + (1 << 20);

/// Lists the entries, refusing what a bundle may never contain. `bytes` is
/// the end of the file from offset `start` (the whole file when `start` is
/// 0): the central directory must lie in it.
pub fn entries(
    bytes: &[u8],
    start: u64,
    max_entries: usize,
) -> Result<Vec<CentralEntry>, BundleError> {
    let eocd = find_eocd(bytes).ok_or_else(|| {
        not_a_bundle("no zip end-of-central-directory record (not a zip file, or truncated)")
    })?;
    let field = |at: usize| u16_at(bytes, eocd + at).unwrap_or(u16::MAX);
    let (disk, cd_disk, on_disk, total) = (field(4), field(6), field(8), field(10));
    let cd_size = u32_at(bytes, eocd + 12).unwrap_or(u32::MAX);
    let cd_offset = u32_at(bytes, eocd + 16).unwrap_or(u32::MAX);
    if total == u16::MAX || cd_size == u32::MAX || cd_offset == u32::MAX {
        return Err(not_a_bundle(
            "zip64 archive; bundles are far below the zip64 sizes and never use it",
        ));
    }
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(not_a_bundle("multi-disk (split) zip archive"));
    }
    let total = usize::from(total);
    if total > max_entries {
        return Err(BundleError::new(
            Rule::TooLarge,
            format!("{total} entries, more than the limit of {max_entries}"),
        ));
    }
    let cd_start = u64::from(cd_offset)
        .checked_sub(start)
        .and_then(|at| usize::try_from(at).ok())
        .ok_or_else(|| {
            not_a_bundle("the central directory is larger than a bundle's ever is (or not where the end record says)")
        })?;
    let cd_end = cd_start.checked_add(cd_size as usize);
    if cd_end != Some(eocd) {
        return Err(not_a_bundle(
            "the central directory does not end where the end record says (truncated, \
             or data hidden before or after it)",
        ));
    }

    let mut out = Vec::with_capacity(total);
    let mut seen = BTreeSet::new();
    let mut at = cd_start;
    for index in 0..total {
        let truncated = || not_a_bundle(format!("central directory entry {index} is truncated"));
        if u32_at(bytes, at) != Some(CENTRAL_SIGNATURE) || at + CENTRAL_LEN > eocd {
            return Err(truncated());
        }
        let made_by_host = bytes.get(at + 5).copied().unwrap_or(0);
        let flags = u16_at(bytes, at + 8).ok_or_else(truncated)?;
        let method = u16_at(bytes, at + 10).ok_or_else(truncated)?;
        let name_len = usize::from(u16_at(bytes, at + 28).ok_or_else(truncated)?);
        let extra_len = usize::from(u16_at(bytes, at + 30).ok_or_else(truncated)?);
        let comment_len = usize::from(u16_at(bytes, at + 32).ok_or_else(truncated)?);
        let external = u32_at(bytes, at + 38).ok_or_else(truncated)?;
        let name_start = at + CENTRAL_LEN;
        let next = name_start + name_len + extra_len + comment_len;
        if next > eocd {
            return Err(truncated());
        }
        let raw_name = bytes[name_start..name_start + name_len].to_vec();
        let name = String::from_utf8(raw_name.clone()).map_err(|_| {
            BundleError::new(
                Rule::UnsafeName,
                format!(
                    "entry {index}: name is not UTF-8 ({})",
                    String::from_utf8_lossy(&raw_name)
                ),
            )
        })?;
        let unsafe_entry =
            |why: &str| BundleError::new(Rule::UnsafeName, format!("{name:?}: {why}"));
        if let Some(why) = unsafe_name(&name) {
            return Err(unsafe_entry(why));
        }
        let unix_type = (external >> 16) & UNIX_TYPE_MASK;
        if made_by_host == HOST_UNIX && unix_type == UNIX_SYMLINK {
            return Err(unsafe_entry("symbolic link"));
        }
        if (made_by_host == HOST_UNIX && unix_type == UNIX_DIRECTORY)
            || external & DOS_DIRECTORY != 0
        {
            return Err(unsafe_entry("directory entry"));
        }
        if made_by_host == HOST_UNIX && unix_type != 0 && unix_type != UNIX_REGULAR {
            return Err(unsafe_entry("not a regular file"));
        }
        // Case-blind: names differing only in case collide when an operator
        // unpacks the bundle on Windows or macOS.
        if !seen.insert(name.to_lowercase()) {
            return Err(unsafe_entry("duplicate name"));
        }
        if flags & FLAG_ENCRYPTED != 0 {
            return Err(not_a_bundle(format!("{name:?} is encrypted")));
        }
        if method != METHOD_STORED && method != METHOD_DEFLATED {
            return Err(not_a_bundle(format!(
                "{name:?} uses compression method {method}; bundles use stored or deflate only"
            )));
        }
        out.push(CentralEntry { name, raw_name });
        at = next;
    }
    if at != eocd {
        return Err(not_a_bundle(
            "the central directory holds more than the entries the end record counts",
        ));
    }
    Ok(out)
}
