//! Reading a bundle: bounded, structure and names first, then the
//! signature, then the manifest and the hashes it signs, as a stream.

use super::manifest::check_manifest;
use super::{central, BundleError, Limits, Manifest, Opened, Rule, RESERVED};
use super::{MANIFEST_FILE, SIGNATURE_FILE, SIGNER_FILE};
use crate::pki::Sha256Writer;
use openssl::hash::MessageDigest;
use openssl::x509::X509;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

/// Opens a bundle in a file (an import folder, a USB stick) without ever
/// holding it in memory: its end is read to find the entries, its entries
/// are inflated through caps as they are checked, and its hash is taken as
/// a stream. A file over `limits.max_bundle_bytes` is refused unread.
pub fn open_file(path: &std::path::Path, limits: &Limits) -> Result<Opened, BundleError> {
    let named = |e: BundleError| BundleError {
        detail: format!("{}: {}", path.display(), e.detail),
        ..e
    };
    let file = std::fs::File::open(path).map_err(|e| {
        BundleError::new(
            Rule::NotABundle,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    open_source(Source::File(file), limits).map_err(named)
}

/// Reads a bundle file whole (one to send), refusing it past
/// `limits.max_bundle_bytes` without reading more.
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

/// The most any of the three fixed entries may expand to: a manifest of
/// 64 files and a two-certificate chain are a few kilobytes.
const MAX_FIXED_ENTRY_BYTES: u64 = 1 << 20;

/// Payload files up to this size are inflated whole and parsed from
/// memory (fast); larger ones are parsed from the decompressor as a
/// stream, so memory holds what they describe, not their text too.
const PARSE_IN_MEMORY_BYTES: u64 = 16 << 20;

/// Structure, names, limits, hashes and the manifest signature by
/// signer.pem's leaf key. Pure: bytes in, result out. No peer trust. The
/// payload is hashed as it inflates and not kept (see `Opened`).
pub fn open(bytes: Vec<u8>, limits: &Limits) -> Result<Opened, BundleError> {
    open_source(Source::Memory(bytes), limits)
}

/// Where a bundle's bytes are: received over the network, or in a file
/// that is read piece by piece and never whole.
#[derive(Debug)]
pub(super) enum Source {
    Memory(Vec<u8>),
    File(std::fs::File),
}

/// A reader over a `Source` that the zip reader can seek in.
enum SourceReader<'a> {
    Memory(Cursor<&'a [u8]>),
    File(&'a std::fs::File),
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceReader::Memory(c) => c.read(buf),
            SourceReader::File(f) => f.read(buf),
        }
    }
}

impl std::io::Seek for SourceReader<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match self {
            SourceReader::Memory(c) => c.seek(pos),
            SourceReader::File(f) => f.seek(pos),
        }
    }
}

impl Source {
    fn reader(&self) -> SourceReader<'_> {
        match self {
            Source::Memory(bytes) => SourceReader::Memory(Cursor::new(bytes.as_slice())),
            Source::File(file) => SourceReader::File(file),
        }
    }

    fn len(&self) -> Result<u64, BundleError> {
        match self {
            Source::Memory(bytes) => Ok(bytes.len() as u64),
            Source::File(file) => file
                .metadata()
                .map(|m| m.len())
                .map_err(|e| BundleError::new(Rule::NotABundle, format!("read failed: {e}"))),
        }
    }

    /// The last `TAIL_BYTES` (or all) and where they start.
    fn tail(&self, len: u64) -> Result<(Vec<u8>, u64), BundleError> {
        use std::io::Seek;
        let start = len.saturating_sub(central::TAIL_BYTES);
        let mut reader = self.reader();
        let mut tail = Vec::new();
        reader
            .seek(std::io::SeekFrom::Start(start))
            .and_then(|_| reader.read_to_end(&mut tail))
            .map_err(|e| BundleError::new(Rule::NotABundle, format!("read failed: {e}")))?;
        Ok((tail, start))
    }

    /// SHA-256 of all of it, lowercase hex, read as a stream.
    fn sha256(&self) -> Result<String, BundleError> {
        use std::io::Seek;
        let mut reader = self.reader();
        let mut hasher = Sha256Writer::default();
        reader
            .seek(std::io::SeekFrom::Start(0))
            .and_then(|_| std::io::copy(&mut reader, &mut hasher))
            .map_err(|e| BundleError::new(Rule::NotABundle, format!("read failed: {e}")))?;
        Ok(hasher.finish_hex())
    }
}

