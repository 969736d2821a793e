//! Live sync (DESIGN §2 options 2 and 3): a real cloud server that can be
//! stopped and started again on the same port and data, connected
//! satellites (real servers) that reach it through a real HTTP CONNECT
//! proxy started here, and routers on the satellites.

use crate::client::{register, Registered};
use crate::fixture::{cloud_config, rfc3339_now, Server, BASE_CONFIG};
use satellite::app::Satellite;
use satellite::clock::Clock;
use satellite::config::Config;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ESS: &str = "ESS-AC-10G-RTU-1";
const PROXY_USER: &str = "site";
const PROXY_PASSWORD: &str = "pr0xy";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A small threaded HTTP CONNECT proxy that insists on its credentials and
/// records the tunnels it opened.
pub(crate) struct Proxy {
    url: String,
    tunnels: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
}

impl Proxy {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("addr").port();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (t, r) = (tunnels.clone(), refused.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (t, r) = (t.clone(), r.clone());
                std::thread::spawn(move || tunnel(client, &t, &r));
            }
        });
        Self {
            url: format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"),
            tunnels,
            refused,
        }
    }

    fn tunnels_to(&self, target: &str) -> usize {
        let t = self.tunnels.lock().expect("tunnels");
        t.iter().filter(|x| x.as_str() == target).count()
    }
}

fn tunnel(client: TcpStream, tunnels: &Mutex<Vec<String>>, refused: &AtomicUsize) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut authorized = false;
    use base64::Engine;
    let expected = format!(
        "basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"))
    );
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("proxy-authorization")
                && value.trim().eq_ignore_ascii_case(&expected)
            {
                authorized = true;
            }
        }
    }
    let mut client = client;
    let parts: Vec<&str> = request.split_whitespace().collect();
    let ["CONNECT", target, _] = parts.as_slice() else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    if !authorized {
        refused.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        return;
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    tunnels.lock().expect("tunnels").push(target.to_string());
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut up_read, mut up_write) = (upstream.try_clone().expect("clone"), upstream);
    let mut client_write = client;
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up_write);
        let _ = up_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Both);
    let _ = forward.join();
}

/// A cloud server that can be stopped and started again on the same port
/// with the same data.
pub(crate) struct Cloud {
    dir: tempfile::TempDir,
    port: u16,
    clock: Clock,
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl Cloud {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let yaml = cloud_config().replace(
            "device: { listen: 127.0.0.1:0,",
            &format!("device: {{ listen: 127.0.0.1:{port},"),
        );
        assert!(yaml.contains(&port.to_string()), "{yaml}");
        let yaml = crate::fixture::with_test_storage(&yaml, dir.path());
        std::fs::write(dir.path().join("satellite.yaml"), yaml).expect("config");
        let mut cloud = Self {
            dir,
            port,
            clock: Clock::system(),
            running: None,
        };
        cloud.resume();
        cloud.cli_ok(&["va", "create", "Lab"]);
        cloud
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("satellite.yaml")
    }

    fn resume(&mut self) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = Config::load(&self.config_path()).expect("config");
        let satellite = Satellite::open(config, self.clock.clone()).expect("open");
        let listeners = satellite.bind().expect("bind the cloud's fixed port again");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(satellite.serve(listeners, async {
                    let _ = stopped.await;
                }))
                .expect("serve");
        });
        self.running = Some((stop, thread));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "cloud did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_satellite"))
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .env(satellite::clock::NOW_ENV, rfc3339_now(&self.clock))
            .output()
            .expect("run satellite")
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "cloud: satellite {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn add_license(&self, quantity: u32) {
        self.cli_ok(&[
            "license",
            "add",
            "--va",
            "Lab",
            "--sku",
            ESS,
            "--quantity",
            &quantity.to_string(),
        ]);
    }

    fn in_use(&self) -> i64 {
        let rows = json_of(&self.cli_ok(&["compliance", "--json"]));
        rows.as_array()
            .expect("array")
            .iter()
            .filter(|r| r["virtual_account"] == "Lab" && r["tag"] == ESS)
            .map(|r| r["in_use"].as_i64().unwrap_or(0))
            .sum()
    }

    fn satellite(&self, name: &str) -> Value {
        let list = json_of(&self.cli_ok(&["satellite", "list", "--json"]));
        list.as_array()
            .and_then(|l| l.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
    }

    /// A satellite token for `name`, serving Lab.
    pub(crate) fn token_for(&self, name: &str) -> String {
        self.token_serving(name, "Lab")
    }

    /// A satellite token for `name`, serving `va` (made when missing): a
    /// virtual account has one serving node.
    pub(crate) fn token_serving(&self, name: &str, va: &str) -> String {
        if va != "Lab" {
            self.cli_ok(&["va", "create", va]);
        }
        let added = json_of(&self.cli_ok(&["satellite", "add", name, "--va", va, "--json"]));
        added["token"].as_str().expect("token").to_string()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sync_block(mode: &str, cloud_url: &str, proxy: &str, extra: &str) -> String {
    format!("sync: {{ mode: {mode}, cloud_url: '{cloud_url}', proxy: '{proxy}'{extra} }}\n")
}

/// A connected satellite whose way to the cloud is the proxy.
pub(crate) fn connected_satellite(cloud: &Cloud, proxy: &Proxy, extra: &str) -> Server {
    Server::start_with(&format!(
        "{BASE_CONFIG}{}",
        sync_block("connected", &cloud.url(), &proxy.url, extra)
    ))
}

fn entitlement(router: &Registered, id: &str, count: u32) -> Value {
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": id,
        "entitlements": [{"tag": ESS, "count": count}]
    }));
    assert_eq!(status, 200, "{answer}");
    answer
}

