//! The HTTP layer: thin. It reads requests, hands them to the services and
//! maps their errors once (`error`).

mod admin;
mod device;

pub mod handshake;
pub mod limits;
mod listener;
mod sync_live;
pub mod tls;

use crate::device::{DeviceService, PeerCertificate};
use crate::error::http as error;
use crate::metrics::Metrics;
use crate::store::Store;
use actix_web::dev::{Extensions, Service, ServiceRequest};
use actix_web::{web, App, HttpResponse};
use futures_util::future::{ready, Either};
use rustls::ServerConfig;
use std::any::Any;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub config: Arc<crate::config::Config>,
    pub notifier: Arc<crate::notify::Notifier>,
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

/// How much each listener takes before it refuses (see `limits` and
/// `handshake`).
pub struct Protection {
    pub device: Arc<limits::Guard>,
    pub device_gate: Arc<handshake::HandshakeGate>,
    pub device_max_connections: usize,
    pub admin: Arc<limits::Guard>,
    pub admin_gate: Arc<handshake::HandshakeGate>,
    pub admin_max_connections: usize,
}

impl Protection {
    fn device_gate_total(&self) -> usize {
        self.device_gate.limits().total
    }
    fn admin_gate_total(&self) -> usize {
        self.admin_gate.limits().total
    }
}

/// A client must finish the TLS handshake within this time...
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// ...and send a request's headers within this time once connected.
const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// An idle kept-alive connection is closed after this time.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Workers of the device listener; the admin listener has one of its own,
/// so an attack on the device port leaves it reachable.
const DEVICE_WORKERS: usize = 2;

type TlsStream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;

/// Records the client certificate of each TLS connection for the handlers.
fn remember_peer_certificate(connection: &dyn Any, data: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<TlsStream>() else {
        return;
    };
    let (_, session) = tls.get_ref();
    if let Some(cert) = session.peer_certificates().and_then(|chain| chain.first()) {
        data.insert(PeerCertificate {
            fingerprint: crate::pki::sha256(cert.as_ref()),
        });
    }
}

/// Counts the connection against its source address for as long as it lives.
fn count_connection(guard: &Arc<limits::Guard>, connection: &dyn Any, data: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<TlsStream>() else {
        return;
    };
    if let Ok(peer) = tls.get_ref().0.peer_addr() {
        data.insert(guard.connect(peer.ip()));
    }
}

/// Refuses a request over its source's limits, else runs it with a deadline
/// on its body. `anonymous` requests (no client certificate) are rate limited.
fn guarded<S>(
    guard: &limits::Guard,
    mut req: ServiceRequest,
    srv: &S,
    rate_limit_anonymous: bool,
) -> Either<
    S::Future,
    futures_util::future::Ready<Result<actix_web::dev::ServiceResponse, actix_web::Error>>,
>
where
    S: Service<
        ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let anonymous = rate_limit_anonymous && req.conn_data::<PeerCertificate>().is_none();
    match guard.check(&req, anonymous) {
        Ok(()) => {
            guard.deadline_body(&mut req);
            Either::Left(srv.call(req))
        }
        Err(refusal) => {
            let (code, message) = match refusal {
                limits::Refusal::TooManyConnections(cap) => (
                    "too_many_connections",
                    format!("this address already holds {cap} connections; reuse one or close some"),
                ),
                limits::Refusal::TooManyRequests(limit) => (
                    "too_many_requests",
                    format!("at most {limit} requests without a client certificate per minute from one address; retry later"),
                ),
            };
            let response = HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", "60"))
                .insert_header((actix_web::http::header::CONNECTION, "close"))
                .content_type("application/json")
                .body(error::error_body(code, &message));
            Either::Right(ready(Ok(req.into_response(response))))
        }
    }
}

