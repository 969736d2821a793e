//! The process's log: text or JSON on stderr (journald under systemd).
//!
//! Two rules hold whatever is logged. Every field is escaped here, once:
//! a user name or a VA name from a request cannot forge a log line or
//! colour a terminal. And a log that cannot be written (stderr closed, its
//! file on a full disk) loses lines but never panics the thread that logged:
//! the database writer logs too, and must outlive its log.

use crate::config::{Config, LogFormat};
use std::fmt::Write as _;
use tracing_subscriber::field::MakeExt;

/// `text` with every control character written as an escape (`\n`,
/// `\u{1b}`), so one event stays one line of printable text.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

pub fn init(config: &Config, quiet: bool) {
    let level = if quiet {
        "warn"
    } else {
        config.log.level.as_str()
    };
    // actix-http logs a client's malformed request (a NUL in a header, a
    // connection dropped mid-request) as ERROR: the client's fault, answered
    // 400, nothing an operator can act on. RUST_LOG brings it back.
    let quiet_client_faults =
        |filter: tracing_subscriber::EnvFilter| match "actix_http::h1::dispatcher=off".parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level).map(quiet_client_faults))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its default reports a failed write with eprintln!, which panics
        // when stderr itself is what failed.
        .log_internal_errors(false)
        // Colour codes only for a person at a terminal, not journald or files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.log.format {
        // JSON escapes control characters itself.
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                    let text = format!("{value:?}");
                    let text = escape_controls(&text);
                    if field.name() == "message" {
                        write!(w, "{text}")
                    } else {
                        write!(w, "{field}={text}")
                    }
                })
                .delimited(" "),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain é"), "plain é");
        assert_eq!(
            escape_controls("x\nforged\u{1b}[31m\r\t"),
            "x\\nforged\\u{1b}[31m\\r\\t"
        );
    }
}
