//! Devices: enrolment with proof of key possession, check-in, reports; and groups.
//!
//! Enrolment (two requests):
//! 1. `POST /device/v1/enrol/challenge` → a fresh nonce (single use, 5 minutes).
//! 2. `POST /device/v1/enrol` with the device id, its P-256 public key (SPKI PEM), vendor
//!    and class ids, attributes, and `proof`: a COSE_Sign1 (ES256, payload attached) over
//!    `nonce ‖ device id`, made with the same device signing code as its reports. The id
//!    is inside the signature so an eavesdropper cannot enrol someone else's key under
//!    another name. The answer is the device's bearer token (only its hash is stored).
//!
//! Reports are COSE_Sign1 over a SUIT_Report (`suitcase_processor::report`); the server
//! verifies them with the enrolled key and requires the nonce it handed out with the
//! offer, so an old report cannot be replayed into a new campaign.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use suitcase_cose::{CoseKind, CoseMessage, OwnedVerifyingKey};

use crate::auth::locked;
use crate::campaign::{self, Campaign};
use crate::error::ApiError;
use crate::{State, now, now_nanos, random_hex, sha256_hex};

/// How long an enrolment challenge stays valid, in seconds.
const CHALLENGE_TTL: i64 = 300;
/// Limits on what a device may store about itself.
const MAX_ATTRIBUTES: usize = 32;
const MAX_TEXT: usize = 200;

/// The enrolment request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrol {
    pub(crate) id: String,
    pub(crate) public_key: String,
    pub(crate) vendor_id: String,
    pub(crate) class_id: String,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, String>,
    /// Hex of the COSE_Sign1 over `nonce ‖ id`.
    pub(crate) proof: String,
    /// The nonce from the challenge (hex).
    pub(crate) nonce: String,
}

/// A check-in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckIn {
    /// The sequence number the device runs.
    pub(crate) sequence_number: u64,
    /// Replaces the device's attributes when given.
    pub(crate) attributes: Option<BTreeMap<String, String>>,
}

/// What a check-in answers when there is something to apply.
#[derive(Debug)]
pub(crate) struct Offer {
    pub(crate) campaign_id: String,
    pub(crate) release_id: String,
    pub(crate) nonce: String,
    pub(crate) envelope: Vec<u8>,
    /// SHA-256 digests (hex) of the images the manifest names, comma-separated.
    pub(crate) payloads: String,
}

/// A device as shown to operators and to itself.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub(crate) struct DeviceView {
    pub(crate) id: String,
    pub(crate) vendor_id: String,
    pub(crate) class_id: String,
    #[serde(skip)]
    pub(crate) attributes: String,
    pub(crate) sequence_number: i64,
    pub(crate) enrolled_at: i64,
    pub(crate) last_seen: Option<i64>,
}

impl DeviceView {
    pub(crate) fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let attrs: serde_json::Value =
            serde_json::from_str(&self.attributes).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("attributes".into(), attrs);
        }
        v
    }
}

// A macro, not a const: `concat!` keeps the SQL a literal, which sqlx requires.
macro_rules! device_columns {
    () => {
        "id, vendor_id, class_id, attributes, sequence_number, enrolled_at, last_seen"
    };
}

/// A group to create: a static list, or a filter over attributes (every pair must match).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGroup {
    pub(crate) name: String,
    pub(crate) devices: Option<Vec<String>>,
    pub(crate) filter: Option<BTreeMap<String, String>>,
}

fn check_text(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(ApiError::bad(format!(
            "{what}: 1 to {MAX_TEXT} printable characters"
        )));
    }
    Ok(())
}

