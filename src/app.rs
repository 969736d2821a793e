//! Wiring: from a validated configuration to a running server.

use crate::clock::Clock;
use crate::config::Config;
use crate::device::DeviceService;
use crate::http::{self, tls, AppState, Listeners, TlsConfigs};
use crate::licensing::catalog::{Catalog, SharedCatalog};
use crate::licensing::jobs::Jobs;
use crate::metrics::Metrics;
use crate::notify::syslog::Syslog;
use crate::notify::Notifier;
use crate::pki::CertificateAuthority;
use crate::setup::{self, Created};
use crate::store::Store;
use crate::sync::service::SyncService;
use crate::sync::Keys;
use crate::time_guard::ClockGuard;
use std::future::Future;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Setup(#[from] crate::error::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Locked(#[from] crate::serve_lock::LockError),
    #[error(
        "{dir}: database or disk is full: {free} bytes free on its file system; free space there \
         (old bundles in the export folder, rotated logs, *.replaced files beside the database) \
         and start again"
    )]
    DiskFull { dir: String, free: u64 },
}

pub struct Satellite {
    pub catalog: Arc<SharedCatalog>,
    pub notifier: Arc<Notifier>,
    pub config: Config,
    pub clock: Clock,
    pub store: Store,
    pub ca: Arc<CertificateAuthority>,
    pub created: Created,
    /// This server's claim on the data dir, for as long as it lives.
    _lock: crate::serve_lock::ServeLock,
    /// Bound in `open`, before anything was created, so an address in use
    /// refuses the start with nothing written; handed out by `bind`.
    listeners: std::sync::Mutex<Option<Listeners>>,
}

impl Satellite {
    /// Initializes what is missing and opens the database for serving.
    pub fn open(config: Config, clock: Clock) -> Result<Self, StartError> {
        // Everything that can refuse the configuration runs before init, so
        // a refusal never swallows the bootstrap credential init prints once.
        Catalog::load(config.catalog.as_deref())
            .map_err(|reason| crate::error::Error::invalid("catalog", reason))?;
        let syslog = match &config.log.syslog {
            Some(url) => Some(
                Syslog::connect(url, &config.name)
                    .map_err(|reason| crate::error::Error::invalid("log.syslog", reason))?,
            ),
            None => None,
        };
        let location = crate::store::Location::of(&config);
        if let Some(db) = location.embedded_file().filter(|db| db.is_file()) {
            if let Some(free) = crate::store::free_bytes(&config.data_dir)
                .filter(|free| *free < crate::store::MIN_FREE_BYTES)
            {
                return Err(StartError::DiskFull {
                    dir: config.data_dir.display().to_string(),
                    free,
                });
            }
            crate::store::check_integrity_at_start(db)?;
        }
        setup::check_clock(&config, &clock)?;
        // Operator-supplied certificates are loaded now: a key that does not
        // parse refuses the start before init writes anything.
        let operator_certificate = |key: &str, identity| {
            tls::admin_config(&identity).map(|_| ()).map_err(|e| {
                StartError::Config(crate::config::ConfigError {
                    file: config.source.clone(),
                    key: key.into(),
                    reason: e.to_string(),
                })
            })
        };
        if config.device.tls_cert.is_some() {
            operator_certificate("device.tls_cert", setup::server_identity(&config))?;
        }
        if config.admin.tls_cert.is_some() {
            operator_certificate("admin.tls_cert", setup::admin_identity(&config))?;
        }
        let listeners = bind_listeners(&config)?;
        let (created, ca) = setup::ensure(&config, &clock)?;
        let lock = crate::serve_lock::acquire(&config.data_dir)?;
        let store = Store::open(&location)?;
        let catalog = store.read(|c| {
            SharedCatalog::load(c, config.catalog.as_deref())
                .map_err(|reason| crate::error::Error::invalid("catalog", reason))
        })?;
        if config.role == crate::config::Role::Cloud {
            for shared in store.read(crate::sync::cloud::shared_warnings)? {
                tracing::warn!("{shared}");
            }
        }
        let call_home =
            crate::notify::CallHome::start(&config, clock.clone()).map_err(StartError::Serve)?;
        let call_home = Some(call_home);
        Ok(Self {
            catalog: Arc::new(catalog),
            notifier: Arc::new(Notifier::new(syslog, call_home, clock.clone())),
            config,
            clock,
            store,
            ca: Arc::new(ca),
            created,
            _lock: lock,
            listeners: std::sync::Mutex::new(Some(listeners)),
        })
    }

    /// The listeners bound at `open` (the first call), or freshly bound ones.
    pub fn bind(&self) -> Result<Listeners, StartError> {
        let bound = self.listeners.lock().ok().and_then(|mut l| l.take());
        match bound {
            Some(listeners) => Ok(listeners),
            None => bind_listeners(&self.config),
        }
    }

