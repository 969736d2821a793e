//! Device API throughput, side by side with a baseline measured in the same
//! run: the least a correct implementation on the same crates must do per
//! request (TLS, JSON, one certificate for a registration, one durable row).
//!
//!     cargo bench --bench device_api            # defaults: 64 clients, 4 s per phase
//!     BENCH_CLIENTS=32 BENCH_SECONDS=8 cargo bench --bench device_api
//!
//! Prints requests per second for both and our ratio to the baseline.

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
    let seconds = env_or("BENCH_SECONDS", 4);
    println!("device API benchmark: {clients} concurrent clients, {seconds} s per phase, 2 phases per server");

    let ours = OurServer::start();
    let base = BaselineServer::start();

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
    let ours_ids: Vec<(String, PKey<Private>)> = (0..clients)
        .map(|i| register(&ours.url, &ours.ca, &ours.token, &format!("E{i}")))
        .collect();
    let base_ids: Vec<(String, PKey<Private>)> = (0..clients)
        .map(|i| register_baseline(&base.url, &base.ca, &format!("E{i}")))
        .collect();
    let ours_ent = load(
        clients,
        seconds,
        |i, n| {
            let body = json!({"type": "ENTITLEMENT", "message_id": format!("e{i}-{n}"),
            "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1 + (n % 4)}]});
            (format!("{}/SmartTransport", ours.url), body, Some(i))
        },
        &ours.ca,
    )
    .with_identities(&ours_ids);
    let base_ent = load(
        clients,
        seconds,
        |i, n| {
            let body = json!({"type": "ENTITLEMENT", "message_id": format!("e{i}-{n}"),
            "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1 + (n % 4)}]});
            (format!("{}/entitlement", base.url), body, Some(i))
        },
        &base.ca,
    )
    .with_identities(&base_ids);

    let report = |name: &str, ours: &Phase, base: &Phase| {
        let o = ours.run();
        let b = base.run();
        println!(
            "{name:<14} ours {:>8.0}/s ({} ok, {} failed)   baseline {:>8.0}/s ({} ok, {} failed)   ratio {:.2}",
            o.rate, o.ok, o.failed, b.rate, b.ok, b.failed, o.rate / b.rate.max(1e-9)
        );
    };
    report("registration", &ours_reg, &base_reg);
    report("entitlement", &ours_ent, &base_ent);
    println!(
        "group commit: {} writes in {} commits",
        ours.satellite_writes(),
        ours.satellite_commits()
    );
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
        let elapsed = std::thread::scope(|s| {
            for i in 0..self.clients {
                let (ok, failed, stop, start) = (&ok, &failed, &stop, &start);
                s.spawn(move || {
                    let identity = self.identities.map(|ids| (ids[i].0.as_str(), &ids[i].1));
                    let agent = agent(&self.ca, identity);
                    start.wait();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (url, body, _) = (self.make)(i, n);
                        n += 1;
                        match agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body.to_string())
                        {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
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
        Outcome {
            ok,
            failed: failed.load(Ordering::Relaxed),
            rate: ok as f64 / elapsed.as_secs_f64(),
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
}

impl OurServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("satellite.yaml");
        std::fs::write(&path, "role: cloud\ndevice: { listen: 127.0.0.1:0, registrations_per_minute: 100000 }\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: error }\n").expect("config");
        let config = Config::load(&path).expect("config");
        let clock = Clock::system();
        let satellite = Satellite::open(config.clone(), clock.clone()).expect("open");
        let now = clock.unix();
        let mut conn = satellite::store::connect(&config.database_path()).expect("db");
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
        }
    }

    fn satellite_writes(&self) -> u64 {
        self.writer.stats().writes.load(Ordering::Relaxed)
    }

    fn satellite_commits(&self) -> u64 {
        self.writer.stats().commits.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------- baseline

/// The least a correct device API does: TLS with optional client
/// certificates, JSON in and out, a CSR checked and signed for a
/// registration, and one durable row (its own commit) per request.
struct Baseline {
    ca_cert: X509,
    ca_key: PKey<Private>,
    db: Mutex<rusqlite::Connection>,
}

#[derive(Clone, Copy)]
struct Fingerprint([u8; 32]);

struct BaselineServer {
    _dir: tempfile::TempDir,
    url: String,
    ca: std::path::PathBuf,
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
        let db = rusqlite::Connection::open(dir.path().join("baseline.db")).expect("db");
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
            CREATE TABLE devices (sn TEXT PRIMARY KEY, instance_id TEXT, certificate TEXT);
            CREATE TABLE usage (fingerprint BLOB PRIMARY KEY, body TEXT);",
        )
        .expect("schema");
        let state = web::Data::new(Baseline {
            ca_cert: ca.certificate().clone(),
            ca_key: PKey::private_key_from_pem(&std::fs::read(ca_dir.join("ca.key")).expect("key"))
                .expect("key"),
            db: Mutex::new(db),
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
        }
    }
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
    let signed = web::block(move || -> Option<Value> {
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
        let pem = String::from_utf8(b.build().to_pem().ok()?).ok()?;
        state
            .db
            .lock()
            .ok()?
            .execute(
                "INSERT OR REPLACE INTO devices VALUES (?1, ?2, ?3)",
                [&sn, &instance_id, &pem],
            )
            .ok()?;
        Some(json!({"certificate": pem, "instance_id": instance_id}))
    })
    .await;
    match signed {
        Ok(Some(answer)) => HttpResponse::Ok().json(answer),
        _ => HttpResponse::BadRequest().finish(),
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
    let text = v["entitlements"].to_string();
    let stored = web::block(move || {
        state
            .db
            .lock()
            .ok()?
            .execute(
                "INSERT OR REPLACE INTO usage VALUES (?1, ?2)",
                rusqlite::params![fp.as_slice(), text],
            )
            .ok()
    })
    .await;
    match stored {
        Ok(Some(_)) => HttpResponse::Ok()
            .json(json!({"status": "AUTHORIZED", "entitlements": v["entitlements"]})),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}
