//! Sync over USB (DESIGN §8): a cloud and two disconnected satellites, each
//! a real server; bundles carried as files between them by the CLI, and
//! through the watched import folder.

use crate::client::{register, Registered};
use crate::fixture::{cloud_config, Server, BASE_CONFIG};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const ESS: &str = "ESS-AC-10G-RTU-1";

fn satellite_named(name: &str) -> Server {
    Server::start_with(&BASE_CONFIG.replace("name: test-satellite", &format!("name: {name}")))
}

pub(crate) fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub(crate) fn path_of(out: &str) -> PathBuf {
    PathBuf::from(json_of(out)["path"].as_str().expect("path"))
}

pub(crate) fn arg(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// A cloud with Lab (5 units) and Lab2 (none yet).
pub(crate) fn cloud() -> Server {
    let cloud = Server::start_with(&cloud_config());
    cloud.cli_ok(&["va", "create", "Lab"]);
    cloud.cli_ok(&["va", "create", "Lab2"]);
    cloud.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        ESS,
        "--quantity",
        "5",
    ]);
    cloud
}

/// Registers `sat` with `cloud` for `va` through the USB loop; returns the
/// answer bundle the satellite imported.
pub(crate) fn register_satellite(cloud: &Server, sat: &Server, name: &str, va: &str) -> PathBuf {
    let added = json_of(&cloud.cli_ok(&["satellite", "add", name, "--va", va, "--json"]));
    let token = added["token"].as_str().expect("token");
    assert!(added["satellite_id"].is_string());
    let request = path_of(&sat.cli_ok(&["upstream", "register", "--token", token, "--json"]));
    assert!(
        request.starts_with(sat.dir.path().join("export")),
        "{request:?}"
    );
    let answer = path_of(&cloud.cli_ok(&["process", arg(&request), "--json"]));
    let applied = json_of(&sat.cli_ok(&["import", arg(&answer), "--json"]));
    assert_eq!(applied["already_applied"], false, "{applied}");
    answer
}

