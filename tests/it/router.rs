//! The router emulator, a real client of the device API, against a real server.

use crate::fixture::{cloud_config, openssl_verify, rfc3339_now, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

struct Router<'a> {
    server: &'a Server,
    state: PathBuf,
    /// The emulator's clock offset from the server's, for eval-period tests.
    at: Option<String>,
}

impl<'a> Router<'a> {
    fn init(server: &'a Server, sn: &str, extra: &[&str]) -> Self {
        Self::init_at(server, sn, &server.device_url, extra)
    }

    /// `init` with the URL given as written, e.g. with a path.
    fn init_at(server: &'a Server, sn: &str, url: &str, extra: &[&str]) -> Self {
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
            url,
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

/// The whitespace-separated words of the first line containing `needle`.
fn row(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {text}"))
        .split_whitespace()
        .map(String::from)
        .collect()
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
fn routers_take_the_url_an_ios_router_is_given() {
    let server = Server::start();
    let smart = format!("{}/SmartTransport", server.device_url);
    let router = Router::init_at(&server, "URLSMART", &smart, &[]);
    router.ok(&[
        "license",
        "smart",
        "register",
        "idtoken",
        &server.token("Default", &[]),
    ]);
    assert!(router
        .words("show license status")
        .contains("Status: REGISTERED"));
    assert_eq!(router.state()["endpoint"]["transport"], "smart");

    let call_home = format!(
        "{}/Transportgateway/services/DeviceRequestHandler",
        server.device_url
    );
    let router = Router::init_at(&server, "URLCALLHOME", &call_home, &[]);
    assert_eq!(router.state()["endpoint"]["transport"], "callhome");
    router.ok(&[
        "license",
        "smart",
        "register",
        "idtoken",
        &server.token("Default", &[]),
    ]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let stats = router.words("show call-home smart-licensing statistics");
    let entitlement = row(&stats, "ENTITLEMENT");
    assert!(
        entitlement[1] != "0" && entitlement[2] == "0",
        "sent and answered: {stats}"
    );

    // A path that names one transport refuses the other.
    let out = Router {
        server: &server,
        state: server.dir.path().join("contradiction.json"),
        at: None,
    }
    .run(&[
        "init",
        "--pid",
        "P",
        "--sn",
        "S",
        "--hostname",
        "h",
        "--url",
        &smart,
        "--ca",
        server.ca_path().to_str().expect("utf8"),
        "--transport",
        "callhome",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("contradicts"));
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
    let (server, token) = Server::cloud_with_lab("10");
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
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
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
            server.compliance("Default", tag)["in_use"].as_i64(),
            Some(expected),
            "{tag}"
        );
    }
    assert_eq!(
        server.compliance("Default", "N540-24Z8Q2C-FC-SW")["status"],
        "In Compliance",
        "tracking is never short"
    );
    let summary = router.words("show license platform summary");
    let words = |text: &str| {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for (name, count) in [
        ("Access Essentials SW Right-to-Use v1.0 per 10G", "44"),
        ("Access Essentials SIA per 10G", "44"),
        ("Access Advantage SW Right-to-Use v1.0 per 10G", "4"),
        ("Access Advantage SIA per 10G", "4"),
    ] {
        let mut expected = words(&format!("FCM {name}"));
        expected.extend([count.to_string(), count.to_string()]);
        assert_eq!(row(&summary, name), expected, "{summary}");
    }
    let tracking = summary
        .lines()
        .find(|l| l.contains("Base Hardware Tracking PID"))
        .expect("tracking row");
    assert!(
        tracking.starts_with("N540-24Z8Q2C-M Base Hardware Tracking PID "),
        "{summary}"
    );
    assert_eq!(
        words(tracking),
        words("N540-24Z8Q2C-M Base Hardware Tracking PID 1 1")
    );
    let detail = router.words("show license platform detail");
    assert!(
        detail.contains(
            "Entitlement: Access Essentials SW Right-to-Use v1.0 per 10G\n  SKU/Tag: ESS-AC-10G-RTU-1\n  \
             Description: Access Network Essentials Software RTU per 10Gb\n  Current Count: 44\n  Next Count: 44\n"
        ),
        "{detail}"
    );
    assert!(
        detail.contains(
            "Entitlement: Access Advantage SIA per 10G\n  SKU/Tag: ADV-AC-10G-SIA\n  \
             Description: Access Network Advanced Software Innovation Access per 10Gb\n  Current Count: 4\n  Next Count: 4\n"
        ),
        "{detail}"
    );
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

/// The router's statistics row for RENEW: (success, failed).
fn renew_counts(router: &Router<'_>) -> (i64, i64) {
    let stats = &router.state()["stats"]["renew"];
    (
        stats["success"].as_i64().expect("success"),
        stats["failed"].as_i64().expect("failed"),
    )
}

/// The satellite's status word for the one instance it holds.
fn satellite_status(server: &Server) -> Value {
    server.jobs.run_due().expect("jobs");
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    list[0]["status"].clone()
}

/// Points the router at a port nobody listens on: it cannot reach its satellite.
fn cut_off(router: &Router<'_>) -> Value {
    let mut state = router.state();
    let url = state["endpoint"]["url"].clone();
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    state["endpoint"]["url"] = json!(format!("https://127.0.0.1:{port}"));
    std::fs::write(&router.state, state.to_string()).expect("write state");
    url
}

fn reconnect(router: &Router<'_>, url: Value) {
    let mut state = router.state();
    state["endpoint"]["url"] = url;
    std::fs::write(&router.state, state.to_string()).expect("write state");
}

#[test]
fn a_cut_off_router_expires_then_leaves_its_grace_period_on_both_sides_and_keeps_retrying() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = Router::init(&server, "EXPIRES", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let url = cut_off(&router);
    let start = server.clock.now();
    let at_day = |days: i64| {
        server.clock.set(start + time::Duration::days(days));
        router.words("show license status")
    };

    // Past the next communication time the agent tries, fails, and the last answer stands.
    let status = at_day(31);
    assert!(
        status.contains("License Authorization:\n  Status: AUTHORIZED on"),
        "{status}"
    );
    assert!(
        status.contains("Last Communication Attempt: FAILED on"),
        "{status}"
    );
    let (_, failed_31) = renew_counts(&router);
    assert!(failed_31 >= 1, "the show fired the due renewal");
    assert_eq!(satellite_status(&server), "AUTHORIZED");

    let status = at_day(89);
    assert!(!status.contains("EXPIRED"), "{status}");
    assert_eq!(satellite_status(&server), "AUTHORIZED");

    let status = at_day(90);
    assert!(
        status.contains("License Authorization:\n  Status: AUTHORIZATION EXPIRED on "),
        "{status}"
    );
    assert!(
        status.contains("  Grace Period Remaining: 89 days"),
        "{status}"
    );
    assert!(
        status.contains("Registration:\n  Status: REGISTERED"),
        "{status}"
    );
    assert_eq!(satellite_status(&server), "AUTHORIZATION_EXPIRED");

    let status = at_day(179);
    assert!(status.contains("AUTHORIZATION EXPIRED on"), "{status}");
    assert_eq!(satellite_status(&server), "AUTHORIZATION_EXPIRED");

    let status = at_day(180);
    assert!(
        status.contains("License Authorization:\n  Status: GRACE PERIOD EXPIRED on "),
        "{status}"
    );
    let summary = router.words("show license summary");
    let ess = row(&summary, "ESS-AC-10G-RTU-1");
    assert_eq!(
        ess[ess.len() - 4..],
        ["1", "GRACE", "PERIOD", "EXPIRED"],
        "{summary}"
    );
    assert_eq!(satellite_status(&server), "GRACE_PERIOD_EXPIRED");
    let events = server.cli_ok(&["events"]);
    assert!(
        events.contains("authorization_expired") && events.contains("grace_period_expired"),
        "{events}"
    );

    // Retries go on after the grace period, and nothing is lost meanwhile.
    at_day(200);
    let (_, failed_200) = renew_counts(&router);
    assert!(failed_200 > failed_31, "retries continued");
    assert!(
        router.state()["registration"].is_object(),
        "still registered"
    );

    // Back in touch: a new authorization period starts on both sides.
    reconnect(&router, url);
    let status = at_day(201);
    assert!(
        status.contains("License Authorization:\n  Status: AUTHORIZED on"),
        "{status}"
    );
    assert_eq!(satellite_status(&server), "AUTHORIZED");
}

#[test]
fn a_router_left_alone_for_a_year_renews_by_itself_and_never_loses_its_registration() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = Router::init(&server, "ALONE", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let first_cert = router.state()["registration"]["certificate_pem"].clone();
    let start = server.clock.now();
    // Nobody touches the router: only `show` runs, every ten days, for a year.
    for step in 1..=37 {
        // The clocks run on from each setting: an answer computed a second
        // after the router asked puts the next renewal a second after the
        // step 30 days on, and a loaded machine made it miss that step.
        // A minute per step keeps each due renewal on its step.
        server
            .clock
            .set(start + time::Duration::days(10 * step) + time::Duration::minutes(step));
        let status = router.words("show license status");
        assert!(
            status.contains("Registration:\n  Status: REGISTERED"),
            "day {}: {status}",
            10 * step
        );
        assert!(
            status.contains("License Authorization:\n  Status: AUTHORIZED on"),
            "day {}: {status}",
            10 * step
        );
        assert_eq!(satellite_status(&server), "AUTHORIZED", "day {}", 10 * step);
    }
    let state = router.state();
    let (renewed, failed) = renew_counts(&router);
    assert_eq!(failed, 0);
    // Twelve authorization renewals (every 30 days) and two identity renewals (after 180 days).
    assert!(renewed >= 14, "{renewed} renewals");
    assert_ne!(state["registration"]["certificate_pem"], first_cert);
    assert_eq!(state["registration"]["last_renewal"]["succeeded"], true);
    let renewals = server.cli_ok(&["events", "--kind", "renewal"]);
    assert_eq!(
        renewals.matches("renewed its identity certificate").count(),
        2,
        "{renewals}"
    );
    assert!(!server.cli_ok(&["events"]).contains("authorization_expired"));
}

#[test]
fn a_router_whose_clock_jumps_a_year_keeps_its_registration() {
    let (server, token) = Server::cloud_with_lab("10");
    let mut router = Router::init(&server, "JUMP", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    // Only the router's clock moves; the satellite still has it authorized.
    let later = server.clock.now() + time::Duration::days(366);
    router.at = Some(
        later
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format"),
    );
    let status = router.words("show license status");
    assert!(
        status.contains("Registration:\n  Status: REGISTERED"),
        "{status}"
    );
    let state = router.state();
    assert!(state["registration"].is_object(), "{state}");
    assert_eq!(
        state["registration"]["last_renewal"]["succeeded"], true,
        "the overdue identity renewal fired instead: {state}"
    );
    let status = router.words("show license status");
    assert!(
        status.contains("Registration:\n  Status: REGISTERED"),
        "{status}"
    );
    assert_eq!(satellite_status(&server), "AUTHORIZED");
}

#[test]
fn the_run_agent_renews_by_itself() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = Router::init(&server, "AGENT", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let before = router.state()["authorization"]["next_communication"].clone();
    server.clock.advance(time::Duration::days(31));

    let mut agent = Command::new(env!("CARGO_BIN_EXE_satellite-router"))
        .arg("-s")
        .arg(&router.state)
        .args(["run", "--interval", "1"])
        .env(satellite::clock::NOW_ENV, rfc3339_now(&server.clock))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let renewed = loop {
        let state: Option<Value> = std::fs::read_to_string(&router.state)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(state) = state {
            if state["authorization"]["next_communication"] != before {
                break Some(state);
            }
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = agent.kill();
    let output = agent.wait_with_output().expect("agent output");
    let state = renewed.expect("the agent renewed the authorization within 20 s");
    assert_eq!(state["stats"]["renew"]["success"], 1, "{state}");
    assert!(state["registration"].is_object());
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("AUTH_RENEW_SUCCESS"), "{log}");
}

#[test]
fn a_disabled_router_sends_nothing_until_enabled_again() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = Router::init(&server, "DISABLED", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let out = router.words("no license smart enable");
    assert!(out.contains("DISABLED"), "{out}");
    server.clock.advance(time::Duration::days(31));
    let status = router.words("show license status");
    assert!(
        status.starts_with("Smart Licensing is DISABLED\n"),
        "{status}"
    );
    assert!(
        status.contains("License Authorization:\n  Status: DISABLED"),
        "{status}"
    );
    assert_eq!(renew_counts(&router), (0, 0), "no communication at all");
    let refused = router.run(&["license", "smart", "renew", "auth"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Smart Licensing is DISABLED"));
    assert_eq!(renew_counts(&router), (0, 0));

    // Enabled again, the agent catches up with the renewal that came due.
    router.words("license smart enable");
    assert_eq!(renew_counts(&router), (1, 0));
    let status = router.words("show license status");
    assert!(
        status.starts_with("Smart Licensing is ENABLED\n"),
        "{status}"
    );
    assert!(status.contains("Status: AUTHORIZED on"), "{status}");
}

#[test]
fn the_router_learns_its_virtual_account_and_export_control_from_the_satellite() {
    let (server, _) = Server::cloud_with_lab("10");
    let token = server.token("Lab", &["--no-export-controlled"]);
    let router = Router::init(&server, "MOVED", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    let status = router.words("show license status");
    assert!(status.contains("  Virtual Account: Lab\n"), "{status}");
    assert!(
        status.contains("  Export-Controlled Functionality: NOT ALLOWED\n"),
        "{status}"
    );
    server.cli_ok(&["va", "create", "Other"]);
    server.cli_ok(&["instance", "move", "N540-24Z8Q2C-M:MOVED", "--to", "Other"]);
    router.words("license smart renew auth");
    let status = router.words("show license status");
    assert!(status.contains("  Virtual Account: Other\n"), "{status}");
    assert!(
        status.contains("  Export-Controlled Functionality: NOT ALLOWED\n"),
        "kept across renewals: {status}"
    );

    let allowed = Router::init(&server, "ALLOWED", &[]);
    allowed.ok(&[
        "license",
        "smart",
        "register",
        "idtoken",
        &server.token("Lab", &[]),
    ]);
    assert!(allowed
        .words("show license status")
        .contains("  Export-Controlled Functionality: ALLOWED\n"));
}

#[test]
fn a_damaged_state_file_is_a_one_line_error_not_a_panic() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = Router::init(&server, "DAMAGED", &[]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    router.words("license request ESS-AC-10G-RTU-1 1");
    let good = router.state();
    let path = router.state.display().to_string();
    for (pointer, value, field) in [
        ("/eval/remaining_secs", json!(-1), "eval.remaining_secs"),
        (
            "/authorization/deadline",
            json!("9999-12-31T23:59:59-23:59"),
            "authorization.deadline",
        ),
        (
            "/registration/expires",
            json!("1970-01-01T00:00:00Z"),
            "registration.expires",
        ),
        ("/stats/renew/success", json!(u64::MAX), ""),
    ] {
        let mut damaged = good.clone();
        *damaged.pointer_mut(pointer).expect(pointer) = value;
        let text = serde_json::to_string_pretty(&damaged).expect("json");
        std::fs::write(&router.state, &text).expect("write");
        for command in ["show license status", "license smart renew auth"] {
            let out = router.run(&command.split_whitespace().collect::<Vec<_>>());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{pointer}: {stderr}");
            if field.is_empty() {
                // A saturated counter is not damage: it stays saturated.
                assert!(out.status.success(), "{pointer}: {stderr}");
                continue;
            }
            assert_eq!(out.status.code(), Some(1), "{pointer} {command}: {stderr}");
            assert!(out.stdout.is_empty(), "{pointer}");
            assert_eq!(stderr.lines().count(), 1, "{pointer}: {stderr}");
            assert!(
                stderr.starts_with(&format!("{path}: damaged router state: {field}: ")),
                "{stderr}"
            );
            assert_eq!(
                std::fs::read_to_string(&router.state).expect("read"),
                text,
                "a refused file is left as it was"
            );
        }
    }
    assert_eq!(router.state()["stats"]["renew"]["success"], json!(u64::MAX));
}

/// A minimal HTTP CONNECT proxy: logs each request line, connects to the
/// target, then relays bytes both ways until either side closes.
struct ConnectProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = Self::tunnel(client, &log);
                });
            }
        });
        Self { port, seen }
    }

    fn tunnel(mut client: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
        let mut from_client = BufReader::new(client.try_clone()?);
        let mut request = String::new();
        from_client.read_line(&mut request)?;
        let request = request.trim_end().to_string();
        log.lock().expect("log").push(request.clone());
        loop {
            let mut header = String::new();
            if from_client.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
                break;
            }
        }
        let target = match request.split_whitespace().collect::<Vec<_>>()[..] {
            ["CONNECT", target, _] => target.to_string(),
            _ => {
                client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")?;
                return Ok(());
            }
        };
        let upstream = TcpStream::connect(target)?;
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        let mut to_upstream = upstream.try_clone()?;
        // The reader hands over anything it buffered past the headers first.
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_upstream);
            let _ = to_upstream.shutdown(Shutdown::Write);
        });
        let mut from_upstream = upstream;
        let _ = std::io::copy(&mut from_upstream, &mut client);
        let _ = client.shutdown(Shutdown::Write);
        let _ = up.join();
        Ok(())
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("log").clone()
    }
}

#[test]
fn the_emulator_registers_through_an_http_connect_proxy() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let proxy = ConnectProxy::start();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let router = Router::init(&server, "PROXIED", &["--proxy", &proxy_url]);
    router.ok(&["license", "smart", "register", "idtoken", &token]);
    assert!(router
        .words("show license status")
        .contains("Registration:\n  Status: REGISTERED"));
    let device_port = server
        .device_url
        .rsplit(':')
        .next()
        .expect("port in the device URL");
    let seen = proxy.seen();
    assert!(
        seen.contains(&format!("CONNECT 127.0.0.1:{device_port} HTTP/1.1")),
        "{seen:?}"
    );
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["udi"], "PID:N540-24Z8Q2C-M,SN:PROXIED");
}
