//! The service's own database: SQLite by default (one file per service),
//! PostgreSQL when `DATABASE_URL` says so, through sqlx's `Any` driver so
//! one set of queries and migrations serves both.
//!
//! Every operation runs inside a client span with the OpenTelemetry
//! database attributes and is timed into `db_client_operation_duration_seconds`.

use std::{future::Future, path::Path, sync::Arc, time::Instant};

use sqlx::{
    AnyPool, Executor as _,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};
use tracing::{Instrument as _, field::Empty};

use crate::metrics::{DbLabels, DbOutcome, Metrics, TraceExemplar};

/// A database the service owns, with its pool and the name it reports.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    system: &'static str,
    namespace: Arc<str>,
    metrics: Arc<Metrics>,
}

/// Where the service's data lives, for the launcher to print.
pub fn describe_url(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) => format!("SQLite file {}", rest.split('?').next().unwrap_or(rest)),
        // Never print a password. It can sit in the user info (with an
        // unencoded `@` in it, which URL parsers take up to the last `@`)
        // or in the query (`?password=`, which sqlx reads), so only the
        // host, port and database are shown.
        None => match reqwest::Url::parse(url) {
            Ok(parsed) => format!(
                "PostgreSQL {}{}{}",
                parsed.host_str().unwrap_or_default(),
                parsed.port().map(|p| format!(":{p}")).unwrap_or_default(),
                parsed.path()
            ),
            Err(_) => "PostgreSQL (unparseable URL)".to_owned(),
        },
    }
}

/// `db.namespace`: the SQLite file's name or the PostgreSQL database. It
/// goes on every span, so it is taken from the parsed URL's path, never
/// from text that may hold the user info (`postgres://app:pw@host` has no
/// path at all).
fn namespace(url: &str, is_sqlite: bool) -> Arc<str> {
    if is_sqlite {
        return url
            .rsplit('/')
            .next()
            .and_then(|s| s.split('?').next())
            .unwrap_or_default()
            .into();
    }
    reqwest::Url::parse(url)
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .unwrap_or_default()
        .into()
}

/// Makes a SQLite file its owner's only (0600): it holds what the service
/// keeps (password hashes, payments), and SQLite would create it 0644,
/// readable by every local user. Created empty with that mode before
/// SQLite opens it (an empty file is an empty database to SQLite), or,
/// already there and readable by others, tightened, with the `-wal` and
/// `-shm` files beside it. SQLite gives those two the database file's
/// mode when it creates them, so they stay private too. The mode is set
/// explicitly after creation: `open` applies the umask, `chmod` does not.
#[cfg(unix)]
fn make_private(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = Path::new(&path);
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(
                file = %path.display(),
                was = format!("{mode:o}"),
                "the SQLite file was readable by other users: now its owner's only"
            );
        }
    }
    Ok(())
}

