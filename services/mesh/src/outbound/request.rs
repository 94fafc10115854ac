//! The request every layer of the outbound stack sees: the HTTP request,
//! the route template it is counted under, and what the outer layers
//! leave for the inner ones.

use std::time::Duration;

use crate::metrics::TraceExemplar;

/// One outbound call: the request and the route template it is counted
/// under (`/courses/{id}`, never the raw path).
#[derive(Debug)]
pub struct OutboundRequest {
    pub route: &'static str,
    pub request: reqwest::Request,
    /// The call's trace, set by the trace layer for the metrics layer.
    pub(crate) exemplar: Option<TraceExemplar>,
    /// The call's deadline, set by the timeout layer for error reports.
    pub(crate) timeout: Option<Duration>,
}

impl OutboundRequest {
    pub fn new(route: &'static str, request: reqwest::Request) -> Self {
        Self {
            route,
            request,
            exemplar: None,
            timeout: None,
        }
    }
}
