//! Call Home alerts (DESIGN §10): compliance shortfalls, registration
//! problems, sync trouble and the server's start and stop, delivered to the
//! configured profiles by e-mail or HTTP POST, as short text, full text or
//! the AML XML envelope.
//!
//! Every alert is first written to the outbox (`store::outbox`), in the
//! transaction of the change that caused it where there is one, and is
//! delivered from there: by the server's delivery thread, or by the command
//! that caused it right after its commit. A kill -9 therefore loses none,
//! and a profile whose target is down gets it later. What happens to each
//! message is counted per profile and message type (Success, Failed,
//! Dropped, Last-sent); Inqueue is what still waits in the outbox.

use crate::clock::Clock;
use crate::config::{CallHomeCategory, CallHomeFormat, CallHomeProfile, CallHomeTransport, Config};
use crate::error::Result;
use crate::store::Db;
use crate::store::{self, outbox};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// How long the server waits for one HTTP or SMTP exchange.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A one-shot command should not hang on a dead relay: the server retries.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the delivery thread looks for alerts other processes wrote.
const POLL: Duration = Duration::from_secs(1);
/// Alerts taken in one pass.
const BATCH: u32 = 50;
/// An alert no attempt could deliver for this long is given up (seconds):
/// the outbox must not grow without end while a target stays down.
const GIVE_UP_AFTER: i64 = 7 * 86_400;

#[derive(Debug, Clone)]
pub struct Alert {
    pub category: CallHomeCategory,
    /// e.g. `COMPLIANCE`
    pub message_type: String,
    /// `Major` or `Minor`, as the REST alerts say.
    pub severity: &'static str,
    /// One line.
    pub summary: String,
    /// What a full-text message attaches (the relevant `show` output).
    pub detail: String,
    pub at: OffsetDateTime,
}

impl Alert {
    pub fn new(
        category: CallHomeCategory,
        message_type: &str,
        severity: &'static str,
        summary: String,
        detail: String,
        now: i64,
    ) -> Self {
        Self {
            category,
            message_type: message_type.to_string(),
            severity,
            summary,
            detail,
            at: OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// Writes the alert to the outbox, in the caller's transaction.
    pub fn enqueue(&self, c: &Db) -> Result<i64> {
        outbox::enqueue(
            c,
            &outbox::NewAlert {
                category: category_name(self.category),
                message_type: &self.message_type,
                severity: self.severity,
                summary: &self.summary,
                detail: &self.detail,
            },
            self.at.unix_timestamp(),
        )
    }

    fn from_waiting(w: &outbox::Waiting) -> Self {
        let category = match w.category.as_str() {
            "registration" => CallHomeCategory::Registration,
            "sync" => CallHomeCategory::Sync,
            "system" => CallHomeCategory::System,
            _ => CallHomeCategory::Compliance,
        };
        let severity = if w.severity == "Major" {
            "Major"
        } else {
            "Minor"
        };
        Self::new(
            category,
            &w.message_type,
            severity,
            w.summary.clone(),
            w.detail.clone(),
            w.created_at,
        )
    }
}

pub fn category_name(category: CallHomeCategory) -> &'static str {
    match category {
        CallHomeCategory::Compliance => "compliance",
        CallHomeCategory::Registration => "registration",
        CallHomeCategory::Sync => "sync",
        CallHomeCategory::System => "system",
    }
}

/// The sync code calls this when no successful sync happened for too long
/// (connected: since the last live sync; disconnected: since the last
/// imported entitlement bundle). Written in the caller's transaction.
pub fn sync_overdue(c: &Db, last_sync: Option<i64>, due: i64, now: i64) -> Result<i64> {
    let last = last_sync.map_or_else(|| "never".to_string(), crate::clock::rfc3339);
    Alert::new(
        CallHomeCategory::Sync,
        "SYNC",
        "Major",
        format!(
            "synchronization with the cloud is overdue since {}; last successful sync: {last}",
            crate::clock::rfc3339(due)
        ),
        format!(
            "show sync status\nLast successful sync: {last}\nDue: {}\nCheck sync.cloud_url and the network (connected mode) or carry a usage bundle to the cloud and import its answer (disconnected mode).\n",
            crate::clock::rfc3339(due)
        ),
        now,
    )
    .enqueue(c)
}

/// The server's Call Home: a delivery thread that sends what waits in the
/// outbox as soon as it is woken, and every second in any case.
pub struct CallHome {
    /// Alerts no transaction carries, written to the outbox by the delivery
    /// thread so that no caller (an async handler) waits on the database.
    announced: Arc<Mutex<Vec<Alert>>>,
    wake: SyncSender<()>,
    stop: Arc<AtomicBool>,
    finished: Mutex<Receiver<()>>,
}

impl CallHome {
    /// Starts the delivery thread. Its first pass retries everything that
    /// waits, whatever its back-off: a restart is when an operator expects
    /// a fixed target to get what it missed.
    pub fn start(config: &Config, clock: Clock) -> std::io::Result<Self> {
        let delivery = Arc::new(Delivery::from_config(config, clock, TIMEOUT));
        let (wake, woken) = sync_channel(1);
        let (done, finished) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let announced = Arc::new(Mutex::new(Vec::new()));
        let worker = delivery;
        let stopping = stop.clone();
        let to_write = announced.clone();
        std::thread::Builder::new()
            .name("call-home".into())
            .spawn(move || {
                worker.run(&woken, &stopping, &to_write);
                let _ = done.send(());
            })?;
        Ok(Self {
            announced,
            wake,
            stop,
            finished: Mutex::new(finished),
        })
    }