fn sync_json(sat: &Server) -> Value {
    json_of(&sat.cli_ok(&["sync", "--json"]))
}

fn status(sat: &Server) -> Value {
    json_of(&sat.cli_ok(&["status", "--json"]))["sync"].clone()
}

/// Every payload byte of a bundle, decompressed.
fn bundle_text(path: &Path) -> String {
    let file = std::fs::File::open(path).expect("bundle");
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    let mut all = String::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry");
        all.push_str(&String::from_utf8_lossy(&bytes));
    }
    all
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_connected_satellite_behind_a_proxy_syncs_licenses_and_usage_and_hides_hostnames() {
    let cloud = Cloud::start();
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, ", send_hostnames: false");
    let cloud_target = format!("127.0.0.1:{}", cloud.port);

    // Connected registration: one command, through the proxy.
    let token = cloud.token_for("site-a");
    let registered = json_of(&sat.cli_ok(&["upstream", "register", "--token", &token, "--json"]));
    assert_eq!(registered["answer"]["kind"], "entitlements", "{registered}");
    let identity = std::fs::read_to_string(sat.data_dir().join("upstream.pem")).expect("identity");
    assert!(
        crate::fixture::openssl_verify(&cloud.dir.path().join("data/ca.pem"), &identity),
        "the upstream identity certificate is issued by the cloud CA"
    );
    assert!(
        proxy.tunnels_to(&cloud_target) >= 2,
        "CA fetch and registration went through the proxy"
    );
    assert_eq!(cloud.satellite("site-a")["status"], "REGISTERED");

    // No license yet: the router is out of compliance.
    let router = register(&sat, "FOCPRIV1", &sat.token("Lab", &[]));
    assert_eq!(entitlement(&router, "e1", 3)["status"], "OUT_OF_COMPLIANCE");

    // A Manual Record lists the instance with its hostname, locally.
    let report = sat.cli_ok(&["report", "generate", "--json"]);
    assert!(report.contains("router-FOCPRIV1"), "{report}");

    // A license added at the cloud authorizes the router after `satellite sync`.
    cloud.add_license(5);
    let before = proxy.tunnels_to(&cloud_target);
    let synced = sync_json(&sat);
    assert!(
        proxy.tunnels_to(&cloud_target) > before,
        "the sync went through the proxy"
    );
    assert_eq!(synced["sent"]["kind"], "usage", "{synced}");
    assert_eq!(synced["sent"]["counts"]["product_instances"], 1, "{synced}");
    assert_eq!(synced["received"]["kind"], "entitlements", "{synced}");
    assert_eq!(synced["received"]["counts"]["licenses"], 1, "{synced}");
    assert_eq!(entitlement(&router, "e2", 3)["status"], "AUTHORIZED");
    // The exchange spans transactions with the network between them; what
    // it recorded is still the operator's.
    let events = json_of(&sat.cli_ok(&["events", "--json", "--limit", "1000"]));
    let by_operator = |kind: &str| {
        events.as_array().expect("events").iter().any(|e| {
            e["kind"] == kind && e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))
        })
    };
    assert!(
        by_operator("sync"),
        "no sync event carries the operator: {events}"
    );

    // Usage appears at the cloud, and the cloud lists the satellite.
    assert_eq!(cloud.in_use(), 3);
    let listed = cloud.satellite("site-a");
    assert_eq!(listed["product_instances"], 1, "{listed}");
    assert_eq!(
        listed["sequence_received"], synced["sent"]["sequence"],
        "{listed}"
    );
    assert!(listed["last_contact_at"].is_string(), "{listed}");

    // Privacy: the bytes sent carry the instance but not its hostname.
    let sent = bundle_text(Path::new(synced["sent"]["path"].as_str().expect("path")));
    assert!(sent.contains("FOCPRIV1"), "the instance is in the bundle");
    assert!(!sent.contains("router-FOCPRIV1"), "hostname leaked: {sent}");
    let hostnames = crate::fixture::TestDb::of(&cloud.config_path())
        .rows("SELECT hostname FROM remote_instances");
    assert_eq!(hostnames, vec![vec![None::<String>]]);
    assert!(
        synced["sent"]["counts"]["reports"].as_u64() >= Some(1),
        "{synced}"
    );
    // The carried file (disconnected mode's way) is stripped the same way.
    let carried = json_of(&sat.cli_ok(&["export", "--json"]));
    let carried = bundle_text(Path::new(carried["path"].as_str().expect("path")));
    assert!(
        carried.contains("FOCPRIV1") && !carried.contains("router-FOCPRIV1"),
        "{carried}"
    );

    // The text form says what was sent and received; status and metrics show the health.
    let text = sat.cli_ok(&["sync"]);
    assert!(
        text.contains("sent usage bundle") && text.contains("received entitlement bundle"),
        "{text}"
    );
    let s = status(&sat);
    assert_eq!(s["mode"], "connected", "{s}");
    assert!(s["last_success"].is_string(), "{s}");
    assert!(s["last_error"].is_null(), "{s}");
    wait_until(
        "the next scheduled attempt",
        Duration::from_secs(10),
        || status(&sat)["next_attempt"].is_string(),
    );
    let human = sat.cli_ok(&["status"]);
    assert!(
        human.contains("last success:") && human.contains("next attempt:"),
        "{human}"
    );
    assert!(
        sat.metrics()
            .contains("satellite_sync_last_success_age_seconds "),
        "{}",
        sat.metrics()
    );

    // Revoked at the cloud: the next sync is refused with the reason, and
    // what routers are told does not change.
    cloud.cli_ok(&["satellite", "revoke", "site-a"]);
    let out = sat.cli(&["sync"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    let s = status(&sat);
    assert!(
        s["last_error"].as_str().unwrap_or("").contains("revoked"),
        "{s}"
    );
    // At least this one: the server's own retry (its backoff is seconds)
    // may have failed the same way since.
    assert!(s["failures"].as_u64() >= Some(1), "{s}");
    assert_eq!(entitlement(&router, "e3", 3)["status"], "AUTHORIZED");
    assert_eq!(
        proxy.refused.load(Ordering::SeqCst),
        0,
        "the credentials were always sent"
    );
}

#[test]
fn a_cloud_with_another_ca_is_refused_before_the_token_leaves() {
    let cloud = Cloud::start();
    let impostor = Cloud::start();
    let proxy = Proxy::start();
    // The token is the real cloud's; the URL leads to another cloud.
    let sat = connected_satellite(&impostor, &proxy, "");
    let token = cloud.token_for("site-a");
    let out = sat.cli(&["upstream", "register", "--token", &token]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pins"), "{err}");
    assert!(!status(&sat)["registered"].as_bool().unwrap_or(true));
    assert!(json_of(&impostor.cli_ok(&["satellite", "list", "--json"]))
        .as_array()
        .expect("array")
        .is_empty());
    assert!(!sat.data_dir().join("upstream.pem").exists());
}

#[test]
fn the_cloud_stopped_during_scheduled_syncs_is_caught_up_with_nothing_lost() {
    let mut cloud = Cloud::start();
    cloud.add_license(10);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, ", schedule: '*/2 * * * * *'");
    let token = cloud.token_for("site-a");
    sat.cli_ok(&["upstream", "register", "--token", &token]);
    let first = register(&sat, "FOCL1", &sat.token("Lab", &[]));
    assert_eq!(entitlement(&first, "e1", 2)["status"], "AUTHORIZED");
    wait_until("a scheduled sync", Duration::from_secs(20), || {
        cloud.in_use() == 2
    });

    cloud.stop();
    // Routers keep being served from the local database.
    let second = register(&sat, "FOCL2", &sat.token("Lab", &[]));
    assert_eq!(entitlement(&second, "e1", 3)["status"], "AUTHORIZED");
    wait_until("a failed scheduled sync", Duration::from_secs(20), || {
        status(&sat)["failures"].as_u64().unwrap_or(0) >= 1
    });
    let s = status(&sat);
    let last_error = s["last_error"].as_str().unwrap_or("");
    assert!(last_error.contains("cannot reach the cloud"), "{s}");
    // The hop that failed, named once: the cloud, behind the proxy.
    assert_eq!(last_error.matches("/sync/usage").count(), 1, "{last_error}");
    assert!(
        last_error.contains("through the proxy http://"),
        "{last_error}"
    );
    assert!(s["next_attempt"].is_string(), "{s}");
    let metrics = sat.metrics();
    assert!(
        metrics.contains("satellite_sync_failures ")
            && !metrics.contains("satellite_sync_failures 0"),
        "{metrics}"
    );
    let events = sat.cli_ok(&["events", "--json"]);
    assert!(
        events.contains("live sync with the cloud failed"),
        "{events}"
    );

    cloud.resume();
    wait_until("the satellite to catch up", Duration::from_secs(30), || {
        cloud.in_use() == 5
    });
    wait_until("the status to clear", Duration::from_secs(10), || {
        status(&sat)["failures"] == 0
    });
    assert_eq!(cloud.satellite("site-a")["product_instances"], 2);
    assert_eq!(entitlement(&second, "e2", 3)["status"], "AUTHORIZED");
}

#[test]
fn switching_modes_continues_the_sequence_and_loses_nothing() {
    let cloud = Cloud::start();
    cloud.add_license(10);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, "");
    let token = cloud.token_for("site-a");
    sat.cli_ok(&["upstream", "register", "--token", &token]);
    let one = register(&sat, "FOCM1", &sat.token("Lab", &[]));
    entitlement(&one, "e1", 1);
    let live = sync_json(&sat);
    let live_seq = live["sent"]["sequence"].as_u64().expect("seq");

    // Disconnected: a bundle exported and never carried, then one carried.
    let yaml = std::fs::read_to_string(&sat.config_path).expect("config");
    let connected_line = sync_block("connected", &cloud.url(), &proxy.url, "");
    let disconnected = yaml.replace(&connected_line, "sync: { mode: disconnected }\n");
    assert_ne!(yaml, disconnected);
    std::fs::write(&sat.config_path, &disconnected).expect("config");
    // Status shows what the running server does, and that the file differs.
    let s = status(&sat);
    assert_eq!(s["server_running"], true, "{s}");
    assert_eq!(s["mode"], "connected", "{s}");
    assert_eq!(s["cloud_url"], cloud.url(), "{s}");
    let shown_proxy = s["proxy"].as_str().unwrap_or("");
    assert!(
        proxy
            .url
            .ends_with(shown_proxy.trim_start_matches("http://"))
            && !shown_proxy.contains('@'),
        "the proxy, without its credentials: {s}"
    );
    assert!(
        s["config_differs"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("sync.mode: the server runs \"connected\"")),
        "{s}"
    );
    let human = sat.cli_ok(&["status"]);
    assert!(
        human.contains("applies at the next restart: sync.mode"),
        "{human}"
    );
    let out = sat.cli(&["sync"]);
    assert!(!out.status.success(), "sync refuses in disconnected mode");
    let two = register(&sat, "FOCM2", &sat.token("Lab", &[]));
    entitlement(&two, "e1", 2);
    let lost = json_of(&sat.cli_ok(&["export", "--json"]));
    // With `send_hostnames` left on, hostnames do travel (the privacy test's
    // check would see them).
    let lost_text = bundle_text(Path::new(lost["path"].as_str().expect("path")));
    assert!(lost_text.contains("router-FOCM2"), "{lost_text}");
    assert_eq!(lost["sequence"].as_u64(), Some(live_seq + 1));
    let three = register(&sat, "FOCM3", &sat.token("Lab", &[]));
    entitlement(&three, "e1", 3);
    let carried = json_of(&sat.cli_ok(&["export", "--json"]));
    let answer =
        json_of(&cloud.cli_ok(&["process", carried["path"].as_str().expect("path"), "--json"]));
    sat.cli_ok(&["import", answer["path"].as_str().expect("path")]);
    assert_eq!(cloud.in_use(), 6);

    // Connected again: the sequence goes on, the stale bundle is superseded.
    std::fs::write(&sat.config_path, &yaml).expect("config");
    let four = register(&sat, "FOCM4", &sat.token("Lab", &[]));
    entitlement(&four, "e1", 4);
    let again = sync_json(&sat);
    // Past the carried bundle's (a retry by the server's own schedule under
    // load may have taken a number in between).
    assert!(
        again["sent"]["sequence"]
            .as_u64()
            .is_some_and(|seq| seq >= live_seq + 3),
        "{again}"
    );
    assert_eq!(cloud.in_use(), 10);
    assert_eq!(cloud.satellite("site-a")["product_instances"], 4);
    let stale = cloud.cli(&["process", lost["path"].as_str().expect("path")]);
    assert!(
        !stale.status.success(),
        "the never-carried bundle is superseded"
    );
    assert!(String::from_utf8_lossy(&stale.stderr).contains("replay"));
    assert_eq!(cloud.in_use(), 10);
}

