//! Serving with a bounded graceful shutdown.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::Router;
use tokio::net::TcpListener;

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
/// lets in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stopping_tx.send(());
    });
    let deadline = async move {
        if stopping_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(?grace, "shutdown grace elapsed; abandoning requests still in flight");
            Ok(())
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
    addr: SocketAddr,
}

impl Server {
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
            addr,
        })
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
        serve(self.listener, self.router, shutdown, self.grace).await
    }
}

/// A service's whole life as a process: telemetry up, build, serve until
/// SIGTERM/Ctrl-C, flush spans. Each service's `run` (its binary, and
/// `loadgen serve <service>`) is this with its own `build`.
pub async fn run_process<F, Fut>(
    identity: crate::ServiceIdentity,
    telemetry: &crate::TelemetryConfig,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(crate::ServiceIdentity) -> Fut,
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
