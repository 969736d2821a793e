//! A satellite at scale: N product instances (each registered, with an
//! identity certificate, a registration event, an ENTITLEMENT answer kept
//! for retries and two entitlement tags in use), seeded straight through the
//! store in one transaction. Then, for each N, what an operator sees:
//!
//! - bytes on disk per product instance;
//! - `satellite serve`: start-up time (process start to the banner) on the
//!   seeded database and again after a clean stop, and the server's
//!   resident memory (after start-up, and its peak at the end);
//! - `satellite instance list --json` (all of them, streamed in pages) and
//!   one REST-sized page (1,000) at the start and at the end of the list;
//! - the daily jobs (usage snapshot, authorizations lapsing for a tenth of
//!   the instances, the Periodic Record) run through the server's writer;
//! - `satellite export` (usage bundle: time, size), the cloud's `process`
//!   of it, and `satellite import` of the answer, each as its own process
//!   with its peak resident memory (GNU time);
//! - `satellite backup` of the satellite: time and peak resident memory.
//!
//! Beside every step a probe takes the database's write lock every
//! millisecond and records the longest it had to wait: how long the step
//! kept every other writer (routers' answers included) waiting.
//!
//!     cargo bench --bench scale                        # 10,000 and 100,000
//!     SCALE=10000,100000,1000000 cargo bench --bench scale
//!
//! Not a timed test: it measures, it asserts only that each step succeeded.

use rusqlite::{params, Connection};
use satellite::clock::Clock;
use satellite::config::{Config, Role};
use satellite::domain::{TokenSecret, TokenTerms};
use satellite::licensing::catalog::SharedCatalog;
use satellite::licensing::jobs::Jobs;
use satellite::notify::Notifier;
use satellite::ops::{self, Page};
use satellite::store::{self, accounts, tokens, Db, Store};
use satellite::sync::bundle::{self, Limits};
use satellite::sync::{self, cloud, satellite as sat, Keys, SyncError};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_satellite");
/// Every node's clock: fixed, so the Periodic Record (06:00 on the 1st) falls
/// inside the jobs' window.
const NOW: &str = "2027-01-01T07:00:00Z";

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = match std::env::var("SCALE") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000],
    };
    let mut rows = Vec::new();
    for n in sizes {
        rows.push(run(n));
    }
    println!();
    println!("{}", Figures::header());
    for r in &rows {
        println!("{}", r.line());
    }
    println!("(hold = the longest a probe waited for the write lock during that step)");
}

#[derive(Default)]
struct Figures {
    n: usize,
    seed_s: f64,
    bytes_per_instance: f64,
    start_s: f64,
    restart_s: f64,
    rss_start_mb: f64,
    rss_peak_mb: f64,
    list_s: f64,
    page_first_ms: f64,
    page_last_ms: f64,
    jobs_s: f64,
    jobs_hold_ms: f64,
    export_s: f64,
    export_hold_ms: f64,
    bundle_bytes: u64,
    process_s: f64,
    process_mb: f64,
    process_anon_mb: f64,
    import_s: f64,
    import_mb: f64,
    import_hold_ms: f64,
    db_mb: f64,
    backup_s: f64,
    backup_mb: f64,
    backup_anon_mb: f64,
}

impl Figures {
    fn header() -> String {
        format!(
            "{:>9} {:>8} {:>9} {:>8} {:>9} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>11} {:>9} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6} {:>8} {:>7} {:>7}",
            "instances",
            "seed_s",
            "B/inst",
            "start_s",
            "restart_s",
            "rss_MB",
            "peak_MB",
            "list_s",
            "pg0_ms",
            "pgN_ms",
            "jobs_s",
            "hold_ms",
            "export_s",
            "hold_ms",
            "bundle_B",
            "process_s",
            "proc_MB",
            "anon_MB",
            "import_s",
            "imp_MB",
            "hold_ms",
            "db_MB",
            "backup_s",
            "bak_MB",
            "anon_MB"
        )
    }