/// Serves both listeners until `shutdown` resolves, then drains in-flight
/// requests (each already committed or refused) and returns.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    tls: TlsConfigs,
    protection: Protection,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let device_state = state.clone();
    let (device_guard, device_counter) = (protection.device.clone(), protection.device.clone());
    // Each worker of actix-tls accepts this many handshakes at once; the
    // gates keep well under it, so it is never what refuses a router.
    actix_tls::accept::max_concurrent_tls_connect(
        protection
            .device_gate_total()
            .max(protection.admin_gate_total())
            .saturating_mul(2),
    );
    let device_gate = protection.device_gate.clone();
    let device = listener::server(
        listeners.device,
        listener::Settings {
            name: "device",
            workers: DEVICE_WORKERS,
            max_connections: protection.device_max_connections,
            gate: device_gate,
            tls: tls.device.clone(),
            on_connect: Arc::new(move |connection, data| {
                remember_peer_certificate(connection, data);
                count_connection(&device_counter, connection, data);
            }),
            handshake_deadline: HANDSHAKE_DEADLINE,
            header_deadline: HEADER_DEADLINE,
            keep_alive: KEEP_ALIVE,
        },
        move || {
            let guard = device_guard.clone();
            App::new()
                .app_data(device_state.clone())
                .wrap_fn(move |req, srv| guarded(&guard, req, srv, true))
                .wrap_fn(|req, srv| {
                    let span = tracing::info_span!("http", listener = "device", method = %req.method(), path = %req.path());
                    // The handler reads the arrival time to time the message by type.
                    crate::metrics::REQUEST_STARTED.scope(std::time::Instant::now(), srv.call(req).instrument(span))
                })
                .route("/SmartTransport", web::post().to(device::smart_transport))
                .route(crate::notify::callhome::PATH, web::post().to(device::call_home))
                .configure(sync_live::routes)
                .default_service(web::to(error::not_found))
        },
    )?;

    let admin_state = state.clone();
    let api = web::Data::new(crate::ops::Service::new(
        state.store.clone(),
        state.catalog.clone(),
        state.device.clock().clone(),
        state.config.clone(),
        state.notifier.clone(),
    ));
    let flash = web::Data::new(crate::portal::Flash::default());
    let (admin_guard, admin_counter) = (protection.admin.clone(), protection.admin.clone());
    let admin = listener::server(
        listeners.admin,
        listener::Settings {
            name: "admin",
            workers: 1,
            max_connections: protection.admin_max_connections,
            gate: protection.admin_gate.clone(),
            tls: tls.admin.clone(),
            on_connect: Arc::new(move |connection, data| {
                count_connection(&admin_counter, connection, data)
            }),
            handshake_deadline: HANDSHAKE_DEADLINE,
            header_deadline: HEADER_DEADLINE,
            keep_alive: KEEP_ALIVE,
        },
        move || {
            let guard = admin_guard.clone();
            App::new()
                .app_data(admin_state.clone())
                // API answers carry secrets (a new token, a client secret, a
                // backup holding ca.key): never cached, never sniffed, HTTPS
                // only. Answers that set their own Cache-Control keep it.
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add((actix_web::http::header::CACHE_CONTROL, "no-store"))
                        .add((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((
                            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                            "max-age=31536000",
                        )),
                )
                .wrap_fn(move |req, srv| guarded(&guard, req, srv, false))
                .wrap_fn(|req, srv| {
                    let span = tracing::info_span!("http", listener = "admin", method = %req.method(), path = %req.path());
                    srv.call(req).instrument(span)
                })
                // HEAD too: what load balancers and uptime checks often send.
                .route("/healthz", web::get().to(admin::healthz))
                .route("/healthz", web::head().to(admin::healthz))
                .route("/readyz", web::get().to(admin::readyz))
                .route("/readyz", web::head().to(admin::readyz))
                .route("/metrics", web::get().to(admin::metrics))
                .route("/metrics", web::head().to(admin::metrics))
                .app_data(api.clone())
                .app_data(flash.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    crate::api::ApiError::invalid("query", e.to_string()).into()
                }))
                .configure(crate::api::configure)
                .configure(crate::portal::configure)
                .default_service(web::to(error::not_found))
        },
    )?;

    // After a burst of connections, memory they freed goes back to the
    // system (see `memory`).
    let watched = (protection.device.clone(), protection.admin.clone());
    let memory = actix_web::rt::spawn(async move {
        let mut burst = crate::memory::AfterBurst::default();
        loop {
            actix_web::rt::time::sleep(Duration::from_secs(2)).await;
            let open = watched.0.all_open_connections() + watched.1.all_open_connections();
            if burst.ended(open) {
                crate::memory::give_back();
                tracing::debug!(open, "a burst of connections ended; freed memory returned");
            }
        }
    });
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
    memory.abort();
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