/// export at the satellite, process at the cloud, import at the satellite.
fn round_trip(cloud: &Server, sat: &Server) -> (PathBuf, PathBuf) {
    let usage = path_of(&sat.cli_ok(&["export", "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    sat.cli_ok(&["import", arg(&answer), "--json"]);
    (usage, answer)
}

fn entitlement(router: &Registered, id: &str, count: u32) -> Value {
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": id,
        "entitlements": [{"tag": ESS, "count": count}]
    }));
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn the_usb_round_trip_brings_licenses_to_routers_and_usage_to_the_cloud() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    let b = satellite_named("site-b");
    register_satellite(&cloud, &a, "site-a", "Lab");
    register_satellite(&cloud, &b, "site-b", "Lab2");

    // One trip made the satellite useful: Lab's licenses are there.
    let licenses = json_of(&a.cli_ok(&["license", "list", "--json"]));
    let lab: Vec<&Value> = licenses
        .as_array()
        .expect("array")
        .iter()
        .filter(|l| l["virtual_account"] == "Lab")
        .collect();
    assert_eq!(lab.len(), 1, "{licenses}");
    assert_eq!(
        (lab[0]["sku"].as_str(), lab[0]["quantity"].as_i64()),
        (Some(ESS), Some(5))
    );

    let router = register(&a, "FOCA1", &a.token("Lab", &[]));
    assert_eq!(entitlement(&router, "e1", 3)["status"], "AUTHORIZED");
    let other = register(&b, "FOCB1", &b.token("Lab2", &[]));
    assert_eq!(entitlement(&other, "e1", 2)["status"], "OUT_OF_COMPLIANCE");

    // Usage from both satellites reaches the cloud.
    round_trip(&cloud, &a);
    round_trip(&cloud, &b);
    assert_eq!(cloud.compliance("Lab", ESS)["in_use"], 3);
    assert_eq!(cloud.compliance("Lab2", ESS)["in_use"], 2);
    let sats = json_of(&cloud.cli_ok(&["satellite", "list", "--json"]));
    let site_a = sats
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "site-a"))
        .expect("site-a listed");
    assert_eq!(site_a["product_instances"], 1, "{sats}");
    assert_eq!(site_a["status"], "REGISTERED");
    assert_eq!(
        site_a["sequence_received"], 2,
        "registration and one usage bundle"
    );
    // The cloud names the satellite each instance and each unit came through.
    let instances = json_of(&cloud.cli_ok(&["instance", "list", "--json"]));
    let via_a = instances
        .as_array()
        .and_then(|l| l.iter().find(|i| i["sn"] == "FOCA1"))
        .expect("site-a's router at the cloud");
    assert_eq!(via_a["satellite"], "site-a", "{instances}");
    assert_eq!(via_a["virtual_account"], "Lab");
    let udi = via_a["udi"].as_str().expect("udi");
    let shown = json_of(&cloud.cli_ok(&["instance", "show", udi, "--json"]));
    assert_eq!(shown["satellite"], "site-a", "{shown}");
    let removed = cloud.cli(&["instance", "remove", udi]);
    assert!(!removed.status.success());
    assert!(String::from_utf8_lossy(&removed.stderr).contains("came through satellite"));
    assert_eq!(
        cloud.compliance("Lab", ESS)["in_use_by_satellite"],
        json!({"site-a": 3})
    );
    // The satellite's status tells the operator where sync stands.
    let status = json_of(&a.cli_ok(&["status", "--json"]));
    assert_eq!(status["sync"]["registered"], true, "{status}");
    assert_eq!(status["sync"]["sequence_sent"], 2);
    assert_eq!(status["sync"]["sequence_received"], 2);
    assert_eq!(status["sync"]["days_since_acknowledged"], 0);
    assert!(a.cli_ok(&["status"]).contains("sequence out/in:   2 / 2"));

    // A license moved at the cloud changes compliance at the satellite after
    // the next round trip, and the router learns it at its next message.
    cloud.cli_ok(&[
        "license",
        "transfer",
        "--from",
        "Lab",
        "--to",
        "Lab2",
        "--sku",
        ESS,
        "--quantity",
        "4",
    ]);
    // At the cloud, site-a's router is judged by the cloud's pools (Lab is
    // short now), beside what site-a last told it; counts include it.
    let instances = json_of(&cloud.cli_ok(&["instance", "list", "--json"]));
    let via_a = instances
        .as_array()
        .and_then(|l| l.iter().find(|i| i["sn"] == "FOCA1"))
        .expect("site-a's router at the cloud");
    assert_eq!(via_a["status"], "OUT_OF_COMPLIANCE", "{via_a}");
    assert_eq!(via_a["satellite_status"], "AUTHORIZED", "{via_a}");
    let vas = json_of(&cloud.cli_ok(&["va", "list", "--json"]));
    let lab = vas
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "Lab"))
        .expect("Lab");
    assert_eq!(
        (
            lab["product_instances"].as_i64(),
            lab["satellite_instances"].as_i64()
        ),
        (Some(1), Some(1)),
        "{lab}"
    );
    assert_eq!(lab["served_by"], "site-a", "{lab}");
    let cloud_status = json_of(&cloud.cli_ok(&["status", "--json"]));
    assert_eq!(cloud_status["product_instances"], 2, "{cloud_status}");
    let (usage, answer) = round_trip(&cloud, &a);
    let row = a.compliance("Lab", ESS);
    assert_eq!(
        (row["available"].as_i64(), row["in_use"].as_i64()),
        (Some(1), Some(3)),
        "{row}"
    );
    assert_eq!(entitlement(&router, "e2", 3)["status"], "OUT_OF_COMPLIANCE");
    round_trip(&cloud, &b);
    assert_eq!(entitlement(&other, "e2", 2)["status"], "AUTHORIZED");

    // Licenses move at the cloud only: the next sync would undo a local move.
    let moved = a.cli(&[
        "license",
        "transfer",
        "--from",
        "Lab",
        "--to",
        "Default",
        "--sku",
        ESS,
        "--quantity",
        "1",
    ]);
    assert!(!moved.status.success());
    assert!(String::from_utf8_lossy(&moved.stderr).contains("cloud"));

    // Importing the same answer again is a no-op that says so.
    let again = json_of(&a.cli_ok(&["import", arg(&answer), "--json"]));
    assert_eq!(again["already_applied"], true, "{again}");
    // The cloud answers a usage bundle it processed before with the same bytes.
    let repeated = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    assert_eq!(
        repeated, answer,
        "the file written the first time is given back"
    );
    assert_eq!(
        std::fs::read(&repeated).expect("repeated answer"),
        std::fs::read(&answer).expect("first answer")
    );

    // The signature is checkable with nothing but openssl.
    assert_openssl_verifies(&usage);
    // Its own outgoing bundle: said to be outgoing, for whom, and the summary.
    let out = a.cli(&["bundle", "show", arg(&usage), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(shown["manifest"]["kind"], "usage");
    assert_eq!(
        (shown["kind"].as_str(), shown["sequence"].as_u64()),
        (Some("usage"), Some(3))
    );
    assert_eq!(shown["counts"]["instances.json"], 1, "{shown}");
    assert_eq!(shown["accepted_here"], Value::Null, "{shown}");
    assert!(
        shown["trust"]
            .as_str()
            .is_some_and(|t| t.starts_with("outgoing: for the cloud")),
        "{shown}"
    );
    assert!(
        shown["from_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("site-a (")),
        "{shown}"
    );
    // The verdict is import's and process's own: processed before, taken
    // again as a no-op.
    let at_cloud = json_of(&cloud.cli_ok(&["bundle", "show", arg(&usage), "--json"]));
    assert_eq!(at_cloud["accepted_here"], true, "{at_cloud}");
    assert_eq!(at_cloud["already_applied"], true, "{at_cloud}");
    assert!(
        at_cloud["from_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("site-a (")),
        "{at_cloud}"
    );
    let answer_shown = json_of(&a.cli_ok(&["bundle", "show", arg(&answer), "--json"]));
    assert_eq!(answer_shown["accepted_here"], true, "{answer_shown}");
    // An answer never imported, overtaken by a newer one, is a replay:
    // `import` refuses it, and so does `show`, with a non-zero exit.
    let skipped = path_of(&a.cli_ok(&["export", "--json"]));
    let stale = path_of(&cloud.cli_ok(&["process", arg(&skipped), "--json"]));
    let (_, newer) = round_trip(&cloud, &a);
    for (command, file) in [("import", &stale), ("show", &stale)] {
        let args: Vec<&str> = if command == "import" {
            vec!["import", arg(file)]
        } else {
            vec!["bundle", "show", arg(file)]
        };
        let out = a.cli(&args);
        assert!(!out.status.success(), "{command} took a replay");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("sequence"), "{command}: {said}");
    }
    let newer_shown = json_of(&a.cli_ok(&["bundle", "show", arg(&newer), "--json"]));
    assert_eq!(newer_shown["already_applied"], true, "{newer_shown}");
    // Per virtual account: the usage a usage bundle reports, the licenses an
    // entitlement bundle gives.
    let has = |rows: &Value, name_key: &str, value_key: &str| {
        rows.as_array().into_iter().flatten().any(|r| {
            r["virtual_account"] == "Lab" && r[name_key] == ESS && r[value_key].as_i64() > Some(0)
        })
    };
    assert!(has(&shown["usage"], "tag", "in_use"), "{shown}");
    assert!(
        has(&answer_shown["quantities"], "sku", "quantity"),
        "{answer_shown}"
    );
    let text = a.cli(&["bundle", "show", arg(&answer)]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("Licenses: Lab {ESS}")), "{text}");
}

pub(crate) fn unzip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(path).expect("bundle");
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).expect("entry");
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            (entry.name().to_string(), bytes)
        })
        .collect()
}

