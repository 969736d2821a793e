use super::error::CliError;
use super::output::{print_json, show};
use super::{
    table, CatalogCommand, Cli, Command, InstanceCommand, LicenseCommand, ReportCommand,
    TokenCommand, VaCommand,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::TokenTerms;
use crate::error::Error;
use crate::inventory;
use crate::licensing::catalog::Catalog;
use crate::licensing::reports::{self, ReportKind};
use crate::ops::{self, Caller, Page};
use serde::Serialize;
use std::path::Path;

/// `-c FILE`, else `$SATELLITE_CONFIG`, else `./satellite.yaml`, else
/// `/etc/satellite/satellite.yaml`, else the embedded defaults (with which
/// only `init` and `serve` can do anything: they create the satellite).
fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    match crate::config::locate(path)? {
        Some(path) => Ok(Config::load(&path)?),
        None => Ok(Config::embedded(Path::new("."))?),
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    // Needs no configuration: it describes the command line itself.
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "satellite",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if let Command::Manual = cli.command {
        use clap::CommandFactory;
        return clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| CliError::Other(format!("cannot write the manual: {e}")));
    }
    let config = load_config(cli.config.as_deref())?;
    let clock = Clock::from_env().map_err(CliError::Other)?;
    // One-shot commands log only warnings (e.g. a compliance change they caused).
    crate::logging::init(&config, !matches!(cli.command, Command::Serve));
    let account = config.account.clone();
    let now = clock.unix();
    // The command line is the local administrator.
    let caller = Caller::local_admin();
    match cli.command {
        Command::Serve => super::server::serve(config, clock),
        Command::Init => super::server::init(&config, &clock),
        Command::Status { json } => super::server::status(&config, &clock, &caller, json),
        Command::Va(VaCommand::Create {
            name,
            description,
            json,
        }) => {
            let mut conn = ops::Local::open(&config, &clock)?;
            let va = conn.change(&caller, |c| {
                ops::accounts::create(c, &caller, &account, &name, &description, now)
            })?;
            if json {
                print_json(&va)
            } else {
                println!("virtual account {:?} created in {:?}", va.name, va.account);
                Ok(())
            }
        }
        Command::Va(VaCommand::Serve { name, by, json }) => {
            let mut conn = ops::Local::open(&config, &clock)?;
            let keys = crate::sync::Keys::load(&config, now)?;
            let served = conn.change(&caller, |c| {
                ops::sync::serve_virtual_account(c, &caller, &config, &keys, &name, &by, now)
            })?;
            if json {
                return print_json(&served);
            }
            println!(
                "virtual account {:?} is now served by {} (before: {})",
                served.virtual_account,
                served.served_by,
                served.previously.join(", ")
            );
            Ok(())
        }
        Command::Va(VaCommand::List { json }) => {
            let conn = ops::Local::open(&config, &clock)?;
            let vas = conn.read(|c| ops::accounts::list(c, &caller, &account, now))?;
            show(&vas, json)
        }
        Command::Token(TokenCommand::Create {
            va,
            days,
            description,
            max_uses,
            no_export_controlled,
            json,
        }) => {
            let mut conn = ops::Local::open(&config, &clock)?;
            let terms = TokenTerms {
                days,
                max_uses,
                description,
                export_controlled: !no_export_controlled,
            };
            let created = conn.change(&caller, |c| {
                ops::tokens::create(c, &caller, &account, &va, &terms, now)
            })?;
            if json {
                return print_json(&created);
            }
            println!("{}", created.token);
            eprintln!(
                "\nregistration token for virtual account {:?}, expires {}{}",
                created.virtual_account,
                created.expires_at,
                created
                    .max_uses
                    .map(|n| format!(", at most {n} uses"))
                    .unwrap_or_default()
            );
            eprintln!(
                "the token is shown only now; on a router: license smart register idtoken <token>"
            );
            Ok(())
        }
        Command::Token(TokenCommand::List { va, json }) => {
            let conn = ops::Local::open(&config, &clock)?;
            let list = conn.read(|c| {
                ops::tokens::list(c, &caller, &account, va.as_deref(), Page::UNBOUNDED, now)
            })?;
            show(&list, json)
        }
        Command::Token(TokenCommand::Revoke { token, json }) => {
            let mut conn = ops::Local::open(&config, &clock)?;
            let prefix = conn.change(&caller, |c| {
                ops::tokens::revoke(c, &caller, &account, None, &token, now)
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
            let conn = ops::Local::open(&config, &clock)?;
            let filter = ops::instances::InstanceFilter {
                virtual_account: va,
                ..Default::default()
            };
            if !json {
                let mut list = Vec::new();
                conn.read(|c| {
                    ops::instances::for_each(c, &caller, &account, &filter, now, |v| {
                        list.push(v);
                        Ok(true)
                    })
                })?;
                return show(&list, json);
            }
            // Streamed as it is read, in the same form as `print_json`: a
            // million instances never sit in memory at once.
            use std::io::Write as _;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut first = true;
            let mut failed = None;
            conn.read(|c| {
                ops::instances::for_each(c, &caller, &account, &filter, now, |v| {
                    let item = match serde_json::to_string_pretty(&v) {
                        Ok(item) => item,
                        Err(e) => {
                            failed = Some(CliError::Other(e.to_string()));
                            return Ok(false);
                        }
                    };
                    let sep = if first { "[\n" } else { ",\n" };
                    first = false;
                    let indented = item.replace('\n', "\n  ");
                    if let Err(e) = write!(out, "{sep}  {indented}") {
                        failed = Some(CliError::Other(e.to_string()));
                        return Ok(false);
                    }
                    Ok(true)
                })
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            let end = if first { "[]\n" } else { "\n]\n" };
            out.write_all(end.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::Other(e.to_string()))
        }
        Command::Instance(InstanceCommand::Show { instance, json }) => {
            let conn = ops::Local::open(&config, &clock)?;
            let (view, entitlements) =
                conn.read(|c| ops::instances::show(c, &caller, &instance, now))?;
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
            let mut conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let (view, _) = conn.change_pools(&caller, |c| {
                ops::instances::remove(c, &catalog, &caller, &instance, now)
            })?;
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
            let mut conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let (view, _) = conn.change_pools(&caller, |c| {
                ops::instances::move_to(c, &catalog, &caller, &account, &instance, &to, now)
            })?;
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
            let mut conn = ops::Local::open(&config, &clock)?;
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
            let (id, _) = conn.change_pools(&caller, |c| {
                ops::licenses::add(c, &catalog, &caller, config.role, &account, &order, now)
            })?;
            let added = conn.read(|c| inventory::license(c, &account, &va, id, now))?;
            if let Some(end) = added.end_at.filter(|end| *end <= now) {
                // Allowed (back-office records), but it makes nothing available.
                eprintln!(
                    "warning: the term of these licenses ended on {}: they add nothing available now; \
                     check --start/--end if you meant a current term",
                    crate::clock::rfc3339(end)
                );
            }
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
            let conn = ops::Local::open(&config, &clock)?;
            let list = conn.read(|c| {
                ops::licenses::list(c, &caller, &account, va.as_deref(), Page::UNBOUNDED, now)
            })?;
            show(&list, json)
        }
        Command::License(LicenseCommand::Transfer {
            from,
            to,
            sku,
            quantity,
            json,
        }) => {
            let mut conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let transfer = inventory::Transfer {
                from: &from,
                to: &to,
                sku: &sku,
                quantity,
            };
            let ((), _) = conn.change_pools(&caller, |c| {
                ops::licenses::transfer(c, &catalog, &caller, config.role, &account, &transfer, now)
                    .map(|transitions| ((), transitions))
            })?;
            let rows = conn.read(|c| {
                ops::accounts::compliance(c, &catalog, &caller, &account, Some(&from), now)
            })?;
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
            let conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let rows = conn.read(|c| {
                ops::accounts::usage_history(
                    c,
                    &catalog,
                    &caller,
                    &account,
                    va.as_deref(),
                    days,
                    now,
                )
            })?;
            show(&rows, json)
        }
        Command::Compliance {
            va,
            history: None,
            json,
        } => {
            let conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let rows = conn.read(|c| {
                ops::accounts::compliance(c, &catalog, &caller, &account, va.as_deref(), now)
            })?;
            show(&rows, json)
        }
        Command::Report(ReportCommand::Generate { va, kind, json }) => {
            let kind = match kind {
                super::GeneratedKind::Manual => ReportKind::Manual,
                super::GeneratedKind::Warning => ReportKind::ComplianceWarning,
            };
            let mut conn = ops::Local::open(&config, &clock)?;
            let catalog = catalog(&config)?;
            let id = conn.change(&caller, |c| {
                ops::accounts::generate_report(
                    c,
                    &catalog,
                    &caller,
                    kind,
                    &account,
                    va.as_deref(),
                    now,
                )
            })?;
            let report = conn.read(|c| ops::reports::show(c, &caller, id))?;
            if json {
                return print_json(&report);
            }
            print!("{}", reports::render(&report, reports::Format::Text));
            Ok(())
        }
        Command::Report(ReportCommand::List { limit, json }) => {
            let conn = ops::Local::open(&config, &clock)?;
            // Newest first from the operations layer; people read oldest first.
            let mut list =
                conn.read(|c| ops::reports::list(c, &caller, Page { limit, offset: 0 }))?;
            list.reverse();
            show(&list, json)
        }
        Command::Report(ReportCommand::Show { id, format, json }) => {
            let conn = ops::Local::open(&config, &clock)?;
            let report = conn.read(|c| ops::reports::show(c, &caller, id))?;
            let format = if json {
                reports::Format::Json
            } else {
                format.into()
            };
            let text = reports::render(&report, format);
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        command @ (Command::Export { .. }
        | Command::Import { .. }
        | Command::Process { .. }
        | Command::Bundle(_)
        | Command::Upstream(_)
        | Command::Sync { .. }
        | Command::Satellite(_)) => super::sync::run(command, &config, &clock),
        command @ (Command::User(_) | Command::Client(_)) => {
            super::access::run(command, &config, &clock)
        }
        Command::Events { kind, limit, json } => {
            let conn = ops::Local::open(&config, &clock)?;
            let query = ops::events::EventQuery {
                kind: kind.as_deref(),
                severity: None,
                since: None,
                until: None,
                virtual_account: None,
            };
            let page = Page { limit, offset: 0 };
            // Newest first from the log; people read them oldest first.
            let mut list = conn.read(|c| ops::events::list(c, &caller, &query, page))?;
            list.reverse();
            show(&list, json)
        }
        Command::Backup { file, json } => super::backup::backup(&config, &clock, &file, json),
        Command::Restore { file, json } => super::backup::restore(&config, &clock, &file, json),
        Command::Migrate {
            to_postgres,
            password_file,
            json,
        } => super::backup::migrate(&config, &to_postgres, password_file.as_deref(), json),
        Command::Catalog(CatalogCommand::List { json }) => {
            // With the cloud's additions when there is a satellite here.
            let catalog = match ops::Local::open(&config, &clock) {
                Ok(local) => local.read(|c| crate::sync::current_catalog(c, &config))?,
                Err(_) => catalog(&config)?,
            };
            let rows: Vec<CatalogRow> = catalog
                .skus()
                .map(|sku| CatalogRow {
                    sku: sku.sku.clone(),
                    tag: sku.tag.clone(),
                    category: catalog.tag(&sku.tag).map(|t| t.category),
                    term_years: sku.term_years,
                    description: sku.description.clone(),
                })
                .collect();
            show(&rows, json)
        }
        Command::Completions { .. } | Command::Manual => Ok(()),
    }
}

/// A SKU as `catalog list` shows it.
#[derive(Debug, Serialize)]
struct CatalogRow {
    sku: String,
    tag: String,
    category: Option<crate::licensing::catalog::Category>,
    /// Absent for perpetual SKUs.
    term_years: Option<u32>,
    description: String,
}

impl table::Row for CatalogRow {
    const HEADERS: &'static [&'static str] =
        &["SKU", "Entitlement Tag", "Category", "Term", "Description"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.sku.clone(),
            self.tag.clone(),
            self.category
                .map(|c| format!("{c:?}").to_lowercase())
                .unwrap_or_else(|| "-".into()),
            self.term_years
                .map(|y| format!("{y} years"))
                .unwrap_or_else(|| "perpetual".into()),
            self.description.clone(),
        ]
    }
}

pub(super) fn catalog(config: &Config) -> Result<Catalog, CliError> {
    Catalog::load(config.catalog.as_deref())
        .map_err(|reason| Error::invalid("catalog", reason).into())
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
