//! LearnSphere payments service: charges for courses, exactly once per
//! `Idempotency-Key`, against a simulated external card processor whose
//! latency, declines, failures and capacity are configurable, so the
//! platform has a realistic slow, fallible dependency to observe.
#![forbid(unsafe_code)]

mod charges;
pub mod client;
pub mod config;
mod db;
pub mod domain;
pub(crate) mod error;
pub mod events;
pub mod model;
pub(crate) mod provider;
pub(crate) mod routes;
mod state;

use axum::Router;
use mesh::{
    Mesh, ServiceIdentity,
    openapi::{self, ApiInfo},
    server::Server,
};
use utoipa_axum::router::OpenApiRouter;

pub use crate::{client::PaymentsClient, config::Config, provider::Provider, state::AppState};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "payments";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The routes, each registered with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    routes::payments::router()
}

/// The API routes (without the mesh's stack; see [`build`]).
pub fn router(state: AppState) -> Router {
    let (router, _) = api().split_for_parts();
    router.with_state(state)
}

/// The service's OpenAPI 3.1 document, served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = api().split_for_parts();
    openapi::finish(
        document,
        &ApiInfo {
            title: "LearnSphere payments",
            description: "Charges for courses, exactly once per `Idempotency-Key`, against a simulated card processor; refunds. Every route needs the bearer token of the user whose payment it is. Every error is `{\"error\": {\"code\", \"message\"}}`.",
            every_operation: &[],
        },
    )
}

/// Connects the database, migrates, sets up the provider, and binds the port.
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    // First, so a bad secret fails the start before anything else happens.
    config.serve.refuse_development_secrets(&[
        ("JWT_SECRET", config.auth.jwt_secret.expose()),
        ("DATABASE_URL", config.database_url.as_bytes()),
        ("NATS_PASSWORD", config.events.password_bytes()),
    ])?;
    config.events.refuse_anonymous(&config.serve)?;
    let tokens = config.auth.keys()?;
    let mesh = Mesh::new(identity, &config.serve).with_openapi(&openapi());
    let provider = Provider::new(&config.provider, mesh.metrics())?;
    let db = mesh.database(&config.database_url, &MIGRATOR).await?;
    let courses = courses::CoursesClient::new(mesh.client(courses::NAME, &config.courses_url)?);
    let (_, outbox) = mesh.events(&config.events, &db).await?;
    let state = AppState {
        db: db.clone(),
        provider,
        outbox,
        idempotency_wait: config.idempotency_wait,
        tokens,
        courses,
        currencies: config.currencies.into(),
    };
    Ok(mesh.bind(router(state), Some(db), config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
