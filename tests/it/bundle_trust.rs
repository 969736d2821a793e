//! Only the peer's bundle signer signs bundles (DESIGN §8): the forgeries an
//! outside review made with other certificates of the peer's CA, each
//! through the real CLI with every table compared before and after, the
//! genuine bundle of the same sequence accepted afterwards, and the
//! README's openssl recipe reaching the same verdict as the satellite.

use crate::client::register;
use crate::fixture::{Server, BASE_CONFIG};
use crate::sync::{arg, cloud, json_of, path_of, register_satellite, rezip, unzip};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BUNDLE_SIGNING_OID: &str = "2.25.20787254406886845128240638220802874286";

fn satellite_named(name: &str) -> Server {
    Server::start_with(&BASE_CONFIG.replace("name: test-satellite", &format!("name: {name}")))
}

/// Sets every `key` in a JSON document to `to`.
fn set_all(value: &mut Value, key: &str, to: i64) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == key && v.is_number() {
                    *v = Value::from(to);
                } else {
                    set_all(v, key, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_all(v, key, to)),
        _ => {}
    }
}

/// What an attacker holding any key the peer's CA certified can make: the
/// payload edited (every `key` set to `to`), the manifest's hashes
/// recomputed, the manifest signed with `key`, `signer.pem` = `leaf_pem`'s
/// certificate then `ca_pem`.
pub(crate) fn forge(
    bundle: &Path,
    key: &PKey<Private>,
    leaf_pem: &str,
    ca_pem: &str,
    edit: (&str, i64),
) -> PathBuf {
    let mut entries = unzip(bundle);
    let mut manifest: Value = entries
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .map(|(_, b)| serde_json::from_slice(b).expect("manifest"))
        .expect("manifest");
    for (name, bytes) in entries.iter_mut() {
        if ["manifest.json", "manifest.sig", "signer.pem"].contains(&name.as_str()) {
            continue;
        }
        if let Ok(mut doc) = serde_json::from_slice::<Value>(bytes) {
            set_all(&mut doc, edit.0, edit.1);
            *bytes = serde_json::to_vec_pretty(&doc).expect("json");
        }
        manifest["files"][name.as_str()] = Value::from(hex::encode(openssl::sha::sha256(bytes)));
    }
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest");
    manifest_bytes.push(b'\n');
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).expect("signer");
    let signature = signer.sign_oneshot_to_vec(&manifest_bytes).expect("sign");
    let leaf = X509::stack_from_pem(leaf_pem.as_bytes()).expect("leaf")[0]
        .to_pem()
        .expect("pem");
    let chain = [leaf, ca_pem.as_bytes().to_vec()].concat();
    for (name, bytes) in entries.iter_mut() {
        match name.as_str() {
            "manifest.json" => *bytes = manifest_bytes.clone(),
            "manifest.sig" => *bytes = signature.clone(),
            "signer.pem" => *bytes = chain.clone(),
            _ => {}
        }
    }
    let out = bundle.with_file_name(format!(
        "forged-{}",
        bundle.file_name().and_then(|n| n.to_str()).expect("name")
    ));
    rezip(&entries, &out);
    out
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The README's audit recipe, step by step, with stock openssl: the
/// signature is by `signer.pem`'s key, `signer.pem` is the signer pinned
/// for the peer, and it carries the bundle-signing purpose.
pub(crate) fn officer_accepts(bundle: &Path, pinned_signer_sha256: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in unzip(bundle) {
        std::fs::write(dir.path().join(&name), bytes).expect("extract");
    }
    let d = dir.path();
    let (ok, out) = openssl(
        &[
            "x509",
            "-in",
            "signer.pem",
            "-pubkey",
            "-noout",
            "-out",
            "signer.pub",
        ],
        d,
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "signer.pub",
            "-signature",
            "manifest.sig",
            "manifest.json",
        ],
        d,
    );
    if !ok || !out.contains("Verified OK") {
        return Err(format!("signature: {out}"));
    }
    let (ok, out) = openssl(
        &[
            "x509",
            "-in",
            "signer.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        d,
    );
    assert!(ok, "{out}");
    let fingerprint: String = out
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
        .to_ascii_lowercase();
    if fingerprint != pinned_signer_sha256 {
        return Err(format!(
            "signer {fingerprint} is not the pinned signer {pinned_signer_sha256}"
        ));
    }
    let (ok, out) = openssl(
        &[
            "x509",
            "-in",
            "signer.pem",
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ],
        d,
    );
    if !ok || !out.contains(BUNDLE_SIGNING_OID) {
        return Err(format!("purpose: {out}"));
    }
    Ok(())
}