pub(crate) fn rezip(entries: &[(String, Vec<u8>)], path: &Path) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

/// Replaces the first `from` by `to` in one entry's text.
pub(crate) fn edit(entries: &mut [(String, Vec<u8>)], file: &str, from: &str, to: &str) {
    for (name, bytes) in entries.iter_mut() {
        if name == file {
            let text = String::from_utf8(bytes.clone()).expect("utf8");
            *bytes = text.replacen(from, to, 1).into_bytes();
        }
    }
}

fn assert_openssl_verifies(bundle: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in unzip(bundle) {
        std::fs::write(dir.path().join(&name), bytes).expect("extract");
    }
    let pubkey = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(dir.path().join("signer.pem"))
        .output()
        .expect("openssl");
    assert!(pubkey.status.success());
    std::fs::write(dir.path().join("pub.pem"), pubkey.stdout).expect("pub");
    let verify = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.path().join("pub.pem"))
        .arg("-signature")
        .arg(dir.path().join("manifest.sig"))
        .arg(dir.path().join("manifest.json"))
        .output()
        .expect("openssl");
    assert!(
        verify.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Runs `import` on a bad file: refused, naming `rule`, and nothing changed.
fn assert_refused(sat: &Server, file: &Path, rule: &str, env_now: Option<&str>) {
    let before = sat.snapshot();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_satellite"));
    cmd.arg("-c")
        .arg(&sat.config_path)
        .args(["import", arg(file)]);
    if let Some(now) = env_now {
        cmd.env(satellite::clock::NOW_ENV, now);
    }
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{rule}: import of {file:?} was accepted"
    );
    assert!(stderr.contains(rule), "expected {rule:?} in: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert_eq!(
        before,
        sat.snapshot(),
        "{rule}: the refused import changed the database"
    );
}

