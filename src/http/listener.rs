//! One TLS listener: the actix server pieces put together by hand, so that
//! a connection meets the handshake gate (`handshake`) before its TLS
//! handshake starts. (actix-web's `HttpServer` starts the handshake of
//! every accepted connection and offers no hook before it.)

use super::handshake::HandshakeGate;
use actix_http::{HttpService, Request, Response, TlsAcceptorConfig};
use actix_service::{
    apply_fn_factory, map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt,
};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Extensions};
use actix_web::rt::net::TcpStream;
use futures_util::future::LocalBoxFuture;
use rustls::ServerConfig;
use std::any::Any;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Called once a connection's handshake is done, with its TLS stream.
pub type OnConnect = Arc<dyn Fn(&dyn Any, &mut Extensions) + Send + Sync>;

/// How one listener serves.
pub struct Settings {
    pub name: &'static str,
    pub workers: usize,
    /// Connections at once, handshakes included.
    pub max_connections: usize,
    pub gate: Arc<HandshakeGate>,
    pub tls: Arc<ServerConfig>,
    pub on_connect: OnConnect,
    /// The longest any handshake may take (the gate shortens it under
    /// pressure).
    pub handshake_deadline: Duration,
    pub header_deadline: Duration,
    pub keep_alive: Duration,
}

/// Builds the server for `listener`; `app` makes each worker's App.
pub fn server<F, I, S, B>(
    listener: TcpListener,
    settings: Settings,
    app: F,
) -> std::io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let Settings {
        name,
        workers,
        max_connections,
        gate,
        tls,
        on_connect,
        handshake_deadline,
        header_deadline,
        keep_alive,
    } = settings;
    let tls = (*tls).clone();
    Ok(builder
        .workers(workers)
        .max_concurrent_connections(max_connections.div_ceil(workers).max(1))
        .disable_signals()
        .shutdown_timeout(10)
        .listen(name, listener, move || {
            let shutdown = shutdown.clone();
            let (gate, admitted) = (gate.clone(), gate.clone());
            let on_connect = on_connect.clone();
            let http = HttpService::build()
                .keep_alive(keep_alive)
                .client_request_timeout(header_deadline)
                .client_disconnect_timeout(Duration::from_secs(1))
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .on_connect_ext(move |io: &TlsStream<TcpStream>, data: &mut Extensions| {
                    if let Ok(peer) = io.get_ref().0.peer_addr() {
                        gate.completed(peer);
                    }
                    on_connect(io as &dyn Any, data);
                })
                .finish(map_config(
                    app()
                        .into_factory()
                        .map_err(|err| err.into().error_response()),
                    // Every listener here is TLS: connection_info says https.
                    |_| AppConfig::default(),
                ))
                .rustls_0_23_with_config(
                    tls.clone(),
                    TlsAcceptorConfig::default().handshake_timeout(handshake_deadline),
                );
            apply_fn_factory(http, move |io: TcpStream, srv: &_| {
                admit(admitted.clone(), io, srv)
            })
        })?
        .run())
}

/// Lets a connection start its handshake if the gate has room, and cuts it
/// off if the handshake outlasts the gate's deadline.
fn admit<S>(
    gate: Arc<HandshakeGate>,
    io: TcpStream,
    service: &S,
) -> LocalBoxFuture<'static, Result<(), S::Error>>
where
    S: Service<TcpStream, Response = ()>,
    S::Future: 'static,
{
    let permit = io.peer_addr().ok().and_then(|peer| gate.admit(peer));
    let Some(permit) = permit else {
        // Dropped: closed before a byte of TLS is read.
        return Box::pin(async { Ok(()) });
    };
    let deadline = gate.deadline();
    let connection = service.call(io);
    Box::pin(async move {
        tokio::pin!(connection);
        let cut_off = async {
            tokio::select! {
                () = actix_web::rt::time::sleep(deadline) => {}
                () = permit.evicted() => {}
            }
        };
        tokio::select! {
            served = &mut connection => served,
            () = cut_off => {
                if permit.completed() {
                    connection.await
                } else {
                    // Dropping the connection closes it.
                    Ok(())
                }
            }
        }
    })
}
