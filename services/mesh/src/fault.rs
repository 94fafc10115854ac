//! Faults an operator (or a scenario) injects into a running service
//! through the admin API: extra latency, error responses, dropped
//! connections, on one route or the whole service, for a while or until
//! removed. The inbound `fault` layer applies them.
//!
//! The registry is read on every request, so the common case, no fault
//! at all, costs one atomic load; the list itself is an immutable
//! snapshot behind a lock, replaced whole on every change, so readers
//! never wait for each other.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family},
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    error::BadRequest,
    latency::LogNormalLatency,
    metrics::{Metrics, Route},
};

/// Longest delay a latency fault may add, and the cap on samples of the
/// log-normal form (whose tail is unbounded): past this a request is not
/// slow but hung, which an abort expresses better.
pub const MAX_LATENCY: Duration = Duration::from_secs(300);

/// Most faults active at once. Every request walks the list, and the
/// admin API should not be a way to exhaust memory.
pub const MAX_FAULTS: usize = 100;

// === the JSON contract ===

/// A fault on the wire: what the admin API takes (`POST /admin/faults`),
/// and what its clients (the load generator's scenarios) send. Unknown
/// fields are rejected: a misspelt `latncy` must not become a fault that
/// silently does nothing. The values are checked when the fault is
/// added ([`Faults::add`]), which says what is wrong with them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// A route template (`/payments/{payment_id}`), or a prefix of one
    /// ending in `*` (`/payments*`). Absent: every route, unmatched
    /// paths included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only requests with this method. Absent: any method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortSpec>,
    /// How long the fault lasts (`"30s"`, `"5m"`; [`expires_in`] writes
    /// one from a `Duration`). Absent: until removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

impl FaultSpec {
    /// How long the fault lasts, when `expires_in` is a positive duration.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_in.as_deref().and_then(parse_lifetime)
    }
}

/// `expires_in` for a fault that lasts `lifetime`: whole milliseconds
/// (`"30000ms"`, at least one), which the admin API parses exactly.
pub fn expires_in(lifetime: Duration) -> String {
    format!("{}ms", lifetime.as_millis().max(1))
}

/// A positive duration in `humantime` syntax (`"30s"`, `"5m"`, `"250ms"`).
fn parse_lifetime(text: &str) -> Option<Duration> {
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
}

/// Added latency: exactly one of the three forms.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Always this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_ms: Option<u64>,
    /// Uniformly between the two bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uniform_ms: Option<[u64; 2]>,
    /// Log-normal with this median and 99th percentile: the long tail of
    /// a real slow dependency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<u64>,
}

/// Answer with `status` instead of calling the handler, for a fraction
/// `rate` of the matching requests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorSpec {
    #[serde(default = "always")]
    pub rate: f64,
    #[serde(default = "service_unavailable")]
    pub status: u16,
}

/// Drop the connection without an answer, for a fraction `rate` of the
/// matching requests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AbortSpec {
    #[serde(default = "always")]
    pub rate: f64,
}

fn always() -> f64 {
    1.0
}

fn service_unavailable() -> u16 {
    503
}

/// A fault as the admin API shows it (listed, or just added).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FaultView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortSpec>,
    /// RFC 3339, UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

// === the compiled fault ===

/// What a fault does to a request, for the metric label and the span.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FaultKind {
    latency,
    error,
    abort,
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [FaultKind::latency, FaultKind::error, FaultKind::abort];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::latency => "latency",
            FaultKind::error => "error",
            FaultKind::abort => "abort",
        }
    }
}

/// Labels of `fault_injections_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub service: Arc<str>,
    pub route: Route,
    pub kind: FaultKind,
}

#[derive(Debug, Clone)]
enum RoutePattern {
    Exact(String),
    Prefix(String),
}

