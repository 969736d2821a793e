//! The getting-started tour, run as a newcomer runs it: every `sh` block of
//! docs/getting-started.md, in order, in one bash with a fresh HOME and
//! nothing on the PATH but the installed binaries and the system's tools.
//! A line `satellite serve` is what a reader runs in a terminal of its own:
//! here it starts in the background and the tour goes on once it listens.
//! The only edits to the text are the ones a reader makes: the repository's
//! path, and free ports instead of 4443/8443/5443/9443 (this machine may
//! run other servers; the same edit is made to the repository's
//! satellite.yaml).

use crate::portal::Portal;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOUR: &str = include_str!("../../docs/getting-started.md");
const SATELLITE_YAML: &str = include_str!("../../satellite.yaml");
const DOC_PORTS: [u16; 4] = [4443, 8443, 5443, 9443];

/// The bodies of the fenced blocks tagged `sh`, in order.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Free ports for the tour's four, below the ephemeral range: the other
/// tests of this binary bind port 0 and connect out from that range, so
/// they cannot take one between its choice and the tour's `serve`. All
/// four are held until all are chosen (no two alike).
fn free_ports() -> Vec<u16> {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let mut next = seed.finish();
    let mut held = Vec::new();
    while held.len() < DOC_PORTS.len() {
        next = next.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let port = 20_000 + (next >> 33) as u16 % 10_000;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// The tour's addresses with this run's ports: whole `127.0.0.1:PORT`
/// tokens, so no port is taken for a piece of another.
fn with_ports(text: &str, ports: &[(u16, u16)]) -> String {
    ports.iter().fold(text.to_string(), |text, (doc, free)| {
        text.replace(&format!("127.0.0.1:{doc}"), &format!("127.0.0.1:{free}"))
    })
}

/// Runs a `satellite serve` line in the background and waits until it
/// listens; the test stops every server it started (`.servers` in HOME).
const PRELUDE: &str = r#"
start_server() {
  local log="$PWD/serve.log"
  satellite serve >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >> "$HOME/.servers"
  for _ in $(seq 1 600); do
    grep -q 'serving smart account' "$log" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "satellite serve in $PWD stopped:"; cat "$log"; return 1
    fi
    sleep 0.1
  done
  echo "satellite serve in $PWD did not listen within 60 s:"; cat "$log"; return 1
}
set -x
"#;

/// Stops the servers the tour started, whatever the outcome.
struct Servers(PathBuf);

impl Drop for Servers {
    fn drop(&mut self) {
        let pids = std::fs::read_to_string(self.0.join(".servers")).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").arg(pid).status();
        }
        // Gone before their folder is removed.
        for pid in pids.split_whitespace() {
            for _ in 0..100 {
                let alive = Command::new("kill")
                    .args(["-0", pid])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !alive {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

fn serve_line(line: &str) -> bool {
    let command = line.split('#').next().unwrap_or_default().trim();
    command == "satellite serve" || command == "satellite serve &"
}

fn script(repository: &Path, ports: &[(u16, u16)]) -> String {
    let mut script = String::from(PRELUDE);
    for block in shell_blocks(TOUR) {
        for line in block.lines() {
            if serve_line(line) {
                script.push_str("start_server\n");
            } else {
                let line = line.replace("/path/to/the/repository", &repository.to_string_lossy());
                script.push_str(&with_ports(&line, ports));
                script.push('\n');
            }
        }
    }
    script
}

/// The binaries as `cargo install` puts them: one folder on the PATH.
fn installed(home: &Path) -> PathBuf {
    let bin = home.join(".cargo/bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for (name, path) in [
        ("satellite", env!("CARGO_BIN_EXE_satellite")),
        ("satellite-router", env!("CARGO_BIN_EXE_satellite-router")),
    ] {
        std::os::unix::fs::symlink(path, bin.join(name)).expect("symlink");
    }
    bin
}

#[test]
fn the_getting_started_tour_runs_as_written() {
    if crate::fixture::runs_once("the getting-started tour") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let home = tempfile::tempdir().expect("home");
    let _servers = Servers(home.path().to_path_buf());
    let ports: Vec<(u16, u16)> = DOC_PORTS.iter().copied().zip(free_ports()).collect();
    let repository = home.path().join("src/satellite");
    std::fs::create_dir_all(&repository).expect("repository");
    std::fs::write(
        repository.join("satellite.yaml"),
        with_ports(SATELLITE_YAML, &ports),
    )
    .expect("satellite.yaml");
    let bin = installed(home.path());
    let script = script(&repository, &ports);
    assert!(
        script.matches("start_server").count() >= 3,
        "the tour starts a satellite and a cloud: {script}"
    );

    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env_clear()
        .env("HOME", home.path())
        .env("USER", "newcomer")
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("LANG", "C.UTF-8")
        .current_dir(home.path())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed ({}):\n--- stdout\n{stdout}\n--- stderr (the commands, as run)\n{stderr}",
        out.status
    );

    // What the comments in the tour promise.
    assert!(stdout.contains("r1.pem: OK"), "{stdout}");
    assert!(stdout.contains("OUT OF COMPLIANCE"), "{stdout}");
    assert!(stdout.contains("AUTHORIZED"), "{stdout}");
    assert!(
        stdout.contains("(0 days ago)"),
        "the cloud acknowledged: {stdout}"
    );

    // Section 4: the portal, with the password the satellite's first start printed.
    let log = std::fs::read_to_string(home.path().join("satellite/serve.log")).expect("log");
    let password = log
        .lines()
        .find_map(|l| l.split("admin / ").nth(1))
        .unwrap_or_else(|| panic!("no bootstrap password in the serve output:\n{log}"))
        .trim()
        .to_string();
    let admin_port = ports[1].1; // the satellite's 8443
    let mut portal = Portal::at(
        &format!("https://127.0.0.1:{admin_port}"),
        &home.path().join("satellite/data/ca.pem"),
    );
    let answer = portal.login("admin", &password);
    assert_eq!(answer.status, 303, "portal login: {}", answer.body);
    let overview = portal.get("/portal/overview");
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Branch"), "{}", overview.body);
}
