//! The fleet's trust store (docs/server.md, "The fleet's trust store").
//!
//! Started with `--trust-store`, the server holds the store its devices hold and checks
//! releases with it exactly as they do: `authenticate` with the store as the key store
//! (roles, thresholds, algorithm clauses), not a flat list of anchors. A release that
//! carries a new store (the component `["suitcase", "trust-store"]`) is refused unless the
//! store in force would accept it (`Store::verify_update`: newer, signed by the current
//! root threshold and by its own), so a store a device would refuse never reaches a
//! campaign. Approving such a release **adopts** the new store: from then on releases are
//! checked against it, so a key it revoked can no longer get a release uploaded.
//!
//! Why adopt at approval and not when the campaign ends: approval is the operators'
//! decision that the new keys are the fleet's keys; a revoked key must stop counting at
//! once, not after the last device reported. Devices still on the old store are what
//! the dual-signature transition (docs/trust-store.md) is for.

use suitcase_processor::Authenticated;
use suitcase_trust::{Carried, Store};

use crate::error::ApiError;
use crate::{StartError, State};

/// The store in force, as the server keeps it in memory.
pub(crate) type Current = std::sync::RwLock<Option<Vec<u8>>>;

/// A store's refusal as the API reports it.
fn refused(what: &str, e: suitcase_trust::TrustError) -> ApiError {
    ApiError::rejected(format!(
        "{what} refused as a device holding the fleet's store would refuse it: {e}"
    ))
}

impl State {
    /// At start: the store in force is the newest one the database holds; a store given
    /// on the command line provisions an empty database (it must be signed by its own
    /// root threshold) or, when newer, must be an update the database's store accepts.
    pub(crate) async fn load_trust_store(&self, given: Option<Vec<u8>>) -> Result<(), StartError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT version, sha256 FROM trust_stores ORDER BY version DESC")
                .fetch_optional(&self.inner.store.pool)
                .await?;
        let stored =
            match row {
                Some((_, sha)) => {
                    Some(self.inner.blobs.get(&sha).await.map_err(|_| {
                        StartError::Trust("the adopted trust store's blob is missing")
                    })?)
                }
                None => None,
            };
        let current = match (stored, given) {
            (None, None) => return Ok(()),
            (Some(s), None) => s,
            (None, Some(g)) => {
                let v = Store::verify_genesis(&g)
                    .map_err(|_| {
                        StartError::Trust("--trust-store is not signed by its own root threshold")
                    })?
                    .version();
                self.record_given(&g, v).await?;
                g
            }
            (Some(s), Some(g)) => {
                let cur = Store::decode(&s)
                    .map_err(|_| StartError::Trust("the adopted trust store does not decode"))?;
                let given = Store::decode(&g)
                    .map_err(|_| StartError::Trust("--trust-store does not decode"))?;
                if given.version() <= cur.version() {
                    tracing::info!(
                        adopted = cur.version(),
                        given = given.version(),
                        "keeping the adopted trust store (newer than or equal to --trust-store)"
                    );
                    s
                } else {
                    let v = cur
                        .verify_update(&g)
                        .map_err(|_| {
                            StartError::Trust(
                                "--trust-store is newer than the adopted store but not an update it accepts",
                            )
                        })?
                        .version();
                    self.record_given(&g, v).await?;
                    g
                }
            }
        };
        *self.current_store_slot() = Some(current);
        Ok(())
    }

    /// The store in force (`None`: the server checks releases with flat trust anchors).
    pub(crate) fn current_store(&self) -> Option<Vec<u8>> {
        match self.inner.trust_store.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn current_store_slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<Vec<u8>>> {
        match self.inner.trust_store.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    async fn record_store(
        &self,
        conn: &mut sqlx::AnyConnection,
        signed: &[u8],
        version: u64,
        release: Option<&str>,
    ) -> Result<(), ApiError> {
        let sha = self.inner.blobs.put(signed).await?;
        sqlx::query(
            "INSERT INTO trust_stores (version, sha256, release_id, adopted_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(sha)
        .bind(release.map(str::to_string))
        .bind(crate::now())
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records a store given at start.
    async fn record_given(&self, signed: &[u8], version: u64) -> Result<(), StartError> {
        let mut conn = self.inner.store.pool.acquire().await?;
        self.record_store(&mut conn, signed, version, None)
            .await
            .map_err(|_| StartError::Trust("cannot record the trust store"))
    }

    /// Puts `store` in force (after the transaction that recorded it committed).
    pub(crate) fn set_current_store(&self, store: Vec<u8>) {
        *self.current_store_slot() = Some(store);
    }

    /// Checks the store a release carries against the store in force; `Ok(None)` when
    /// the server runs without a store (nothing to check against) or there is none.
    pub(crate) fn check_carried(
        &self,
        current: Option<&Store<'_>>,
        envelope: &[u8],
        auth: &Authenticated<'_>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let Some(current) = current else {
            return Ok(None);
        };
        let new = match suitcase_trust::carried(auth) {
            Carried::None => return Ok(None),
            Carried::Store(s) => s,
            // The server could not check what it would roll out.
            Carried::Unreadable => {
                return Err(ApiError::rejected(
                    "the manifest carries a trust store the server cannot read: set it as \
                     the trust-store component's content (suitcase build: content = \"store.cbor\")",
                ));
            }
        };
        let next = current
            .verify_update(new)
            .map_err(|e| refused("the trust store this release carries is", e))?;
        // Once the agent commits the new store, the bootloader verifies the staged image
        // under it: the envelope must satisfy both policies (docs/trust-store.md), or a
        // device could be left with an image its new store refuses.
        suitcase_processor::authenticate(envelope, &next).map_err(|e| {
            ApiError::rejected(format!(
                "envelope refused under the trust store it carries (the bootloader checks the \
                 staged image with it once committed): {e}"
            ))
        })?;
        Ok(Some(new.to_vec()))
    }

    /// Called under the write lock, inside the approval's transaction `tx`, when release
    /// `id` is approved: checks the store it carries (`sha`) again against the store in
    /// force (another store may have been adopted since the upload) and records it in
    /// `tx`. Returns its version and bytes, to be put in force once `tx` committed.
    pub(crate) async fn adopt(
        &self,
        id: &str,
        sha: &str,
        tx: &mut sqlx::AnyConnection,
    ) -> Result<(u64, Vec<u8>), ApiError> {
        let new = self.inner.blobs.get(sha).await?;
        let Some(current) = self.current_store() else {
            return Err(ApiError::Conflict(
                "the server holds no trust store to update".into(),
            ));
        };
        let cur = Store::decode(&current)
            .map_err(|e| ApiError::Internal(format!("the adopted trust store: {e}")))?;
        let version = cur
            .verify_update(&new)
            .map_err(|e| refused("the trust store this release carries is now", e))?
            .version();
        self.record_store(tx, &new, version, Some(id)).await?;
        Ok((version, new))
    }

    /// `GET /api/v1/trust-store`: the store in force, or `{"mode": "anchors"}`.
    pub(crate) fn trust_store_json(&self) -> Result<serde_json::Value, ApiError> {
        let Some(bytes) = self.current_store() else {
            return Ok(
                serde_json::json!({ "mode": "anchors", "anchors": self.inner.anchors.len() }),
            );
        };
        let s = Store::decode(&bytes)
            .map_err(|e| ApiError::Internal(format!("the adopted trust store: {e}")))?;
        Ok(serde_json::json!({
            "mode": "store",
            "version": s.version(),
            "sha256": crate::sha256_hex(&bytes),
            "keys": s.keys().count(),
            "root_threshold": s.root_threshold(),
        }))
    }
}