/// One live sync of 10,000 product instances (run by hand:
/// `cargo test --test it sync_live::ten_thousand -- --ignored --nocapture`).
#[test]
#[ignore]
fn ten_thousand_instances_in_one_live_sync() {
    let cloud = Cloud::start();
    cloud.add_license(100_000);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, "");
    let token = cloud.token_for("site-a");
    sat.cli_ok(&["upstream", "register", "--token", &token]);
    let now = sat.clock.unix();
    let mut db = satellite::store::connect(&sat.data_dir().join("satellite.db")).expect("db");
    satellite::store::transaction(&mut db, |c| {
        use satellite::store::{accounts, instances, tokens, usage};
        let va = accounts::require(c, "Test Corp", "Lab", now)?;
        let terms = satellite::domain::TokenTerms {
            days: 30,
            max_uses: None,
            description: String::new(),
            export_controlled: true,
        };
        let token = tokens::insert(
            c,
            va.id,
            &satellite::domain::TokenSecret::generate()?,
            &terms,
            now,
        )?;
        for i in 0..10_000 {
            let id = instances::upsert(
                c,
                &instances::NewRegistration {
                    instance_id: &format!("scale-{i}"),
                    virtual_account_id: va.id,
                    pid: "N540-24Z8Q2C-M",
                    sn: &format!("FOC{i:08}"),
                    hostname: Some(&format!("router-{i}")),
                    token_id: token,
                    now,
                },
            )?;
            usage::set(c, id, va.id, ESS, 4, now)?;
            usage::set(c, id, va.id, "N540-24Z8Q2C-FC-SW", 1, now)?;
        }
        Ok::<_, satellite::error::Error>(())
    })
    .expect("instances");
    let started = Instant::now();
    let synced = sync_json(&sat);
    let took = started.elapsed();
    println!(
        "one live sync of 10,000 product instances: {:.2} s wall (command), {} ms exchange, {} bytes sent (debug build)",
        took.as_secs_f64(),
        synced["millis"],
        synced["sent"]["bytes"]
    );
    assert_eq!(synced["sent"]["counts"]["product_instances"], 10_000);
    assert_eq!(cloud.in_use(), 40_000);
}

