//! `backup FILE`, `restore FILE` and `migrate --to-postgres URL`.

use super::error::CliError;
use super::output::print_json;
use crate::clock::Clock;
use crate::config::Config;
use std::path::Path;

pub fn backup(config: &Config, clock: &Clock, file: &Path, json: bool) -> Result<(), CliError> {
    let manifest = crate::backup::backup(config, clock, file)?;
    if json {
        return print_json(&serde_json::json!({
            "path": file,
            "created_at": manifest.created_at,
            "files": manifest.files.keys().collect::<Vec<_>>(),
            "sequences": manifest.sequences,
        }));
    }
    println!(
        "backup of {:?} written to {} ({} files: {})",
        manifest.name,
        file.display(),
        manifest.files.len(),
        manifest
            .files
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("it holds the private keys: keep it as safe as the data dir");
    println!(
        "restore with: satellite restore {} (server stopped)",
        file.display()
    );
    Ok(())
}

pub fn restore(config: &Config, clock: &Clock, file: &Path, json: bool) -> Result<(), CliError> {
    let restored = crate::backup::restore(config, clock, file)?;
    if json {
        return print_json(&restored);
    }
    println!(
        "restored {:?} from {} (taken {}) into {}",
        restored.name,
        file.display(),
        restored.created_at,
        config.data_dir.display()
    );
    if let Some(previous) = &restored.previous_database {
        println!("the replaced database is kept as {}", previous.display());
    }
    println!("start the satellite again (systemctl start satellite, or satellite serve)");
    Ok(())
}

pub fn migrate(
    config: &Config,
    url: &str,
    password_file: Option<&Path>,
    json: bool,
) -> Result<(), CliError> {
    let copied = crate::backup::move_to_postgres(config, url, password_file)?;
    let target = &copied.target;
    if json {
        return print_json(&serde_json::json!({
            "target": target,
            "rows": copied.rows(),
            "tables": copied.tables.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
        }));
    }
    println!(
        "copied {} rows in {} tables into {target}",
        copied.rows(),
        copied.tables.len()
    );
    eprintln!("the data dir keeps the keys and certificates, and its own database untouched");
    Ok(())
}
