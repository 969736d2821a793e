//! The `satellite` command line (DESIGN §9). Every listing and creation takes
//! `--json`; errors are one line on stderr and a non-zero exit.

mod access;
mod backup;
mod commands;
mod error;
mod output;
mod server;
mod sync;
mod table;

pub use commands::run;
pub use error::CliError;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "satellite",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SATELLITE_BUILD"), ")"),
    about = "On-premises Smart Licensing satellite: a local license authority for routers",
    long_about = "On-premises Smart Licensing satellite: a local license authority for routers.\n\n\
        Routers register with a registration token and get an identity certificate signed by the \
        satellite's CA. Any command may run while the server runs: the database is the single \
        source of truth.",
    after_help = "Start with `satellite serve`, then `satellite token create --va Default`."
)]
pub struct Cli {
    /// Configuration file (relative paths inside it are relative to the file).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the device and admin listeners (initializes on first start).
    #[command(
        after_help = "Examples:\n  satellite serve\n  satellite -c /etc/satellite/satellite.yaml serve"
    )]
    Serve,
    /// Create the data dir, database, CA and server certificate; print the admin credential once.
    #[command(after_help = "Example:\n  satellite -c /etc/satellite/satellite.yaml init")]
    Init,
    /// Show what this satellite is and holds.
    #[command(after_help = "Examples:\n  satellite status\n  satellite status --json")]
    Status {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Virtual accounts: license pools inside the smart account.
    #[command(subcommand)]
    Va(VaCommand),
    /// Registration tokens that register devices into a virtual account.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Product instances: registered devices.
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Licenses held by virtual accounts.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Per virtual account and entitlement tag: available, in use, shortfall, status.
    #[command(
        after_help = "Examples:\n  satellite compliance --va Lab\n  satellite compliance --history 30 --json"
    )]
    Compliance {
        /// Only this virtual account.
        #[arg(long, value_name = "VA")]
        va: Option<String>,
        /// Usage trend instead: the daily snapshots of the last DAYS days.
        #[arg(long, value_name = "DAYS")]
        history: Option<u32>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compliance reports: Periodic Record, Manual Record, Compliance Warning Report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Write a usage bundle for the cloud into the export folder (satellite).
    #[command(after_help = "Examples:\n  satellite export\n  satellite export --json")]
    Export {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply an entitlement bundle from the cloud (satellite).
    #[command(
        after_help = "Example:\n  satellite import /media/usb/20261201T030000Z-entitlements-cloud-to-site-a-000004.zip"
    )]
    Import {
        /// The entitlement bundle from the cloud (a .zip carried from its export folder).
        file: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sync live with the cloud now (connected mode): send the usage bundle,
    /// apply the entitlement bundle in the answer; waits and prints both.
    #[command(after_help = "Example:\n  satellite sync --json")]
    Sync {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sync bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// The cloud this satellite syncs with.
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Satellites registered with this cloud (cloud role).
    #[command(subcommand)]
    Satellite(SatelliteCommand),
    /// Process a bundle a satellite sent and write the answer (cloud role).
    #[command(
        after_help = "Example:\n  satellite process /media/usb/20261201T030000Z-usage-site-a-to-cloud-000004.zip"
    )]
    Process {
        /// The bundle a satellite sent (a .zip carried from its export folder).
        file: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Users of the admin listener (REST API and portal).
    #[command(subcommand)]
    User(UserCommand),
    /// OAuth client-credentials clients for scripts and monitoring.
    #[command(subcommand)]
    Client(ClientCommand),
    /// The event log (registrations, deregistrations, token changes, ...).
    #[command(
        after_help = "Examples:\n  satellite events --kind registration --limit 20\n  satellite events --json"
    )]
    Events {
        /// Only events of this kind (registration, deregistration, token, renewal, ...).
        #[arg(long)]
        kind: Option<String>,
        /// How many of the newest events to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a backup (database, CA, server and signer keys) to FILE; safe while serving.
    #[command(after_help = "Example:\n  satellite backup /var/backups/satellite-$(date +%F).zip")]
    Backup {
        /// Where to write the backup (a new file: an existing one is never overwritten; 0600).
        file: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup onto a stopped satellite (the replaced database is kept aside).
    #[command(
        after_help = "Example:\n  systemctl stop satellite && satellite restore /var/backups/satellite-2026-12-01.zip"
    )]
    Restore {
        /// A backup written by `satellite backup`.
        file: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy a stopped satellite's database into an empty PostgreSQL database (the keys stay in the data dir; serving from it is still to come).
    #[command(
        after_help = "Example:\n  systemctl stop satellite\n  satellite migrate --to-postgres postgresql://satellite@db1:5432/satellite --password-file /etc/satellite/db-password"
    )]
    Migrate {
        /// The empty target database, as a libpq URL (postgresql://USER@HOST:PORT/DB); several hosts and target_session_attrs=read-write find the primary.
        #[arg(long, value_name = "URL")]
        to_postgres: String,
        /// A file holding the database user's password (instead of one in the URL, which would show in `ps`).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The SKU catalog: the entitlement tag each SKU fills, its category and term.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print a completion script for a shell.
    #[command(
        after_help = "Examples:\n  satellite completions bash > /etc/bash_completion.d/satellite\n  satellite completions zsh > \"${fpath[1]}/_satellite\""
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), as the Debian package installs it.
    #[command(hide = true, after_help = "Example:\n  satellite manual | man -l -")]
    Manual,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Every SKU this node knows: built in, from the `catalog` file, and
    /// added by the cloud.
    #[command(after_help = "Example:\n  satellite catalog list --json")]
    List {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `admin` (everything), `va-admin` (tokens, license transfers and
/// instances of its virtual accounts), `viewer` (reads its virtual accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    VaAdmin,
    Viewer,
}

impl From<RoleArg> for crate::ops::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Self::Admin,
            RoleArg::VaAdmin => Self::VaAdmin,
            RoleArg::Viewer => Self::Viewer,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (or prompted for).
    #[command(
        after_help = "Example:\n  echo 's3cret-passphrase' | satellite user add alice --role va-admin --va Lab"
    )]
    Add {
        /// The user name (letters, digits, `.`, `-`, `_`).
        name: String,
        /// What the user may do: admin, va-admin (its virtual accounts), viewer (reads them).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A virtual account a va-admin or viewer reaches (repeat for more).
        #[arg(long, value_name = "VA")]
        va: Vec<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    #[command(after_help = "Example:\n  satellite user list --json")]
    List {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user; its sessions end.
    #[command(after_help = "Example:\n  satellite user remove alice")]
    Remove {
        /// The user to remove.
        name: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (from standard input or a prompt); its sessions end.
    #[command(after_help = "Example:\n  satellite user passwd alice")]
    Passwd {
        /// The user whose password to set.
        name: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add an API client; prints its client id and secret once.
    #[command(
        after_help = "Example:\n  satellite client add nagios --role viewer --va Lab --json"
    )]
    Add {
        /// A name for the client (it is shown in the event log as `client:NAME`).
        name: String,
        /// What the client may do: admin, va-admin (its virtual accounts), viewer (reads them).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A virtual account a va-admin or viewer reaches (repeat for more).
        #[arg(long, value_name = "VA")]
        va: Vec<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List API clients.
    #[command(after_help = "Example:\n  satellite client list")]
    List {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API client (by name or client id); its tokens end.
    #[command(after_help = "Example:\n  satellite client revoke nagios")]
    Revoke {
        /// The client's name or client id.
        client: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Verify a bundle's signature and print what it carries, without importing it.
    #[command(
        after_help = "Example:\n  satellite bundle show /media/usb/20261201T030000Z-usage-site-a-to-cloud-000004.zip"
    )]
    Show {
        /// The bundle (a .zip from an export folder or a USB stick).
        file: PathBuf,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace this node's bundle signer (data/signer.key) with a new one from
    /// its CA, the old one vouching for it so peers move their pin; run with
    /// the server stopped.
    #[command(
        after_help = "Example:\n  systemctl stop satellite && satellite bundle rotate-signer && systemctl start satellite"
    )]
    RotateSigner {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Register this satellite with its cloud. Disconnected mode: writes a
    /// registration request into the export folder to carry to the cloud.
    /// Connected mode: registers over HTTPS with `sync.cloud_url` (through
    /// `sync.proxy`), pinning the cloud CA from the token.
    #[command(after_help = "Example:\n  satellite upstream register --token \"$TOKEN\"")]
    Register {
        /// The satellite token from `satellite satellite add` on the cloud.
        #[arg(long)]
        token: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SatelliteCommand {
    /// Register a satellite that serves the given virtual accounts; prints its token once.
    #[command(
        after_help = "Example:\n  satellite satellite add site-a --va Lab --va Edge --days 30 --json"
    )]
    Add {
        /// The satellite's name (as it appears in the cloud's listings and events).
        name: String,
        /// A virtual account the satellite serves (repeat for more).
        #[arg(long, value_name = "VA", required = true)]
        va: Vec<String>,
        /// Days the satellite token is valid (1-365).
        #[arg(long, default_value_t = crate::sync::cloud::TOKEN_DAYS)]
        days: u32,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List satellites with their last contact, sequence numbers and instance counts.
    #[command(after_help = "Example:\n  satellite satellite list")]
    List {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a satellite: its next bundle is refused with the reason.
    #[command(after_help = "Example:\n  satellite satellite revoke site-a")]
    Revoke {
        /// The satellite's name or satellite id.
        name: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaCommand {
    /// Create a virtual account.
    #[command(after_help = "Example:\n  satellite va create Lab --description 'Lab routers'")]
    Create {
        /// The virtual account's name (unique in the smart account).
        name: String,
        /// A free-text description shown in listings.
        #[arg(long, default_value = "")]
        description: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List virtual accounts.
    #[command(after_help = "Example:\n  satellite va list --json")]
    List {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// At the cloud: make one satellite, or the cloud itself, the one node
    /// that serves a virtual account (its routers register there, and it
    /// hands out the account's licenses).
    #[command(
        after_help = "A virtual account is served by exactly one node. The satellite that gives it\n\
                      up gets no licenses for it from its next sync; the one that takes it gets\n\
                      them at its next sync. Routers registered at the cloud in it must be moved\n\
                      or removed first.\n\n\
                      Examples:\n  satellite va serve Edge --by site-a\n  satellite va serve Edge --by cloud"
    )]
    Serve {
        /// The virtual account.
        name: String,
        /// A satellite's name, or `cloud`.
        #[arg(long, value_name = "NODE")]
        by: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a registration token; its secret is shown only now.
    #[command(
        after_help = "Example:\n  satellite token create --va Lab --days 7 --max-uses 50 --description 'rack 4'"
    )]
    Create {
        /// Virtual account the token registers devices into.
        #[arg(long, value_name = "VA")]
        va: String,
        /// Days the token is valid (1-365).
        #[arg(long, default_value_t = crate::domain::token::DEFAULT_DAYS)]
        days: u32,
        /// A free-text description shown in `token list`.
        #[arg(long, default_value = "")]
        description: String,
        /// How many devices it may register (no limit if left out).
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
        /// Refuse export-controlled functionality to devices registered with it.
        #[arg(long)]
        no_export_controlled: bool,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (their prefix only).
    #[command(after_help = "Example:\n  satellite token list --va Lab")]
    List {
        /// Only tokens of this virtual account.
        #[arg(long, value_name = "VA")]
        va: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its whole secret or the prefix `token list` shows.
    #[command(after_help = "Example:\n  satellite token revoke Zk3J9")]
    Revoke {
        // A secret is URL-safe base64: one in 64 begins with '-'.
        /// The whole token, or the prefix `token list` shows.
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// List product instances.
    #[command(after_help = "Example:\n  satellite instance list --va Lab --json")]
    List {
        /// Only instances of this virtual account.
        #[arg(long, value_name = "VA")]
        va: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one product instance (by instance id or UDI `PID:SN`).
    #[command(after_help = "Example:\n  satellite instance show N540-24Z8Q2C-M:FOC2345X0AB")]
    Show {
        /// Instance id, or UDI as PID:SN.
        instance: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a product instance: revokes its certificate and releases its licenses.
    #[command(after_help = "Example:\n  satellite instance remove N540-24Z8Q2C-M:FOC2345X0AB")]
    Remove {
        /// Instance id, or UDI as PID:SN.
        instance: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a product instance, with its license usage, to another virtual account.
    #[command(
        after_help = "Example:\n  satellite instance move N540-24Z8Q2C-M:FOC2345X0AB --to Edge"
    )]
    Move {
        /// Instance id, or UDI as PID:SN.
        instance: String,
        /// Target virtual account.
        #[arg(long, visible_alias = "va", value_name = "VA")]
        to: String,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Add purchased licenses to a virtual account (cloud role only).
    #[command(
        after_help = "Examples:\n  satellite license add --va Lab --sku ESS-AC-10G-RTU-1 --quantity 10\n  satellite license add --va Lab --sku ESS-AC-10G-SIA-3 --quantity 5 --start 2027-01-01"
    )]
    Add {
        /// The virtual account that receives the licenses.
        #[arg(long, value_name = "VA")]
        va: String,
        /// The SKU bought (see `satellite catalog list`).
        #[arg(long, value_name = "SKU")]
        sku: String,
        /// How many (1 to 1,000,000).
        #[arg(long, value_name = "N")]
        quantity: i64,
        /// Start of the term (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long, value_name = "DATE")]
        start: Option<String>,
        /// End of the term; default start + the SKU's term years (perpetual SKUs: none).
        #[arg(long, value_name = "DATE")]
        end: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List licenses.
    #[command(after_help = "Example:\n  satellite license list --va Lab")]
    List {
        /// Only licenses of this virtual account.
        #[arg(long, value_name = "VA")]
        va: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move licenses to another virtual account (allowed even if it leaves the source short).
    #[command(
        after_help = "Example:\n  satellite license transfer --from Lab --to Edge --sku ESS-AC-10G-RTU-1 --quantity 2"
    )]
    Transfer {
        /// Source virtual account.
        #[arg(long, visible_alias = "va", value_name = "VA")]
        from: String,
        /// Target virtual account.
        #[arg(long, value_name = "VA")]
        to: String,
        /// The SKU to move (see `satellite license list`).
        #[arg(long, value_name = "SKU")]
        sku: String,
        /// How many to move.
        #[arg(long, value_name = "N")]
        quantity: i64,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The reports an operator can generate by hand (the seed: "automatically
/// or manually generated").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratedKind {
    /// Manual Record: compliance and inventory.
    Manual,
    /// Compliance Warning Report: the pools that are short.
    Warning,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Generate a report now: a Manual Record, or with `--kind warning` a
    /// Compliance Warning Report (shortfalls only).
    #[command(
        after_help = "Examples:\n  satellite report generate --va Lab\n  satellite report generate --kind warning --json"
    )]
    Generate {
        /// Only this virtual account (default: all).
        #[arg(long, value_name = "VA")]
        va: Option<String>,
        /// manual (a Manual Record: compliance and inventory) or warning (shortfalls only).
        #[arg(long, value_enum, default_value_t = GeneratedKind::Manual)]
        kind: GeneratedKind,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List stored reports.
    #[command(after_help = "Example:\n  satellite report list --limit 10")]
    List {
        /// How many of the newest reports to list.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one report.
    #[command(after_help = "Example:\n  satellite report show 12 --format csv > report-12.csv")]
    Show {
        /// The report's id (see `satellite report list`).
        id: i64,
        /// text (as a person reads it), json or csv.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// The same as `--format json`, like every other command.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
}

/// `report show --format`: parsed here so the licensing layer knows nothing
/// of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

impl From<ReportFormat> for crate::licensing::reports::Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Text => Self::Text,
            ReportFormat::Json => Self::Json,
            ReportFormat::Csv => Self::Csv,
        }
    }
}

/// Parses the command line. A usage error is one line on stderr that says
/// what to fix, and exit status 2; `--help` and `--version` print as usual.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on(e),
    }
}

fn exit_on(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    let (command, usage) = command_of(std::env::args().skip(1));
    eprintln!(
        "satellite: {}",
        usage_line(&e.render().to_string(), e.kind(), &command, &usage)
    );
    std::process::exit(2);
}

/// The (sub)command the words name, and its usage: clap leaves the usage out
/// of some errors (a bad value), and it is the fix.
fn command_of(args: impl Iterator<Item = String>) -> (String, String) {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut path = vec!["satellite".to_string()];
    for arg in args {
        let Some(sub) = command.find_subcommand(&arg).cloned() else {
            continue;
        };
        path.push(arg);
        command = sub;
    }
    let mut command = command.bin_name(path.join(" "));
    let usage = command.render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim().to_string();
    (path.join(" "), usage)
}

/// clap's message on one line: what is wrong, then the usage of the command
/// (the fix) and where to read more. A missing subcommand lists them instead
/// of printing the whole help.
fn usage_line(rendered: &str, kind: clap::error::ErrorKind, command: &str, usage: &str) -> String {
    let lines: Vec<&str> = rendered.lines().map(str::trim).collect();
    let mut message = String::new();
    if kind == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let commands: Vec<&str> = lines
            .iter()
            .skip_while(|l| *l != &"Commands:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        message = format!("`{command}` needs a command: {}", commands.join(", "));
    } else {
        for line in lines
            .iter()
            .take_while(|l| !l.starts_with("Usage:"))
            .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        {
            let line = line.trim_start_matches("error: ");
            if !message.is_empty() {
                message.push_str(if message.ends_with(':') { " " } else { "; " });
            }
            message.push_str(line);
        }
    }
    if message.is_empty() {
        message = kind.to_string();
    }
    format!("{message}; usage: {usage}; see `{command} --help`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn line_for(args: &[&str]) -> (ErrorKind, String) {
        let e = Cli::try_parse_from(args).expect_err("a usage error");
        let (command, usage) = command_of(args.iter().skip(1).map(|a| a.to_string()));
        (
            e.kind(),
            usage_line(&e.render().to_string(), e.kind(), &command, &usage),
        )
    }

    #[test]
    fn a_token_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from(["satellite", "token", "revoke", "-FvNjHMWdeSt", "--json"])
            .expect("a token secret that begins with '-'");
        assert!(matches!(
            cli.command,
            Command::Token(TokenCommand::Revoke { token, json: true }) if token == "-FvNjHMWdeSt"
        ));
    }

    #[test]
    fn usage_errors_are_one_line_with_the_usage() {
        let (_, line) = line_for(&["satellite", "token", "create"]);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--va <VA>"), "{line}");
        assert!(
            line.contains("see `satellite token create --help`"),
            "{line}"
        );
        let (kind, line) = line_for(&["satellite", "token"]);
        assert_eq!(kind, ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        assert!(
            line.contains("needs a command: create, list, revoke"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        let (_, line) = line_for(&["satellite", "report", "show", "1", "--format", "pdf"]);
        assert!(line.contains("possible values"), "{line}");
        assert!(line.contains("usage: satellite report show"), "{line}");
    }
}

#[cfg(test)]
mod help_tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option and argument says what it is, and every command that
    /// does something shows an example.
    #[test]
    fn every_option_is_described_and_every_command_has_an_example() {
        fn walk(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str())
                {
                    problems.push(format!("{path} {}: no description", arg.get_id()));
                }
            }
            let leaves: Vec<_> = command.get_subcommands().collect();
            if leaves.is_empty() {
                let example = command
                    .get_after_help()
                    .is_some_and(|h| h.to_string().contains("satellite "));
                if !example {
                    problems.push(format!("{path}: no example"));
                }
            }
            for sub in leaves {
                walk(sub, &path, problems);
            }
        }
        let mut problems = Vec::new();
        walk(&Cli::command(), "", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
