//! LearnSphere courses service: the catalog of courses and lessons, seeded
//! on first start with a deterministic catalog so every database and every
//! test names the same courses.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod client;
pub mod config;
mod db;
pub mod error;
pub mod model;
pub mod routes;

use std::time::Duration;

use axum::Router;
use mesh::{Db, Mesh, Readiness, ServiceIdentity, server::Server};
use sqlx::migrate::MigrateError;

pub use crate::{client::CoursesClient, config::Config};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "courses";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
}

/// The API routes (without the mesh's stack; see [`build`]).
pub fn router(state: AppState) -> Router {
    routes::courses::router().with_state(state)
}

/// Connects the database, migrates, seeds, and binds the port.
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    let mesh = Mesh::new(identity, &config.serve);
    let db = connect(&config.database_url, &mesh).await?;
    let catalog = catalog::generate(config.catalog_seed);
    if db::seed(&db, &catalog).await? {
        tracing::info!(
            courses = catalog.courses.len(),
            lessons = catalog.lesson_count(),
            "seeded the catalog"
        );
    }
    let readiness = Readiness::new(Some(db.clone()));
    let app = mesh.router(router(AppState { db }), readiness.clone());
    let server = Server::bind(
        config.serve.host,
        config.port,
        app,
        config.serve.shutdown_grace,
    )
    .await?;
    readiness.mark_started();
    Ok(server)
}

/// How often start-up tries to migrate before giving up.
const MIGRATE_ATTEMPTS: u32 = 3;

/// Connects and migrates, retrying when a migration fails to execute.
///
/// Replicas started together on one fresh SQLite file race to apply the
/// migrations: sqlx's migration lock is a no-op on SQLite (PostgreSQL takes
/// an advisory lock), so both see migration 1 pending and the loser fails
/// with "table courses already exists" once the winner has committed. The
/// winner commits schema and bookkeeping in one transaction, so a second
/// attempt finds the migration applied. Other migration errors (a modified
/// or missing migration) cannot heal and fail at once.
async fn connect(url: &str, mesh: &Mesh) -> anyhow::Result<Db> {
    let mut attempt = 1;
    loop {
        match Db::connect(url, &MIGRATOR, mesh.metrics().clone()).await {
            Err(error) if attempt < MIGRATE_ATTEMPTS && is_migration_race(&error) => {
                tracing::warn!(
                    attempt,
                    error = format!("{error:#}"),
                    "migrating failed, as when another replica migrates at the same time; retrying"
                );
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn is_migration_race(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<MigrateError>(),
        Some(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))
    )
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