impl RoutePattern {
    fn parse(pattern: &str) -> Result<Self, BadRequest> {
        if pattern.len() > 256 {
            return Err(BadRequest::invalid("`route` is longer than 256 bytes"));
        }
        let (body, prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if body.contains('*') {
            return Err(BadRequest::invalid(
                "`route` may hold `*` only as its last character (a prefix match)",
            ));
        }
        if !prefix && !body.starts_with('/') {
            return Err(BadRequest::invalid(format!(
                "`route` must be a route template starting with `/` (like `/payments/{{payment_id}}`), not {pattern:?}"
            )));
        }
        Ok(if prefix {
            Self::Prefix(body.to_owned())
        } else {
            Self::Exact(body.to_owned())
        })
    }

    fn matches(&self, route: &str) -> bool {
        match self {
            Self::Exact(r) => route == r,
            Self::Prefix(p) => route.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
enum Delay {
    Fixed(Duration),
    Uniform { low_ms: u64, high_ms: u64 },
    LogNormal(LogNormalLatency),
}

impl Delay {
    fn parse(spec: &LatencySpec) -> Result<Self, BadRequest> {
        let max_ms = u64::try_from(MAX_LATENCY.as_millis()).unwrap_or(u64::MAX);
        let within = |ms: u64, field: &str| {
            if ms > max_ms {
                Err(BadRequest::invalid(format!(
                    "`latency.{field}` is over the {max_ms} ms maximum"
                )))
            } else {
                Ok(ms)
            }
        };
        match spec {
            LatencySpec {
                fixed_ms: Some(ms),
                uniform_ms: None,
                median_ms: None,
                p99_ms: None,
            } => Ok(Self::Fixed(Duration::from_millis(within(*ms, "fixed_ms")?))),
            LatencySpec {
                fixed_ms: None,
                uniform_ms: Some([low, high]),
                median_ms: None,
                p99_ms: None,
            } => {
                if low > high {
                    return Err(BadRequest::invalid(
                        "`latency.uniform_ms` must be [low, high] with low <= high",
                    ));
                }
                Ok(Self::Uniform {
                    low_ms: *low,
                    high_ms: within(*high, "uniform_ms")?,
                })
            }
            LatencySpec {
                fixed_ms: None,
                uniform_ms: None,
                median_ms: Some(median),
                p99_ms: Some(p99),
            } => {
                if *median == 0 || median > p99 {
                    return Err(BadRequest::invalid(
                        "`latency.median_ms` must be above 0 and at most `latency.p99_ms`",
                    ));
                }
                within(*p99, "p99_ms")?;
                LogNormalLatency::new(Duration::from_millis(*median), Duration::from_millis(*p99))
                    .map(Self::LogNormal)
                    .map_err(|e| BadRequest::invalid(format!("`latency`: {e}")))
            }
            _ => Err(BadRequest::invalid(
                "`latency` takes exactly one of {\"fixed_ms\": N}, {\"uniform_ms\": [LOW, HIGH]} or {\"median_ms\": M, \"p99_ms\": P}",
            )),
        }
    }

    fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        match self {
            Self::Fixed(d) => *d,
            Self::Uniform { low_ms, high_ms } => {
                Duration::from_millis(rng.random_range(*low_ms..=*high_ms))
            }
            Self::LogNormal(latency) => latency.sample(rng, MAX_LATENCY),
        }
    }
}

fn rate(value: f64, field: &str) -> Result<f64, BadRequest> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(BadRequest::invalid(format!(
            "`{field}` must be a fraction between 0 and 1, not {value}"
        )))
    }
}

/// One active fault.
#[derive(Debug)]
struct Fault {
    view: FaultView,
    route: Option<RoutePattern>,
    method: Option<http::Method>,
    delay: Option<Delay>,
    /// Rate and status.
    error: Option<(f64, http::StatusCode)>,
    abort: Option<f64>,
    /// On the Tokio clock, so tests can move time on.
    expires: Option<Instant>,
}

impl Fault {
    fn compile(spec: FaultSpec, now: Instant) -> Result<Self, BadRequest> {
        if spec.latency.is_none() && spec.error.is_none() && spec.abort.is_none() {
            return Err(BadRequest::invalid(
                "a fault needs at least one of `latency`, `error` or `abort`",
            ));
        }
        let route = spec.route.as_deref().map(RoutePattern::parse).transpose()?;
        let method = spec
            .method
            .as_deref()
            .map(|m| {
                http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .ok()
                    .filter(|_| m.len() <= 32)
                    .ok_or_else(|| {
                        BadRequest::invalid(format!("`method` {m:?} is not an HTTP method"))
                    })
            })
            .transpose()?;
        let delay = spec.latency.as_ref().map(Delay::parse).transpose()?;
        let error = spec
            .error
            .as_ref()
            .map(|e| {
                let status = http::StatusCode::from_u16(e.status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .ok_or_else(|| {
                        BadRequest::invalid(format!(
                            "`error.status` must be a 4xx or 5xx status, not {}",
                            e.status
                        ))
                    })?;
                Ok::<_, BadRequest>((rate(e.rate, "error.rate")?, status))
            })
            .transpose()?;
        let abort = spec
            .abort
            .as_ref()
            .map(|a| rate(a.rate, "abort.rate"))
            .transpose()?;
        let lifetime = spec
            .expires_in
            .as_deref()
            .map(|s| {
                parse_lifetime(s).ok_or_else(|| {
                    BadRequest::invalid(format!(
                        "`expires_in` must be a positive duration like \"30s\" or \"5m\", not {s:?}"
                    ))
                })
            })
            .transpose()?;
        let expires_at = lifetime
            .map(|d| {
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| Utc::now().checked_add_signed(d))
                    .ok_or_else(|| BadRequest::invalid("`expires_in` is too far in the future"))
            })
            .transpose()?;
        let expires = lifetime
            .map(|d| {
                now.checked_add(d)
                    .ok_or_else(|| BadRequest::invalid("`expires_in` is too far in the future"))
            })
            .transpose()?;
        Ok(Self {
            view: FaultView {
                id: uuid::Uuid::new_v4().simple().to_string(),
                route: spec.route,
                method: method.as_ref().map(|m| m.to_string()),
                latency: spec.latency,
                error: error.map(|(rate, status)| ErrorSpec {
                    rate,
                    status: status.as_u16(),
                }),
                abort: abort.map(|rate| AbortSpec { rate }),
                expires_at: expires_at
                    .map(|t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            },
            route,
            method,
            delay,
            error,
            abort,
            expires,
        })
    }

    fn is_expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }

    fn applies_to(&self, route: &str, method: &http::Method) -> bool {
        self.route.as_ref().is_none_or(|r| r.matches(route))
            && self.method.as_ref().is_none_or(|m| m == method)
    }
}

// === the decision for one request ===

/// What the faults make of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// Waited before the handler (or the error) runs.
    pub delay: Option<Duration>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler answers (possibly late).
    Handler,
    /// The fault `fault_id` answers with `status` instead.
    Error {
        status: http::StatusCode,
        fault_id: String,
    },
    /// No answer: the connection is dropped.
    Abort,
}

impl Injection {
    /// The kinds injected, in the order they act.
    pub fn kinds(&self) -> impl Iterator<Item = FaultKind> {
        let outcome = match self.outcome {
            Outcome::Handler => None,
            Outcome::Error { .. } => Some(FaultKind::error),
            Outcome::Abort => Some(FaultKind::abort),
        };
        self.delay
            .map(|_| FaultKind::latency)
            .into_iter()
            .chain(outcome)
    }
}

// === impl Faults ===

/// The service's active faults, shared by the admin API (which changes
/// them) and the inbound layer (which applies them). Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Faults {
    inner: Arc<Registry>,
}

#[derive(Debug)]
struct Registry {
    /// False when the list is empty: the one load on the request path.
    any: AtomicBool,
    list: RwLock<Arc<Vec<Arc<Fault>>>>,
    service: Arc<str>,
    injections: Family<FaultLabels, Counter>,
}

impl Faults {
    /// An empty registry; its `fault_injections_total` counter is
    /// registered in `metrics`, so make one per service.
    pub fn new(metrics: &Metrics) -> Self {
        let injections = Family::<FaultLabels, Counter>::default();
        metrics.register(
            "fault_injections",
            "Faults injected into inbound requests through the admin API, by route and kind",
            injections.clone(),
        );
        Self {
            inner: Arc::new(Registry {
                any: AtomicBool::new(false),
                list: RwLock::new(Arc::new(Vec::new())),
                service: metrics.service().clone(),
                injections,
            }),
        }
    }

    /// Validates `spec` and makes it active; the fault as listed.
    pub fn add(&self, spec: FaultSpec) -> Result<FaultView, BadRequest> {
        let now = Instant::now();
        let fault = Fault::compile(spec, now)?;
        let view = fault.view.clone();
        self.update(|list| {
            list.retain(|f| !f.is_expired(now));
            if list.len() >= MAX_FAULTS {
                return Err(BadRequest::invalid(format!(
                    "at most {MAX_FAULTS} faults can be active at once; remove some first"
                )));
            }
            list.push(Arc::new(fault));
            Ok(())
        })?;
        Ok(view)
    }

    /// The active faults, oldest first; expired ones are dropped.
    pub fn list(&self) -> Vec<FaultView> {
        self.prune();
        self.snapshot().iter().map(|f| f.view.clone()).collect()
    }

