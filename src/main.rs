use satellite::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    // Both ring and aws-lc may be compiled in; choose one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli: Cli = satellite::cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("satellite: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
