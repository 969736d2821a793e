//! A real server on 127.0.0.1 with ephemeral ports, real TLS and a real
//! database: a SQLite file in a temporary folder, or with
//! `SATELLITE_TEST_BACKEND=postgres` a database of its own in a throwaway
//! PostgreSQL cluster the run shares; stopped cleanly on drop.

use satellite::app::Satellite;
use satellite::clock::Clock;
use satellite::config::Config;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Server {
    pub dir: tempfile::TempDir,
    pub device_url: String,
    pub admin_url: String,
    pub clock: Clock,
    pub config_path: PathBuf,
    pub jobs: satellite::licensing::jobs::Jobs,
    /// The bootstrap admin password init printed.
    pub admin_password: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn cloud_config() -> String {
    format!("role: cloud\n{BASE_CONFIG}")
}

pub const BASE_CONFIG: &str = "name: test-satellite\naccount: Test Corp\ndata_dir: ./data\n\
device: { listen: 127.0.0.1:0, hostnames: [localhost, 127.0.0.1] }\nadmin: { listen: 127.0.0.1:0 }\n\
log: { level: warn }\n";

impl Server {
    pub fn start() -> Self {
        Self::start_with(BASE_CONFIG)
    }

    pub fn start_with(yaml: &str) -> Self {
        let server = Self::launch(yaml, |_| {});
        server.wait_ready();
        server
    }

    /// A second node of a pair on `first`'s PostgreSQL database, with its
    /// keys and certificates: it starts as the standby (not ready).
    pub fn start_second_node(first: &Server) -> Self {
        let yaml = std::fs::read_to_string(&first.config_path).expect("config");
        let first_data = first.data_dir();
        let password = first.dir.path().join(TEST_PASSWORD_FILE);
        Self::launch(&yaml, |dir| {
            let data = dir.join("data");
            std::fs::create_dir(&data).expect("data dir");
            for entry in std::fs::read_dir(&first_data).expect("first data dir") {
                let entry = entry.expect("entry");
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".pem") || name.ends_with(".key") {
                    std::fs::copy(entry.path(), data.join(&*name)).expect("copy a key");
                }
            }
            if password.exists() {
                std::fs::copy(&password, dir.join(TEST_PASSWORD_FILE)).expect("password");
            }
        })
    }

    /// Starts a server on `yaml` in a new folder that `prepare` may fill
    /// first; does not wait for it to be ready.
    fn launch(yaml: &str, prepare: impl FnOnce(&Path)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        let config_path = dir.path().join("satellite.yaml");
        let yaml = with_test_storage(yaml, dir.path());
        std::fs::write(&config_path, yaml).expect("write config");
        let config = Config::load(&config_path).expect("config");
        let clock = Clock::system();
        let satellite = Satellite::open(config, clock.clone()).expect("open");
        let listeners = satellite.bind().expect("bind");
        let jobs = satellite.jobs().expect("jobs");
        let admin_password = satellite.created.admin_password.clone();
        let device = listeners.device.local_addr().expect("addr");
        let admin = listeners.admin.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(satellite.serve(listeners, async {
                    let _ = stopped.await;
                }))
                .expect("serve");
        });
        let server = Self {
            dir,
            device_url: format!("https://127.0.0.1:{}", device.port()),
            admin_url: format!("https://127.0.0.1:{}", admin.port()),
            clock,
            config_path,
            jobs,
            admin_password,
            stop: Some(stop),
            thread: Some(thread),
        };
        server
    }

    /// The admin listener's `/readyz`: its status and body.
    pub fn readyz(&self) -> (u16, String) {
        match crate::client::agent(&self.ca_path(), None)
            .get(&format!("{}/readyz", self.admin_url))
            .call()
        {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let agent = crate::client::agent(&self.ca_path(), None);
        loop {
            if let Ok(r) = agent.get(&format!("{}/readyz", self.admin_url)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.data_dir().join("ca.pem")
    }

    /// Replaces the configuration file with `yaml`, keeping the storage
    /// the server was started on.
    pub fn rewrite_config(&self, yaml: &str) {
        let old = std::fs::read_to_string(&self.config_path).expect("config");
        let storage = old
            .lines()
            .filter(|l| l.starts_with("storage:"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.config_path, format!("{yaml}\n{storage}\n")).expect("config");
    }

    /// The server's database, as the tests read it.
    pub fn db(&self) -> TestDb {
        TestDb::of(&self.config_path)
    }

    /// Runs the real `satellite` binary against this server's config, at this server's time.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(&self.config_path)
            .args(args)
            .env(satellite::clock::NOW_ENV, rfc3339_now(&self.clock))
            .output()
            .expect("run satellite")
    }

    /// `cli` that must succeed; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "satellite {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn token(&self, va: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--va", va, "--json"];
        args.extend_from_slice(extra);
        let json: serde_json::Value = serde_json::from_str(&self.cli_ok(&args)).expect("json");
        json["token"].as_str().expect("token").to_string()
    }

    /// `user add NAME --role R [--va V...]` with the password on stdin.
    pub fn user(&self, name: &str, role: &str, vas: &[&str], password: &str) {
        let mut args = vec!["user", "add", name, "--role", role];
        for va in vas {
            args.extend_from_slice(&["--va", va]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(&self.config_path)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(stdin) = child.stdin.as_mut() {
                    writeln!(stdin, "{password}")?;
                }
                child.wait_with_output()
            })
            .expect("run satellite");
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A cloud-role server whose `Lab` virtual account holds `units` of
    /// ESS-AC-10G-RTU-1, and a registration token for Lab.
    pub fn cloud_with_lab(units: &str) -> (Self, String) {
        let server = Self::start_with(&cloud_config());
        server.cli_ok(&["va", "create", "Lab"]);
        server.cli_ok(&[
            "license",
            "add",
            "--va",
            "Lab",
            "--sku",
            "ESS-AC-10G-RTU-1",
            "--quantity",
            units,
        ]);
        let token = server.token("Lab", &[]);
        (server, token)
    }

    /// The `compliance --json` row of one pool (Null when there is none).
    pub fn compliance(&self, va: &str, tag: &str) -> serde_json::Value {
        let rows: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["compliance", "--json"])).expect("json");
        rows.as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["virtual_account"] == va && r["tag"] == tag)
                    .cloned()
            })
            .unwrap_or(serde_json::Value::Null)
    }

    /// The admin listener's `/metrics` text.
    pub fn metrics(&self) -> String {
        crate::client::agent(&self.ca_path(), None)
            .get(&format!("{}/metrics", self.admin_url))
            .call()
            .expect("metrics")
            .into_string()
            .expect("text")
    }

    pub fn device(&self) -> crate::client::Device {
        crate::client::Device::new(&self.device_url, &self.ca_path(), None)
    }

    /// Every row of the tables a device message may change, in a stable order:
    /// two equal snapshots mean nothing changed.
    pub fn snapshot(&self) -> Vec<String> {
        let db = self.db();
        let mut rows = Vec::new();
        // Not `settings` and `usage_history`: the server's own jobs write them.
        for table in [
            "accounts",
            "virtual_accounts",
            "product_instances",
            "certificates",
            "registration_tokens",
            "device_messages",
            "events",
            "licenses",
            "entitlement_usage",
            "pools",
            "reports",
            "users",
            "sync_bundles",
            "upstream",
            "catalog_entries",
            "satellites",
            "remote_instances",
            "remote_usage",
        ] {
            dump_rows(
                &db,
                table,
                &format!("SELECT * FROM {table} ORDER BY 1, 2"),
                &mut rows,
            );
        }
        rows
    }
}