    /// Removes the fault `id`; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let now = Instant::now();
        self.update(|list| {
            // An expired fault is gone already: 404, like any other.
            list.retain(|f| !f.is_expired(now));
            let before = list.len();
            list.retain(|f| f.view.id != id);
            let found = list.len() < before;
            Ok::<_, std::convert::Infallible>(found)
        })
        .unwrap_or_else(|never| match never {})
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.update(|list| {
            list.clear();
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
    }

    /// Whether any fault is active. The request path's first and, most
    /// of the time, only question.
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.inner.any.load(Ordering::Acquire)
    }

    /// What the faults do to a request on `route` with `method`: `None`
    /// if none applies. Each fault's rates are drawn independently; the
    /// delays of all matching faults add up; an abort wins over an error
    /// (a dropped connection leaves nothing to answer with).
    pub fn injection(&self, route: &str, method: &http::Method) -> Option<Injection> {
        if self.is_empty() {
            return None;
        }
        let now = Instant::now();
        let list = self.snapshot();
        let mut rng = rand::rng();
        let mut delay: Option<Duration> = None;
        let mut outcome = Outcome::Handler;
        let mut expired = false;
        for fault in list.iter() {
            if fault.is_expired(now) {
                expired = true;
                continue;
            }
            if !fault.applies_to(route, method) {
                continue;
            }
            if let Some(d) = &fault.delay {
                let d = d.sample(&mut rng);
                delay = Some(delay.unwrap_or_default().saturating_add(d).min(MAX_LATENCY));
            }
            if let Some(rate) = fault.abort
                && rng.random_bool(rate)
            {
                outcome = Outcome::Abort;
            }
            if let Some((rate, status)) = fault.error
                && rng.random_bool(rate)
                && outcome == Outcome::Handler
            {
                outcome = Outcome::Error {
                    status,
                    fault_id: fault.view.id.clone(),
                };
            }
        }
        drop(list);
        if expired {
            self.prune();
        }
        let injection = Injection { delay, outcome };
        (injection.delay.is_some() || injection.outcome != Outcome::Handler).then_some(injection)
    }

    /// Counts one injection of `kind` on `route`.
    pub fn count(&self, route: &Route, kind: FaultKind) {
        self.inner
            .injections
            .get_or_create(&self.labels(route, kind))
            .inc();
    }

    /// Makes the series of `route` exist, at zero, for every kind.
    pub fn touch(&self, route: &Route) {
        for kind in FaultKind::ALL {
            let _ = self
                .inner
                .injections
                .get_or_create(&self.labels(route, kind));
        }
    }

