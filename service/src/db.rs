//! A service's SQL database: SQLite by default (a file, made on first start, or memory),
//! PostgreSQL in production, through `sqlx`'s `Any` driver. One URL syntax and one set of
//! connection settings for every service that keeps rows (the log server, the issuer, the
//! gateway's spent tokens).
//!
//! URLs: `sqlite:<path>` (or `sqlite://<path>`), `sqlite::memory:`, `postgres://…`.
//! SQLite runs in WAL mode with `synchronous = FULL` (a commit is on disk before anyone is
//! answered) and a 10 s busy timeout.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr as _;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor as _};

/// Which database is behind a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, one writer.
    Sqlite,
    /// PostgreSQL: many servers.
    Postgres,
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL names no supported backend.
    #[error("unsupported database URL {0:?} (want sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    /// The SQLite file's directory could not be made.
    #[error("database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database said no.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An open database.
#[derive(Debug, Clone)]
pub struct Database {
    /// The connection pool.
    pub pool: AnyPool,
    /// Its backend.
    pub backend: Backend,
    /// The SQLite file (none in memory or on PostgreSQL).
    pub sqlite_path: Option<PathBuf>,
}

/// Opens the database at `url` (making an SQLite file and its directory on first start);
/// `max_connections` bounds a file or server pool (an in-memory SQLite database has one).
pub async fn open(url: &str, max_connections: u32) -> Result<Database, DbError> {
    sqlx::any::install_default_drivers();
    let (backend, sqlite_path) = if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
            (Backend::Sqlite, None)
        } else {
            let p = PathBuf::from(path);
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            (Backend::Sqlite, Some(p))
        }
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Backend::Postgres, None)
    } else {
        return Err(DbError::UnsupportedUrl(url.to_owned()));
    };
    let mut connect_url = url.to_owned();
    if backend == Backend::Sqlite && sqlite_path.is_some() && !url.contains("mode=") {
        connect_url.push_str(if url.contains('?') { "&" } else { "?" });
        connect_url.push_str("mode=rwc");
    }
    let options = AnyConnectOptions::from_str(&connect_url)?;
    let pool = match backend {
        Backend::Sqlite => {
            AnyPoolOptions::new()
                // An in-memory database lives and dies with its one connection.
                .max_connections(if sqlite_path.is_some() {
                    max_connections
                } else {
                    1
                })
                .min_connections(if sqlite_path.is_some() { 0 } else { 1 })
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL: readers never block the writer. FULL: a commit is on disk
                        // before anyone is answered, even across power loss.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // 32 MiB of page cache (the default is 2 MiB): indexes that take
                        // random inserts thrash a small cache.
                        conn.execute("PRAGMA cache_size = -32768").await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await?
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options)
                .await?
        }
    };
    Ok(Database {
        pool,
        backend,
        sqlite_path,
    })
}

/// A migrator of `(name, sql)` steps, numbered from 1 in order. Each service keeps its own
/// steps in the repository's `migrations/` directory and never edits an applied one.
pub fn migrator(steps: &[(&'static str, &'static str)]) -> Migrator {
    let migrations = (1..)
        .zip(steps)
        .map(|(version, (name, sql))| {
            Migration::new(
                version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// For tests: a URL of a fresh, empty schema on the PostgreSQL server at
/// `LUCENT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), or `None`
/// (after printing a line containing `SKIPPED`) when it cannot be reached. Each call makes a
/// schema of its own, so tests never see each other's rows.
pub async fn test_postgres_url() -> Option<String> {
    use sqlx::Connection as _;
    let base = std::env::var("LUCENT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::AnyConnection::connect(&base),
    )
    .await;
    let Ok(Ok(mut conn)) = connect else {
        println!("SKIPPED: PostgreSQL not reachable at {base}");
        return None;
    };
    let mut tag = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tag);
    let schema = format!("lucent_test_{}", hex::encode(tag));
    if let Err(e) = sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
    {
        println!("SKIPPED: PostgreSQL at {base} refused CREATE SCHEMA: {e}");
        return None;
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn urls_and_migrations() {
        assert!(matches!(
            open("mysql://x", 4).await,
            Err(DbError::UnsupportedUrl(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/t.db");
        let db = open(&format!("sqlite:{}", path.display()), 4)
            .await
            .unwrap();
        assert_eq!(db.backend, Backend::Sqlite);
        assert_eq!(db.sqlite_path.as_deref(), Some(path.as_path()));
        let m = migrator(&[("t", "CREATE TABLE t (x BIGINT NOT NULL)")]);
        m.run(&db.pool).await.unwrap();
        // Applying them again changes nothing.
        m.run(&db.pool).await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (7)")
            .execute(&db.pool)
            .await
            .unwrap();
        assert!(path.exists());
    }
}