    /// Something new waits in the outbox.
    pub fn wake(&self) {
        // A full channel means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }

    /// Queues an alert that no other change carries (start, stop, a refused
    /// registration): the delivery thread writes it to the outbox and sends it.
    pub fn announce(&self, alert: Alert) {
        if let Ok(mut announced) = self.announced.lock() {
            announced.push(alert);
        }
        self.wake();
    }

    /// Delivers what is due one last time and stops the thread (bounded wait).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
        if let Ok(finished) = self.finished.lock() {
            let _ = finished.recv_timeout(TIMEOUT * 2);
        }
    }
}

/// Delivers what waits in the outbox from a one-shot command, after its
/// commit. Whatever cannot go now stays for the server.
pub fn deliver_waiting(config: &Config, clock: Clock) {
    let delivery = Delivery::from_config(config, clock, COMMAND_TIMEOUT);
    let passed = store::connect(&delivery.database)
        .map_err(crate::error::Error::from)
        .and_then(|mut conn| delivery.pass(&mut conn, false));
    if let Err(e) = passed {
        tracing::warn!(error = %e, "Call Home alerts stay queued for the server");
    }
}

/// What was configured, ready to deliver.
struct Delivery {
    name: String,
    profiles: Vec<CallHomeProfile>,
    smtp: Option<String>,
    from: String,
    database: PathBuf,
    clock: Clock,
    timeout: Duration,
}

/// Why one profile did not get an alert.
enum Failure {
    /// The profile's configuration makes it undeliverable (Dropped).
    Config(String),
    /// The target or the network failed (Failed; retried later).
    Transport(String),
}

impl Delivery {
    fn from_config(config: &Config, clock: Clock, timeout: Duration) -> Self {
        Self {
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
            timeout,
        }
    }