fn post_usage(cloud: &Cloud, agent: &ureq::Agent, bundle: &[u8]) -> (u16, Vec<u8>) {
    let url = format!("{}/sync/usage", cloud.url());
    let response = match agent
        .post(&url)
        .set("Content-Type", "application/zip")
        .send_bytes(bundle)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .expect("answer");
    (status, body)
}

#[test]
fn the_cloud_answers_a_repeated_usage_bundle_the_same_and_only_to_its_satellite() {
    let cloud = Cloud::start();
    cloud.add_license(5);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, "");
    sat.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    let router = register(&sat, "FOCR1", &sat.token("Lab", &[]));
    entitlement(&router, "e1", 2);
    let synced = sync_json(&sat);
    let bundle = std::fs::read(synced["sent"]["path"].as_str().expect("path")).expect("bundle");
    let cloud_ca = cloud.dir.path().join("data/ca.pem");

    // The satellite's own identity: the same answer, byte for byte, twice.
    let cert = std::fs::read_to_string(sat.data_dir().join("upstream.pem")).expect("cert");
    let key_pem = std::fs::read(sat.data_dir().join("upstream.key")).expect("key");
    let key = openssl::pkey::PKey::private_key_from_pem(&key_pem).expect("key");
    let agent = crate::client::agent(&cloud_ca, Some((&cert, &key)));
    let (status, first) = post_usage(&cloud, &agent, &bundle);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    let sha = hex::encode(openssl::sha::sha256(&first));
    assert_eq!(Some(sha.as_str()), synced["received"]["sha256"].as_str());
    let (_, second) = post_usage(&cloud, &agent, &bundle);
    assert_eq!(first, second);
    assert_eq!(cloud.in_use(), 2, "nothing counted twice");

    // No certificate, or a router's certificate from the same cloud CA: refused.
    let (status, body) = post_usage(&cloud, &crate::client::agent(&cloud_ca, None), &bundle);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("certificate_required"));
    let router_key = crate::client::p256();
    // (Lab is site-a's: the router registers into a VA the cloud serves.)
    cloud.cli_ok(&["va", "create", "Direct"]);
    let cloud_token = json_of(&cloud.cli_ok(&["token", "create", "--va", "Direct", "--json"]));
    let (status, registered) = crate::client::Device::new(&cloud.url(), &cloud_ca, None).post(
        &crate::client::registration(
            "r1",
            "FOCDIRECT",
            cloud_token["token"].as_str().expect("token"),
            &crate::client::csr(&router_key),
        ),
    );
    assert_eq!(status, 200, "{registered}");
    let router_cert = registered["certificate"].as_str().expect("certificate");
    let agent = crate::client::agent(&cloud_ca, Some((router_cert, &router_key)));
    let (status, body) = post_usage(&cloud, &agent, &bundle);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("certificate_unknown"));
}

