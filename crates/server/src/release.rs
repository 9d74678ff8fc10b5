//! Releases: a signed envelope for one device class, accepted only when a device of that
//! class would accept it. The check is the device's own `authenticate` against the
//! fleet's trust anchors (the same code as the bootloader), then the class and the
//! sequence number against the releases already uploaded for that class.

use suitcase_processor::platform::{KeyStore, Rule, StaticKeys, TrustAnchor};
use suitcase_suit::{Command, CommandSequence, Manifest, Parameter, VendorId};
use suitcase_trust::Store;

use crate::State;
use crate::error::ApiError;

/// What the server learnt from an accepted envelope.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) sequence_number: u64,
    /// The manifest digest of the authentication wrapper (hex).
    pub(crate) manifest_digest: String,
    /// SHA-256 digests (hex) of the images the manifest names.
    pub(crate) images: Vec<String>,
    /// The new trust store the release carries, checked against the store in force.
    pub(crate) trust_store: Option<Vec<u8>>,
}

/// A vendor or class id as the canonical UUID text (8-4-4-4-12, lower case).
pub(crate) fn uuid_text(b: &[u8]) -> Option<String> {
    uuid::Uuid::from_slice(b).ok().map(|u| u.to_string())
}

/// Parses a UUID given by a client (hyphenated or not) into canonical text.
pub(crate) fn parse_uuid(s: &str) -> Result<String, ApiError> {
    uuid::Uuid::try_parse(s)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad(format!("not a UUID: {s}")))
}

/// Vendor and class ids the manifest sets (override-parameters in the shared sequence,
/// try-each branches included), and the image digests it names.
#[derive(Default)]
struct Ids {
    vendors: Vec<String>,
    classes: Vec<String>,
    images: Vec<String>,
}

