//! A real server on 127.0.0.1 with ephemeral ports, real TLS and a real
//! SQLite file in a temporary folder; stopped cleanly on drop.

use rusqlite::Connection;
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
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("satellite.yaml");
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
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
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

    pub fn db(&self) -> Connection {
        Connection::open(self.data_dir().join("satellite.db")).expect("db")
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
        let tables: Vec<String> = db
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite%' AND name <> 'usage_history' ORDER BY name",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("tables");
        let mut rows = Vec::new();
        for table in tables {
            let filter = if table == "settings" {
                " WHERE key NOT LIKE 'clock.%' AND key NOT LIKE 'jobs.%' \
                  AND key NOT LIKE 'sync.export.%' AND key NOT LIKE 'sync.live.%' \
                  AND key NOT LIKE 'health.%'"
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
fn dump_rows(db: &Connection, table: &str, sql: &str, rows: &mut Vec<String>) {
    let mut stmt = db.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    let mut q = stmt.query([]).expect("query");
    while let Some(r) = q.next().expect("row") {
        let cells: Vec<String> = (0..n)
            .map(|i| format!("{:?}", r.get_ref(i).expect("cell")))
            .collect();
        rows.push(format!("{table}: {}", cells.join("|")));
    }
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
