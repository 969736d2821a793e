//! `serve`, `init` and `status`: the satellite itself rather than its inventory.

use super::error::CliError;
use super::output::print_json;
use super::table;
use crate::app::Satellite;
use crate::clock::Clock;
use crate::config::{Config, Role, CONFIG_ENV, DEFAULT_FILE, SYSTEM_FILE};
use crate::error::Error;
use crate::setup;

pub fn init(config: &Config, clock: &Clock) -> Result<(), CliError> {
    let (created, ca) = setup::ensure(config, clock)?;
    let dir = config.data_dir.display();
    for warning in &created.warnings {
        println!("warning: {warning}");
    }
    if !(created.database || created.ca || created.server_certificate) {
        println!("{dir} is already initialized; nothing was changed");
    }
    if created.database {
        println!(
            "created the database {}",
            crate::store::Location::of(config).shown()
        );
    }
    if created.ca {
        println!(
            "created the satellite CA {}/{}",
            dir,
            crate::pki::CA_CERT_FILE
        );
    }
    if created.server_certificate {
        println!(
            "created the server certificate {}/{} for {}",
            dir,
            crate::pki::SERVER_CERT_FILE,
            config.device.hostnames.join(", ")
        );
    }
    if let Some(password) = created.admin_password {
        println!(
            "bootstrap admin credential (shown once, store it now): {} / {password}",
            crate::ops::views::BOOTSTRAP_ADMIN
        );
    }
    println!(
        "CA fingerprint (SHA-256): {}",
        ca.fingerprint_hex().map_err(Error::from)?
    );
    Ok(())
}

pub fn status(
    config: &Config,
    clock: &Clock,
    caller: &crate::ops::Caller,
    json: bool,
) -> Result<(), CliError> {
    let conn = crate::ops::Local::open(config, clock)?;
    let server_running = crate::serve_lock::ensure_free(&config.data_dir).is_err();
    let ca = crate::pki::CertificateAuthority::load(&config.data_dir).map_err(Error::from)?;
    let totals = conn.read(|c| crate::inventory::totals(c, &config.account, clock.unix()))?;
    let stats = conn.read(|c| {
        crate::ops::alerts::call_home_statistics(c, caller, &config.call_home.profiles)
    })?;
    let sync =
        match config.role {
            Role::Satellite => serde_json::to_value(conn.read(|c| {
                crate::ops::sync::status(c, caller, config, server_running, clock.unix())
            })?),
            Role::Cloud => serde_json::to_value(conn.read(crate::sync::cloud::list)?),
        }
        .map_err(|e| CliError::Other(e.to_string()))?;
    let (storage, role_since) = storage_status(config, &conn, server_running)?;
    let report = serde_json::json!({
        "storage": storage,
        "name": config.name,
        "role": config.role,
        "account": config.account,
        "config": config.source,
        "data_dir": config.data_dir,
        "ca": config.data_dir.join(crate::pki::CA_CERT_FILE),
        "ca_fingerprint": ca.fingerprint_hex().map_err(Error::from)?,
        "device_listen": config.device.listen.to_string(),
        "admin_listen": config.admin.listen.to_string(),
        "virtual_accounts": totals.virtual_accounts,
        "product_instances": totals.product_instances,
        "active_tokens": totals.active_tokens,
        "now": totals.now,
        "call_home": stats,
        "sync": sync,
    });
    if json {
        return print_json(&report);
    }
    println!(
        "{} ({} role), smart account {:?}",
        config.name,
        role_word(config.role),
        config.account
    );
    println!("  config:            {}", config.source);
    println!("  data dir:          {}", config.data_dir.display());
    println!(
        "  CA:                {}",
        config.data_dir.join(crate::pki::CA_CERT_FILE).display()
    );
    println!(
        "  CA fingerprint:    {}",
        report["ca_fingerprint"].as_str().unwrap_or_default()
    );
    println!(
        "  device listener:   https://{}/SmartTransport",
        config.device.listen
    );
    println!("  admin listener:    https://{}/", config.admin.listen);
    print_storage(&storage, role_since.map(|since| clock.unix() - since));
    println!("  virtual accounts:  {}", report["virtual_accounts"]);
    println!("  product instances: {}", report["product_instances"]);
    println!("  active tokens:     {}", report["active_tokens"]);
    print_sync(config, &sync);
    if !stats.is_empty() {
        println!("\nCall Home statistics:");
        table::print(&stats);
    }
    Ok(())
}

