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

impl std::fmt::Display for Udi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PID:{},SN:{}", self.pid, self.sn)
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Base URL of the device API, without a trailing slash.
    pub url: String,
    pub transport: TransportKind,
    #[serde(default)]
    pub proxy: Option<String>,
    /// The only trust anchor for the server's certificate.
    pub ca_pem: String,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub udi: Udi,
    pub hostname: String,
    pub endpoint: Endpoint,
    /// The device key, PKCS#8 PEM (ECDSA P-256).
    pub key_pem: String,
    #[serde(default)]
    pub registration: Option<Registration>,
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
}

impl State {
    pub fn new(udi: Udi, hostname: String, endpoint: Endpoint, key_pem: String) -> Self {
        Self {
            version: STATE_VERSION,
            udi,
            hostname,
            endpoint,
            key_pem,
            registration: None,
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
        self.authorization = None;
        self.last_communication = None;
        self.eval = Eval::starting(super::eval::AFTER_DEREGISTRATION);
        self.eval.set_in_use(self.in_use(), now);
        // Whatever is in use must be reported after the next registration.
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
        Ok(state)
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
