//! Routers' latency while operators write through the command line.
//!
//! Starts the real `satellite serve` (release build, its own process and
//! data dir), then runs a `satellite-router fleet` against it, in turn
//! alone, beside concurrent CLI read loops (the control: as many processes
//! on the same database, no write lock) and beside concurrent CLI write
//! loops (`token create`, `va create`, `license add`, `token revoke`, each
//! its own `satellite` process, as an operator's script would run them).
//! Prints the fleet's p50/p99/max latency in each (every exchange, and
//! ENTITLEMENT alone), medians over the runs, and how long the CLI
//! commands took.
//!
//!     cargo bench --bench cli_writes     # defaults below
//!     BENCH_ROUTERS=400 BENCH_REQUESTS=20 BENCH_CONCURRENCY=32 BENCH_CLI_LOOPS=4 \
//!       BENCH_RUNS=5 cargo bench --bench cli_writes
//!     BENCH_CLI_RATE=0 ...                # CLI loops back to back (default 5 commands/s each)
//!     BENCH_BIN_DIR=DIR ...               # another build's binaries, server and CLI
//!     BENCH_CLI_BUILDS=before=DIR1,after=DIR2 ...   # also write loops of these builds' CLI
//!
//! "All" covers every exchange (registration, entitlement requests,
//! acknowledgements), each router over its own mutual-TLS link;
//! registrations sign a certificate and make the tail, so ENTITLEMENT is
//! also shown alone.

use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binaries under test: this build's, or those in `$BENCH_BIN_DIR`
/// (to compare two builds on the same machine at the same time of day).
fn binary(name: &str, built: &str) -> PathBuf {
    match std::env::var_os("BENCH_BIN_DIR") {
        Some(dir) => Path::new(&dir).join(name),
        None => PathBuf::from(built),
    }
}

fn satellite_bin() -> PathBuf {
    binary("satellite", env!("CARGO_BIN_EXE_satellite"))
}

fn router_bin() -> PathBuf {
    binary("satellite-router", env!("CARGO_BIN_EXE_satellite-router"))
}
/// Virtual account names, unique over the whole benchmark.
static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server {
    dir: tempfile::TempDir,
    child: Child,
    device: SocketAddr,
    token: String,
}

