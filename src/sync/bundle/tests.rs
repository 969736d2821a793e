//! One test per refusal rule, the round trip, the openssl CLI check and a
//! no-panic sweep over damaged bundles.

use super::*;
use crate::pki::signer::BundleSigner;
use crate::pki::CertificateAuthority;
use std::io::{Cursor, Read, Write};
use zip::write::SimpleFileOptions;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct Party {
    dir: tempfile::TempDir,
    ca: CertificateAuthority,
    signer: BundleSigner,
}

fn party(name: &str) -> Party {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca =
        CertificateAuthority::create(dir.path(), &format!("{name} CA"), NOW - DAY).expect("ca");
    let signer = BundleSigner::ensure(dir.path(), &ca, name, NOW - DAY).expect("signer");
    Party { dir, ca, signer }
}

/// `open` over borrowed bytes.
fn open_ref(bytes: &[u8], limits: &Limits) -> Result<Opened, BundleError> {
    open(bytes.to_vec(), limits)
}

/// A peer whose CA is pinned and whose signer is not yet.
fn pins(ca_sha256: &str) -> PeerPins<'_> {
    PeerPins {
        peer: "satellite \"sat-1\"",
        ca_sha256,
        signer_sha256: None,
        retired_signer_sha256: None,
    }
}

/// A signer made of any key and certificate the party's CA issued.
fn signer_from(
    p: &Party,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    cert: &openssl::x509::X509,
) -> BundleSigner {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = cert.to_pem().expect("pem");
    chain.extend_from_slice(p.ca.certificate_pem().as_bytes());
    std::fs::write(dir.path().join("signer.pem"), chain).expect("pem");
    std::fs::write(
        dir.path().join("signer.key"),
        key.private_key_to_pem_pkcs8().expect("key"),
    )
    .expect("key");
    BundleSigner::load(dir.path()).expect("load")
}

fn header() -> Header {
    Header {
        kind: Kind::Usage,
        from: "sat-1".into(),
        to: "cloud".into(),
        sequence: 7,
        in_reply_to: None,
        previous_sha256: Some("ab".repeat(32)),
        created_at: NOW,
        expires_at: NOW + 30 * DAY,
    }
}

fn payload() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "usage.json".into(),
            b"{\n  \"instances\": [1, 2, 3]\n}\n".to_vec(),
        ),
        ("reports/2026-11.json".into(), b"[]\n".to_vec()),
    ]
}

fn sealed(p: &Party) -> Sealed {
    seal(header(), payload(), &p.signer).expect("seal")
}

/// Every entry of a zip, in order.
fn entries_of(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("read");
            (file.name().to_string(), content)
        })
        .collect()
}

/// A plain zip of these entries, as any tool would write it.
fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(name.as_str(), options).expect("start");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("finish").into_inner()
}

/// The bundle's entries with one changed by `edit` (None removes it).
fn edited(bytes: &[u8], name: &str, edit: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let entries: Vec<_> = entries_of(bytes)
        .into_iter()
        .filter_map(|(n, c)| {
            if n == name {
                edit(&c).map(|c| (n, c))
            } else {
                Some((n, c))
            }
        })
        .collect();
    zip_of(&entries)
}

/// Replaces every occurrence of `from` by `to` (same length): how names no
/// zip writer would produce get into a test zip.
fn patched(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut hits = 0;
    let mut at = 0;
    while at + from.len() <= out.len() {
        if &out[at..at + from.len()] == from {
            out[at..at + from.len()].copy_from_slice(to);
            hits += 1;
            at += from.len();
        } else {
            at += 1;
        }
    }
    assert!(hits >= 2, "name patched in the local and central headers");
    out
}

fn refused(bytes: &[u8], limits: &Limits) -> BundleError {
    match open_ref(bytes, limits) {
        Ok(_) => panic!("bundle accepted"),
        Err(e) => e,
    }
}

