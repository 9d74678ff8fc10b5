//! Campaigns: one release rolled out to a group in phases, halting by itself.
//!
//! At creation the group's enrolled devices are put in a fixed rollout order (shuffled
//! by a hash of campaign and device id, so phase 1 is not always the same devices).
//! Phase k covers the first `ceil(phases[k] × N / 100)` of them; a device outside the
//! current phase is offered nothing.
//!
//! Evaluation, in this order, after every check-in, report, operator action and tick:
//!
//! | # | when | then |
//! |---|---|---|
//! | 1 | state is not `running` | nothing |
//! | 2 | a device of the current phase was offered the release `timeout` s ago, or was never offered in the `timeout` s since its phase started, and has not reported | it is `timed_out` (a failure) |
//! | 3 | failures since the last resume exceed `max_failures`, or exceed `max_failure_percent` % of the devices in the phases so far | `paused`, with the reason |
//! | 4 | not the last phase, and succeeded ≥ `success_percent` % of the devices in the phases so far | next phase |
//! | 5 | the last phase, and every device has finished | `completed` |

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::{State, now};

/// Campaign states as stored.
pub(crate) const RUNNING: &str = "running";
pub(crate) const PAUSED: &str = "paused";
pub(crate) const CANCELLED: &str = "cancelled";
pub(crate) const COMPLETED: &str = "completed";

/// A campaign to create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCampaign {
    pub(crate) name: String,
    pub(crate) release_id: String,
    pub(crate) group_id: String,
    /// Cumulative percentages, ascending, the last one 100 (e.g. `[1, 10, 100]`).
    pub(crate) phases: Vec<u8>,
    /// Percentage of the devices in the phases so far that must succeed to advance.
    pub(crate) success_percent: u8,
    /// Failures tolerated before the campaign pauses itself (count).
    pub(crate) max_failures: Option<u32>,
    /// Failures tolerated, in percent of the devices in the phases so far.
    pub(crate) max_failure_percent: Option<u8>,
    /// Seconds a device may take to report once offered (or to check in once its phase
    /// started) before it counts as failed.
    pub(crate) device_timeout_secs: u32,
}

/// A campaign as shown.
#[derive(Debug, Serialize, Clone, sqlx::FromRow)]
pub(crate) struct Campaign {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) release_id: String,
    pub(crate) group_id: String,
    #[serde(skip)]
    pub(crate) phases: String,
    pub(crate) phase: i64,
    pub(crate) phase_started_at: i64,
    pub(crate) success_percent: i64,
    pub(crate) max_failures: Option<i64>,
    pub(crate) max_failure_percent: Option<i64>,
    pub(crate) device_timeout_secs: i64,
    pub(crate) state: String,
    pub(crate) reason: Option<String>,
    pub(crate) failure_baseline: i64,
    pub(crate) created_by: String,
    pub(crate) created_at: i64,
}

// A macro, not a const: `concat!` keeps the SQL a literal, which sqlx requires.
macro_rules! campaign_columns {
    () => {
        "id, name, release_id, group_id, phases, phase, phase_started_at, \
     success_percent, max_failures, max_failure_percent, device_timeout_secs, state, reason, \
     failure_baseline, created_by, created_at"
    };
}

/// Device counts by state.
#[derive(Debug, Serialize, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) total: i64,
    pub(crate) pending: i64,
    pub(crate) offered: i64,
    pub(crate) succeeded: i64,
    pub(crate) failed: i64,
    pub(crate) timed_out: i64,
}

impl Campaign {
    pub(crate) fn phase_list(&self) -> Vec<u8> {
        serde_json::from_str(&self.phases).unwrap_or_default()
    }

    /// How many devices (of `total`) the current phase covers.
    pub(crate) fn cut(&self, total: i64) -> i64 {
        let phases = self.phase_list();
        let pct = usize::try_from(self.phase)
            .ok()
            .and_then(|i| phases.get(i))
            .copied()
            .unwrap_or(100);
        cut(pct, total)
    }

