//! Device API throughput, side by side with a baseline measured in the same
//! process and run: the fast simple server a correct implementation on the
//! same crates could be (mutual-TLS identity lookup by certificate
//! fingerprint, JSON, for a registration a CSR parsed, checked and signed
//! with the openssl crate, and one durable row per message, group-committed
//! with `synchronous=FULL`). A baseline that commits once per request would
//! flatter anything that group-commits.
//!
//!     cargo bench --bench device_api     # defaults: 64 clients, 3 runs of 10 s per phase
//!     BENCH_CLIENTS=32 BENCH_SECONDS=4 BENCH_RUNS=1 cargo bench --bench device_api
//!
//! Prints, per phase, the median rate and p99 latency of both servers and our
//! ratio to the baseline; then bytes on disk per product instance and per
//! device message (ours and the baseline's) and the process RSS.
//!
//! Where PostgreSQL is installed (initdb, pg_ctl, pg_basebackup), the same
//! ENTITLEMENT phase then runs against a third server of ours on the
//! PostgreSQL backend: a local primary with a synchronous standby (every
//! commit waits for the standby), interleaved with the SQLite server, and
//! prints the PostgreSQL/SQLite ratio. BENCH_POSTGRES=0 leaves it out.

use actix_web::dev::Extensions;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::ExtendedKeyUsage;
use openssl::x509::{X509Name, X509NameBuilder, X509Req, X509ReqBuilder, X509};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use satellite::app::Satellite;
use satellite::clock::Clock;
use satellite::config::Config;
use serde_json::{json, Value};
use std::any::Any;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clients = env_or("BENCH_CLIENTS", 64) as usize;
    let seconds = env_or("BENCH_SECONDS", 10);
    let runs = env_or("BENCH_RUNS", 3).max(1) as usize;
    println!(
        "device API benchmark: {clients} concurrent clients over keep-alive mutual TLS, \
         {runs} runs of {seconds} s per phase and server, medians"
    );

    let ours = OurServer::start("");
    let base = BaselineServer::start();
    let rss_idle = rss_kib();

    // Registrations: each request is a new device with a fresh key.
    let keys: Vec<PKey<Private>> = (0..clients)
        .map(|_| satellite::pki::new_p256_key().expect("key"))
        .collect();
    let csrs: Vec<String> = keys.iter().map(csr).collect();
    let ours_reg = load(
        clients,
        seconds,
        |i, n| {
            let body = json!({"type": "REGISTRATION", "message_id": format!("r{i}-{n}"),
            "udi": {"pid": "N540-24Z8Q2C-M", "sn": format!("B{i}X{n}")}, "idtoken": ours.token,
            "hostname": "bench", "csr": csrs[i]});
            (format!("{}/SmartTransport", ours.url), body, None)
        },
        &ours.ca,
    );
    let base_reg = load(
        clients,
        seconds,
        |i, n| {
            let body = json!({"type": "REGISTRATION", "message_id": format!("r{i}-{n}"),
            "udi": {"pid": "N540-24Z8Q2C-M", "sn": format!("B{i}X{n}")}, "csr": csrs[i]});
            (format!("{}/register", base.url), body, None)
        },
        &base.ca,
    );

    // Entitlements: one registered device per client, presenting its certificate.
    let ours_ids = ours.devices(clients);
    let base_ids: Vec<(String, PKey<Private>)> = (0..clients)
        .map(|i| register_baseline(&base.url, &base.ca, &format!("E{i}")))
        .collect();
    let ours_ent = entitlements(
        clients,
        seconds,
        format!("{}/SmartTransport", ours.url),
        &ours.ca,
        &ours_ids,
    );
    let base_ent = entitlements(
        clients,
        seconds,
        format!("{}/entitlement", base.url),
        &base.ca,
        &base_ids,
    );

    let mut disk = Vec::new();
    let mut compare = |name: &str, ours_phase: &Phase, base_phase: &Phase| {
        // Interleaved, so both servers see the same machine noise.
        let (ours_before, base_before) = (ours.bytes_on_disk(), base.bytes_on_disk());
        let (o, b) = interleaved(name, runs, ("ours", ours_phase), ("baseline", base_phase));
        let (o_ok, b_ok) = (
            o.iter().map(|x| x.ok).sum::<u64>(),
            b.iter().map(|x| x.ok).sum::<u64>(),
        );
        disk.push((
            name.to_string(),
            ours.bytes_on_disk().saturating_sub(ours_before) as f64 / o_ok.max(1) as f64,
            base.bytes_on_disk().saturating_sub(base_before) as f64 / b_ok.max(1) as f64,
        ));
        let (o, b) = (Outcome::median(o), Outcome::median(b));
        println!(
            "{name:<13} ours {:>7.0}/s p99 {:>6.1} ms ({} failed)   baseline {:>7.0}/s p99 {:>6.1} ms ({} failed)   ratio {:.2}",
            o.rate, o.p99_ms, o.failed, b.rate, b.p99_ms, b.failed, o.rate / b.rate.max(1e-9)
        );
    };
    compare("registration", &ours_reg, &base_reg);
    compare("entitlement", &ours_ent, &base_ent);
    for (name, o, b) in &disk {
        let what = if name == "registration" {
            "per product instance (its registration message included)"
        } else {
            "per device message"
        };
        println!("bytes on disk {what}: ours {o:.0}, baseline {b:.0}");
    }
    println!(
        "group commit: {} writes in {} commits",
        ours.satellite_writes(),
        ours.satellite_commits()
    );
    if env_or("BENCH_POSTGRES", 1) == 1 {
        match PgPair::start() {
            Some(pair) => {
                let pg = OurServer::start(&pair.storage());
                let pg_ids = pg.devices(clients);
                let pg_ent = entitlements(
                    clients,
                    seconds,
                    format!("{}/SmartTransport", pg.url),
                    &pg.ca,
                    &pg_ids,
                );
                let (s, p) = interleaved(
                    "entitlement",
                    runs,
                    ("ours on SQLite", &ours_ent),
                    ("ours on PostgreSQL", &pg_ent),
                );
                let (s, p) = (Outcome::median(s), Outcome::median(p));
                println!(
                    "entitlement   PostgreSQL (synchronous standby) {:>7.0}/s p99 {:>6.1} ms ({} failed)   SQLite {:>7.0}/s p99 {:>6.1} ms ({} failed)   PostgreSQL/SQLite {:.2}",
                    p.rate, p.p99_ms, p.failed, s.rate, s.p99_ms, s.failed, p.rate / s.rate.max(1e-9)
                );
                println!(
                    "group commit on PostgreSQL: {} writes in {} commits",
                    pg.satellite_writes(),
                    pg.satellite_commits()
                );
            }
            None => println!("PostgreSQL: not installed (initdb, pg_ctl, pg_basebackup); its comparison is left out"),
        }
    }
    println!(
        "RSS of the whole process (both servers and the load generator): {} MiB idle, {} MiB now, peak {} MiB",
        rss_idle / 1024,
        rss_kib() / 1024,
        peak_rss_kib() / 1024
    );
}

