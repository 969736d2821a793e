//! Call Home alerts (DESIGN §10): compliance shortfalls delivered to the
//! configured profiles by e-mail or HTTP POST, as short text, full text or
//! the AML XML envelope. Delivery runs on its own thread behind a bounded
//! queue, so a slow mail relay never holds up a router; what happens to each
//! message is counted per profile and message type (Success, Failed,
//! Inqueue, Dropped, Last-sent), in the database so every command sees it.

use crate::clock::Clock;
use crate::config::{CallHomeCategory, CallHomeFormat, CallHomeProfile, CallHomeTransport, Config};
use crate::store;
use rusqlite::params;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

const QUEUE: usize = 256;
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Alert {
    pub category: CallHomeCategory,
    /// e.g. `COMPLIANCE`
    pub message_type: &'static str,
    /// `Major` or `Minor`, as the REST alerts say.
    pub severity: &'static str,
    /// One line.
    pub summary: String,
    /// What a full-text message attaches (the relevant `show` output).
    pub detail: String,
    pub at: OffsetDateTime,
}

pub struct CallHome {
    delivery: Arc<Delivery>,
    queue: Option<SyncSender<Alert>>,
}

impl CallHome {
    /// Delivers from a background thread (the server). `None` without profiles.
    pub fn start(config: &Config, clock: Clock) -> std::io::Result<Option<Self>> {
        let Some(delivery) = Delivery::from_config(config, clock) else {
            return Ok(None);
        };
        let delivery = Arc::new(delivery);
        let (queue, alerts) = sync_channel(QUEUE);
        let worker = delivery.clone();
        std::thread::Builder::new()
            .name("call-home".into())
            .spawn(move || worker.run(alerts))?;
        Ok(Some(Self {
            delivery,
            queue: Some(queue),
        }))
    }

    /// Delivers on the caller's thread (one-shot commands).
    pub fn inline(config: &Config, clock: Clock) -> Option<Self> {
        Delivery::from_config(config, clock).map(|delivery| Self {
            delivery: Arc::new(delivery),
            queue: None,
        })
    }

    /// Hands an alert over. In the server this only queues it (no I/O on
    /// the caller's thread); the delivery thread records every outcome.
    pub fn send(&self, alert: Alert) {
        if self.delivery.subscribed(&alert).next().is_none() {
            return;
        }
        let Some(queue) = &self.queue else {
            self.delivery.deliver_all(&alert);
            return;
        };
        self.delivery.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(alert) | TrySendError::Disconnected(alert)) =
            queue.try_send(alert)
        {
            self.delivery.pending.fetch_sub(1, Ordering::Relaxed);
            self.delivery.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(summary = %alert.summary, "Call Home queue is full; alert dropped");
        }
    }
}

/// What was configured, ready to deliver, and what is waiting.
struct Delivery {
    name: String,
    profiles: Vec<CallHomeProfile>,
    smtp: Option<String>,
    from: String,
    database: PathBuf,
    clock: Clock,
    /// Alerts queued and not yet delivered (Inqueue).
    pending: AtomicI64,
    /// Alerts refused by a full queue, not yet written to the statistics.
    dropped: AtomicI64,
}

impl Delivery {
    fn from_config(config: &Config, clock: Clock) -> Option<Self> {
        if config.call_home.profiles.is_empty() {
            return None;
        }
        Some(Self {
            name: config.name.clone(),
            profiles: config.call_home.profiles.clone(),
            smtp: config.call_home.smtp.clone(),
            from: config
                .call_home
                .from
                .clone()
                .unwrap_or_else(|| format!("satellite@{}", config.name)),
            database: config.database_path(),
            clock,
            pending: AtomicI64::new(0),
            dropped: AtomicI64::new(0),
        })
    }

    /// Profiles that take this alert's category (no categories: all of them).
    fn subscribed<'a>(
        &'a self,
        alert: &'a Alert,
    ) -> impl Iterator<Item = &'a CallHomeProfile> + 'a {
        self.profiles
            .iter()
            .filter(move |p| p.categories.is_empty() || p.categories.contains(&alert.category))
    }

    fn run(&self, alerts: Receiver<Alert>) {
        while let Ok(alert) = alerts.recv() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.deliver_all(&alert);
        }
    }

    fn deliver_all(&self, alert: &Alert) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        for profile in self.subscribed(alert) {
            let span = tracing::info_span!("call_home", profile = %profile.name, r#type = alert.message_type);
            let _entered = span.enter();
            let outcome = deliver(self, profile, alert);
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "Call Home message not delivered; check the profile's address and the network");
            }
            self.record(&profile.name, alert.message_type, outcome.is_ok(), dropped);
        }
    }

    /// Counts one delivery (Success or Failed, Last-sent), what is still in
    /// the queue, and what a full queue dropped since the last delivery.
    fn record(&self, profile: &str, message_type: &str, delivered: bool, dropped: i64) {
        let now = self.clock.unix();
        let inqueue = self.pending.load(Ordering::Relaxed).max(0);
        let (success, failed) = if delivered { (1, 0) } else { (0, 1) };
        let result = store::connect(&self.database).and_then(|c| {
            c.execute(
                "INSERT INTO call_home_stats (profile, message_type, success, failed, inqueue, dropped, last_sent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (profile, message_type) DO UPDATE SET
                   success = success + excluded.success, failed = failed + excluded.failed,
                   inqueue = excluded.inqueue, dropped = dropped + excluded.dropped,
                   last_sent = excluded.last_sent",
                params![profile, message_type, success, failed, inqueue, dropped, now],
            )?;
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record Call Home statistics");
        }
    }
}

