//! The USB exchange at scale: a satellite holding N product instances (each
//! with two entitlement tags) exports its usage bundle, the cloud processes
//! it, the satellite imports the answer. Prints time and size per step.
//!
//!     cargo bench --bench sync_scale                 # 10,000 and 100,000 instances
//!     SYNC_SCALE=1000000 cargo bench --bench sync_scale
//!
//! Not a timed test: it measures, it asserts only that each step succeeded.

use satellite::clock::Clock;
use satellite::config::Config;
use satellite::domain::{TokenSecret, TokenTerms};
use satellite::store::{self, accounts, instances, tokens, usage};
use satellite::sync::bundle::{self, Limits};
use satellite::sync::{self, cloud, satellite as sat, Keys, SyncError};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn node_config(dir: &Path, yaml: &str) -> Config {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("satellite.yaml");
    std::fs::write(&path, yaml).expect("config");
    Config::load(&path).expect("config")
}

fn read(path: &str) -> bundle::Opened {
    let bytes = std::fs::read(path).expect("bundle");
    bundle::open(&bytes, &Limits::default()).expect("valid bundle")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = match std::env::var("SYNC_SCALE") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000],
    };
    println!("instances  export_s  bundle_bytes  process_s  answer_bytes  import_s");
    for n in sizes {
        run(n);
    }
}

fn run(n: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Clock::system();
    let now = clock.unix();
    let cloud_cfg = node_config(
        &tmp.path().join("cloud"),
        "name: cloud\nrole: cloud\naccount: Bench\nlog: { level: warn }\n",
    );
    let sat_cfg = node_config(
        &tmp.path().join("sat"),
        "name: site\naccount: Bench\nlog: { level: warn }\n",
    );
    satellite::setup::ensure(&cloud_cfg, &clock).expect("cloud init");
    satellite::setup::ensure(&sat_cfg, &clock).expect("satellite init");
    let cloud_keys = Keys::load(&cloud_cfg, now).expect("keys");
    let sat_keys = Keys::load(&sat_cfg, now).expect("keys");
    let mut cdb = store::connect(&cloud_cfg.database_path()).expect("db");
    let mut sdb = store::connect(&sat_cfg.database_path()).expect("db");

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
    let answer = process(&mut cdb, &cloud_cfg, &cloud_keys, &request.path, now);
    import(&mut sdb, &sat_cfg, &sat_keys, &answer, now);

    // N product instances, each asking for two tags.
    store::transaction(&mut sdb, |c| {
        let va = accounts::require(c, "Bench", "Default", now)?;
        let terms = TokenTerms {
            days: 30,
            max_uses: None,
            description: String::new(),
            export_controlled: true,
        };
        let token = tokens::insert(c, va.id, &TokenSecret::generate()?, &terms, now)?;
        for i in 0..n {
            let sn = format!("FOC{i:08}");
            let id = instances::upsert(
                c,
                &instances::NewRegistration {
                    instance_id: &format!("bench-{i}"),
                    virtual_account_id: va.id,
                    pid: "N540-24Z8Q2C-M",
                    sn: &sn,
                    hostname: Some(&format!("router-{i}")),
                    token_id: token,
                    now,
                },
            )?;
            usage::set(c, id, va.id, "ESS-AC-10G-RTU-1", 4, now)?;
            usage::set(c, id, va.id, "N540-24Z8Q2C-FC-SW", 1, now)?;
        }
        Ok::<_, satellite::error::Error>(())
    })
    .expect("instances");

    let t = Instant::now();
    let usage = store::transaction(&mut sdb, |c| {
        let catalog = sync::current_catalog(c, &sat_cfg)?;
        sat::export_usage(c, &sat_keys.node(&sat_cfg, &catalog, now))
    })
    .expect("export");
    let export_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let answer = process(&mut cdb, &cloud_cfg, &cloud_keys, &usage.path, now);
    let process_s = t.elapsed().as_secs_f64();
    let answer_bytes = std::fs::metadata(&answer).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    import(&mut sdb, &sat_cfg, &sat_keys, &answer, now);
    let import_s = t.elapsed().as_secs_f64();
    println!(
        "{n:>9}  {export_s:>8.2}  {:>12}  {process_s:>9.2}  {answer_bytes:>12}  {import_s:>8.3}",
        usage.bytes
    );
}

fn process(
    db: &mut rusqlite::Connection,
    cfg: &Config,
    keys: &Keys,
    path: &str,
    now: i64,
) -> PathBuf {
    let opened = read(path);
    let (processed, _) = store::transaction(db, |c| {
        let catalog = sync::current_catalog(c, cfg)?;
        cloud::process(c, &keys.node(cfg, &catalog, now), &opened)
    })
    .expect("process");
    PathBuf::from(processed.path)
}

fn import(db: &mut rusqlite::Connection, cfg: &Config, keys: &Keys, path: &Path, now: i64) {
    let opened = read(path.to_str().expect("utf8"));
    store::transaction(db, |c| {
        let catalog = sync::current_catalog(c, cfg)?;
        sat::import(c, &keys.node(cfg, &catalog, now), &opened)
    })
    .map_err(|e: SyncError| e.to_string())
    .expect("import");
}