#[test]
fn every_bad_bundle_is_refused_with_its_rule_and_changes_nothing() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    let b = satellite_named("site-b");
    let first_answer = register_satellite(&cloud, &a, "site-a", "Lab");
    register_satellite(&cloud, &b, "site-b", "Lab2");
    let (own_usage, _) = round_trip(&cloud, &a);
    let dir = tempfile::tempdir().expect("tempdir");

    // Replay: an answer older than one applied since (carried late).
    let older = path_of(&cloud.cli_ok(&[
        "process",
        arg(&path_of(&a.cli_ok(&["export", "--json"]))),
        "--json",
    ]));
    round_trip(&cloud, &a);
    assert_refused(&a, &older, "replay", None);
    // The very bundle applied before is a no-op that says so, not a refusal.
    let again = json_of(&a.cli_ok(&["import", arg(&first_answer), "--json"]));
    assert_eq!(again["already_applied"], true);
    // Addressed to the other satellite (same cloud, valid signature).
    let (_, b_answer) = round_trip(&cloud, &b);
    assert_refused(&a, &b_answer, "wrong recipient", None);
    // Signed by someone other than the pinned cloud: the satellite's own bundle.
    assert_refused(&a, &own_usage, "untrusted signer", None);

    // A fresh answer, then tampered copies of it.
    let usage = path_of(&a.cli_ok(&["export", "--json"]));
    let fresh = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    let good = unzip(&fresh);
    type Damage = fn(&mut Vec<(String, Vec<u8>)>);
    let cases: [(&str, Damage); 5] = [
        ("hash mismatch", |e| {
            edit(e, "entitlements.json", "\"quantity\": ", "\"quantity\": 9")
        }),
        ("extra entry", |e| {
            e.push(("notes.txt".into(), b"hello".to_vec()))
        }),
        ("missing entry", |e| e.retain(|(n, _)| n != "catalog.json")),
        ("unsafe name", |e| {
            e.push(("../evil.json".into(), b"{}".to_vec()))
        }),
        ("bad signature", |e| {
            edit(e, "manifest.json", "\"sequence\": ", "\"sequence\": 9")
        }),
    ];
    for (i, (rule, damage)) in cases.iter().enumerate() {
        let mut entries = good.clone();
        damage(&mut entries);
        let path = dir.path().join(format!("damaged-{i}.zip"));
        rezip(&entries, &path);
        assert_refused(&a, &path, rule, None);
    }

    let bytes = std::fs::read(&fresh).expect("read");
    let truncated = dir.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    assert_refused(&a, &truncated, "not a bundle", None);
    let noise = dir.path().join("noise.zip");
    std::fs::write(&noise, b"PK\x03\x04 this is not really a zip").expect("write");
    assert_refused(&a, &noise, "not a bundle", None);

    // Expired: carried for longer than a bundle may travel.
    let late = time::OffsetDateTime::now_utc() + time::Duration::days(120);
    let late = late
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    assert_refused(&a, &fresh, "expired", Some(&late));

    // And the good one still applies after all that.
    let applied = json_of(&a.cli_ok(&["import", arg(&fresh), "--json"]));
    assert_eq!(applied["already_applied"], false);
    // No force flag exists.
    let forced = a.cli(&["import", arg(&first_answer), "--force"]);
    assert!(!forced.status.success());
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_running_server_applies_what_is_dropped_into_the_import_folder() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    register_satellite(&cloud, &a, "site-a", "Lab");
    cloud.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        ESS,
        "--quantity",
        "2",
    ]);
    let usage = path_of(&a.cli_ok(&["export", "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    let import = a.dir.path().join("import");
    std::fs::create_dir_all(&import).expect("import dir");

    // A tampered file is rejected with its reason beside it.
    let mut t = unzip(&answer);
    edit(&mut t, "catalog.json", "{", "{ ");
    rezip(&t, &import.join("tampered.zip"));
    let reason = import.join("rejected/tampered.zip.reason.txt");
    wait_for("the tampered bundle to be rejected", || reason.exists());
    let text = std::fs::read_to_string(&reason).expect("reason");
    assert!(text.contains("hash mismatch"), "{text}");

    // A half-copied file is left alone until it is complete.
    let bytes = std::fs::read(&answer).expect("answer");
    let arriving = import.join("answer.zip");
    std::fs::write(&arriving, &bytes[..bytes.len() / 3]).expect("first part");
    std::thread::sleep(Duration::from_secs(4));
    assert!(arriving.exists(), "a file still being copied was taken");
    // A copy that stalled for a minute (a paused copy, a slow stick) is
    // still waited for: only ten minutes without a change reject it.
    std::fs::File::options()
        .write(true)
        .open(&arriving)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)))
        .expect("date the stalled copy");
    std::thread::sleep(Duration::from_secs(5));
    assert!(arriving.exists(), "a stalled copy was rejected");
    assert!(!import.join("rejected/answer.zip").exists());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&arriving)
        .expect("append");
    file.write_all(&bytes[bytes.len() / 3..]).expect("rest");
    drop(file);
    let applied = import.join("applied/answer.zip");
    wait_for("the completed bundle to be applied", || applied.exists());
    assert_eq!(a.compliance("Lab", ESS)["available"], 7);
}