fn assert_rule(err: &BundleError, rule: Rule, needle: &str) {
    assert_eq!(err.rule, rule, "{err}");
    assert!(
        err.to_string().starts_with(rule.as_str()),
        "the reason names the rule: {err}"
    );
    assert!(err.detail.contains(needle), "{needle:?} in {err}");
}

#[test]
fn sealed_bundle_opens_and_passes_every_check() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    assert_eq!(bundle.sha256, sha256_hex(&bundle.bytes));
    let opened = open_ref(&bundle.bytes, &Limits::default()).expect("open");
    assert_eq!(opened.manifest, bundle.manifest);
    assert_eq!(opened.sha256, bundle.sha256);
    assert_eq!(
        opened.all_files(),
        payload().into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(opened.signer_chain.len(), 2);
    let pin = sat.ca.fingerprint_hex().expect("fingerprint");
    assert_eq!(opened.signer_ca_sha256().expect("ca hash"), pin);
    opened.check_signer(&pins(&pin), NOW).expect("signer");
    opened
        .check_signer(&pins(&pin.to_uppercase()), NOW)
        .expect("hex case does not matter");
    let colons: Vec<String> = pin
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect();
    opened
        .check_signer(&pins(&colons.join(":")), NOW)
        .expect("openssl's fingerprint notation");
    let err = opened.check_signer(&pins(""), NOW).expect_err("empty pin");
    assert_eq!(err.rule, Rule::UntrustedSigner);
    opened.check_addressed("cloud", NOW).expect("addressed");

    #[derive(Debug, Deserialize)]
    struct Usage {
        instances: Vec<u32>,
    }
    let usage: Usage = opened.json("usage.json").expect("json");
    assert_eq!(usage.instances, vec![1, 2, 3]);
    let err = opened
        .json::<Usage>("reports/2026-11.json")
        .expect_err("shape");
    assert_rule(&err, Rule::BadPayload, "reports/2026-11.json");
    let err = opened.json::<Usage>("nope.json").expect_err("absent");
    assert_rule(&err, Rule::MissingEntry, "nope.json");

    let names: Vec<String> = entries_of(&bundle.bytes).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "manifest.sig",
            "signer.pem",
            "reports/2026-11.json",
            "usage.json"
        ]
    );
}

#[test]
fn manifest_is_pretty_json_in_the_contract_key_order() {
    let sat = party("sat-1");
    let opened = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    let text = String::from_utf8(opened.manifest_bytes.clone()).expect("utf-8");
    let keys = [
        "format",
        "kind",
        "from",
        "to",
        "sequence",
        "in_reply_to",
        "previous_sha256",
        "created_at",
        "expires_at",
        "files",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\n  \"{k}\":")).expect(k))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(
        text.contains("\"format\": \"satellite-bundle/1\""),
        "{text}"
    );
    assert!(text.contains("\"kind\": \"usage\""), "{text}");
    assert!(
        text.contains("\"created_at\": \"2027-01-15T08:00:00Z\""),
        "{text}"
    );
    assert!(
        text.find("reports/2026-11.json") < text.find("usage.json"),
        "files sorted: {text}"
    );
}

#[test]
fn openssl_cli_verifies_the_manifest_signature() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in entries_of(&bundle.bytes) {
        if !name.contains('/') {
            std::fs::write(dir.path().join(&name), content).expect("write");
        }
    }
    let pubkey = std::process::Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in", "signer.pem"])
        .current_dir(dir.path())
        .output()
        .expect("run openssl x509");
    assert!(pubkey.status.success(), "{pubkey:?}");
    std::fs::write(dir.path().join("signer.pub"), &pubkey.stdout).expect("pub");
    let verify = |manifest: &str| {
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", "signer.pub", "-signature"])
            .args(["manifest.sig", manifest])
            .current_dir(dir.path())
            .output()
            .expect("run openssl dgst")
    };
    let ok = verify("manifest.json");
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Verified OK"));

    let mut changed = std::fs::read(dir.path().join("manifest.json")).expect("read");
    changed[20] ^= 1;
    std::fs::write(dir.path().join("changed.json"), changed).expect("write");
    assert!(
        !verify("changed.json").status.success(),
        "openssl refuses a change"
    );
}