impl Db {
    /// Connects and applies the service's migrations. A SQLite file and its
    /// directory are created on first start, the file readable by its
    /// owner only.
    pub async fn connect(
        url: &str,
        migrator: &Migrator,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let system = if is_sqlite { "sqlite" } else { "postgresql" };
        if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
            let in_memory = file == ":memory:" || url.contains("mode=memory");
            if !in_memory {
                #[cfg(unix)]
                make_private(Path::new(file))?;
            }
        }
        let url = if is_sqlite && !url.contains("mode=") {
            // Create the file on first start rather than failing.
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let namespace = namespace(&url, is_sqlite);
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 8 } else { 16 })
            // No ping before each use. On PostgreSQL the ping is a round
            // trip to the server, on SQLite a hand-off to the connection's
            // thread and back: together they were most of a read's CPU
            // (docs/performance.md). A connection that broke while idle
            // (the server restarted) fails its next query instead, which
            // answers a 500 and is dropped from the pool; the next request
            // gets a new one.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL lets readers run beside the writer and
                        // replicas share one file; the busy timeout turns
                        // writer contention into a wait, not an error.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        migrate(&pool, migrator).await?;
        Ok(Self {
            pool,
            system,
            namespace,
            metrics,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `sqlite` or `postgresql`, as `db.system.name` spells them.
    pub fn system(&self) -> &'static str {
        self.system
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Runs one database operation inside its span and times it.
    ///
    /// `sql` is the statement text with `$n` placeholders; values are bound,
    /// never spliced in, so the text recorded as `db.query.text` holds no
    /// user data.
    pub async fn run<T, F>(&self, op: Op, fut: F) -> Result<T, sqlx::Error>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let span = tracing::info_span!(
            "db",
            otel.name = format!("{} {}", op.operation, op.collection),
            otel.kind = "client",
            otel.status_code = Empty,
            db.system.name = self.system,
            db.namespace = &*self.namespace,
            db.operation.name = op.operation,
            db.collection.name = op.collection,
            db.query.text = op.sql,
            error.type = Empty,
        );
        let start = Instant::now();
        let result = fut.instrument(span.clone()).await;
        let outcome = match &result {
            Ok(_) => DbOutcome::success,
            // "No rows" is an answer, not a database failure.
            Err(sqlx::Error::RowNotFound) => DbOutcome::success,
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error_type(error));
                DbOutcome::error
            }
        };
        let exemplar = span.in_scope(TraceExemplar::current);
        self.metrics.observe_db(
            DbLabels {
                service: self.metrics.service().clone(),
                system: self.system,
                operation: op.operation,
                collection: op.collection,
                outcome,
            },
            start.elapsed().as_secs_f64(),
            exemplar,
        );
        result
    }
}

/// How often start-up tries to migrate before giving up.
const MIGRATE_ATTEMPTS: u32 = 3;

/// Applies the migrations, retrying when one fails to execute.
///
/// Replicas started together on one fresh SQLite file race to apply them:
/// sqlx's migration lock is a no-op on SQLite (PostgreSQL takes an advisory
/// lock), so both see migration 1 pending and the loser fails with "table
/// already exists" once the winner has committed. The winner commits schema
/// and bookkeeping in one transaction, so a second attempt finds the
/// migration applied. Other migration errors (a modified or missing
/// migration) cannot heal and fail at once.
async fn migrate(pool: &AnyPool, migrator: &Migrator) -> Result<(), sqlx::migrate::MigrateError> {
    use sqlx::migrate::MigrateError;
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Err(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))
                if attempt < MIGRATE_ATTEMPTS =>
            {
                tracing::warn!(
                    attempt,
                    "migrating failed, as when another replica migrates at the same time; retrying"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn error_type(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => "unique_violation",
        sqlx::Error::Database(e) if e.is_foreign_key_violation() => "foreign_key_violation",
        sqlx::Error::Database(_) => "database_error",
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::Io(_) => "io",
        _ => "_OTHER",
    }
}

/// What one database call does: `SELECT` on `courses`, with its statement.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub operation: &'static str,
    pub collection: &'static str,
    pub sql: &'static str,
}

impl Op {
    pub const fn new(operation: &'static str, collection: &'static str, sql: &'static str) -> Self {
        Self {
            operation,
            collection,
            sql,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::namespace;

    #[test]
    fn the_namespace_is_the_database_never_the_credentials() {
        assert_eq!(
            &*namespace("sqlite://data/users.db?mode=rwc", true),
            "users.db"
        );
        assert_eq!(
            &*namespace(
                "postgres://app:s3cret@db:5432/learnsphere?sslmode=disable",
                false
            ),
            "learnsphere"
        );
        assert_eq!(&*namespace("postgres://app:s3cret@db:5432", false), "");
        assert_eq!(&*namespace("postgres://app:s3cret@db:5432/", false), "");
        assert!(!namespace("postgres://app:s3/cret@db", false).contains("s3"));
    }
}
