//! Wiring: from a validated configuration to a running server.

use crate::clock::Clock;
use crate::config::Config;
use crate::device::DeviceService;
use crate::http::{self, tls, AppState, Listeners, TlsConfigs};
use crate::metrics::Metrics;
use crate::pki::CertificateAuthority;
use crate::setup::{self, Created};
use crate::store::Store;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Setup(#[from] crate::error::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

pub struct Satellite {
    pub config: Config,
    pub clock: Clock,
    pub store: Store,
    pub ca: Arc<CertificateAuthority>,
    pub created: Created,
}

impl Satellite {
    /// Initializes what is missing and opens the database for serving.
    pub fn open(config: Config, clock: Clock) -> Result<Self, StartError> {
        let (created, ca) = setup::ensure(&config, &clock)?;
        let store = Store::open(&config.database_path())?;
        Ok(Self {
            config,
            clock,
            store,
            ca: Arc::new(ca),
            created,
        })
    }

    /// Binds the configured addresses.
    pub fn bind(&self) -> Result<Listeners, StartError> {
        let bind = |key, addr| {
            TcpListener::bind(addr).map_err(|source| StartError::Bind { key, addr, source })
        };
        Ok(Listeners {
            device: bind("device.listen", self.config.device.listen)?,
            admin: bind("admin.listen", self.config.admin.listen)?,
        })
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
        let state = AppState {
            device: DeviceService::new(self.store.clone(), self.ca.clone(), self.clock.clone()),
            store: self.store.clone(),
            metrics: Arc::new(Metrics::default()),
        };
        http::serve(state, listeners, tls, shutdown)
            .await
            .map_err(StartError::Serve)
    }
}