#[test]
fn tampered_payload_is_a_hash_mismatch() {
    let sat = party("sat-1");
    let bytes = edited(&sealed(&sat).bytes, "usage.json", |c| {
        let mut c = c.to_vec();
        c[5] ^= 1;
        Some(c)
    });
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::HashMismatch,
        "usage.json",
    );
}

#[test]
fn tampered_manifest_is_a_bad_signature() {
    let sat = party("sat-1");
    let bytes = edited(&sealed(&sat).bytes, MANIFEST_FILE, |c| {
        let text = String::from_utf8_lossy(c).replace("\"cloud\"", "\"other\"");
        Some(text.into_bytes())
    });
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::BadSignature,
        "manifest.json",
    );
}

#[test]
fn signature_by_another_key_is_a_bad_signature() {
    let sat = party("sat-1");
    let intruder = party("intruder");
    let bundle = sealed(&sat);
    let forged = intruder
        .signer
        .sign(&bundle.manifest_bytes_for_test())
        .expect("sign");
    let bytes = edited(&bundle.bytes, SIGNATURE_FILE, |_| Some(forged.clone()));
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::BadSignature,
        "signed by",
    );

    // Swapping in the intruder's chain without re-signing fails the same way.
    let chain = intruder.signer.chain_pem().as_bytes().to_vec();
    let bytes = edited(&bundle.bytes, SIGNER_FILE, |_| Some(chain.clone()));
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::BadSignature,
        "signed by",
    );

    let bytes = edited(&bundle.bytes, SIGNER_FILE, |_| Some(b"not pem".to_vec()));
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::BadSignature,
        "signer.pem",
    );
}

impl Sealed {
    fn manifest_bytes_for_test(&self) -> Vec<u8> {
        entries_of(&self.bytes)
            .into_iter()
            .find(|(n, _)| n == MANIFEST_FILE)
            .expect("manifest")
            .1
    }
}

#[test]
fn signer_chaining_to_another_ca_is_untrusted() {
    let sat = party("sat-1");
    let other = party("other");
    let opened = open_ref(&sealed(&other).bytes, &Limits::default()).expect("valid on its own");
    let pin = sat.ca.fingerprint_hex().expect("fingerprint");
    let err = opened
        .check_signer(&pins(&pin), NOW)
        .expect_err("foreign CA");
    assert_rule(&err, Rule::UntrustedSigner, &pin);

    // A chain that names the pinned CA but whose leaf that CA never signed.
    let mut forged = open_ref(&sealed(&other).bytes, &Limits::default()).expect("open");
    forged.signer_chain[1] = sat.ca.certificate().clone();
    let err = forged
        .check_signer(&pins(&pin), NOW)
        .expect_err("leaf not from the CA");
    assert_rule(&err, Rule::UntrustedSigner, "does not verify");

    // The CA itself as the only certificate is not a bundle signer.
    let mut ca_only = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    ca_only.signer_chain.remove(0);
    let err = ca_only
        .check_signer(&pins(&pin), NOW)
        .expect_err("CA as signer");
    assert_rule(&err, Rule::UntrustedSigner, "1 certificates");
}

#[test]
fn signer_outside_its_validity_is_untrusted() {
    let sat = party("sat-1");
    let opened = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    let pin = sat.ca.fingerprint_hex().expect("fingerprint");
    let err = opened
        .check_signer(&pins(&pin), NOW + 21 * 365 * DAY)
        .expect_err("expired signer");
    assert_rule(&err, Rule::UntrustedSigner, "expired");
    let err = opened
        .check_signer(&pins(&pin), NOW - 30 * DAY)
        .expect_err("not yet valid");
    assert_rule(&err, Rule::UntrustedSigner, "not yet valid");
}