    pub fn tls(&self) -> Result<TlsConfigs, StartError> {
        let device = tls::device_config(
            &setup::server_identity(&self.config),
            self.ca
                .certificate_der()
                .map_err(crate::error::Error::from)?,
            self.clock.clone(),
        )?;
        let admin = tls::admin_config(&setup::admin_identity(&self.config))?;
        Ok(TlsConfigs { device, admin })
    }

    /// Serves until `shutdown` resolves. Must run inside an actix system.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        let tls = self.tls()?;
        let sync_service = Arc::new(self.sync_service()?);
        let cloud_end = Arc::new(crate::sync::live::cloud_end::CloudEnd {
            store: self.store.clone(),
            config: sync_service.config.clone(),
            clock: self.clock.clone(),
            keys: sync_service.keys.clone(),
            ca: self.ca.clone(),
            notifier: self.notifier.clone(),
        });
        let state = AppState {
            device: DeviceService::new(
                self.store.clone(),
                self.ca.clone(),
                self.clock.clone(),
                self.catalog.clone(),
                self.notifier.clone(),
            ),
            store: self.store.clone(),
            config: Arc::new(self.config.clone()),
            notifier: self.notifier.clone(),
            catalog: self.catalog.clone(),
            metrics: Arc::new(Metrics::default()),
            cloud_end,
        };
        let stop_jobs = Arc::new(AtomicBool::new(false));
        let jobs = Arc::new(self.jobs()?)
            .spawn(stop_jobs.clone())
            .map_err(StartError::Serve)?;
        let sync = sync_service
            .spawn(stop_jobs.clone())
            .map_err(StartError::Serve)?;
        let guard = spawn_clock_guard(self.clock_guard(), self.store.clone(), stop_jobs.clone())?;
        let watch = spawn_leadership_watch(
            self.store.clone(),
            crate::store::leader::node_name(&self.config.data_dir),
            self.clock.clone(),
            stop_jobs.clone(),
        )?;
        self.notifier.started(format!(
            "role {:?}, smart account {:?}",
            self.config.role, self.config.account
        ));
        let protection = self.protection();
        // A database thread that ended (a panic) takes every write with it
        // and cannot be restarted in this process: stop serving and fail,
        // so the service manager starts the satellite again.
        let ended = Arc::new(std::sync::Mutex::new(None));
        let shutdown = {
            let (store, ended) = (self.store.clone(), ended.clone());
            async move {
                tokio::select! {
                    () = shutdown => {}
                    thread = store_thread_ended(&store) => {
                        tracing::error!(thread, "a database thread ended; the satellite stops so that its service manager restarts it");
                        if let Ok(mut ended) = ended.lock() {
                            *ended = Some(thread);
                        }
                        // A wedged writer can hold the graceful stop (a job
                        // waiting on it) for ever: exit anyway.
                        std::thread::spawn(|| {
                            std::thread::sleep(std::time::Duration::from_secs(15));
                            tracing::error!("the stop did not finish in 15 s; exiting");
                            std::process::exit(70);
                        });
                    }
                }
            }
        };
        let served = http::serve(state, listeners, tls, protection, shutdown).await;
        stop_jobs.store(true, Ordering::Relaxed);
        let _ = jobs.join();
        let _ = sync.join();
        let _ = guard.join();
        if let Some(watch) = watch {
            let _ = watch.join();
        }
        self.notifier.stopped();
        if let Some(thread) = ended.lock().ok().and_then(|e| *e) {
            return Err(StartError::Serve(std::io::Error::other(format!(
                "the database thread {thread:?} ended; restart the satellite (under systemd it is \
                 restarted by Restart=on-failure)"
            ))));
        }
        served.map_err(StartError::Serve)
    }

    /// The per-listener and per-source limits, within the open-file limit.
    pub fn protection(&self) -> http::Protection {
        let files = crate::http::limits::raise_open_file_limit();
        // Room for the admin listener, the database and the log.
        let device_max = self
            .config
            .device
            .max_connections
            .min(files.saturating_sub(512).max(64));
        if device_max < self.config.device.max_connections {
            tracing::warn!(
                configured = self.config.device.max_connections,
                used = device_max,
                open_files = files,
                "device.max_connections is above what the open-file limit allows; raise LimitNOFILE"
            );
        }
        let device = http::limits::Limits {
            connections_per_source: self
                .config
                .device
                .max_connections_per_source
                .min(device_max),
            anonymous_per_minute: Some(self.config.device.registrations_per_minute),
            body_deadline: std::time::Duration::from_secs(10),
        };
        let admin = http::limits::Limits {
            connections_per_source: 32,
            anonymous_per_minute: None,
            body_deadline: std::time::Duration::from_secs(30),
        };
        // Handshakes take a quarter of the device listener at most, so three
        // quarters stay for routers whose handshake proved them.
        let device_handshakes = http::handshake::HandshakeLimits {
            total: (device_max / 4).max(16),
            deadline: std::time::Duration::from_secs(5),
            deadline_under_pressure: std::time::Duration::from_secs(1),
        };
        let admin_max = 256;
        let admin_handshakes = http::handshake::HandshakeLimits {
            total: admin_max / 4,
            deadline: std::time::Duration::from_secs(5),
            deadline_under_pressure: std::time::Duration::from_secs(1),
        };
        http::Protection {
            device: http::limits::Guard::new(device, self.clock.clone()),
            device_gate: http::handshake::HandshakeGate::new(
                "device",
                device_handshakes,
                self.clock.clone(),
            ),
            device_max_connections: device_max,
            admin: http::limits::Guard::new(admin, self.clock.clone()),
            admin_gate: http::handshake::HandshakeGate::new(
                "admin",
                admin_handshakes,
                self.clock.clone(),
            ),
            admin_max_connections: admin_max,
        }
    }

    /// Keeps the database's high-water mark and notices a clock set back.
    pub fn clock_guard(&self) -> ClockGuard {
        ClockGuard::new(self.store.clone(), self.clock.clone())
    }

    /// The import-folder watcher and the scheduled usage export.
    pub fn sync_service(&self) -> Result<SyncService, StartError> {
        let export_schedule = crate::config::check_cron(&self.config.sync.export_schedule)
            .map_err(|reason| crate::error::Error::invalid("sync.export_schedule", reason))?;
        let live_schedule = crate::config::check_cron(&self.config.sync.schedule)
            .map_err(|reason| crate::error::Error::invalid("sync.schedule", reason))?;
        let keys = Keys::load(&self.config, self.clock.unix()).map_err(|e| match e {
            crate::sync::SyncError::Service(e) => StartError::Setup(e),
            other => StartError::Setup(crate::error::Error::invalid("data_dir", other.to_string())),
        })?;
        Ok(SyncService {
            store: self.store.clone(),
            config: Arc::new(self.config.clone()),
            clock: self.clock.clone(),
            notifier: self.notifier.clone(),
            keys: Arc::new(keys),
            export_schedule,
            live_schedule,
        })
    }

    /// The clock-driven jobs (term expiry, Periodic Record, usage snapshots).
    pub fn jobs(&self) -> Result<Jobs, StartError> {
        let report_schedule = crate::config::check_cron(&self.config.reports.schedule)
            .map_err(|reason| crate::error::Error::invalid("reports.schedule", reason))?;
        Ok(Jobs {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            clock: self.clock.clone(),
            account: self.config.account.clone(),
            report_schedule,
            notifier: self.notifier.clone(),
        })
    }
}

