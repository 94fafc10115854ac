//! Command line and environment; nothing else in the gateway reads the
//! environment.

use clap::Parser;

/// The LearnSphere API gateway: the public `/api`, in front of the services.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Base URL of the users service.
    #[arg(long, env = "USERS_URL", default_value = "http://127.0.0.1:8081")]
    pub users_url: String,

    /// Base URL of the courses service.
    #[arg(long, env = "COURSES_URL", default_value = "http://127.0.0.1:8082")]
    pub courses_url: String,

    /// Base URL of the payments service.
    #[arg(long, env = "PAYMENTS_URL", default_value = "http://127.0.0.1:8083")]
    pub payments_url: String,

    /// Base URL of the progress service.
    #[arg(long, env = "PROGRESS_URL", default_value = "http://127.0.0.1:8084")]
    pub progress_url: String,

    /// HMAC secret the users service signs tokens with (the same value as
    /// its `JWT_SECRET`). The default is for local development only.
    #[arg(long, env = "JWT_SECRET", default_value = users::config::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub jwt_secret: users::config::JwtSecret,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}
