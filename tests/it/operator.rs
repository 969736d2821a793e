//! Operator-facing behaviour: where the configuration is found, what a
//! command does where there is no satellite, the clock's high-water mark,
//! usage errors, logs, banners and `/metrics`.

use crate::client::register;
use crate::fixture::{cloud_config, rfc3339_now, Server, BASE_CONFIG};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The real binary in `dir`, with no configuration inherited from the environment.
fn satellite(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_satellite"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("SATELLITE_CONFIG")
        .env_remove(satellite::clock::NOW_ENV);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run satellite")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_command_where_there_is_no_satellite_changes_nothing_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["status"][..],
        &["token", "create", "--va", "Default"],
        &["va", "list"],
        &["events"],
    ] {
        let out = satellite(dir.path(), args, &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} must fail");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("satellite init")
                && err.contains("SATELLITE_CONFIG")
                && err.contains("/etc/satellite/satellite.yaml"),
            "names where it looked and the fix: {err}"
        );
        assert!(
            entries(dir.path()).is_empty(),
            "{args:?} created {:?}",
            entries(dir.path())
        );
    }
    // A configuration whose data dir does not exist yet: still nothing created.
    std::fs::write(dir.path().join("satellite.yaml"), BASE_CONFIG).expect("write");
    let out = satellite(dir.path(), &["token", "create", "--va", "Default"], &[]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("satellite.db") && err.contains("satellite.yaml"),
        "{err}"
    );
    assert_eq!(entries(dir.path()), ["satellite.yaml"]);
}

#[test]
fn satellite_config_names_the_configuration_without_c() {
    let server = Server::start();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let config = server.config_path.to_string_lossy().into_owned();
    let now = rfc3339_now(&server.clock);
    let env = [
        ("SATELLITE_CONFIG", config.as_str()),
        (satellite::clock::NOW_ENV, now.as_str()),
    ];
    let out = satellite(elsewhere.path(), &["status", "--json"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["name"], "test-satellite", "{status}");
    let out = satellite(
        elsewhere.path(),
        &["token", "create", "--va", "Default", "--json"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server
            .cli_ok(&["token", "list", "--json"])
            .matches("token_prefix")
            .count(),
        1,
        "the token went to the server's database"
    );
    assert!(entries(elsewhere.path()).is_empty());

    let missing = elsewhere.path().join("nope.yaml");
    let missing = missing.to_string_lossy();
    let out = satellite(
        elsewhere.path(),
        &["status"],
        &[("SATELLITE_CONFIG", &missing)],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("SATELLITE_CONFIG"),
        "{}",
        stderr(&out)
    );
}

/// Starts `serve` in `dir` and returns it with its banner once printed.
fn spawn_serve(dir: &Path, now: Option<&str>) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_satellite"));
    command
        .current_dir(dir)
        .arg("serve")
        .env_remove("SATELLITE_CONFIG")
        .env_remove(satellite::clock::NOW_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(now) = now {
        command.env(satellite::clock::NOW_ENV, now);
    }
    let mut child = command.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("instance list") {
            break;
        }
    }
    (child, banner)
}

/// SIGTERM, then the exit status and everything it wrote to stderr.
fn stop(mut child: Child) -> String {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
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
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err).expect("stderr");
    }
    err
}