#[test]
fn wrong_recipient_expired_and_future_bundles_are_refused() {
    let sat = party("sat-1");
    let opened = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    let err = opened.check_addressed("sat-2", NOW).expect_err("to");
    assert_rule(&err, Rule::WrongRecipient, "sat-2");
    let err = opened
        .check_addressed("cloud", NOW + 30 * DAY)
        .expect_err("expired");
    assert_rule(&err, Rule::Expired, "expired at");
    opened
        .check_addressed("cloud", NOW - DAY + 1)
        .expect("a day of clock skew is tolerated");
    let err = opened
        .check_addressed("cloud", NOW - DAY - 1)
        .expect_err("from the future");
    assert_rule(&err, Rule::Expired, "check the clock");
}

#[test]
fn missing_and_extra_entries_are_refused() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    let bytes = edited(&bundle.bytes, "usage.json", |_| None);
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::MissingEntry,
        "usage.json",
    );
    for fixed in RESERVED {
        let bytes = edited(&bundle.bytes, fixed, |_| None);
        assert_rule(
            &refused(&bytes, &Limits::default()),
            Rule::MissingEntry,
            fixed,
        );
    }
    let mut entries = entries_of(&bundle.bytes);
    entries.push(("notes.txt".into(), b"hello".to_vec()));
    assert_rule(
        &refused(&zip_of(&entries), &Limits::default()),
        Rule::ExtraEntry,
        "notes.txt",
    );
}

#[test]
fn unsafe_names_are_refused() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    for (placeholder, evil, why) in [
        ("zzzx", "../x", "'..'"),
        ("zabs", "/abs", "absolute"),
        ("azb", "a\\b", "backslash"),
        ("qqqq/", "qqqq/", "directory"),
    ] {
        let mut entries = entries_of(&bundle.bytes);
        entries.push((placeholder.to_string(), b"x".to_vec()));
        let bytes = patched(&zip_of(&entries), placeholder.as_bytes(), evil.as_bytes());
        assert_rule(&refused(&bytes, &Limits::default()), Rule::UnsafeName, why);
    }

    let mut zip = zip::ZipWriter::new_append(Cursor::new(bundle.bytes.clone())).expect("append");
    zip.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .expect("symlink");
    let bytes = zip.finish().expect("finish").into_inner();
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::UnsafeName,
        "symbolic link",
    );

    zip = zip::ZipWriter::new_append(Cursor::new(bundle.bytes.clone())).expect("append");
    zip.add_directory("dir", SimpleFileOptions::default())
        .expect("directory");
    let bytes = zip.finish().expect("finish").into_inner();
    assert_rule(
        &refused(&bytes, &Limits::default()),
        Rule::UnsafeName,
        "directory",
    );
}

#[test]
fn duplicate_names_are_refused() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    let mut entries = entries_of(&bundle.bytes);
    // A second usage.json with other content: some tools would extract
    // one, some the other.
    entries.push(("usage.jsoX".into(), b"{}".to_vec()));
    for twin in [&b"usage.json"[..], b"USAGE.json"] {
        let bytes = patched(&zip_of(&entries), b"usage.jsoX", twin);
        assert_rule(
            &refused(&bytes, &Limits::default()),
            Rule::UnsafeName,
            "duplicate",
        );
    }
}

