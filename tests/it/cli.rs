use crate::fixture::{Server, BASE_CONFIG};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn satellite(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_satellite"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run satellite")
}

#[test]
fn bad_configuration_is_refused_with_file_key_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (yaml, key) in [
        (
            "device: { listen: 127.0.0.1:0, lisen: x }\n",
            "device.lisen",
        ),
        ("device: { listen: 'here:there' }\n", "device.listen"),
        ("reports: { schedule: 'every day' }\n", "reports.schedule"),
        ("sync: { mode: connected }\n", "sync.cloud_url"),
    ] {
        std::fs::write(dir.path().join("bad.yaml"), yaml).expect("write");
        let out = satellite(dir.path(), &["-c", "bad.yaml", "status"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(&format!("bad.yaml: {key}: ")),
            "{yaml} -> {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn a_second_init_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("satellite.yaml"), BASE_CONFIG).expect("write");
    let first = satellite(dir.path(), &["init"]);
    assert!(first.status.success());
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("bootstrap admin credential"), "{out}");
    let data = dir.path().join("data");
    let read = |name: &str| std::fs::read(data.join(name)).expect(name);
    let (ca, key, server) = (read("ca.pem"), read("ca.key"), read("server.pem"));
    use std::os::unix::fs::PermissionsExt;
    for secret in ["ca.key", "server.key", "satellite.db"] {
        let mode = std::fs::metadata(data.join(secret))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }
    let second = satellite(dir.path(), &["init"]);
    assert!(second.status.success());
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(
        out.contains("nothing was changed") && !out.contains("credential"),
        "{out}"
    );
    assert_eq!(
        (ca, key, server),
        (read("ca.pem"), read("ca.key"), read("server.pem"))
    );
}

#[test]
fn tokens_list_only_their_prefix_and_json_has_the_contract_fields() {
    let server = Server::start();
    let created: serde_json::Value = serde_json::from_str(&server.cli_ok(&[
        "token",
        "create",
        "--va",
        "Default",
        "--days",
        "7",
        "--max-uses",
        "3",
        "--description",
        "lab",
        "--json",
    ]))
    .expect("json");
    let token = created["token"].as_str().expect("token");
    assert_eq!(created["virtual_account"], "Default");
    assert!(created["expires_at"].is_string());
    let listing = server.cli_ok(&["token", "list", "--json"]);
    assert!(
        !listing.contains(token),
        "a listing must not show the secret"
    );
    assert!(listing.contains(&token[..10]));
    let table = server.cli_ok(&["token", "list"]);
    assert!(!table.contains(token));

    for (args, why) in [
        (
            vec!["token", "create", "--va", "Default", "--days", "0"],
            "0 days",
        ),
        (
            vec!["token", "create", "--va", "Default", "--days", "366"],
            "366 days",
        ),
        (vec!["token", "create", "--va", "Nowhere"], "unknown VA"),
        (vec!["token", "revoke", "short"], "short prefix"),
    ] {
        let out = server.cli(&args);
        assert!(!out.status.success(), "{why} must fail");
        assert!(!out.stderr.is_empty(), "{why} must say why");
    }

    server.cli_ok(&["va", "create", "Lab"]);
    let lab = server.token("Lab", &[]);
    assert!(!lab.is_empty());
    assert!(
        !server.cli(&["va", "create", "Lab"]).status.success(),
        "duplicate VA"
    );
}

#[test]
fn serve_prints_where_it_listens_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("satellite.yaml"), BASE_CONFIG).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_satellite"))
        .current_dir(dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("instance list") {
            break;
        }
    }
    assert!(
        banner.contains("device API: https://127.0.0.1:"),
        "{banner}"
    );
    assert!(banner.contains("ca.pem"), "{banner}");
    assert!(banner.contains("token create"), "{banner}");
    assert!(banner.contains("portal:"), "{banner}");
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_naming_the_first() {
    let server = Server::start();
    let mut second = Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(&server.config_path)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second server");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second server on the same data dir kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
        .expect("read");
    assert!(!status.success());
    assert!(stderr.contains("already serving"), "{stderr}");
    assert!(
        stderr.contains(&std::process::id().to_string()),
        "names the first server's pid: {stderr}"
    );
    // The first one still serves.
    assert!(!server.cli_ok(&["status", "--json"]).is_empty());
    let restore = server.cli(&["restore", "/nonexistent-backup.zip"]);
    assert!(!restore.status.success());
    assert!(String::from_utf8_lossy(&restore.stderr).contains("already serving"));
}

/// The catalog is listed (built in, from the catalog file, from the cloud),
/// completions need no satellite, and `--version` names the commit.
#[test]
fn the_catalog_completions_and_version_are_there_to_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("extra.yaml"),
        "tags:\n  - { tag: LAB-TAG, category: essential, description: Lab tag }\n\
         skus:\n  - { sku: LAB-SKU-1, tag: LAB-TAG, term_years: 2, description: Lab SKU }\n",
    )
    .expect("catalog file");
    let server = Server::start_with(&format!(
        "{BASE_CONFIG}catalog: {}\n",
        dir.path().join("extra.yaml").display()
    ));
    let out = server.cli_ok(&["catalog", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
    let find = |sku: &str| {
        rows.as_array()
            .and_then(|r| r.iter().find(|row| row["sku"] == sku).cloned())
            .unwrap_or_else(|| panic!("{sku} not listed: {rows}"))
    };
    let ess = find("ESS-AC-10G-RTU-1");
    assert_eq!(
        (
            ess["tag"].as_str(),
            ess["category"].as_str(),
            ess["term_years"].is_null()
        ),
        (Some("ESS-AC-10G-RTU-1"), Some("essential"), true)
    );
    assert_eq!(find("ESS-AC-10G-SIA-5")["term_years"], 5);
    let lab = find("LAB-SKU-1");
    assert_eq!(
        (lab["tag"].as_str(), lab["term_years"].as_u64()),
        (Some("LAB-TAG"), Some(2))
    );
    let table = server.cli_ok(&["catalog", "list"]);
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("SKU")),
        "{table}"
    );

    let empty = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish"] {
        let out = satellite(empty.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("satellite") && script.contains("rotate-signer"),
            "{shell}"
        );
    }
    let version = satellite(empty.path(), &["--version"]);
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with("satellite 0.") && version.contains("commit "),
        "{version}"
    );
}
