//! Call Home alerts reach real listeners: an HTTP collector and an SMTP relay
//! on loopback, each a few lines of std networking.

use crate::client::register;
use crate::fixture::{cloud_config, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Accepts HTTP requests on `listener` and hands over each body.
fn http_collector_on(listener: TcpListener) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            if tx
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

fn http_collector() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (port, http_collector_on(listener))
}

/// The next message that satisfies `wanted`, skipping others (e.g. the
/// server's start); panics after `secs`.
fn next_matching(rx: &mpsc::Receiver<String>, secs: u64, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let message = rx
            .recv_timeout(left)
            .expect("the expected Call Home message did not arrive in time");
        if wanted(&message) {
            return message;
        }
    }
}

/// Accepts one SMTP session and hands over the DATA.
fn smtp_relay() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                return;
            };
            if !smtp_session(stream, &tx) {
                return;
            }
        }
    });
    (port, rx)
}

/// One SMTP session; false when nobody listens for mail any more.
fn smtp_session(stream: std::net::TcpStream, tx: &mpsc::Sender<String>) -> bool {
    {
        let Ok(mut writer) = stream.try_clone() else {
            return true;
        };
        let mut reader = BufReader::new(stream);
        let _ = writer.write_all(b"220 relay ESMTP\r\n");
        let mut data = String::new();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    let _ = writer.write_all(b"250 queued\r\n");
                } else {
                    data.push_str(&line);
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 relay\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    let _ = writer.write_all(b"221 bye\r\n");
                    break;
                }
                _ => b"250 ok\r\n",
            };
            let _ = writer.write_all(reply);
        }
        tx.send(data).is_ok()
    }
}

fn go_short(server: &Server) {
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    let token = server.token("Default", &[]);
    let router = register(server, "ALERT", &token);
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "e", "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 3}]
    }));
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("OUT_OF_COMPLIANCE")),
        "{answer}"
    );
}

fn statistics(server: &Server) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status: Value =
            serde_json::from_str(&server.cli_ok(&["status", "--json"])).expect("json");
        let stats = status["call_home"].clone();
        if stats[0]["success"].as_i64().unwrap_or(0) + stats[0]["failed"].as_i64().unwrap_or(0) > 0
            || std::time::Instant::now() > deadline
        {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_shortfall_is_posted_to_an_http_profile() {
    let (port, received) = http_collector();
    let config = format!(
        "{}call_home:\n  profiles:\n    - {{ name: noc, transport: http, url: 'http://127.0.0.1:{port}/alerts', format: xml, categories: [compliance] }}\n",
        cloud_config()
    );
    let server = Server::start_with(&config);
    go_short(&server);
    let body = received
        .recv_timeout(Duration::from_secs(10))
        .expect("an alert");
    let inner: Value =
        serde_json::from_str(&satellite::notify::callhome::unwrap(&body).expect("AML envelope"))
            .expect("json");
    assert_eq!(inner["message_type"], "COMPLIANCE");
    assert!(
        inner["summary"]
            .as_str()
            .unwrap_or("")
            .contains("ESS-AC-10G-RTU-1"),
        "{inner}"
    );
    let stats = statistics(&server);
    assert_eq!(
        (stats[0]["profile"].as_str(), stats[0]["success"].as_i64()),
        (Some("noc"), Some(1)),
        "{stats}"
    );
}

#[test]
fn a_shortfall_is_mailed_to_an_email_profile() {
    let (port, received) = smtp_relay();
    let config = format!(
        "{}call_home:\n  smtp: 'smtp://127.0.0.1:{port}'\n  profiles:\n    - {{ name: ops, transport: email, to: [noc@example.com], format: full-text }}\n",
        cloud_config()
    );
    let server = Server::start_with(&config);
    go_short(&server);
    // Without categories the profile takes everything, the server's start too.
    let mail = next_matching(&received, 10, |m| m.contains("COMPLIANCE"));
    assert!(
        mail.contains("Subject: [test-satellite] ESS-AC-10G-RTU-1 out of compliance"),
        "{mail}"
    );
    assert!(
        mail.contains("show compliance"),
        "full text attaches the show output: {mail}"
    );
    let stats = statistics(&server);
    assert_eq!(stats[0]["success"].as_i64(), Some(1), "{stats}");
}

fn http_profile(port: u16, categories: &str) -> String {
    format!(
        "{}call_home:\n  profiles:\n    - {{ name: noc, transport: http, url: 'http://127.0.0.1:{port}/alerts', format: full-text, categories: [{categories}] }}\n",
        cloud_config()
    )
}

fn warning_reports(server: &Server) -> Vec<Value> {
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["report", "list", "--json"])).expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .filter(|r| r["kind"] == "Compliance Warning Report")
        .cloned()
        .collect()
}