    fn is_last_phase(&self) -> bool {
        usize::try_from(self.phase).is_ok_and(|i| i + 1 >= self.phase_list().len())
    }
}

/// `ceil(pct × total / 100)`, at least one device when there are any.
pub(crate) fn cut(pct: u8, total: i64) -> i64 {
    let n = (i64::from(pct) * total + 99) / 100;
    n.clamp(i64::from(total > 0), total)
}

/// The rollout order key: stable, but different per campaign.
fn order_key(campaign: &str, device: &str) -> String {
    crate::sha256_hex(format!("{campaign}/{device}").as_bytes())
}

impl NewCampaign {
    fn validate(&self) -> Result<(), ApiError> {
        let p = &self.phases;
        if p.is_empty() || p.len() > 20 {
            return Err(ApiError::bad("phases: 1 to 20 cumulative percentages"));
        }
        if p.first().is_some_and(|&x| x == 0)
            || p.windows(2).any(|w| w[0] >= w[1])
            || p.last() != Some(&100)
        {
            return Err(ApiError::bad(
                "phases must be strictly ascending percentages above 0, ending at 100",
            ));
        }
        if self.success_percent > 100 || self.max_failure_percent.is_some_and(|x| x > 100) {
            return Err(ApiError::bad("percentages must be at most 100"));
        }
        if self.device_timeout_secs == 0 {
            return Err(ApiError::bad("device_timeout_secs must be above 0"));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ApiError::bad("name: 1 to 200 characters"));
        }
        Ok(())
    }
}

