//! Hostile bundles cost bounded memory (DESIGN §8): `import`, `bundle show`
//! and the running server's import folder stay under 64 MiB whatever a file
//! holds. The bundles are made by hand (a deflate stream of zeros written
//! code by code, a zip written byte by byte), so a 2 GiB entry is a 13 MB
//! file made in a blink. Peak memory is the kernel's count (`ru_maxrss`,
//! `VmHWM`), not an estimate.

use crate::fixture::{Server, BASE_CONFIG};
use openssl::hash::MessageDigest;
use std::path::{Path, PathBuf};
use std::process::Command;

const LIMIT_KIB: i64 = 64 * 1024;

/// CRC-32 (IEEE), bit by bit: only small entries need it here.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Bits, least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, len: u32) {
        self.acc |= value << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A raw deflate stream of `1 + 258 * runs` zero bytes: one fixed-Huffman
/// block, a literal 0, then `runs` copies of (length 258, distance 1).
fn zeros(runs: u64) -> (Vec<u8>, u64) {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    bits.put(0x0C, 8); // literal 0 (code 00110000, bit-reversed)
    for _ in 0..runs {
        bits.put(0xA3, 8); // length 258: symbol 285, code 11000101 reversed
        bits.put(0, 5); // distance 1: code 00000
    }
    bits.put(0, 7); // end of block
    (bits.finish(), 1 + 258 * runs)
}

struct Entry {
    name: String,
    /// Compression method 0 (stored) or 8 (deflate), and the data as stored.
    method: u16,
    data: Vec<u8>,
    size: u64,
    crc: u32,
}

fn stored(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.into(),
        method: 0,
        data: data.to_vec(),
        size: data.len() as u64,
        crc: crc32(data),
    }
}

fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&[20, 3]); // made by: unix
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&e.method.to_le_bytes());
            h.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(e.size as u32).to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(e.name.as_bytes());
            h
        };
        out.extend_from_slice(&header(0x0403_4b50, false));
        out.extend_from_slice(&e.data);
        central.extend_from_slice(&header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    let n = entries.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The three fixed entries of a validly signed bundle (by a throwaway key:
/// the signature check comes before any trust) whose manifest lists `files`.
fn signed(files: &[(&str, String)]) -> Vec<Entry> {
    let key = crate::client::p256();
    let mut name = openssl::x509::X509Name::builder().expect("name");
    name.append_entry_by_text("CN", "hostile").expect("cn");
    let name = name.build();
    let mut cert = openssl::x509::X509::builder().expect("cert");
    cert.set_version(2).expect("v");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(&name).expect("issuer");
    cert.set_pubkey(&key).expect("key");
    let now = openssl::asn1::Asn1Time::days_from_now(0).expect("now");
    let later = openssl::asn1::Asn1Time::days_from_now(30).expect("later");
    cert.set_not_before(&now).expect("nb");
    cert.set_not_after(&later).expect("na");
    cert.sign(&key, MessageDigest::sha256()).expect("sign");
    let pem = cert.build().to_pem().expect("pem");
    let listed: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(n, sha)| (n.to_string(), serde_json::Value::from(sha.clone())))
        .collect();
    let manifest = serde_json::json!({
        "format": "satellite-bundle/1", "kind": "entitlements",
        "from": "somebody", "to": "test-satellite", "sequence": 1,
        "in_reply_to": null, "previous_sha256": null,
        "created_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
        "files": listed,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("json");
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).expect("signer");
    let signature = signer.sign_oneshot_to_vec(&manifest).expect("sign");
    vec![
        stored("manifest.json", &manifest),
        stored("manifest.sig", &signature),
        stored("signer.pem", &[pem.clone(), pem].concat()),
    ]
}

/// Every hostile bundle, written into `dir`.
fn hostile_bundles(dir: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let mut made = Vec::new();
    let mut write = |label: &'static str, bytes: Vec<u8>, rule: &'static str| {
        let path = dir.join(format!("{label}.zip"));
        std::fs::write(&path, bytes).expect("write");
        made.push((label, path, rule));
    };
    // One listed entry that expands to 2 GiB of zeros.
    let (data, size) = zeros((2u64 << 30) / 258);
    let mut entries = signed(&[("entitlements.json", "ab".repeat(32))]);
    entries.push(Entry {
        name: "entitlements.json".into(),
        method: 8,
        data,
        size,
        crc: 0,
    });
    write("listed-2gib-zeros", zip(&entries), "too large");
    // Four 500 MB entries the manifest does not list.
    let mut entries = signed(&[]);
    for n in 0..4 {
        let (data, size) = zeros(500_000_000 / 258);
        entries.push(Entry {
            name: format!("extra-{n}.bin"),
            method: 8,
            data,
            size,
            crc: 0,
        });
    }
    write("unlisted-4x500mb", zip(&entries), "extra entry");
    // 200 MB that is no zip at all.
    write("garbage-200mb", vec![0x5a; 200 << 20], "not a bundle");
    made
}

/// Runs the satellite CLI under GNU time and returns its output and peak
/// resident memory in KiB. (Not `wait4` from here: a child forked from the
/// test process inherits the test's high-water mark through exec.)
fn peak_kib(config: &Path, args: &[&str]) -> (std::process::Output, i64) {
    let mut out = Command::new("/usr/bin/time")
        .args(["-f", "peak-kib %M"])
        .arg(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("/usr/bin/time (Debian package time) runs the satellite");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, last) = stderr
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", stderr.trim_end()));
    let kib = last
        .strip_prefix("peak-kib ")
        .and_then(|k| k.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from time: {stderr}"));
    out.stderr = rest.as_bytes().to_vec();
    (out, kib)
}

#[test]
fn hostile_bundles_are_refused_in_bounded_memory() {
    let server = Server::start_with(BASE_CONFIG);
    let dir = tempfile::tempdir().expect("tempdir");
    for (label, path, rule) in hostile_bundles(dir.path()) {
        let file = path.to_str().expect("utf8");
        for command in [&["import", file][..], &["bundle", "show", file][..]] {
            let (out, kib) = peak_kib(&server.config_path, command);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{label}: {command:?} accepted it");
            assert!(stderr.contains(rule), "{label}: {command:?}: {stderr}");
            eprintln!("{label}: {command:?}: peak RSS {} MiB", kib / 1024);
            assert!(
                kib < LIMIT_KIB,
                "{label}: {command:?} peaked at {kib} KiB, over {LIMIT_KIB}"
            );
        }
    }
}

/// The kernel's high-water mark of a process's resident memory, in KiB.
fn vm_hwm_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn the_import_folder_refuses_hostile_bundles_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::production::process_config(dir.path());
    let server = crate::production::Serving::start(&config);
    let before = vm_hwm_kib(server.child.id());
    let staging = tempfile::tempdir().expect("tempdir");
    let import = dir.path().join("import");
    let bundles = hostile_bundles(staging.path());
    for (_, path, _) in &bundles {
        let name = path.file_name().expect("name");
        // Renamed in, as a finished copy would appear; dated an hour ago so
        // that the folder does not wait for a copy in progress to settle.
        std::fs::copy(path, import.join(".partial")).expect("copy");
        std::fs::File::options()
            .write(true)
            .open(import.join(".partial"))
            .and_then(|f| {
                f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            })
            .expect("date the copy");
        std::fs::rename(import.join(".partial"), import.join(name)).expect("rename");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (label, path, rule) in &bundles {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let reason = import.join("rejected").join(format!("{name}.reason.txt"));
        while !reason.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{label} was not rejected"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let text = std::fs::read_to_string(&reason).expect("reason");
        assert!(text.contains(rule), "{label}: {text}");
    }
    let after = vm_hwm_kib(server.child.id());
    eprintln!(
        "import folder: server peak RSS {} MiB before the hostile bundles, {} MiB after",
        before / 1024,
        after / 1024
    );
    assert!(
        after < LIMIT_KIB,
        "the server peaked at {after} KiB (before: {before} KiB)"
    );
    server.stop();
}
