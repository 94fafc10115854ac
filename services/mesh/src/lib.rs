//! The in-process service mesh every LearnSphere service links.
//!
//! No sidecar: the mesh is a set of tower layers and an outbound client,
//! composed the way linkerd2-proxy and Finagle compose theirs, so every
//! service gets the same telemetry, the same resilience and the same
//! operator's handles. A service builds a [`Mesh`] from its
//! [`ServiceIdentity`] and settings, asks it for clients, its database and
//! its event bus, and binds its routes through it.
//!
//! The map, from the outside in:
//!
//! - serving: [`server`] (hyper per connection, with header-read, idle and
//!   body-read timeouts and a graceful shutdown), [`inbound`] (server
//!   span, RED metrics, in-flight gauge, request id, `traceresponse`, load
//!   shedding, fault injection, limits on headers and declared body
//!   length), [`extract`] and [`error`] (bad input answered with the JSON
//!   error body), [`auth`] (the caller a bearer token verifies as),
//!   [`openapi`] (the document served at `/openapi.json`);
//! - calling: [`outbound`], one client per destination: client span,
//!   per-edge metrics, circuit breaker, deadline, retries with a budget,
//!   power-of-two-choices balancing over the replicas discovery finds;
//! - operating: [`admin`] (`/metrics`, `/healthz`, `/readyz`, and the
//!   token-protected admin API: faults, crash, drain), [`fault`] (the
//!   faults that API manages), [`latency`] (the long-tailed latency they
//!   and simulated dependencies draw);
//! - state: [`db`] (the service's own database, every query a span),
//!   [`events`] (outbox, consumers and trace context over NATS JetStream);
//! - telemetry: [`telemetry`] (`tracing` logs with trace ids, OpenTelemetry
//!   spans over OTLP, W3C propagators, configured from the standard
//!   `OTEL_*` variables), [`logs`] (the same events as OTLP log records,
//!   bounded and redacted), [`metrics`] (the registry and its exemplars),
//!   [`redact`] and [`exporter`] (what leaves the process is scrubbed),
//!   [`baggage`] (the baggage keys copied onto spans), [`identity`];
//! - [`config`]: the settings every service shares, as `clap` groups;
//! - `testing` (feature `testing`): the fixtures the services' integration
//!   tests share: a database per test, a server on a task, `TEST_LOG`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod baggage;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod exporter;
pub mod extract;
pub mod fault;
pub mod identity;
pub mod inbound;
pub mod latency;
mod log_format;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod outbound;
mod process;
pub mod redact;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit};

pub use crate::{
    admin::Readiness,
    config::{ServeConfig, TelemetryConfig},
    db::{Db, Op},
    error::{BadRequest, ErrorBody, error_response},
    identity::ServiceIdentity,
    inbound::limits::MAX_HEADER_BYTES,
    metrics::Metrics,
    outbound::{CallError, MeshClient, OutboundError},
    server::MAX_HEADER_FIELDS,
};

/// The mesh as one service sees it: its identity, metrics, and the
/// factories for what every service starts with: its inbound stack,
/// outbound clients, database and event bus, and the bound server.
#[derive(Clone, Debug)]
pub struct Mesh {
    identity: Arc<ServiceIdentity>,
    metrics: Arc<Metrics>,
    /// The outbound stack's families, shared by every client.
    outbound: Arc<outbound::OutboundMetrics>,
    http: reqwest::Client,
    serve: ServeConfig,
    inbound: InboundParts,
    /// `/openapi.json`, serialized once.
    openapi: Option<bytes::Bytes>,
    /// Routes served beside the API, outside its stack ([`Mesh::with_site`]).
    site: Option<Router>,
}

/// What the inbound stack and the admin API share across every route.
#[derive(Clone, Debug)]
struct InboundParts {
    shed: inbound::ShedLayer,
    faults: fault::Faults,
    crash: admin::CrashHook,
}

impl Mesh {
    pub fn new(identity: ServiceIdentity, serve: &ServeConfig) -> Self {
        let metrics = Arc::new(Metrics::new(&identity));
        let outbound = Arc::new(outbound::OutboundMetrics::register(&metrics));
        let http = reqwest::Client::builder()
            // Keep-alive pools per destination; loopback calls should not
            // pay a TCP handshake each.
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            // A replica that vanishes without closing its connections (a
            // killed container's network is removed with it: no reset, no
            // FIN) would hold a call until its deadline. Keep-alive probes
            // after a second of silence, and at most five seconds without
            // an acknowledgement (TCP_USER_TIMEOUT, which also bounds the
            // probes), end such a connection with ETIMEDOUT, and a keyed
            // or idempotent call is retried on another replica in time. A
            // live peer's kernel answers the probes however slow the
            // handler is, so a slow answer is never cut short.
            .tcp_keepalive(Duration::from_secs(1))
            .tcp_keepalive_interval(Duration::from_secs(1))
            .tcp_keepalive_retries(4)
            .tcp_user_timeout(Duration::from_secs(5))
            .build()
            .expect("reqwest client with static settings builds");
        let inbound = InboundParts {
            shed: inbound::ShedLayer::new(&metrics, serve.concurrency_limit),
            faults: fault::Faults::new(&metrics),
            crash: admin::CrashHook::default(),
        };
        Self {
            identity: Arc::new(identity),
            metrics,
            outbound,
            http,
            serve: serve.clone(),
            inbound,
            openapi: None,
            site: None,
        }
    }

