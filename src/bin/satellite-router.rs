//! `satellite-router`: parse the command line, run it, print, exit.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = satellite::router::cli::Cli::parse();
    let outcome = satellite::router::run(cli);
    print!("{}", outcome.stdout);
    for line in &outcome.stderr {
        eprintln!("{line}");
    }
    ExitCode::from(outcome.exit)
}