#[test]
fn a_revoked_satellite_is_refused_with_a_reason_and_nothing_changes_at_the_cloud() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    register_satellite(&cloud, &a, "site-a", "Lab");
    let usage = path_of(&a.cli_ok(&["export", "--json"]));
    let revoked = json_of(&cloud.cli_ok(&["satellite", "revoke", "site-a", "--json"]));
    assert_eq!(revoked["status"], "REVOKED");
    let before = cloud.snapshot();
    let out = cloud.cli(&["process", arg(&usage)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("revoked"), "{stderr}");
    // `bundle show` says the same, exits non-zero, and changes nothing either.
    let shown = cloud.cli(&["bundle", "show", arg(&usage), "--json"]);
    assert!(!shown.status.success());
    let shown = json_of(&String::from_utf8_lossy(&shown.stdout));
    assert_eq!(shown["accepted_here"], false, "{shown}");
    assert!(
        shown["trust"]
            .as_str()
            .is_some_and(|t| t.contains("revoked")),
        "{shown}"
    );
    assert_eq!(before, cloud.snapshot());
    // A satellite cannot process, and the cloud cannot import.
    let wrong = a.cli(&["process", arg(&usage)]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("cloud"));
    let wrong = cloud.cli(&["export"]);
    assert!(!wrong.status.success());
}

#[test]
fn catalog_additions_from_the_cloud_take_effect_on_a_running_satellite() {
    let extra = tempfile::tempdir().expect("tempdir");
    let catalog = extra.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "tags:\n  - { tag: ESS-100G-RTU-1, category: essential }\nskus:\n  - { sku: ESS-100G-RTU-1, tag: ESS-100G-RTU-1 }\n",
    )
    .expect("catalog");
    let cloud = Server::start_with(&format!(
        "{}catalog: {}\n",
        cloud_config(),
        catalog.display()
    ));
    cloud.cli_ok(&["va", "create", "Lab"]);
    cloud.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        "ESS-100G-RTU-1",
        "--quantity",
        "2",
    ]);
    let a = satellite_named("site-a");
    let router = register(&a, "FOCA1", &a.token("Default", &[]));
    let ask = |id: &str| {
        let (status, answer) = router.client.post(&json!({
            "type": "ENTITLEMENT", "message_id": id,
            "entitlements": [{"tag": "ESS-100G-RTU-1", "count": 1}]
        }));
        assert_eq!(status, 200, "{answer}");
        answer["entitlements"][0]["status"].clone()
    };
    assert_eq!(ask("before"), "INVALID");
    register_satellite(&cloud, &a, "site-a", "Lab");
    // The CLI's import reached the server through the database.
    a.jobs.run_due().expect("jobs");
    assert_eq!(
        ask("after"),
        "OUT_OF_COMPLIANCE",
        "known now; Default holds none"
    );
    let licenses = json_of(&a.cli_ok(&["license", "list", "--va", "Lab", "--json"]));
    assert_eq!(licenses[0]["sku"], "ESS-100G-RTU-1", "{licenses}");
}

