//! The router emulator, a real client of the device API, against a real server.

use crate::fixture::{cloud_config, openssl_verify, rfc3339_now, Server};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

struct Router<'a> {
    server: &'a Server,
    state: PathBuf,
    /// The emulator's clock offset from the server's, for eval-period tests.
    at: Option<String>,
}

impl<'a> Router<'a> {
    fn init(server: &'a Server, sn: &str, extra: &[&str]) -> Self {
        let router = Router {
            server,
            state: server.dir.path().join(format!("{sn}.json")),
            at: None,
        };
        let ca = server.ca_path();
        let mut args = vec![
            "init",
            "--pid",
            "N540-24Z8Q2C-M",
            "--sn",
            sn,
            "--hostname",
            sn,
            "--url",
            &server.device_url,
        ];
        args.extend(["--ca", ca.to_str().expect("utf8 path")]);
        args.extend_from_slice(extra);
        router.ok(&args);
        router
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let now = self
            .at
            .clone()
            .unwrap_or_else(|| rfc3339_now(&self.server.clock));
        Command::new(env!("CARGO_BIN_EXE_satellite-router"))
            .arg("-s")
            .arg(&self.state)
            .args(args)
            .env(satellite::clock::NOW_ENV, now)
            .output()
            .expect("run satellite-router")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "satellite-router {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn words(&self, line: &str) -> String {
        self.ok(&line.split_whitespace().collect::<Vec<_>>())
    }

    fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).expect("state")).expect("json")
    }
}

fn compliance(server: &Server, va: &str, tag: &str) -> Value {
    let rows: Value =
        serde_json::from_str(&server.cli_ok(&["compliance", "--json"])).expect("json");
    rows.as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["virtual_account"] == va && r["tag"] == tag)
                .cloned()
        })
        .unwrap_or(Value::Null)
}

#[test]
fn the_emulator_registers_and_shows_its_status_like_ios() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = Router::init(&server, "FOC2104R0XX", &[]);
    assert!(router
        .words("show license status")
        .contains("  Status: UNREGISTERED"));
    router.ok(&["license", "smart", "register", "idtoken", &token]);

    let status = router.words("show license status");
    assert!(
        status.contains("Registration:\n  Status: REGISTERED"),
        "{status}"
    );
    assert!(status.contains("  Virtual Account: Default"), "{status}");
    assert!(router
        .words("show license udi")
        .contains("UDI: PID:N540-24Z8Q2C-M,SN:FOC2104R0XX"));
    let all = router.words("show license all");
    assert!(
        all.contains("Product Information:") && all.contains("Agent Version:"),
        "{all}"
    );

    let state = router.state();
    let cert = state["registration"]["certificate_pem"]
        .as_str()
        .expect("certificate in the state file");
    assert!(openssl_verify(&server.ca_path(), cert));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&router.state)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the state file holds the router's key");

    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["udi"], "PID:N540-24Z8Q2C-M,SN:FOC2104R0XX");

    router.words("license smart renew id");
    let renewed = router.state()["registration"]["certificate_pem"]
        .as_str()
        .expect("cert")
        .to_string();
    assert_ne!(renewed, cert);
    assert!(openssl_verify(&server.ca_path(), &renewed));

    let out = router.words("license smart deregister");
    assert!(out.contains("license smart deregister: Success"), "{out}");
    let status = router.words("show license status");
    assert!(
        status.contains("  Status: UNREGISTERED")
            && status.contains("Evaluation Period Remaining: 30 days"),
        "{status}"
    );
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
    let stats = router.words("show call-home smart-licensing statistics");
    assert!(
        stats.contains("Msg Subtype") && stats.contains("DEREGISTRATION"),
        "{stats}"
    );
}