/// `runs` runs of two phases in turn, so both see the same machine noise.
fn interleaved(
    name: &str,
    runs: usize,
    (first_name, first): (&str, &Phase),
    (second_name, second): (&str, &Phase),
) -> (Vec<Outcome>, Vec<Outcome>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        // On stderr, so a profiler can be attached to one phase of one server.
        eprintln!("{name}: {first_name}, run {run}");
        a.push(first.run());
        eprintln!("{name}: {second_name}, run {run}");
        b.push(second.run());
    }
    (a, b)
}

/// The ENTITLEMENT phase: each client a registered device presenting its
/// certificate, asking for 1-4 units of one tag in turn.
fn entitlements<'a>(
    clients: usize,
    seconds: u64,
    endpoint: String,
    ca: &Path,
    identities: &'a [(String, PKey<Private>)],
) -> Phase<'a> {
    load(
        clients,
        seconds,
        move |i, n| {
            let body = json!({"type": "ENTITLEMENT", "message_id": format!("e{i}-{n}"),
            "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1 + (n % 4)}]});
            (endpoint.clone(), body, Some(i))
        },
        ca,
    )
    .with_identities(identities)
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// Database file and its WAL, in bytes.
fn database_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

// ---------------------------------------------------------------- load

type Request<'a> = dyn Fn(usize, u64) -> (String, Value, Option<usize>) + Sync + 'a;

struct Phase<'a> {
    clients: usize,
    seconds: u64,
    make: Box<Request<'a>>,
    ca: std::path::PathBuf,
    identities: Option<&'a [(String, PKey<Private>)]>,
}

struct Outcome {
    ok: u64,
    failed: u64,
    rate: f64,
    p99_ms: f64,
}

impl Outcome {
    /// The run with the median rate (its own p99 with it).
    fn median(mut runs: Vec<Outcome>) -> Outcome {
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let middle = runs.len() / 2;
        runs.swap_remove(middle)
    }
}

fn load<'a>(
    clients: usize,
    seconds: u64,
    make: impl Fn(usize, u64) -> (String, Value, Option<usize>) + Sync + 'a,
    ca: &Path,
) -> Phase<'a> {
    Phase {
        clients,
        seconds,
        make: Box::new(make),
        ca: ca.to_path_buf(),
        identities: None,
    }
}

