#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod api;
mod auth;
mod blob;
mod campaign;
pub mod coap;
mod dashboard;
mod device;
mod error;
mod release;
mod store;
mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use api::app;
pub use auth::Role;
pub use coap::serve_coap;
pub use error::ApiError;
use suitcase_cose::OwnedVerifyingKey;

/// Largest request body outside uploads (JSON, reports).
pub const MAX_BODY: usize = 64 * 1024;
/// Default largest envelope or payload upload.
pub const DEFAULT_MAX_UPLOAD: usize = 16 * 1024 * 1024;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory: the SQLite file (by default), blobs, the first tokens.
    pub data: PathBuf,
    /// Database URL; `None` = `sqlite://DATA/suitcase.db`.
    pub database: Option<String>,
    /// The fleet's trust anchors: every release must authenticate against them.
    pub trust_anchors: Vec<OwnedVerifyingKey>,
    /// How many anchors must have signed (`None` = all of them).
    pub require: Option<u8>,
    /// The fleet's signed trust store (`--trust-store`): releases are then checked with
    /// it as the devices check them, and a release carrying a newer store adopts it when
    /// approved (docs/server.md, "The fleet's trust store"). The anchors may then be empty.
    pub trust_store: Option<Vec<u8>>,
    /// Largest envelope or payload upload, in bytes.
    pub max_upload: usize,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory or a file in it.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The database could not be opened.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The trust configuration is unusable.
    #[error("trust anchors: {0}")]
    Trust(&'static str),
}

/// Shared server state: cheap to clone (everything behind `Arc` or a pool).
#[derive(Clone)]
pub struct State {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    blobs: blob::Blobs,
    anchors: Vec<OwnedVerifyingKey>,
    require: u8,
    /// The fleet's trust store in force (`None`: flat anchors).
    trust_store: trust::Current,
    max_upload: usize,
    /// Serialises writes. Check-ins, reports and operator actions read counts and then
    /// write a transition, which must not interleave; and SQLite refuses (rather than
    /// waits for) a read transaction that turns into a write while another writer has
    /// committed. One server process; several nodes on PostgreSQL would need row locks.
    writes: tokio::sync::Mutex<()>,
    /// Idle check-ins not yet written (device.rs, `check_in` and `flush_seen`).
    seen: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    /// Bumped when a campaign starts, advances a phase, pauses or resumes: what some
    /// device is offered may have changed, so CoAP observers of `device/v1/offer` are
    /// re-checked (a counter, not the offers: each observer's own view is recomputed).
    offers: tokio::sync::watch::Sender<u64>,
    /// Device tokens already looked up: SHA-256 of the token → device id (auth.rs). A
    /// revocation or re-enrolment forgets the device's entries.
    device_tokens: std::sync::Mutex<auth::TokenCache>,
    /// The devices with an open entry in a running campaign, as of an `offers` value
    /// (device.rs, `has_open_entries`).
    open_index: std::sync::Mutex<Option<(u64, std::collections::HashSet<String>)>>,
    /// One rebuild of `open_index` at a time.
    open_rebuild: tokio::sync::Mutex<()>,
}

