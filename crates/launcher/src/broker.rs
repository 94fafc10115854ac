//! The broker as the launched system sees it: a TCP proxy in front of the
//! NATS server, which the launcher can take down and bring back.
//!
//! The services are given the proxy's address as `NATS_URL`. "Scaling"
//! `nats` to 0 (the control API, or a scenario's `scale` event) closes
//! every connection through it and refuses new ones until it is scaled to
//! 1 again: to the services that is the broker going away, at the network
//! level, while the server itself (and what its streams hold) stays, as a
//! restarted NATS with file storage would. On Compose and Kubernetes the
//! same `scale nats` stops the real server.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The service name the control API and scenarios use for the broker.
pub const NAME: &str = "nats";

/// A running proxy; dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct BrokerProxy {
    addr: SocketAddr,
    upstream: String,
    up: watch::Sender<bool>,
    connections: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl BrokerProxy {
    /// Listens on a free loopback port, forwarding to `upstream`
    /// (`host:port` of the real server).
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let connections = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            up.clone(),
            connections.clone(),
        ));
        Ok(Self {
            addr,
            upstream,
            up,
            connections,
            accept,
        })
    }

    /// `nats://127.0.0.1:<port>`: what the services are given.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// The real server behind it.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Down: every connection closed now, new ones refused. Up: accepted
    /// and forwarded again.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Connections forwarded since start.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// `host:port` of the first server in a `NATS_URL` (`nats://user:pw@host:port,...`),
/// with NATS's default port when it names none.
pub fn upstream_of(url: &str) -> String {
    let first = url.split(',').next().unwrap_or(url).trim();
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    }
}

impl BrokerProxy {
    /// The broker as the control API shows it: one "replica", the proxy,
    /// `ready` while up; none while down.
    pub(crate) fn status(&self) -> super::status::ServiceStatus {
        let up = self.is_up();
        super::status::ServiceStatus {
            name: NAME,
            desired: usize::from(up),
            restarts: 0,
            env: Default::default(),
            replicas: if up {
                vec![super::status::ReplicaInfo {
                    replica: 0,
                    url: self.url(),
                    pid: None,
                    restarts: 0,
                    state: super::status::ReplicaState::Ready,
                }]
            } else {
                Vec::new()
            },
        }
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.set_up(false);
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    up: watch::Sender<bool>,
    connections: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !*up.borrow() {
            // Down: the connection is closed at once, as by a host whose
            // server is not running.
            drop(client);
            continue;
        }
        connections.fetch_add(1, Ordering::Relaxed);
        let mut down = up.subscribe();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // Taken down: both ends are dropped, closing them.
                _ = down.wait_for(|up| !*up) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// An echo server standing in for NATS.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(proxy: &BrokerProxy) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(proxy.addr).await?;
        s.write_all(b"PING").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[test]
    fn the_upstream_is_the_first_servers_host_and_port() {
        assert_eq!(upstream_of("nats://127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(upstream_of("nats://nats"), "nats:4222");
        assert_eq!(upstream_of("nats://u:p@h:5000,nats://h2:4222"), "h:5000");
        assert_eq!(upstream_of("localhost:4333"), "localhost:4333");
    }

    #[tokio::test]
    async fn forwards_then_cuts_then_forwards_again() {
        let proxy = BrokerProxy::start(echo().await.to_string()).await.unwrap();
        assert_eq!(round_trip(&proxy).await.unwrap(), b"PING");

        // A connection open when the broker goes down is closed.
        let mut open = TcpStream::connect(proxy.addr).await.unwrap();
        open.write_all(b"PING").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        proxy.set_up(false);
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            open.read_to_end(&mut rest),
        )
        .await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        // And new ones get nothing.
        assert!(round_trip(&proxy).await.is_err());

        proxy.set_up(true);
        assert_eq!(round_trip(&proxy).await.unwrap(), b"PING");
        assert!(proxy.connections() >= 3);
    }
}