impl<'a> Phase<'a> {
    fn with_identities(mut self, ids: &'a [(String, PKey<Private>)]) -> Self {
        self.identities = Some(ids);
        self
    }

    fn run(&self) -> Outcome {
        let ok = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let start = Barrier::new(self.clients + 1);
        let latencies = Mutex::new(Vec::new());
        // Each run sends new message ids: a retried id would be a replay.
        static RUN: AtomicU64 = AtomicU64::new(0);
        let run = RUN.fetch_add(1, Ordering::Relaxed) << 40;
        let elapsed = std::thread::scope(|s| {
            for i in 0..self.clients {
                let (ok, failed, stop, start, latencies) =
                    (&ok, &failed, &stop, &start, &latencies);
                s.spawn(move || {
                    let identity = self.identities.map(|ids| (ids[i].0.as_str(), &ids[i].1));
                    let agent = agent(&self.ca, identity);
                    let mut mine = Vec::with_capacity(4096);
                    start.wait();
                    let mut n = run;
                    while !stop.load(Ordering::Relaxed) {
                        let (url, body, _) = (self.make)(i, n);
                        n += 1;
                        let sent = Instant::now();
                        // The whole answer is read: its time is part of the latency.
                        let answered = agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body.to_string())
                            .map(|r| r.into_string().is_ok());
                        match answered {
                            Ok(true) => {
                                mine.push(sent.elapsed());
                                ok.fetch_add(1, Ordering::Relaxed)
                            }
                            Ok(false) | Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    if let Ok(mut all) = latencies.lock() {
                        all.extend(mine);
                    }
                });
            }
            start.wait();
            let began = Instant::now();
            std::thread::sleep(Duration::from_secs(self.seconds));
            stop.store(true, Ordering::Relaxed);
            began.elapsed()
        });
        let ok = ok.load(Ordering::Relaxed);
        let mut latencies = latencies.into_inner().unwrap_or_default();
        latencies.sort();
        let p99 = latencies
            .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        Outcome {
            ok,
            failed: failed.load(Ordering::Relaxed),
            rate: ok as f64 / elapsed.as_secs_f64(),
            p99_ms: p99.as_secs_f64() * 1000.0,
        }
    }
}

fn agent(ca: &Path, identity: Option<(&str, &PKey<Private>)>) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("ca cert")).expect("add");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert"),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    key.private_key_to_pkcs8().expect("pkcs8"),
                )),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(Duration::from_secs(30))
        .build()
}

