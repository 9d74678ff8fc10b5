//! Bearer tokens. Operator tokens carry a role; device tokens name one device. Only the
//! SHA-256 of a token is stored: tokens are 32 random bytes, so a fast hash is enough (no
//! password to stretch), and a leaked database yields no usable token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::store::Store;
use crate::{State, now, random_hex, sha256_hex};

/// What an operator token may do. Every role may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Uploads releases and payloads.
    Author,
    /// Creates groups and campaigns; pauses, resumes and cancels them.
    Operator,
    /// Reads.
    Viewer,
}

impl Role {
    /// Every role, in the order tokens are bootstrapped.
    pub const ALL: [Role; 3] = [Role::Author, Role::Operator, Role::Viewer];

    /// The role's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Role::Author => "author",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// The operator behind a request.
#[derive(Clone, Debug)]
pub(crate) struct Operator {
    pub(crate) name: String,
    pub(crate) role: Role,
}

impl Operator {
    /// Refuses unless the caller has `role`.
    pub(crate) fn require(&self, role: Role, action: &'static str) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                have: self.role.name(),
                action,
            })
        }
    }
}

/// The device behind a request (its id).
#[derive(Clone, Debug)]
pub(crate) struct Device {
    pub(crate) id: String,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)
}

impl FromRequestParts<State> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let hash = sha256_hex(bearer(parts)?.as_bytes());
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, role FROM tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&state.inner.store.pool)
                .await?;
        let (name, role) = row.ok_or(ApiError::Unauthenticated)?;
        let role = Role::parse(&role).ok_or(ApiError::Unauthenticated)?;
        Ok(Operator { name, role })
    }
}

impl FromRequestParts<State> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        state.device_for_token(bearer(parts)?).await
    }
}

impl State {
    /// The device a token belongs to: HTTP's `Authorization: Bearer` value, or CoAP's
    /// token option (`coap::AUTH_OPTION`).
    pub(crate) async fn device_for_token(&self, token: &str) -> Result<Device, ApiError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ApiError::Unauthenticated);
        }
        self.device_for_token_hash(sha256_hex(token.as_bytes()))
            .await
    }

    /// [`State::device_for_token`] from the token's SHA-256 (hex): what CoAP keeps of an
    /// observer's token to check, at every notification, that it still holds.
    pub(crate) async fn device_for_token_hash(&self, hash: String) -> Result<Device, ApiError> {
        // Every device request starts here: a fleet checking in at thousands per second
        // would otherwise make this read its busiest query.
        let epoch = {
            let cache = locked(&self.inner.device_tokens);
            if let Some(id) = cache.tokens.get(&hash) {
                return Ok(Device { id: id.clone() });
            }
            cache.epoch
        };
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM devices WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&self.inner.store.pool)
            .await?;
        let (id,) = row.ok_or(ApiError::Unauthenticated)?;
        let mut cache = locked(&self.inner.device_tokens);
        // A revocation or re-enrolment since the read may have made this row stale:
        // answer from it (as a request that arrived a moment earlier would have been) but
        // do not cache it, or a revoked token could live on in the cache.
        if cache.epoch == epoch {
            // Bounded: one entry per live device token; the bound costs nothing.
            if cache.tokens.len() >= MAX_CACHED_TOKENS {
                cache.tokens.clear();
            }
            cache.tokens.insert(hash, id.clone());
        }
        Ok(Device { id })
    }

    /// Forgets the cached tokens of device `id` (its token was revoked or replaced), and
    /// moves the epoch so that a lookup which read the database before this change does
    /// not cache what it read. Called after the database changed.
    pub(crate) fn forget_device_tokens(&self, id: &str) {
        let mut cache = locked(&self.inner.device_tokens);
        cache.epoch = cache.epoch.wrapping_add(1);
        cache.tokens.retain(|_, d| d != id);
    }
}

/// The device token cache: SHA-256 of a token → device id, and an epoch moved by every
/// revocation and re-enrolment.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: std::collections::HashMap<String, String>,
    epoch: u64,
}

/// Most device tokens kept in [`State::device_for_token`]'s cache.
const MAX_CACHED_TOKENS: usize = 1 << 20;

/// A std mutex's guard; a poisoned one is used as is (the guarded maps are changed by
/// single inserts and removals, never left half-updated).
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Creates a token; returns it (the only time it exists outside the caller).
pub(crate) async fn create_token(
    store: &Store,
    role: Role,
    name: &str,
) -> Result<String, ApiError> {
    let token = random_hex(32)?;
    sqlx::query(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(random_hex(16)?)
    .bind(name.to_string())
    .bind(role.name())
    .bind(sha256_hex(token.as_bytes()))
    .bind(now())
    .execute(&store.pool)
    .await?;
    Ok(token)
}

/// One token per role when there are none yet.
pub(crate) async fn bootstrap(store: &Store) -> Result<Vec<(Role, String)>, ApiError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens")
        .fetch_one(&store.pool)
        .await?;
    if n > 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for role in Role::ALL {
        out.push((role, create_token(store, role, role.name()).await?));
    }
    Ok(out)
}

impl State {
    /// Every operator token: id, name, role, creation time (never the token or its hash).
    pub(crate) async fn tokens(&self) -> Result<serde_json::Value, ApiError> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, role, created_at FROM tokens ORDER BY created_at, id")
                .fetch_all(&self.inner.store.pool)
                .await?;
        Ok(serde_json::Value::Array(
            rows.into_iter()
                .map(|(id, name, role, created_at)| {
                    serde_json::json!({ "id": id, "name": name, "role": role, "created_at": created_at })
                })
                .collect(),
        ))
    }

    /// Revokes operator token `id` at once (its next request answers 401). The last
    /// operator token cannot be revoked: nobody could create another without a restart
    /// with `--create-token`.
    pub(crate) async fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        let _w = self.inner.writes.lock().await;
        let role: Option<(String,)> = sqlx::query_as("SELECT role FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.store.pool)
            .await?;
        let (role,) = role.ok_or(ApiError::NotFound("token"))?;
        if role == Role::Operator.name() {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens WHERE role = $1")
                .bind(Role::Operator.name())
                .fetch_one(&self.inner.store.pool)
                .await?;
            if n <= 1 {
                return Err(ApiError::Conflict(
                    "the last operator token cannot be revoked".into(),
                ));
            }
        }
        sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&self.inner.store.pool)
            .await?;
        tracing::info!(token = id, role, "token revoked");
        Ok(())
    }

    /// Revokes device `id`'s token (a stolen or decommissioned device): its next request
    /// answers 401; its history (reports, campaign states) stays. The stored hash is
    /// replaced by a random value no token hashes to (the column is unique and not null).
    pub(crate) async fn revoke_device(&self, id: &str) -> Result<(), ApiError> {
        let _w = self.inner.writes.lock().await;
        let done = sqlx::query("UPDATE devices SET token_hash = $1 WHERE id = $2")
            .bind(format!("revoked-{}", random_hex(16)?))
            .bind(id)
            .execute(&self.inner.store.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::NotFound("device"));
        }
        self.forget_device_tokens(id);
        tracing::info!(device = id, "device token revoked");
        Ok(())
    }
}