/// A Call Home HTTP target: the bodies it received.
fn alert_collector() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (port, rx)
}

#[test]
fn a_satellite_that_has_not_synced_for_30_and_60_days_says_so() {
    let mut cloud = Cloud::start();
    let proxy = Proxy::start();
    let (port, alerts) = alert_collector();
    let sat = connected_satellite(
        &cloud,
        &proxy,
        &format!(
            " }}\ncall_home: {{ profiles: [ {{ name: noc, transport: http, url: 'http://127.0.0.1:{port}/alerts', \
             format: short-text, categories: [sync] }} ]"
        ),
    );
    sat.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    cloud.stop();
    let overdue = |days: &str| {
        sat.cli_ok(&["events", "--json"])
            .contains(&format!("for {days} days"))
    };
    let next_overdue_alert = || loop {
        let body = alerts
            .recv_timeout(Duration::from_secs(15))
            .expect("a Call Home sync alert");
        if body.contains("overdue") {
            return body;
        }
    };
    sat.clock.advance(time::Duration::days(31));
    wait_until("the 30-day event", Duration::from_secs(10), || {
        overdue("30")
    });
    assert!(!overdue("60"));
    next_overdue_alert();
    sat.clock.advance(time::Duration::days(30));
    wait_until("the 60-day event", Duration::from_secs(10), || {
        overdue("60")
    });
    next_overdue_alert();
    // The failed live syncs meanwhile alerted once, not at every retry.
    let failed = alerts
        .try_iter()
        .filter(|b| b.contains("live sync with the cloud failed"))
        .count();
    assert!(failed <= 1, "{failed} failure alerts");
}

