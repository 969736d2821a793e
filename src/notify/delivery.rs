//! Delivery from the outbox: the server's thread, and the one pass a
//! command makes after its commit. What happens to each message is
//! counted per profile and message type.

use super::mail::{mail, send_mail};
use super::render::render;
use super::transport::{redact, Failure};
use super::Alert;
use crate::clock::Clock;
use crate::config::{CallHomeCategory, CallHomeProfile, CallHomeTransport, Config};
use crate::error::Result;
use crate::store::Db;
use crate::store::{self, outbox};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let passed = delivery
        .database
        .connect()
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
    database: store::Location,
    clock: Clock,
    timeout: Duration,
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
            database: store::Location::of(config),
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
                None => self.database.connect().map_err(crate::error::Error::from),
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
            let (content_type, body) = render(profile.format, &delivery.name, alert, url);
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
            let (content_type, body) = render(profile.format, &delivery.name, alert, relay);
            let mail = mail(&delivery.from, &profile.to, &subject, content_type, body)
                .map_err(Failure::Config)?;
            send_mail(relay, mail, delivery.timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{statistics, sync_overdue};

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
            super::super::transport::redact("https://ops:s3cret@noc.example/alerts"),
            "https://noc.example/alerts"
        );
        assert_eq!(
            super::super::transport::redact("smtp://relay:25"),
            "smtp://relay:25"
        );
    }
}