fn check_attributes(a: &BTreeMap<String, String>) -> Result<String, ApiError> {
    if a.len() > MAX_ATTRIBUTES {
        return Err(ApiError::bad(format!(
            "at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    for (k, v) in a {
        check_text("attribute name", k)?;
        if v.len() > MAX_TEXT {
            return Err(ApiError::bad(format!("attribute {k}: value too long")));
        }
    }
    serde_json::to_string(a).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The P-256 key of a device (reports are ES256, so no other kind can report).
fn device_key(pem: &str) -> Result<OwnedVerifyingKey, ApiError> {
    match suitcase_cose::verifying_key_from_pem(pem) {
        Ok(k @ OwnedVerifyingKey::P256(_)) => Ok(k),
        Ok(_) => Err(ApiError::bad(
            "public_key: reports are ES256, so a P-256 key is required",
        )),
        Err(e) => Err(ApiError::bad(format!("public_key: {e}"))),
    }
}

/// Verifies a COSE_Sign1 with an attached payload under `key` and returns the payload.
fn verified_payload<'a>(key: &OwnedVerifyingKey, cose: &'a [u8]) -> Result<&'a [u8], ApiError> {
    let msg = CoseMessage::decode(cose).map_err(|e| ApiError::bad(format!("COSE: {e}")))?;
    if msg.kind != CoseKind::Sign1 {
        return Err(ApiError::bad("COSE: a COSE_Sign1 is required"));
    }
    let payload = msg
        .payload
        .ok_or_else(|| ApiError::bad("COSE: the payload must be attached"))?;
    key.as_verifying_key()
        .verify(&msg, &[])
        .map_err(|_| ApiError::rejected("signature invalid"))?;
    Ok(payload)
}

/// What a SUIT_Report says (the fields the server acts on).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReportFacts {
    pub(crate) nonce: Option<Vec<u8>>,
    pub(crate) success: bool,
    pub(crate) reason: Option<i64>,
    /// The manifest digest the report is about (hex).
    pub(crate) manifest_digest: Option<String>,
}

/// Reads a SUIT_Report (see `suitcase_processor::report::encode_report` for its shape).
pub(crate) fn read_report(bytes: &[u8]) -> Result<ReportFacts, ApiError> {
    use ciborium::Value;
    let bad = |m: &str| ApiError::bad(format!("SUIT_Report: {m}"));
    let value: Value = ciborium::from_reader(bytes).map_err(|_| bad("not CBOR"))?;
    let Value::Map(entries) = value else {
        return Err(bad("not a map"));
    };
    let key = |k: &Value| k.as_integer().and_then(|i| i64::try_from(i).ok());
    let mut facts = ReportFacts {
        nonce: None,
        success: false,
        reason: None,
        manifest_digest: None,
    };
    let mut result_seen = false;
    for (k, v) in &entries {
        match key(k) {
            Some(2) => facts.nonce = Some(v.as_bytes().ok_or_else(|| bad("nonce"))?.clone()),
            Some(4) => {
                result_seen = true;
                match v {
                    Value::Bool(true) => facts.success = true,
                    Value::Map(m) => {
                        facts.reason = m
                            .iter()
                            .find(|(k, _)| key(k) == Some(7))
                            .and_then(|(_, v)| v.as_integer())
                            .and_then(|i| i64::try_from(i).ok());
                    }
                    _ => return Err(bad("result")),
                }
            }
            Some(99) => {
                let digest = v
                    .as_array()
                    .and_then(|a| a.get(1))
                    .and_then(Value::as_array)
                    .and_then(|d| d.get(1))
                    .and_then(Value::as_bytes)
                    .ok_or_else(|| bad("reference"))?;
                facts.manifest_digest = Some(hex::encode(digest));
            }
            _ => {}
        }
    }
    if !result_seen {
        return Err(bad("no result (key 4)"));
    }
    Ok(facts)
}

impl State {
    /// A fresh enrolment nonce.
    pub(crate) async fn challenge(&self) -> Result<String, ApiError> {
        let nonce = random_hex(32)?;
        let _w = self.inner.writes.lock().await;
        let pool = &self.inner.store.pool;
        let t = now();
        // Expired challenges are dropped here, so the table stays small without a janitor.
        sqlx::query("DELETE FROM enrolment_nonces WHERE expires_at < $1")
            .bind(t)
            .execute(pool)
            .await?;
        sqlx::query("INSERT INTO enrolment_nonces (nonce, expires_at) VALUES ($1, $2)")
            .bind(&nonce)
            .bind(t + CHALLENGE_TTL)
            .execute(pool)
            .await?;
        Ok(nonce)
    }

    /// Enrols (or re-enrols, with the same key) a device; returns its new token.
    pub(crate) async fn enrol(&self, e: Enrol) -> Result<String, ApiError> {
        check_text("id", &e.id)?;
        let vendor = crate::release::parse_uuid(&e.vendor_id)?;
        let class = crate::release::parse_uuid(&e.class_id)?;
        let attributes = check_attributes(&e.attributes)?;
        let key = device_key(&e.public_key)?;
        let proof = hex::decode(&e.proof).map_err(|_| ApiError::bad("proof: not hex"))?;
        let nonce = hex::decode(&e.nonce).map_err(|_| ApiError::bad("nonce: not hex"))?;
        let signed = verified_payload(&key, &proof)?;
        let mut expected = nonce.clone();
        expected.extend_from_slice(e.id.as_bytes());
        if signed != expected.as_slice() {
            return Err(ApiError::rejected("proof: does not sign nonce ‖ id"));
        }
        let _w = self.inner.writes.lock().await;
        let pool = &self.inner.store.pool;
        let mut tx = pool.begin().await?;
        // Consuming the nonce in the same transaction as the enrolment makes it single use.
        let used =
            sqlx::query("DELETE FROM enrolment_nonces WHERE nonce = $1 AND expires_at >= $2")
                .bind(&e.nonce)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        if used.rows_affected() != 1 {
            return Err(ApiError::rejected("nonce: unknown, used or expired"));
        }
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT public_key FROM devices WHERE id = $1")
                .bind(&e.id)
                .fetch_optional(&mut *tx)
                .await?;
        let token = random_hex(32)?;
        match existing {
            Some((pem,)) => {
                if device_key(&pem).ok() != Some(key) {
                    return Err(ApiError::Conflict(
                        "this device id is enrolled with another key".into(),
                    ));
                }
                sqlx::query("UPDATE devices SET token_hash = $1, attributes = $2 WHERE id = $3")
                    .bind(sha256_hex(token.as_bytes()))
                    .bind(attributes)
                    .bind(&e.id)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO devices (id, public_key, token_hash, vendor_id, class_id, attributes, sequence_number, enrolled_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
                )
                .bind(&e.id)
                .bind(&e.public_key)
                .bind(sha256_hex(token.as_bytes()))
                .bind(vendor)
                .bind(class)
                .bind(attributes)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        // A re-enrolment replaced the token: the old one must stop working.
        self.forget_device_tokens(&e.id);
        tracing::info!(device = e.id, "device enrolled");
        Ok(token)
    }

    /// Whether `device` may have an entry still to offer or to hear from in a running
    /// campaign: an in-memory index of such devices, rebuilt (one query) when the
    /// `offers` counter moved. A device only *gains* an open entry when a campaign is
    /// created or resumed, and both move the counter after their commit, so the index
    /// never says "no" for a device that has one as of the counter value it was built
    /// at; a stale "yes" (an entry closed since) only sends the check-in down the full
    /// path, which finds nothing.
    async fn has_open_entries(&self, device: &str) -> Result<bool, ApiError> {
        let generation = *self.inner.offers.borrow();
        if let Some((g, set)) = &*locked(&self.inner.open_index)
            && *g == generation
        {
            return Ok(set.contains(device));
        }
        let _one = self.inner.open_rebuild.lock().await;
        // Read the counter before the query: a campaign committed after this read moves
        // it again, and the next check-in rebuilds.
        let generation = *self.inner.offers.borrow();
        if let Some((g, set)) = &*locked(&self.inner.open_index)
            && *g == generation
        {
            return Ok(set.contains(device));
        }
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT cd.device_id FROM campaign_devices cd \
             JOIN campaigns c ON c.id = cd.campaign_id \
             WHERE c.state = $1 AND cd.state IN ('pending', 'offered')",
        )
        .bind(campaign::RUNNING)
        .fetch_all(&self.inner.store.pool)
        .await?;
        let set: std::collections::HashSet<String> = rows.into_iter().map(|(d,)| d).collect();
        let open = set.contains(device);
        *locked(&self.inner.open_index) = Some((generation, set));
        Ok(open)
    }

    /// Idle check-ins not yet written: device → (sequence number, seen at).
    fn seen(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (i64, i64)>> {
        locked(&self.inner.seen)
    }

    /// Writes the idle check-ins kept in memory, in one transaction. A row is only moved
    /// forward in time (a check-in written by the locked path since wins).
    pub(crate) async fn flush_seen(&self) -> Result<(), ApiError> {
        let batch = std::mem::take(&mut *self.seen());
        if batch.is_empty() {
            return Ok(());
        }
        let _w = self.inner.writes.lock().await;
        let mut tx = self.inner.store.pool.begin().await?;
        for (device, (seq, at)) in &batch {
            sqlx::query(
                "UPDATE devices SET sequence_number = $1, last_seen = $2 \
                 WHERE id = $3 AND (last_seen IS NULL OR last_seen <= $2)",
            )
            .bind(seq)
            .bind(at)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One device.
    pub(crate) async fn device(&self, id: &str) -> Result<DeviceView, ApiError> {
        self.flush_seen().await?;
        sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.inner.store.pool)
        .await?
        .ok_or(ApiError::NotFound("device"))
    }

    /// Every device, by id.
    pub(crate) async fn devices(&self) -> Result<Vec<DeviceView>, ApiError> {
        self.flush_seen().await?;
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices ORDER BY id"
        ))
        .fetch_all(&self.inner.store.pool)
        .await?)
    }

    /// Records a check-in and returns what the device should apply, if anything.
    pub(crate) async fn check_in(
        &self,
        device: &str,
        c: CheckIn,
    ) -> Result<Option<Offer>, ApiError> {
        let seq = i64::try_from(c.sequence_number)
            .map_err(|_| ApiError::bad("sequence_number above 2^63-1"))?;
        let attributes = c.attributes.as_ref().map(check_attributes).transpose()?;
        // Most check-ins of a fleet find nothing to do. Reading the device's open campaign
        // entries needs no lock (WAL readers run beside the writer); when there are none
        // and no attributes changed, the check-in only says "seen now, running N": kept in
        // memory and written in batches (`flush_seen`, every second and before any read
        // of devices), so an idle fleet costs no write, no fsync and no lock per
        // check-in. A campaign that starts between this read and the answer reaches the
        // device at its next check-in, as if it had checked in a moment earlier.
        if attributes.is_none() && !self.has_open_entries(device).await? {
            self.seen().insert(device.to_string(), (seq, now()));
            return Ok(None);
        }
        let _w = self.inner.writes.lock().await;
        // This check-in is written now: an older one still in memory must not follow it.
        self.seen().remove(device);
        let pool = &self.inner.store.pool;
        // Not flushed to disk before the answer (`Store::relaxed`): the device repeats all
        // of it at its next check-in, and one flush per check-in was the server's ceiling.
        sqlx::query(
            "UPDATE devices SET sequence_number = $1, last_seen = $2, attributes = COALESCE($3, attributes) WHERE id = $4",
        )
        .bind(seq)
        .bind(now())
        .bind(attributes)
        .bind(device)
        .execute(&self.inner.store.relaxed)
        .await?;
        let rows = self.open_offers(device).await?;
        if rows.is_empty() {
            // Its last entry closed (reported, timed out, campaign done): out of the index,
            // or every later idle check-in would take this path. Under the write lock no
            // campaign can give it an entry meanwhile; an index built at an older offers
            // value is rebuilt anyway.
            let generation = *self.inner.offers.borrow();
            if let Some((g, set)) = &mut *locked(&self.inner.open_index)
                && *g == generation
            {
                set.remove(device);
            }
        }
        for (cid, _, _) in &rows {
            self.evaluate_locked(cid).await?;
        }
        for (cid, ordinal, release_id) in rows {
            if !self.in_current_phase(&cid, ordinal).await? {
                continue;
            }
            // Re-read: the evaluation may have timed this device out.
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT state, nonce FROM campaign_devices WHERE campaign_id = $1 AND device_id = $2",
            )
            .bind(&cid)
            .bind(device)
            .fetch_optional(pool)
            .await?;
            let Some((state, nonce)) = row else { continue };
            let (release_seq, envelope_sha, images): (i64, String, String) = sqlx::query_as(
                "SELECT sequence_number, envelope_sha256, images FROM releases WHERE id = $1",
            )
            .bind(&release_id)
            .fetch_one(pool)
            .await?;
            if seq >= release_seq {
                // Already installed (or newer): nothing to send, and it counts as done.
                sqlx::query(
                    "UPDATE campaign_devices SET state = 'succeeded', finished_at = $1, reason = 'already installed' \
                     WHERE campaign_id = $2 AND device_id = $3",
                )
                .bind(now())
                .bind(&cid)
                .bind(device)
                .execute(pool)
                .await?;
                self.evaluate_locked(&cid).await?;
                continue;
            }
            let nonce = match (state.as_str(), nonce) {
                ("offered", Some(n)) => n,
                ("pending", _) => {
                    let n = random_hex(16)?;
                    sqlx::query(
                        "UPDATE campaign_devices SET state = 'offered', nonce = $1, offered_at = $2 \
                         WHERE campaign_id = $3 AND device_id = $4",
                    )
                    .bind(&n)
                    .bind(now())
                    .bind(&cid)
                    .bind(device)
                    .execute(pool)
                    .await?;
                    n
                }
                _ => continue,
            };
            let envelope = self.inner.blobs.get(&envelope_sha).await?;
            let payloads: Vec<String> = serde_json::from_str(&images).unwrap_or_default();
            return Ok(Some(Offer {
                campaign_id: cid,
                release_id,
                nonce,
                envelope,
                payloads: payloads.join(","),
            }));
        }
        Ok(None)
    }

    /// The running campaigns in which `device` is pending or offered, oldest first (as
    /// Mender does: one rollout at a time per device): id, rollout ordinal, release.
    async fn open_offers(&self, device: &str) -> Result<Vec<(String, i64, String)>, ApiError> {
        Ok(sqlx::query_as(
            "SELECT c.id, cd.ordinal, c.release_id FROM campaign_devices cd \
             JOIN campaigns c ON c.id = cd.campaign_id \
             WHERE cd.device_id = $1 AND c.state = $2 AND cd.state IN ('pending', 'offered') \
             ORDER BY c.created_at, c.id",
        )
        .bind(device)
        .bind(campaign::RUNNING)
        .fetch_all(&self.inner.store.pool)
        .await?)
    }

    /// Whether campaign `cid` runs and its current phase covers rollout position `ordinal`.
    async fn in_current_phase(&self, cid: &str, ordinal: i64) -> Result<bool, ApiError> {
        let c: Campaign = self.campaign(cid).await?;
        if c.state != campaign::RUNNING {
            return Ok(false);
        }
        let total = self.counts(cid).await?.total;
        Ok(ordinal < c.cut(total))
    }

    /// The campaign and release a check-in of `device` would be offered now, read only
    /// (no evaluation, no nonce handed out): what CoAP observers of `device/v1/offer`
    /// see. A device that already runs the release is still shown it; its check-in then
    /// counts it as done.
    pub(crate) async fn offer_view(
        &self,
        device: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
        for (cid, ordinal, release_id) in self.open_offers(device).await? {
            if self.in_current_phase(&cid, ordinal).await? {
                return Ok(Some((cid, release_id)));
            }
        }
        Ok(None)
    }

    /// Verifies and records a signed report; returns whether it said success.
    pub(crate) async fn report(&self, device: &str, body: &[u8]) -> Result<bool, ApiError> {
        let (pem,): (String,) = sqlx::query_as("SELECT public_key FROM devices WHERE id = $1")
            .bind(device)
            .fetch_optional(&self.inner.store.pool)
            .await?
            .ok_or(ApiError::NotFound("device"))?;
        let key =
            device_key(&pem).map_err(|_| ApiError::Internal("stored key unreadable".into()))?;
        let facts = read_report(verified_payload(&key, body)?)?;
        let nonce = facts.nonce.as_ref().map(hex::encode).ok_or_else(|| {
            ApiError::rejected("the report carries no nonce: it answers no offer")
        })?;
        let _w = self.inner.writes.lock().await;
        let pool = &self.inner.store.pool;
        let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT cd.campaign_id, cd.state, r.manifest_digest, r.id, r.sequence_number FROM campaign_devices cd \
             JOIN campaigns c ON c.id = cd.campaign_id JOIN releases r ON r.id = c.release_id \
             WHERE cd.device_id = $1 AND cd.nonce = $2",
        )
        .bind(device)
        .bind(&nonce)
        .fetch_optional(pool)
        .await?;
        let (cid, state, digest, _release, release_seq) = row.ok_or_else(|| {
            ApiError::rejected("the report's nonce matches no offer to this device")
        })?;
        if let Some(d) = &facts.manifest_digest
            && *d != digest
        {
            return Err(ApiError::rejected(
                "the report is about another manifest than the one offered",
            ));
        }
        if !matches!(state.as_str(), "offered" | "timed_out") {
            return Err(ApiError::Conflict(format!(
                "this offer was already reported ({state})"
            )));
        }
        let t = now();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO reports (id, device_id, campaign_id, received_at, success, reason_code, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        // Ids sort in arrival order (nanoseconds first): `received_at` is in seconds, and
        // the dashboard's "last report" needs an order within a second.
        .bind(format!("rpt-{:020}-{}", now_nanos(), random_hex(4)?))
        .bind(device)
        .bind(&cid)
        .bind(t)
        .bind(i64::from(facts.success))
        .bind(facts.reason)
        .bind(hex::encode(body))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE campaign_devices SET state = $1, finished_at = $2, reason = $3 WHERE campaign_id = $4 AND device_id = $5",
        )
        .bind(if facts.success { "succeeded" } else { "failed" })
        .bind(t)
        .bind(facts.reason.map(|r| format!("SUIT report reason {r}")))
        .bind(&cid)
        .bind(device)
        .execute(&mut *tx)
        .await?;
        if facts.success {
            sqlx::query(
                "UPDATE devices SET sequence_number = $1 WHERE id = $2 AND sequence_number < $1",
            )
            .bind(release_seq)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.evaluate_locked(&cid).await?;
        Ok(facts.success)
    }

    /// Creates a group.
    pub(crate) async fn create_group(&self, g: NewGroup) -> Result<String, ApiError> {
        check_text("name", &g.name)?;
        let filter = match (&g.devices, &g.filter) {
            (Some(_), None) => None,
            (None, Some(f)) => Some(check_attributes(f)?),
            _ => {
                return Err(ApiError::bad(
                    "a group has either a device list or an attribute filter",
                ));
            }
        };
        let id = format!("grp-{}", random_hex(8)?);
        let _w = self.inner.writes.lock().await;
        let mut tx = self.inner.store.pool.begin().await?;
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT id FROM device_groups WHERE name = $1")
                .bind(&g.name)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(ApiError::Conflict(format!(
                "a group named {} exists",
                g.name
            )));
        }
        sqlx::query(
            "INSERT INTO device_groups (id, name, filter, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(&g.name)
        .bind(filter)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let mut members = g.devices.unwrap_or_default();
        members.sort();
        members.dedup();
        for d in members {
            check_text("device id", &d)?;
            sqlx::query("INSERT INTO group_members (group_id, device_id) VALUES ($1, $2)")
                .bind(&id)
                .bind(d)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A group as shown: name, filter, and the enrolled devices it covers now.
    pub(crate) async fn group(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let (name, filter): (String, Option<String>) =
            sqlx::query_as("SELECT name, filter FROM device_groups WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.inner.store.pool)
                .await?
                .ok_or(ApiError::NotFound("group"))?;
        let filter: Option<serde_json::Value> = filter.and_then(|f| serde_json::from_str(&f).ok());
        Ok(serde_json::json!({
            "id": id,
            "name": name,
            "filter": filter,
            "devices": self.group_devices(id).await?,
        }))
    }

    /// Every group id.
    pub(crate) async fn group_ids(&self) -> Result<Vec<String>, ApiError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM device_groups ORDER BY name")
            .fetch_all(&self.inner.store.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The enrolled devices a group covers now.
    pub(crate) async fn group_devices(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let pool = &self.inner.store.pool;
        let (filter,): (Option<String>,) =
            sqlx::query_as("SELECT filter FROM device_groups WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(ApiError::NotFound("group"))?;
        match filter {
            None => {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT d.id FROM group_members m JOIN devices d ON d.id = m.device_id WHERE m.group_id = $1 ORDER BY d.id",
                )
                .bind(id)
                .fetch_all(pool)
                .await?;
                Ok(rows.into_iter().map(|(d,)| d).collect())
            }
            Some(f) => {
                // Attributes are JSON text, whose query syntax differs between SQLite and
                // PostgreSQL: the filter is applied here, over every device.
                let want: BTreeMap<String, String> = serde_json::from_str(&f)
                    .map_err(|e| ApiError::Internal(format!("stored filter: {e}")))?;
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, attributes FROM devices ORDER BY id")
                        .fetch_all(pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .filter(|(_, a)| {
                        let have: BTreeMap<String, String> =
                            serde_json::from_str(a).unwrap_or_default();
                        want.iter().all(|(k, v)| have.get(k) == Some(v))
                    })
                    .map(|(d, _)| d)
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_the_device_encodes_them() {
        use suitcase_processor::report::encode_report;
        let mut buf = [0u8; 256];
        let n = encode_report(None, Some(b"nonce"), &[], Ok(()), &mut buf).unwrap();
        let f = read_report(&buf[..n]).unwrap();
        assert_eq!(f.nonce.as_deref(), Some(&b"nonce"[..]));
        assert!(f.success);
        let err = suitcase_processor::Error::UnsupportedDigest;
        let n = encode_report(None, None, &[], Err((&err, None)), &mut buf).unwrap();
        let f = read_report(&buf[..n]).unwrap();
        assert!(!f.success);
        assert_eq!(f.reason, Some(3));
        assert_eq!(f.nonce, None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_as_a_report_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = read_report(&bytes);
        }

        #[test]
        fn any_attributes_are_checked_without_panic(
            attrs in proptest::collection::btree_map(".{0,300}", ".{0,300}", 0..40)
        ) {
            if let Ok(json) = check_attributes(&attrs) {
                proptest::prop_assert!(attrs.len() <= MAX_ATTRIBUTES);
                let back: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
                proptest::prop_assert_eq!(back, attrs);
            }
        }
    }

    #[test]
    fn malformed_reports_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"\xa0",
            b"\x01",
            b"\xa1\x04\x01",
            b"\xbf",
            b"\xa1\x02\x01",
        ] {
            assert!(read_report(bad).is_err(), "{bad:?}");
        }
    }
}
