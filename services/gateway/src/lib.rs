//! LearnSphere API gateway: the public API under `/api`, and the learner
//! web app at `/` (`site.rs`). It verifies the caller's token, keeps
//! users to their own data, and composes the services: `POST
//! /api/checkout` (courses → payments → progress) and
//! `GET /api/courses/{id}/page` (courses and progress concurrently, served
//! without progress if progress is down). Each client is held to a rate
//! limit ([`rate_limit`]) and to a number of requests in flight
//! ([`concurrency_limit`]).
#![forbid(unsafe_code)]

pub mod client;
pub(crate) mod concurrency_limit;
pub mod config;
pub(crate) mod error;
pub(crate) mod rate_limit;
pub(crate) mod routes;
mod site;
mod state;

use axum::Router;
use courses::CoursesClient;
use mesh::{
    Mesh, ServiceIdentity,
    openapi::{self, ApiInfo},
    server::Server,
};
use payments::PaymentsClient;
use progress::ProgressClient;
use users::UsersClient;
use utoipa_axum::router::OpenApiRouter;

use crate::{concurrency_limit::ClientConcurrencyLayer, rate_limit::RateLimitLayer};
pub use crate::{config::Config, state::AppState};

/// `service.name`.
pub const NAME: &str = "gateway";

/// The API's routes, each registered with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::accounts::router())
        .merge(routes::catalog::router())
        .merge(routes::checkout::router())
        .merge(routes::learning::router())
}

/// The API routes (without the mesh's stack; see [`build`]).
pub fn router(state: AppState) -> Router {
    let (router, _) = api().split_for_parts();
    router.with_state(state)
}

/// The public contract: the gateway's OpenAPI 3.1 document, served at
/// `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = api().split_for_parts();
    openapi::finish(
        document,
        &ApiInfo {
            title: "LearnSphere API",
            description: "The public API of LearnSphere, an online-learning platform: accounts, the course catalog, checkout, and each learner's own enrollments, progress and payments. Every error is `{\"error\": {\"code\", \"message\"}}`; every answer carries `traceresponse` (W3C Trace Context Level 2) with the id of its trace.",
            // The edge's own answers: the rate limit, and a service that
            // failed or did not answer.
            every_operation: &[
                openapi::TOO_MANY_REQUESTS,
                openapi::BAD_GATEWAY,
                openapi::UNAVAILABLE,
            ],
        },
    )
}

/// Builds the clients and binds the port. The gateway has no database;
/// it is ready as soon as it listens (the services report their own
/// readiness, and the gateway degrades per route when one is down).
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    config
        .serve
        .refuse_development_secrets(&[("JWT_SECRET", config.auth.jwt_secret.expose())])?;
    let tokens = config.auth.keys()?;
    let mesh = Mesh::new(identity, &config.serve)
        .with_openapi(&openapi())
        .with_site(site::router(&config.web));
    let rate_limit = RateLimitLayer::new(&config.rate_limit, tokens.clone(), mesh.metrics())?;
    tokio::spawn(rate_limit.sweeper(rate_limit::SWEEP_EVERY));
    let client_concurrency =
        ClientConcurrencyLayer::new(&config.client_concurrency, tokens.clone(), mesh.metrics());
    let state = AppState {
        users: UsersClient::new(mesh.client(users::NAME, &config.users_url)?),
        courses: CoursesClient::new(mesh.client(courses::NAME, &config.courses_url)?),
        payments: PaymentsClient::new(mesh.client(payments::NAME, &config.payments_url)?),
        progress: ProgressClient::new(mesh.client(progress::NAME, &config.progress_url)?),
        tokens,
    };
    // On the API routes, so the mesh's stack around them traces and
    // counts a 429 like any other answer. The rate limit outside the
    // per-client cap: a flood is refused before it is counted in flight,
    // and the cap keys clients by the caller and address it leaves.
    let api = router(state).layer(client_concurrency).layer(rate_limit);
    Ok(mesh.bind(api, None, config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