    /// Serves `document` at `/openapi.json` (see [`openapi::finish`]).
    pub fn with_openapi(mut self, document: &utoipa::openapi::OpenApi) -> Self {
        self.openapi = Some(openapi::to_json(document));
        self
    }

    /// Serves `site` (a web page and its files: the gateway's learner app)
    /// beside the API, outside its stack, like `/openapi.json`: loading a
    /// page's files is neither traced nor counted nor rate limited; the
    /// API calls the page makes are, with the page's trace context.
    pub fn with_site(mut self, site: Router) -> Self {
        self.site = Some(site);
        self
    }

    /// The faults the admin API manages and the inbound stack applies.
    pub fn faults(&self) -> &fault::Faults {
        &self.inbound.faults
    }

    /// Replaces what `POST /admin/crash` does (exit the process) with
    /// `hook`, called with the exit code: for tests.
    pub fn with_crash_hook(mut self, hook: impl Fn(i32) + Send + Sync + 'static) -> Self {
        self.inbound.crash = admin::CrashHook::new(hook);
        self
    }

    pub fn identity(&self) -> &ServiceIdentity {
        &self.identity
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A client for the service `destination`, whose replicas `base_url`
    /// names: one URL (its host re-resolved, every address a replica), a
    /// comma-separated list, or `file_sd:PATH` (see
    /// [`outbound::discovery`]). Must be called inside a Tokio runtime.
    pub fn client(&self, destination: &str, base_url: &str) -> anyhow::Result<MeshClient> {
        MeshClient::new(
            self.outbound.clone(),
            self.http.clone(),
            destination,
            base_url,
            outbound::Policy::for_destination(&self.serve.outbound, destination),
            self.serve.metrics_enabled,
        )
    }

    /// Wraps the service's API routes in the inbound stack, adds JSON 404
    /// and 405 answers, the admin routes (`/admin/*` only when an admin
    /// token is configured) and `/openapi.json` (with
    /// [`Mesh::with_openapi`]). Like `/metrics`, the document is served
    /// outside the traced stack: reading it is not traffic.
    pub fn router(&self, api: Router, readiness: Readiness) -> Router {
        let document = self.openapi.clone().map(|json| {
            Router::new().route(
                "/openapi.json",
                axum::routing::get(move || {
                    let json = json.clone();
                    async move { ([(http::header::CONTENT_TYPE, "application/json")], json) }
                }),
            )
        });
        let router = api
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.serve.max_body_bytes,
                inbound::limits::limit_request,
            ))
            .layer(DefaultBodyLimit::max(self.serve.max_body_bytes))
            .layer(axum::Extension(extract::BodyLimit(
                self.serve.max_body_bytes,
            )))
            .layer(inbound::layer(
                self.serve.metrics_enabled.then(|| self.metrics.clone()),
                self.inbound.shed.clone(),
                self.inbound.faults.clone(),
            ))
            .merge(admin::router(
                self.metrics.clone(),
                readiness.clone(),
                self.serve.admin_token.clone().map(|token| {
                    admin::AdminApi::new(
                        token,
                        self.inbound.faults.clone(),
                        readiness,
                        self.inbound.crash.clone(),
                    )
                }),
            ));
        let router = match document {
            Some(document) => router.merge(document),
            None => router,
        };
        match self.site.clone() {
            Some(site) => router.merge(site),
            None => router,
        }
    }

    /// The service's own database at `url`, migrated with `migrator`;
    /// every query a span, timed into this service's metrics.
    pub async fn database(
        &self,
        url: &str,
        migrator: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<Db> {
        Db::connect(url, migrator, self.metrics.clone()).await
    }

    /// The event bus, for a service that publishes: the outbox and inbox
    /// tables in `db`, the connection to NATS (made in the background: a
    /// broker that is down does not stop the start), and the outbox with
    /// its relay running. The broker comes back too, for consumers.
    pub async fn events(
        &self,
        config: &events::EventsConfig,
        db: &Db,
    ) -> anyhow::Result<(events::Broker, events::Outbox)> {
        events::ensure_tables(db).await?;
        let broker = events::Broker::connect(config, &self.identity, &self.metrics).await?;
        let outbox = events::Outbox::new(db.clone(), broker.clone());
        outbox.spawn_relay();
        Ok((broker, outbox))
    }

    /// Wraps `api` in the mesh ([`Mesh::router`]), binds `port` on the
    /// configured host, and reports ready (`/readyz`) from then on, as long
    /// as `db` (the service's own database, if any) answers.
    pub async fn bind(
        &self,
        api: Router,
        db: Option<Db>,
        port: u16,
    ) -> std::io::Result<server::Server> {
        let readiness = Readiness::new(db);
        let app = self.router(api, readiness.clone());
        let server = server::Server::bind(self.serve.host, port, app, self.serve.shutdown_grace)
            .await?
            .with_timeouts(server::Timeouts::from(&self.serve));
        readiness.mark_started();
        Ok(server)
    }
}
