//! `satellite.yaml`: loading and validation.
//!
//! Every setting is checked once, at start, and a refusal names the file, the
//! key and the reason, so an operator can fix it without reading code.

mod scan;

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file `serve` and every other command read unless `-c` or
/// `$SATELLITE_CONFIG` says otherwise.
pub const DEFAULT_FILE: &str = "satellite.yaml";
/// Environment variable naming the configuration file (after `-c`).
pub const CONFIG_ENV: &str = "SATELLITE_CONFIG";
/// Where a packaged install keeps its configuration: the last place looked.
pub const SYSTEM_FILE: &str = "/etc/satellite/satellite.yaml";
/// The search order, as error messages tell it (DESIGN §9).
pub const SEARCH_ORDER: &str =
    "-c FILE, $SATELLITE_CONFIG, ./satellite.yaml, /etc/satellite/satellite.yaml";

/// Which configuration file to read: `-c FILE`, else `$SATELLITE_CONFIG`,
/// else `./satellite.yaml`, else `/etc/satellite/satellite.yaml`; `None`
/// when there is none anywhere (the embedded defaults apply).
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    locate_in(
        explicit,
        std::env::var_os(CONFIG_ENV),
        Path::new(DEFAULT_FILE),
        Path::new(SYSTEM_FILE),
    )
}

fn locate_in(
    explicit: Option<&Path>,
    env: Option<std::ffi::OsString>,
    local: &Path,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        return Ok(Some(path.to_path_buf()));
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        // Named on purpose: falling back to another file would act on the
        // wrong satellite.
        if !path.is_file() {
            return Err(ConfigError {
                file: path.display().to_string(),
                key: "-".into(),
                reason: format!(
                    "${CONFIG_ENV} names this file but it does not exist; fix or unset ${CONFIG_ENV}"
                ),
            });
        }
        return Ok(Some(path));
    }
    Ok([local, system]
        .into_iter()
        .find(|p| p.is_file())
        .map(Path::to_path_buf))
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Satellite,
    Cloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    Connected,
    Disconnected,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Connected => "connected",
            SyncMode::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: String,
    pub role: Role,
    pub account: String,
    pub data_dir: PathBuf,
    pub device: DeviceListener,
    pub admin: AdminListener,
    pub sync: Sync,
    pub reports: Reports,
    pub call_home: CallHome,
    pub log: Log,
    /// YAML file with SKUs and entitlement tags beyond the built-in NCS 540 table.
    pub catalog: Option<PathBuf>,
    pub storage: Storage,
    /// Where the file was read from; relative paths are resolved against its folder.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceListener {
    pub listen: SocketAddr,
    pub hostnames: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Concurrent connections the device listener accepts in all.
    pub max_connections: usize,
    /// Concurrent connections one source address may hold (a site's NAT
    /// puts many routers behind one address: keep this generous).
    pub max_connections_per_source: usize,
    /// Requests without a client certificate (registrations, and anyone
    /// guessing tokens) one source address may send per minute.
    pub registrations_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminListener {
    pub listen: SocketAddr,
    /// Certificate for the admin listener when it differs from the device one.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sync {
    pub mode: SyncMode,
    pub cloud_url: Option<String>,
    pub proxy: Option<String>,
    pub schedule: String,
    pub export_schedule: String,
    pub export_dir: PathBuf,
    pub import_dir: PathBuf,
    pub send_hostnames: bool,
}

/// Where everything the satellite stores lives (DESIGN §4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub backend: StorageBackend,
    /// PostgreSQL only.
    pub url: Option<String>,
    /// PostgreSQL only: a file holding the database password.
    pub password_file: Option<PathBuf>,
}

