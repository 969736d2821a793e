use super::{
    table, Cli, Command, InstanceCommand, LicenseCommand, ReportCommand, TokenCommand, VaCommand,
};
use crate::app::{Satellite, StartError};
use crate::clock::{rfc3339, Clock};
use crate::config::{Config, ConfigError, LogFormat, Role, DEFAULT_FILE};
use crate::domain::TokenTerms;
use crate::error::Error;
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::Transition;
use crate::licensing::reports::{self, ReportKind};
use crate::licensing::{compliance, Notifier};
use crate::store::licenses;
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

pub fn init_logging(config: &Config, quiet: bool) {
    let level = if quiet {
        "warn"
    } else {
        config.log.level.as_str()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
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
    // One-shot commands log only warnings (e.g. a compliance change they caused).
    init_logging(&config, !matches!(cli.command, Command::Serve));
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
                .map(|i| i.view(now))
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
            let found = inventory::find_instance(&conn, &instance)?;
            let view = found.view(now);
            let entitlements: Vec<reports::EntitlementUsage> =
                crate::store::usage::of_instance(&conn, found.id)?
                    .into_iter()
                    .map(|(tag, count, status)| reports::EntitlementUsage { tag, count, status })
                    .collect();
            if json {
                let mut value =
                    serde_json::to_value(&view).map_err(|e| CliError::Other(e.to_string()))?;
                value["entitlements"] = serde_json::to_value(&entitlements)
                    .map_err(|e| CliError::Other(e.to_string()))?;
                return print_json(&value);
            }
            println!("Product Instance: {}", view.instance_id);
            println!("  UDI: {}", view.udi);
            println!("  Hostname: {}", view.hostname.as_deref().unwrap_or("-"));
            println!("  Virtual Account: {}", view.virtual_account);
            println!("  Status: {}", view.status);
            println!("  Registered: {}", view.registered_at);
            println!("  Last Contact: {}", view.last_contact_at);
            if let (Some(next), Some(deadline)) = (&view.next_communication, &view.deadline) {
                println!("  Next Communication: {next}");
                println!("  Communication Deadline: {deadline}");
            }
            if !entitlements.is_empty() {
                println!("  Entitlements:");
                for e in &entitlements {
                    println!("    {} x{} {}", e.tag, e.count, e.status);
                }
            }
            Ok(())
        }
        Command::Instance(InstanceCommand::Remove { instance, json }) => {
            let mut conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let (removed, transitions) = write(&mut conn, |c| {
                inventory::remove_instance(c, &catalog, &instance, now)
            })?;
            notify(&config, &clock, &transitions);
            let view = removed.view(now);
            if json {
                return print_json(&view);
            }
            println!(
                "product instance {} removed; its certificate is revoked and its licenses released",
                view.udi
            );
            Ok(())
        }
        Command::Instance(InstanceCommand::Move { instance, to, json }) => {
            let mut conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let (moved, transitions) = write(&mut conn, |c| {
                inventory::move_instance(c, &catalog, &account, &instance, &to, now)
            })?;
            notify(&config, &clock, &transitions);
            let view = moved.view(now);
            if json {
                return print_json(&view);
            }
            println!(
                "product instance {} moved to {:?} with its license usage",
                view.udi, view.virtual_account
            );
            Ok(())
        }
        Command::License(LicenseCommand::Add {
            va,
            sku,
            quantity,
            start,
            end,
            json,
        }) => {
            let mut conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let order = inventory::LicenseOrder {
                virtual_account: &va,
                sku: &sku,
                quantity,
                start: start
                    .as_deref()
                    .map(|d| parse_date("start", d))
                    .transpose()?,
                end: end.as_deref().map(|d| parse_date("end", d)).transpose()?,
            };
            let (id, transitions) = write(&mut conn, |c| {
                inventory::add_license(c, &catalog, config.role, &account, &order, now)
            })?;
            notify(&config, &clock, &transitions);
            let added = licenses::list(&conn, &account, Some(&va), now)?
                .into_iter()
                .find(|l| l.id == id)
                .ok_or_else(|| CliError::Other("the new license vanished".into()))?;
            if json {
                return print_json(&added);
            }
            println!(
                "{} x {} added to {:?} ({}{})",
                added.quantity,
                added.sku,
                added.virtual_account,
                added.license_type,
                added
                    .end
                    .as_deref()
                    .map(|e| format!(" until {e}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::License(LicenseCommand::List { va, json }) => {
            let conn = open(&config, &clock)?;
            if let Some(va) = &va {
                accounts::require(&conn, &account, va, now)?;
            }
            let list = licenses::list(&conn, &account, va.as_deref(), now)?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|l| {
                    vec![
                        l.virtual_account.clone(),
                        l.sku.clone(),
                        l.tag.clone(),
                        l.quantity.to_string(),
                        l.license_type.clone(),
                        l.start.clone(),
                        l.end.clone().unwrap_or_else(|| "-".into()),
                        if l.active { "ACTIVE" } else { "INACTIVE" }.into(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "Virtual Account",
                    "SKU",
                    "Entitlement Tag",
                    "Quantity",
                    "Type",
                    "Start",
                    "End",
                    "State",
                ],
                &rows,
            );
            Ok(())
        }
        Command::License(LicenseCommand::Transfer {
            from,
            to,
            sku,
            quantity,
            json,
        }) => {
            let mut conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let transfer = inventory::Transfer {
                from: &from,
                to: &to,
                sku: &sku,
                quantity,
            };
            let transitions = write(&mut conn, |c| {
                inventory::transfer_license(c, &catalog, &account, &transfer, now)
            })?;
            notify(&config, &clock, &transitions);
            let rows = compliance::rows(&conn, &catalog, &account, Some(&from), now)?;
            if json {
                return print_json(&serde_json::json!({
                    "from": from, "to": to, "sku": sku, "quantity": quantity,
                    "source_compliance": rows,
                }));
            }
            println!("{quantity} x {sku} transferred from {from:?} to {to:?}");
            let moved_tag = catalog.sku(&sku).map(|s| s.tag.clone()).unwrap_or_default();
            for r in rows
                .iter()
                .filter(|r| r.shortfall > 0 && r.tag == moved_tag)
            {
                println!("warning: {from:?} is short {} of {} ({} in use, {} available); a Compliance Warning Report was generated", r.shortfall, r.tag, r.in_use, r.available);
            }
            Ok(())
        }
        Command::Compliance {
            va,
            history: Some(days),
            json,
        } => {
            let conn = open(&config, &clock)?;
            if let Some(va) = &va {
                accounts::require(&conn, &account, va, now)?;
            }
            let rows = reports::usage_history(&conn, &account, va.as_deref(), days, now)?;
            if json {
                return print_json(&rows);
            }
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.day.clone(),
                        r.virtual_account.clone(),
                        r.tag.clone(),
                        r.available.to_string(),
                        r.in_use.to_string(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "Day",
                    "Virtual Account",
                    "Entitlement Tag",
                    "Available",
                    "In Use",
                ],
                &table_rows,
            );
            Ok(())
        }
        Command::Compliance {
            va,
            history: None,
            json,
        } => {
            let conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let rows = compliance::rows(&conn, &catalog, &account, va.as_deref(), now)?;
            if json {
                return print_json(&rows);
            }
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.virtual_account.clone(),
                        r.tag.clone(),
                        r.available.to_string(),
                        r.in_use.to_string(),
                        r.shortfall.to_string(),
                        r.status.to_string(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "Virtual Account",
                    "Entitlement Tag",
                    "Available",
                    "In Use",
                    "Shortfall",
                    "Status",
                ],
                &table_rows,
            );
            Ok(())
        }
        Command::Report(ReportCommand::Generate { va, json }) => {
            let mut conn = open(&config, &clock)?;
            let catalog = catalog(&config)?;
            if let Some(va) = &va {
                accounts::require(&conn, &account, va, now)?;
            }
            let id = write(&mut conn, |c| {
                reports::generate(
                    c,
                    &catalog,
                    ReportKind::Manual,
                    &account,
                    va.as_deref(),
                    now,
                )
            })?;
            let report = reports::load(&conn, id)?;
            if json {
                return print_json(&report);
            }
            print!("{}", reports::render(&report, reports::Format::Text));
            Ok(())
        }
        Command::Report(ReportCommand::List { limit, json }) => {
            let conn = open(&config, &clock)?;
            let list = reports::list(&conn, limit)?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.kind.clone(),
                        r.created_at.clone(),
                        r.virtual_account.clone().unwrap_or_else(|| "(all)".into()),
                        r.summary.clone(),
                    ]
                })
                .collect();
            table::print(
                &["ID", "Report", "Created", "Virtual Account", "Summary"],
                &rows,
            );
            Ok(())
        }
        Command::Report(ReportCommand::Show { id, format }) => {
            let conn = open(&config, &clock)?;
            let report = reports::load(&conn, id)?;
            let text = reports::render(&report, format);
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
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

fn catalog(config: &Config) -> Result<Catalog, CliError> {
    Catalog::load(config.catalog.as_deref())
        .map_err(|reason| Error::invalid("catalog", reason).into())
}

/// Compliance changes made from the command line reach the log and syslog too.
fn notify(config: &Config, clock: &Clock, transitions: &[Transition]) {
    if transitions.is_empty() {
        return;
    }
    let syslog = config
        .log
        .syslog
        .as_deref()
        .and_then(|url| crate::syslog::Syslog::connect(url, &config.name).ok());
    Notifier::new(
        syslog,
        crate::alerts::CallHome::inline(config, clock.clone()),
        clock.clone(),
    )
    .compliance(transitions);
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_date(field: &str, text: &str) -> Result<i64, CliError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{text:?} is not a date; write YYYY-MM-DD or RFC 3339"),
            )
            .into()
        })
}

fn init(config: &Config, clock: &Clock) -> Result<(), CliError> {
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
        "call_home": crate::alerts::statistics(&conn)?,
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
    let stats = crate::alerts::statistics(&conn)?;
    if !stats.is_empty() {
        println!("\nCall Home statistics:");
        let rows: Vec<Vec<String>> = stats
            .iter()
            .map(|s| {
                vec![
                    s.profile.clone(),
                    s.message_type.clone(),
                    s.success.to_string(),
                    s.failed.to_string(),
                    s.inqueue.to_string(),
                    s.dropped.to_string(),
                    s.last_sent.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table::print(
            &[
                "Profile",
                "Msg Subtype",
                "Success",
                "Failed",
                "Inqueue",
                "Dropped",
                "Last-sent (UTC)",
            ],
            &rows,
        );
    }
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