    fn labels(&self, route: &Route, kind: FaultKind) -> FaultLabels {
        FaultLabels {
            service: self.inner.service.clone(),
            route: route.clone(),
            kind,
        }
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Fault>>> {
        // A panic while holding the lock cannot leave the list half
        // changed (it is replaced whole), so a poisoned lock is fine.
        self.inner
            .list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn prune(&self) {
        let now = Instant::now();
        if self.snapshot().iter().any(|f| f.is_expired(now)) {
            self.update(|list| {
                list.retain(|f| !f.is_expired(now));
                Ok::<_, std::convert::Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        }
    }

    /// Replaces the list with `change` applied to a copy of it.
    fn update<T, E>(
        &self,
        change: impl FnOnce(&mut Vec<Arc<Fault>>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = self
            .inner
            .list
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut list = Vec::clone(&guard);
        let result = change(&mut list)?;
        self.inner.any.store(!list.is_empty(), Ordering::Release);
        *guard = Arc::new(list);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<FaultSpec, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn compile(json: serde_json::Value) -> Result<Fault, String> {
        let spec = spec(json).map_err(|e| e.to_string())?;
        Fault::compile(spec, Instant::now()).map_err(|e| e.message)
    }

    #[test]
    fn a_spec_a_client_writes_is_the_json_the_admin_api_reads() {
        let fault = FaultSpec {
            route: Some("/payments".into()),
            method: Some("post".into()),
            error: Some(ErrorSpec {
                rate: 1.0,
                status: 503,
            }),
            expires_in: Some(expires_in(Duration::from_secs(30))),
            ..FaultSpec::default()
        };
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"route": "/payments", "method": "post",
                   "error": {"rate": 1.0, "status": 503}, "expires_in": "30000ms"})
        );
        assert_eq!(spec(json).unwrap(), fault);
        assert_eq!(fault.lifetime(), Some(Duration::from_secs(30)));
        // Never zero, which the admin API refuses.
        assert_eq!(expires_in(Duration::from_micros(10)), "1ms");
        assert!(compile(serde_json::json!({"abort": {}, "expires_in": "1ms"})).is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = spec(serde_json::json!({"latncy": {"fixed_ms": 5}})).unwrap_err();
        assert!(err.to_string().contains("unknown field `latncy`"), "{err}");
        let err = spec(serde_json::json!({"latency": {"fixed": 5}})).unwrap_err();
        assert!(err.to_string().contains("unknown field `fixed`"), "{err}");
    }

    #[test]
    fn invalid_values_say_what_is_wrong() {
        for (json, wanted) in [
            (serde_json::json!({}), "at least one of"),
            (serde_json::json!({"error": {"status": 302}}), "4xx or 5xx"),
            (serde_json::json!({"error": {"status": 200}}), "4xx or 5xx"),
            (serde_json::json!({"error": {"status": 1000}}), "4xx or 5xx"),
            (
                serde_json::json!({"error": {"rate": 1.5}}),
                "between 0 and 1",
            ),
            (
                serde_json::json!({"abort": {"rate": -0.1}}),
                "between 0 and 1",
            ),
            (serde_json::json!({"latency": {}}), "exactly one of"),
            (
                serde_json::json!({"latency": {"fixed_ms": 1, "uniform_ms": [1, 2]}}),
                "exactly one of",
            ),
            (
                serde_json::json!({"latency": {"median_ms": 10}}),
                "exactly one of",
            ),
            (
                serde_json::json!({"latency": {"median_ms": 100, "p99_ms": 10}}),
                "at most",
            ),
            (
                serde_json::json!({"latency": {"uniform_ms": [9, 3]}}),
                "low <= high",
            ),
            (
                serde_json::json!({"latency": {"fixed_ms": 300_001}}),
                "maximum",
            ),
            (
                serde_json::json!({"abort": {}, "route": "payments"}),
                "starting with `/`",
            ),
            (
                serde_json::json!({"abort": {}, "route": "/a*/b"}),
                "last character",
            ),
            (
                serde_json::json!({"abort": {}, "method": "GE T"}),
                "not an HTTP method",
            ),
            (
                serde_json::json!({"abort": {}, "expires_in": "soon"}),
                "positive duration",
            ),
            (
                serde_json::json!({"abort": {}, "expires_in": "0s"}),
                "positive duration",
            ),
        ] {
            let err = match compile(json.clone()) {
                Ok(_) => panic!("{json} was accepted"),
                Err(e) => e,
            };
            assert!(
                err.contains(wanted),
                "{json}: {err:?} should say {wanted:?}"
            );
        }
    }

    #[test]
    fn routes_match_exactly_or_by_prefix() {
        let exact = RoutePattern::parse("/payments/{payment_id}").unwrap();
        assert!(exact.matches("/payments/{payment_id}"));
        assert!(!exact.matches("/payments"));
        let prefix = RoutePattern::parse("/payments*").unwrap();
        assert!(prefix.matches("/payments"));
        assert!(prefix.matches("/payments/{payment_id}"));
        assert!(!prefix.matches("/users"));
        assert!(RoutePattern::parse("*").unwrap().matches("unmatched"));
    }

    #[test]
    fn delays_stay_within_their_distribution() {
        let mut rng = rand::rng();
        let uniform = Delay::parse(&LatencySpec {
            uniform_ms: Some([50, 60]),
            ..Default::default()
        })
        .unwrap();
        for _ in 0..1000 {
            let d = uniform.sample(&mut rng);
            assert!((50..=60).contains(&d.as_millis()), "{d:?}");
        }
        let lognormal = Delay::parse(&LatencySpec {
            median_ms: Some(50),
            p99_ms: Some(800),
            ..Default::default()
        })
        .unwrap();
        let mut samples: Vec<Duration> = (0..20_000).map(|_| lognormal.sample(&mut rng)).collect();
        samples.sort();
        let median = samples[samples.len() / 2].as_secs_f64() * 1000.0;
        let p99 = samples[samples.len() * 99 / 100].as_secs_f64() * 1000.0;
        assert!((40.0..60.0).contains(&median), "median {median} ms");
        assert!((600.0..1100.0).contains(&p99), "p99 {p99} ms");
        // A fixed delay with equal median and p99 is a degenerate
        // log-normal, not an error.
        let flat = Delay::parse(&LatencySpec {
            median_ms: Some(20),
            p99_ms: Some(20),
            ..Default::default()
        })
        .unwrap();
        let d = flat.sample(&mut rng).as_secs_f64() * 1000.0;
        assert!((d - 20.0).abs() < 0.01, "{d}");
    }
}
