//! Ports for replicas: free ones chosen together, and whether a
//! restarted replica's old port can still be had.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// `n` distinct free TCP ports on `host`, none of them in `taken`. All
/// listeners are held until every port is chosen, so the OS cannot hand
/// out one port twice. Another process could take a port before the
/// replica binds it; on loopback, in practice, nothing does.
pub(super) fn free_ports(host: Ipv4Addr, n: usize, taken: &[u16]) -> std::io::Result<Vec<u16>> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind(SocketAddr::from((host, 0)))?;
        let port = listener.local_addr()?.port();
        if !taken.contains(&port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

/// Whether a service could listen on `port` now. With `SO_REUSEADDR`, as
/// tokio's listener binds, so connections of the previous process still
/// in TIME_WAIT do not count as taken.
pub(super) fn port_is_free(host: Ipv4Addr, port: u16) -> bool {
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return false;
    };
    socket.set_reuseaddr(true).is_ok()
        && socket.bind(SocketAddr::from((host, port))).is_ok()
        && socket.listen(1).is_ok()
}