#[test]
fn a_satellite_registered_by_carried_files_goes_connected_without_losing_anything() {
    let cloud = Cloud::start();
    cloud.add_license(10);
    let proxy = Proxy::start();
    // No scheduled export within the month the clock moves on below: one
    // written between the two syncs would spend a sequence of its own.
    let sat = Server::start_with(&format!(
        "{BASE_CONFIG}sync: {{ mode: disconnected, export_schedule: \"0 0 3 29 2 *\" }}\n"
    ));
    let token = cloud.token_for("site-u");
    // The USB way first (the token is valid 30 days).
    let request = json_of(&sat.cli_ok(&["upstream", "register", "--token", &token, "--json"]));
    let answer =
        json_of(&cloud.cli_ok(&["process", request["path"].as_str().expect("path"), "--json"]));
    sat.cli_ok(&["import", answer["path"].as_str().expect("path")]);
    let one = register(&sat, "FOCU1", &sat.token("Lab", &[]));
    assert_eq!(entitlement(&one, "e1", 2)["status"], "AUTHORIZED");
    let carried = json_of(&sat.cli_ok(&["export", "--json"]));
    let answer =
        json_of(&cloud.cli_ok(&["process", carried["path"].as_str().expect("path"), "--json"]));
    sat.cli_ok(&["import", answer["path"].as_str().expect("path")]);
    assert_eq!(cloud.in_use(), 2);

    // Connected from now on, long after the satellite token expired: no
    // token, no second registration; the first `sync` gets the upstream
    // identity, proved by the bundle signer the cloud pinned.
    let out = sat.cli(&["sync"]);
    assert!(!out.status.success(), "not connected yet");
    let days = time::Duration::days(31);
    sat.clock.advance(days);
    cloud.clock.advance(days);
    sat.rewrite_config(&format!(
        "{BASE_CONFIG}{}",
        sync_block("connected", &cloud.url(), &proxy.url, "")
    ));
    let first = sync_json(&sat);
    assert_eq!(first["sent"]["kind"], "usage", "{first}");
    assert_eq!(
        first["sent"]["sequence"].as_u64(),
        carried["sequence"].as_u64().map(|s| s + 1),
        "{first}"
    );
    assert!(sat.data_dir().join("upstream.pem").exists());
    let two = register(&sat, "FOCU2", &sat.token("Lab", &[]));
    entitlement(&two, "e1", 3);
    let synced = sync_json(&sat);
    assert_eq!(
        synced["sent"]["sequence"].as_u64(),
        carried["sequence"].as_u64().map(|s| s + 2)
    );
    assert_eq!(cloud.in_use(), 5);
    let listed = cloud.satellite("site-u");
    assert_eq!(listed["product_instances"], 2, "{listed}");
    assert_eq!(
        listed["sequence_received"], synced["sent"]["sequence"],
        "{listed}"
    );
}

