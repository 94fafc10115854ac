//! The services' PostgreSQL databases (`--postgres`): one per service,
//! created through the admin URL if missing.

use anyhow::Context as _;

/// Creates the database `name` through `admin_url` unless it exists.
pub(super) async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::{Connection as _, Executor as _, Row as _};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {}",
                mesh::db::describe_url(admin_url)
            )
        })?;
    let exists = sqlx::query("SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await?
        .try_get::<i64, _>("n")?
        > 0;
    if !exists {
        // Identifiers cannot be bound; `name` is ours ([a-z0-9_] only).
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
    }
    Ok(())
}

/// `postgres://u@h:5432/admin?x` → `postgres://u@h:5432/<db>?x`.
pub(super) fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "ls_users"),
            "postgres://postgres@127.0.0.1:5432/ls_users"
        );
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", "d"),
            "postgres://u:p@h/d?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "d"), "postgres://h:1/d");
    }
}