#[test]
fn seal_refuses_what_receivers_would_refuse() {
    let sat = party("sat-1");
    for name in ["../x", "/abs", "a\\b", "manifest.json", ""] {
        let err = seal(header(), vec![(name.into(), vec![])], &sat.signer).expect_err(name);
        assert_eq!(err.rule, Rule::UnsafeName, "{name}: {err}");
    }
    let mut control = header();
    control.from = "sat\u{1b}[2J".into();
    let err = seal(control, payload(), &sat.signer).expect_err("escape");
    assert_rule(&err, Rule::BadManifest, "from contains a control character");
    let many: Vec<_> = (0..62).map(|i| (format!("{i}.json"), vec![])).collect();
    let err = seal(header(), many, &sat.signer).expect_err("entries");
    assert_rule(&err, Rule::TooLarge, "at most 61");
    let twice = vec![("a.json".into(), vec![]), ("A.json".into(), vec![1])];
    let err = seal(header(), twice, &sat.signer).expect_err("duplicate");
    assert_rule(&err, Rule::UnsafeName, "duplicate");
}

#[test]
fn too_many_entries_are_refused() {
    let sat = party("sat-1");
    let limits = Limits {
        max_entries: 6,
        ..Limits::default()
    };
    let many: Vec<_> = (0..4).map(|i| (format!("{i}.json"), vec![])).collect();
    let bundle = seal(header(), many, &sat.signer).expect("seal");
    assert_rule(
        &refused(&bundle.bytes, &limits),
        Rule::TooLarge,
        "7 entries",
    );
    let few = Limits {
        max_entries: 7,
        ..Limits::default()
    };
    open_ref(&bundle.bytes, &few).expect("at the limit");
}

#[test]
fn zip_bombs_are_refused_without_trusting_declared_sizes() {
    let sat = party("sat-1");
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 3 << 20,
        ..Limits::default()
    };
    let bomb = vec![0u8; 4 << 20];
    let bundle = seal(header(), vec![("bomb.json".into(), bomb)], &sat.signer).expect("seal");
    assert!(bundle.bytes.len() < 64 << 10, "compresses well");
    assert_rule(
        &refused(&bundle.bytes, &limits),
        Rule::TooLarge,
        "bomb.json",
    );

    // The same bomb declaring a tiny size: the cap, not the header, stops it.
    let lying = set_declared_size(&bundle.bytes, "bomb.json", 100);
    assert_rule(&refused(&lying, &limits), Rule::TooLarge, "bomb.json");

    // And declaring 2 GiB for a small file allocates nothing up front.
    let small = seal(header(), payload(), &sat.signer).expect("seal");
    let huge = set_declared_size(&small.bytes, "usage.json", 2 << 30);
    assert_rule(
        &refused(&huge, &limits),
        Rule::NotABundle,
        "declares 2147483648",
    );

    // Many entries each under the per-entry cap, together over the total.
    let parts: Vec<_> = (0..4)
        .map(|i| (format!("{i}.json"), vec![b' '; 1 << 20]))
        .collect();
    let bundle = seal(header(), parts, &sat.signer).expect("seal");
    assert_rule(&refused(&bundle.bytes, &limits), Rule::TooLarge, "in total");

    let tiny = Limits {
        max_bundle_bytes: 100,
        ..Limits::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.zip");
    std::fs::write(&path, &small.bytes).expect("write");
    let err = read_file(&path, &tiny).expect_err("over the file limit");
    assert_rule(&err, Rule::TooLarge, "big.zip");
    assert_eq!(read_file(&path, &limits).expect("read"), small.bytes);
    let err = read_file(&dir.path().join("absent.zip"), &limits).expect_err("absent");
    assert_rule(&err, Rule::NotABundle, "absent.zip");
    assert_rule(&refused(&small.bytes, &tiny), Rule::TooLarge, "bytes");
}