#[test]
fn a_disconnected_satellite_writes_its_usage_bundle_on_the_export_schedule() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    register_satellite(&cloud, &a, "site-a", "Lab");
    let export = a.dir.path().join("export");
    let usage_files = || {
        std::fs::read_dir(&export)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().contains("-usage-"))
                    .count()
            })
            .unwrap_or(0)
    };
    // Let the sync thread mark its start, then move past the 1st at 03:00.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(usage_files(), 0);
    // Status says when the running server writes the next one.
    let sync = json_of(&a.cli_ok(&["status", "--json"]))["sync"].clone();
    assert_eq!(sync["mode"], "disconnected", "{sync}");
    assert!(
        sync["next_export"]
            .as_str()
            .is_some_and(|t| t.ends_with("-01T03:00:00Z")),
        "{sync}"
    );
    a.clock.advance(time::Duration::days(32));
    wait_for("the scheduled usage export", || usage_files() == 1);
    // The file is written inside the transaction that records it: wait for the commit.
    wait_for("the export to be recorded", || {
        json_of(&a.cli_ok(&["status", "--json"]))["sync"]["sequence_sent"] == 2
    });
    // It comes once per schedule, not once per tick.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(usage_files(), 1);
}

#[test]
fn a_satellite_keeps_the_smart_account_it_was_initialized_with() {
    let a = satellite_named("site-a");
    let yaml = std::fs::read_to_string(&a.config_path).expect("config");
    std::fs::write(
        &a.config_path,
        yaml.replace("account: Test Corp", "account: Other Corp"),
    )
    .expect("config");
    let out = a.cli(&["init"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to smart account"), "{err}");
}

fn refused(node: &Server, args: &[&str]) -> String {
    let out = node.cli(args);
    assert!(!out.status.success(), "satellite {args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn license_quantity(node: &Server, va: &str) -> i64 {
    json_of(&node.cli_ok(&["license", "list", "--json"]))
        .as_array()
        .expect("licenses")
        .iter()
        .filter(|l| l["virtual_account"] == va)
        .map(|l| l["quantity"].as_i64().unwrap_or(0))
        .sum()
}

/// DESIGN §2: a virtual account is served by one node. The cloud refuses,
/// naming the satellite, a second satellite, tokens, registrations and
/// moves into it; `va serve` moves it, audited, and each side sees the
/// move at its next sync.
#[test]
fn a_virtual_account_has_one_serving_node_and_moves_by_one_command() {
    let cloud = cloud();
    let a = satellite_named("site-a");
    let b = satellite_named("site-b");
    register_satellite(&cloud, &a, "site-a", "Lab");

    let second = refused(&cloud, &["satellite", "add", "site-b", "--va", "Lab"]);
    assert!(second.contains("\"site-a\""), "{second}");
    let token = refused(&cloud, &["token", "create", "--va", "Lab"]);
    assert!(
        token.contains("\"site-a\"") && token.contains("va serve Lab --by cloud"),
        "{token}"
    );

    // A router at the cloud in Lab2 keeps Lab2 at the cloud, and cannot be
    // moved into Lab.
    let early_token = cloud.token("Lab2", &[]);
    let direct = register(&cloud, "FOCDIRECT1", &early_token);
    let blocked = refused(&cloud, &["satellite", "add", "site-b", "--va", "Lab2"]);
    assert!(
        blocked.contains("1 product instances registered at this cloud"),
        "{blocked}"
    );
    let moved = refused(
        &cloud,
        &["instance", "move", &direct.instance_id, "--to", "Lab"],
    );
    assert!(moved.contains("\"site-a\""), "{moved}");
    cloud.cli_ok(&["instance", "remove", &direct.instance_id]);
    register_satellite(&cloud, &b, "site-b", "Lab2");

    // A token made before its virtual account went to a satellite
    // registers nothing at the cloud any more.
    let (status, answer) = cloud.device().post(&crate::client::registration(
        "reg-late",
        "FOCLATE1",
        &early_token,
        &crate::client::csr(&crate::client::p256()),
    ));
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer.to_string().contains("site-b"),
        "the refusal names the satellite: {answer}"
    );

    // Lab moves from site-a to site-b: one command, audited.
    let served = json_of(&cloud.cli_ok(&["va", "serve", "Lab", "--by", "site-b", "--json"]));
    assert_eq!(served["served_by"], "site-b", "{served}");
    assert_eq!(served["previously"], json!(["site-a"]), "{served}");
    let again = refused(&cloud, &["va", "serve", "Lab", "--by", "site-b"]);
    assert!(again.contains("already served"), "{again}");
    let events = json_of(&cloud.cli_ok(&["events", "--json", "--limit", "1000"]));
    assert!(
        events.as_array().expect("events").iter().any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("now served by satellite \"site-b\""))
                && e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))
        }),
        "{events}"
    );
    let sats = json_of(&cloud.cli_ok(&["satellite", "list", "--json"]));
    let serves = |name: &str| {
        sats.as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .map(|s| s["virtual_accounts"].clone())
            .expect("listed")
    };
    assert_eq!(serves("site-a"), json!([]), "{sats}");
    assert_eq!(serves("site-b"), json!(["Lab", "Lab2"]), "{sats}");

    // Each side sees it at its next sync: site-a gives up Lab's licenses,
    // site-b receives them.
    assert_eq!(license_quantity(&a, "Lab"), 5);
    round_trip(&cloud, &a);
    assert_eq!(license_quantity(&a, "Lab"), 0);
    round_trip(&cloud, &b);
    assert_eq!(license_quantity(&b, "Lab"), 5);

    // Bad requests change nothing and say what was wrong.
    let nobody = refused(&cloud, &["va", "serve", "Lab", "--by", "nosuch"]);
    assert!(nobody.contains("no satellite named \"nosuch\""), "{nobody}");
    let no_va = refused(&cloud, &["va", "serve", "Nope", "--by", "site-a"]);
    assert!(no_va.contains("\"Nope\" does not exist"), "{no_va}");
    let at_site = refused(&a, &["va", "serve", "Lab", "--by", "cloud"]);
    assert!(at_site.contains("cloud"), "{at_site}");
    // The same move through the API, and its refusals.
    let api = crate::api::Api::new(&cloud);
    let admin = crate::api::bearer(&cloud, &api, "mover", "admin", &[]);
    let path = "/api/v1/accounts/Test%20Corp/virtual-accounts/Lab/serve";
    let (status, body) = api.call(
        "POST",
        path,
        Some(&admin),
        Some(&json!({"servedBy": "nosuch"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = api.call("POST", path, Some(&admin), Some(&json!({"served_by": 7})));
    assert_eq!(status, 400, "{body}");
    let viewer = crate::api::bearer(&cloud, &api, "watcher", "viewer", &["Lab"]);
    let (status, body) = api.call(
        "POST",
        path,
        Some(&viewer),
        Some(&json!({"servedBy": "cloud"})),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = api.call(
        "POST",
        path,
        Some(&admin),
        Some(&json!({"servedBy": "site-a"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previously"], json!(["site-b"]), "{body}");
    let (status, body) = api.call(
        "POST",
        path,
        Some(&admin),
        Some(&json!({"servedBy": "site-a"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    // Back to the cloud: its tokens work there again.
    cloud.cli_ok(&["va", "serve", "Lab", "--by", "cloud"]);
    let token = cloud.token("Lab", &[]);
    register(&cloud, "FOCBACK1", &token);

    // A database from before the rule, where two satellites serve Lab2:
    // named at each of their syncs, never silently.
    cloud.db().execute(
        "INSERT INTO satellite_virtual_accounts (satellite_id, virtual_account_id)
         SELECT s.id, va.id FROM satellites s, virtual_accounts va
         WHERE s.name = 'site-a' AND va.name = 'Lab2'",
    );
    round_trip(&cloud, &a);
    let events = json_of(&cloud.cli_ok(&["events", "--json", "--limit", "1000"]));
    assert!(
        events.as_array().expect("events").iter().any(|e| {
            e["severity"] == "major"
                && e["message"].as_str().is_some_and(|m| {
                    m.contains("\"Lab2\" is served by 2 satellites (site-a, site-b)")
                        && m.contains("satellite va serve Lab2 --by NAME")
                })
        }),
        "{events}"
    );
}
