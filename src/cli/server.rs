//! `serve`, `init` and `status`: the satellite itself rather than its inventory.

use super::commands::{open, print_json, CliError};
use super::table;
use crate::app::Satellite;
use crate::clock::{rfc3339, Clock};
use crate::config::{Config, Role, DEFAULT_FILE};
use crate::error::Error;
use crate::{setup, store};

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
        println!("created the database {}", config.database_path().display());
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
            store::users::BOOTSTRAP_ADMIN
        );
    }
    println!(
        "CA fingerprint (SHA-256): {}",
        ca.fingerprint_hex().map_err(Error::from)?
    );
    Ok(())
}

pub fn status(config: &Config, clock: &Clock, json: bool) -> Result<(), CliError> {
    let conn = open(config, clock)?;
    let ca = crate::pki::CertificateAuthority::load(&config.data_dir).map_err(Error::from)?;
    let counts = store::names::counts(&conn, clock.unix())?;
    let stats = crate::alerts::statistics(&conn, &config.call_home.profiles)?;
    let report = serde_json::json!({
        "name": config.name,
        "role": config.role,
        "account": config.account,
        "data_dir": config.data_dir,
        "ca": config.data_dir.join(crate::pki::CA_CERT_FILE),
        "ca_fingerprint": ca.fingerprint_hex().map_err(Error::from)?,
        "device_listen": config.device.listen.to_string(),
        "admin_listen": config.admin.listen.to_string(),
        "virtual_accounts": counts.virtual_accounts,
        "product_instances": counts.product_instances,
        "active_tokens": counts.active_tokens,
        "now": rfc3339(clock.unix()),
        "call_home": stats,
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
    println!("  virtual accounts:  {}", report["virtual_accounts"]);
    println!("  product instances: {}", report["product_instances"]);
    println!("  active tokens:     {}", report["active_tokens"]);
    if !stats.is_empty() {
        println!("\nCall Home statistics:");
        table::print(&stats);
    }
    Ok(())
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
            store::users::BOOTSTRAP_ADMIN
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
    let config_flag = if config.source == DEFAULT_FILE || config.source.starts_with('<') {
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
        println!(
            "  CA:         {}  (routers and clients trust this one file)",
            ca_path.display()
        );
        println!("  database:   {}", config.database_path().display());
        println!();
        println!("Next, in another terminal:");
        println!("  {sat}{config_flag} token create --va Default --days 30");
        println!(
            "  {router} -s r1.json init --pid N540-24Z8Q2C-M --sn FOC2104R0XX --hostname r1 --url https://{device_addr} --ca {}",
            ca_path.display()
        );
        println!("  {router} -s r1.json license smart register idtoken <TOKEN>");
        println!("  {router} -s r1.json show license status");
        println!("  {sat}{config_flag} instance list");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tracing::info!(device = %device_addr, admin = %admin_addr, "listening");
        satellite.serve(listeners, shutdown).await.map_err(CliError::from)
    })?;
    tracing::info!("stopped");
    Ok(())
}