fn collect(seq: &CommandSequence<'_>, ids: &mut Ids, depth: u8) -> Result<(), ApiError> {
    // The decoder already bounds nesting; this guards the walk all the same.
    if depth > 8 {
        return Ok(());
    }
    for item in seq.iter() {
        let (_, cmd) = item.map_err(|e| ApiError::rejected(format!("manifest: {e:?}")))?;
        match cmd {
            Command::OverrideParameters(p) | Command::SetParameters(p) => {
                for param in p.iter() {
                    match param {
                        Parameter::VendorId(VendorId::Uuid(b)) => {
                            ids.vendors.extend(uuid_text(b));
                        }
                        Parameter::ClassId(b) => ids.classes.extend(uuid_text(b)),
                        Parameter::ImageDigest(d) => ids.images.push(hex::encode(d.bytes)),
                        _ => {}
                    }
                }
            }
            Command::TryEach(t) => {
                for branch in t.branches() {
                    let branch =
                        branch.map_err(|e| ApiError::rejected(format!("manifest: {e:?}")))?;
                    collect(&branch, ids, depth + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn ids_of(manifest: &Manifest<'_>) -> Result<Ids, ApiError> {
    let mut ids = Ids::default();
    if let Some(shared) = &manifest.common.shared_sequence {
        collect(shared, &mut ids, 0)?;
    }
    Ok(ids)
}

impl State {
    /// Authenticates `envelope` as a device of `vendor`/`class` would, and checks that it
    /// is newer than every release of that class.
    pub(crate) async fn check_release(
        &self,
        envelope: &[u8],
        vendor: &str,
        class: &str,
    ) -> Result<Checked, ApiError> {
        // The fleet's trust store when the server holds one (the devices' own policy),
        // else the flat anchors of `--trust-anchor` and `--require`.
        let store_bytes = self.current_store();
        let store = match &store_bytes {
            Some(b) => Some(
                Store::decode(b)
                    .map_err(|e| ApiError::Internal(format!("the adopted trust store: {e}")))?,
            ),
            None => None,
        };
        let anchors: Vec<TrustAnchor<'_>> = self
            .inner
            .anchors
            .iter()
            .map(|k| TrustAnchor {
                key: k.as_verifying_key(),
                kid: None,
            })
            .collect();
        let all = if anchors.len() >= 32 {
            u32::MAX
        } else {
            (1u32 << anchors.len()) - 1
        };
        let rules = [Rule {
            anchors: all,
            at_least: self.inner.require,
        }];
        let flat = StaticKeys {
            anchors: &anchors,
            rules: &rules,
        };
        let keys: &dyn KeyStore = match &store {
            Some(s) => s,
            None => &flat,
        };
        let auth = suitcase_processor::authenticate(envelope, keys).map_err(|e| {
            ApiError::rejected(format!("envelope refused as a device would refuse it: {e}"))
        })?;
        let trust_store = self.check_carried(store.as_ref(), envelope, &auth)?;
        let manifest = auth.manifest();
        let ids = ids_of(manifest)?;
        if !ids.vendors.iter().any(|v| v == vendor) {
            return Err(ApiError::rejected(format!(
                "wrong vendor: the manifest sets vendor id {:?}, the release targets {vendor}",
                ids.vendors
            )));
        }
        if !ids.classes.iter().any(|c| c == class) {
            return Err(ApiError::rejected(format!(
                "wrong class: the manifest sets class id {:?}, the release targets {class}",
                ids.classes
            )));
        }
        let sequence_number = manifest.sequence_number;
        let seq = i64::try_from(sequence_number).map_err(|_| {
            ApiError::rejected("sequence number above 2^63-1 (would block every later update)")
        })?;
        let latest: Option<(i64,)> = sqlx::query_as(
            "SELECT MAX(sequence_number) FROM releases WHERE vendor_id = $1 AND class_id = $2 HAVING COUNT(*) > 0",
        )
        .bind(vendor.to_string())
        .bind(class.to_string())
        .fetch_optional(&self.inner.store.pool)
        .await?;
        if let Some((latest,)) = latest
            && seq <= latest
        {
            return Err(ApiError::rejected(format!(
                "sequence number {seq} is not newer than the latest release of this class ({latest})"
            )));
        }
        Ok(Checked {
            sequence_number,
            manifest_digest: hex::encode(auth.envelope().auth.digest.bytes),
            images: ids.images,
            trust_store,
        })
    }
}

// A macro, not a const: `concat!` keeps the SQL a literal, which sqlx requires.
macro_rules! release_columns {
    () => {
        "id, name, vendor_id, class_id, sequence_number, envelope_sha256, \
     manifest_digest, size, images, created_by, created_at, approved_by, approved_at"
    };
}

/// id, name, vendor_id, class_id, sequence_number, envelope_sha256, manifest_digest, size,
/// images, created_by, created_at, approved_by, approved_at.
type ReleaseRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

impl State {
    /// A release row as shown, with each image and whether its payload is uploaded.
    async fn release_json(&self, r: ReleaseRow) -> Result<serde_json::Value, ApiError> {
        let digests: Vec<String> = serde_json::from_str(&r.8).unwrap_or_default();
        let mut images = Vec::new();
        for d in digests {
            let uploaded = self.inner.blobs.exists(&d).await?;
            images.push(serde_json::json!({ "sha256": d, "uploaded": uploaded }));
        }
        Ok(serde_json::json!({
            "id": r.0, "name": r.1, "vendor_id": r.2, "class_id": r.3, "sequence_number": r.4,
            "envelope_sha256": r.5, "manifest_digest": r.6, "size": r.7, "images": images,
            "created_by": r.9, "created_at": r.10, "approved_by": r.11, "approved_at": r.12,
        }))
    }

    /// Checks and stores a release; returns it as shown.
    pub(crate) async fn create_release(
        &self,
        name: &str,
        vendor: &str,
        class: &str,
        envelope: &[u8],
        by: &str,
    ) -> Result<serde_json::Value, ApiError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ApiError::bad("name: 1 to 200 characters"));
        }
        let vendor = parse_uuid(vendor)?;
        let class = parse_uuid(class)?;
        // Under the write lock, so two uploads cannot both pass the sequence check.
        let _w = self.inner.writes.lock().await;
        let checked = self.check_release(envelope, &vendor, &class).await?;
        let sha = self.inner.blobs.put(envelope).await?;
        // The store's blob first, and its digest in the same row: a release that carries a
        // store never exists without it (approving it must adopt the store).
        let store_sha = match &checked.trust_store {
            Some(store) => Some(self.inner.blobs.put(store).await?),
            None => None,
        };
        let id = format!("rel-{}", crate::random_hex(8)?);
        let images = serde_json::to_string(&checked.images)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        sqlx::query(concat!(
            "INSERT INTO releases (",
            release_columns!(),
            ", trust_store_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12)"
        ))
        .bind(&id)
        .bind(name.to_string())
        .bind(&vendor)
        .bind(&class)
        .bind(i64::try_from(checked.sequence_number).unwrap_or(i64::MAX))
        .bind(&sha)
        .bind(&checked.manifest_digest)
        .bind(i64::try_from(envelope.len()).unwrap_or(i64::MAX))
        .bind(images)
        .bind(by.to_string())
        .bind(crate::now())
        .bind(store_sha)
        .execute(&self.inner.store.pool)
        .await?;
        tracing::info!(
            release = id,
            seq = checked.sequence_number,
            trust_store = checked.trust_store.is_some(),
            "release accepted"
        );
        self.release(&id).await
    }

    /// An operator approves a release for campaigns (the second pair of eyes: the author
    /// uploads, an operator decides it may reach devices).
    pub(crate) async fn approve_release(
        &self,
        id: &str,
        by: &str,
    ) -> Result<serde_json::Value, ApiError> {
        let _w = self.inner.writes.lock().await;
        // A release carrying a new trust store: adopting it is part of the approval, in
        // the same transaction (a crash between the two would leave a store in force
        // whose release can never be approved), and a store the one in force no longer
        // accepts fails the approval with nothing changed.
        let carried: Option<(Option<String>,)> =
            sqlx::query_as("SELECT trust_store_sha256 FROM releases WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.inner.store.pool)
                .await?;
        let (carried,) = carried.ok_or(ApiError::NotFound("release"))?;
        let mut tx = self.inner.store.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE releases SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_by IS NULL",
        )
        .bind(by.to_string())
        .bind(crate::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            let v = self.release(id).await?;
            return Err(ApiError::Conflict(format!(
                "already approved by {}",
                v["approved_by"].as_str().unwrap_or("?")
            )));
        }
        let adopted = match carried {
            Some(sha) => Some(self.adopt(id, &sha, &mut tx).await?),
            None => None,
        };
        tx.commit().await?;
        let adopted_version = adopted.as_ref().map(|(v, _)| *v);
        if let Some((version, store)) = adopted {
            self.set_current_store(store);
            tracing::info!(release = id, version, "trust store adopted");
        }
        let mut v = self.release(id).await?;
        if let Some(version) = adopted_version {
            v["trust_store_adopted"] = serde_json::json!(version);
        }
        Ok(v)
    }

    /// One release.
    pub(crate) async fn release(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let row: Option<ReleaseRow> = sqlx::query_as(concat!(
            "SELECT ",
            release_columns!(),
            " FROM releases WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.inner.store.pool)
        .await?;
        self.release_json(row.ok_or(ApiError::NotFound("release"))?)
            .await
    }

    /// Every release, newest first.
    pub(crate) async fn releases(&self) -> Result<serde_json::Value, ApiError> {
        let rows: Vec<ReleaseRow> = sqlx::query_as(concat!(
            "SELECT ",
            release_columns!(),
            " FROM releases ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.inner.store.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.release_json(r).await?);
        }
        Ok(serde_json::Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_canonical() {
        let t = parse_uuid("0123456789ABCDEF0123456789abcdef").unwrap();
        assert_eq!(t, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(parse_uuid(&t).unwrap(), t);
        assert!(parse_uuid("0123").is_err());
        assert!(parse_uuid("zz").is_err());
    }
}
