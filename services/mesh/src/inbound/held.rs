//! A response that holds something until it has been sent: a concurrency
//! slot, a client's place. A request is in flight until its client has
//! taken the whole response, so a response the client is slow to read
//! still counts; the guard is dropped when the body ends, fails, or is
//! dropped (client gone). Shared by the mesh's load shedding and the
//! gateway's per-client cap.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::BoxError;

pin_project! {
    /// The future of a layer that admits a request holding `G`, or
    /// refuses it with a ready answer.
    #[project = HeldResponseProj]
    pub enum HeldResponse<F, G> {
        Admitted {
            #[pin]
            inner: F,
            guard: Option<G>,
        },
        Refused {
            response: Option<Response<Body>>,
        },
    }
}

impl<F, G> HeldResponse<F, G> {
    /// The inner service's answer, holding `guard` (if any) until sent.
    pub fn admitted(inner: F, guard: Option<G>) -> Self {
        Self::Admitted { inner, guard }
    }

    /// `response` at once, the inner service not called.
    pub fn refused(response: Response<Body>) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }
}

impl<F, G, ResBody, E> Future for HeldResponse<F, G>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    G: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            HeldResponseProj::Admitted { inner, guard } => {
                let res = std::task::ready!(inner.poll(cx))?;
                Poll::Ready(Ok(match guard.take() {
                    // `Body::new` of a `Body` is the same box, not another.
                    None => res.map(Body::new),
                    Some(guard) => res.map(|inner| {
                        Body::new(HoldingBody {
                            inner,
                            guard: Some(guard),
                        })
                    }),
                }))
            }
            HeldResponseProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("HeldResponse polled after completion"))),
        }
    }
}

pin_project! {
    /// A response body that drops its guard when it has been sent in
    /// full, failed, or been dropped.
    struct HoldingBody<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B: HttpBody, G> HttpBody for HoldingBody<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
