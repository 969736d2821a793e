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

/// A TCP connection from `source` (any 127.0.0.0/8 address is loopback).
fn connect_from(source: &str, to: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(format!("{source}:0").parse().expect("address"))?;
        let stream = socket.connect(to).await?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

/// An attacker that completes the TLS handshake, sends headers announcing a
/// body, then trickles it one byte at a time.
fn slow_connection(
    connector: &openssl::ssl::SslConnector,
    to: std::net::SocketAddr,
) -> Option<openssl::ssl::SslStream<std::net::TcpStream>> {
    use std::io::Write;
    let tcp = connect_from("127.0.0.2", to).ok()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut tls = connector.connect("localhost", tcp).ok()?;
    // From now on a read only looks whether the server answered.
    tls.get_ref()
        .set_read_timeout(Some(std::time::Duration::from_millis(1)))
        .ok()?;
    tls.write_all(
        b"POST /SmartTransport HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{",
    )
    .ok()?;
    Some(tls)
}

/// A read that timed out: the server has not answered yet.
fn still_waiting(e: &openssl::ssl::Error) -> bool {
    e.code() == openssl::ssl::ErrorCode::WANT_READ
        || e.io_error().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        })
}

/// A thousand connections that send their body at 1 byte/s: the admin
/// listener and a legitimate router (another address) are still answered
/// within a second, and the slow senders are cut off at the body deadline.
#[test]
fn slow_connections_do_not_starve_routers_or_the_admin_listener() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let server = Server::start();
    let token = server.token("Default", &[]);
    let device_addr: std::net::SocketAddr = server
        .device_url
        .trim_start_matches("https://")
        .parse()
        .expect("address");
    let mut builder =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("connector");
    builder.set_ca_file(server.ca_path()).expect("ca");
    let connector = builder.build();

    let started = Instant::now();
    let mut slow: Vec<_> = (0..1000)
        .filter_map(|_| slow_connection(&connector, device_addr))
        .collect();
    assert!(
        slow.len() >= 990,
        "only {} slow connections opened",
        slow.len()
    );
    let opened_in = started.elapsed();

    // Trickle one byte per second on every connection while we measure.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle_stop = stop.clone();
    let trickler = std::thread::spawn(move || {
        let mut refused = 0usize;
        let mut closed = vec![false; slow.len()];
        let give_up = Instant::now() + Duration::from_secs(25);
        while !trickle_stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < give_up {
            for (conn, closed) in slow.iter_mut().zip(closed.iter_mut()) {
                if *closed {
                    continue;
                }
                let mut answer = [0u8; 512];
                match conn.ssl_read(&mut answer) {
                    Ok(0) => *closed = true,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&answer[..n]);
                        if text.starts_with("HTTP/1.1 4") {
                            refused += 1;
                        }
                        *closed = true;
                    }
                    Err(e) if still_waiting(&e) => {}
                    Err(_) => *closed = true,
                }
                if !*closed && conn.write_all(b" ").is_err() {
                    *closed = true;
                }
            }
            if closed.iter().all(|c| *c) {
                break;
            }
        }
        (closed.iter().filter(|c| **c).count(), closed.len(), refused)
    });

    let ready_started = Instant::now();
    let ready = crate::client::agent(&server.ca_path(), None)
        .get(&format!("{}/readyz", server.admin_url))
        .call()
        .expect("readyz answers under attack");
    assert_eq!(ready.status(), 200);
    let ready_in = ready_started.elapsed();
    assert!(
        ready_in < Duration::from_secs(1),
        "/readyz took {ready_in:?}"
    );

    let router_started = Instant::now();
    let router = crate::client::register(&server, "FOCSLOW0001", &token);
    let (status, answer) = router.client.post(&serde_json::json!({
        "type": "ENTITLEMENT", "message_id": "slow-ent-1",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]
    }));
    assert_eq!(status, 200, "{answer}");
    let router_in = router_started.elapsed();
    assert!(
        router_in < Duration::from_secs(1),
        "a legitimate router took {router_in:?} (attack opened in {opened_in:?})"
    );

    // Every slow sender is cut off by the body deadline (10 s) or was
    // refused at once for holding too many connections.
    let (closed, total, refused) = trickler.join().expect("trickler");
    eprintln!("slow connections: {closed} of {total} closed, {refused} answered 4xx");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(closed, total, "slow connections still open after 25 s");
    assert!(
        refused > 0,
        "no slow connection was answered with a refusal"
    );
}

/// Token guessing from one address is cut off with 429 after the
/// configured number of anonymous requests per minute; routers that hold a
/// certificate are not counted.
#[test]
fn registrations_are_rate_limited_per_source() {
    let yaml = "name: test-satellite\naccount: Test Corp\ndata_dir: ./data\n\
        device: { listen: 127.0.0.1:0, hostnames: [localhost, 127.0.0.1], registrations_per_minute: 4 }\n\
        admin: { listen: 127.0.0.1:0 }\nlog: { level: warn }\n";
    let server = Server::start_with(yaml);
    let token = server.token("Default", &[]);
    let registered = crate::client::register(&server, "FOCRATE0001", &token);
    let key = crate::client::p256();
    let csr = crate::client::csr(&key);
    let mut codes = Vec::new();
    for n in 0..5 {
        let guess =
            crate::client::registration(&format!("guess-{n}"), "FOCGUESS", "wrong-token", &csr);
        let (status, answer) = server.device().post(&guess);
        codes.push((status, crate::client::error_code(&answer).to_string()));
    }
    assert_eq!(codes[0], (401, "token_unknown".to_string()), "{codes:?}");
    assert_eq!(
        codes[3],
        (429, "too_many_requests".to_string()),
        "{codes:?}"
    );
    assert_eq!(
        codes[4],
        (429, "too_many_requests".to_string()),
        "{codes:?}"
    );
    // A registered router keeps being served.
    let (status, answer) = registered.client.post(&serde_json::json!({
        "type": "ENTITLEMENT", "message_id": "rate-ent-1",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]
    }));
    assert_eq!(status, 200, "{answer}");
}