fn csr(key: &PKey<Private>) -> String {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, "bench")
        .expect("cn");
    let mut req = X509ReqBuilder::new().expect("req");
    req.set_subject_name(&name.build()).expect("subject");
    req.set_pubkey(key).expect("key");
    req.sign(key, MessageDigest::sha256()).expect("sign");
    String::from_utf8(req.build().to_pem().expect("pem")).expect("utf8")
}

fn post(url: &str, ca: &Path, body: &Value) -> Value {
    let text = agent(ca, None)
        .post(url)
        .send_string(&body.to_string())
        .expect("post")
        .into_string()
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

fn register(url: &str, ca: &Path, token: &str, sn: &str) -> (String, PKey<Private>) {
    let key = satellite::pki::new_p256_key().expect("key");
    let answer = post(
        &format!("{url}/SmartTransport"),
        ca,
        &json!({"type": "REGISTRATION", "message_id": sn,
        "udi": {"pid": "N540-24Z8Q2C-M", "sn": sn}, "idtoken": token, "csr": csr(&key)}),
    );
    (
        answer["certificate"]
            .as_str()
            .expect("certificate")
            .to_string(),
        key,
    )
}

fn register_baseline(url: &str, ca: &Path, sn: &str) -> (String, PKey<Private>) {
    let key = satellite::pki::new_p256_key().expect("key");
    let answer = post(
        &format!("{url}/register"),
        ca,
        &json!({"udi": {"pid": "N540-24Z8Q2C-M", "sn": sn}, "csr": csr(&key)}),
    );
    (
        answer["certificate"]
            .as_str()
            .expect("certificate")
            .to_string(),
        key,
    )
}

// ---------------------------------------------------------------- our server

struct OurServer {
    _dir: tempfile::TempDir,
    url: String,
    ca: std::path::PathBuf,
    token: String,
    writer: satellite::store::Writer,
    db: std::path::PathBuf,
}

impl OurServer {
    /// `storage`: a `storage:` line, or empty for the embedded database.
    fn start(storage: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("satellite.yaml");
        std::fs::write(&path, format!("role: cloud\ndevice: {{ listen: 127.0.0.1:0, registrations_per_minute: 100000 }}\nadmin: {{ listen: 127.0.0.1:0 }}\nlog: {{ level: error }}\n{storage}")).expect("config");
        let config = Config::load(&path).expect("config");
        let clock = Clock::system();
        let satellite = Satellite::open(config.clone(), clock.clone()).expect("open");
        let now = clock.unix();
        let mut conn = satellite::store::Location::of(&config)
            .connect()
            .expect("db");
        let catalog = satellite::licensing::catalog::Catalog::builtin();
        let token = satellite::store::transaction(&mut conn, |c| {
            satellite::inventory::add_license(
                c,
                &catalog,
                config.role,
                &config.account,
                &satellite::inventory::LicenseOrder {
                    virtual_account: "Default",
                    sku: "ESS-AC-10G-RTU-1",
                    quantity: 1_000_000,
                    start: None,
                    end: None,
                },
                now,
            )?;
            satellite::inventory::create_token(
                c,
                &config.account,
                "Default",
                &satellite::domain::TokenTerms {
                    days: 30,
                    max_uses: None,
                    description: "bench".into(),
                    export_controlled: true,
                },
                now,
            )
        })
        .expect("token")
        .token;
        let writer = satellite.store.writer().clone();
        let listeners = satellite.bind().expect("bind");
        let config = config.clone();
        let port = listeners.device.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(satellite.serve(listeners, std::future::pending()))
                .expect("serve");
        });
        std::thread::sleep(Duration::from_millis(300));
        Self {
            ca: dir.path().join("data/ca.pem"),
            _dir: dir,
            url: format!("https://127.0.0.1:{port}"),
            token,
            writer,
            db: config.database_path(),
        }
    }

    /// `n` registered devices, one per client, with their keys.
    fn devices(&self, n: usize) -> Vec<(String, PKey<Private>)> {
        (0..n)
            .map(|i| register(&self.url, &self.ca, &self.token, &format!("E{i}")))
            .collect()
    }

    fn bytes_on_disk(&self) -> u64 {
        database_bytes(&self.db)
    }

    fn satellite_writes(&self) -> u64 {
        self.writer.stats().writes.load(Ordering::Relaxed)
    }

    fn satellite_commits(&self) -> u64 {
        self.writer.stats().commits.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// A PostgreSQL primary on loopback with a synchronous standby (streaming
/// replication, `synchronous_standby_names = '*'`, fsync on): what a
/// Patroni pair commits like, on one machine. Stopped when dropped.
struct PgPair {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

fn pg_bin() -> Option<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_basebackup").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL program, as `postgres` when this is root (it refuses root).
fn pg_command(bin: &Path, program: &str) -> std::process::Command {
    let exe = bin.join(program);
    if as_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    }
}

fn pg_run(bin: &Path, program: &str, args: &[&str]) {
    let out = pg_command(bin, program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgPair {
    fn start() -> Option<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::Builder::new().prefix("bench-pg").tempdir().ok()?;
        if as_root() {
            std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .ok()?;
        }
        let port = free_port();
        let standby_port = free_port();
        let text = |p: &Path| p.to_string_lossy().into_owned();
        let (primary, standby) = (dir.path().join("primary"), dir.path().join("standby"));
        pg_run(
            &bin,
            "initdb",
            &[
                "-D",
                &text(&primary),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        std::fs::write(
            primary.join("postgresql.auto.conf"),
            "synchronous_standby_names = '*'\nsynchronous_commit = on\nmax_connections = 200\n",
        )
        .ok()?;
        let start = |data: &Path, port: u16| {
            pg_run(
                &bin,
                "pg_ctl",
                &[
                    "-D",
                    &text(data),
                    "-o",
                    &format!(
                        "-p {port} -k {} -c listen_addresses=127.0.0.1",
                        text(dir.path())
                    ),
                    "-l",
                    &format!("{}.log", text(data)),
                    "-w",
                    "start",
                ],
            )
        };
        start(&primary, port);
        pg_run(
            &bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-D",
                &text(&standby),
                "-R",
                "-X",
                "stream",
            ],
        );
        start(&standby, standby_port);
        let pair = Self { dir, bin, port };
        // Until the standby streams, a commit would wait for it.
        pg_run(
            &pair.bin,
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE bench",
            ],
        );
        Some(pair)
    }

    fn storage(&self) -> String {
        format!(
            "storage: {{ backend: postgres, url: \"postgresql://postgres@127.0.0.1:{}/bench\" }}\n",
            self.port
        )
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for data in ["standby", "primary"] {
            let data = self.dir.path().join(data);
            let _ = pg_command(&self.bin, "pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "stop"])
                .output();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

// ---------------------------------------------------------------- baseline

/// The fast simple server: mutual TLS with the device found by the SHA-256
/// of its certificate, JSON in and out, a CSR parsed, checked and signed for
/// a registration, and one durable row per message through a group-commit
/// writer (WAL, `synchronous=FULL`): each answer is sent after its commit.
struct Baseline {
    ca_cert: X509,
    ca_key: PKey<Private>,
    path: std::path::PathBuf,
    writer: Mutex<std::sync::mpsc::Sender<Row>>,
}

/// One row to commit and the caller waiting for that commit.
struct Row {
    sql: &'static str,
    values: Vec<rusqlite::types::Value>,
    done: tokio::sync::oneshot::Sender<bool>,
}

#[derive(Clone, Copy)]
struct Fingerprint([u8; 32]);

struct BaselineServer {
    _dir: tempfile::TempDir,
    url: String,
    ca: std::path::PathBuf,
    db: std::path::PathBuf,
}

fn baseline_connection(path: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("db");
    db.busy_timeout(Duration::from_secs(10)).expect("busy");
    db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .expect("pragmas");
    db
}

/// Takes every row waiting, writes them in one transaction, answers after COMMIT.
fn baseline_writer(db: rusqlite::Connection, rows: std::sync::mpsc::Receiver<Row>) {
    while let Ok(first) = rows.recv() {
        let mut group = vec![first];
        while let Ok(more) = rows.try_recv() {
            group.push(more);
        }
        let mut written = Vec::with_capacity(group.len());
        let began = db.execute_batch("BEGIN IMMEDIATE").is_ok();
        for row in &group {
            written.push(
                began
                    && db
                        .prepare_cached(row.sql)
                        .and_then(|mut s| s.execute(rusqlite::params_from_iter(&row.values)))
                        .is_ok(),
            );
        }
        let committed = began && db.execute_batch("COMMIT").is_ok();
        for (row, ok) in group.into_iter().zip(written) {
            let _ = row.done.send(committed && ok);
        }
    }
}

impl Baseline {
    async fn commit(&self, sql: &'static str, values: Vec<rusqlite::types::Value>) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        let queued = self
            .writer
            .lock()
            .map(|w| w.send(Row { sql, values, done }).is_ok())
            .unwrap_or(false);
        queued && wait.await.unwrap_or(false)
    }

    /// The device a certificate belongs to, on a connection of this thread.
    fn device(&self, fingerprint: &[u8; 32]) -> Option<String> {
        thread_local! {
            static READER: std::cell::RefCell<Option<rusqlite::Connection>> = const { std::cell::RefCell::new(None) };
        }
        READER.with(|reader| {
            let mut reader = reader.borrow_mut();
            let conn = reader.get_or_insert_with(|| baseline_connection(&self.path));
            conn.prepare_cached("SELECT sn FROM devices WHERE fingerprint = ?1")
                .and_then(|mut s| s.query_row([fingerprint.as_slice()], |r| r.get(0)))
                .ok()
        })
    }
}

impl BaselineServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        std::fs::create_dir(&ca_dir).expect("dir");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ca =
            satellite::pki::CertificateAuthority::create(&ca_dir, "Baseline CA", now).expect("ca");
        ca.create_server_certificate(&ca_dir, &["127.0.0.1".into()], now)
            .expect("server cert");
        let path = dir.path().join("baseline.db");
        let db = baseline_connection(&path);
        db.execute_batch(
            "CREATE TABLE devices (sn TEXT PRIMARY KEY, instance_id TEXT NOT NULL,
                fingerprint BLOB NOT NULL UNIQUE, certificate TEXT NOT NULL);
             CREATE TABLE messages (device TEXT NOT NULL, message_id TEXT NOT NULL,
                body TEXT NOT NULL, PRIMARY KEY (device, message_id)) WITHOUT ROWID;",
        )
        .expect("schema");
        let (rows, queue) = std::sync::mpsc::channel();
        std::thread::spawn(move || baseline_writer(db, queue));
        let state = web::Data::new(Baseline {
            ca_cert: ca.certificate().clone(),
            ca_key: PKey::private_key_from_pem(&std::fs::read(ca_dir.join("ca.key")).expect("key"))
                .expect("key"),
            path: path.clone(),
            writer: Mutex::new(rows),
        });
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.certificate_der().expect("der")))
            .expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .expect("verifier");
        let chain = CertificateDer::pem_file_iter(ca_dir.join("server.pem"))
            .expect("pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_file(ca_dir.join("server.key")).expect("key");
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("tls");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new().app_data(state.clone())
                        .route("/register", web::post().to(baseline_register))
                        .route("/entitlement", web::post().to(baseline_entitlement))
                })
                .on_connect(|conn: &dyn Any, ext: &mut Extensions| {
                    if let Some(tls) = conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>() {
                        if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                            ext.insert(Fingerprint(openssl::sha::sha256(cert.as_ref())));
                        }
                    }
                })
                .disable_signals()
                .listen_rustls_0_23(listener, tls).expect("listen")
                .run().await.expect("run");
            });
        });
        std::thread::sleep(Duration::from_millis(300));
        Self {
            url: format!("https://127.0.0.1:{port}"),
            ca: ca_dir.join("ca.pem"),
            _dir: dir,
            db: path,
        }
    }

    fn bytes_on_disk(&self) -> u64 {
        database_bytes(&self.db)
    }
}

