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
            "satellite.yaml: device.tls_cert: ",
            "bad.pem",
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
    slow_connection_from("127.0.0.2", connector, to)
}

fn slow_connection_from(
    source: &str,
    connector: &openssl::ssl::SslConnector,
    to: std::net::SocketAddr,
) -> Option<openssl::ssl::SslStream<std::net::TcpStream>> {
    use std::io::Write;
    let tcp = connect_from(source, to).ok()?;
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
    use std::io::Write;
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

/// `satellite serve` as a real process on ephemeral ports.
pub(crate) struct Serving {
    pub(crate) child: std::process::Child,
    device_url: String,
    admin_url: String,
    ca: std::path::PathBuf,
}

impl Serving {
    pub(crate) fn start(config: &Path) -> Self {
        Self::start_logging_to(config, std::process::Stdio::null())
    }

    /// Starts `satellite serve` with its log (stderr) going to `log`.
    fn start_logging_to(config: &Path, log: std::process::Stdio) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(config)
            .arg("serve")
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn satellite serve");
        let stdout = child.stdout.take().expect("stdout");
        let (mut device_url, mut admin_url) = (String::new(), String::new());
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("line");
            if let Some(rest) = line.trim().strip_prefix("device API: ") {
                device_url = rest.trim_end_matches("/SmartTransport").to_string();
            }
            if let Some(rest) = line.trim().strip_prefix("admin:") {
                admin_url = rest
                    .split_whitespace()
                    .next()
                    .expect("url")
                    .trim_end_matches('/')
                    .to_string();
                break;
            }
        }
        assert!(!admin_url.is_empty(), "satellite serve did not start");
        // Keep reading: a closed pipe would fail the server's next print.
        std::thread::spawn(move || lines.for_each(drop));
        let ca = config.parent().expect("dir").join("data/ca.pem");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let agent = crate::client::agent(&ca, None);
        while agent.get(&format!("{admin_url}/readyz")).call().is_err() {
            assert!(std::time::Instant::now() < deadline, "not ready");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child,
            device_url,
            admin_url,
            ca,
        }
    }

    fn device(
        &self,
        identity: Option<(&str, &openssl::pkey::PKey<openssl::pkey::Private>)>,
    ) -> crate::client::Device {
        crate::client::Device::new(&self.device_url, &self.ca, identity)
    }

    /// Registers a router `sn` with a token of `config`'s satellite: its
    /// key and identity certificate.
    fn register(
        &self,
        config: &Path,
        sn: &str,
    ) -> (openssl::pkey::PKey<openssl::pkey::Private>, String) {
        let key = crate::client::p256();
        let csr = crate::client::csr(&key);
        let (status, answer) = self.device(None).post(&crate::client::registration(
            &format!("reg-{sn}"),
            sn,
            &token(config),
            &csr,
        ));
        assert_eq!(status, 200, "{answer}");
        let certificate = answer["certificate"]
            .as_str()
            .expect("certificate")
            .to_string();
        (key, certificate)
    }

    /// The address a listener's URL names.
    fn addr(url: &str) -> std::net::SocketAddr {
        url.trim_start_matches("https://").parse().expect("address")
    }

    /// SIGTERM, then wait: requests in flight finish.
    pub(crate) fn stop(mut self) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn process_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("satellite.yaml");
    let yaml = crate::fixture::with_test_storage(crate::fixture::BASE_CONFIG, dir);
    std::fs::write(&config, yaml).expect("write config");
    config
}

fn token(config: &Path) -> String {
    let out = satellite(config, &["token", "create", "--va", "Default", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    json["token"].as_str().expect("token").to_string()
}

fn entitlement(id: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "ENTITLEMENT", "message_id": id,
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]
    })
}

