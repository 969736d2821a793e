//! RFC 5424 messages over UDP to `log.syslog`, for compliance warnings.

use std::net::UdpSocket;

/// local0, as network gear usually logs.
const FACILITY: u8 = 16;

#[derive(Debug, Clone, Copy)]
pub enum Severity {
    Warning = 4,
    Notice = 5,
}

pub struct Syslog {
    socket: UdpSocket,
    target: (String, u16),
    hostname: String,
}

impl Syslog {
    /// `udp://host:port` (validated with the configuration).
    pub fn connect(url: &str, hostname: &str) -> Result<Self, String> {
        let target = crate::config::check_syslog(url)?;
        let bind = if target.0.contains(':') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = UdpSocket::bind(bind).map_err(|e| format!("log.syslog: {e}"))?;
        Ok(Self {
            socket,
            target,
            hostname: hostname.chars().filter(|c| c.is_ascii_graphic()).collect(),
        })
    }

    pub fn send(&self, severity: Severity, msgid: &str, message: &str, now: time::OffsetDateTime) {
        let line = format_message(severity, &self.hostname, msgid, message, now);
        if let Err(e) = self
            .socket
            .send_to(line.as_bytes(), (self.target.0.as_str(), self.target.1))
        {
            tracing::warn!(error = %e, "could not send to syslog");
        }
    }
}

pub fn format_message(
    severity: Severity,
    hostname: &str,
    msgid: &str,
    message: &str,
    now: time::OffsetDateTime,
) -> String {
    let pri = u16::from(FACILITY) * 8 + severity as u16;
    let timestamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "-".into());
    format!(
        "<{pri}>1 {timestamp} {hostname} satellite {} {msgid} - {message}",
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_rfc5424() {
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let line = format_message(Severity::Warning, "sat1", "COMPLIANCE", "short", now);
        assert!(
            line.starts_with("<132>1 2026-01-02T03:04:05Z sat1 satellite "),
            "{line}"
        );
        assert!(line.ends_with(" COMPLIANCE - short"));
    }

    #[test]
    fn messages_arrive_over_udp() {
        let collector = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = collector.local_addr().expect("addr").port();
        let syslog = Syslog::connect(&format!("udp://127.0.0.1:{port}"), "sat").expect("connect");
        syslog.send(
            Severity::Warning,
            "COMPLIANCE",
            "hello",
            time::OffsetDateTime::now_utc(),
        );
        collector
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        let n = collector.recv(&mut buf).expect("recv");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("COMPLIANCE - hello"));
    }
}