/// Parses and checks the CSR and signs a certificate for it (CN = a new id).
fn baseline_sign(state: &Baseline, csr: &str) -> Option<(String, String, [u8; 32])> {
    let req = X509Req::from_pem(csr.as_bytes()).ok()?;
    let key = req.public_key().ok()?;
    if !req.verify(&key).ok()? {
        return None;
    }
    let instance_id = uuid::Uuid::new_v4().to_string();
    let mut name = X509Name::builder().ok()?;
    name.append_entry_by_nid(Nid::COMMONNAME, &instance_id)
        .ok()?;
    let name = name.build();
    let mut b = X509::builder().ok()?;
    b.set_version(2).ok()?;
    let mut serial = openssl::bn::BigNum::new().ok()?;
    serial
        .rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .ok()?;
    b.set_serial_number(serial.to_asn1_integer().ok()?.as_ref())
        .ok()?;
    b.set_subject_name(&name).ok()?;
    b.set_issuer_name(state.ca_cert.subject_name()).ok()?;
    b.set_pubkey(&key).ok()?;
    b.set_not_before(openssl::asn1::Asn1Time::days_from_now(0).ok()?.as_ref())
        .ok()?;
    b.set_not_after(openssl::asn1::Asn1Time::days_from_now(365).ok()?.as_ref())
        .ok()?;
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().ok()?)
        .ok()?;
    b.sign(&state.ca_key, MessageDigest::sha256()).ok()?;
    let cert = b.build();
    let fingerprint = openssl::sha::sha256(&cert.to_der().ok()?);
    let pem = String::from_utf8(cert.to_pem().ok()?).ok()?;
    Some((pem, instance_id, fingerprint))
}