fn future(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[test]
fn serve_refuses_a_clock_more_than_a_day_behind_what_the_database_has_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = BASE_CONFIG.replace("log: { level: warn }", "log: { level: info }");
    std::fs::write(dir.path().join("satellite.yaml"), yaml).expect("write");
    // A rehearsal on the live database: serve a month ahead, then stop.
    let (child, banner) = spawn_serve(dir.path(), Some(&future(30)));
    assert!(banner.contains("device API"), "{banner}");
    let log = stop(child);
    // Logs are for journald and files here: no colour codes.
    assert!(log.contains("listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI codes in a piped log: {log:?}"
    );

    let db = rusqlite::Connection::open(dir.path().join("data/satellite.db")).expect("db");
    let events_before: i64 = db
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    let out = Command::new(env!("CARGO_BIN_EXE_satellite"))
        .current_dir(dir.path())
        .arg("serve")
        .env_remove(satellite::clock::NOW_ENV)
        .env_remove("SATELLITE_CONFIG")
        .output()
        .expect("serve");
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "a clock a month behind must be refused"
    );
    assert!(
        err.contains("behind") && err.contains("restore") && err.contains("README"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let events_after: i64 = db
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        events_before, events_after,
        "a refused start writes nothing"
    );
    // Within a day is tolerated (hosts differ a little).
    let (child, banner) = spawn_serve(dir.path(), Some(&future(29)));
    assert!(banner.contains("device API"), "{banner}");
    stop(child);
}

/// Polls `query` (a COUNT) until it reaches `want`; the server's clock
/// guard ticks every five seconds.
fn wait_for(db: &crate::fixture::TestDb, query: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = db.one(query);
        if n >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{query} stayed at {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_clock_set_back_while_running_is_recorded_and_extends_nothing() {
    let server = Server::start();
    let db = server.db();
    let token = server.token("Default", &["--days", "1"]);
    // Two days on: the token has expired, and the server has seen that time.
    server.clock.advance(time::Duration::days(2));
    let seen = server.clock.unix();
    wait_for(
        &db,
        &format!("SELECT COUNT(*) FROM settings WHERE key = 'clock.high_water' AND CAST(value AS INTEGER) >= {seen}"),
        1,
    );
    // Then the clock is set back five days.
    server.clock.advance(time::Duration::days(-5));
    wait_for(
        &db,
        "SELECT COUNT(*) FROM events WHERE kind = 'clock' AND severity = 'major'",
        1,
    );
    assert!(
        server.clock.unix() >= seen,
        "the server's clock must not go back"
    );
    // The expired token stays expired for the server.
    let key = crate::client::p256();
    let (status, answer) = server.device().post(&crate::client::registration(
        "reg-back",
        "SN-BACK",
        &token,
        &crate::client::csr(&key),
    ));
    assert_eq!(status, 401, "{answer}");
    assert_eq!(crate::client::error_code(&answer), "token_expired");
    let events = server.cli_ok(&["events", "--kind", "clock"]);
    assert!(events.contains("behind"), "{events}");
}

#[test]
fn usage_errors_are_one_line_with_exit_2_and_help_still_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["token", "create"][..],
        &["bogus"],
        &["token", "create", "--va", "Default", "--days", "many"],
        &["report", "show", "1", "--format", "pdf"],
    ] {
        let out = satellite(dir.path(), args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--help"), "says where to read more: {err}");
    }
    for args in [
        &["--help"][..],
        &["--version"],
        &["token", "create", "--help"],
    ] {
        let out = satellite(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn report_show_json_history_bounds_event_kinds_and_the_text_header() {
    let (server, _token) = Server::cloud_with_lab("5");
    server.cli_ok(&["va", "create", "Engineering-Lab-Building-Seven"]);
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Engineering-Lab-Building-Seven",
        "--sku",
        "N540-24Z8Q2C-FC-SW",
        "--quantity",
        "12345",
    ]);
    let generated: Value =
        serde_json::from_str(&server.cli_ok(&["report", "generate", "--json"])).expect("json");
    let id = generated["id"].to_string();
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["report", "show", &id, "--json"])).expect("json");
    assert_eq!(shown["id"], generated["id"]);

    let text = server.cli_ok(&["report", "show", &id]);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Virtual Account  "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(table.len() >= 3, "{text}");
    for line in &table {
        let columns: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(columns.len(), 6, "columns run together in {line:?}\n{text}");
    }

    for days in ["0", "451"] {
        let out = server.cli(&["compliance", "--history", days]);
        assert!(!out.status.success(), "--history {days}");
        assert!(stderr(&out).contains("450"), "{}", stderr(&out));
    }
    // Today's row is live: the licenses were added after today's snapshot.
    let history: Value =
        serde_json::from_str(&server.cli_ok(&["compliance", "--history", "1", "--json"]))
            .expect("json");
    let lab = history
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["virtual_account"] == "Lab")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(lab["available"], 5, "{history}");

    let out = server.cli(&["events", "--kind", "registrations"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("registrations")
            && err.contains("registration,")
            && err.contains("license_transfer"),
        "{err}"
    );
    assert!(server
        .cli(&["events", "--kind", "license"])
        .status
        .success());
}

#[test]
fn license_add_warns_of_an_ended_term_and_transfer_merges_rows() {
    let (server, _token) = Server::cloud_with_lab("5");
    let out = server.cli(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-SIA-3",
        "--quantity",
        "2",
        "--start",
        "2015-01-01",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("ended"),
        "{}",
        stderr(&out)
    );
    let current = server.cli(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-SIA-3",
        "--quantity",
        "2",
    ]);
    assert!(
        !stderr(&current).contains("warning"),
        "{}",
        stderr(&current)
    );

    let rows = |va: &str| -> Vec<Value> {
        let list: Value =
            serde_json::from_str(&server.cli_ok(&["license", "list", "--va", va, "--json"]))
                .expect("json");
        list.as_array()
            .expect("array")
            .iter()
            .filter(|l| l["sku"] == "ESS-AC-10G-RTU-1")
            .cloned()
            .collect()
    };
    for quantity in ["2", "1"] {
        server.cli_ok(&[
            "license",
            "transfer",
            "--from",
            "Lab",
            "--to",
            "Default",
            "--sku",
            "ESS-AC-10G-RTU-1",
            "--quantity",
            quantity,
        ]);
    }
    let default = rows("Default");
    assert_eq!(
        default.len(),
        1,
        "one row, not one per transfer: {default:?}"
    );
    assert_eq!(default[0]["quantity"], 3);
    server.cli_ok(&[
        "license",
        "transfer",
        "--from",
        "Default",
        "--to",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "3",
    ]);
    let lab = rows("Lab");
    assert_eq!(lab.len(), 1, "{lab:?}");
    assert_eq!(lab[0]["quantity"], 5);
    assert!(rows("Default").is_empty());
}

