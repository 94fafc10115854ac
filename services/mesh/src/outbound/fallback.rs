//! Explicit fallbacks: a caller that can do without a call's answer says
//! so by running the call inside [`with_fallback`]. A failure of such a
//! call is then counted with the `fallback` outcome instead of `error`, so
//! a dashboard tells "served degraded" from "failed".
//!
//! The scope is a task-local rather than a flag on the typed clients: the
//! gateway code that degrades is where the decision is made, and the typed
//! clients stay the same for callers without a fallback.

use std::future::Future;

tokio::task_local! {
    static FALLBACK: ();
}

/// Runs `call` (one or more outbound calls) as calls the caller has a
/// fallback for. The caller still gets the error, and serves its fallback.
pub async fn with_fallback<F: Future>(call: F) -> F::Output {
    FALLBACK.scope((), call).await
}

/// Whether the current task is inside [`with_fallback`].
pub(crate) fn in_scope() -> bool {
    FALLBACK.try_with(|_| ()).is_ok()
}
