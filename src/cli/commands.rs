use super::{table, Cli, Command, InstanceCommand, TokenCommand, VaCommand};
use crate::app::{Satellite, StartError};
use crate::clock::{rfc3339, Clock};
use crate::config::{Config, ConfigError, LogFormat, Role, DEFAULT_FILE};
use crate::domain::TokenTerms;
use crate::error::Error;
use crate::store::{self, accounts, events, instances, tokens};
use crate::{inventory, setup};
use rusqlite::Connection;
use serde::Serialize;
use std::path::Path;

/// Everything a command can fail with, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Service(#[from] Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Other(String),
}

impl From<store::StoreError> for CliError {
    fn from(e: store::StoreError) -> Self {
        CliError::Service(e.into())
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None if Path::new(DEFAULT_FILE).exists() => Ok(Config::load(Path::new(DEFAULT_FILE))?),
        None => Ok(Config::embedded(Path::new("."))?),
    }
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Opens the database for a command, initializing whatever is missing. A
/// bootstrap credential created here goes to stderr so `--json` stays clean.
fn open(config: &Config, clock: &Clock) -> Result<Connection, CliError> {
    let (created, _) = setup::ensure(config, clock)?;
    if let Some(password) = created.admin_password {
        eprintln!(
            "initialized {}; bootstrap admin credential (shown once): {} / {password}",
            config.data_dir.display(),
            store::users::BOOTSTRAP_ADMIN
        );
    }
    Ok(store::connect(&config.database_path())?)
}

fn write<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, Error>,
) -> Result<T, CliError> {
    Ok(store::transaction(conn, f)?)
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = load_config(cli.config.as_deref())?;
    let clock = Clock::from_env().map_err(CliError::Other)?;
    if matches!(cli.command, Command::Serve) {
        init_logging(&config);
    }
    let account = config.account.clone();
    let now = clock.unix();
    match cli.command {
        Command::Serve => serve(config, clock),
        Command::Init => init(&config, &clock),
        Command::Status { json } => status(&config, &clock, json),
        Command::Va(VaCommand::Create {
            name,
            description,
            json,
        }) => {
            let mut conn = open(&config, &clock)?;
            let va = write(&mut conn, |c| {
                inventory::create_virtual_account(c, &account, &name, &description, now)
            })?;
            if json {
                print_json(&va)
            } else {
                println!("virtual account {:?} created in {:?}", va.name, va.account);
                Ok(())
            }
        }
        Command::Va(VaCommand::List { json }) => {
            let conn = open(&config, &clock)?;
            let vas = accounts::list(&conn, &account, now)?;
            if json {
                return print_json(&vas);
            }
            let rows: Vec<Vec<String>> = vas
                .iter()
                .map(|va| {
                    vec![
                        va.name.clone(),
                        va.product_instances.to_string(),
                        va.active_tokens.to_string(),
                        va.description.clone(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "Virtual Account",
                    "Product Instances",
                    "Active Tokens",
                    "Description",
                ],
                &rows,
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            va,
            days,
            description,
            max_uses,
            no_export_controlled,
            json,
        }) => {
            let mut conn = open(&config, &clock)?;
            let terms = TokenTerms {
                days,
                max_uses,
                description,
                export_controlled: !no_export_controlled,
            };
            let created = write(&mut conn, |c| {
                inventory::create_token(c, &account, &va, &terms, now)
            })?;
            if json {
                return print_json(&created);
            }
            println!("{}", created.token);
            println!(
                "\nregistration token for virtual account {:?}, expires {}{}",
                created.virtual_account,
                created.expires_at,
                created
                    .max_uses
                    .map(|n| format!(", at most {n} uses"))
                    .unwrap_or_default()
            );
            println!(
                "the token is shown only now; on a router: license smart register idtoken <token>"
            );
            Ok(())
        }
        Command::Token(TokenCommand::List { va, json }) => {
            let conn = open(&config, &clock)?;
            if let Some(va) = &va {
                accounts::require(&conn, &account, va, now)?;
            }
            let list = tokens::list(&conn, &account, va.as_deref(), now)?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        format!("{}…", t.token_prefix),
                        t.virtual_account.clone(),
                        t.expires_at.clone(),
                        match t.max_uses {
                            Some(max) => format!("{}/{max}", t.uses),
                            None => t.uses.to_string(),
                        },
                        t.status.to_string(),
                        t.description.clone(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "Token",
                    "Virtual Account",
                    "Expires",
                    "Uses",
                    "Status",
                    "Description",
                ],
                &rows,
            );
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { token, json }) => {
            let mut conn = open(&config, &clock)?;
            let prefix = write(&mut conn, |c| {
                inventory::revoke_token(c, &account, &token, now)
            })?;
            if json {
                return print_json(
                    &serde_json::json!({"token_prefix": prefix, "status": "REVOKED"}),
                );
            }
            println!("token {prefix}… revoked; devices it registered stay registered");
            Ok(())
        }
        Command::Instance(InstanceCommand::List { va, json }) => {
            let conn = open(&config, &clock)?;
            if let Some(va) = &va {
                accounts::require(&conn, &account, va, now)?;
            }
            let list: Vec<_> = instances::list(&conn, &account, va.as_deref())?
                .iter()
                .map(instances::Instance::view)
                .collect();
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|i| {
                    vec![
                        i.udi.clone(),
                        i.hostname.clone().unwrap_or_default(),
                        i.virtual_account.clone(),
                        i.status.clone(),
                        i.last_contact_at.clone(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "UDI",
                    "Hostname",
                    "Virtual Account",
                    "Status",
                    "Last Contact",
                ],
                &rows,
            );
            Ok(())
        }
        Command::Instance(InstanceCommand::Show { instance, json }) => {
            let conn = open(&config, &clock)?;
            let view = inventory::find_instance(&conn, &instance)?.view();
            if json {
                return print_json(&view);
            }
            println!("Product Instance: {}", view.instance_id);
            println!("  UDI: {}", view.udi);
            println!("  Hostname: {}", view.hostname.as_deref().unwrap_or("-"));
            println!("  Virtual Account: {}", view.virtual_account);
            println!("  Status: {}", view.status);
            println!("  Registered: {}", view.registered_at);
            println!("  Last Contact: {}", view.last_contact_at);
            Ok(())
        }
        Command::Instance(InstanceCommand::Remove { instance, json }) => {
            let mut conn = open(&config, &clock)?;
            let removed = write(&mut conn, |c| inventory::remove_instance(c, &instance, now))?;
            let view = removed.view();
            if json {
                return print_json(&view);
            }
            println!(
                "product instance {} removed; its certificate is revoked and its licenses released",
                view.udi
            );
            Ok(())
        }
        Command::Events { kind, limit, json } => {
            let conn = open(&config, &clock)?;
            let list = events::list(&conn, kind.as_deref(), limit)?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|e| {
                    vec![
                        e.at.clone(),
                        e.kind.clone(),
                        e.severity.clone(),
                        e.virtual_account.clone().unwrap_or_default(),
                        e.message.clone(),
                    ]
                })
                .collect();
            table::print(
                &["Time", "Kind", "Severity", "Virtual Account", "Message"],
                &rows,
            );
            Ok(())
        }
    }
}

fn init(config: &Config, clock: &Clock) -> Result<(), CliError> {
    let (created, ca) = setup::ensure(config, clock)?;
    let dir = config.data_dir.display();
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

fn status(config: &Config, clock: &Clock, json: bool) -> Result<(), CliError> {
    let conn = open(config, clock)?;
    let ca = crate::pki::CertificateAuthority::load(&config.data_dir).map_err(Error::from)?;
    let count = |sql: &str| -> Result<i64, CliError> {
        Ok(conn.query_row(sql, [], |r| r.get(0)).map_err(Error::from)?)
    };
    let report = serde_json::json!({
        "name": config.name,
        "role": config.role,
        "account": config.account,
        "data_dir": config.data_dir,
        "ca": config.data_dir.join(crate::pki::CA_CERT_FILE),
        "ca_fingerprint": ca.fingerprint_hex().map_err(Error::from)?,
        "device_listen": config.device.listen.to_string(),
        "admin_listen": config.admin.listen.to_string(),
        "virtual_accounts": count("SELECT COUNT(*) FROM virtual_accounts")?,
        "product_instances": count("SELECT COUNT(*) FROM product_instances")?,
        "active_tokens": conn.query_row(
            "SELECT COUNT(*) FROM registration_tokens WHERE revoked_at IS NULL AND expires_at > ?1",
            [clock.unix()], |r| r.get::<_, i64>(0)).map_err(Error::from)?,
        "now": rfc3339(clock.unix()),
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
    Ok(())
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Satellite => "satellite",
        Role::Cloud => "cloud",
    }
}

fn serve(config: Config, clock: Clock) -> Result<(), CliError> {
    let satellite = Satellite::open(config, clock)?;
    let listeners = satellite.bind()?;
    let device_addr = listeners
        .device
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let admin_addr = listeners
        .admin
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let config = &satellite.config;
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
    if let Some(password) = &satellite.created.admin_password {
        println!(
            "  bootstrap admin credential (shown once, store it now): {} / {password}",
            store::users::BOOTSTRAP_ADMIN
        );
    }
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
    tracing::info!(device = %device_addr, admin = %admin_addr, "listening");
    actix_web::rt::System::new()
        .block_on(satellite.serve(listeners, crate::http::termination_signal()))?;
    tracing::info!("stopped");
    Ok(())
}