/// Binds both configured addresses.
fn bind_listeners(config: &Config) -> Result<Listeners, StartError> {
    let bind = |key, addr| {
        TcpListener::bind(addr).map_err(|source| StartError::Bind { key, addr, source })
    };
    Ok(Listeners {
        device: bind("device.listen", config.device.listen)?,
        admin: bind("admin.listen", config.admin.listen)?,
    })
}

/// Checks the clock every few seconds until `stop` is set.
fn spawn_clock_guard(
    guard: ClockGuard,
    store: Store,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name("clock".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Recorded by the node that writes: the pair's active one.
                let ticked = store.is_active().then(|| guard.tick());
                if let Some(Err(e)) = ticked {
                    tracing::error!(error = %e, "could not record the clock's high-water mark");
                }
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            }
        })
        .map_err(StartError::Serve)
}

/// Records each time this node becomes the active one of a pair on a
/// shared database (`status`, the event log): the writer changes the role,
/// this tells the database. The embedded database has one node: nothing.
fn spawn_leadership_watch(
    store: Store,
    host: String,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>, StartError> {
    if store.location().embedded_file().is_some() {
        return Ok(None);
    }
    std::thread::Builder::new()
        .name("leadership".into())
        .spawn(move || {
            let mut recorded = false;
            while !stop.load(Ordering::Relaxed) {
                let active = store.is_active();
                if active && !recorded {
                    let (host, now) = (host.clone(), clock.unix());
                    recorded = match store.writer().write_blocking(move |c| {
                        crate::store::leader::record_takeover(c, &host, now)
                    }) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot record that this node is active");
                            false
                        }
                    };
                }
                recorded &= active;
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        })
        .map(Some)
        .map_err(StartError::Serve)
}

/// Resolves with the name of the store's thread that ended, if one does.
async fn store_thread_ended(store: &crate::store::Store) -> &'static str {
    loop {
        if let Some(thread) = store.stopped_thread() {
            return thread;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Called once every connection has closed after a clean stop: a database
/// left whole lets the next start skip its full integrity check.
pub fn record_clean_stop(database: &std::path::Path) {
    crate::store::record_clean_stop(database);
}