impl Server {
    /// Every row of every table, but what the server's own jobs write on
    /// their schedule (their marks in `settings`, the daily usage history):
    /// two equal snapshots mean an operation changed nothing.
    pub fn snapshot_every_table(&self) -> Vec<String> {
        let db = self.db();
        let mut rows = Vec::new();
        for table in db.tables() {
            if table == "usage_history" {
                continue;
            }
            let filter = if table == "settings" {
                " WHERE key NOT LIKE 'clock.%' AND key NOT LIKE 'jobs.%' \
                  AND key NOT LIKE 'sync.export.%' AND key NOT LIKE 'sync.live.%' \
                  AND key NOT LIKE 'health.%' AND key NOT LIKE 'store.%'"
            } else {
                ""
            };
            let sql = format!("SELECT * FROM {table}{filter} ORDER BY 1");
            dump_rows(&db, &table, &sql, &mut rows);
        }
        rows
    }
}

/// Appends every row `sql` returns, as `table: cell|cell|...`.
fn dump_rows(db: &TestDb, table: &str, sql: &str, rows: &mut Vec<String>) {
    for row in db.rows(sql) {
        let cells: Vec<String> = row
            .into_iter()
            .map(|c| c.unwrap_or_else(|| "NULL".into()))
            .collect();
        rows.push(format!("{table}: {}", cells.join("|")));
    }
}