    fn line(&self) -> String {
        format!(
            "{:>9} {:>8.1} {:>9.0} {:>8.2} {:>9.2} {:>8.0} {:>8.0} {:>7.2} {:>8.1} {:>8.1} {:>7.2} {:>8.1} {:>8.2} {:>8.1} {:>11} {:>9.2} {:>7.0} {:>7.0} {:>8.2} {:>7.0} {:>8.1} {:>6.0} {:>8.2} {:>7.0} {:>7.0}",
            self.n,
            self.seed_s,
            self.bytes_per_instance,
            self.start_s,
            self.restart_s,
            self.rss_start_mb,
            self.rss_peak_mb,
            self.list_s,
            self.page_first_ms,
            self.page_last_ms,
            self.jobs_s,
            self.jobs_hold_ms,
            self.export_s,
            self.export_hold_ms,
            self.bundle_bytes,
            self.process_s,
            self.process_mb,
            self.process_anon_mb,
            self.import_s,
            self.import_mb,
            self.import_hold_ms,
            self.db_mb,
            self.backup_s,
            self.backup_mb,
            self.backup_anon_mb
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn node_config(dir: &Path, yaml: &str) -> Config {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("satellite.yaml");
    std::fs::write(&path, yaml).expect("config");
    Config::load(&path).expect("config")
}

fn read(path: &Path) -> bundle::Opened {
    let bytes = std::fs::read(path).expect("bundle");
    bundle::open(bytes, &Limits::default()).expect("valid bundle")
}

fn clock() -> Clock {
    let at = time::OffsetDateTime::parse(NOW, &time::format_description::well_known::Rfc3339)
        .expect("time");
    Clock::starting_at(at)
}

/// Takes the write lock every millisecond on a connection of its own and
/// keeps the longest wait since the last `take`.
struct Probe {
    longest_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(db: &Path) -> Self {
        let conn = Connection::open(db).expect("probe connection");
        conn.busy_handler(Some(|_| {
            std::thread::sleep(Duration::from_micros(100));
            true
        }))
        .expect("busy handler");
        let longest_us = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (longest_us.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                // An empty immediate transaction: the write lock, no fsync.
                conn.execute_batch("BEGIN IMMEDIATE; COMMIT")
                    .expect("probe");
                l.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            longest_us,
            stop,
            thread: Some(thread),
        }
    }

    /// The longest wait, in ms, since the last call.
    fn take(&self) -> f64 {
        self.longest_us.swap(0, Ordering::Relaxed) as f64 / 1000.0
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rss_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn cli(cfg: &Config, args: &[&str]) -> (f64, String) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&cfg.source)
        .args(args)
        .env("SATELLITE_NOW", NOW)
        .stderr(Stdio::inherit())
        .output()
        .expect("satellite");
    let s = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "satellite {args:?} failed");
    (s, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cli`, also the command's peak memory in MB: all resident pages, and
/// the anonymous ones (heap) alone, sampled from /proc every 5 ms until it
/// exits. (The rest is the database file mapped in: page cache the kernel
/// takes back at will.)
fn cli_peak(cfg: &Config, args: &[&str]) -> (f64, String, f64, f64) {
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg.source)
        .args(args)
        .env("SATELLITE_NOW", NOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("satellite");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let pid = child.id();
    let (mut peak, mut anon) = (0.0f64, 0.0f64);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak = peak.max(rss_mb(pid, "VmHWM:"));
        anon = anon.max(rss_mb(pid, "RssAnon:"));
        std::thread::sleep(Duration::from_millis(5));
    };
    let s = t.elapsed().as_secs_f64();
    assert!(status.success(), "satellite {args:?} failed");
    (s, reader.join().expect("stdout"), peak, anon)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// Starts `satellite serve`; returns it and the seconds to its banner.
fn serve(cfg: &Config) -> (Server, f64) {
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg.source)
        .arg("serve")
        .env("SATELLITE_NOW", NOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The banner's last line.
    for line in lines.by_ref() {
        if line.expect("banner").contains("instance list") {
            break;
        }
    }
    let s = t.elapsed().as_secs_f64();
    std::thread::spawn(move || for _ in lines {});
    (Server(child), s)
}

fn run(n: usize) -> Figures {
    let mut f = Figures {
        n,
        ..Default::default()
    };
    eprintln!("--- {n} product instances");
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let now = clock.unix();
    let cloud_cfg = node_config(
        &tmp.path().join("cloud"),
        "name: cloud\nrole: cloud\naccount: Bench\nlog: { level: warn }\n",
    );
    let sat_cfg = node_config(
        &tmp.path().join("sat"),
        &format!(
            "name: site\naccount: Bench\nlog: {{ level: warn }}\n\
             device: {{ listen: 127.0.0.1:{} }}\nadmin: {{ listen: 127.0.0.1:{} }}\n",
            free_port(),
            free_port()
        ),
    );
    satellite::setup::ensure(&cloud_cfg, &clock).expect("cloud init");
    satellite::setup::ensure(&sat_cfg, &clock).expect("satellite init");
    let cloud_keys = Keys::load(&cloud_cfg, now).expect("keys");
    let sat_keys = Keys::load(&sat_cfg, now).expect("keys");
    let mut cdb = store::connect(&cloud_cfg.database_path()).expect("db");
    let mut sdb = store::connect(&sat_cfg.database_path()).expect("db");

    // Enough licenses at the cloud for every instance: pools in compliance.
    store::transaction(&mut cdb, |c| {
        let catalog = sync::current_catalog(c, &cloud_cfg)?;
        for _ in 0..(4 * n).div_ceil(1_000_000) {
            satellite::inventory::add_license(
                c,
                &catalog,
                Role::Cloud,
                "Bench",
                &satellite::inventory::LicenseOrder {
                    virtual_account: "Default",
                    sku: "ESS-AC-10G-RTU-1",
                    quantity: 1_000_000,
                    start: None,
                    end: None,
                },
                now,
            )?;
        }
        Ok::<_, SyncError>(())
    })
    .expect("licenses");
    // Register the satellite for Default, the USB way.
    let added = store::transaction(&mut cdb, |c| {
        let catalog = sync::current_catalog(c, &cloud_cfg)?;
        cloud::add_satellite(
            c,
            &cloud_keys.node(&cloud_cfg, &catalog, now),
            "site",
            &["Default".into()],
            30,
        )
    })
    .expect("satellite add");
    let request = store::transaction(&mut sdb, |c| {
        let catalog = sync::current_catalog(c, &sat_cfg)?;
        sat::request_registration(c, &sat_keys.node(&sat_cfg, &catalog, now), &added.token)
    })
    .expect("register");
    let answer = process(
        &mut cdb,
        &cloud_cfg,
        &cloud_keys,
        Path::new(&request.path),
        now,
    );
    import(&mut sdb, &sat_cfg, &sat_keys, &answer, now);

    let t = Instant::now();
    seed(&mut sdb, &sat_cfg, n, now);
    f.seed_s = t.elapsed().as_secs_f64();
    drop(sdb);
    {
        let c = Connection::open(sat_cfg.database_path()).expect("db");
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
    let db_bytes = std::fs::metadata(sat_cfg.database_path())
        .map(|m| m.len())
        .unwrap_or(0);
    f.bytes_per_instance = db_bytes as f64 / n as f64;
    eprintln!(
        "seeded in {:.1} s: database {} MB",
        f.seed_s,
        db_bytes >> 20
    );

    let probe = Probe::start(&sat_cfg.database_path());

    // The daily jobs, through a writer as the server runs them.
    {
        let store = Store::open(&satellite::store::Location::of(&sat_cfg)).expect("store");
        let catalog = store
            .read(|c| {
                SharedCatalog::load(c, None)
                    .map_err(|e| satellite::error::Error::invalid("catalog", e))
            })
            .expect("catalog");
        let jobs = Jobs {
            store: store.clone(),
            catalog: Arc::new(catalog),
            clock: clock.clone(),
            account: "Bench".into(),
            report_schedule: satellite::config::check_cron(&sat_cfg.reports.schedule)
                .expect("schedule"),
            notifier: Arc::new(Notifier::new(None, None, clock.clone())),
        };
        probe.take();
        let t = Instant::now();
        let outcome = jobs.run_due().expect("jobs");
        f.jobs_s = t.elapsed().as_secs_f64();
        f.jobs_hold_ms = probe.take();
        let stats = store.writer().stats();
        eprintln!(
            "jobs: {:.2} s, write lock waited for {:.1} ms; the writer's longest group {:.1} ms \
             of which COMMIT {:.1} ms, its longest checkpoint between groups {:.1} ms: {outcome:?}",
            f.jobs_s,
            f.jobs_hold_ms,
            stats.longest_hold_us.load(Ordering::Relaxed) as f64 / 1000.0,
            stats.longest_commit_us.load(Ordering::Relaxed) as f64 / 1000.0,
            stats.longest_checkpoint_us.load(Ordering::Relaxed) as f64 / 1000.0,
        );
    }

    let (server, start_s) = serve(&sat_cfg);
    f.start_s = start_s;
    let pid = server.0.id();
    std::thread::sleep(Duration::from_secs(2));
    f.rss_start_mb = rss_mb(pid, "VmRSS:");
    eprintln!(
        "serve: banner after {:.2} s; RSS {:.0} MB (anon {:.0} MB, file {:.0} MB)",
        f.start_s,
        f.rss_start_mb,
        rss_mb(pid, "RssAnon:"),
        rss_mb(pid, "RssFile:")
    );

    let (list_s, out) = cli(&sat_cfg, &["instance", "list", "--json"]);
    f.list_s = list_s;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json list");
    assert_eq!(listed.len(), n, "instance list --json lists every instance");
    drop(listed);
    drop(out);
    {
        let conn = store::connect(&sat_cfg.database_path()).expect("db");
        let caller = ops::Caller::local_admin();
        let filter = ops::instances::InstanceFilter::default();
        for (offset, into) in [(0, &mut f.page_first_ms), (n - 1000, &mut f.page_last_ms)] {
            let page = Page::new(Some(1000), Some(offset as i64)).expect("page");
            let t = Instant::now();
            let got =
                ops::instances::list(&conn, &caller, "Bench", &filter, page, now).expect("page");
            *into = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(got.len(), 1000);
        }
    }
    eprintln!(
        "server RSS after the listing: {:.0} MB",
        rss_mb(pid, "VmRSS:")
    );
    eprintln!(
        "instance list --json: {:.2} s; a page of 1000 at 0: {:.1} ms, at {}: {:.1} ms",
        f.list_s,
        f.page_first_ms,
        n - 1000,
        f.page_last_ms
    );

    probe.take();
    let (export_s, out) = cli(&sat_cfg, &["export", "--json"]);
    f.export_s = export_s;
    f.export_hold_ms = probe.take();
    let written: serde_json::Value = serde_json::from_str(&out).expect("export json");
    let usage = PathBuf::from(written["path"].as_str().expect("path"));
    f.bundle_bytes = std::fs::metadata(&usage).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "export: {:.2} s, {} bytes, write lock held {:.1} ms",
        f.export_s, f.bundle_bytes, f.export_hold_ms
    );

    eprintln!(
        "server RSS after the export: {:.0} MB",
        rss_mb(pid, "VmRSS:")
    );
    let (process_s, out, process_mb, process_anon_mb) = cli_peak(
        &cloud_cfg,
        &["process", usage.to_str().expect("utf8"), "--json"],
    );
    (f.process_s, f.process_mb, f.process_anon_mb) = (process_s, process_mb, process_anon_mb);
    let processed: serde_json::Value = serde_json::from_str(&out).expect("process json");
    let answer = PathBuf::from(processed["path"].as_str().expect("answer path"));
    probe.take();
    let (import_s, _, import_mb, _) = cli_peak(
        &sat_cfg,
        &["import", answer.to_str().expect("utf8"), "--json"],
    );
    (f.import_s, f.import_mb) = (import_s, import_mb);
    f.import_hold_ms = probe.take();
    eprintln!(
        "cloud process: {:.2} s, peak {:.0} MB ({:.0} MB heap); satellite import: {:.2} s, peak {:.0} MB, write lock held {:.1} ms",
        f.process_s, f.process_mb, f.process_anon_mb, f.import_s, f.import_mb, f.import_hold_ms
    );
    f.db_mb = std::fs::metadata(sat_cfg.database_path())
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    let backup_file = sat_cfg.data_dir.with_file_name("bench-backup.zip");
    let _ = std::fs::remove_file(&backup_file);
    let (backup_s, _, backup_mb, backup_anon_mb) = cli_peak(
        &sat_cfg,
        &["backup", backup_file.to_str().expect("utf8"), "--json"],
    );
    (f.backup_s, f.backup_mb, f.backup_anon_mb) = (backup_s, backup_mb, backup_anon_mb);
    let _ = std::fs::remove_file(&backup_file);
    eprintln!(
        "backup of a {:.0} MB database: {:.2} s, peak {:.0} MB ({:.0} MB heap)",
        f.db_mb, f.backup_s, f.backup_mb, f.backup_anon_mb
    );
    f.rss_peak_mb = rss_mb(pid, "VmHWM:");
    eprintln!("server peak RSS {:.0} MB", f.rss_peak_mb);
    // Nothing else holds the database while the server stops.
    drop(probe);
    drop(cdb);
    drop(server);
    // A restart after that clean stop.
    let (server, restart_s) = serve(&sat_cfg);
    f.restart_s = restart_s;
    eprintln!("serve again after a clean stop: banner after {restart_s:.2} s");
    drop(server);
    f
}

/// What registration and one ENTITLEMENT leave behind for each instance,
/// written row by row in one transaction. A tenth of the instances fell
/// silent 90 days ago: their authorization lapses in the jobs' window.
fn seed(db: &mut Db, cfg: &Config, n: usize, now: i64) {
    const DAY: i64 = 86_400;
    let pem = std::fs::read_to_string(cfg.data_dir.join(satellite::pki::CA_CERT_FILE))
        .expect("a certificate's worth of PEM");
    let (va, token) = store::transaction(db, |c| {
        let va = accounts::require(c, "Bench", "Default", now)?;
        let terms = TokenTerms {
            days: 30,
            max_uses: None,
            description: String::new(),
            export_controlled: true,
        };
        let token = tokens::insert(c, va.id, &TokenSecret::generate()?, &terms, now)?;
        // The jobs last ran two days ago and took yesterday's snapshot.
        store::settings::set(c, "jobs.last_run", &(now - 2 * DAY).to_string())?;
        store::settings::set(c, "jobs.last_usage_snapshot", "2026-12-31")?;
        Ok::<_, satellite::error::Error>((va, token))
    })
    .expect("virtual account and token");
    // The rows themselves in bulk, straight through SQLite: what the
    // device API would have written one request at a time.
    let mut raw = Connection::open(cfg.database_path()).expect("db");
    let tx = raw.transaction().expect("tx");
    {
        let c: &Connection = &tx;
        let mut instance = c
            .prepare(
                "INSERT INTO product_instances (instance_id, virtual_account_id, pid, sn, hostname,
                   token_id, registered_at, last_contact_at, authorized_at, next_communication,
                   deadline, authorization_status)
                 VALUES (?1, ?2, 'N540-24Z8Q2C-M', ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, 'AUTHORIZED')",
            )
            .expect("sql");
        let mut cert = c
            .prepare(
                "INSERT INTO certificates (serial, fingerprint, instance_id, udi, not_before, not_after, pem)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("sql");
        let mut usage = c
            .prepare(
                "INSERT INTO entitlement_usage (instance_id, virtual_account_id, tag, count, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .expect("sql");
        let mut message = c
            .prepare(
                "INSERT INTO device_messages (udi, message_id, type, response, token_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .expect("sql");
        let mut event = c
            .prepare(
                "INSERT INTO events (at, kind, severity, virtual_account, subject, message)
                 VALUES (?1, 'registration', 'Info', 'Default', ?2, ?3)",
            )
            .expect("sql");
        for i in 0..n {
            let sn = format!("FOC{i:08}");
            let udi = format!("N540-24Z8Q2C-M:{sn}");
            let hostname = format!("router-{i}");
            // A tenth lapse now; the rest talked to us within the last day.
            let contact = if i % 10 == 0 {
                now - 90 * DAY - 3600
            } else {
                now - (i as i64 % DAY)
            };
            let registered = contact - 30 * DAY;
            instance
                .execute(params![
                    format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
                    va.id,
                    sn,
                    hostname,
                    token,
                    registered,
                    contact,
                    contact + 30 * DAY,
                    contact + 90 * DAY
                ])
                .expect("instance");
            let row = c.last_insert_rowid();
            let fingerprint = openssl::sha::sha256(&(i as u64).to_be_bytes());
            cert.execute(params![
                format!("{:016X}", i as u64 ^ 0x5a5a_0000_0000),
                fingerprint.as_slice(),
                row,
                udi,
                registered,
                registered + 365 * DAY,
                pem
            ])
            .expect("certificate");
            usage
                .execute(params![row, va.id, "ESS-AC-10G-RTU-1", 4, contact])
                .expect("usage");
            usage
                .execute(params![row, va.id, "N540-24Z8Q2C-FC-SW", 1, contact])
                .expect("usage");
            message
                .execute(params![
                    udi,
                    format!("ent-{i}"),
                    "ENTITLEMENT",
                    format!(
                        r#"{{"status":"AUTHORIZED","entitlements":[{{"tag":"ESS-AC-10G-RTU-1","count":4,"status":"AUTHORIZED"}},{{"tag":"N540-24Z8Q2C-FC-SW","count":1,"status":"AUTHORIZED"}}],"authorization":{{"authorized_at":"{0}","next_communication":"{1}","deadline":"{2}"}}}}"#,
                        contact,
                        contact + 30 * DAY,
                        contact + 90 * DAY
                    ),
                    Option::<i64>::None,
                    contact
                ])
                .expect("message");
            event
                .execute(params![
                    registered,
                    udi,
                    format!("product instance {udi} ({hostname}) registered with token abcdefgh…")
                ])
                .expect("event");
        }
    }
    tx.commit().expect("commit");
}

fn process(db: &mut Db, cfg: &Config, keys: &Keys, path: &Path, now: i64) -> PathBuf {
    let opened = read(path);
    let (processed, _) = store::transaction(db, |c| {
        let catalog = sync::current_catalog(c, cfg)?;
        cloud::process(c, &keys.node(cfg, &catalog, now), &opened)
    })
    .expect("process");
    PathBuf::from(processed.path)
}

fn import(db: &mut Db, cfg: &Config, keys: &Keys, path: &Path, now: i64) {
    let opened = read(path);
    store::transaction(db, |c| {
        let catalog = sync::current_catalog(c, cfg)?;
        sat::import(c, &keys.node(cfg, &catalog, now), &opened)
    })
    .map_err(|e: SyncError| e.to_string())
    .expect("import");
}
