//! The HTTP layer: thin. It reads requests, hands them to the services and
//! maps their errors once (`error`).

mod admin;
mod device;
pub mod error;
mod sync_live;
pub mod tls;

use crate::device::{DeviceService, PeerCertificate};
use crate::metrics::Metrics;
use crate::store::Store;
use actix_web::dev::{Extensions, Service};
use actix_web::{web, App, HttpServer};
use rustls::ServerConfig;
use std::any::Any;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use tracing::Instrument;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub config: Arc<crate::config::Config>,
    pub notifier: Arc<crate::licensing::Notifier>,
    pub catalog: Arc<crate::licensing::catalog::SharedCatalog>,
    pub device: DeviceService,
    pub metrics: Arc<Metrics>,
    /// The cloud's end of live sync (refuses on a satellite).
    pub cloud_end: Arc<crate::sync::live::cloud_end::CloudEnd>,
}

pub struct Listeners {
    pub device: TcpListener,
    pub admin: TcpListener,
}

pub struct TlsConfigs {
    pub device: Arc<ServerConfig>,
    pub admin: Arc<ServerConfig>,
}

type TlsStream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;

/// Records the client certificate of each TLS connection for the handlers.
fn remember_peer_certificate(connection: &dyn Any, data: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<TlsStream>() else {
        return;
    };
    let (_, session) = tls.get_ref();
    if let Some(cert) = session.peer_certificates().and_then(|chain| chain.first()) {
        data.insert(PeerCertificate {
            fingerprint: openssl::sha::sha256(cert.as_ref()),
        });
    }
}

/// Serves both listeners until `shutdown` resolves, then drains in-flight
/// requests (each already committed or refused) and returns.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    tls: TlsConfigs,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let device_state = state.clone();
    let device = HttpServer::new(move || {
        App::new()
            .app_data(device_state.clone())
            .wrap_fn(|req, srv| {
                let span = tracing::info_span!("http", listener = "device", method = %req.method(), path = %req.path());
                // The handler reads the arrival time to time the message by type.
                crate::metrics::REQUEST_STARTED.scope(std::time::Instant::now(), srv.call(req).instrument(span))
            })
            .route("/SmartTransport", web::post().to(device::smart_transport))
            .route(crate::callhome::PATH, web::post().to(device::call_home))
            .configure(sync_live::routes)
            .default_service(web::to(error::not_found))
    })
    .on_connect(remember_peer_certificate)
    .disable_signals()
    .shutdown_timeout(10)
    .listen_rustls_0_23(listeners.device, (*tls.device).clone())?
    .run();

    let admin_state = state.clone();
    let api = web::Data::new(crate::api::Api {
        store: state.store.clone(),
        catalog: state.catalog.clone(),
        clock: state.device.clock().clone(),
        config: state.config.clone(),
        notifier: state.notifier.clone(),
        limiter: Default::default(),
    });
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(admin_state.clone())
            .wrap_fn(|req, srv| {
                let span = tracing::info_span!("http", listener = "admin", method = %req.method(), path = %req.path());
                srv.call(req).instrument(span)
            })
            .route("/healthz", web::get().to(admin::healthz))
            .route("/readyz", web::get().to(admin::readyz))
            .route("/metrics", web::get().to(admin::metrics))
            .app_data(api.clone())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                crate::api::ApiError::invalid("query", e.to_string()).into()
            }))
            .configure(crate::api::configure)
            .default_service(web::to(error::not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(10)
    .listen_rustls_0_23(listeners.admin, (*tls.admin).clone())?
    .run();

    let device_handle = device.handle();
    let admin_handle = admin.handle();
    let device_task = actix_web::rt::spawn(device);
    let admin_task = actix_web::rt::spawn(admin);
    shutdown.await;
    tracing::info!("shutting down: finishing requests in flight");
    device_handle.stop(true).await;
    admin_handle.stop(true).await;
    let _ = device_task.await;
    let _ = admin_task.await;
    Ok(())
}

/// Listens for SIGTERM and SIGINT from now on (so a signal sent right after
/// start-up is not lost) and resolves when one arrives. Call it inside the
/// runtime.
pub fn termination_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