    fn run(&self, woken: &Receiver<()>, stop: &AtomicBool, announced: &Mutex<Vec<Alert>>) {
        // One connection for the thread's life, opened again after an error.
        let mut conn: Option<Db> = None;
        let mut first = true;
        loop {
            // Read before the pass: an alert queued before the stop was
            // signalled is then seen by this pass.
            let stopping = stop.load(Ordering::SeqCst);
            let passed = match conn.take() {
                Some(c) => Ok(c),
                None => store::connect(&self.database).map_err(crate::error::Error::from),
            }
            .and_then(|mut c| {
                self.write_announced(&mut c, announced)?;
                self.pass(&mut c, first)?;
                Ok(c)
            });
            match passed {
                Ok(c) => {
                    conn = Some(c);
                    first = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Call Home delivery pass failed; retrying shortly")
                }
            }
            if stopping {
                return;
            }
            match woken.recv_timeout(POLL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// How long a deliverer holds an alert before another may take it
    /// (seconds): one time-out per profile, and some slack. A deliverer
    /// killed mid-attempt delays the alert by this much, no more.
    fn lease(&self) -> i64 {
        let per_profile = i64::try_from(self.timeout.as_secs()).unwrap_or(60);
        let profiles = i64::try_from(self.profiles.len()).unwrap_or(i64::MAX / 2);
        per_profile.saturating_mul(profiles.saturating_add(1))
    }

    /// Profiles that take this category (no categories: all of them).
    fn subscribed(
        &self,
        category: CallHomeCategory,
    ) -> impl Iterator<Item = &CallHomeProfile> + '_ {
        self.profiles
            .iter()
            .filter(move |p| p.categories.is_empty() || p.categories.contains(&category))
    }

    fn write_announced(&self, conn: &mut Db, announced: &Mutex<Vec<Alert>>) -> Result<()> {
        let alerts: Vec<Alert> = match announced.lock() {
            Ok(mut announced) => std::mem::take(&mut *announced),
            Err(_) => return Ok(()),
        };
        if alerts.is_empty() {
            return Ok(());
        }
        let written = store::transaction(conn, |c| {
            alerts.iter().try_for_each(|a| a.enqueue(c).map(|_| ()))
        });
        if written.is_err() {
            // Put them back for the next pass rather than lose them.
            if let Ok(mut announced) = announced.lock() {
                announced.splice(0..0, alerts);
            }
        }
        written
    }

    fn give_up_old(&self, conn: &mut Db, now: i64) -> Result<()> {
        // A read first: the write lock is taken only when there is something to do.
        if outbox::oldest(conn)?.is_none_or(|t| t >= now - GIVE_UP_AFTER) {
            return Ok(());
        }
        store::transaction(conn, |c| {
            for (message_type, summary) in outbox::give_up_before(c, now - GIVE_UP_AFTER)? {
                tracing::error!(r#type = %message_type, %summary, "Call Home alert given up after a week of failed attempts");
                store::events::record(
                    c,
                    now,
                    store::events::NewEvent {
                        kind: "call_home",
                        severity: store::events::Severity::Major,
                        virtual_account: None,
                        subject: Some(&message_type),
                        message: format!(
                            "Call Home alert given up: no profile could deliver it for 7 days ({summary}); check the profiles' targets"
                        ),
                    },
                )?;
            }
            Ok(())
        })
    }

    /// Delivers what is due; returns how many alerts left the outbox.
    fn pass(&self, conn: &mut Db, ignore_backoff: bool) -> Result<usize> {
        let now = self.clock.unix();
        self.give_up_old(conn, now)?;
        let mut finished = 0;
        for waiting in outbox::due(conn, now, ignore_backoff, BATCH)? {
            if !outbox::claim(conn, waiting.id, now, now + self.lease())? {
                continue;
            }
            let alert = Alert::from_waiting(&waiting);
            let mut done = waiting.done.clone();
            let mut outcomes = Vec::new();
            for profile in self.subscribed(alert.category) {
                if done.contains(&profile.name) {
                    continue;
                }
                let span = tracing::info_span!("call_home", profile = %profile.name, r#type = %alert.message_type);
                let _entered = span.enter();
                let outcome = match deliver(self, profile, &alert) {
                    Ok(()) => outbox::Outcome::Success,
                    Err(Failure::Config(reason)) => {
                        tracing::warn!(error = %reason, "Call Home message dropped: the profile cannot deliver it; fix call_home in the configuration");
                        outbox::Outcome::Dropped
                    }
                    Err(Failure::Transport(reason)) => {
                        tracing::warn!(error = %reason, "Call Home message not delivered yet; it stays queued and is retried");
                        outbox::Outcome::Failed
                    }
                };
                if outcome != outbox::Outcome::Failed {
                    done.push(profile.name.clone());
                }
                outcomes.push((profile.name.clone(), outcome));
            }
            let complete = self
                .subscribed(alert.category)
                .all(|p| done.contains(&p.name));
            let sent_at = self.clock.unix();
            store::transaction(conn, |c| {
                for (profile, outcome) in &outcomes {
                    outbox::count(c, profile, &alert.message_type, *outcome, sent_at)?;
                }
                if complete {
                    outbox::finish(c, waiting.id)
                } else {
                    outbox::retry_later(c, waiting.id, &done, sent_at + backoff(waiting.attempts))
                }
            })?;
            if complete {
                finished += 1;
            }
        }
        Ok(finished)
    }
}

/// Seconds before the next attempt after `attempts` failed ones: 30 s,
/// doubling, at most an hour.
fn backoff(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 7)).unwrap_or(7);
    (30 * 2_i64.pow(exponent)).min(3600)
}

fn deliver(
    delivery: &Delivery,
    profile: &CallHomeProfile,
    alert: &Alert,
) -> std::result::Result<(), Failure> {
    let subject = format!("[{}] {}", delivery.name, alert.summary);
    match profile.transport {
        CallHomeTransport::Http => {
            let url = profile
                .url
                .as_deref()
                .ok_or_else(|| Failure::Config("the profile has no url".into()))?;
            let (content_type, body) = render(profile.format, delivery, alert, url);
            ureq::AgentBuilder::new()
                .timeout(delivery.timeout)
                .build()
                .post(url)
                .set("Content-Type", content_type)
                .send_string(&body)
                .map(|_| ())
                .map_err(|e| {
                    Failure::Transport(match e {
                        ureq::Error::Status(code, _) => {
                            format!("POST {}: HTTP {code}", redact(url))
                        }
                        ureq::Error::Transport(t) => {
                            format!("POST {}: {}", redact(url), t.kind())
                        }
                    })
                })
        }
        CallHomeTransport::Email => {
            let relay = delivery
                .smtp
                .as_deref()
                .ok_or_else(|| Failure::Config("call_home.smtp is not set".into()))?;
            let (content_type, body) = render(profile.format, delivery, alert, relay);
            let mail = mail(&delivery.from, &profile.to, &subject, content_type, body)
                .map_err(Failure::Config)?;
            send_mail(relay, mail, delivery.timeout)
        }
    }
}

/// The mail itself: an address that does not parse is the configuration's fault.
fn mail(
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

fn send_mail(
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
            format!(
                "{time} {} {} {}: {}",
                delivery.name, alert.severity, alert.message_type, alert.summary
            ),
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
                category: category_name(alert.category).to_string(),
                message_type: &alert.message_type,
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

/// The counts so far, and per configured profile what still waits for it
/// in the outbox (Inqueue).
pub fn statistics(c: &Db, profiles: &[CallHomeProfile]) -> Result<Vec<Statistics>> {
    let mut rows: BTreeMap<(String, String), Statistics> = BTreeMap::new();
    let blank = |profile: &str, message_type: &str| Statistics {
        profile: profile.to_string(),
        message_type: message_type.to_string(),
        success: 0,
        failed: 0,
        inqueue: 0,
        dropped: 0,
        last_sent: None,
    };
    for (profile, message_type, success, failed, dropped, last_sent) in outbox::counted(c)? {
        let mut row = blank(&profile, &message_type);
        row.success = success;
        row.failed = failed;
        row.dropped = dropped;
        row.last_sent = last_sent.map(crate::clock::rfc3339);
        rows.insert((profile, message_type), row);
    }
    for waiting in outbox::all(c)? {
        let category = Alert::from_waiting(&waiting).category;
        for profile in profiles.iter().filter(|p| {
            (p.categories.is_empty() || p.categories.contains(&category))
                && !waiting.done.contains(&p.name)
        }) {
            rows.entry((profile.name.clone(), waiting.message_type.clone()))
                .or_insert_with(|| blank(&profile.name, &waiting.message_type))
                .inqueue += 1;
        }
    }
    Ok(rows.into_values().collect())
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
    use super::*;

    fn setup(yaml: &str) -> (tempfile::TempDir, Config, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::parse(yaml, "t.yaml", dir.path()).expect("config");
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let conn = store::open_and_migrate(&config.database_path()).expect("db");
        (dir, config, conn)
    }

    fn compliance(now: i64) -> Alert {
        Alert::new(
            CallHomeCategory::Compliance,
            "COMPLIANCE",
            "Major",
            "short".into(),
            "table".into(),
            now,
        )
    }

    #[test]
    fn inqueue_is_what_waits_for_each_subscribed_profile() {
        let (_dir, config, conn) = setup(
            "call_home:\n  profiles:\n    - { name: a, transport: http, url: 'http://127.0.0.1:9/x', categories: [compliance] }\n    - { name: b, transport: http, url: 'http://127.0.0.1:9/x', categories: [system] }\n    - { name: c, transport: http, url: 'http://127.0.0.1:9/x' }\n",
        );
        compliance(100).enqueue(&conn).expect("enqueue");
        sync_overdue(&conn, None, 50, 100).expect("sync overdue");
        let rows: Vec<(String, String, i64)> = statistics(&conn, &config.call_home.profiles)
            .expect("statistics")
            .into_iter()
            .map(|s| (s.profile, s.message_type, s.inqueue))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a".into(), "COMPLIANCE".into(), 1),
                ("c".into(), "COMPLIANCE".into(), 1),
                ("c".into(), "SYNC".into(), 1),
            ]
        );
    }

    #[test]
    fn a_profile_that_cannot_deliver_counts_dropped_and_is_not_retried() {
        let (_dir, mut config, mut conn) = setup(
            "call_home:\n  smtp: 'smtp://127.0.0.1:9'\n  profiles:\n    - { name: ops, transport: email, to: [noc@example.com] }\n",
        );
        // Changed since start (validation would refuse it there).
        config.call_home.from = Some("not an address".into());
        let clock = Clock::system();
        compliance(clock.unix()).enqueue(&conn).expect("enqueue");
        let delivery = Delivery::from_config(&config, clock, COMMAND_TIMEOUT);
        assert_eq!(delivery.pass(&mut conn, false).expect("pass"), 1);
        let stats = statistics(&conn, &config.call_home.profiles).expect("statistics");
        assert_eq!(
            (stats[0].dropped, stats[0].failed, stats[0].inqueue),
            (1, 0, 0),
            "{stats:?}"
        );
        assert!(outbox::all(&conn).expect("outbox").is_empty());
    }

    #[test]
    fn a_target_that_is_down_counts_failed_and_keeps_the_alert() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let (_dir, config, mut conn) = setup(&format!(
            "call_home:\n  profiles:\n    - {{ name: noc, transport: http, url: 'http://127.0.0.1:{port}/x' }}\n"
        ));
        let clock = Clock::system();
        compliance(clock.unix()).enqueue(&conn).expect("enqueue");
        let delivery = Delivery::from_config(&config, clock, COMMAND_TIMEOUT);
        assert_eq!(delivery.pass(&mut conn, false).expect("pass"), 0);
        // Backing off: a second pass right away leaves it alone.
        assert_eq!(delivery.pass(&mut conn, false).expect("pass"), 0);
        let stats = statistics(&conn, &config.call_home.profiles).expect("statistics");
        assert_eq!(
            (stats[0].failed, stats[0].inqueue, stats[0].success),
            (1, 1, 0),
            "{stats:?}"
        );
        assert_eq!(outbox::all(&conn).expect("outbox")[0].attempts, 1);
    }

    #[test]
    fn retries_back_off_up_to_an_hour() {
        assert_eq!(
            [0, 1, 2, 6, 7, 100, -1].map(backoff),
            [30, 60, 120, 1920, 3600, 3600, 30]
        );
    }

    #[test]
    fn credentials_never_reach_a_log_line() {
        assert_eq!(
            super::redact("https://ops:s3cret@noc.example/alerts"),
            "https://noc.example/alerts"
        );
        assert_eq!(super::redact("smtp://relay:25"), "smtp://relay:25");
    }
}
