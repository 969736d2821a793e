//! Two satellite nodes on one PostgreSQL database: exactly one is active
//! (serves routers, runs the jobs), the other's `/readyz` says `standby`
//! and it takes over by itself when the active one stops or loses its
//! database session.

use crate::client::{register, Device};
use crate::fixture::{Server, BASE_CONFIG};
use serde_json::json;
use std::time::{Duration, Instant};

/// A configuration on a database of its own in the run's cluster, with an
/// absolute password file both nodes read. None: no PostgreSQL here.
fn pair_config(secrets: &std::path::Path) -> Option<String> {
    if !crate::postgres::available("pair") {
        return None;
    }
    let (url, password) = crate::postgres::shared_database();
    let file = secrets.join("db-password");
    std::fs::write(&file, password).expect("password file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Some(format!(
        "{BASE_CONFIG}storage: {{ backend: postgres, url: \"{url}\", password_file: {} }}\n",
        file.display()
    ))
}

/// Waits until `node` answers `/readyz` with `status`; how long it took.
fn until_ready(node: &Server, status: u16, within: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let (now, body) = node.readyz();
        if now == status {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < within,
            "{} stayed at {now} {body}",
            node.admin_url
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn entitlement(router: &Device, id: &str) -> (u16, serde_json::Value) {
    router.post(&json!({"type": "ENTITLEMENT", "message_id": id,
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]}))
}

#[test]
fn the_standby_takes_over_when_the_active_node_stops_or_loses_its_session() {
    if crate::fixture::runs_once("the pair") {
        return;
    }
    let secrets = tempfile::tempdir().expect("tempdir");
    let Some(yaml) = pair_config(secrets.path()) else {
        return;
    };
    let first = Server::start_with(&yaml);
    let token = first.token("Default", &[]);
    let router = register(&first, "FOCPAIR0001", &token);
    let (status, answer) = entitlement(&router.client, "pair-1");
    assert_eq!(status, 200, "{answer}");

    let second = Server::start_second_node(&first);
    let (status, body) = second.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"standby\""), "{body}");
    // Routers pointed at the standby are told so and nothing is recorded.
    let at_second = Device::new(
        &second.device_url,
        &second.ca_path(),
        Some((&router.certificate, &router.key)),
    );
    let (status, answer) = entitlement(&at_second, "pair-standby");
    assert_eq!(
        (status, crate::client::error_code(&answer)),
        (503, "standby"),
        "{answer}"
    );
    assert!(second
        .metrics()
        .contains("satellite_node_info{backend=\"postgres\",role=\"standby\"} 1"));
    let status = json_of(&second.cli_ok(&["status", "--json"]));
    assert_eq!(status["storage"]["node"]["role"], "standby", "{status}");
    assert_eq!(status["storage"]["backend"], "postgres", "{status}");

    // The active node stops: the standby serves the same routers, with the
    // same CA, within seconds.
    // (Dropped whole: the fixture keeps a handle on the store, as a
    // process keeps its own until it exits.)
    drop(first);
    let took = until_ready(&second, 200, Duration::from_secs(10));
    eprintln!(
        "standby took over {} ms after the active node stopped",
        took.as_millis()
    );
    let (status, answer) = entitlement(&at_second, "pair-2");
    assert_eq!(status, 200, "{answer}");
    assert!(second
        .metrics()
        .contains("satellite_node_info{backend=\"postgres\",role=\"active\"} 1"));
    // The takeover is recorded by the node within a moment of it.
    let began = Instant::now();
    loop {
        let status = json_of(&second.cli_ok(&["status", "--json"]));
        if status["storage"]["node"]["role"] == "active" {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(5), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = second.cli_ok(&["events", "--kind", "system"]);
    assert!(events.contains("is now the active node"), "{events}");

    // A node whose session the database ends stops serving at once; the
    // other takes over, and never do both answer ready.
    let third = Server::start_second_node(&second);
    until_ready(&third, 503, Duration::from_secs(5));
    let killed = second.db().one::<i64>(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid = 1518206978 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) ended",
    );
    assert_eq!(killed, 1, "the leader's session");
    let began = Instant::now();
    loop {
        let ready: Vec<bool> = [&second, &third]
            .iter()
            .map(|n| n.readyz().0 == 200)
            .collect();
        assert!(!(ready[0] && ready[1]), "two nodes ready at once");
        if ready.iter().any(|r| *r) && began.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no node took over"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let serving = if second.readyz().0 == 200 {
        &second
    } else {
        &third
    };
    let router_there = Device::new(
        &serving.device_url,
        &serving.ca_path(),
        Some((&router.certificate, &router.key)),
    );
    let (status, answer) = entitlement(&router_there, "pair-3");
    assert_eq!(status, 200, "{answer}");
    // Every acknowledged message is in the database once.
    let recorded: i64 = serving.db().one(
        "SELECT COUNT(*) FROM device_messages WHERE message_id IN ('pair-1', 'pair-2', 'pair-3')",
    );
    assert_eq!(recorded, 3);
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("json")
}

/// The files in `dir`, by name.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_database_out_of_reach_refused_or_newer_stops_the_start_in_one_line_creating_nothing() {
    if crate::fixture::runs_once("PostgreSQL refusals at start") {
        return;
    }
    let secrets = tempfile::tempdir().expect("tempdir");
    let Some(yaml) = pair_config(secrets.path()) else {
        return;
    };
    let satellite = |dir: &std::path::Path, yaml: &str, args: &[&str]| {
        std::fs::write(dir.join("satellite.yaml"), yaml).expect("config");
        std::process::Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(dir.join("satellite.yaml"))
            .args(args)
            .output()
            .expect("satellite")
    };
    let one_line = |out: &std::process::Output, says: &[&str]| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        for word in says {
            assert!(err.contains(word), "{word:?} in {err}");
        }
        assert!(!err.contains("test run database password"), "{err}");
    };

    // Nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url_start = yaml.find("postgresql://").expect("url");
    let url_end = url_start + yaml[url_start..].find('"').expect("quote");
    let url = &yaml[url_start..url_end];
    let closed = yaml.replace(
        url,
        &format!("postgresql://satellite@127.0.0.1:{port}/nowhere"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    one_line(
        &satellite(dir.path(), &closed, &["init"]),
        &["cannot reach the database", "storage.url"],
    );
    assert_eq!(files_in(dir.path()), ["satellite.yaml"], "nothing created");

    // The wrong password.
    let wrong = secrets.path().join("wrong-password");
    std::fs::write(&wrong, "not the password").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let refused = yaml.replace(
        &secrets.path().join("db-password").display().to_string(),
        &wrong.display().to_string(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    one_line(
        &satellite(dir.path(), &refused, &["init"]),
        &["password", "storage.password_file"],
    );
    assert_eq!(files_in(dir.path()), ["satellite.yaml"], "nothing created");

    // A schema written by a newer version.
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(satellite(dir.path(), &yaml, &["init"]).status.success());
    crate::fixture::TestDb::of(&dir.path().join("satellite.yaml"))
        .execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')");
    one_line(
        &satellite(dir.path(), &yaml, &["status"]),
        &["newer version", "schema 99"],
    );
    let again = tempfile::tempdir().expect("tempdir");
    one_line(
        &satellite(again.path(), &yaml, &["init"]),
        &["newer version"],
    );
    assert_eq!(
        files_in(again.path()),
        ["satellite.yaml"],
        "nothing created"
    );
}
