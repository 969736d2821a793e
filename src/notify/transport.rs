//! What the delivery transports (HTTP, SMTP) share.

/// Why one profile did not get an alert.
pub(super) enum Failure {
    /// The profile's configuration makes it undeliverable (Dropped).
    Config(String),
    /// The target or the network failed (Failed; retried later).
    Transport(String),
}

/// A URL fit for a log line: any `user:password@` taken out.
pub(super) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}
