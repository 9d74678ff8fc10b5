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
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and migrates.
    pub(crate) async fn connect(url: &str) -> Result<Store, crate::StartError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets readers run beside the one writer; FULL sync makes a
                        // committed report survive a power cut or kill -9, as acknowledged.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }
}
