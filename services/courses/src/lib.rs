//! LearnSphere courses service: the catalog of courses and lessons, seeded
//! on first start with a deterministic catalog so every database and every
//! test names the same courses. The routes and their OpenAPI 3.1 document
//! are declared together ([`openapi`], served at `/openapi.json`).
#![forbid(unsafe_code)]

mod cache;
pub mod catalog;
pub mod client;
pub mod config;
mod db;
pub(crate) mod error;
pub mod model;
pub(crate) mod routes;
mod state;

use axum::Router;
use mesh::{
    Mesh, ServiceIdentity,
    openapi::{self, ApiInfo},
    server::Server,
};
use utoipa_axum::router::OpenApiRouter;

pub use crate::{
    cache::CatalogCache,
    client::{CatalogQuery, CoursesClient},
    config::Config,
    state::AppState,
};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "courses";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The routes, each registered with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    routes::courses::router()
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
            title: "LearnSphere courses",
            description: "The catalog of courses and lessons, public and read-only. Every error is `{\"error\": {\"code\", \"message\"}}`.",
            every_operation: &[],
        },
    )
}

/// Connects the database, migrates, seeds, and binds the port.
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    let mesh = Mesh::new(identity, &config.serve).with_openapi(&openapi());
    let db = mesh.database(&config.database_url, &MIGRATOR).await?;
    let catalog = catalog::generate(config.catalog_seed);
    if db::seed(&db, &catalog).await? {
        tracing::info!(
            courses = catalog.courses.len(),
            lessons = catalog.lesson_count(),
            "seeded the catalog"
        );
    }
    let cache = CatalogCache::new(config.catalog_cache_entries, mesh.metrics());
    let api = router(AppState {
        db: db.clone(),
        cache,
    });
    Ok(mesh.bind(api, Some(db), config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