/// `import`/`process` of `file` at `node`: refused as `untrusted signer`
/// naming `kind`, every table as before, and `bundle show` says the same.
pub(crate) fn assert_forgery_refused(node: &Server, command: &str, file: &Path, kind: &str) {
    let before = node.snapshot_every_table();
    let out = node.cli(&[command, arg(file)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{command} accepted a forgery");
    assert!(stderr.contains("untrusted signer"), "{stderr}");
    assert!(stderr.contains(kind), "{kind:?} in {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(
        before,
        node.snapshot_every_table(),
        "the refused {command} changed the database"
    );
    let shown = node.cli(&["bundle", "show", arg(file), "--json"]);
    assert!(!shown.status.success(), "bundle show would accept it");
    let shown = json_of(&String::from_utf8_lossy(&shown.stdout));
    assert_eq!(shown["accepted_here"], false, "{shown}");
    assert!(
        shown["trust"].as_str().unwrap_or("").contains(kind),
        "{shown}"
    );
}

fn cloud_ca(cloud: &Server) -> String {
    std::fs::read_to_string(cloud.ca_path()).expect("cloud ca")
}

fn pinned_cloud_signer(site: &Server) -> String {
    let status = json_of(&site.cli_ok(&["status", "--json"]));
    status["sync"]["cloud_signer_sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("no cloud signer pinned: {status}"))
        .to_string()
}

#[test]
fn a_router_of_the_cloud_cannot_sign_a_sites_entitlements() {
    let cloud = cloud();
    let site = satellite_named("site-a");
    register_satellite(&cloud, &site, "site-a", "Lab");
    let pin = pinned_cloud_signer(&site);

    // A router registered directly at the cloud holds a key its CA certified.
    let router = register(&cloud, "FOCCLOUD1", &cloud.token("Lab2", &[]));
    let usage = path_of(&site.cli_ok(&["export", "--json"]));
    let genuine = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    let forged = forge(
        &genuine,
        &router.key,
        &router.certificate,
        &cloud_ca(&cloud),
        ("quantity", 999),
    );
    assert_forgery_refused(&site, "import", &forged, "identity certificate");
    let why = officer_accepts(&forged, &pin).expect_err("the officer refuses it too");
    assert!(why.contains("not the pinned signer"), "{why}");

    // The genuine bundle of that sequence still goes in.
    officer_accepts(&genuine, &pin).expect("the officer accepts the genuine one");
    let applied = json_of(&site.cli_ok(&["import", arg(&genuine), "--json"]));
    assert_eq!(applied["already_applied"], false, "{applied}");
    let licenses = site.cli_ok(&["license", "list", "--json"]);
    assert!(!licenses.contains("999"), "{licenses}");
}

#[test]
fn a_router_of_the_site_cannot_sign_its_usage_for_the_cloud() {
    let cloud = cloud();
    let site = satellite_named("site-a");
    register_satellite(&cloud, &site, "site-a", "Lab");
    let router = register(&site, "FOCSITE1", &site.token("Lab", &[]));
    let (status, answer) = router.client.post(&serde_json::json!({
        "type": "ENTITLEMENT", "message_id": "e1",
        "entitlements": [{"tag": crate::sync::ESS, "count": 4}]
    }));
    assert_eq!(status, 200, "{answer}");
    let genuine = path_of(&site.cli_ok(&["export", "--json"]));
    let site_ca = std::fs::read_to_string(site.ca_path()).expect("site ca");
    let forged = forge(
        &genuine,
        &router.key,
        &router.certificate,
        &site_ca,
        ("count", 1),
    );
    assert_forgery_refused(&cloud, "process", &forged, "identity certificate");
    let listed = json_of(&cloud.cli_ok(&["satellite", "list", "--json"]));
    let pin = listed[0]["signer_sha256"].as_str().expect("pinned signer");
    assert!(officer_accepts(&forged, pin).is_err());
    officer_accepts(&genuine, pin).expect("genuine");
    let processed = json_of(&cloud.cli_ok(&["process", arg(&genuine), "--json"]));
    assert_eq!(
        processed["request"]["already_applied"], false,
        "{processed}"
    );
}

#[test]
fn nodes_paired_with_signers_from_before_the_purpose_keep_exchanging() {
    let cloud = cloud();
    let site = satellite_named("site-a");
    register_satellite(&cloud, &site, "site-a", "Lab");

    // As an older release left them: the site's signer without the
    // bundle-signing purpose, and only the CAs pinned on both sides.
    let data = site.data_dir();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(data.join("ca.key")).expect("ca key"))
        .expect("ca key");
    let ca_pem = std::fs::read_to_string(data.join("ca.pem")).expect("ca");
    let ca = X509::from_pem(ca_pem.as_bytes()).expect("ca");
    let key = crate::client::p256();
    let mut name = openssl::x509::X509Name::builder().expect("name");
    name.append_entry_by_text("CN", "site-a bundle signer")
        .expect("cn");
    let name = name.build();
    let mut cert = X509::builder().expect("builder");
    cert.set_version(2).expect("version");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(ca.subject_name()).expect("issuer");
    cert.set_pubkey(&key).expect("key");
    let now = openssl::asn1::Asn1Time::days_from_now(0).expect("now");
    cert.set_not_before(&now).expect("nb");
    cert.set_not_after(ca.not_after()).expect("na");
    cert.append_extension(
        openssl::x509::extension::BasicConstraints::new()
            .critical()
            .build()
            .expect("bc"),
    )
    .expect("bc");
    cert.append_extension(
        openssl::x509::extension::KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    cert.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let legacy = cert.build();
    std::fs::write(
        data.join("signer.pem"),
        [legacy.to_pem().expect("pem"), ca_pem.into_bytes()].concat(),
    )
    .expect("signer.pem");
    std::fs::write(
        data.join("signer.key"),
        key.private_key_to_pem_pkcs8().expect("key"),
    )
    .expect("signer.key");
    site.db()
        .execute("UPDATE upstream SET cloud_signer_sha256 = NULL");
    cloud
        .db()
        .execute("UPDATE satellites SET signer_sha256 = NULL");

    // Both sides pin what they see next, and keep exchanging.
    let usage = path_of(&site.cli_ok(&["export", "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    site.cli_ok(&["import", arg(&answer), "--json"]);
    let listed = json_of(&cloud.cli_ok(&["satellite", "list", "--json"]));
    let legacy_sha = hex::encode(openssl::sha::sha256(&legacy.to_der().expect("der")));
    assert_eq!(listed[0]["signer_sha256"], legacy_sha.as_str(), "{listed}");
    assert!(!pinned_cloud_signer(&site).is_empty());

    // ...and the pins hold: a router's key is still refused.
    let router = register(&site, "FOCSITE2", &site.token("Lab", &[]));
    let usage = path_of(&site.cli_ok(&["export", "--json"]));
    let site_ca = std::fs::read_to_string(site.ca_path()).expect("site ca");
    let forged = forge(
        &usage,
        &router.key,
        &router.certificate,
        &site_ca,
        ("count", 1),
    );
    assert_forgery_refused(&cloud, "process", &forged, "identity certificate");
    cloud.cli_ok(&["process", arg(&usage), "--json"]);
}

/// Sync changes made at the command line name who made them, as the same
/// changes through the API do (they were recorded with no actor).
#[test]
fn sync_changes_from_the_command_line_carry_their_actor() {
    let cloud = cloud();
    let site = satellite_named("site-a");
    register_satellite(&cloud, &site, "site-a", "Lab");
    let usage = path_of(&site.cli_ok(&["export", "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    site.cli_ok(&["import", arg(&answer), "--json"]);
    cloud.cli_ok(&["satellite", "revoke", "site-a"]);
    for (node, label) in [(&cloud, "cloud"), (&site, "site")] {
        let events = json_of(&node.cli_ok(&["events", "--json", "--limit", "1000"]));
        let sync_events: Vec<&Value> = events
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["kind"] == "sync" || e["kind"] == "satellite")
            .collect();
        assert!(!sync_events.is_empty(), "{label}: no sync events: {events}");
        for event in sync_events {
            assert!(
                event["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("cli:")),
                "{label}: {event}"
            );
        }
    }
}
