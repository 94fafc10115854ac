//! Serving: each connection on hyper with the mesh's own clock on it,
//! and a bounded graceful shutdown.
//!
//! `axum::serve` has no timeouts at all: a client could hold a
//! connection forever with half a request head, an idle keep-alive, or a
//! body that never arrives, and with a few hundred of them hold every
//! concurrency slot of a replica. So the mesh runs hyper itself:
//!
//! - a request head must arrive within `HEADER_READ_TIMEOUT` of its first
//!   byte, and a connection with no request in flight and no bytes moving
//!   is closed after `IDLE_TIMEOUT` ([`connection`]);
//! - a request body must arrive in full within `BODY_READ_TIMEOUT` of its
//!   head, or reading it fails with [`BodyTimeout`] ([`body`]);
//! - what hyper would refuse with a bare status, or not at all, is
//!   answered with the JSON error body: over [`MAX_HEADER_FIELDS`] header
//!   fields (431), HTTP/1.1 without exactly one valid `Host` (400)
//!   ([`request`]).

mod body;
mod connection;
mod request;
mod timeouts;

use std::{future::Future, net::SocketAddr, pin::pin, time::Duration};

use axum::Router;
use futures::FutureExt as _;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub use self::{body::BodyTimeout, request::MAX_HEADER_FIELDS, timeouts::Timeouts};
use crate::{config::TelemetryConfig, identity::ServiceIdentity};

/// Header fields hyper's parser makes room for. Above our own limit
/// ([`MAX_HEADER_FIELDS`]) so that a request somewhat over it reaches the
/// mesh and gets the JSON 431; hyper refuses one with more than this with
/// a bare 431 itself. Each parse holds two arrays of this many 32-byte
/// entries (64 KiB at 1024) for the time of the parse only.
const PARSER_MAX_HEADERS: usize = 1024;

/// Resolves on SIGTERM (what Docker and Kubernetes send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Serves `router` until `shutdown` resolves, then stops accepting and
/// lets in-flight requests finish for at most `grace`. Every connection
/// is held to `timeouts`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    // `draining` tells every connection to finish its requests and close;
    // each connection holds a clone of `open`, so `open_tx.closed()`
    // resolves when the last one has.
    let (draining_tx, draining) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(serve_connection(
            stream,
            remote,
            router.clone(),
            timeouts,
            draining.clone(),
            open.clone(),
        ));
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    drop(listener);
    let _ = draining_tx.send(true);
    drop(open);
    tokio::select! {
        () = open_tx.closed() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "shutdown grace elapsed; abandoning requests still in flight");
        }
    }
    Ok(())
}

/// A failed `accept`: a connection that died in the backlog is nothing;
/// anything else (out of file descriptors, most likely) is logged, and
/// accepting pauses a second rather than spinning (as `axum::serve`).
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection, HTTP/1.1 or HTTP/2 (prior knowledge), until the client
/// closes it, the server drains, or its clock runs out.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    mut draining: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    let clock = connection::Clock::new(timeouts);
    let io = TokioIo::new(clock.watch(stream));
    let service = request::PerRequest::new(router, remote, clock.clone(), timeouts.body_read);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_headers(PARSER_MAX_HEADERS)
        // Not hyper's: in hyper 1.12 that clock also runs while a
        // keep-alive connection waits for its next request, so it would
        // close idle connections after the header timeout (10 s) while
        // callers keep them pooled for 30 s. The connection's own clock
        // starts it at the head's first byte.
        .header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut drained = pin!(async move { draining.wait_for(|d| *d).await.map(drop) }.fuse());
    let mut expired = pin!(clock.expired());
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%remote, %error, "connection ended with an error");
                }
                break;
            }
            _ = &mut drained => conn.as_mut().graceful_shutdown(),
            why = &mut expired => {
                // Dropping the connection closes the socket. Not a warning:
                // clients on bad links do this too, and a flood of
                // slow clients must not become a flood of log lines.
                tracing::debug!(%remote, "closing the connection: {why}");
                break;
            }
        }
    }
}

/// A service bound to its port and ready to run (zero2prod's
/// `Application`): binding first lets callers ask for port 0 and learn
/// the real port before serving, so tests and the launcher can run many
/// replicas side by side.
pub struct Server {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    timeouts: Timeouts,
    addr: SocketAddr,
}

impl Server {
    /// Binds `host:port`; connections get the default [`Timeouts`] unless
    /// [`Server::with_timeouts`] says otherwise (`Mesh::bind` passes the
    /// service's configured ones).
    pub async fn bind(
        host: std::net::IpAddr,
        port: u16,
        router: Router,
        grace: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind((host, port)).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            router,
            grace,
            timeouts: Timeouts::default(),
            addr,
        })
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "listening");
        serve(
            self.listener,
            self.router,
            shutdown,
            self.grace,
            self.timeouts,
        )
        .await
    }
}

/// A service's whole life as a process: telemetry up, build, serve until
/// SIGTERM/Ctrl-C, flush spans. Each service's `run` (its binary, and
/// `loadgen serve <service>`) is this with its own `build`.
pub async fn run_process<F, Fut>(
    identity: ServiceIdentity,
    telemetry: &TelemetryConfig,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(ServiceIdentity) -> Fut,
    Fut: Future<Output = anyhow::Result<Server>>,
{
    let guard = crate::telemetry::init(telemetry, &identity)?;
    let result = async {
        let server = build(identity).await?;
        server.run_until_stopped(shutdown_signal()).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "service failed");
    }
    guard.shutdown(Duration::from_secs(5)).await;
    result
}