/// Rewrites the uncompressed size an entry declares, in both headers.
fn set_declared_size(bytes: &[u8], name: &str, size: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut patched = 0;
    for at in 0..out.len().saturating_sub(46) {
        let sig = &out[at..at + 4];
        let (name_at, size_at) = if sig == [0x50, 0x4b, 0x03, 0x04] {
            (at + 30, at + 22)
        } else if sig == [0x50, 0x4b, 0x01, 0x02] {
            (at + 46, at + 24)
        } else {
            continue;
        };
        if out.get(name_at..name_at + name.len()) == Some(name.as_bytes()) {
            out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header");
    out
}

#[test]
fn bad_manifests_are_refused_even_when_signed() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    let original = String::from_utf8(bundle.manifest_bytes_for_test()).expect("utf-8");
    for (change, needle) in [
        (
            original.replace(FORMAT, "satellite-bundle/2"),
            "satellite-bundle/2",
        ),
        (
            original.replace("\"kind\": \"usage\"", "\"kind\": \"gossip\""),
            "gossip",
        ),
        (
            original.replace("\"format\"", "\"extra\": 1,\n  \"format\""),
            "extra",
        ),
        (original.replace("2027-01-15", "someday"), "created_at"),
        ("not json".to_string(), "manifest.json"),
    ] {
        let signature = sat.signer.sign(change.as_bytes()).expect("sign");
        let bytes = edited(&bundle.bytes, MANIFEST_FILE, |_| {
            Some(change.clone().into_bytes())
        });
        let bytes = edited(&bytes, SIGNATURE_FILE, |_| Some(signature.clone()));
        assert_rule(
            &refused(&bytes, &Limits::default()),
            Rule::BadManifest,
            needle,
        );
    }
}

#[test]
fn truncated_and_random_files_are_not_bundles() {
    let sat = party("sat-1");
    let bytes = sealed(&sat).bytes;
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert_rule(
            &refused(&bytes[..cut], &Limits::default()),
            Rule::NotABundle,
            "",
        );
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_rule(&refused(&random, &Limits::default()), Rule::NotABundle, "");
}

/// `open` faces files from USB sticks: any damage must give a refusal,
/// never a panic, and whatever it accepts must be the signed content.
#[test]
fn damaged_bundles_never_panic_and_never_open_to_other_content() {
    let sat = party("sat-1");
    let bundle = sealed(&sat);
    let expected: BTreeMap<_, _> = payload().into_iter().collect();
    let limits = Limits::default();
    let check = |bytes: &[u8]| {
        if let Ok(opened) = open_ref(bytes, &limits) {
            assert_eq!(opened.all_files(), expected);
            assert_eq!(opened.manifest, bundle.manifest);
        }
    };
    for cut in 0..bundle.bytes.len() {
        check(&bundle.bytes[..cut]);
    }
    for at in 0..bundle.bytes.len() {
        for bit in [0, 3, 7] {
            let mut damaged = bundle.bytes.clone();
            damaged[at] ^= 1 << bit;
            check(&damaged);
        }
    }
    // Several bytes at once, biased to the headers and the central
    // directory at the end, where the lengths and offsets live.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let len = bundle.bytes.len() as u64;
    for _ in 0..3000 {
        let mut damaged = bundle.bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = if next() % 2 == 0 {
                len - 1 - next() % len.min(400)
            } else {
                next() % len
            };
            damaged[at as usize] = match next() % 3 {
                0 => 0,
                1 => 0xff,
                _ => next() as u8,
            };
        }
        check(&damaged);
    }
}