/// Where the database is, and this node's role: `active` when its server
/// runs and (on a shared PostgreSQL database) holds the leadership,
/// `standby` when it runs beside an active node, `stopped` when no server
/// runs here. Also when the role began (unix), for the text.
fn storage_status(
    config: &Config,
    conn: &crate::ops::Local,
    server_running: bool,
) -> Result<(serde_json::Value, Option<i64>), CliError> {
    let location = crate::store::Location::of(config);
    let host = crate::store::leader::node_name(&config.data_dir);
    let active = conn.read(crate::store::leader::active_node)?;
    let (role, since) = match (&location, server_running, &active) {
        (_, false, _) => ("stopped", None),
        (crate::store::Location::Embedded(_), true, _) => ("active", None),
        (_, true, Some(a)) if a.held && a.host == host => ("active", Some(a.since)),
        (_, true, _) => ("standby", None),
    };
    let report = serde_json::json!({
        "backend": location.backend(),
        "database": location.shown(),
        "node": {
            "host": host,
            "role": role,
            "since": since.map(crate::clock::rfc3339),
        },
        "active_node": active.filter(|a| a.held).map(|a| serde_json::json!({
            "host": a.host,
            "since": crate::clock::rfc3339(a.since),
        })),
    });
    Ok((report, since))
}

/// `held_for`: seconds this node has had its role, when known.
fn print_storage(storage: &serde_json::Value, held_for: Option<i64>) {
    println!(
        "  database:          {} ({})",
        storage["database"].as_str().unwrap_or_default(),
        storage["backend"].as_str().unwrap_or_default()
    );
    let node = &storage["node"];
    let role = node["role"].as_str().unwrap_or_default();
    let since = held_for
        .map(|seconds| format!(" for {}", how_long(seconds)))
        .unwrap_or_default();
    println!(
        "  this node:         {} ({role}{since})",
        node["host"].as_str().unwrap_or_default()
    );
    if storage["backend"] == "postgres" && role != "active" {
        match storage["active_node"]["host"].as_str() {
            Some(host) => println!(
                "  active node:       {host} (since {})",
                storage["active_node"]["since"].as_str().unwrap_or_default()
            ),
            None => println!("  active node:       none: no node holds the leadership"),
        }
    }
}