fn open_source(source: Source, limits: &Limits) -> Result<Opened, BundleError> {
    let len = source.len()?;
    if len > limits.max_bundle_bytes {
        return Err(BundleError::new(
            Rule::TooLarge,
            format!(
                "the file is {len} bytes, more than the limit of {}",
                limits.max_bundle_bytes
            ),
        ));
    }
    let (tail, tail_start) = source.tail(len)?;
    let listed = central::entries(&tail, tail_start, limits.max_entries)?;
    drop(tail);
    let (manifest, manifest_bytes, signer_chain, payload) = {
        let mut archive = Archive::new(source.reader(), &listed)?;
        let fixed = Limits {
            max_entry_bytes: MAX_FIXED_ENTRY_BYTES,
            ..limits.clone()
        };
        let mut total: u64 = 0;
        // The three fixed entries first, each bounded: nothing the manifest
        // has not signed is inflated.
        let mut take = |name: &str, archive: &mut Archive<'_>| {
            let mut content = Vec::new();
            archive
                .stream(name, &fixed, &mut total, &mut content)?
                .ok_or_else(|| {
                    BundleError::new(Rule::MissingEntry, format!("no {name} in the bundle"))
                })?;
            Ok::<_, BundleError>(content)
        };
        let manifest_bytes = take(MANIFEST_FILE, &mut archive)?;
        let signature = take(SIGNATURE_FILE, &mut archive)?;
        let signer_pem = take(SIGNER_FILE, &mut archive)?;

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

        // Refused from the central directory alone: an entry the manifest
        // does not list is never inflated (a bomb there costs nothing).
        if let Some(extra) = listed
            .iter()
            .map(|e| &e.name)
            .find(|n| !manifest.files.contains_key(*n) && !RESERVED.contains(&n.as_str()))
        {
            return Err(BundleError::new(
                Rule::ExtraEntry,
                format!("{extra:?} is in the bundle but not in the manifest"),
            ));
        }
        let mut payload = BTreeMap::new();
        for (name, expected) in &manifest.files {
            let mut hasher = Sha256Writer::default();
            let (index, size) = archive
                .stream(name, limits, &mut total, &mut hasher)?
                .ok_or_else(|| {
                    BundleError::new(
                        Rule::MissingEntry,
                        format!("the manifest lists {name:?} but the bundle does not hold it"),
                    )
                })?;
            let actual = hasher.finish_hex();
            if &actual != expected {
                return Err(BundleError::new(
                    Rule::HashMismatch,
                    format!("{name:?} has SHA-256 {actual}, the manifest says {expected}"),
                ));
            }
            payload.insert(name.clone(), (index, size));
        }
        (manifest, manifest_bytes, signer_chain, payload)
    };
    Ok(Opened {
        manifest,
        manifest_bytes,
        signer_chain,
        sha256: source.sha256()?,
        source,
        payload,
    })
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Opened {
    /// The payload files' names, in order.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.payload.keys().map(String::as_str)
    }

    /// A payload file's uncompressed size, if the bundle holds it.
    pub fn file_size(&self, name: &str) -> Option<u64> {
        self.payload.get(name).map(|(_, size)| *size)
    }

    /// Runs `read` over a payload file's content as it inflates, hashing
    /// it again: a file in an import folder can be rewritten between the
    /// check in `open` and this read, and what was read must be what the
    /// manifest signed.
    fn with_reader<T>(
        &self,
        name: &str,
        read: impl FnOnce(&mut dyn Read) -> Result<T, BundleError>,
    ) -> Result<Option<T>, BundleError> {
        let (Some(&(index, size)), Some(expected)) =
            (self.payload.get(name), self.manifest.files.get(name))
        else {
            return Ok(None);
        };
        let mut zip = zip::ZipArchive::new(self.source.reader()).map_err(|e| damaged(&e))?;
        let file = zip.by_index(index).map_err(|e| damaged(&e))?;
        let mut hashed = HashingReader {
            inner: file.take(size.saturating_add(1)),
            hasher: Sha256Writer::default(),
        };
        let value = read(&mut hashed);
        // What the reader left unread counts too.
        std::io::copy(&mut hashed, &mut std::io::sink())
            .map_err(|e| damaged(&format_args!("{name:?}: {e}")))?;
        let actual = hashed.hasher.finish_hex();
        if &actual != expected {
            return Err(BundleError::new(
                Rule::HashMismatch,
                format!("{name:?} changed after it was checked (its SHA-256 is now {actual})"),
            ));
        }
        value.map(Some)
    }

    /// A payload file's content (already checked against its hash by `open`).
    pub fn file(&self, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        let size = self.file_size(name).unwrap_or(0);
        self.with_reader(name, |reader| {
            let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            reader
                .read_to_end(&mut content)
                .map_err(|e| damaged(&format_args!("{name:?}: {e}")))?;
            Ok(content)
        })
    }

    /// A payload file as JSON; the error names the file.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, BundleError> {
        let bad = |e: serde_json::Error| BundleError::new(Rule::BadPayload, format!("{name}: {e}"));
        let parsed = if self.file_size(name).unwrap_or(0) <= PARSE_IN_MEMORY_BYTES {
            self.file(name)?
                .map(|content| serde_json::from_slice(&content).map_err(bad))
                .transpose()?
        } else {
            self.with_reader(name, |reader| {
                serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader))
                    .map_err(bad)
            })?
        };
        parsed.ok_or_else(|| {
            BundleError::new(
                Rule::MissingEntry,
                format!("a {} bundle must hold {name:?}", self.manifest.kind),
            )
        })
    }

    /// Calls `f` with each element of a payload file that is a JSON list,
    /// as it is parsed: one element in memory at a time. The list's length.
    /// An error from `f` stops the parse and is returned as it is.
    pub fn each<T, E>(&self, name: &str, mut f: impl FnMut(T) -> Result<(), E>) -> Result<usize, E>
    where
        T: DeserializeOwned,
        E: From<BundleError>,
    {
        let mut failed: Option<E> = None;
        let bad = |e: serde_json::Error| BundleError::new(Rule::BadPayload, format!("{name}: {e}"));
        let mut seed = Elements {
            each: &mut |item: T| {
                f(item).map_err(|e| {
                    failed = Some(e);
                    serde::de::Error::custom("stopped")
                })
            },
            count: 0,
            _item: std::marker::PhantomData,
        };
        let parsed = if self.file_size(name).unwrap_or(0) <= PARSE_IN_MEMORY_BYTES {
            match self.file(name) {
                Ok(Some(content)) => {
                    let mut de = serde_json::Deserializer::from_slice(&content);
                    Some(
                        serde::de::DeserializeSeed::deserialize(&mut seed, &mut de)
                            .and_then(|()| de.end())
                            .map_err(bad),
                    )
                }
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        } else {
            match self.with_reader(name, |reader| {
                let reader = std::io::BufReader::with_capacity(64 * 1024, reader);
                let mut de = serde_json::Deserializer::from_reader(reader);
                serde::de::DeserializeSeed::deserialize(&mut seed, &mut de)
                    .and_then(|()| de.end())
                    .map_err(bad)
            }) {
                Ok(Some(())) => Some(Ok(())),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        };
        let count = seed.count;
        match parsed {
            None => Err(BundleError::new(
                Rule::MissingEntry,
                format!("a {} bundle must hold {name:?}", self.manifest.kind),
            )
            .into()),
            Some(Ok(())) => Ok(count),
            Some(Err(e)) => Err(failed.take().unwrap_or_else(|| e.into())),
        }
    }

    /// Every payload file, inflated (tests compare whole bundles).
    #[cfg(test)]
    pub(crate) fn all_files(&self) -> BTreeMap<String, Vec<u8>> {
        self.file_names()
            .map(|n| {
                (
                    n.to_string(),
                    self.file(n).ok().flatten().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The zip, with the central directory as we read it: entries are
/// inflated one by one, by name, through caps. The sizes a zip declares
/// are never trusted, only the bytes that come out of the decompressor.
struct Archive<'a> {
    zip: zip::ZipArchive<SourceReader<'a>>,
    index: BTreeMap<&'a str, (usize, &'a [u8])>,
}

fn damaged(e: &dyn std::fmt::Display) -> BundleError {
    BundleError::new(Rule::NotABundle, format!("damaged zip: {e}"))
}

impl<'a> Archive<'a> {
    fn new(
        reader: SourceReader<'a>,
        listed: &'a [central::CentralEntry],
    ) -> Result<Self, BundleError> {
        let zip = zip::ZipArchive::new(reader).map_err(|e| damaged(&e))?;
        if zip.len() != listed.len() {
            return Err(damaged(
                &"the zip reader and the central directory disagree",
            ));
        }
        let index = listed
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.as_str(), (i, e.raw_name.as_slice())))
            .collect();
        Ok(Self { zip, index })
    }

    /// Inflates entry `name` into `out`, refusing at the first byte over
    /// the limits (counted in `total`); its index and size, or None if
    /// there is no such entry.
    fn stream(
        &mut self,
        name: &str,
        limits: &Limits,
        total: &mut u64,
        out: &mut impl Write,
    ) -> Result<Option<(usize, u64)>, BundleError> {
        let Some(&(index, raw_name)) = self.index.get(name) else {
            return Ok(None);
        };
        let mut file = self.zip.by_index(index).map_err(|e| damaged(&e))?;
        if file.name_raw() != raw_name {
            return Err(damaged(
                &"the zip reader and the central directory disagree",
            ));
        }
        let room = limits
            .max_entry_bytes
            .min(limits.max_total_bytes.saturating_sub(*total));
        let read = std::io::copy(&mut (&mut file).take(room.saturating_add(1)), out)
            .map_err(|e| damaged(&format_args!("{name:?}: {e}")))?;
        if read > limits.max_entry_bytes {
            return Err(BundleError::new(
                Rule::TooLarge,
                format!(
                    "{name:?} expands to more than {} bytes (a zip bomb, or not a bundle)",
                    limits.max_entry_bytes
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
                "{name:?} declares {} bytes but holds {read}",
                file.size()
            )));
        }
        *total += read;
        Ok(Some((index, read)))
    }
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

/// A JSON list, handed element by element to `each`.
struct Elements<'f, T> {
    each: &'f mut dyn FnMut(T) -> Result<(), serde_json::Error>,
    count: usize,
    _item: std::marker::PhantomData<T>,
}

impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for &mut Elements<'_, T> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for &mut Elements<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            self.count += 1;
            (self.each)(item).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}