#[test]
fn only_the_peers_bundle_signer_signs_bundles() {
    let sat = party("sat-1");
    let ca_pin = sat.ca.fingerprint_hex().expect("fingerprint");
    let genuine = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    let first = genuine
        .check_signer(&pins(&ca_pin), NOW)
        .expect("first contact");
    assert_eq!(first.trust, SignerTrust::FirstContact);
    assert_eq!(first.sha256, genuine.signer_sha256().expect("sha"));
    assert_eq!(first.new_pins(), Some((first.sha256.as_str(), None)));
    let pinned = PeerPins {
        signer_sha256: Some(&first.sha256),
        ..pins(&ca_pin)
    };
    let again = genuine.check_signer(&pinned, NOW).expect("pinned");
    assert_eq!(again.trust, SignerTrust::Pinned);
    assert_eq!(again.new_pins(), None);

    // A router's identity key, certified by the very same CA.
    let key = crate::pki::new_p256_key().expect("key");
    let csr = crate::pki::parse_csr(&crate::pki::csr::tests::csr_pem(&key)).expect("csr");
    let router = sat
        .ca
        .issue_device_certificate(&csr, "inst-1", NOW - DAY)
        .expect("router");
    let router = openssl::x509::X509::from_pem(router.pem.as_bytes()).expect("pem");
    let forged = seal(header(), payload(), &signer_from(&sat, &key, &router)).expect("seal");
    let forged = open_ref(&forged.bytes, &Limits::default()).expect("valid on its own");
    for pins in [pins(&ca_pin), pinned] {
        let err = forged.check_signer(&pins, NOW).expect_err("router key");
        assert_rule(&err, Rule::UntrustedSigner, "identity certificate");
        assert!(err.detail.contains("CN=inst-1"), "{err}");
    }

    // The server certificate of the same CA.
    sat.ca
        .create_server_certificate(sat.dir.path(), &["localhost".into()], NOW - DAY)
        .expect("server");
    let server_key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(sat.dir.path().join(crate::pki::SERVER_KEY_FILE)).expect("key"),
    )
    .expect("key");
    let server_cert = openssl::x509::X509::from_pem(
        &std::fs::read(sat.dir.path().join(crate::pki::SERVER_CERT_FILE)).expect("pem"),
    )
    .expect("pem");
    let forged = seal(
        header(),
        payload(),
        &signer_from(&sat, &server_key, &server_cert),
    )
    .expect("seal");
    let err = open_ref(&forged.bytes, &Limits::default())
        .expect("open")
        .check_signer(&pinned, NOW)
        .expect_err("server key");
    assert_rule(&err, Rule::UntrustedSigner, "server certificate");

    // Another bundle signer of the same CA (one that replaced the pinned
    // one without a rollover, say) is not the pinned signer.
    let other_key = crate::pki::new_p256_key().expect("key");
    let other = sat
        .ca
        .issue_bundle_signer(&other_key, "sat-1 bundle signer", NOW - DAY)
        .expect("signer");
    let forged = seal(header(), payload(), &signer_from(&sat, &other_key, &other)).expect("seal");
    let err = open_ref(&forged.bytes, &Limits::default())
        .expect("open")
        .check_signer(&pinned, NOW)
        .expect_err("unpinned signer");
    assert_rule(&err, Rule::UntrustedSigner, "not its pinned signer");
}

#[test]
fn a_rotated_signer_moves_the_pin_and_the_old_one_is_retired() {
    let sat = party("sat-1");
    let ca_pin = sat.ca.fingerprint_hex().expect("fingerprint");
    let old = open_ref(&sealed(&sat).bytes, &Limits::default()).expect("open");
    let old_sha = old.signer_sha256().expect("sha");
    let rotated =
        BundleSigner::rotate(sat.dir.path(), &sat.ca, "sat-1", NOW - DAY / 2).expect("rotate");
    let sealed_new = seal(header(), payload(), &rotated).expect("seal");
    let new = open_ref(&sealed_new.bytes, &Limits::default()).expect("open");
    assert!(new
        .file_size(crate::pki::signer::ROLLOVER_CERT_FILE)
        .is_some());
    assert!(new
        .file_size(crate::pki::signer::ROLLOVER_SIGNATURE_FILE)
        .is_some());
    let pinned_old = PeerPins {
        signer_sha256: Some(&old_sha),
        ..pins(&ca_pin)
    };
    let moved = new.check_signer(&pinned_old, NOW).expect("rolled over");
    assert_eq!(
        moved.trust,
        SignerTrust::RolledOver {
            retired_sha256: old_sha.clone()
        }
    );
    let after = PeerPins {
        signer_sha256: Some(&moved.sha256),
        retired_signer_sha256: Some(&old_sha),
        ..pins(&ca_pin)
    };
    assert_eq!(
        new.check_signer(&after, NOW).expect("pinned").trust,
        SignerTrust::Pinned
    );
    let err = old.check_signer(&after, NOW).expect_err("retired");
    assert_rule(&err, Rule::UntrustedSigner, "retired bundle signer");

    // A proof by a signer that is not the pinned one moves nothing.
    let stranger = PeerPins {
        signer_sha256: Some(&moved.sha256),
        ..pins(&ca_pin)
    };
    let third =
        BundleSigner::rotate(sat.dir.path(), &sat.ca, "sat-1", NOW - DAY / 4).expect("rotate");
    let third = open_ref(
        &seal(header(), payload(), &third).expect("seal").bytes,
        &Limits::default(),
    )
    .expect("open");
    assert!(
        third.check_signer(&stranger, NOW).is_ok(),
        "vouched for by the pinned one"
    );
    let err = third
        .check_signer(&pinned_old, NOW)
        .expect_err("two steps away");
    assert_rule(&err, Rule::UntrustedSigner, "not its pinned signer");
}

