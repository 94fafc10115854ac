//! LearnSphere progress service: who is enrolled in which course and which
//! lessons they have completed.
//!
//! It owns no catalog: whether a course or lesson exists, and how many
//! lessons a course has, is asked of the courses service through its typed
//! client, so every enrollment and completion shows up in a trace as a call
//! to courses.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
mod consumers;
mod db;
pub(crate) mod domain;
pub(crate) mod error;
pub mod events;
pub mod model;
pub(crate) mod routes;
mod state;

use axum::Router;
use courses::CoursesClient;
use mesh::{
    Mesh, ServiceIdentity,
    events::spawn_consumer,
    openapi::{self, ApiInfo},
    server::Server,
};
use utoipa_axum::router::OpenApiRouter;

pub use crate::{client::ProgressClient, config::Config, state::AppState};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "progress";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The routes, each registered with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::enrollments::router())
        .merge(routes::lessons::router())
        .merge(routes::profiles::router())
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
            title: "LearnSphere progress",
            description: "Enrollments, lesson completions and learner profiles. Every route needs the bearer token of the user whose data it is. Every error is `{\"error\": {\"code\", \"message\"}}`.",
            every_operation: &[],
        },
    )
}

/// Connects the database, migrates, and binds the port.
///
/// Courses is not asked anything at start-up: progress starts (and serves
/// reads) while courses is still down, and answers 503 only for the calls
/// that need it.
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
    let db = mesh.database(&config.database_url, &MIGRATOR).await?;
    let courses = CoursesClient::new(mesh.client(courses::NAME, &config.courses_url)?);
    let (broker, outbox) = mesh.events(&config.events, &db).await?;
    spawn_consumer(
        broker.clone(),
        db.clone(),
        consumers::PAYMENT_CAPTURED,
        consumers::payment_captured(db.clone(), courses.clone()),
    );
    spawn_consumer(
        broker.clone(),
        db.clone(),
        consumers::PAYMENT_REFUNDED,
        consumers::payment_refunded(db.clone(), courses.clone()),
    );
    spawn_consumer(
        broker,
        db.clone(),
        consumers::USER_REGISTERED,
        consumers::user_registered(db.clone()),
    );
    let api = router(AppState {
        db: db.clone(),
        courses,
        outbox,
        tokens,
    });
    Ok(mesh.bind(api, Some(db), config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