/// A duration as a person reads it: "40 s", "12 min", "5 h", "3 days".
fn how_long(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// The sync lines of `status`: a satellite's upstream, or the cloud's satellites.
fn print_sync(config: &Config, sync: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "never".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match config.role {
        Role::Satellite => {
            let whose = if sync["server_running"] == true {
                "as the running server does it"
            } else {
                "no server running; as the config file says"
            };
            println!("\nSync ({} mode, {whose}):", text(&sync["mode"]));
            for differs in sync["config_differs"].as_array().into_iter().flatten() {
                println!(
                    "  changed in the file, applies at the next restart: {}",
                    text(differs)
                );
            }
            if sync["mode"] == "connected" {
                println!("  cloud URL:         {}", text(&sync["cloud_url"]));
                if !sync["proxy"].is_null() {
                    println!("  proxy:             {}", text(&sync["proxy"]));
                }
            }
            if sync["cloud_id"].is_null() {
                println!("  not registered with a cloud: `satellite upstream register --token T`");
                return;
            }
            let registered = if sync["registered"] == true {
                "registered"
            } else {
                "registration pending"
            };
            println!(
                "  cloud:             {} ({registered})",
                text(&sync["cloud_id"])
            );
            println!("  satellite id:      {}", text(&sync["satellite_id"]));
            println!(
                "  cloud signer:      {}",
                match &sync["cloud_signer_sha256"] {
                    serde_json::Value::Null => "not pinned yet (pinned by the next import)".into(),
                    pin => text(pin),
                }
            );
            println!("  last export:       {}", text(&sync["last_export"]));
            println!("  last import:       {}", text(&sync["last_import"]));
            println!(
                "  sequence out/in:   {} / {}",
                text(&sync["sequence_sent"]),
                text(&sync["sequence_received"])
            );
            match sync["days_since_acknowledged"].as_i64() {
                Some(days) => println!(
                    "  usage acknowledged: {} ({days} days ago)",
                    text(&sync["last_acknowledged"])
                ),
                None => println!("  usage acknowledged: never"),
            }
            if !sync["next_export"].is_null() {
                println!("  next export:       {}", text(&sync["next_export"]));
            }
            println!("  last success:      {}", text(&sync["last_success"]));
            if !sync["next_attempt"].is_null() {
                println!("  next attempt:      {}", text(&sync["next_attempt"]));
            }
            if !sync["last_error"].is_null() {
                println!("  last error:        {}", text(&sync["last_error"]));
            }
        }
        Role::Cloud => {
            let n = sync.as_array().map(Vec::len).unwrap_or(0);
            println!("\nSatellites: {n} (`satellite satellite list`)");
        }
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Satellite => "satellite",
        Role::Cloud => "cloud",
    }
}

pub fn serve(config: Config, clock: Clock) -> Result<(), CliError> {
    let satellite = Satellite::open(config, clock)?;
    // Printed before anything else can fail: it is shown only once.
    if let Some(password) = &satellite.created.admin_password {
        println!(
            "bootstrap admin credential (shown once, store it now): {} / {password}",
            crate::ops::views::BOOTSTRAP_ADMIN
        );
    }
    for warning in &satellite.created.warnings {
        tracing::warn!("{warning}");
    }
    let listeners = satellite.bind()?;
    let device_addr = listeners
        .device
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let admin_addr = listeners
        .admin
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let config = satellite.config.clone();
    let location = crate::store::Location::of(&config);
    let shown_database = location.shown();
    let ca_path = config.data_dir.join(crate::pki::CA_CERT_FILE);
    let under_cargo = std::env::var_os("CARGO_MANIFEST_DIR").is_some();
    let (sat, router) = if under_cargo {
        (
            "cargo run --release --",
            "cargo run --release --bin satellite-router --",
        )
    } else {
        ("satellite", "satellite-router")
    };
    // No `-c` when the next command would find the same file by itself.
    let found_anyway = config.source == DEFAULT_FILE
        || config.source == SYSTEM_FILE
        || config.source.starts_with('<')
        || std::env::var_os(CONFIG_ENV).is_some_and(|v| v == config.source.as_str());
    let config_flag = if found_anyway {
        String::new()
    } else {
        format!(" -c {}", config.source)
    };
    actix_web::rt::System::new().block_on(async move {
        // Listen for signals before telling anyone we are up.
        let shutdown = crate::http::termination_signal()
            .map_err(|e| CliError::Other(format!("cannot listen for signals: {e}")))?;
        println!(
            "{} ({} role) serving smart account {:?}",
            config.name,
            role_word(config.role),
            config.account
        );
        println!("  device API: https://{device_addr}/SmartTransport");
        println!("  admin:      https://{admin_addr}/  (/healthz, /readyz, /metrics)");
        println!("  portal:     https://{admin_addr}/  (log in as a user: `satellite user add`)");
        println!(
            "  REST API:   https://{admin_addr}/api/v1/openapi.json  (token: POST /backend/oauth/token)"
        );
        println!(
            "  CA:         {}  (routers and clients trust this one file)",
            ca_path.display()
        );
        println!("  database:   {}", shown_database);
        println!("  config:     {}", config.source);
        println!();
        println!("Next, in another terminal:");
        if config.role == Role::Cloud {
            // The cloud holds what was bought: licenses come first.
            println!("  {sat}{config_flag} license add --va Default --sku ESS-AC-10G-RTU-1 --quantity 10");
            println!("  {sat}{config_flag} license add --va Default --sku ESS-AC-10G-SIA-5 --quantity 10");
            println!("  {sat}{config_flag} license list");
            println!("  then, for routers registering straight to the cloud:");
        }
        println!("  {sat}{config_flag} token create --va Default --days 30");
        println!(
            "  {router} -s r1.json init --pid N540-24Z8Q2C-M --sn FOC2104R0XX --hostname r1 --url https://{} --ca {}",
            dialable(device_addr, &config.device.hostnames),
            ca_path.display()
        );
        println!("  {router} -s r1.json license smart register idtoken <TOKEN>");
        println!("  {router} -s r1.json show license status");
        // A script may stop reading at `instance list`: nothing after it.
        println!("  {sat}{config_flag} client add monitoring --role viewer --va Default --json");
        println!("  {sat}{config_flag} instance list");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tracing::info!(device = %device_addr, admin = %admin_addr, "listening");
        satellite.serve(listeners, shutdown).await.map_err(CliError::from)
    })?;
    // Every connection is closing: a database left whole lets the next
    // start skip its full integrity check.
    if let Some(db) = location.embedded_file() {
        crate::app::record_clean_stop(db);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where a router on this host dials the device listener: its address, or
/// when it listens on every address (0.0.0.0, ::), the first name its
/// certificate carries (nobody can dial 0.0.0.0).
fn dialable(addr: std::net::SocketAddr, hostnames: &[String]) -> String {
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    let host = hostnames.first().map_or("localhost", String::as_str);
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::dialable;

    #[test]
    fn a_router_is_told_an_address_it_can_dial() {
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        assert_eq!(
            dialable("0.0.0.0:443".parse().expect("addr"), &names),
            "localhost:443"
        );
        assert_eq!(
            dialable("10.0.0.5:443".parse().expect("addr"), &names),
            "10.0.0.5:443"
        );
        assert_eq!(
            dialable("[::]:443".parse().expect("addr"), &["::1".to_string()]),
            "[::1]:443"
        );
    }
}
