//! Command line and environment; nothing else in the service reads the
//! environment.

use clap::Parser;

/// The LearnSphere courses service: the catalog of courses and lessons.
#[derive(Debug, Clone, Parser)]
#[command(name = "courses", version)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8082)]
    pub port: u16,

    /// `sqlite://path/to/file.db` (created on first start) or a
    /// `postgres://` URL of this service's own database.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/courses.db")]
    pub database_url: String,

    /// Seed of the generated catalog; every replica and database seeded
    /// with the same value holds the same courses.
    #[arg(long, env = "CATALOG_SEED", default_value_t = crate::catalog::DEFAULT_SEED)]
    pub catalog_seed: u64,

    /// Courses, and as many pages of the listing, each replica keeps in
    /// memory once read (the catalog changes only at seed); 0 reads every
    /// request from the database.
    #[arg(long, env = "CATALOG_CACHE_ENTRIES", default_value_t = 1024)]
    pub catalog_cache_entries: usize,

    #[command(flatten)]
    pub serve: mesh::ServeConfig,

    #[command(flatten)]
    pub telemetry: mesh::TelemetryConfig,
}
