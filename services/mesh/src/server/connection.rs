//! The connection's clock: how long a client may take to send a request
//! head, and how long a connection may sit idle.
//!
//! A connection is in one of three states, each with its own limit:
//!
//! - **in flight**: a request has been handed to the router and its
//!   response is not ready yet. No connection limit: the handler's work is
//!   bounded by its own deadlines, and its body by `BODY_READ_TIMEOUT`.
//! - **idle**: nothing in flight. `IDLE_TIMEOUT` counts from the last
//!   response (and from every write of it, so a large response being
//!   read is not idle, and one whose client stopped reading is).
//! - **reading a head**: idle, and the first bytes of a request arrived.
//!   `HEADER_READ_TIMEOUT` counts from those bytes until the head is
//!   complete and the request in flight.
//!
//! It works on bytes and requests, not on HTTP framing, so HTTP/1.1 and
//! HTTP/2 are held to it alike; Go's `ReadHeaderTimeout` and
//! `IdleTimeout` are the same pair.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

use super::timeouts::Timeouts;

/// One connection's clock, shared by its socket ([`Watched`]), its
/// requests ([`InFlight`]) and the task serving it ([`Clock::expired`]).
#[derive(Clone, Debug)]
pub(super) struct Clock(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    timeouts: Timeouts,
    state: Mutex<State>,
    /// Woken when a deadline moves earlier (a head starts) or appears
    /// (the last request in flight is answered).
    changed: Notify,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the connection last had work: accepted, answered, or wrote.
    idle_since: Instant,
    /// When the first bytes of the next request head arrived, if any did.
    head_since: Option<Instant>,
}

/// Why a connection's clock ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    HeaderRead(std::time::Duration),
    Idle(std::time::Duration),
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HeaderRead(limit) => {
                write!(f, "no complete request head within {limit:?}")
            }
            Self::Idle(limit) => write!(f, "idle for {limit:?}"),
        }
    }
}

// === impl Clock ===

impl Clock {
    pub(super) fn new(timeouts: Timeouts) -> Self {
        Self(Arc::new(Shared {
            timeouts,
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                head_since: None,
            }),
            changed: Notify::new(),
        }))
    }

    /// `io`, reporting what it reads and writes to this clock.
    pub(super) fn watch<T>(&self, io: T) -> Watched<T> {
        Watched {
            io,
            clock: self.clone(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock is still sound.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request was handed to the router: its head is complete.
    pub(super) fn request_started(&self) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.head_since = None;
        InFlight(self.clone())
    }

    /// Bytes arrived. On an idle connection they start a request head.
    fn received(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
            drop(state);
            self.0.changed.notify_waiters();
        }
    }

    /// Bytes left: a response is still being taken, so not idle yet.
    fn sent(&self) {
        let mut state = self.state();
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }

    /// When, and why, the connection must be closed as things stand;
    /// `None` while a request is in flight.
    fn deadline(&self) -> Option<(Instant, Expired)> {
        let Timeouts {
            header_read, idle, ..
        } = self.0.timeouts;
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        Some(match state.head_since {
            Some(since) => (since + header_read, Expired::HeaderRead(header_read)),
            None => (state.idle_since + idle, Expired::Idle(idle)),
        })
    }

    /// Resolves when the connection has been idle, or reading a head,
    /// for too long.
    pub(super) async fn expired(&self) -> Expired {
        loop {
            // Registered before the state is read: `notify_waiters`
            // reaches a `Notified` from its creation, so no change is
            // missed between the two.
            let changed = self.0.changed.notified();
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    // Woken early by a change, or at a deadline that a
                    // write may have moved later: look again either way.
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A request in flight on a connection; the connection's idle clock
/// starts again when the last one is dropped (its response is ready).
#[derive(Debug)]
pub(super) struct InFlight(Clock);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.head_since = None;
            drop(state);
            self.0.0.changed.notify_waiters();
        }
    }
}

pin_project! {
    /// A connection's socket, telling its [`Clock`] when bytes move.
    #[derive(Debug)]
    pub(super) struct Watched<T> {
        #[pin]
        io: T,
        clock: Clock,
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = ready!(this.io.poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() > before {
            this.clock.received();
        }
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = ready!(this.io.poll_write(cx, buf));
        if matches!(result, Ok(n) if n > 0) {
            this.clock.sent();
        }
        Poll::Ready(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = ready!(this.io.poll_write_vectored(cx, bufs));
        if matches!(result, Ok(n) if n > 0) {
            this.clock.sent();
        }
        Poll::Ready(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn clock() -> Clock {
        Clock::new(Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body_read: Duration::from_secs(30),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_timeout() {
        let clock = clock();
        let start = Instant::now();
        assert_eq!(
            clock.expired().await,
            Expired::Idle(Duration::from_secs(60))
        );
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_head_has_the_header_timeout_from_its_first_byte() {
        let clock = clock();
        let expired = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        let first_byte = Instant::now();
        clock.received();
        // More bytes do not move it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        clock.received();
        assert_eq!(
            expired.await.unwrap(),
            Expired::HeaderRead(Duration::from_secs(10))
        );
        assert_eq!(first_byte.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_expires_while_a_request_is_in_flight() {
        let clock = clock();
        clock.received();
        let in_flight = clock.request_started();
        let expired = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        // Body bytes while in flight start no head.
        clock.received();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!expired.is_finished());
        let answered = Instant::now();
        drop(in_flight);
        assert_eq!(
            expired.await.unwrap(),
            Expired::Idle(Duration::from_secs(60))
        );
        assert_eq!(answered.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn writing_a_response_is_not_idle() {
        let clock = clock();
        drop(clock.request_started());
        let expired = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            clock.sent();
        }
        let last_write = Instant::now();
        assert_eq!(
            expired.await.unwrap(),
            Expired::Idle(Duration::from_secs(60))
        );
        assert_eq!(last_write.elapsed(), Duration::from_secs(60));
    }
}
