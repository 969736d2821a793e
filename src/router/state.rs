//! The emulated router's persistent state: one JSON file, written atomically
//! with mode 0600 because it holds the device's private key.

use super::eval::Eval;
use super::fcm::{Counts, Port};
use super::stats::Stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Udi {
    pub pid: String,
    pub sn: String,
}

impl Udi {
    /// Same rules as the server's: printable ASCII without spaces, ':' or ','.
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [("--pid", &self.pid), ("--sn", &self.sn)] {
            if value.is_empty() || value.len() > 64 {
                return Err(format!("{name}: must be 1 to 64 characters"));
            }
            if !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
            {
                return Err(format!(
                    "{name} {value:?}: only printable ASCII without spaces, ':' or ',' is allowed"
                ));
            }
        }
        Ok(())
    }
}

impl Udi {
    /// `PID:SN`.
    pub fn key(&self) -> String {
        crate::domain::udi::key(&self.pid, &self.sn)
    }
}

impl std::fmt::Display for Udi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::domain::udi::text(&self.pid, &self.sn))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// JSON to /SmartTransport.
    Smart,
    /// The same JSON in a Call Home AML envelope.
    Callhome,
}

impl TransportKind {
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Smart => "smart",
            TransportKind::Callhome => "callhome",
        }
    }

    /// Where the device API takes this transport's messages.
    pub fn standard_path(self) -> &'static str {
        match self {
            TransportKind::Smart => SMART_PATH,
            TransportKind::Callhome => crate::notify::callhome::PATH,
        }
    }
}

/// The Smart Transport endpoint's path (DESIGN §7).
pub const SMART_PATH: &str = "/SmartTransport";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Scheme and authority of the device API, without a trailing slash.
    pub url: String,
    /// A non-standard path to post to; `None` is the transport's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub transport: TransportKind,
    #[serde(default)]
    pub proxy: Option<String>,
    /// The only trust anchor for the server's certificate.
    pub ca_pem: String,
}

