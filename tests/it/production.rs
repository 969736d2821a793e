//! Production hardening: refused starts create nothing, hostile load does
//! not starve routers or the admin listener, the database survives faults,
//! backup and restore.

use crate::fixture::Server;
use std::path::Path;
use std::process::{Command, Output};

/// `satellite -c CONFIG ARGS` as a real process.
fn satellite(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run satellite")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every bad start-up the field reported: refused with one short line, and
/// nothing (data dir, CA, keys, database) created.
#[test]
fn a_refused_start_creates_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port();
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for n in 1..60 {
        let p = n - 1;
        bomb.push_str(&format!(
            "a{n}: &a{n} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let base = "name: s\ndata_dir: ./data\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{base}log: {{ level: verbose }}\n"),
            "log.level",
            "not a log level",
        ),
        (
            format!("{base}device: {{ listen: 127.0.0.1:{busy_port} }}\nadmin: {{ listen: 127.0.0.1:0 }}\n"),
            "device.listen",
            "cannot listen",
        ),
        (
            format!("{base}device: {{ listen: 127.0.0.1:14443 }}\nadmin: {{ listen: 127.0.0.1:14443 }}\n"),
            "admin.listen",
            "overlaps",
        ),
        (
            format!("{base}device: {{ listen: 127.0.0.1:0, tls_cert: nope.pem, tls_key: nope.key }}\nadmin: {{ listen: 127.0.0.1:0 }}\n"),
            "device.tls_cert",
            "not a readable file",
        ),
        (
            format!("{base}device: {{ listen: 127.0.0.1:0, tls_cert: bad.pem, tls_key: bad.pem }}\nadmin: {{ listen: 127.0.0.1:0 }}\n"),
            "bad.pem",
            "PEM",
        ),
        (format!("{base}{bomb}"), "anchor", "not accepted"),
        (
            format!("{base}log: {{ level: info }}\nname: t\n"),
            "name",
            "duplicate key",
        ),
        (
            format!("{base}reports: {{ schedule: '0 0 99 * * *' }}\n"),
            "reports.schedule",
            "cron",
        ),
    ];
    for (yaml, key, reason) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bad.pem"), "not a certificate\n").expect("write");
        let config = dir.path().join("satellite.yaml");
        std::fs::write(&config, &yaml).expect("write");
        let out = satellite(&config, &["serve"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{key}: must be refused");
        assert!(err.contains(key) && err.contains(reason), "{key}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.len() < 400, "short: {err}");
        for made in ["data", "export", "import"] {
            assert!(
                !dir.path().join(made).exists(),
                "{key}: a refused start created {made}/"
            );
        }
    }
    drop(busy);
}

/// A license count that would overflow every later sum is refused, naming the limit.
#[test]
fn license_quantities_have_an_upper_bound() {
    let server = Server::start_with(&crate::fixture::cloud_config());
    let add = |quantity: &str| {
        server.cli(&[
            "license",
            "add",
            "--va",
            "Default",
            "--sku",
            "ESS-AC-10G-RTU-1",
            "--quantity",
            quantity,
        ])
    };
    let out = add("9223372036854775807");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at most 1000000"), "{}", stderr(&out));
    assert!(add("1000000").status.success());
    assert!(add("5").status.success(), "later adds keep working");
}
