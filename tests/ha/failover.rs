//! The failover test, on one machine with the real parts: etcd, two
//! PostgreSQL nodes under Patroni (synchronous replication), two satellite
//! nodes (`satellite serve` processes on the shared database) and HAProxy
//! in front, all on loopback ports, configured from the templates under
//! `packaging/ha/`. Routers are driven through HAProxy (registrations and
//! ENTITLEMENTs, every acknowledged message recorded, every unanswered one
//! sent again as a router does) while, each after the cluster is whole
//! again:
//!
//! 1. the PostgreSQL primary is killed (patroni and postgres, kill -9),
//! 2. the active satellite node is killed (kill -9),
//! 3. both at once.
//!
//! Then every acknowledged message
//! must be in the database exactly once, and every pool must equal the
//! sum of the routers' last acknowledged demand. It prints, for each kill,
//! how long until every router was answered again.
//!
//! Ignored by `cargo test` (it takes about two minutes and needs Debian's
//! patroni, etcd-server and haproxy): `.ci/run` runs it with
//! `cargo test --test it ha_failover -- --ignored --nocapture`.

use crate::client::{agent, csr, p256, registration};
use crate::postgres::{as_postgres, is_root};
use crate::sync_live::free_port;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SUPERUSER_PASSWORD: &str = "ha test superuser";
const REPLICATION_PASSWORD: &str = "ha test replication";
const SATELLITE_PASSWORD: &str = "ha test satellite";
const ROUTERS: usize = 6;
const TAG: &str = "ESS-AC-10G-RTU-1";

/// A child process killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(name: &str, mut command: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log");
        let err = out.try_clone().expect("log");
        use std::os::unix::process::CommandExt;
        // A group of its own: `kill9` takes runuser, Patroni and the
        // postgres it runs with it, as a machine dying would.
        let child = command
            .process_group(0)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { child }
    }

    fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn template(name: &str, values: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/ha")
        .join(name);
    let mut text = std::fs::read_to_string(&path).expect("template");
    for (key, value) in values {
        text = text.replace(&format!("@{key}@"), value);
    }
    text
}