#[test]
fn a_signer_from_before_the_purpose_is_trusted_first_and_when_pinned() {
    let sat = party("sat-1");
    let ca_pin = sat.ca.fingerprint_hex().expect("fingerprint");
    let key = crate::pki::new_p256_key().expect("key");
    let legacy = sat
        .ca
        .issue_legacy_bundle_signer_for_tests(&key, NOW - DAY)
        .expect("legacy");
    let sealed = seal(header(), payload(), &signer_from(&sat, &key, &legacy)).expect("seal");
    let opened = open_ref(&sealed.bytes, &Limits::default()).expect("open");
    let first = opened
        .check_signer(&pins(&ca_pin), NOW)
        .expect("first contact");
    assert_eq!(first.trust, SignerTrust::FirstContact);
    let pinned = PeerPins {
        signer_sha256: Some(&first.sha256),
        ..pins(&ca_pin)
    };
    assert_eq!(
        opened.check_signer(&pinned, NOW).expect("pinned").trust,
        SignerTrust::Pinned
    );
}

#[test]
fn an_entry_the_manifest_does_not_list_is_refused_without_inflating_it() {
    let sat = party("sat-1");
    let mut entries = entries_of(&sealed(&sat).bytes);
    // 8 MiB of zeros against a 1 MiB entry limit: were it inflated, it
    // would be refused as too large; it is refused as extra, unread.
    entries.push(("bomb.bin".into(), vec![0u8; 8 << 20]));
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_rule(
        &refused(&zip_of(&entries), &limits),
        Rule::ExtraEntry,
        "bomb.bin",
    );
}

#[test]
fn a_bundle_file_is_read_piece_by_piece_and_rewriting_it_after_the_check_is_caught() {
    let sat = party("sat-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundle.zip");
    let bundle = sealed(&sat);
    std::fs::write(&path, &bundle.bytes).expect("write");
    let opened = open_file(&path, &Limits::default()).expect("open");
    assert_eq!(opened.sha256, bundle.sha256);
    assert_eq!(opened.all_files(), payload().into_iter().collect());

    // The same names, other content, written over the checked file.
    let mut other = payload();
    other[0].1 = b"{\n  \"instances\": [3, 2, 1]\n}\n".to_vec();
    let forged = seal(header(), other, &sat.signer).expect("seal");
    std::fs::write(&path, &forged.bytes).expect("rewrite");
    let err = opened
        .json::<serde_json::Value>("usage.json")
        .expect_err("rewritten after the check");
    // Refused: as a hash mismatch where the layout still parses, as a
    // damaged zip where it moved.
    assert!(
        matches!(err.rule, Rule::HashMismatch | Rule::NotABundle),
        "{err}"
    );
}