impl State {
    /// Opens the data directory and database and runs the migrations.
    ///
    /// # Errors
    /// [`StartError`] when the directory, the database or the trust configuration is unusable.
    pub async fn open(config: Config) -> Result<State, StartError> {
        if config.trust_anchors.is_empty() && config.trust_store.is_none() {
            return Err(StartError::Trust(
                "at least one --trust-anchor, or a --trust-store, is required",
            ));
        }
        if config.trust_anchors.len() > 32 {
            return Err(StartError::Trust("at most 32 trust anchors"));
        }
        let n = config.trust_anchors.len() as u8;
        let require = config.require.unwrap_or(n);
        if n > 0 && (require == 0 || require > n) {
            return Err(StartError::Trust(
                "--require must be between 1 and the number of anchors",
            ));
        }
        std::fs::create_dir_all(&config.data)
            .map_err(|e| StartError::Io(config.data.clone(), e))?;
        let blobs = blob::Blobs::open(config.data.join("blobs"))
            .map_err(|e| StartError::Io(config.data.join("blobs"), e))?;
        let url = match &config.database {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                config.data.join("suitcase.db").display()
            ),
        };
        let store = store::Store::connect(&url).await?;
        let state = State {
            inner: Arc::new(Inner {
                store,
                blobs,
                anchors: config.trust_anchors,
                require,
                trust_store: trust::Current::default(),
                max_upload: config.max_upload,
                writes: tokio::sync::Mutex::new(()),
                seen: std::sync::Mutex::default(),
                offers: tokio::sync::watch::Sender::new(0),
                device_tokens: std::sync::Mutex::default(),
                open_index: std::sync::Mutex::default(),
                open_rebuild: tokio::sync::Mutex::new(()),
            }),
        };
        state.load_trust_store(config.trust_store).await?;
        Ok(state)
    }

    /// Creates one token per role when the database has none, and returns them (to be
    /// shown once: only their hashes are stored).
    ///
    /// # Errors
    /// Database failures.
    pub async fn bootstrap_tokens(&self) -> Result<Vec<(Role, String)>, ApiError> {
        auth::bootstrap(&self.inner.store).await
    }

    /// Creates a token for `role` named `name`; returns the token (shown once).
    ///
    /// # Errors
    /// Database failures.
    pub async fn create_token(&self, role: Role, name: &str) -> Result<String, ApiError> {
        auth::create_token(&self.inner.store, role, name).await
    }

    /// Tells the observers of offers that some device's offer may have changed.
    pub(crate) fn offers_changed(&self) {
        // `send_modify` notifies even with no receiver (no CoAP endpoint running).
        self.inner.offers.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes when [`State::offers_changed`] was called.
    pub(crate) fn watch_offers(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.offers.subscribe()
    }

    /// Times out devices and moves campaigns that need it (also done on every check-in
    /// and report; this catches campaigns whose devices went silent).
    ///
    /// # Errors
    /// Database failures.
    pub async fn tick(&self) -> Result<(), ApiError> {
        campaign::tick(self).await
    }

    /// Writes the idle check-ins kept in memory (done every second by [`serve_on`], and
    /// before any read of devices). Call it before dropping a server to keep them.
    ///
    /// # Errors
    /// Database failures.
    pub async fn flush(&self) -> Result<(), ApiError> {
        self.flush_seen().await
    }
}

/// Serves `state` on `listen` until Ctrl-C, ticking campaigns every `tick` seconds.
///
/// # Errors
/// When the address cannot be bound or the server fails.
pub async fn serve(
    state: State,
    listen: SocketAddr,
    tick: std::time::Duration,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    serve_on(state, listener, tick, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Serves `state` on a bound `listener` until `shutdown` completes, ticking campaigns
/// every `tick` (an in-process server: `suitcase demo` binds 127.0.0.1:0).
///
/// # Errors
/// When the server fails.
pub async fn serve_on(
    state: State,
    listener: tokio::net::TcpListener,
    tick: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let ticker = state.clone();
    let ticking = tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            if let Err(e) = ticker.tick().await {
                tracing::warn!(error = %e, "campaign tick failed");
            }
        }
    });
    let flusher = state.clone();
    // Stopped by a signal between flushes, not aborted: an abort inside a flush would
    // lose the batch it had taken.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let flushing = tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stopped.changed() => return,
            }
            if let Err(e) = flusher.flush().await {
                tracing::warn!(error = %e, "writing check-ins failed");
            }
        }
    });
    let result = axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    ticking.abort();
    let _ = stop.send(true);
    let _ = flushing.await;
    // The last idle check-ins, on a clean shutdown.
    if let Err(e) = state.flush().await {
        tracing::warn!(error = %e, "writing check-ins failed");
    }
    result
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `n` random bytes as lower-case hex (ids, tokens, nonces).
pub(crate) fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("random: {e}")))?;
    Ok(hex::encode(b))
}

/// SHA-256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