impl Endpoint {
    /// The URL every message is posted to.
    pub fn post_url(&self) -> String {
        let path = self
            .path
            .as_deref()
            .unwrap_or(self.transport.standard_path());
        format!("{}{path}", self.url)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub succeeded: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Attempt {
    pub fn ok(at: OffsetDateTime) -> Self {
        Self {
            at,
            succeeded: true,
            reason: None,
        }
    }

    pub fn failed(at: OffsetDateTime, reason: impl Into<String>) -> Self {
        Self {
            at,
            succeeded: false,
            reason: Some(reason.into()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub certificate_pem: String,
    pub ca_certificate_pem: String,
    pub instance_id: String,
    pub account: String,
    pub virtual_account: String,
    #[serde(with = "time::serde::rfc3339")]
    pub initial: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_renewal: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    #[serde(default)]
    pub last_renewal: Option<Attempt>,
    /// Whether the registration token allowed export-controlled
    /// functionality; `None` (an older server) is shown as allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_controlled: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagStatus {
    pub tag: String,
    pub count: u32,
    /// The server's word, e.g. `AUTHORIZED`, `OUT_OF_COMPLIANCE`, `INVALID`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// Overall status as the server wrote it.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub authorized_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_communication: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    #[serde(default)]
    pub entitlements: Vec<TagStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fcm {
    pub enabled: bool,
    /// Start of the daily collection schedule.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub enabled_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub ports: BTreeMap<String, Port>,
    /// Counts of the last daily check: what is reported.
    #[serde(default)]
    pub current: Option<Counts>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_check: Option<OffsetDateTime>,
}

/// A RENEW id in flight: the new key and the message that asks for its
/// certificate. Saved before sending, so a crash after the server issued
/// the certificate loses nothing: the same message id fetches the server's
/// first answer again (the server replays answers by message id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingIdentity {
    pub key_pem: String,
    pub message_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// `license smart enable` (the default) or `no license smart enable`:
    /// disabled, the agent sends nothing at all.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub udi: Udi,
    pub hostname: String,
    pub endpoint: Endpoint,
    /// The device key, PKCS#8 PEM (ECDSA P-256).
    pub key_pem: String,
    #[serde(default)]
    pub registration: Option<Registration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_identity: Option<PendingIdentity>,
    #[serde(default)]
    pub last_registration_failure: Option<Attempt>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// Last ENTITLEMENT or RENEW auth exchange.
    #[serde(default)]
    pub last_communication: Option<Attempt>,
    #[serde(default)]
    pub eval: Eval,
    /// Plain entitlement demands (`license request TAG COUNT`).
    #[serde(default)]
    pub requests: BTreeMap<String, u32>,
    #[serde(default)]
    pub fcm: Fcm,
    /// The demand changed since it was last reported successfully.
    #[serde(default)]
    pub report_pending: bool,
    #[serde(default)]
    pub stats: Stats,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: no router state here; create it with `satellite-router -s {path} init --pid PID --sn SN --hostname H --url URL --ca CA.pem`")]
    Missing { path: String },
    #[error("{path}: already exists; pass --force to replace it (the router's key and registration are lost)")]
    Exists { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a router state file: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: damaged router state: {reason}; repair it or re-create the router with `init --force`")]
    Invalid { path: String, reason: String },
}

impl State {
    pub fn new(udi: Udi, hostname: String, endpoint: Endpoint, key_pem: String) -> Self {
        Self {
            version: STATE_VERSION,
            enabled: true,
            udi,
            hostname,
            endpoint,
            key_pem,
            registration: None,
            pending_identity: None,
            last_registration_failure: None,
            authorization: None,
            last_communication: None,
            eval: Eval::default(),
            requests: BTreeMap::new(),
            fcm: Fcm::default(),
            report_pending: false,
            stats: Stats::default(),
        }
    }

    pub fn is_registered(&self) -> bool {
        self.registration.is_some()
    }

    /// The full demand to report: plain requests plus the Flexible
    /// Consumption counts of the last daily check, summed per tag.
    pub fn demand(&self) -> BTreeMap<String, u32> {
        let mut demand: BTreeMap<String, u32> = self
            .requests
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        if let (true, Some(counts)) = (self.fcm.enabled, self.fcm.current) {
            for (tag, n) in counts.demand() {
                let slot = demand.entry(tag).or_insert(0);
                *slot = slot.saturating_add(n);
            }
        }
        demand
    }

    /// Whether licenses are in use (what consumes the evaluation period).
    pub fn in_use(&self) -> bool {
        !self.demand().is_empty()
    }

    /// Forgets the identity and the authorization (deregistration, refused
    /// certificate, expired registration) and starts a 30-day evaluation.
    pub fn drop_registration(&mut self, now: OffsetDateTime) {
        self.registration = None;
        self.pending_identity = None;
        self.authorization = None;
        self.last_communication = None;
        self.eval = Eval::starting(super::eval::AFTER_DEREGISTRATION);
        self.eval.set_in_use(self.in_use(), now);
        // Nothing is reported while unregistered, and a registration reports
        // the whole demand right away, so no report stays pending.
        self.report_pending = false;
    }

    pub fn load(path: &Path) -> Result<State, StateError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Missing { path: shown })
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: shown,
                    source,
                })
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Corrupt {
                path: shown,
                reason: format!(
                    "version {} (this emulator reads version {STATE_VERSION})",
                    state.version
                ),
            });
        }
        state.check().map_err(|reason| StateError::Invalid {
            path: shown,
            reason,
        })?;
        Ok(state)
    }

    /// Values no run of the emulator writes, which would make its date
    /// arithmetic or `show` fail: a negative or oversized evaluation
    /// budget, times outside the supported years (`times`).
    fn check(&self) -> Result<(), String> {
        let max = super::eval::FIRST_PERIOD.whole_seconds();
        if !(0..=max).contains(&self.eval.remaining_secs) {
            return Err(format!(
                "eval.remaining_secs: {} is not between 0 and {max}",
                self.eval.remaining_secs
            ));
        }
        for (field, t) in self.times() {
            super::times::check_field(&field, t)?;
        }
        Ok(())
    }

    /// Every stored time, named by its path in the file.
    fn times(&self) -> Vec<(String, OffsetDateTime)> {
        let mut out: Vec<(String, Option<OffsetDateTime>)> = vec![
            ("eval.counting_since".into(), self.eval.counting_since),
            ("eval.expired_at".into(), self.eval.expired_at),
            ("fcm.enabled_at".into(), self.fcm.enabled_at),
            ("fcm.last_check".into(), self.fcm.last_check),
            (
                "last_registration_failure.at".into(),
                self.last_registration_failure.as_ref().map(|a| a.at),
            ),
            (
                "last_communication.at".into(),
                self.last_communication.as_ref().map(|a| a.at),
            ),
        ];
        if let Some(r) = &self.registration {
            out.extend([
                ("registration.initial".into(), Some(r.initial)),
                ("registration.next_renewal".into(), Some(r.next_renewal)),
                ("registration.expires".into(), Some(r.expires)),
                (
                    "registration.last_renewal.at".into(),
                    r.last_renewal.as_ref().map(|a| a.at),
                ),
            ]);
        }
        if let Some(a) = &self.authorization {
            out.extend([
                ("authorization.authorized_at".into(), Some(a.authorized_at)),
                (
                    "authorization.next_communication".into(),
                    Some(a.next_communication),
                ),
                ("authorization.deadline".into(), Some(a.deadline)),
            ]);
        }
        for kind in super::stats::MsgType::ALL {
            out.push((
                format!("stats.{}.last_sent", kind.wire().to_ascii_lowercase()),
                self.stats.get(kind).last_sent,
            ));
        }
        out.into_iter()
            .filter_map(|(field, t)| t.map(|t| (field, t)))
            .collect()
    }

