//! A throwaway PostgreSQL cluster for the tests that need one: `initdb` and
//! `pg_ctl` from the installed PostgreSQL (Debian's postgresql package, which
//! `.ci/run` installs), in a temporary folder, on a free port, with password
//! authentication over TCP. As root, the cluster runs as the `postgres` user
//! (PostgreSQL refuses root). Without the binaries a test says SKIPPED,
//! unless SATELLITE_REQUIRE_POSTGRES is set (as `.ci/run` does).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const SUPERUSER_PASSWORD: &str = "throwaway cluster password";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file());
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` as the `postgres` user when this is root (PostgreSQL
/// refuses root).
pub fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The test's own directory (a checkout) may be closed to `postgres`:
    // Patroni's initdb then fails to find where it runs and the bootstrap
    // never ends. Every path given is absolute.
    c.current_dir("/");
    c
}

/// Runs a PostgreSQL program, as `postgres` when this is root.
fn run(bin: &Path, program: &str, args: &[&str]) {
    let out = as_postgres(bin.join(program))
        .args(args)
        .output()
        .expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether PostgreSQL is installed; says SKIPPED for `test` when not
/// (and fails when SATELLITE_REQUIRE_POSTGRES says it must be).
pub fn available(test: &str) -> bool {
    if postgres_bin().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("SATELLITE_REQUIRE_POSTGRES").is_none(),
        "{test}: PostgreSQL (initdb, pg_ctl) is required here but not installed"
    );
    eprintln!("{test}: SKIPPED (no PostgreSQL: apt-get install postgresql)");
    false
}

impl Cluster {
    /// A running cluster, or None (the test is skipped) without PostgreSQL.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("SATELLITE_REQUIRE_POSTGRES").is_none(),
                "{test}: PostgreSQL (initdb, pg_ctl) is required here but not installed"
            );
            eprintln!("{test}: SKIPPED (no PostgreSQL: apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("satellite-pg")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let socket = dir.path().join("socket");
        std::fs::create_dir(&socket).expect("socket dir");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).expect("pwfile");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let text = |p: &Path| p.to_string_lossy().into_owned();
        run(
            &bin,
            "initdb",
            &[
                "-D",
                &text(&data),
                "-U",
                "postgres",
                "--pwfile",
                &text(&pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            text(&socket)
        );
        run(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &text(&data),
                "-o",
                &options,
                "-l",
                &text(&dir.path().join("log")),
                "-w",
                "start",
            ],
        );
        Some(Self { dir, bin, port })
    }

    /// A superuser client of the cluster's `postgres` database.
    pub fn client(&self, database: &str) -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .password(SUPERUSER_PASSWORD)
            .dbname(database)
            .connect(postgres::NoTls)
            .expect("connect to the test cluster")
    }

    /// A new empty database owned by a new role with `password`; its URL
    /// (without the password).
    pub fn database(&self, name: &str, password: &str) -> String {
        let mut admin = self.client("postgres");
        let quoted = password.replace('\'', "''");
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{quoted}'"))
            .expect("create role");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {name}"))
            .expect("create database");
        format!("postgresql://{name}@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Cluster {
    fn stop(&self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The cluster the whole run shares when the suite runs on PostgreSQL
/// (`SATELLITE_TEST_BACKEND=postgres`): started by the first server that
/// needs it, stopped and removed when the test process exits.
static SHARED: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
/// The role every test database belongs to, and its password.
const SHARED_ROLE: &str = "satellite";
const SHARED_PASSWORD: &str = "the test run database password";

extern "C" fn stop_shared() {
    if let Some(cluster) = SHARED.get() {
        cluster.stop();
        // Kept for reading after a failed run: every refused statement is in it.
        let kept = std::env::temp_dir().join("satellite-test-postgres.log");
        let _ = std::fs::copy(cluster.dir.path().join("log"), &kept);
        let _ = std::fs::remove_dir_all(cluster.dir.path());
    }
}

/// A new empty database of the shared cluster for one server: its URL and
/// the password of its owner (for a password file).
pub fn shared_database() -> (String, &'static str) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cluster = SHARED.get_or_init(|| {
        let cluster = Cluster::start("the PostgreSQL backend")
            .expect("SATELLITE_TEST_BACKEND=postgres needs PostgreSQL (initdb, pg_ctl)");
        cluster
            .client("postgres")
            .batch_execute(&format!(
                "CREATE ROLE {SHARED_ROLE} LOGIN PASSWORD '{SHARED_PASSWORD}'"
            ))
            .expect("create role");
        // SAFETY: registers a plain function with the C runtime, which
        // runs it once at process exit (the test harness exits with
        // std::process::exit); it touches only the initialized static.
        unsafe { libc::atexit(stop_shared) };
        cluster
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("t{}_{n}", std::process::id());
    cluster
        .client("postgres")
        .batch_execute(&format!("CREATE DATABASE {name} OWNER {SHARED_ROLE}"))
        .expect("create database");
    (
        format!(
            "postgresql://{SHARED_ROLE}@127.0.0.1:{}/{name}",
            cluster.port
        ),
        SHARED_PASSWORD,
    )
}
