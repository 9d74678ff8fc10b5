//! The database: one pool over sqlx's `Any` driver, so SQLite and PostgreSQL share every
//! statement (portable SQL with `$n` placeholders, see `migrations/`).

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// Embedded migrations, run at every start (already-applied ones are skipped).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database handle.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) pool: AnyPool,
    /// The same database for the one write whose loss on a power cut is harmless: a
    /// check-in's `last_seen`, sequence number and attributes, which the device sends
    /// again at every check-in and nothing was acknowledged on. Its commits do not wait
    /// for the disk (SQLite `synchronous = NORMAL` in WAL mode, PostgreSQL
    /// `synchronous_commit = off`), yet survive a crash or kill -9 of the server, and the
    /// next durable commit flushes them too. One flush per check-in (about 1.3 ms on the
    /// benchmark machine, under the write lock) capped check-ins near 700 per second
    /// (BENCHMARKS.md §6). Everything else, reports first, stays on `pool`.
    pub(crate) relaxed: AnyPool,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and migrates.
    pub(crate) async fn connect(url: &str) -> Result<Store, crate::StartError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = options(sqlite, true).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        let relaxed = options(sqlite, false).connect(url).await?;
        Ok(Store { pool, relaxed })
    }
}

/// A pool whose commits wait for the disk (`durable`) or not; see [`Store::relaxed`].
fn options(sqlite: bool, durable: bool) -> AnyPoolOptions {
    let connections = match (sqlite, durable) {
        (true, true) => 4,
        // Relaxed writes are serialised by the write lock: more connections only idle.
        (true, false) => 2,
        (false, true) => 16,
        (false, false) => 4,
    };
    AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // WAL lets readers run beside the one writer; FULL sync makes a
                    // committed report survive a power cut or kill -9, as acknowledged.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    if durable {
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                    } else {
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                } else if !durable {
                    sqlx::query("SET synchronous_commit = off")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
}
