//! Command-line grammar of `satellite-router` (DESIGN §11).

use super::commands::GRAMMAR;
use super::state::TransportKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "satellite-router",
    version,
    about = "An emulated IOS XR router with a Smart Licensing agent, a real client of the satellite's device API",
    after_help = GRAMMAR,
    after_long_help = GRAMMAR,
    override_usage = "satellite-router [-s STATE] [--json] init --pid PID --sn SN --hostname H --url URL --ca CA.pem [--transport smart|callhome] [--proxy URL]\n       satellite-router [-s STATE] [--json] <DEVICE COMMAND WORDS>...\n       satellite-router [-s STATE] run [--interval SECONDS]\n       satellite-router fleet --count N --url URL --ca CA.pem --token T"
)]
pub struct Cli {
    /// The router's state file (identity, registration, configuration).
    #[arg(
        short = 's',
        long = "state",
        global = true,
        default_value = "router.json"
    )]
    pub state: PathBuf,
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Top,
}

#[derive(Debug, Subcommand)]
pub enum Top {
    /// Create the router: its UDI, its key and where its licensing server is.
    Init(InitArgs),
    /// Drive many simulated routers at once (load test).
    Fleet(FleetArgs),
    /// Run the agent as a long-lived process: renewals and collections fire by themselves.
    Run(RunArgs),
    /// A device command, as words: `license smart register idtoken T`.
    #[command(external_subcommand)]
    Words(Vec<String>),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Product ID, e.g. N540-24Z8Q2C-M.
    #[arg(long)]
    pub pid: String,
    /// Serial number, e.g. FOC2104R0XX.
    #[arg(long)]
    pub sn: String,
    #[arg(long)]
    pub hostname: String,
    /// The device API as an IOS router is given it: https://HOST/SmartTransport,
    /// https://HOST/Transportgateway/services/DeviceRequestHandler (Call Home), or just https://HOST:PORT.
    #[arg(long)]
    pub url: String,
    /// The CA certificate (PEM) to trust for the server; nothing else is trusted.
    #[arg(long)]
    pub ca: PathBuf,
    /// Default: the one the URL's path names, else smart.
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// HTTP CONNECT proxy, e.g. http://proxy.example:3128.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Replace an existing state file (the old key and registration are lost).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Longest sleep between two rounds, in seconds (each round re-reads the state file).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// How many routers to simulate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub ca: PathBuf,
    /// Registration token shared by all routers (it may begin with '-').
    #[arg(long, allow_hyphen_values = true)]
    pub token: String,
    /// Routers working at the same time (threads).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// ENTITLEMENT messages each router sends after registering.
    #[arg(long, default_value_t = 1)]
    pub requests_per_router: u32,
    /// The entitlement tag each router requests.
    #[arg(long, default_value = "ESS-AC-10G-RTU-1")]
    pub tag: String,
    /// The count each router requests.
    #[arg(long, default_value_t = 1)]
    pub count_each: u32,
    /// Default: the one the URL's path names, else smart.
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    #[arg(long)]
    pub proxy: Option<String>,
    #[arg(long, default_value = "N540-24Z8Q2C-M")]
    pub pid: String,
    /// Serial number prefix (default: FLT and a random part, so runs do not collide).
    #[arg(long)]
    pub sn_prefix: Option<String>,
    /// Skip ACKNOWLEDGEMENT messages.
    #[arg(long)]
    pub no_ack: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_captured_verbatim() {
        let cli = Cli::try_parse_from([
            "satellite-router",
            "-s",
            "r1.json",
            "ports",
            "add",
            "4",
            "10G",
            "--feature",
            "l3vpn",
        ])
        .unwrap();
        assert_eq!(cli.state, PathBuf::from("r1.json"));
        match cli.command {
            Top::Words(w) => assert_eq!(w, ["ports", "add", "4", "10G", "--feature", "l3vpn"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "satellite-router",
            "init",
            "--pid",
            "P",
            "--sn",
            "S",
            "--hostname",
            "h",
            "--url",
            "https://x",
            "--ca",
            "ca.pem",
            "--transport",
            "callhome",
            "-s",
            "r2.json",
        ])
        .unwrap();
        assert_eq!(cli.state, PathBuf::from("r2.json"));
        assert!(matches!(
            cli.command,
            Top::Init(InitArgs {
                transport: Some(TransportKind::Callhome),
                ..
            })
        ));
    }
}