fn deliver(delivery: &Delivery, profile: &CallHomeProfile, alert: &Alert) -> Result<(), String> {
    let subject = format!("[{}] {}", delivery.name, alert.summary);
    match profile.transport {
        CallHomeTransport::Http => {
            let url = profile.url.as_deref().ok_or("the profile has no url")?;
            let (content_type, body) = render(profile.format, delivery, alert, url);
            ureq::AgentBuilder::new()
                .timeout(TIMEOUT)
                .build()
                .post(url)
                .set("Content-Type", content_type)
                .send_string(&body)
                .map(|_| ())
                .map_err(|e| match e {
                    ureq::Error::Status(code, _) => format!("POST {}: HTTP {code}", redact(url)),
                    ureq::Error::Transport(t) => format!("POST {}: {}", redact(url), t.kind()),
                })
        }
        CallHomeTransport::Email => {
            let relay = delivery
                .smtp
                .as_deref()
                .ok_or("call_home.smtp is not set")?;
            let (content_type, body) = render(profile.format, delivery, alert, relay);
            send_mail(
                relay,
                &delivery.from,
                &profile.to,
                &subject,
                content_type,
                body,
            )
        }
    }
}

fn send_mail(
    relay: &str,
    from: &str,
    to: &[String],
    subject: &str,
    content_type: &str,
    body: String,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::{SmtpTransport, Transport};
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
    let message = message
        .header(content_type)
        .body(body)
        .map_err(|e| e.to_string())?;
    let (scheme, rest) = relay
        .split_once("://")
        .ok_or("call_home.smtp is not a URL")?;
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("call_home.smtp: bad port {port:?}"))?,
        ),
        None => (
            rest.trim_end_matches('/'),
            if scheme == "smtps" { 465 } else { 25 },
        ),
    };
    let mailer = if scheme == "smtps" {
        SmtpTransport::relay(host)
            .map_err(|e| e.to_string())?
            .port(port)
    } else {
        // A relay on the site's LAN, as Call Home is usually set up.
        SmtpTransport::builder_dangerous(host).port(port)
    }
    .timeout(Some(TIMEOUT))
    .build();
    mailer
        .send(&message)
        .map(|_| ())
        .map_err(|e| format!("SMTP {}: {e}", redact(relay)))
}

/// The message body in the profile's format, and its content type.
fn render(
    format: CallHomeFormat,
    delivery: &Delivery,
    alert: &Alert,
    to: &str,
) -> (&'static str, String) {
    let time = alert
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match format {
        CallHomeFormat::ShortText => (
            "text/plain; charset=utf-8",
            format!("{time} {} {} {}: {}", delivery.name, alert.severity, alert.message_type, alert.summary),
        ),
        CallHomeFormat::FullText => (
            "text/plain; charset=utf-8",
            format!(
                "Call Home message from satellite {}\nTime: {time}\nCategory: {:?}\nMessage Type: {}\nSeverity: {}\nSummary: {}\n\n{}\n",
                delivery.name, alert.category, alert.message_type, alert.severity, alert.summary, alert.detail
            ),
        ),
        CallHomeFormat::Xml => {
            #[derive(Serialize)]
            struct Payload<'a> {
                r#type: &'static str,
                satellite: &'a str,
                time: &'a str,
                category: String,
                message_type: &'a str,
                severity: &'a str,
                summary: &'a str,
                detail: &'a str,
            }
            let payload = serde_json::to_string(&Payload {
                r#type: "ALERT",
                satellite: &delivery.name,
                time: &time,
                category: format!("{:?}", alert.category).to_lowercase(),
                message_type: alert.message_type,
                severity: alert.severity,
                summary: &alert.summary,
                detail: &alert.detail,
            })
            .unwrap_or_default();
            let id = uuid::Uuid::new_v4().to_string();
            (
                crate::callhome::CONTENT_TYPE,
                crate::callhome::wrap(&payload, to, &id, &delivery.name, alert.at),
            )
        }
    }
}

/// A row of `show call-home statistics`, as `satellite status` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    pub profile: String,
    pub message_type: String,
    pub success: i64,
    pub failed: i64,
    pub inqueue: i64,
    pub dropped: i64,
    pub last_sent: Option<String>,
}

pub fn statistics(c: &rusqlite::Connection) -> crate::error::Result<Vec<Statistics>> {
    let mut stmt = c.prepare_cached(
        "SELECT profile, message_type, success, failed, inqueue, dropped, last_sent
         FROM call_home_stats ORDER BY profile, message_type",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Statistics {
            profile: r.get(0)?,
            message_type: r.get(1)?,
            success: r.get(2)?,
            failed: r.get(3)?,
            inqueue: r.get(4)?,
            dropped: r.get(5)?,
            last_sent: r.get::<_, Option<i64>>(6)?.map(crate::clock::rfc3339),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A URL fit for a log line: any `user:password@` taken out.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_never_reach_a_log_line() {
        assert_eq!(
            super::redact("https://ops:s3cret@noc.example/alerts"),
            "https://noc.example/alerts"
        );
        assert_eq!(super::redact("smtp://relay:25"), "smtp://relay:25");
    }
}