#[test]
fn a_token_problem_is_reported_with_its_code() {
    let server = Server::start();
    let router = Router::init(&server, "BADTOKEN", &[]);
    let out = router.run(&[
        "license",
        "smart",
        "register",
        "idtoken",
        "not-a-real-token-at-all",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token_unknown"), "{stderr}");
}

#[test]
fn the_call_home_transport_carries_the_same_messages() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = Router::init(&server, "CALLHOME", &["--transport", "callhome"]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    assert!(router
        .words("show license status")
        .contains("Status: REGISTERED"));
    router.words("license request ESS-AC-10G-RTU-1 2");
    router.words("license smart deregister");
    let bad = router.run(&[
        "license",
        "smart",
        "register",
        "idtoken",
        "nope-nope-nope-nope",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("token_unknown"));
}

#[test]
fn ten_units_in_lab_authorize_ten_and_report_the_eleventh() {
    let server = Server::start_with(&cloud_config());
    server.cli_ok(&["va", "create", "Lab"]);
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "10",
    ]);
    let token = server.token("Lab", &[]);
    let first = Router::init(&server, "LAB1", &[]);
    first.ok(&["license", "smart", "register", "idtoken", &token]);
    first.words("license request ESS-AC-10G-RTU-1 10");
    assert!(first
        .words("show license status")
        .contains("Status: AUTHORIZED on"));

    let second = Router::init(&server, "LAB2", &[]);
    second.ok(&["license", "smart", "register", "idtoken", &token]);
    second.words("license request ESS-AC-10G-RTU-1 1");
    assert!(second
        .words("show license status")
        .contains("Status: OUT OF COMPLIANCE on"));
    let row = compliance(&server, "Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (
            row["available"].as_i64(),
            row["in_use"].as_i64(),
            row["shortfall"].as_i64(),
            row["status"].as_str()
        ),
        (Some(10), Some(11), Some(1), Some("Out of Compliance")),
        "{row}"
    );
    let reports = server.cli_ok(&["report", "list"]);
    assert!(reports.contains("Compliance Warning Report"), "{reports}");
    assert!(server
        .cli_ok(&["events", "--kind", "compliance"])
        .contains("ESS-AC-10G-RTU-1"));
}

#[test]
fn flexible_consumption_requests_the_right_counts() {
    let server = Server::start_with(&cloud_config());
    let token = server.token("Default", &[]);
    let router = Router::init(&server, "FCM1", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license smart flexible-consumption enable");
    router.words("ports add 24 10G");
    router.words("ports add 2 100G");
    for port in 0..4 {
        router.words(&format!("interface TenGigE0/0/0/{port} feature l3vpn"));
    }
    router.words("license platform check");
    // Essentials, every active port, one unit per started 10 Gb:
    //   24 x 10G -> 24 x 1 = 24, 2 x 100G -> 2 x 10 = 20: 44 RTU and 44 SIA.
    // Advanced, only the 4 L3VPN ports (10G each): 4 RTU and 4 SIA.
    // Tracking: one chassis.
    for (tag, expected) in [
        ("ESS-AC-10G-RTU-1", 44),
        ("ESS-AC-10G-SIA", 44),
        ("ADV-AC-10G-RTU-1", 4),
        ("ADV-AC-10G-SIA", 4),
        ("N540-24Z8Q2C-FC-SW", 1),
    ] {
        assert_eq!(
            compliance(&server, "Default", tag)["in_use"].as_i64(),
            Some(expected),
            "{tag}"
        );
    }
    assert_eq!(
        compliance(&server, "Default", "N540-24Z8Q2C-FC-SW")["status"],
        "In Compliance",
        "tracking is never short"
    );
    let summary = router.words("show license platform summary");
    assert!(
        summary.contains("Access Essentials SW Right-to-Use v1.0 per 10G"),
        "{summary}"
    );
    let detail = router.words("show license platform detail");
    assert!(detail.contains("44"), "{detail}");
}

#[test]
fn the_evaluation_period_counts_down_on_the_emulator() {
    let server = Server::start();
    let mut router = Router::init(&server, "EVAL", &[]);
    let start = server.clock.now();
    let at = |days: i64| {
        (start + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    router.at = Some(at(0));
    assert!(router
        .words("show license status")
        .contains("Evaluation Period Remaining: 90 days"));
    // Evaluation is consumed while licenses are in use, unregistered.
    router.words("license request ESS-AC-10G-RTU-1 1");
    router.at = Some(at(10));
    let status = router.words("show license status");
    assert!(
        status.contains("Evaluation Period Remaining: 80 days"),
        "{status}"
    );
    router.at = Some(at(91));
    let status = router.words("show license status");
    assert!(status.contains("EVALUATION PERIOD EXPIRED on"), "{status}");
}
