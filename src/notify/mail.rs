//! Alerts by e-mail (SMTP, plain or STARTTLS).

use super::transport::{redact, Failure};
use std::time::Duration;

/// The mail itself: an address that does not parse is the configuration's fault.
pub(super) fn mail(
    from: &str,
    to: &[String],
    subject: &str,
    content_type: &str,
    body: String,
) -> std::result::Result<lettre::Message, String> {
    use lettre::message::header::ContentType;
    let mut message = lettre::Message::builder()
        .from(
            from.parse()
                .map_err(|e| format!("call_home.from {from:?}: {e}"))?,
        )
        .subject(subject);
    for address in to {
        message = message.to(address
            .parse()
            .map_err(|e| format!("address {address:?}: {e}"))?);
    }
    let content_type = ContentType::parse(content_type).map_err(|e| e.to_string())?;
    message
        .header(content_type)
        .body(body)
        .map_err(|e| e.to_string())
}

pub(super) fn send_mail(
    relay: &str,
    message: lettre::Message,
    timeout: Duration,
) -> std::result::Result<(), Failure> {
    use lettre::{SmtpTransport, Transport};
    let config = |reason: String| Failure::Config(reason);
    let (scheme, rest) = relay
        .split_once("://")
        .ok_or_else(|| config("call_home.smtp is not a URL".into()))?;
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| config(format!("call_home.smtp: bad port {port:?}")))?,
        ),
        None => (
            rest.trim_end_matches('/'),
            if scheme == "smtps" { 465 } else { 25 },
        ),
    };
    let mailer = if scheme == "smtps" {
        SmtpTransport::relay(host)
            .map_err(|e| config(e.to_string()))?
            .port(port)
    } else {
        // A relay on the site's LAN, as Call Home is usually set up.
        SmtpTransport::builder_dangerous(host).port(port)
    }
    .timeout(Some(timeout))
    .build();
    mailer
        .send(&message)
        .map(|_| ())
        .map_err(|e| Failure::Transport(format!("SMTP {}: {e}", redact(relay))))
}
