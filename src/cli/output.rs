//! How a command prints: JSON for scripts, tables for people.

use super::error::CliError;
use super::table;
use serde::Serialize;

/// A listing: JSON for scripts, a table for people.
pub(super) fn show<T: Serialize + table::Row>(items: &[T], json: bool) -> Result<(), CliError> {
    if json {
        print_json(&items)
    } else {
        table::print(items);
        Ok(())
    }
}

pub(super) fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}
