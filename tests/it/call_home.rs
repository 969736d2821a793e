//! Call Home alerts reach real listeners: an HTTP collector and an SMTP relay
//! on loopback, each a few lines of std networking.

use crate::client::register;
use crate::fixture::{cloud_config, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Accepts one HTTP request and hands over its body.
fn http_collector() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
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
        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
    });
    (port, rx)
}

/// Accepts one SMTP session and hands over the DATA.
fn smtp_relay() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut writer = stream.try_clone().expect("clone");
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
        let _ = tx.send(data);
    });
    (port, rx)
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
        serde_json::from_str(&satellite::callhome::unwrap(&body).expect("AML envelope"))
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
    let mail = received
        .recv_timeout(Duration::from_secs(10))
        .expect("a mail");
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
