//! A request body that must arrive in full by a deadline.
//!
//! A deadline for the whole body, counted from the request head, not
//! tower-http's `TimeoutBody`, whose clock restarts with every frame: a
//! client sending a byte every few seconds would keep a request, and its
//! concurrency slot, for as long as it liked.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::BoxError;

/// Reading a request body took longer than `BODY_READ_TIMEOUT`. The
/// mesh's extractors answer it with 408 `body_timeout`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive in full within {limit:?}")]
pub struct BodyTimeout {
    pub limit: Duration,
}

pin_project! {
    /// `inner`, failing with [`BodyTimeout`] once `deadline` has passed
    /// with the body still incomplete.
    pub(super) struct DeadlineBody<B> {
        #[pin]
        inner: B,
        // `None` for a body that is empty from the start: nothing to wait for.
        #[pin]
        deadline: Option<Sleep>,
        limit: Duration,
    }
}

impl<B: Body> DeadlineBody<B> {
    pub(super) fn new(inner: B, limit: Duration) -> Self {
        let deadline =
            (!inner.is_end_stream()).then(|| tokio::time::sleep_until(Instant::now() + limit));
        Self {
            inner,
            deadline,
            limit,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // What has arrived is delivered even at the deadline.
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_pin_mut().map(|d| d.poll(cx)) {
            Some(Poll::Ready(())) => {
                Poll::Ready(Some(Err(BodyTimeout { limit: *this.limit }.into())))
            }
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_at_the_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = tokio_stream_from(rx);
        let mut body = Box::pin(DeadlineBody::new(
            StreamBody::new(stream),
            Duration::from_secs(30),
        ));
        tx.send(Ok(Frame::data(Bytes::from_static(b"{\"a\""))))
            .await
            .unwrap();
        let start = Instant::now();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"{\"a\""));
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.downcast_ref::<BodyTimeout>().is_some(), "{error}");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_body_is_read_whatever_the_deadline() {
        let body = DeadlineBody::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")),
            Duration::from_millis(1),
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"{}"));
    }

    /// A stream of the frames sent on `rx`.
    fn tokio_stream_from(
        rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, BoxError>> {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) })
    }
}