impl State {
    /// Creates a running campaign over the group's enrolled devices.
    pub(crate) async fn create_campaign(
        &self,
        new: NewCampaign,
        by: &str,
    ) -> Result<Campaign, ApiError> {
        new.validate()?;
        let _w = self.inner.writes.lock().await;
        let pool = &self.inner.store.pool;
        let release: Option<(String, String, Option<String>)> =
            sqlx::query_as("SELECT vendor_id, class_id, approved_by FROM releases WHERE id = $1")
                .bind(&new.release_id)
                .fetch_optional(pool)
                .await?;
        let (vendor, class, approved) = release.ok_or(ApiError::NotFound("release"))?;
        if approved.is_none() {
            return Err(ApiError::rejected(
                "the release is not approved by an operator (POST /api/v1/releases/{id}/approve)",
            ));
        }
        let members = self.group_devices(&new.group_id).await?;
        // Only devices of the release's class: another class would refuse the envelope.
        let mut devices: Vec<String> = Vec::new();
        for id in members {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT vendor_id, class_id FROM devices WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(pool)
                    .await?;
            if row.is_some_and(|(v, c)| v == vendor && c == class) {
                devices.push(id);
            }
        }
        if devices.is_empty() {
            return Err(ApiError::rejected(
                "the group has no enrolled device of the release's class",
            ));
        }
        let id = format!("cmp-{}", crate::random_hex(8)?);
        devices.sort_by_key(|d| order_key(&id, d));
        let t = now();
        let mut tx = pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO campaigns (",
            campaign_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, NULL, 0, $12, $13)"
        ))
        .bind(&id)
        .bind(&new.name)
        .bind(&new.release_id)
        .bind(&new.group_id)
        .bind(serde_json::to_string(&new.phases).map_err(|e| ApiError::Internal(e.to_string()))?)
        .bind(t)
        .bind(i64::from(new.success_percent))
        .bind(new.max_failures.map(i64::from))
        .bind(new.max_failure_percent.map(i64::from))
        .bind(i64::from(new.device_timeout_secs))
        .bind(RUNNING)
        .bind(by.to_string())
        .bind(t)
        .execute(&mut *tx)
        .await?;
        for (i, d) in devices.iter().enumerate() {
            sqlx::query(
                "INSERT INTO campaign_devices (campaign_id, device_id, ordinal, state) VALUES ($1, $2, $3, 'pending')",
            )
            .bind(&id)
            .bind(d)
            .bind(i64::try_from(i).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // CoAP observers: the group's devices in the first phase have an offer now.
        self.offers_changed();
        self.campaign(&id).await
    }

    /// One campaign.
    pub(crate) async fn campaign(&self, id: &str) -> Result<Campaign, ApiError> {
        sqlx::query_as(concat!(
            "SELECT ",
            campaign_columns!(),
            " FROM campaigns WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.inner.store.pool)
        .await?
        .ok_or(ApiError::NotFound("campaign"))
    }

    /// Every campaign, newest first.
    pub(crate) async fn campaigns(&self) -> Result<Vec<Campaign>, ApiError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            campaign_columns!(),
            " FROM campaigns ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.inner.store.pool)
        .await?)
    }

    /// Device counts of a campaign, overall.
    pub(crate) async fn counts(&self, id: &str) -> Result<Counts, ApiError> {
        self.counts_below(id, i64::MAX).await
    }

    /// Device counts among the first `cut` devices of the rollout order.
    async fn counts_below(&self, id: &str, cut: i64) -> Result<Counts, ApiError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM campaign_devices WHERE campaign_id = $1 AND ordinal < $2 GROUP BY state",
        )
        .bind(id)
        .bind(cut)
        .fetch_all(&self.inner.store.pool)
        .await?;
        let mut c = Counts::default();
        for (state, n) in rows {
            c.total += n;
            match state.as_str() {
                "pending" => c.pending += n,
                "offered" => c.offered += n,
                "succeeded" => c.succeeded += n,
                "failed" => c.failed += n,
                "timed_out" => c.timed_out += n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Pause, resume or cancel, by an operator.
    pub(crate) async fn campaign_action(
        &self,
        id: &str,
        action: &str,
    ) -> Result<Campaign, ApiError> {
        let _w = self.inner.writes.lock().await;
        let c = self.campaign(id).await?;
        let pool = &self.inner.store.pool;
        match (action, c.state.as_str()) {
            ("pause", RUNNING) => {
                sqlx::query("UPDATE campaigns SET state = $1, reason = $2 WHERE id = $3")
                    .bind(PAUSED)
                    .bind("paused by an operator")
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            ("resume", PAUSED) => {
                // Failures so far were seen by the operator who resumes: the thresholds
                // count new ones from here, or the campaign would pause again at once.
                let counts = self.counts(id).await?;
                sqlx::query(
                    "UPDATE campaigns SET state = $1, reason = NULL, failure_baseline = $2, phase_started_at = $3 WHERE id = $4",
                )
                .bind(RUNNING)
                .bind(counts.failed + counts.timed_out)
                .bind(now())
                .bind(id)
                .execute(pool)
                .await?;
            }
            ("cancel", RUNNING | PAUSED) => {
                sqlx::query("UPDATE campaigns SET state = $1, reason = $2 WHERE id = $3")
                    .bind(CANCELLED)
                    .bind("cancelled by an operator")
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            ("pause" | "resume" | "cancel", state) => {
                return Err(ApiError::Conflict(format!(
                    "cannot {action} a campaign that is {state}"
                )));
            }
            _ => return Err(ApiError::NotFound("action")),
        }
        // CoAP observers: a pause or cancel withdraws offers, a resume brings them back.
        self.offers_changed();
        self.evaluate_locked(id).await?;
        self.campaign(id).await
    }

    /// Applies the evaluation table (module doc) to campaign `id`. The caller holds the
    /// write lock.
    pub(crate) async fn evaluate_locked(&self, id: &str) -> Result<(), ApiError> {
        let pool = &self.inner.store.pool;
        // Each advance re-evaluates the new phase; bounded by the number of phases.
        for _ in 0..=20 {
            let c = self.campaign(id).await?;
            if c.state != RUNNING {
                return Ok(());
            }
            let total = self.counts(id).await?.total;
            let cut = c.cut(total);
            let t = now();
            let deadline = t - c.device_timeout_secs;
            sqlx::query(
                "UPDATE campaign_devices SET state = 'timed_out', finished_at = $1, reason = 'no report before the timeout' \
                 WHERE campaign_id = $2 AND ordinal < $3 AND state = 'offered' AND offered_at <= $4",
            )
            .bind(t)
            .bind(id)
            .bind(cut)
            .bind(deadline)
            .execute(pool)
            .await?;
            if c.phase_started_at <= deadline {
                sqlx::query(
                    "UPDATE campaign_devices SET state = 'timed_out', finished_at = $1, reason = 'never checked in' \
                     WHERE campaign_id = $2 AND ordinal < $3 AND state = 'pending'",
                )
                .bind(t)
                .bind(id)
                .bind(cut)
                .execute(pool)
                .await?;
            }
            let counts = self.counts_below(id, cut).await?;
            let overall = self.counts(id).await?;
            let failures = overall.failed + overall.timed_out - c.failure_baseline;
            let over_count = c.max_failures.is_some_and(|m| failures > m);
            let over_pct = c
                .max_failure_percent
                .is_some_and(|p| failures * 100 > p * cut);
            if over_count || over_pct {
                let reason = format!(
                    "halted: {failures} failures in phase {} exceed the threshold ({})",
                    c.phase + 1,
                    match (c.max_failures, c.max_failure_percent) {
                        (Some(m), Some(p)) => format!("{m} devices or {p} %"),
                        (Some(m), None) => format!("{m} devices"),
                        (None, Some(p)) => format!("{p} %"),
                        (None, None) => String::new(),
                    }
                );
                tracing::warn!(campaign = id, %reason, "campaign paused itself");
                sqlx::query("UPDATE campaigns SET state = $1, reason = $2 WHERE id = $3")
                    .bind(PAUSED)
                    .bind(reason)
                    .bind(id)
                    .execute(pool)
                    .await?;
                // CoAP observers: the halt withdraws the offers not yet taken.
                self.offers_changed();
                return Ok(());
            }
            if !c.is_last_phase() {
                if counts.succeeded * 100 >= c.success_percent * cut {
                    tracing::info!(campaign = id, phase = c.phase + 2, "campaign advances");
                    sqlx::query(
                        "UPDATE campaigns SET phase = phase + 1, phase_started_at = $1 WHERE id = $2",
                    )
                    .bind(t)
                    .bind(id)
                    .execute(pool)
                    .await?;
                    // CoAP observers: the next phase's devices have an offer now.
                    self.offers_changed();
                    continue;
                }
                return Ok(());
            }
            if overall.pending + overall.offered == 0 {
                sqlx::query("UPDATE campaigns SET state = $1, reason = NULL WHERE id = $2")
                    .bind(COMPLETED)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            return Ok(());
        }
        Ok(())
    }
}

/// Evaluates every running campaign (timeouts of silent devices).
pub(crate) async fn tick(state: &State) -> Result<(), ApiError> {
    let _w = state.inner.writes.lock().await;
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM campaigns WHERE state = $1")
        .bind(RUNNING)
        .fetch_all(&state.inner.store.pool)
        .await?;
    for (id,) in ids {
        state.evaluate_locked(&id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_cuts_round_up_and_cover_at_least_one() {
        assert_eq!(cut(1, 10), 1);
        assert_eq!(cut(10, 10), 1);
        assert_eq!(cut(11, 10), 2);
        assert_eq!(cut(100, 10), 10);
        assert_eq!(cut(1, 1000), 10);
        assert_eq!(cut(50, 0), 0);
    }

    #[test]
    fn phases_are_validated() {
        let c = |phases: Vec<u8>| NewCampaign {
            name: "n".into(),
            release_id: "r".into(),
            group_id: "g".into(),
            phases,
            success_percent: 100,
            max_failures: None,
            max_failure_percent: None,
            device_timeout_secs: 60,
        };
        assert!(c(vec![1, 10, 100]).validate().is_ok());
        assert!(c(vec![100]).validate().is_ok());
        assert!(c(vec![]).validate().is_err());
        assert!(c(vec![10, 10, 100]).validate().is_err());
        assert!(c(vec![0, 100]).validate().is_err());
        assert!(c(vec![10, 50]).validate().is_err());
    }
}