async fn baseline_register(state: web::Data<Baseline>, body: web::Bytes) -> HttpResponse {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let (Some(csr), Some(sn)) = (
        v["csr"].as_str().map(str::to_string),
        v["udi"]["sn"].as_str().map(str::to_string),
    ) else {
        return HttpResponse::BadRequest().finish();
    };
    let signer = state.clone();
    let Ok(Some((pem, instance_id, fingerprint))) =
        web::block(move || baseline_sign(&signer, &csr)).await
    else {
        return HttpResponse::BadRequest().finish();
    };
    let stored = state
        .commit(
            "INSERT OR REPLACE INTO devices VALUES (?1, ?2, ?3, ?4)",
            vec![
                sn.into(),
                instance_id.clone().into(),
                fingerprint.to_vec().into(),
                pem.clone().into(),
            ],
        )
        .await;
    if stored {
        HttpResponse::Ok().json(json!({"certificate": pem, "instance_id": instance_id}))
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

async fn baseline_entitlement(
    state: web::Data<Baseline>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(Fingerprint(fp)) = req.conn_data::<Fingerprint>().copied() else {
        return HttpResponse::Forbidden().finish();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let Some(device) = state.device(&fp) else {
        return HttpResponse::Forbidden().finish();
    };
    let message_id = v["message_id"].as_str().unwrap_or_default().to_string();
    let answer = json!({"status": "AUTHORIZED", "entitlements": v["entitlements"]}).to_string();
    let stored = state
        .commit(
            "INSERT INTO messages VALUES (?1, ?2, ?3)",
            vec![device.into(), message_id.into(), answer.clone().into()],
        )
        .await;
    if stored {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(answer)
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}