impl Server {
    fn config(&self) -> PathBuf {
        self.dir.path().join("satellite.yaml")
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let device: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin = free_port();
        // The cloud role, so `license add` works; the device and writer
        // paths are the satellite's own.
        std::fs::write(
            dir.path().join("satellite.yaml"),
            format!(
                "role: cloud\n\
                 device: {{ listen: {device}, hostnames: [127.0.0.1], \
                 registrations_per_minute: 100000, max_connections_per_source: 4096 }}\n\
                 admin: {{ listen: 127.0.0.1:{admin} }}\n\
                 log: {{ level: error }}\n"
            ),
        )
        .expect("config");
        let config = dir.path().join("satellite.yaml");
        cli(&config, &["init"]);
        cli(
            &config,
            &[
                "license",
                "add",
                "--va",
                "Default",
                "--sku",
                "ESS-AC-10G-RTU-1",
                "--quantity",
                "1000000",
            ],
        );
        let token = token_create(&satellite_bin(), &config);
        let child = Command::new(satellite_bin())
            .args(["-c".as_ref(), config.as_os_str(), "serve".as_ref()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("satellite serve");
        let started = Instant::now();
        while TcpStream::connect(device).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            dir,
            child,
            device,
            token,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one CLI command to success and returns its standard output.
fn cli(config: &Path, args: &[&str]) -> String {
    cli_with(&satellite_bin(), config, args)
}

fn cli_with(bin: &Path, config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("satellite");
    assert!(
        out.status.success(),
        "satellite {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn token_create(bin: &Path, config: &Path) -> String {
    let text = cli_with(
        bin,
        config,
        &["token", "create", "--va", "Default", "--json"],
    );
    let value: Value = serde_json::from_str(&text).expect("token JSON");
    value["token"].as_str().expect("token").to_string()
}

/// One fleet run: p50, p99 and max latency in ms of every exchange, messages
/// per second, then p50, p99 and max of ENTITLEMENT exchanges alone (no
/// certificate signing, so a stall of a few milliseconds shows there).
fn fleet(server: &Server, routers: u64, requests: u64, concurrency: u64) -> [f64; 7] {
    let out = Command::new(router_bin())
        .arg("--json")
        .arg("fleet")
        .args(["--count", &routers.to_string()])
        .args([
            "--url",
            &format!("https://{}/SmartTransport", server.device),
        ])
        .arg("--ca")
        .arg(server.dir.path().join("data/ca.pem"))
        .args(["--token", &server.token])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--requests-per-router", &requests.to_string()])
        .output()
        .expect("satellite-router fleet");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fleet failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).expect("fleet JSON");
    let ms = |k: &str| v["latency_ms"][k].as_f64().unwrap_or(f64::NAN);
    let ent = |k: &str| {
        v["latency_ms_by_type"]["ENTITLEMENT"][k]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    [
        ms("p50"),
        ms("p99"),
        ms("max"),
        v["messages_per_second"].as_f64().unwrap_or(f64::NAN),
        ent("p50"),
        ent("p99"),
        ent("max"),
    ]
}

/// What the CLI loops run.
#[derive(Clone, Copy, PartialEq)]
enum Loops {
    /// Each round creates a token, a virtual account and a license, then
    /// revokes the token.
    Writes,
    /// The control: as many processes, opening the same database, reading
    /// only (`token list`, `va list`), so what they cost beyond the write
    /// lock (CPU on a small machine) shows apart.
    Reads,
}

/// CLI loops until `stop`, each running `bin` at `rate` commands a
/// second (0: back to back). Returns each command's wall time (process
/// start to exit).
fn cli_loops(
    bin: &Path,
    config: &Path,
    (loops, rate): (u64, u64),
    kind: Loops,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Duration>>> {
    (0..loops)
        .map(|i| {
            let (bin, config) = (bin.to_path_buf(), config.to_path_buf());
            let stop = stop.clone();
            let every = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
            std::thread::spawn(move || {
                let mut times = Vec::new();
                let mut next = Instant::now();
                let mut timed = |f: &mut dyn FnMut()| {
                    if let Some(every) = every {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next = next.max(Instant::now() - every) + every;
                    }
                    let started = Instant::now();
                    f();
                    times.push(started.elapsed());
                };
                let run = |args: &[&str]| {
                    cli_with(&bin, &config, args);
                };
                while !stop.load(Ordering::Relaxed) {
                    if kind == Loops::Reads {
                        timed(&mut || run(&["token", "list", "--json"]));
                        timed(&mut || run(&["va", "list", "--json"]));
                        continue;
                    }
                    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
                    let name = format!("bench-{i}-{n}");
                    let mut token = String::new();
                    timed(&mut || token = token_create(&bin, &config));
                    timed(&mut || run(&["va", "create", &name]));
                    timed(&mut || {
                        run(&[
                            "license",
                            "add",
                            "--va",
                            &name,
                            "--sku",
                            "ESS-AC-10G-RTU-1",
                            "--quantity",
                            "1",
                        ])
                    });
                    timed(&mut || run(&["token", "revoke", &token]));
                }
                times
            })
        })
        .collect()
}

/// One phase: the fleet alone, or beside CLI loops.
struct Phase {
    name: String,
    /// The `satellite` binary the CLI loops run.
    bin: PathBuf,
    loops: Option<Loops>,
    fleets: Vec<[f64; 7]>,
    commands: Vec<Duration>,
    seconds: f64,
}

impl Phase {
    fn run(&mut self, server: &Server, loops: (u64, u64), fleet_args: (u64, u64, u64)) -> [f64; 7] {
        let (routers, requests, concurrency) = fleet_args;
        let Some(kind) = self.loops else {
            let r = fleet(server, routers, requests, concurrency);
            self.fleets.push(r);
            return r;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let handles = cli_loops(&self.bin, &server.config(), loops, kind, &stop);
        // Let every loop get going before the routers start.
        std::thread::sleep(Duration::from_millis(300));
        let r = fleet(server, routers, requests, concurrency);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            self.commands.extend(h.join().expect("CLI loop"));
        }
        self.seconds += started.elapsed().as_secs_f64();
        self.fleets.push(r);
        r
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

fn main() {
    let routers = env_or("BENCH_ROUTERS", 400);
    let requests = env_or("BENCH_REQUESTS", 20);
    let concurrency = env_or("BENCH_CONCURRENCY", 32);
    let loops = env_or("BENCH_CLI_LOOPS", 4);
    let rate = env_or("BENCH_CLI_RATE", 5);
    let runs = env_or("BENCH_RUNS", 5).max(1);
    if let Some(dir) = std::env::var_os("BENCH_BIN_DIR") {
        println!("binaries from {}", Path::new(&dir).display());
    }
    println!(
        "CLI writes beside routers: fleet of {routers} routers x {requests} ENTITLEMENT, \
         concurrency {concurrency}; {loops} CLI loops at {rate} commands/s each; {runs} runs of each phase in turn, medians"
    );
    let server = Server::start();
    // Warm-up: the first run pays for cold caches.
    fleet(&server, concurrency, 2, concurrency);

    let phase = |name: &str, bin: &Path, loops| Phase {
        name: name.to_string(),
        bin: bin.to_path_buf(),
        loops,
        fleets: Vec::new(),
        commands: Vec::new(),
        seconds: 0.0,
    };
    let this = satellite_bin();
    let mut phases = vec![
        phase("alone", &this, None),
        phase("with CLI reads", &this, Some(Loops::Reads)),
        phase("with CLI writes", &this, Some(Loops::Writes)),
    ];
    // Other builds' CLI beside the same server, e.g. before and after a change.
    for build in std::env::var("BENCH_CLI_BUILDS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((label, dir)) = build.split_once('=') {
            let name = format!("with CLI writes, {label}");
            phases.push(phase(
                &name,
                &Path::new(dir).join("satellite"),
                Some(Loops::Writes),
            ));
        }
    }
    for run in 1..=runs {
        let mut line = format!("  run {run}:");
        for p in phases.iter_mut() {
            let r = p.run(&server, (loops, rate), (routers, requests, concurrency));
            line += &format!(
                " {}: p99 {:.1} ms, ENTITLEMENT p99 {:.1} ms;",
                p.name, r[1], r[5]
            );
        }
        println!("{}", line.trim_end_matches(';'));
    }
    let col = |v: &[[f64; 7]], i: usize| median(v.iter().map(|r| r[i]).collect());
    println!();
    println!(
        "{:<30} {:>23} {:>23} {:>10}   CLI commands (process start to exit)",
        "routers (ms)", "all p50 / p99 / max", "ENTITLEMENT p50/p99/max", "messages/s"
    );
    for p in &mut phases {
        let mut cli = String::new();
        if p.loops.is_some() {
            p.commands.sort();
            cli = format!(
                "{} in {:.1} s ({:.1}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                p.commands.len(),
                p.seconds,
                p.commands.len() as f64 / p.seconds.max(1e-9),
                percentile(&p.commands, 0.5),
                percentile(&p.commands, 0.99),
                percentile(&p.commands, 1.0),
            );
        }
        let triple = |a: usize| {
            format!(
                "{:.1} / {:.1} / {:.0}",
                col(&p.fleets, a),
                col(&p.fleets, a + 1),
                col(&p.fleets, a + 2)
            )
        };
        println!(
            "{:<30} {:>23} {:>23} {:>10.0}   {cli}",
            p.name,
            triple(0),
            triple(4),
            col(&p.fleets, 3)
        );
    }
}
