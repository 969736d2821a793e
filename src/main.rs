use satellite::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    // Both ring and aws-lc may be compiled in; choose one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli: Cli = satellite::cli::parse();
    if !matches!(cli.command, satellite::cli::Command::Serve) {
        // A one-shot command piped into `head` ends quietly, as a Unix tool
        // does, instead of panicking on a closed stdout. The server keeps
        // Rust's default (SIGPIPE ignored): a vanished client must not kill it.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("satellite: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