    /// Writes a new state file; refuses to replace one unless `force`.
    pub fn create(&self, path: &Path, force: bool) -> Result<(), StateError> {
        if !force && path.exists() {
            return Err(StateError::Exists {
                path: path.display().to_string(),
            });
        }
        self.save(path)
    }

    /// Writes to a temporary file in the same folder, then renames it, so a
    /// crash never leaves half a state file (and half a key) behind.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = temp_path(path);
        let written =
            write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "router.json".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // The mode above only applies to new files; a leftover temp file keeps its own.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> State {
        State::new(
            Udi {
                pid: "N540-24Z8Q2C-M".into(),
                sn: "FOC2104R0XX".into(),
            },
            "r1".into(),
            Endpoint {
                url: "https://127.0.0.1:4443".into(),
                path: None,
                transport: TransportKind::Smart,
                proxy: None,
                ca_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
            },
            "key".into(),
        )
    }

    #[test]
    fn saves_privately_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r1.json");
        let mut state = sample();
        state.requests.insert("ESS-AC-10G-RTU-1".into(), 3);
        state.create(&path, false).unwrap();
        assert!(matches!(
            state.create(&path, false),
            Err(StateError::Exists { .. })
        ));
        state.create(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(State::load(&path).unwrap(), state);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn missing_and_corrupt_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.json");
        let err = State::load(&path).unwrap_err().to_string();
        assert!(err.contains("init --pid"), "{err}");
        std::fs::write(&path, "{").unwrap();
        let err = State::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a router state file"), "{err}");
    }

    #[test]
    fn damaged_values_are_refused_with_the_field_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r1.json");
        let mut good = sample();
        good.registration = Some(Registration {
            certificate_pem: "c".into(),
            ca_certificate_pem: "ca".into(),
            instance_id: "i".into(),
            account: "A".into(),
            virtual_account: "Default".into(),
            initial: time::macros::datetime!(2030-01-01 0:00 UTC),
            next_renewal: time::macros::datetime!(2030-06-30 0:00 UTC),
            expires: time::macros::datetime!(2031-01-01 0:00 UTC),
            last_renewal: None,
            export_controlled: None,
        });
        good.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cases = [
            (
                "\"remaining_secs\": 7776000",
                "\"remaining_secs\": -5",
                "eval.remaining_secs",
            ),
            (
                "\"remaining_secs\": 7776000",
                "\"remaining_secs\": 9223372036854775807",
                "eval.remaining_secs",
            ),
            (
                "2031-01-01T00:00:00Z",
                "9999-12-31T23:59:59-23:59",
                "registration.expires",
            ),
            (
                "2030-01-01T00:00:00Z",
                "1970-01-01T00:00:00Z",
                "registration.initial",
            ),
            (
                "\"last_sent\": null",
                "\"last_sent\": \"9000-01-01T00:00:00Z\"",
                "stats.entitlement.last_sent",
            ),
        ];
        for (from, to, field) in cases {
            assert!(text.contains(from), "{from} in {text}");
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let err = State::load(&path).unwrap_err();
            assert!(matches!(err, StateError::Invalid { .. }), "{to}: {err}");
            let err = err.to_string();
            assert!(
                err.starts_with(&format!(
                    "{}: damaged router state: {field}: ",
                    path.display()
                )),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn demand_merges_requests_and_fcm() {
        let mut s = sample();
        s.requests.insert(super::super::fcm::ESS_RTU.into(), 5);
        s.requests.insert("ZERO".into(), 0);
        s.fcm.enabled = true;
        s.fcm.current = Some(Counts {
            ess_rtu: 44,
            tracking: 1,
            ..Counts::default()
        });
        let d = s.demand();
        assert_eq!(d.get(super::super::fcm::ESS_RTU), Some(&49));
        assert_eq!(d.get(super::super::fcm::TRACKING), Some(&1));
        assert!(!d.contains_key("ZERO"));
        s.fcm.enabled = false;
        assert_eq!(s.demand().len(), 1);
    }
}
