//! Serving a [`Receiver`]: the gRPC and the HTTP transport (each with
//! traces and logs), each on its own listener, in the background until [`RunningReceiver::shutdown`] or
//! a drop, and the endpoints to point an exporter at.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};
use tonic::transport::server::TcpIncoming;

use crate::receiver::Receiver;

/// How long [`RunningReceiver::shutdown`] lets open connections drain before
/// it stops waiting for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a running receiver's server ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("OTLP gRPC server failed: {0}")]
    Grpc(#[source] tonic::transport::Error),
    #[error("OTLP HTTP server failed: {0}")]
    Http(#[source] io::Error),
    #[error("OTLP {server} server task panicked: {source}")]
    Panicked {
        server: &'static str,
        #[source]
        source: JoinError,
    },
}

impl Receiver {
    /// Binds the gRPC and HTTP listeners (port 0 picks a free port; the
    /// chosen ones are in the returned handle) and serves both in the
    /// background until the handle is shut down or dropped.
    pub async fn start(self, grpc: SocketAddr, http: SocketAddr) -> io::Result<RunningReceiver> {
        let grpc = TcpListener::bind(grpc).await?;
        let http = TcpListener::bind(http).await?;
        self.start_with_listeners(grpc, http)
    }

    /// Like [`Receiver::start`], on listeners the caller already bound.
    /// Must be called inside a Tokio runtime.
    pub fn start_with_listeners(
        self,
        grpc: TcpListener,
        http: TcpListener,
    ) -> io::Result<RunningReceiver> {
        let grpc_addr = grpc.local_addr()?;
        let http_addr = http.local_addr()?;

        let (grpc_stop, grpc_stopped) = oneshot::channel::<()>();
        let services = tonic::transport::Server::builder()
            .add_service(crate::grpc::service(self.clone()))
            .add_service(crate::grpc::logs_service(self.clone()));
        let grpc_task = tokio::spawn(async move {
            services
                .serve_with_incoming_shutdown(TcpIncoming::from(grpc), async {
                    // A dropped sender (the handle was dropped) stops the server too.
                    let _ = grpc_stopped.await;
                })
                .await
        });

        let (http_stop, http_stopped) = oneshot::channel::<()>();
        let router = crate::http::router(self.clone());
        let http_task = tokio::spawn(async move {
            axum::serve(http, router)
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .await
        });

        Ok(RunningReceiver {
            grpc_addr,
            http_addr,
            receiver: self,
            grpc_stop,
            http_stop,
            grpc_task,
            http_task,
        })
    }
}

/// A receiver serving in the background. Derefs to its [`Receiver`].
///
/// Dropping it stops both servers (without waiting); [`shutdown`] also waits
/// for them.
///
/// [`shutdown`]: RunningReceiver::shutdown
#[derive(Debug)]
pub struct RunningReceiver {
    /// Where the gRPC server listens (the real port when 0 was asked for).
    pub grpc_addr: SocketAddr,
    /// Where the HTTP server listens (the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    receiver: Receiver,
    grpc_stop: oneshot::Sender<()>,
    http_stop: oneshot::Sender<()>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    http_task: JoinHandle<io::Result<()>>,
}

impl Deref for RunningReceiver {
    type Target = Receiver;

    fn deref(&self) -> &Receiver {
        &self.receiver
    }
}

impl RunningReceiver {
    /// The shared store (also reachable through `Deref`).
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// `http://host:port` for an OTLP gRPC exporter
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `grpc`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", connectable(self.grpc_addr))
    }

    /// `http://host:port` for an OTLP/HTTP exporter
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`; exporters append
    /// [`HTTP_TRACES_PATH`](crate::HTTP_TRACES_PATH) or
    /// [`HTTP_LOGS_PATH`](crate::HTTP_LOGS_PATH)).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", connectable(self.http_addr))
    }

    /// Stops accepting connections, lets open ones drain for a few seconds,
    /// and reports whether either server had failed. The captured spans and
    /// log records stay readable through any clone of the [`Receiver`].
    pub async fn shutdown(self) -> Result<(), ReceiverError> {
        let Self {
            receiver: _,
            grpc_stop,
            http_stop,
            mut grpc_task,
            mut http_task,
            ..
        } = self;
        // Err only means the server already ended; its result says why.
        let _ = grpc_stop.send(());
        let _ = http_stop.send(());

        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        // A client that keeps its connection open must not hang the caller:
        // after the grace period the servers are cut off.
        let grpc = match tokio::time::timeout_at(deadline, &mut grpc_task).await {
            Ok(joined) => Some(joined),
            Err(_) => {
                grpc_task.abort();
                None
            }
        };
        let http = match tokio::time::timeout_at(deadline, &mut http_task).await {
            Ok(joined) => Some(joined),
            Err(_) => {
                http_task.abort();
                None
            }
        };

        match grpc {
            Some(Ok(Err(e))) => return Err(ReceiverError::Grpc(e)),
            Some(Err(e)) => {
                return Err(ReceiverError::Panicked {
                    server: "gRPC",
                    source: e,
                });
            }
            _ => {}
        }
        match http {
            Some(Ok(Err(e))) => Err(ReceiverError::Http(e)),
            Some(Err(e)) => Err(ReceiverError::Panicked {
                server: "HTTP",
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// An address a client can dial: a wildcard bind becomes loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

    use super::*;
    use crate::samples::{sample_request, start};

    #[tokio::test]
    async fn shutdown_closes_both_ports_and_keeps_the_spans() {
        let running = start(Receiver::new()).await;
        let receiver = running.receiver().clone();
        let (grpc_addr, http_addr) = (running.grpc_addr, running.http_addr);

        // An open gRPC connection must not hold the shutdown up.
        let mut client = TraceServiceClient::connect(running.grpc_endpoint())
            .await
            .expect("gRPC connects");
        client
            .export(sample_request())
            .await
            .expect("export succeeds");

        let began = tokio::time::Instant::now();
        running.shutdown().await.expect("clean shutdown");
        assert!(
            began.elapsed() < SHUTDOWN_GRACE,
            "drained without waiting out the grace"
        );

        assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
        assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
        assert_eq!(receiver.spans().len(), 2);
    }

    #[test]
    fn wildcard_binds_give_loopback_endpoints() {
        let v4: SocketAddr = "0.0.0.0:4317".parse().expect("valid address");
        let v6: SocketAddr = "[::]:4318".parse().expect("valid address");
        assert_eq!(connectable(v4).to_string(), "127.0.0.1:4317");
        assert_eq!(connectable(v6).to_string(), "[::1]:4318");
    }
}