#[test]
fn the_cloud_banner_suggests_adding_licenses() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("satellite.yaml"), cloud_config()).expect("write");
    let (child, banner) = spawn_serve(dir.path(), None);
    assert!(
        banner.contains("license add --va Default --sku"),
        "{banner}"
    );
    assert!(banner.contains("token create"), "{banner}");
    stop(child);
}

#[test]
fn a_public_admin_listener_uses_the_ca_signed_server_certificate() {
    let yaml = BASE_CONFIG.replace(
        "admin: { listen: 127.0.0.1:0 }",
        "admin: { listen: 0.0.0.0:0 }",
    );
    assert_ne!(yaml, BASE_CONFIG);
    // Starting at all is the point: today the configuration is refused.
    let server = Server::start_with(&yaml);
    let health = crate::client::agent(&server.ca_path(), None)
        .get(&format!("{}/healthz", server.admin_url))
        .call()
        .expect("healthz over TLS, trusting only ca.pem");
    assert_eq!(health.status(), 200);
}

#[test]
fn metrics_show_instances_by_status_the_build_and_latency_per_message_type() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "SN-LATENCY", &token);
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "e1",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}],
    }));
    assert_eq!(status, 200, "{answer}");
    // Silent past the 90-day communication deadline.
    server.clock.advance(time::Duration::days(91));
    let metrics = server.metrics();
    for expected in [
        r#"satellite_product_instances{virtual_account="Default",status="AUTHORIZATION_EXPIRED"} 1"#,
        r#"satellite_product_instances{virtual_account="Default",status="AUTHORIZED"} 0"#,
        "satellite_build_info{version=\"",
        r#"satellite_device_message_duration_seconds_count{type="REGISTRATION"} 1"#,
        r#"satellite_device_message_duration_seconds_count{type="ENTITLEMENT"} 1"#,
        r#"satellite_device_message_duration_seconds_bucket{type="ENTITLEMENT",le="+Inf"} 1"#,
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
}