#[test]
fn the_upstream_identity_is_renewed_before_it_expires() {
    let cloud = Cloud::start();
    cloud.add_license(5);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, "");
    sat.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    let identity =
        || std::fs::read_to_string(sat.data_dir().join("upstream.pem")).expect("identity");
    let first = identity();
    sync_json(&sat);
    assert_eq!(identity(), first, "a young certificate is kept");

    // Past half its life, the next sync renews it first.
    for clock in [&sat.clock, &cloud.clock] {
        clock.advance(time::Duration::days(200));
    }
    sync_json(&sat);
    let second = identity();
    assert_ne!(second, first, "renewed");
    let not_after = |pem: &str| {
        let cert = openssl::x509::X509::from_pem(pem.as_bytes()).expect("certificate");
        let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("epoch");
        epoch.diff(cert.not_after()).expect("diff").days
    };
    assert!(
        not_after(&second) >= not_after(&first) + 199,
        "the new one runs a year from now"
    );

    // Past the first certificate's end, live sync still works.
    for clock in [&sat.clock, &cloud.clock] {
        clock.advance(time::Duration::days(200));
    }
    let router = register(&sat, "FOCI1", &sat.token("Lab", &[]));
    entitlement(&router, "e1", 1);
    sync_json(&sat);
    assert_eq!(cloud.in_use(), 1);
}

#[test]
fn an_operator_syncs_now_through_the_rest_api() {
    let cloud = Cloud::start();
    cloud.add_license(10);
    let proxy = Proxy::start();
    let sat = connected_satellite(&cloud, &proxy, "");
    sat.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    let router = register(&sat, "FOCAPI1", &sat.token("Lab", &[]));
    entitlement(&router, "e1", 3);
    let api = crate::api::Api::new(&sat);
    let viewer = crate::api::bearer(&sat, &api, "noc", "viewer", &["Lab"]);
    let (status, _) = api.call("POST", "/api/v1/sync/now", Some(&viewer), None);
    assert_eq!(status, 403, "a viewer cannot sync");
    let admin = crate::api::bearer(&sat, &api, "ops", "admin", &[]);
    let (status, synced) = api.call("POST", "/api/v1/sync/now", Some(&admin), None);
    assert_eq!(status, 200, "{synced}");
    assert_eq!(synced["sent"]["kind"], "usage");
    assert_eq!(synced["received"]["kind"], "entitlements");
    assert_eq!(cloud.in_use(), 3);
}

#[test]
fn another_satellites_upstream_key_cannot_sign_and_a_rotated_cloud_signer_moves_the_pin() {
    use crate::bundle_trust::{assert_forgery_refused, forge};
    use crate::sync::{arg, path_of};
    let mut cloud = Cloud::start();
    cloud.add_license(5);
    let proxy = Proxy::start();
    // site-b is connected: it holds an upstream identity the cloud CA issued.
    let site_b = connected_satellite(&cloud, &proxy, "");
    site_b.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_serving("site-b", "Edge"),
    ]);
    // site-a carries its bundles on a stick.
    let site_a = Server::start_with(&BASE_CONFIG.replace("name: test-satellite", "name: site-a"));
    let token = cloud.token_for("site-a");
    let request = path_of(&site_a.cli_ok(&["upstream", "register", "--token", &token, "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&request), "--json"]));
    site_a.cli_ok(&["import", arg(&answer)]);

    let cloud_data = cloud.dir.path().join("data");
    let cloud_ca = std::fs::read_to_string(cloud_data.join("ca.pem")).expect("ca");
    let usage = path_of(&site_a.cli_ok(&["export", "--json"]));
    let genuine = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    let upstream_key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(site_b.data_dir().join("upstream.key")).expect("upstream.key"),
    )
    .expect("key");
    let upstream_pem =
        std::fs::read_to_string(site_b.data_dir().join("upstream.pem")).expect("upstream.pem");
    let forged = forge(
        &genuine,
        &upstream_key,
        &upstream_pem,
        &cloud_ca,
        ("quantity", 777),
    );
    assert_forgery_refused(&site_a, "import", &forged, "identity certificate");
    site_a.cli_ok(&["import", arg(&genuine)]);

    // The cloud rotates its signer (stopped, as the command insists); its
    // next answer carries the old signer's proof and site-a moves its pin.
    let old_key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(cloud_data.join("signer.key")).expect("signer.key"),
    )
    .expect("key");
    let old_chain = std::fs::read_to_string(cloud_data.join("signer.pem")).expect("signer.pem");
    let refused = cloud.cli(&["bundle", "rotate-signer"]);
    assert!(!refused.status.success(), "rotated under a running server");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stop"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    cloud.stop();
    let rotated = json_of(&cloud.cli_ok(&["bundle", "rotate-signer", "--json"]));
    cloud.resume();
    let usage = path_of(&site_a.cli_ok(&["export", "--json"]));
    let answer = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    site_a.cli_ok(&["import", arg(&answer)]);
    let status = json_of(&site_a.cli_ok(&["status", "--json"]));
    assert_eq!(
        status["sync"]["cloud_signer_sha256"], rotated["signer_sha256"],
        "{status} {rotated}"
    );
    let events = site_a.cli_ok(&["events", "--json"]);
    assert!(events.contains("rolled over"), "{events}");

    // A bundle signed by the retired signer is refused, naming it.
    let usage = path_of(&site_a.cli_ok(&["export", "--json"]));
    let next = path_of(&cloud.cli_ok(&["process", arg(&usage), "--json"]));
    let stale = forge(&next, &old_key, &old_chain, &cloud_ca, ("quantity", 5));
    assert_forgery_refused(&site_a, "import", &stale, "retired bundle signer");
    site_a.cli_ok(&["import", arg(&next)]);
}