impl Storage {
    /// The shape of the setting; whether the database answers is checked
    /// when it is opened (`satellite serve`, any command).
    fn validate(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        match self.backend {
            StorageBackend::Sqlite => {
                if self.url.is_some() || self.password_file.is_some() {
                    return Err((
                        "storage.url",
                        "`url` and `password_file` are for `backend: postgres`; SQLite keeps its \
                         database in the data dir"
                            .into(),
                    ));
                }
            }
            StorageBackend::Postgres => {
                let Some(url) = &self.url else {
                    return Err((
                        "storage.url",
                        "`backend: postgres` needs the database's URL, e.g. \
                         postgresql://satellite@db1:5432,db2:5432/satellite?target_session_attrs=read-write"
                            .into(),
                    ));
                };
                let parsed: tokio_postgres::Config = url.parse().map_err(|e| {
                    (
                        "storage.url",
                        format!("not a PostgreSQL URL ({e}); write postgresql://USER@HOST:PORT/DATABASE"),
                    )
                })?;
                if parsed.get_password().is_some() {
                    return Err((
                        "storage.url",
                        "the URL holds a password; put it in a file of its own (mode 0600) and \
                         name that file in `storage.password_file`"
                            .into(),
                    ));
                }
                if parsed.get_user().is_none() {
                    return Err((
                        "storage.url",
                        "name the database user in the URL: postgresql://USER@HOST/DATABASE".into(),
                    ));
                }
                if let Some(file) = &mut self.password_file {
                    *file = base.join(&*file);
                    use std::os::unix::fs::PermissionsExt;
                    let meta = std::fs::metadata(&*file).map_err(|e| {
                        (
                            "storage.password_file",
                            format!("cannot read {}: {e}", file.display()),
                        )
                    })?;
                    if meta.permissions().mode() & 0o077 != 0 {
                        return Err((
                            "storage.password_file",
                            format!(
                                "{} can be read by others (mode {:o}); `chmod 600` it",
                                file.display(),
                                meta.permissions().mode() & 0o777
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// The embedded database in the data dir.
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reports {
    pub schedule: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallHome {
    pub profiles: Vec<CallHomeProfile>,
    /// Mail relay for `email` profiles: `smtp://host:25` (plain, for a relay on
    /// the LAN) or `smtps://host:465` (TLS, verified against the system roots).
    pub smtp: Option<String>,
    /// Sender address of Call Home mail; default `satellite@<name>`.
    pub from: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallHomeProfile {
    pub name: String,
    pub transport: CallHomeTransport,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "CallHomeProfile::default_format")]
    pub format: CallHomeFormat,
    #[serde(default)]
    pub categories: Vec<CallHomeCategory>,
}

impl CallHome {
    /// Every value a profile delivers with, checked at start: a bad address
    /// found only when the first shortfall happens would lose that alert.
    /// Errors name the key, e.g. `call_home.profiles[1].to[0]`.
    fn validate(&self, satellite: &str) -> Result<(), (String, String)> {
        if let Some(smtp) = &self.smtp {
            check_url(smtp, &["smtp", "smtps"]).map_err(|r| ("call_home.smtp".to_string(), r))?;
        }
        match &self.from {
            Some(from) => check_mailbox(from).map_err(|r| ("call_home.from".to_string(), r))?,
            None if self
                .profiles
                .iter()
                .any(|p| p.transport == CallHomeTransport::Email) =>
            {
                check_mailbox(&format!("satellite@{satellite}")).map_err(|r| {
                    (
                        "call_home.from".to_string(),
                        format!("not set, and the default sender made from `name` is no address: {r}; set call_home.from"),
                    )
                })?
            }
            None => {}
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, profile) in self.profiles.iter().enumerate() {
            let key = |field: &str| format!("call_home.profiles[{i}].{field}");
            let name = profile.name.trim();
            if name.is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            if name != profile.name || name.chars().any(char::is_control) {
                return Err((
                    key("name"),
                    format!(
                        "{:?}: no leading or trailing spaces or control characters",
                        profile.name
                    ),
                ));
            }
            if !names.insert(name) {
                return Err((
                    key("name"),
                    format!("{name:?} is already the name of another profile; names must be unique (statistics are kept per name)"),
                ));
            }
            match profile.transport {
                CallHomeTransport::Email => {
                    if self.smtp.is_none() {
                        return Err((
                            "call_home.smtp".into(),
                            format!("profile {i} ({name}) sends email: name the mail relay, e.g. smtp: smtp://relay.example:25"),
                        ));
                    }
                    if profile.to.is_empty() {
                        return Err((
                            key("to"),
                            format!("profile {name} sends email: list at least one address, e.g. to: [noc@example.com]"),
                        ));
                    }
                    if profile.url.is_some() {
                        return Err((
                            key("url"),
                            format!("profile {name} sends email; `url` is for transport http"),
                        ));
                    }
                }
                CallHomeTransport::Http => {
                    let Some(url) = &profile.url else {
                        return Err((
                            key("url"),
                            format!("profile {name} posts over HTTP: give the URL, e.g. url: https://noc.example/callhome"),
                        ));
                    };
                    check_url(url, &["http", "https"]).map_err(|r| (key("url"), r))?;
                    if !profile.to.is_empty() {
                        return Err((
                            key("to"),
                            format!("profile {name} posts over HTTP; `to` is for transport email"),
                        ));
                    }
                }
            }
            for (j, address) in profile.to.iter().enumerate() {
                check_mailbox(address).map_err(|r| (key(&format!("to[{j}]")), r))?;
            }
        }
        Ok(())
    }
}

/// An e-mail address as the mailer will parse it.
fn check_mailbox(address: &str) -> Result<(), String> {
    address
        .parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            format!("{address:?} is not an e-mail address ({e}); write e.g. noc@example.com")
        })
}

impl CallHomeProfile {
    fn default_format() -> CallHomeFormat {
        CallHomeFormat::ShortText
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallHomeTransport {
    Email,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallHomeFormat {
    ShortText,
    FullText,
    Xml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallHomeCategory {
    Compliance,
    Registration,
    Sync,
    System,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
    /// `udp://host:514`
    pub syslog: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "satellite-1".into(),
            role: Role::Satellite,
            account: "Example Corp".into(),
            data_dir: "./data".into(),
            device: DeviceListener::default(),
            admin: AdminListener::default(),
            sync: Sync::default(),
            reports: Reports::default(),
            call_home: CallHome::default(),
            log: Log::default(),
            catalog: None,
            storage: Storage::default(),
            source: "<embedded defaults>".into(),
        }
    }
}

impl Default for DeviceListener {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4443)),
            hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            tls_cert: None,
            tls_key: None,
            max_connections: 4096,
            max_connections_per_source: 256,
            registrations_per_minute: 600,
        }
    }
}

impl Default for AdminListener {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for Sync {
    fn default() -> Self {
        Self {
            mode: SyncMode::Disconnected,
            cloud_url: None,
            proxy: None,
            schedule: "0 0 2 * * *".into(),
            export_schedule: "0 0 3 1 * *".into(),
            export_dir: "./export".into(),
            import_dir: "./import".into(),
            send_hostnames: true,
        }
    }
}

impl Default for Reports {
    fn default() -> Self {
        Self {
            schedule: "0 0 6 1 * *".into(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
            syslog: None,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file, resolving relative paths
    /// against the file's folder and creating the folders it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        // Checked before reading: a huge file is a mistake, not a configuration.
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.len() > MAX_FILE_BYTES as u64 {
                return Err(ConfigError {
                    file,
                    key: "-".into(),
                    reason: format!(
                        "the file is {} bytes; a configuration is at most {MAX_FILE_BYTES} bytes",
                        meta.len()
                    ),
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "-".into(),
            reason: format!(
                "cannot read the file: {e}; name an existing satellite.yaml (-c FILE or \
                 ${CONFIG_ENV}), or run `satellite init` where it should live"
            ),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        Self::parse(&text, &file, base)
    }

    /// The defaults, used when there is no `satellite.yaml` at all.
    pub fn embedded(base: &Path) -> Result<Self, ConfigError> {
        Self::parse("{}", "<embedded defaults>", base)
    }

    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Self, ConfigError> {
        let fail = |key: &str, reason: String| ConfigError {
            file: file.to_string(),
            key: key.to_string(),
            reason,
        };
        // An empty file is an empty mapping: every key takes its default.
        let text = if text.trim().is_empty() { "{}" } else { text };
        if text.len() > MAX_FILE_BYTES {
            return Err(fail(
                "-",
                format!(
                    "the text is {} bytes; a configuration is at most {MAX_FILE_BYTES} bytes",
                    text.len()
                ),
            ));
        }
        // Before the YAML parser sees it: aliases expand (a small file can
        // become gigabytes) and duplicate keys would be reported without a line.
        scan::scan(text).map_err(|(key, reason)| fail(&key, reason))?;
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." || key == "?" {
                "-".to_string()
            } else {
                key
            };
            let reason = e.into_inner().to_string();
            // serde_yaml already starts its message with the key.
            let reason = reason
                .strip_prefix(&format!("{key}: "))
                .unwrap_or(&reason)
                .to_string();
            fail(&key, one_line(&reason))
        })?;
        config.source = file.to_string();
        config
            .validate(base)
            .map_err(|(key, reason)| fail(key, reason))?;
        config
            .call_home
            .validate(&config.name)
            .map_err(|(key, reason)| fail(&key, reason))?;
        Ok(config)
    }

    fn validate(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        // It names the CA ("<name> Satellite CA"), and X.520 allows 64 characters.
        if self.name.chars().count() > 50 {
            return Err(("name", "must be at most 50 characters".into()));
        }
        if self.account.trim().is_empty() {
            return Err(("account", "must not be empty".into()));
        }
        if self.name.chars().any(char::is_control) || self.account.chars().any(char::is_control) {
            return Err((
                "name",
                "the name and account may not hold control characters".into(),
            ));
        }
        if self.role == Role::Cloud && self.sync.mode == SyncMode::Connected {
            return Err((
                "sync.mode",
                "a cloud is the top of the tree and syncs with no one: leave `sync.mode` out (or \
                 `disconnected`) on `role: cloud`"
                    .into(),
            ));
        }
        self.storage.validate(base)?;
        if self.device.hostnames.is_empty() {
            return Err((
                "device.hostnames",
                "name at least one host name or address the routers use to reach this server"
                    .into(),
            ));
        }
        for host in &self.device.hostnames {
            if host.trim().is_empty() || host.contains(char::is_whitespace) || host.len() > 64 {
                return Err((
                    "device.hostnames",
                    format!("{host:?} is not a host name (at most 64 characters, no spaces)"),
                ));
            }
        }
        pair_given("device", &self.device.tls_cert, &self.device.tls_key)?;
        for (key, value, max) in [
            (
                "device.max_connections",
                self.device.max_connections,
                100_000,
            ),
            (
                "device.max_connections_per_source",
                self.device.max_connections_per_source,
                self.device.max_connections,
            ),
            (
                "device.registrations_per_minute",
                self.device.registrations_per_minute as usize,
                100_000,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err((key, format!("{value} is out of range: use 1 to {max}")));
            }
        }
        pair_given("admin", &self.admin.tls_cert, &self.admin.tls_key)?;
        // A non-loopback admin listener needs no certificate of its own: the
        // CA-signed server certificate serves both listeners (DESIGN §3), so
        // clients trust the one `ca.pem`. It must name the admin host too.
        for (key, expr) in [
            ("sync.schedule", &self.sync.schedule),
            ("sync.export_schedule", &self.sync.export_schedule),
            ("reports.schedule", &self.reports.schedule),
        ] {
            check_cron(expr).map_err(|reason| (key, reason))?;
        }
        if let Some(url) = &self.sync.cloud_url {
            check_url(url, &["https"]).map_err(|r| ("sync.cloud_url", r))?;
        }
        if let Some(url) = &self.sync.proxy {
            // An HTTP CONNECT proxy: the TLS to the cloud runs inside the tunnel.
            check_url(url, &["http"])
                .and_then(|()| {
                    ureq::Proxy::new(url).map(|_| ()).map_err(|e| {
                        format!("{url:?}: {e}; write http://[user:password@]host:port")
                    })
                })
                .map_err(|r| ("sync.proxy", r))?;
        }
        if self.role == Role::Satellite
            && self.sync.mode == SyncMode::Connected
            && self.sync.cloud_url.is_none()
        {
            return Err((
                "sync.cloud_url",
                "connected mode needs the cloud's URL, e.g. https://cloud.example:4443".into(),
            ));
        }
        if let Some(syslog) = &self.log.syslog {
            check_syslog(syslog).map_err(|r| ("log.syslog", r))?;
        }
        check_log_level(&self.log.level).map_err(|r| ("log.level", r))?;
        check_listeners(self.device.listen, self.admin.listen)?;

        self.data_dir = resolve(base, &self.data_dir);
        self.sync.export_dir = resolve(base, &self.sync.export_dir);
        self.sync.import_dir = resolve(base, &self.sync.import_dir);
        for path in [
            &mut self.catalog,
            &mut self.device.tls_cert,
            &mut self.device.tls_key,
            &mut self.admin.tls_cert,
            &mut self.admin.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            *path = resolve(base, path);
        }
        // The catalog's contents are checked where it is loaded (before
        // anything starts); here only that the file can be read.
        for (key, file) in [
            ("catalog", &self.catalog),
            ("device.tls_cert", &self.device.tls_cert),
            ("device.tls_key", &self.device.tls_key),
            ("admin.tls_cert", &self.admin.tls_cert),
            ("admin.tls_key", &self.admin.tls_key),
        ] {
            if let Some(file) = file {
                // Opened, not just looked at: a file the service user may not
                // read fails here rather than after init created the CA.
                let readable = file.is_file() && std::fs::File::open(file).is_ok();
                if !readable {
                    return Err((
                        key,
                        format!(
                            "{} is not a readable file; fix the path or its permissions",
                            file.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Creates the data dir and the bundle folders. Only `init` and `serve`
    /// call this: every other command works on a satellite that exists.
    pub fn create_dirs(&self) -> Result<(), ConfigError> {
        let dirs = [
            ("sync.export_dir", &self.sync.export_dir, 0o750),
            ("sync.import_dir", &self.sync.import_dir, 0o750),
            // The data dir holds keys and the database: its owner only.
            ("data_dir", &self.data_dir, 0o700),
        ];
        // A folder that can never be made (a file in its way) is refused
        // before any is made; the data dir last, so a failure leaves no
        // half-created satellite behind.
        for (key, dir, _) in dirs {
            let blocked = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir());
            if let Some(file) = blocked {
                return Err(ConfigError {
                    file: self.source.clone(),
                    key: key.into(),
                    reason: format!(
                        "cannot create {}: {} is a file, not a folder; name another folder",
                        dir.display(),
                        file.display()
                    ),
                });
            }
        }
        for (key, dir, mode) in dirs {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(dir)
                .map_err(|e| ConfigError {
                    file: self.source.clone(),
                    key: key.into(),
                    reason: format!("cannot create {}: {e}", dir.display()),
                })?;
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("satellite.db")
    }
}

/// The largest `satellite.yaml` accepted; real ones are a few kilobytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// Error reasons quoted from the YAML parser are cut to this many characters.
const MAX_REASON_CHARS: usize = 200;

/// The parser's message on one short line: it may quote a whole flow mapping.
fn one_line(reason: &str) -> String {
    let flat: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= MAX_REASON_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(MAX_REASON_CHARS).collect();
    format!("{cut}...")
}

const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// A level word, or per-module directives (`info,satellite::sync=debug`)
/// whose every level is one of those words. `EnvFilter` alone would take
/// `verbose` as a module name and then log nothing at all.
fn check_log_level(value: &str) -> Result<(), String> {
    let hint = "use error, warn, info, debug or trace";
    if value.trim().is_empty() {
        return Err(format!("must not be empty; {hint}"));
    }
    for directive in value.split(',') {
        let directive = directive.trim();
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => return Err(format!("{directive:?} names no module before `=`; {hint}")),
            None => directive,
        };
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("{level:?} is not a log level; {hint}"));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value).map_err(|e| format!("{e}; {hint}"))?;
    Ok(())
}

/// The two listeners must not share an address: the second bind would fail
/// only after init, and one port cannot serve both certificate policies.
fn check_listeners(device: SocketAddr, admin: SocketAddr) -> Result<(), (&'static str, String)> {
    let overlaps = device.port() == admin.port()
        && device.port() != 0
        && (device.ip() == admin.ip()
            || device.ip().is_unspecified()
            || admin.ip().is_unspecified());
    if overlaps {
        return Err((
            "admin.listen",
            format!(
                "{admin} overlaps device.listen {device}; give the admin listener its own port, e.g. 8443"
            ),
        ));
    }
    Ok(())
}

fn pair_given(
    listener: &'static str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<(), (&'static str, String)> {
    match (cert, key) {
        (Some(_), None) | (None, Some(_)) => Err((
            if listener == "device" {
                "device.tls_cert"
            } else {
                "admin.tls_cert"
            },
            format!("{listener}.tls_cert and {listener}.tls_key go together: set both or neither"),
        )),
        _ => Ok(()),
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    // `./data` under `.` is `data`: shorter paths in every message.
    let cleaned: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// The `cron` crate wants seconds first (6 or 7 fields) and counts Sunday as 1.
pub fn check_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "{expr:?} has {fields} fields; write 6 or 7 with seconds first, e.g. \"0 0 6 1 * *\" \
             for 06:00 on the 1st of each month"
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| format!("{expr:?} is not a cron expression: {e}"))
}

/// Whether `schedule` fires in `(after, now]` (Unix seconds, UTC): the one
/// rule every cron-driven job (reports, usage export, live sync) uses with
/// the injected clock, so a job missed while the server was down runs once
/// when it comes back.
pub fn fires_between(schedule: &cron::Schedule, after: i64, now: i64) -> bool {
    next_fire(schedule, after).is_some_and(|next| next <= now)
}

/// When `schedule` next fires after `after` (Unix seconds, UTC).
pub fn next_fire(schedule: &cron::Schedule, after: i64) -> Option<i64> {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_opt(after, 0)
        .single()
        .and_then(|t| schedule.after(&t).next())
        .map(|next| next.timestamp())
}

fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL; write e.g. https://host:4443"))?;
    if !schemes.contains(&scheme) {
        return Err(format!(
            "{url:?}: scheme {scheme:?} is not allowed here (use {})",
            schemes.join(" or ")
        ));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    Ok(())
}

/// Parses `udp://host:port` into the host and port to send to.
pub fn check_syslog(value: &str) -> Result<(String, u16), String> {
    let rest = value
        .strip_prefix("udp://")
        .ok_or_else(|| format!("{value:?}: only udp:// is supported, e.g. udp://loghost:514"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{value:?} names no port, e.g. udp://loghost:514"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{value:?}: {port:?} is not a port number"))?;
    if host.is_empty() {
        return Err(format!("{value:?} names no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        Config::parse(text, "test.yaml", dir.path())
    }

    #[test]
    fn defaults_are_the_contract() {
        let config = parse("").expect("defaults load");
        assert_eq!(config.device.listen.to_string(), "127.0.0.1:4443");
        assert_eq!(config.admin.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(config.role, Role::Satellite);
        assert_eq!(config.sync.mode, SyncMode::Disconnected);
    }

    #[test]
    fn a_cloud_does_not_sync_upstream_and_names_have_no_control_characters() {
        let err = parse("role: cloud\nsync: { mode: connected, cloud_url: \"https://c:1\" }\n")
            .expect_err("refused");
        assert_eq!(err.key, "sync.mode");
        assert_eq!(
            parse("name: \"a\\u0000b\"\n").expect_err("refused").key,
            "name"
        );
        let err = parse("role: cloudy\n").expect_err("refused");
        assert!(!err.reason.starts_with("role:"), "the key once: {err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("device:\n  lisen: 127.0.0.1:1\n").unwrap_err();
        assert_eq!(err.key, "device.lisen");
        assert!(err.reason.contains("lisen"), "{err}");
        assert!(
            err.to_string().starts_with("test.yaml: device.lisen: "),
            "{err}"
        );
    }

    #[test]
    fn bad_address_is_named() {
        let err = parse("device: { listen: 'nowhere:x' }").unwrap_err();
        assert_eq!(err.key, "device.listen", "{err}");
    }

    #[test]
    fn sync_proxy_is_an_http_connect_proxy() {
        let ok = parse("sync: { proxy: 'http://user:secret@proxy.example:3128' }");
        assert!(ok.is_ok(), "{:?}", ok.err());
        for bad in [
            "https://proxy.example:3128",
            "socks5://proxy.example:1080",
            "proxy:3128",
        ] {
            let err = parse(&format!("sync: {{ proxy: '{bad}' }}")).unwrap_err();
            assert_eq!(err.key, "sync.proxy", "{bad}: {err}");
        }
        let err = parse("sync: { cloud_url: 'http://cloud.example' }").unwrap_err();
        assert_eq!(err.key, "sync.cloud_url", "{err}");
    }

    #[test]
    fn bad_cron_is_named() {
        let err = parse("reports: { schedule: '* * *' }").unwrap_err();
        assert_eq!(err.key, "reports.schedule");
        let err = parse("sync: { schedule: '0 0 99 * * *' }").unwrap_err();
        assert_eq!(err.key, "sync.schedule");
    }

    #[test]
    fn public_admin_uses_the_ca_signed_server_certificate() {
        let config = parse("admin: { listen: 0.0.0.0:8443 }").expect("accepted");
        assert!(config.admin.tls_cert.is_none());
    }

    #[test]
    fn storage_is_checked_for_shape_naming_the_key_and_the_fix() {
        let config = parse("storage: { backend: sqlite }").expect("sqlite");
        assert_eq!(config.storage.backend, StorageBackend::Sqlite);
        let err = parse("storage: { backend: mysql }").unwrap_err();
        assert_eq!(err.key, "storage.backend");
        let refused = [
            ("storage: { backend: postgres }", "needs the database's URL"),
            ("storage: { backend: postgres, url: 'postgresql://satellite@db/s?sslmode=sideways' }", "not a PostgreSQL URL"),
            ("storage: { backend: postgres, url: 'postgresql://satellite:hunter2@db/s' }", "password_file"),
            ("storage: { backend: postgres, url: 'postgresql://db/s' }", "name the database user"),
            ("storage: { backend: sqlite, url: 'postgresql://u@db/s' }", "for `backend: postgres`"),
        ];
        for (yaml, says) in refused {
            let err = parse(yaml).unwrap_err();
            assert_eq!(err.key, "storage.url", "{yaml}");
            assert!(err.reason.contains(says), "{yaml}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("db-password");
        std::fs::write(&secret, "s3cret\n").expect("write");
        let yaml = "storage: { backend: postgres, url: 'postgresql://satellite@db1,db2/satellite?target_session_attrs=read-write', password_file: db-password }";
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Config::parse(yaml, "t.yaml", dir.path()).unwrap_err();
        assert_eq!(err.key, "storage.password_file");
        assert!(err.reason.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = Config::parse(yaml, "t.yaml", dir.path()).expect("postgres");
        assert_eq!(
            config.storage.password_file.as_deref(),
            Some(secret.as_path())
        );
        let err = Config::parse(&yaml.replace("db-password", "absent"), "t.yaml", dir.path())
            .unwrap_err();
        assert_eq!(err.key, "storage.password_file");
    }

    #[test]
    fn uncreatable_data_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let config = Config::parse("data_dir: file/sub\n", "t.yaml", dir.path()).expect("parses");
        let err = config.create_dirs().unwrap_err();
        assert_eq!(err.key, "data_dir");
        assert!(err.reason.contains("is a file"), "{err}");
        let made: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(made, vec![std::ffi::OsString::from("file")], "nothing made");
    }

    #[test]
    fn loading_creates_no_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        Config::parse(
            "data_dir: d\nsync: { export_dir: e }\n",
            "t.yaml",
            dir.path(),
        )
        .expect("parses");
        let entries = std::fs::read_dir(dir.path()).expect("read_dir").count();
        assert_eq!(
            entries, 0,
            "loading a configuration must not create folders"
        );
    }

    #[test]
    fn the_file_is_found_in_the_documented_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "{}").expect("write");
            path
        };
        let (explicit, env, local, system) = (
            file("c.yaml"),
            file("env.yaml"),
            file("l.yaml"),
            file("s.yaml"),
        );
        let missing = dir.path().join("missing.yaml");
        let found = |e: Option<&Path>, v: Option<&Path>, l: &Path, s: &Path| {
            locate_in(e, v.map(|p| p.as_os_str().to_owned()), l, s)
        };
        assert_eq!(
            found(Some(&explicit), Some(&env), &local, &system).expect("ok"),
            Some(explicit.clone())
        );
        assert_eq!(
            found(None, Some(&env), &local, &system).expect("ok"),
            Some(env.clone())
        );
        assert_eq!(
            found(None, None, &local, &system).expect("ok"),
            Some(local.clone())
        );
        assert_eq!(
            found(None, None, &missing, &system).expect("ok"),
            Some(system.clone())
        );
        assert_eq!(found(None, None, &missing, &missing).expect("ok"), None);
        let err = found(None, Some(&missing), &local, &system).unwrap_err();
        assert!(err.to_string().contains("SATELLITE_CONFIG"), "{err}");
    }

    #[test]
    fn email_profiles_need_a_relay() {
        let err =
            parse("call_home: { profiles: [ { name: ops, transport: email, to: [a@b.c] } ] }")
                .unwrap_err();
        assert_eq!(err.key, "call_home.smtp");
        assert!(parse("call_home: { smtp: 'smtp://relay:25', profiles: [ { name: ops, transport: email, to: [a@b.c] } ] }").is_ok());
        let err = parse("call_home: { profiles: [ { name: web, transport: http } ] }").unwrap_err();
        assert_eq!(err.key, "call_home.profiles[0].url");
    }

    #[test]
    fn call_home_profiles_are_checked_value_by_value() {
        let relay = "call_home:\n  smtp: 'smtp://relay:25'\n";
        let cases = [
            (
                "  from: 'not an address'\n  profiles: []\n",
                "call_home.from",
                "not an e-mail address",
            ),
            (
                "  profiles: [ { name: a, transport: email, to: [n@e.com] } ]\nname: lab sat\n",
                "call_home.from",
                "set call_home.from",
            ),
            (
                "  profiles: [ { name: '', transport: http, url: 'http://h/x' } ]\n",
                "call_home.profiles[0].name",
                "must not be empty",
            ),
            (
                "  profiles: [ { name: ' ', transport: http, url: 'http://h/x' } ]\n",
                "call_home.profiles[0].name",
                "must not be empty",
            ),
            (
                "  profiles: [ { name: a, transport: http, url: 'http://h/x' }, { name: a, transport: email, to: [n@e.com] } ]\n",
                "call_home.profiles[1].name",
                "unique",
            ),
            (
                "  profiles: [ { name: a, transport: email, to: [n@e.com, 'bob at example'] } ]\n",
                "call_home.profiles[0].to[1]",
                "bob at example",
            ),
            (
                "  profiles: [ { name: a, transport: email, to: [] } ]\n",
                "call_home.profiles[0].to",
                "at least one address",
            ),
            (
                "  profiles: [ { name: a, transport: http, url: 'ftp://h/x' } ]\n",
                "call_home.profiles[0].url",
                "ftp",
            ),
            (
                "  profiles: [ { name: a, transport: http, url: 'https://' } ]\n",
                "call_home.profiles[0].url",
                "no host",
            ),
        ];
        for (yaml, key, reason) in cases {
            let err = parse(&format!("{relay}{yaml}")).expect_err(yaml);
            assert_eq!(err.key, key, "{yaml}: {err}");
            assert!(err.reason.contains(reason), "{yaml}: {err}");
            assert!(err.to_string().starts_with("test.yaml: "), "{err}");
        }
        assert!(parse(&format!(
            "{relay}  from: 'Satellite <sat@example.com>'\n  profiles: [ {{ name: a, transport: email, to: [n@e.com] }}, {{ name: b, transport: http, url: 'https://noc.example/ch' }} ]\n"
        ))
        .is_ok());
    }

    #[test]
    fn syslog_must_be_udp() {
        assert!(check_syslog("udp://127.0.0.1:514").is_ok());
        assert!(check_syslog("tcp://h:514").is_err());
        let err = parse("log: { syslog: 'udp://h' }").unwrap_err();
        assert_eq!(err.key, "log.syslog");
    }

    #[test]
    fn log_level_must_be_a_level() {
        let err = parse("log: { level: verbose }").unwrap_err();
        assert_eq!(err.key, "log.level");
        assert!(
            err.reason.contains("\"verbose\" is not a log level"),
            "{err}"
        );
        assert!(parse("log: { level: debug }").is_ok());
        assert!(parse("log: { level: 'info,satellite::sync=trace' }").is_ok());
        assert_eq!(
            parse("log: { level: 'info,satellite=loud' }")
                .unwrap_err()
                .key,
            "log.level"
        );
    }

    #[test]
    fn listeners_must_be_distinct() {
        let err = parse("device: { listen: 127.0.0.1:4443 }\nadmin: { listen: 127.0.0.1:4443 }")
            .unwrap_err();
        assert_eq!(err.key, "admin.listen");
        let err =
            parse("device: { listen: 0.0.0.0:443 }\nadmin: { listen: 127.0.0.1:443 }").unwrap_err();
        assert_eq!(err.key, "admin.listen");
        assert!(parse("device: { listen: 127.0.0.1:0 }\nadmin: { listen: 127.0.0.1:0 }").is_ok());
    }

    #[test]
    fn an_alias_bomb_is_refused_in_one_short_line() {
        let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for n in 1..40 {
            yaml.push_str(&format!(
                "a{n}: &a{n} [*a{}, *a{}, *a{}]\n",
                n - 1,
                n - 1,
                n - 1
            ));
        }
        let err = parse(&yaml).unwrap_err();
        assert!(err.reason.contains("anchor"), "{err}");
        assert!(err.to_string().len() < 300, "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let yaml = format!("name: x\n# {}\n", "y".repeat(MAX_FILE_BYTES));
        let err = parse(&yaml).unwrap_err();
        assert!(err.reason.contains("at most"), "{err}");
    }

    #[test]
    fn an_unreadable_tls_file_is_refused() {
        let err = parse("device: { tls_cert: missing.pem, tls_key: missing.key }").unwrap_err();
        assert_eq!(err.key, "device.tls_cert");
        assert!(err.reason.contains("not a readable file"), "{err}");
    }
}