#[test]
fn a_deeper_shortfall_alerts_again() {
    let (port, received) = http_collector();
    let server = Server::start_with(&http_profile(port, "compliance"));
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    let token = server.token("Default", &[]);
    let router = register(&server, "DEEPER", &token);
    let ask = |id: &str, count: u32| {
        let (status, answer) = router.client.post(&json!({
            "type": "ENTITLEMENT", "message_id": id, "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": count}]
        }));
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("OUT_OF_COMPLIANCE")),
            "{answer}"
        );
    };
    ask("e1", 3);
    let first = next_matching(&received, 10, |m| m.contains("COMPLIANCE"));
    assert!(
        first.contains("out of compliance in virtual account Default (short 2)"),
        "{first}"
    );
    // Full text attaches the warning report as `report show` prints it.
    assert!(first.contains("Compliance Warning Report #"), "{first}");
    assert_eq!(warning_reports(&server).len(), 1);

    // Less short is not news, nor is short again by as much as announced;
    // deeper than announced is.
    ask("e2", 2);
    ask("e3", 3);
    ask("e4", 4);
    // Within five minutes of the last announcement it waits for the
    // window's end, then is announced once.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(warning_reports(&server).len(), 1, "held within the window");
    server.clock.advance(time::Duration::minutes(5));
    let second = next_matching(&received, 10, |m| m.contains("COMPLIANCE"));
    assert!(
        second.contains("further out of compliance in virtual account Default (short 3, was 2)"),
        "{second}"
    );
    let reports = warning_reports(&server);
    assert_eq!(reports.len(), 2, "{reports:?}");
    let events: Value =
        serde_json::from_str(&server.cli_ok(&["events", "--kind", "compliance", "--json"]))
            .expect("json");
    let messages: Vec<&str> = events
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[1].contains("short 3 (was short 2)"),
        "{messages:?}"
    );
    // A burst that deepens it step by step is one warning, not one per step.
    for (n, count) in [5u32, 6, 7, 8].into_iter().enumerate() {
        ask(&format!("burst{n}"), count);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(warning_reports(&server).len(), 2, "held within the window");
    server.clock.advance(time::Duration::minutes(5));
    let third = next_matching(&received, 10, |m| m.contains("COMPLIANCE"));
    assert!(
        third.contains("further out of compliance in virtual account Default (short 7, was 3)"),
        "{third}"
    );
    assert_eq!(warning_reports(&server).len(), 3);
    // Nothing else was queued: no message for the shrink or the return.
    assert!(received.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn a_warning_report_can_be_generated_by_hand() {
    let server = Server::start_with(&cloud_config());
    go_short(&server);
    let before = warning_reports(&server).len();
    let report: Value = serde_json::from_str(&server.cli_ok(&[
        "report", "generate", "--kind", "warning", "--va", "Default", "--json",
    ]))
    .expect("json");
    assert_eq!(report["kind"], "Compliance Warning Report", "{report}");
    assert_eq!(report["compliance"][0]["shortfall"], 2, "{report}");
    assert_eq!(
        report["product_instances"],
        json!([]),
        "shortfalls only: {report}"
    );
    assert_eq!(warning_reports(&server).len(), before + 1);
    // The default stays the Manual Record.
    let manual: Value =
        serde_json::from_str(&server.cli_ok(&["report", "generate", "--json"])).expect("json");
    assert_eq!(manual["kind"], "Manual Record");
}

/// A port with nothing listening on it (for now).
fn closed_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind")
}

/// A `satellite serve` process, killed (SIGKILL) on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_alert_queued_while_nobody_could_deliver_it_arrives_after_start() {
    let reserved = closed_port();
    let port = reserved.local_addr().expect("addr").port();
    drop(reserved);
    let mut server = Server::start_with(&http_profile(port, "compliance"));
    server.cli_ok(&["va", "create", "Lab"]);
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "3",
    ]);
    let token = server.token("Default", &[]);
    let router = register(&server, "OUTBOX", &token);
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "e", "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 3}]
    }));
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("AUTHORIZED"))
    );
    // The server goes away; its folder stays.
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().expect("tempdir"));
    let config_path = server.config_path.clone();
    drop(server);

    // With no server running, the CLI makes the pool short. Its own attempt
    // fails (nothing listens yet): the alert must wait, not vanish.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .output()
            .expect("run satellite");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&[
        "license",
        "transfer",
        "--from",
        "Default",
        "--to",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    let status: Value = serde_json::from_str(&cli(&["status", "--json"])).expect("json");
    let stats = &status["call_home"][0];
    assert_eq!(
        (
            stats["message_type"].as_str(),
            stats["inqueue"].as_i64(),
            stats["failed"].as_i64(),
            stats["success"].as_i64()
        ),
        (Some("COMPLIANCE"), Some(1), Some(1), Some(0)),
        "{status}"
    );

    // The target comes up, then the server (a real process): it delivers.
    let received = http_collector_on(TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(&config_path)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start satellite serve");
    let process = Process(child);
    let body = next_matching(&received, 20, |m| m.contains("COMPLIANCE"));
    assert!(
        body.contains("ESS-AC-10G-RTU-1 out of compliance in virtual account Default (short 1)"),
        "{body}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status: Value = serde_json::from_str(&cli(&["status", "--json"])).expect("json");
        let stats = &status["call_home"][0];
        if (stats["inqueue"].as_i64(), stats["success"].as_i64()) == (Some(0), Some(1)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(process);

    // Again with kill -9: a running server whose target is down when the
    // pool gets shorter still; killed; restarted once the target is up.
    let reserved = closed_port();
    let port = reserved.local_addr().expect("addr").port();
    drop(reserved);
    let config = std::fs::read_to_string(&config_path).expect("config");
    let config = config.replace(
        &format!("127.0.0.1:{}/alerts", stats_port(&config)),
        &format!("127.0.0.1:{port}/alerts"),
    );
    std::fs::write(&config_path, config).expect("write config");
    // A shortfall deepened within five minutes of the last announcement is
    // announced when that window ends: the server runs ten minutes later.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let serve = || {
        Process(
            std::process::Command::new(env!("CARGO_BIN_EXE_satellite"))
                .arg("-c")
                .arg(&config_path)
                .arg("serve")
                .env(satellite::clock::NOW_ENV, &later)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start satellite serve"),
        )
    };
    let process = serve();
    cli(&[
        "license",
        "transfer",
        "--from",
        "Default",
        "--to",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    drop(process); // SIGKILL
    let received = http_collector_on(TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let _process = serve();
    let body = next_matching(&received, 20, |m| m.contains("COMPLIANCE"));
    assert!(
        body.contains("further out of compliance in virtual account Default (short 2, was 1)"),
        "{body}"
    );
    drop(dir);
}

/// The collector port named in a test configuration.
fn stats_port(config: &str) -> u16 {
    config
        .split("127.0.0.1:")
        .filter_map(|rest| rest.split_once("/alerts"))
        .find_map(|(port, _)| port.parse().ok())
        .expect("a profile url")
}

#[test]
fn start_and_stop_are_system_messages() {
    let (port, received) = http_collector();
    let server = Server::start_with(&http_profile(port, "system"));
    let started = next_matching(&received, 10, |m| m.contains("SYSTEM"));
    assert!(started.contains("satellite started"), "{started}");
    drop(server);
    let stopped = next_matching(&received, 10, |m| m.contains("SYSTEM"));
    assert!(stopped.contains("satellite stopped"), "{stopped}");
}

#[test]
fn an_expired_registration_token_is_a_registration_message() {
    let (port, received) = http_collector();
    let server = Server::start_with(&http_profile(port, "registration"));
    server.token("Default", &["--days", "1", "--description", "lab racks"]);
    server.jobs.run_due().expect("first run marks the start");
    server.clock.advance(time::Duration::days(2));
    // (The server's own jobs thread may get there first: either run announces it.)
    server.jobs.run_due().expect("jobs");
    let message = next_matching(&received, 10, |m| m.contains("TOKEN_EXPIRED"));
    assert!(
        message.contains("of virtual account Default expired"),
        "{message}"
    );
    assert!(
        message.contains("Description: lab racks"),
        "full text: {message}"
    );
    // Announced once: later runs find nothing new.
    assert_eq!(server.jobs.run_due().expect("jobs").expiry_alerts, 0);
    assert!(received.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn a_refused_registration_is_a_registration_message() {
    let (port, received) = http_collector();
    let server = Server::start_with(&http_profile(port, "registration"));
    let token = server.token("Default", &[]);
    server.cli_ok(&["token", "revoke", &token]);
    let key = crate::client::p256();
    let (status, _) = server.device().post(&crate::client::registration(
        "reg-1",
        "REFUSED1",
        &token,
        &crate::client::csr(&key),
    ));
    assert_eq!(status, 401);
    let message = next_matching(&received, 10, |m| m.contains("REGISTRATION"));
    assert!(message.contains("registration of N540"), "{message}");
    assert!(
        message.contains("REFUSED1 refused: the registration token was revoked"),
        "{message}"
    );
    // A second refusal within the minute is counted, not sent.
    let (status, _) = server.device().post(&crate::client::registration(
        "reg-2",
        "REFUSED2",
        &token,
        &crate::client::csr(&key),
    ));
    assert_eq!(status, 401);
    assert!(received.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn an_identity_certificate_that_expires_unrenewed_is_a_registration_message() {
    let (port, received) = http_collector();
    let server = Server::start_with(&http_profile(port, "registration"));
    let token = server.token("Default", &["--days", "365"]);
    register(&server, "EXPIRING", &token);
    server.jobs.run_due().expect("first run marks the start");
    server.clock.advance(time::Duration::days(366));
    server.jobs.run_due().expect("jobs");
    let message = next_matching(&received, 10, |m| m.contains("CERTIFICATE_EXPIRED"));
    assert!(
        message
            .contains("identity certificate of N540-24Z8Q2C-M:EXPIRING in virtual account Default"),
        "{message}"
    );
    assert!(message.contains("expired without renewal"), "{message}");
}
