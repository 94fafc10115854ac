//! Command line and environment; nothing else in the service reads the
//! environment.

use clap::Parser;

/// The LearnSphere progress service: enrollments and lesson completions.
#[derive(Debug, Clone, Parser)]
#[command(name = "progress", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8084)]
    pub port: u16,

    /// `sqlite://path/to/file.db` (created on first start) or a
    /// `postgres://` URL of this service's own database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/progress.db"
    )]
    pub database_url: String,

    /// Where the courses service's replicas are (a URL whose host is
    /// re-resolved, a comma-separated list, or `file_sd:PATH`); asked
    /// whether courses and lessons exist and how many lessons a course has.
    #[arg(long, env = "COURSES_URL", default_value = "http://127.0.0.1:8082")]
    pub courses_url: String,

    #[command(flatten)]
    pub auth: mesh::auth::AuthConfig,

    #[command(flatten)]
    pub events: mesh::events::EventsConfig,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}
