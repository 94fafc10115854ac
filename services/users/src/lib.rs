//! LearnSphere users service: accounts, login, and the access tokens the
//! gateway checks.
//!
//! Passwords are hashed with Argon2id ([`password`]); login answers with an
//! HS256 JWT whose issuing and verifying live together in [`token`], which
//! the gateway reuses. Passwords, hashes and tokens never reach a log line
//! or a span: their types redact themselves in `Debug`.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod model;
pub mod password;
pub mod routes;
/// Access tokens: defined in the mesh, so every service verifies them the
/// way this one issues them.
pub use mesh::auth::token;

use std::{sync::Arc, time::Duration};

use axum::Router;
use mesh::{
    Db, Mesh, ServiceIdentity,
    events::{Broker, Outbox},
    server::Server,
};

pub use crate::{
    client::UsersClient,
    config::Config,
    password::PasswordHasher,
    token::{Claims, TokenError, TokenKeys},
};

/// `service.name` and the destination name other services use.
pub const NAME: &str = "users";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub passwords: PasswordHasher,
    pub tokens: Arc<TokenKeys>,
    /// Lifetime of the tokens issued at login.
    pub token_ttl: Duration,
    /// `user.registered` goes here, in the account's transaction.
    pub outbox: Outbox,
}

/// The API routes (without the mesh's stack; see [`build`]).
pub fn router(state: AppState) -> Router {
    routes::users::router()
        .merge(routes::sessions::router())
        .with_state(state)
}

/// Checks the token secret, connects the database, migrates, prepares the
/// password hasher, and binds the port.
pub async fn build(config: Config, identity: ServiceIdentity) -> anyhow::Result<Server> {
    // First, so a bad secret fails the start before anything else happens.
    let tokens = TokenKeys::new(config.jwt_secret.expose())?;
    if config.jwt_secret.is_development_default() {
        tracing::warn!(
            "JWT_SECRET is the development default: anyone can mint tokens; set a random secret outside development"
        );
    }
    let mesh = Mesh::new(identity, &config.serve);
    let db = Db::connect(&config.database_url, &MIGRATOR, mesh.metrics().clone()).await?;
    let passwords = PasswordHasher::new(config.hash_concurrency()).await?;
    mesh::events::ensure_tables(&db).await?;
    let broker = Broker::connect(&config.events, mesh.identity(), mesh.metrics()).await?;
    let outbox = Outbox::new(db.clone(), broker);
    outbox.spawn_relay();
    let state = AppState {
        outbox,
        db: db.clone(),
        passwords,
        tokens: Arc::new(tokens),
        token_ttl: config.token_ttl,
    };
    Ok(mesh.bind(router(state), Some(db), config.port).await?)
}

/// The whole process: telemetry, build, serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let identity = ServiceIdentity::resolve(NAME, env!("CARGO_PKG_VERSION"), &config.telemetry);
    let telemetry = config.telemetry.clone();
    mesh::server::run_process(identity, &telemetry, |identity| build(config, identity)).await
}