/// Backup while routers are served, restore onto an empty data dir: the
/// satellite answers the same routers with the same CA. A restore older
/// than an acknowledged bundle is refused; a damaged database refuses start.
#[test]
fn backup_and_restore_round_trip_while_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    let server = Serving::start(&config);
    let (key, certificate) = server.register(&config, "FOCBACKUP1");

    // Routers keep talking while the backup is taken.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, url, ca, cert, key) = (
            stop.clone(),
            server.device_url.clone(),
            server.ca.clone(),
            certificate.clone(),
            key.clone(),
        );
        std::thread::spawn(move || {
            let router = crate::client::Device::new(&url, &ca, Some((&cert, &key)));
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, answer) = router.post(&entitlement(&format!("busy-{n}")));
                assert_eq!(status, 200, "{answer}");
                n += 1;
            }
            n
        })
    };
    let file = dir.path().join("backup.zip");
    let out = satellite(&config, &["backup", file.to_str().expect("utf8")]);
    assert!(out.status.success(), "backup: {}", stderr(&out));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(busy.join().expect("router thread") > 0);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("backup")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the backup holds private keys: 0600");
    assert!(
        !satellite(&config, &["backup", file.to_str().expect("utf8")])
            .status
            .success(),
        "never overwrites"
    );
    server.stop();

    // A damaged backup restored where there is no satellite yet: refused,
    // and the folders it would have filled are not left behind.
    let mut entries = crate::sync::unzip(&file);
    for (name, bytes) in entries.iter_mut() {
        if name == "ca.pem" {
            bytes.extend_from_slice(b"\n# tampered\n");
        }
    }
    let tampered = dir.path().join("tampered.zip");
    crate::sync::rezip(&entries, &tampered);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let fresh = process_config(elsewhere.path());
    let out = satellite(&fresh, &["restore", tampered.to_str().expect("utf8")]);
    assert!(!out.status.success(), "a tampered backup was restored");
    let left: Vec<_> = std::fs::read_dir(elsewhere.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != crate::fixture::TEST_PASSWORD_FILE)
        .collect();
    assert_eq!(left, vec!["satellite.yaml".to_string()], "{}", stderr(&out));

    let data = dir.path().join("data");
    let ca_before = std::fs::read(data.join("ca.pem")).expect("ca");
    std::fs::remove_dir_all(&data).expect("wipe the data dir");
    let out = satellite(&config, &["restore", file.to_str().expect("utf8")]);
    assert!(out.status.success(), "restore: {}", stderr(&out));
    assert_eq!(
        std::fs::read(data.join("ca.pem")).expect("ca"),
        ca_before,
        "same CA"
    );
    for key_file in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(data.join(key_file))
            .expect(key_file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{key_file} is 0600");
    }

    let server = Serving::start(&config);
    let (status, answer) = server
        .device(Some((&certificate, &key)))
        .post(&entitlement("after-restore"));
    assert_eq!(
        status, 200,
        "the restored satellite knows the router: {answer}"
    );
    server.stop();

    // The cloud acknowledged a usage bundle the backup never saw.
    crate::fixture::TestDb::of(&config).execute(
        "INSERT INTO sync_bundles (direction, peer, kind, sequence, sha256, created_at, recorded_at, summary, acknowledged_at)
         VALUES ('sent', 'cloud-1', 'usage', 7, 'abc', 0, 0, '{}', 1)",
    );
    let out = satellite(&config, &["restore", file.to_str().expect("utf8")]);
    assert!(
        !out.status.success(),
        "a restore behind the cloud must be refused"
    );
    assert!(
        stderr(&out).contains("acknowledged sequence 7"),
        "{}",
        stderr(&out)
    );

    // A damaged database: start is refused, naming the restore command.
    if crate::fixture::skipped_on_postgres("a damaged database file") {
        return;
    }
    let db_path = data.join("satellite.db");
    let mut bytes = std::fs::read(&db_path).expect("db");
    let damaged = bytes.len().saturating_sub(8192);
    for b in bytes.iter_mut().skip(4096).take(damaged) {
        *b = 0x5a;
    }
    std::fs::write(&db_path, &bytes).expect("damage");
    let out = satellite(&config, &["serve"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("damaged") && err.contains("satellite restore"),
        "{err}"
    );
}