fn zips_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "zip"))
                .count()
        })
        .unwrap_or(0)
}

/// A day of hourly syncs (moved clock) with the cloud down half of it, in
/// two six-hour outages: retries resend the pending bundle under its
/// sequence, a recovery delivers it and then what changed since, and the
/// export folders hold a bounded few files, not one per attempt.
#[test]
fn a_day_of_hourly_syncs_through_outages_spends_no_sequence_and_piles_up_no_files() {
    let mut cloud = Cloud::start();
    cloud.add_license(100);
    let proxy = Proxy::start();
    // No scheduled sync within the day: the test makes every attempt.
    let sat = connected_satellite(&cloud, &proxy, ", schedule: '0 0 0 1 1 *'");
    sat.cli_ok(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    let router = register(&sat, "FOCDAY1", &sat.token("Lab", &[]));
    let hour = time::Duration::hours(1);
    let mut down = false;
    let mut failures = 0;
    for h in 0..24u32 {
        sat.clock.advance(hour);
        cloud.clock.advance(hour);
        let outage = (6..12).contains(&h) || (18..24).contains(&h);
        if outage && !down {
            cloud.stop();
            down = true;
        } else if !outage && down {
            cloud.resume();
            down = false;
        }
        entitlement(&router, &format!("e{h}"), 1 + h % 5);
        let before = status(&sat)["sequence_sent"].as_u64();
        let out = sat.cli(&["sync", "--json"]);
        if outage {
            assert!(
                !out.status.success(),
                "hour {h}: synced with the cloud down"
            );
            failures += 1;
            if failures > 1 && !(h == 6 || h == 18) {
                assert_eq!(
                    status(&sat)["sequence_sent"].as_u64(),
                    before,
                    "hour {h}: a retry spent a sequence number"
                );
            }
        } else {
            assert!(
                out.status.success(),
                "hour {h}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    cloud.resume();
    let synced = sync_json(&sat);
    assert_eq!(
        cloud.in_use(),
        i64::from(1 + 23 % 5),
        "the last demand reached the cloud after the outage: {synced}"
    );
    let kept = zips_in(&sat.dir.path().join("export"));
    assert!(
        kept <= satellite::sync::live::KEEP_ACKNOWLEDGED as usize + 1,
        "{kept} bundles left in the satellite's export folder"
    );
    assert_eq!(
        zips_in(&cloud.dir.path().join("export")),
        0,
        "the cloud writes no files for live answers"
    );
    eprintln!(
        "after 24 hourly attempts (12 failed): {kept} files in the satellite's export/, \
         0 in the cloud's; last sequence sent {}",
        synced["sent"]["sequence"]
    );
}

/// An outage names the hop that failed, once: here the proxy itself.
#[test]
fn a_dead_proxy_is_named_as_the_hop_that_failed() {
    let cloud = Cloud::start();
    let sat = Server::start_with(&format!(
        "{BASE_CONFIG}{}",
        sync_block("connected", &cloud.url(), "http://127.0.0.1:9", "")
    ));
    let out = sat.cli(&[
        "upstream",
        "register",
        "--token",
        &cloud.token_for("site-a"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the proxy http://127.0.0.1:9 (on the way to https://"),
        "{stderr}"
    );
    assert_eq!(stderr.matches(&cloud.url()).count(), 1, "{stderr}");
}