/// Where the test's processes log, for `wait_until` to show when it fails.
static LOGS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The last lines of every process's log, then a panic.
fn fail(what: String) -> ! {
    for entry in LOGS
        .get()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
    {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            eprintln!("--- {}:", path.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
    panic!("{what}");
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let began = Instant::now();
    while !done() {
        if began.elapsed() > within {
            fail(format!("{what}: not within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_status(url: &str) -> u16 {
    match ureq::get(url).timeout(Duration::from_secs(2)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(_) => 0,
    }
}

/// One PostgreSQL node under Patroni.
struct PgNode {
    name: String,
    config: PathBuf,
    pg_port: u16,
    rest_port: u16,
    log: PathBuf,
    patroni: Option<Proc>,
}

impl PgNode {
    fn start(&mut self) {
        let mut command = as_postgres("patroni");
        command.arg(&self.config);
        self.patroni = Some(Proc::spawn(&self.name, command, &self.log));
    }

    fn rest(&self, path: &str) -> u16 {
        http_status(&format!("http://127.0.0.1:{}/{path}", self.rest_port))
    }

    fn is_primary(&self) -> bool {
        self.rest("primary") == 200
    }

    /// The node dies whole: Patroni, then its postgres (whose postmaster
    /// pid is in the data dir), both with SIGKILL.
    fn kill9(&mut self, data: &Path) {
        if let Some(mut patroni) = self.patroni.take() {
            patroni.kill9();
        }
        if let Ok(pid) = std::fs::read_to_string(data.join("postmaster.pid")) {
            if let Some(pid) = pid.lines().next() {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
    }
}

/// One satellite node.
struct SatNode {
    config: PathBuf,
    data: PathBuf,
    device_port: u16,
    admin_port: u16,
    log: PathBuf,
    process: Option<Proc>,
}

impl SatNode {
    fn serve(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_satellite"));
        command.arg("-c").arg(&self.config).arg("serve");
        self.process = Some(Proc::spawn("satellite", command, &self.log));
    }

    fn ready(&self) -> u16 {
        let ca = self.data.join("ca.pem");
        if !ca.exists() {
            return 0;
        }
        match agent(&ca, None)
            .get(&format!("https://127.0.0.1:{}/readyz", self.admin_port))
            .timeout(Duration::from_secs(2))
            .call()
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(_) => 0,
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("satellite");
        assert!(
            out.status.success(),
            "satellite {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// What a router was acknowledged: message id -> demand it carried.
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<(String, i64)>,
    /// Per router, its demand as last acknowledged.
    demand: BTreeMap<usize, i64>,
    /// Per router, when the message it was last answered for was first
    /// sent, and when the answer came: an answer in flight when a part is
    /// killed says nothing of the recovery.
    answered: BTreeMap<usize, (Instant, Instant)>,
}

/// Sends `message` until it is answered 200, as a router does (the same
/// message id each time); transport errors and 5xx are retried.
fn until_answered(
    device: &ureq::Agent,
    url: &str,
    message: &Value,
    stop: &AtomicBool,
) -> Option<Value> {
    while !stop.load(Ordering::Relaxed) {
        let sent = device
            .post(url)
            .timeout(Duration::from_secs(3))
            .set("Content-Type", "application/json")
            .send_string(&message.to_string());
        match sent {
            Ok(r) => return r.into_json().ok(),
            Err(ureq::Error::Status(code, r)) if code < 500 && code != 429 => {
                panic!("{message}: {code} {}", r.into_string().unwrap_or_default())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    None
}

fn router(
    n: usize,
    url: String,
    ca: PathBuf,
    token: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let key = p256();
    let plain = agent(&ca, None);
    let sn = format!("FOCHA{n:05}");
    let sent = Instant::now();
    let Some(answer) = until_answered(
        &plain,
        &url,
        &registration(&format!("reg-{n}"), &sn, &token, &csr(&key)),
        &stop,
    ) else {
        return;
    };
    let certificate = answer["certificate"]
        .as_str()
        .expect("certificate")
        .to_string();
    {
        let mut l = ledger.lock().expect("ledger");
        l.acknowledged.push((format!("reg-{n}"), 0));
        l.answered.insert(n, (sent, Instant::now()));
    }
    let device = agent(&ca, Some((&certificate, &key)));
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let count = (i % 5 + 1) as i64;
        let id = format!("r{n}-e{i}");
        let message = json!({"type": "ENTITLEMENT", "message_id": id,
            "entitlements": [{"tag": TAG, "count": count}]});
        let sent = Instant::now();
        if until_answered(&device, &url, &message, &stop).is_none() {
            // Stopped while unanswered: it may or may not have landed, and
            // a router would send it again; the test checks its last
            // acknowledged demand, so it sends it again now, past the stop.
            let stop_never = AtomicBool::new(false);
            let _ = until_answered(&device, &url, &message, &stop_never);
        }
        let mut l = ledger.lock().expect("ledger");
        l.acknowledged.push((id, count));
        l.demand.insert(n, count);
        l.answered.insert(n, (sent, Instant::now()));
        drop(l);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long after `killed` every router had been answered again, for a
/// message it sent after the kill.
fn recovery(ledger: &Mutex<Ledger>, killed: Instant, within: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let l = ledger.lock().expect("ledger");
        // Once every router was answered for a message sent after the kill,
        // the latest of those answers (each router's first is no later
        // than its last).
        let last = (0..ROUTERS)
            .map(|n| l.answered.get(&n).copied())
            .collect::<Option<Vec<_>>>()
            .filter(|times| times.iter().all(|(sent, _)| *sent > killed))
            .and_then(|times| times.into_iter().map(|(_, answered)| answered).min());
        drop(l);
        if let Some(last) = last {
            return last - killed;
        }
        if began.elapsed() > within {
            fail(format!("routers not answered again within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "the failover test: needs patroni, etcd-server and haproxy; .ci/run runs it"]
fn ha_failover_loses_and_doubles_nothing() {
    for program in ["patroni", "etcd", "haproxy"] {
        assert!(
            Command::new("which")
                .arg(program)
                .output()
                .is_ok_and(|o| o.status.success()),
            "{program} is not installed (apt-get install patroni etcd-server haproxy)"
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::Builder::new()
        .prefix("satellite-ha")
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    let _ = LOGS.set(root.to_path_buf());
    if is_root() {
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(root)
            .status()
            .expect("chown");
    }

    // etcd, one member.
    let (etcd_client, etcd_peer) = (free_port(), free_port());
    let etcd_config = root.join("etcd.conf.yml");
    std::fs::write(
        &etcd_config,
        template(
            "etcd.conf.yml",
            &[
                ("NODE", "etcd1".into()),
                ("DATA_DIR", root.join("etcd").display().to_string()),
                ("CLIENT_LISTEN", format!("127.0.0.1:{etcd_client}")),
                ("PEER_LISTEN", format!("127.0.0.1:{etcd_peer}")),
                (
                    "INITIAL_CLUSTER",
                    format!("etcd1=http://127.0.0.1:{etcd_peer}"),
                ),
            ],
        ),
    )
    .expect("etcd config");
    let mut etcd = Command::new("etcd");
    etcd.arg("--config-file").arg(&etcd_config);
    let _etcd = Proc::spawn("etcd", etcd, &root.join("etcd.log"));
    wait_until("etcd", Duration::from_secs(20), || {
        http_status(&format!("http://127.0.0.1:{etcd_client}/health")) == 200
    });

    // Two PostgreSQL nodes under Patroni.
    let mut pg: Vec<PgNode> = (1..=2)
        .map(|i| {
            let (pg_port, rest_port) = (free_port(), free_port());
            let config = root.join(format!("patroni{i}.yml"));
            let socket = root.join(format!("socket{i}"));
            std::fs::create_dir_all(&socket).expect("socket dir");
            let text = template(
                "patroni.yml",
                &[
                    ("NODE", format!("pg{i}")),
                    ("REST_LISTEN", format!("127.0.0.1:{rest_port}")),
                    ("ETCD_HOSTS", format!("127.0.0.1:{etcd_client}")),
                    ("NETWORK", "127.0.0.1/32".into()),
                    ("PG_LISTEN", format!("127.0.0.1:{pg_port}")),
                    (
                        "DATA_DIR",
                        root.join(format!("pg{i}")).display().to_string(),
                    ),
                    ("SUPERUSER_PASSWORD", SUPERUSER_PASSWORD.into()),
                    ("REPLICATION_PASSWORD", REPLICATION_PASSWORD.into()),
                    ("SOCKET_DIR", socket.display().to_string()),
                ],
            );
            std::fs::write(&config, text).expect("patroni config");
            PgNode {
                name: format!("pg{i}"),
                config,
                pg_port,
                rest_port,
                log: root.join(format!("patroni{i}.log")),
                patroni: None,
            }
        })
        .collect();
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root)
            .status()
            .expect("chown");
    }
    pg[0].start();
    wait_until(
        "the first PostgreSQL primary",
        Duration::from_secs(60),
        || pg[0].is_primary(),
    );
    pg[1].start();
    wait_until("a synchronous standby", Duration::from_secs(60), || {
        pg[1].rest("sync") == 200
    });
    let mut admin = postgres::Config::new()
        .host("127.0.0.1")
        .port(pg[0].pg_port)
        .user("postgres")
        .password(SUPERUSER_PASSWORD)
        .dbname("postgres")
        .connect(postgres::NoTls)
        .expect("superuser");
    admin
        .batch_execute(&format!(
            "CREATE ROLE satellite LOGIN PASSWORD '{SATELLITE_PASSWORD}'"
        ))
        .expect("role");
    admin
        .batch_execute("CREATE DATABASE satellite OWNER satellite")
        .expect("database");
    drop(admin);

    // Two satellite nodes: the first initialized, its keys put on the second.
    let password_file = root.join("db-password");
    std::fs::write(&password_file, SATELLITE_PASSWORD).expect("password");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let pg_hosts = format!("127.0.0.1:{},127.0.0.1:{}", pg[0].pg_port, pg[1].pg_port);
    let mut sat: Vec<SatNode> = (1..=2)
        .map(|i| {
            let (device_port, admin_port) = (free_port(), free_port());
            let data = root.join(format!("sat{i}"));
            let text = template(
                "satellite.yaml",
                &[
                    ("NAME", "ha-satellite".into()),
                    ("ACCOUNT", "Test Corp".into()),
                    ("VIRTUAL_IP", "127.0.0.1".into()),
                    ("HOSTNAMES", "localhost".into()),
                    ("PG_HOSTS", pg_hosts.clone()),
                    ("DEVICE_LISTEN", format!("127.0.0.1:{device_port}")),
                    ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
                ],
            )
            .replace("/var/lib/satellite", &data.display().to_string())
            .replace(
                "/etc/satellite/db-password",
                &password_file.display().to_string(),
            );
            let config = root.join(format!("sat{i}.yaml"));
            std::fs::write(&config, format!("{text}log: {{ level: info }}\n")).expect("config");
            SatNode {
                config,
                data,
                device_port,
                admin_port,
                log: root.join(format!("sat{i}.log")),
                process: None,
            }
        })
        .collect();
    sat[0].cli(&["init"]);
    std::fs::create_dir_all(&sat[1].data).expect("data dir");
    for entry in std::fs::read_dir(&sat[0].data).expect("keys") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pem") || name.ends_with(".key") {
            std::fs::copy(entry.path(), sat[1].data.join(&name)).expect("copy key");
        }
    }
    sat[0].serve();
    wait_until("the first satellite node", Duration::from_secs(30), || {
        sat[0].ready() == 200
    });
    sat[1].serve();
    wait_until(
        "the standby satellite node",
        Duration::from_secs(30),
        || sat[1].ready() == 503,
    );

    // HAProxy in front of both.
    let routers_port = free_port();
    let haproxy_config = root.join("haproxy.cfg");
    std::fs::write(
        &haproxy_config,
        template(
            "haproxy.cfg",
            &[
                ("ROUTERS_LISTEN", format!("127.0.0.1:{routers_port}")),
                ("NODE1_DEVICE", format!("127.0.0.1:{}", sat[0].device_port)),
                ("NODE1_ADMIN_PORT", sat[0].admin_port.to_string()),
                ("NODE1_ADMIN_HOST", "127.0.0.1".into()),
                ("NODE2_DEVICE", format!("127.0.0.1:{}", sat[1].device_port)),
                ("NODE2_ADMIN_PORT", sat[1].admin_port.to_string()),
                ("NODE2_ADMIN_HOST", "127.0.0.1".into()),
            ],
        ),
    )
    .expect("haproxy config");
    let mut haproxy = Command::new("haproxy");
    haproxy.arg("-db").arg("-f").arg(&haproxy_config);
    let _haproxy = Proc::spawn("haproxy", haproxy, &root.join("haproxy.log"));

    // Routers through HAProxy.
    let token = sat[0]
        .cli(&["token", "create", "--va", "Default", "--days", "1"])
        .trim()
        .to_string();
    let url = format!("https://127.0.0.1:{routers_port}/SmartTransport");
    let ca = sat[0].data.join("ca.pem");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..ROUTERS)
        .map(|n| {
            let (url, ca, token, ledger, stop) = (
                url.clone(),
                ca.clone(),
                token.clone(),
                ledger.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || router(n, url, ca, token, ledger, stop))
        })
        .collect();
    let settle = |what: &str| {
        let began = Instant::now();
        recovery(&ledger, began, Duration::from_secs(60));
        std::thread::sleep(Duration::from_secs(2));
        eprintln!("ha: {what}");
    };
    settle("routers registered and asking");

    let mut report = Vec::new();
    let primary = |pg: &[PgNode]| pg.iter().position(PgNode::is_primary);
    let active = |sat: &[SatNode]| sat.iter().position(|s| s.ready() == 200);
    // Brings a killed PostgreSQL node back as the synchronous standby.
    let rejoin = |pg: &mut Vec<PgNode>, i: usize| {
        pg[i].start();
        wait_until(
            "the killed PostgreSQL node back as a standby",
            Duration::from_secs(120),
            || pg[i].rest("sync") == 200,
        );
    };
    let resume = |sat: &mut Vec<SatNode>, i: usize| {
        sat[i].serve();
        wait_until(
            "the killed satellite node back as the standby",
            Duration::from_secs(30),
            || sat[i].ready() == 503,
        );
    };

    // 1. The PostgreSQL primary dies.
    let p = primary(&pg).expect("a primary");
    let killed = Instant::now();
    let data = root.join(format!("pg{}", p + 1));
    pg[p].kill9(&data);
    let took = recovery(&ledger, killed, Duration::from_secs(60));
    report.push(("the PostgreSQL primary", took, Duration::from_secs(30)));
    rejoin(&mut pg, p);
    settle("after the database failover");

    // 2. The active satellite node dies.
    let a = active(&sat).expect("an active node");
    let killed = Instant::now();
    if let Some(mut process) = sat[a].process.take() {
        process.kill9();
    }
    let took = recovery(&ledger, killed, Duration::from_secs(60));
    report.push(("the active satellite node", took, Duration::from_secs(10)));
    resume(&mut sat, a);
    settle("after the satellite failover");

    // 3. Both at once.
    let p = primary(&pg).expect("a primary");
    let a = active(&sat).expect("an active node");
    let killed = Instant::now();
    let data = root.join(format!("pg{}", p + 1));
    pg[p].kill9(&data);
    if let Some(mut process) = sat[a].process.take() {
        process.kill9();
    }
    let took = recovery(&ledger, killed, Duration::from_secs(60));
    report.push(("both at once", took, Duration::from_secs(30)));
    settle("after both");

    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("router thread");
    }

    // Every acknowledged message exactly once; pools equal acknowledged demand.
    let serving = active(&sat).expect("an active node");
    let db = crate::fixture::TestDb::of(&sat[serving].config);
    let ledger = ledger.lock().expect("ledger");
    let counts: BTreeMap<String, i64> = db
        .rows("SELECT message_id, COUNT(*) FROM device_messages GROUP BY message_id")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].as_deref().unwrap_or("0").parse().unwrap_or(0),
            )
        })
        .collect();
    let mut lost = 0;
    let mut doubled = 0;
    for (id, _) in &ledger.acknowledged {
        match counts.get(id) {
            None => lost += 1,
            Some(1) => {}
            Some(_) => doubled += 1,
        }
    }
    let demand: i64 = ledger.demand.values().sum();
    let in_use: i64 = db.one(&format!("SELECT in_use FROM pools WHERE tag = '{TAG}'"));
    let instances: i64 = db.one("SELECT COUNT(*) FROM product_instances");
    eprintln!(
        "ha: {} acknowledged messages; lost {lost}, doubled {doubled}; pool in use {in_use}, \
         acknowledged demand {demand}; {instances} product instances",
        ledger.acknowledged.len()
    );
    for (what, took, limit) in &report {
        eprintln!(
            "ha: killed {what}: routers answered again after {} ms (limit {} s)",
            took.as_millis(),
            limit.as_secs()
        );
    }
    assert_eq!((lost, doubled), (0, 0));
    assert_eq!(in_use, demand, "the pool is the sum of acknowledged demand");
    assert_eq!(instances, ROUTERS as i64);
    for (what, took, limit) in &report {
        assert!(
            took <= limit,
            "killed {what}: {took:?} to recover, over {limit:?}"
        );
    }
}