/// The server killed with SIGKILL under load, three times: every
/// registration it acknowledged is there after restart, a retry of one it
/// never answered is served once, and the token counts each router once.
#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    let mut server = Serving::start(&config);
    let token = token(&config);
    let key = crate::client::p256();
    let csr = crate::client::csr(&key);
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let unanswered: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    for round in 0..3 {
        let workers: Vec<_> = (0..3)
            .map(|worker| {
                let (url, ca, token, csr) = (
                    server.device_url.clone(),
                    server.ca.clone(),
                    token.clone(),
                    csr.clone(),
                );
                let (acknowledged, unanswered) = (acknowledged.clone(), unanswered.clone());
                std::thread::spawn(move || {
                    // A plain agent: a connection cut by the kill is an error, not a panic.
                    let agent = crate::client::agent(&ca, None);
                    let endpoint = format!("{url}/SmartTransport");
                    for n in 0.. {
                        let sn = format!("FOCK{round}{worker}{n:04}");
                        let id = format!("reg-{sn}");
                        let message = crate::client::registration(&id, &sn, &token, &csr);
                        match agent.post(&endpoint).send_json(&message) {
                            Ok(r) if r.status() == 200 => {
                                acknowledged.lock().expect("lock").push((sn, id))
                            }
                            _ => {
                                unanswered.lock().expect("lock").push((sn, id));
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(700));
        server.kill();
        for worker in workers {
            let _ = worker.join();
        }
        server = Serving::start(&config);
    }

    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 9,
        "too little load: {}",
        acknowledged.len()
    );
    let db = crate::fixture::TestDb::of(&config);
    for (_, id) in &acknowledged {
        let n: i64 = db.one(&format!(
            "SELECT COUNT(*) FROM device_messages WHERE message_id = '{id}'"
        ));
        assert_eq!(n, 1, "acknowledged message {id} is missing after kill -9");
    }
    // Whatever was in flight is retried with the same id, as a router does.
    let device = server.device(None);
    let unanswered = unanswered.lock().expect("lock").clone();
    for (sn, id) in unanswered.iter().chain(acknowledged.iter().take(3)) {
        let (status, answer) = device.post(&crate::client::registration(id, sn, &token, &csr));
        assert_eq!(status, 200, "retry of {id}: {answer}");
    }
    let registered = acknowledged.len() + unanswered.len();
    let instances: i64 = db.one("SELECT COUNT(*) FROM product_instances");
    let uses: i64 = db.one("SELECT SUM(uses) FROM registration_tokens");
    assert_eq!(
        instances as usize, registered,
        "each router is one product instance"
    );
    assert_eq!(
        uses as usize, registered,
        "the token counted each router once"
    );
    let ready = crate::client::agent(&server.ca, None)
        .get(&format!("{}/readyz", server.admin_url))
        .call()
        .expect("ready after three kills");
    assert_eq!(ready.status(), 200);
    server.stop();
}

/// A small tmpfs mounted for the test's life (needs root; `None` if refused).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The data dir's disk fills up: routers get 503 storage_unavailable, none
/// of those answers is recorded as acknowledged, the database stays sound,
/// and the server recovers by itself once space returns.
#[test]
fn a_full_disk_answers_503_and_recovers_by_itself() {
    if crate::fixture::skipped_on_postgres("a full disk under the embedded database") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_disk) = SmallDisk::mount(&dir.path().join("data"), "8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); .ci/run runs as root");
        return;
    };
    let config = process_config(dir.path());
    // The log fails with the disk (stderr on /dev/full fails every write):
    // the database threads log their failures and must survive their log.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let server = Serving::start_logging_to(&config, full.into());
    let token = token(&config);
    let key = crate::client::p256();
    let csr = crate::client::csr(&key);
    let device = server.device(None);

    // Fill the disk.
    let filler = dir.path().join("data/filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
    }
    let mut refused = Vec::new();
    for n in 0..40 {
        let (sn, id) = (format!("FOCFULL{n:03}"), format!("reg-full-{n}"));
        let (status, answer) = device.post(&crate::client::registration(&id, &sn, &token, &csr));
        if status == 503 {
            assert_eq!(
                crate::client::error_code(&answer),
                "storage_unavailable",
                "{answer}"
            );
            refused.push((sn, id));
        } else {
            assert_eq!(status, 200, "{answer}");
        }
    }
    assert!(!refused.is_empty(), "a full disk must refuse writes");
    // Ready means "can accept writes": a load balancer must stop sending.
    let ready = |server: &Serving| match crate::client::agent(&server.ca, None)
        .get(&format!("{}/readyz", server.admin_url))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("readyz: {e}"),
    };
    assert_eq!(ready(&server), 503, "ready on a full disk");
    // A second start on the full disk says what to free, and where.
    let mut second = Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(&config)
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while second.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a start on a full disk did not fail");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = second.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("database or disk is full") && stderr.contains("free space there"),
        "{stderr}"
    );

    // Space returns: the same messages are served, without a restart.
    std::fs::remove_file(&filler).expect("free space");
    let freed = std::time::Instant::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for (sn, id) in &refused {
        loop {
            let (status, answer) = device.post(&crate::client::registration(id, sn, &token, &csr));
            if status == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no recovery: {answer}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let recovered = freed.elapsed();
    let db = rusqlite::Connection::open(dir.path().join("data/satellite.db")).expect("db");
    let check: String = db
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let uses: i64 = db
        .query_row("SELECT SUM(uses) FROM registration_tokens", [], |r| {
            r.get(0)
        })
        .expect("uses");
    let instances: i64 = db
        .query_row("SELECT COUNT(*) FROM product_instances", [], |r| r.get(0))
        .expect("instances");
    assert_eq!(instances, 40);
    assert_eq!(uses, 40, "refused registrations were not counted");
    // Ready again once space returned (polled: under a loaded machine the
    // readiness probe's own write may take its 2 s allowance once).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ready(&server) != 200 {
        if std::time::Instant::now() >= deadline {
            let body = match crate::client::agent(&server.ca, None)
                .get(&format!("{}/readyz", server.admin_url))
                .call()
            {
                Ok(r) => r.into_string().unwrap_or_default(),
                Err(ureq::Error::Status(_, r)) => r.into_string().unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            let sizes: Vec<(String, u64)> = std::fs::read_dir(dir.path().join("data"))
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                            (e.file_name().to_string_lossy().into_owned(), len)
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("not ready again after space returned: {body}; data dir: {sizes:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!(
        "full disk with an unwritable log: {} writes refused; every one served {:?} after space returned",
        refused.len(),
        recovered
    );
    drop(db);
    server.stop();
}

/// Clears the immutable flag again, even when the test fails midway.
struct Immutable(std::path::PathBuf);

impl Immutable {
    /// `chattr +i` (needs root and a file system with the flag, e.g. ext4).
    fn set(path: &Path) -> Option<Self> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A write error that is not a full disk: the WAL is made immutable under
/// the running server, so every write into it fails (EPERM from the file
/// system, which SQLite reports as an I/O error, as it would a failing
/// disk). Routers get 503 storage_unavailable, nothing they were refused is
/// recorded, and the server recovers by itself once writes work again.
#[test]
fn a_failing_write_answers_503_and_recovers_by_itself() {
    if crate::fixture::skipped_on_postgres("an unwritable WAL") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    let server = Serving::start(&config);
    let token = token(&config);
    let key = crate::client::p256();
    let csr = crate::client::csr(&key);
    let device = server.device(None);
    let (status, answer) = device.post(&crate::client::registration(
        "reg-io-first",
        "FOCIO000",
        &token,
        &csr,
    ));
    assert_eq!(status, 200, "{answer}");

    let wal = dir.path().join("data/satellite.db-wal");
    let Some(flag) = Immutable::set(&wal) else {
        eprintln!("SKIPPED: cannot make the WAL immutable here (needs root on ext4); .ci/run runs as root");
        server.stop();
        return;
    };
    let mut refused = Vec::new();
    for n in 1..=20 {
        let (sn, id) = (format!("FOCIO{n:03}"), format!("reg-io-{n}"));
        let (status, answer) = device.post(&crate::client::registration(&id, &sn, &token, &csr));
        assert_eq!(status, 503, "a write that cannot reach the disk: {answer}");
        assert_eq!(
            crate::client::error_code(&answer),
            "storage_unavailable",
            "{answer}"
        );
        refused.push((sn, id));
    }

    // Writes work again: the same messages are served, without a restart.
    drop(flag);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for (sn, id) in &refused {
        loop {
            let (status, answer) = device.post(&crate::client::registration(id, sn, &token, &csr));
            if status == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no recovery: {answer}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    server.stop();
    let db = rusqlite::Connection::open(dir.path().join("data/satellite.db")).expect("db");
    let check: String = db
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let uses: i64 = db
        .query_row("SELECT SUM(uses) FROM registration_tokens", [], |r| {
            r.get(0)
        })
        .expect("uses");
    let instances: i64 = db
        .query_row("SELECT COUNT(*) FROM product_instances", [], |r| r.get(0))
        .expect("instances");
    assert_eq!(instances, 21);
    assert_eq!(uses, 21, "refused registrations were not counted");
}

/// The Debian package: built by packaging/debian/build.sh from the binaries
/// under test and checked with dpkg-deb; the unit passes
/// `systemd-analyze security` under 2.5 where systemd-analyze exists.
#[test]
fn the_debian_package_builds_and_holds_the_service() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_satellite"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let out = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new(root.join("packaging/debian/build.sh"))
        .env("SATELLITE_BIN_DIR", &bin_dir)
        .env("SATELLITE_DEB_OUT", out.path())
        // Debug binaries are large: compressing them would take minutes.
        .env("SATELLITE_DEB_COMPRESSION", "none")
        .output()
        .expect("run build.sh");
    assert!(built.status.success(), "build.sh: {}", stderr(&built));
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let info = Command::new("dpkg-deb")
        .args(["-I", &deb])
        .output()
        .expect("dpkg-deb");
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.contains("adduser"), "{info}");
    let unit =
        std::fs::read_to_string(root.join("packaging/systemd/satellite.service")).expect("unit");
    for line in [
        "StateDirectory=satellite",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "LimitNOFILE=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "ProtectClock=yes",
        "ProtectKernelLogs=yes",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    // The packaged configuration is valid and listens where routers look.
    let packaged =
        std::fs::read_to_string(root.join("packaging/debian/satellite.yaml")).expect("yaml");
    let config =
        satellite::config::Config::parse(&packaged, "packaged", Path::new("/")).expect("valid");
    assert_eq!(config.device.listen.port(), 443);
    let analyzed = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(root.join("packaging/systemd/satellite.service"))
        .output();
    if let Some(analyzed) = analyzed.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&analyzed.stdout).into_owned();
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("exposure level for satellite.service: ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("an exposure score");
        assert!(score < 2.5, "systemd-analyze security: {score}");
    } else {
        eprintln!("systemd-analyze not available: score not checked");
    }
}

/// The fuzz targets' parsers, run in the suite over a few thousand mutations
/// of each seed corpus (fuzz/seeds): no input from outside may panic them.
/// The real fuzzing is `cargo +nightly fuzz run TARGET` (fuzz/README.md).
#[test]
fn parsers_survive_mutated_input() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let base = tempfile::tempdir().expect("tempdir");
    type Parser<'a> = Box<dyn Fn(&[u8]) -> bool + 'a>;
    let text = |data: &[u8]| String::from_utf8_lossy(data).into_owned();
    let targets: Vec<(&str, Parser)> = vec![
        (
            "device_message",
            Box::new(|d: &[u8]| satellite::device::wire::Message::parse(d).is_ok()),
        ),
        (
            "callhome_envelope",
            Box::new(move |d: &[u8]| {
                satellite::notify::callhome::unwrap_envelope(&text(d)).is_ok()
            }),
        ),
        (
            "csr",
            Box::new(move |d: &[u8]| satellite::pki::parse_csr(&text(d)).is_ok()),
        ),
        (
            "bundle",
            Box::new(|d: &[u8]| {
                satellite::sync::bundle::open(
                    d.to_vec(),
                    &satellite::sync::bundle::Limits::default(),
                )
                .is_ok()
            }),
        ),
        (
            "config",
            Box::new(|d: &[u8]| {
                satellite::config::Config::parse(&text(d), "fuzz.yaml", base.path()).is_ok()
            }),
        ),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (target, parse) in &targets {
        let mut corpus = Vec::new();
        for entry in std::fs::read_dir(seeds.join(target)).expect("seed folder") {
            corpus.push(std::fs::read(entry.expect("entry").path()).expect("seed"));
        }
        assert!(!corpus.is_empty(), "{target}: no seeds");
        if *target != "bundle" {
            // The seeds are valid (a bundle seed has no valid signature): the
            // mutations start from inputs that reach deep into the parser.
            for seed in &corpus {
                assert!(parse(seed), "{target}: a seed does not parse");
            }
        }
        for round in 0..2000 {
            let mut input = corpus[round % corpus.len()].clone();
            for _ in 0..=(next() % 4) {
                let len = input.len().max(1);
                let at = (next() as usize) % len;
                match next() % 5 {
                    0 => {
                        if let Some(b) = input.get_mut(at) {
                            *b ^= 1 << (next() % 8);
                        }
                    }
                    1 => input.insert(at.min(input.len()), next() as u8),
                    2 => {
                        if at < input.len() {
                            input.remove(at);
                        }
                    }
                    3 => input.truncate(at),
                    _ => {
                        let end = (at + (next() as usize) % 64).min(input.len());
                        let chunk = input[at.min(end)..end].to_vec();
                        let to = (next() as usize) % input.len().max(1);
                        input.splice(to.min(input.len())..to.min(input.len()), chunk);
                    }
                }
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
            assert!(
                outcome.is_ok(),
                "{target} panicked on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

/// A log that cannot be written (stderr on a full disk: `/dev/full` fails
/// every write with ENOSPC) loses lines but kills no thread: the server
/// starts, registers and answers routers, and stays healthy. (The logger
/// reported its own failures with eprintln!, which panicked the database
/// threads.)
#[test]
fn a_log_that_cannot_be_written_kills_no_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let server = Serving::start_logging_to(&config, full.into());
    let token = token(&config);
    let key = crate::client::p256();
    let csr = crate::client::csr(&key);
    let device = server.device(None);
    for n in 0..20 {
        let (status, answer) = device.post(&crate::client::registration(
            &format!("reg-log-{n}"),
            &format!("FOCLOG{n:03}"),
            &token,
            &csr,
        ));
        assert_eq!(status, 200, "{answer}");
    }
    // Refusals log warnings too.
    let (status, _) = device.post(&crate::client::registration(
        "reg-bad", "FOCLOGX", "nope", &csr,
    ));
    assert_eq!(status, 401);
    let agent = crate::client::agent(&server.ca, None);
    for path in ["/healthz", "/readyz"] {
        let answer = agent
            .get(&format!("{}{path}", server.admin_url))
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(answer.status(), 200, "{path}");
    }
    server.stop();
}

/// Nothing from a request writes raw control characters into the text log:
/// a user name with a newline and an ANSI escape, sent without logging in,
/// stays on its one line, escaped.
#[test]
fn a_request_cannot_forge_log_lines_or_colour_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    let log_path = dir.path().join("satellite.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let server = Serving::start_logging_to(&config, log.into());
    let agent = crate::client::agent(&server.ca, None);
    let forged = "x\nforged line\u{1b}[31m";
    let answer = agent
        .post(&format!("{}/backend/oauth/token", server.admin_url))
        .send_form(&[
            ("grant_type", "password"),
            ("username", forged),
            ("password", "wrong"),
        ]);
    assert!(matches!(answer, Err(ureq::Error::Status(401, _))));
    server.stop();
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(text.contains("failed API login"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape in the log: {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("forged")),
        "a forged line: {text}"
    );
    assert!(text.contains("x\\nforged line\\u{1b}[31m"), "{text}");
}

/// The first bytes of a TLS ClientHello and nothing more: a connection
/// that starts a handshake and never finishes it.
const HALF_HELLO: [u8; 27] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    10, 11, 12, 13, 14, 15, 16,
];

/// Holds `total` connections to `to` from `sources` loopback addresses,
/// each sending `first` and then only `trickle` (one byte per second, if
/// any), opening a new one whenever the server closes one. Returns how
/// many it opened in all.
fn flood(
    to: std::net::SocketAddr,
    sources: usize,
    total: usize,
    first: &'static [u8],
    trickle: bool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        use std::time::{Duration, Instant};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut open: Vec<std::net::TcpStream> = Vec::with_capacity(total);
        let (mut opened, mut next) = (0usize, 0usize);
        let mut last_trickle = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let deadline = Instant::now() + Duration::from_millis(200);
            while open.len() < total && Instant::now() < deadline {
                let source = format!("127.0.0.{}", 2 + next % sources);
                next += 1;
                let connected = runtime.block_on(async {
                    let socket = tokio::net::TcpSocket::new_v4().ok()?;
                    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
                    let stream =
                        tokio::time::timeout(Duration::from_millis(500), socket.connect(to))
                            .await
                            .ok()?
                            .ok()?;
                    stream.into_std().ok()
                });
                if let Some(mut stream) = connected {
                    let _ = stream.set_nonblocking(true);
                    if stream.write_all(first).is_ok() {
                        open.push(stream);
                        opened += 1;
                    }
                }
            }
            let trickle_now = trickle && last_trickle.elapsed() >= Duration::from_secs(1);
            if trickle_now {
                last_trickle = Instant::now();
            }
            open.retain_mut(|s| {
                let mut byte = [0u8; 64];
                let alive = match s.read(&mut byte) {
                    Ok(0) => false,
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                };
                alive && (!trickle_now || s.write_all(&[0]).is_ok())
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        opened
    })
}

/// 10,000 half-open TLS connections (27 bytes of a ClientHello, then
/// nothing) from 40 addresses, renewed as the server closes them: a router
/// with an identity certificate is still served, on new connections, every
/// time; the admin listener answers /readyz within 2 s.
#[test]
fn a_half_open_handshake_flood_does_not_starve_routers() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    satellite::http::limits::raise_open_file_limit();
    let server = Serving::start(&config);
    let (key, certificate) = server.register(&config, "FOCFLOOD1");
    let to = Serving::addr(&server.device_url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = flood(to, 40, 10_000, &HALF_HELLO, false, stop.clone());
    std::thread::sleep(Duration::from_secs(3));

    let mut served = 0;
    let mut slowest = Duration::ZERO;
    for n in 0..7 {
        // A new connection each time: the router's handshake competes.
        let router =
            crate::client::Device::new(&server.device_url, &server.ca, Some((&certificate, &key)));
        let started = Instant::now();
        let (status, _) = router.try_post(&entitlement(&format!("flood-{n}")));
        slowest = slowest.max(started.elapsed());
        if status == Some(200) {
            served += 1;
        }
    }
    let ready_started = Instant::now();
    let ready = crate::client::agent(&server.ca, None)
        .get(&format!("{}/readyz", server.admin_url))
        .call()
        .map(|r| r.status());
    let ready_in = ready_started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = attack.join().expect("flood");
    eprintln!(
        "half-open flood: {opened} connections opened; router served {served} of 7, slowest {slowest:?}; /readyz {ready_in:?}"
    );
    assert_eq!(served, 7, "the router was refused under the flood");
    assert!(
        slowest < Duration::from_secs(2),
        "slowest answer {slowest:?}"
    );
    assert_eq!(ready.ok(), Some(200));
    assert!(
        ready_in < Duration::from_secs(2),
        "/readyz took {ready_in:?}"
    );
    server.stop();
}

/// 1,000 connections trickling a ClientHello a byte a second at the admin
/// listener from 40 addresses: /readyz (what systemd and a load balancer
/// watch) still answers within 2 s.
#[test]
fn a_slow_handshake_flood_on_the_admin_listener_leaves_readyz_fast() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    satellite::http::limits::raise_open_file_limit();
    let server = Serving::start(&config);
    let to = Serving::addr(&server.admin_url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = flood(to, 40, 1_000, &HALF_HELLO[..5], true, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let ready = crate::client::agent(&server.ca, None)
            .get(&format!("{}/readyz", server.admin_url))
            .call()
            .map(|r| r.status());
        slowest = slowest.max(started.elapsed());
        assert!(matches!(ready, Ok(200)), "/readyz: {ready:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = attack.join().expect("flood");
    eprintln!("admin slowloris: {opened} connections opened; slowest /readyz {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "/readyz took {slowest:?}");
    server.stop();
}

/// The resident memory of a process now, in KiB.
fn vm_rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Three rounds of 1,000 slow clients (handshake done, a body trickled)
/// from 40 addresses: what the server holds afterwards does not grow from
/// round to round (memory freed by the attack goes back to the system).
#[test]
fn memory_after_slow_client_attacks_goes_back() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = process_config(dir.path());
    satellite::http::limits::raise_open_file_limit();
    let server = Serving::start(&config);
    let pid = server.child.id();
    let to = Serving::addr(&server.device_url);
    let mut builder =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("connector");
    builder.set_ca_file(&server.ca).expect("ca");
    let connector = builder.build();
    let mut after = Vec::new();
    let before = vm_rss_kib(pid);
    for _round in 0..3 {
        let slow: Vec<_> = (0..1000)
            .filter_map(|n| {
                slow_connection_from(&format!("127.0.0.{}", 2 + n % 40), &connector, to)
            })
            .collect();
        assert!(slow.len() > 900, "only {} connections", slow.len());
        std::thread::sleep(Duration::from_secs(1));
        drop(slow);
        std::thread::sleep(Duration::from_secs(7));
        after.push(vm_rss_kib(pid));
    }
    eprintln!(
        "RSS: {} MiB before, after each round {:?} MiB",
        before / 1024,
        after.iter().map(|k| k / 1024).collect::<Vec<_>>()
    );
    assert!(
        after[2] <= after[0] + 4 * 1024,
        "the server kept growing: {after:?} KiB"
    );
    server.stop();
}