/// Which database the suite's servers use.
pub fn on_postgres() -> bool {
    std::env::var("SATELLITE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// For a test of what only the embedded database has (its file, its WAL,
/// SQLite's own failures): true, after saying so, when the suite runs on
/// PostgreSQL.
pub fn skipped_on_postgres(test: &str) -> bool {
    if on_postgres() {
        eprintln!("{test}: not run on PostgreSQL (it tests the embedded database's file)");
    }
    on_postgres()
}

/// The password file `with_test_storage` writes beside the configuration.
pub const TEST_PASSWORD_FILE: &str = "db-password";

/// For a test whose servers do not follow the suite's backend (its own
/// configuration, or always PostgreSQL): true, after saying so, in the
/// PostgreSQL pass, which would only repeat it.
pub fn runs_once(test: &str) -> bool {
    if on_postgres() {
        eprintln!(
            "{test}: its storage does not follow SATELLITE_TEST_BACKEND; run in the default pass"
        );
    }
    on_postgres()
}

/// `yaml` with a `storage:` of the suite's backend, unless it names one.
pub fn with_test_storage(yaml: &str, dir: &Path) -> String {
    if !on_postgres() || yaml.contains("storage:") {
        return yaml.to_string();
    }
    let (url, password) = crate::postgres::shared_database();
    let file = dir.join(TEST_PASSWORD_FILE);
    std::fs::write(&file, password).expect("password file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!(
        "{yaml}\nstorage: {{ backend: postgres, url: \"{url}\", password_file: db-password }}\n"
    )
}

/// A satellite's database for the tests' own reads and writes, on either
/// backend. Cells come back as text: the same rows print alike on both.
pub enum TestDb {
    Sqlite(rusqlite::Connection),
    Postgres(std::cell::RefCell<postgres::Client>),
}

impl TestDb {
    /// The database the configuration at `config` names.
    pub fn of(config: &Path) -> Self {
        let config = Config::load(config).expect("config");
        match config.storage.backend {
            satellite::config::StorageBackend::Sqlite => {
                Self::Sqlite(rusqlite::Connection::open(config.database_path()).expect("db"))
            }
            satellite::config::StorageBackend::Postgres => {
                let mut pg: postgres::Config = config
                    .storage
                    .url
                    .as_deref()
                    .expect("url")
                    .parse()
                    .expect("url parses");
                if let Some(file) = &config.storage.password_file {
                    pg.password(std::fs::read_to_string(file).expect("password"));
                }
                Self::Postgres(std::cell::RefCell::new(
                    pg.connect(postgres::NoTls).expect("connect"),
                ))
            }
        }
    }

    /// Every row `sql` returns, each cell as text (blobs in hex as
    /// PostgreSQL writes them, `\x…`), None for NULL.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Self::Sqlite(db) => {
                use rusqlite::types::ValueRef;
                let mut stmt = db.prepare(sql).expect("prepare");
                let n = stmt.column_count();
                let mut q = stmt.query([]).expect("query");
                let mut out = Vec::new();
                while let Some(r) = q.next().expect("row") {
                    out.push(
                        (0..n)
                            .map(|i| match r.get_ref(i).expect("cell") {
                                ValueRef::Null => None,
                                ValueRef::Integer(v) => Some(v.to_string()),
                                ValueRef::Real(v) => Some(v.to_string()),
                                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                                ValueRef::Blob(b) => Some(format!("\\x{}", hex(b))),
                            })
                            .collect(),
                    );
                }
                out
            }
            Self::Postgres(client) => client
                .borrow_mut()
                .simple_query(sql)
                .expect("query")
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The first column of the one row `sql` returns, parsed; panics if
    /// there is no row or the cell is NULL.
    pub fn one<T: std::str::FromStr>(&self, sql: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        self.maybe(sql)
            .unwrap_or_else(|| panic!("no value from {sql}"))
    }

    /// `one`, with None for no row or NULL.
    pub fn maybe<T: std::str::FromStr>(&self, sql: &str) -> Option<T>
    where
        T::Err: std::fmt::Debug,
    {
        let rows = self.rows(sql);
        let cell = rows.into_iter().next()?.into_iter().next()??;
        Some(cell.parse().expect("parse cell"))
    }

    /// Runs statements that return nothing.
    pub fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite(db) => db.execute_batch(sql).expect("execute"),
            Self::Postgres(client) => client.borrow_mut().batch_execute(sql).expect("execute"),
        }
    }

    /// The satellite's tables, by name.
    pub fn tables(&self) -> Vec<String> {
        let sql = match self {
            Self::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' \
                 ORDER BY name"
            }
            Self::Postgres(_) => {
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        self.rows(sql)
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn rfc3339_now(clock: &Clock) -> String {
    clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

impl Server {
    /// Stops the server and waits for it: its data dir stays for the test.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn openssl_verify(ca: &Path, cert_pem: &str) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, cert_pem).expect("write");
    Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(&cert)
        .output()
        .map(|o| o.status.success())
        .expect("openssl is installed")
}
