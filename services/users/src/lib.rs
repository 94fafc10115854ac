//! LearnSphere users service: accounts, login, and the access tokens the
//! gateway checks.
//!
//! Passwords are hashed with Argon2id ([`password`]); login answers with an
//! HS256 JWT whose issuing and verifying live together in [`token`], which
//! the gateway reuses, and is held back per account and client address
//! after repeated failures ([`lockout`]). A profile is read only with its owner's token.
//! Passwords, hashes and tokens never reach a log line or a span: their
//! types redact themselves in `Debug`. The routes and their OpenAPI 3.1
//! document are declared together ([`openapi`], `/openapi.json`).
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
mod db;
pub(crate) mod domain;
pub(crate) mod error;
pub mod events;
pub(crate) mod lockout;
pub mod model;
pub(crate) mod password;
pub(crate) mod routes;
mod state;
/// Access tokens: defined in the mesh, so every service verifies them the
/// way this one issues them.
pub use mesh::auth::token;

use axum::Router;
use mesh::{
    Mesh, ServiceIdentity,
    openapi::{self, ApiInfo},
    server::Server,
};
use utoipa_axum::router::OpenApiRouter;

pub use crate::{
    client::UsersClient,
    config::Config,
    lockout::FailedLogins,
    password::PasswordHasher,
    state::AppState,
    token::{Claims, TokenError, TokenKeys},
};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "users";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The routes, each registered with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::users::router())
        .merge(routes::sessions::router())
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
            title: "LearnSphere users",
            description: "Accounts, login, and the access tokens every LearnSphere service verifies. Sign-up and login are public; a profile is read only with its owner's bearer token. Failed logins are limited per email and client address, under a ceiling per email. Every error is `{\"error\": {\"code\", \"message\"}}`.",
            every_operation: &[],
        },
    )
}

/// Checks the secrets, connects the database, migrates, prepares the
/// password hasher, and binds the port.
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    // First, so a bad secret fails the start before anything else happens.
    config.serve.refuse_development_secrets(&[
        ("JWT_SECRET", config.auth.jwt_secret.expose()),
        ("DATABASE_URL", config.database_url.as_bytes()),
        ("NATS_PASSWORD", config.events.password_bytes()),
    ])?;
    config.events.refuse_anonymous(&config.serve)?;
    let tokens = config.auth.keys()?;
    let failed_logins = FailedLogins::new(config.login_limits())?;
    let mesh = Mesh::new(identity, &config.serve).with_openapi(&openapi());
    let db = mesh.database(&config.database_url, &MIGRATOR).await?;
    let passwords = PasswordHasher::new(config.hash_concurrency()).await?;
    let (_, outbox) = mesh.events(&config.events, &db).await?;
    tokio::spawn(failed_logins.sweeper(lockout::SWEEP_EVERY));
    let state = AppState {
        outbox,
        db: db.clone(),
        passwords,
        tokens,
        token_ttl: config.auth.token_ttl,
        failed_logins,
    };
    Ok(mesh.bind(router(state), Some(db), config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
