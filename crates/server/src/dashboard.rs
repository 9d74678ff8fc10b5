//! The dashboard: one static page (`GET /dashboard`, its script at `/dashboard.js`) that
//! reads `GET /api/v1/dashboard`, a read-only summary any role may fetch.
//!
//! The page holds no data and needs no credentials; the script takes a token from the
//! URL fragment (`/dashboard#token=…`), which browsers never send to a server (so it is
//! in no request line or log), and sends it as a bearer token to the summary. Give it a
//! viewer token (`suitcase serve --create-token viewer:dashboard`): the page only reads,
//! and a viewer can do nothing else. A strict Content-Security-Policy (scripts from this
//! origin only, no inline script, no framing) keeps the token's reach to this page.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::State;
use crate::error::ApiError;

const PAGE: &str = include_str!("dashboard.html");
const SCRIPT: &str = include_str!("dashboard.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn static_response(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn page() -> Response {
    static_response("text/html; charset=utf-8", PAGE)
}

pub(crate) async fn script() -> Response {
    static_response("text/javascript; charset=utf-8", SCRIPT)
}

/// device_id, received_at, success, reason_code, campaign_id.
type ReportRow = (String, i64, i64, Option<i64>, Option<String>);
/// id, name, class_id, sequence_number, approved_by, created_at.
type ReleaseRow = (String, String, String, i64, Option<String>, i64);

impl State {
    /// Releases, campaigns with per-phase progress, and devices with their version and
    /// last report.
    pub(crate) async fn dashboard(&self) -> Result<Value, ApiError> {
        let pool = &self.inner.store.pool;
        let releases: Vec<ReleaseRow> = sqlx::query_as(
            "SELECT id, name, class_id, sequence_number, approved_by, created_at FROM releases ORDER BY created_at DESC, id",
        )
        .fetch_all(pool)
        .await?;
        let names: HashMap<(String, i64), String> = releases
            .iter()
            .map(|r| ((r.2.clone(), r.3), r.1.clone()))
            .collect();
        let mut campaigns = Vec::new();
        for c in self.campaigns().await? {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT ordinal, state FROM campaign_devices WHERE campaign_id = $1 ORDER BY ordinal",
            )
            .bind(&c.id)
            .fetch_all(pool)
            .await?;
            let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            let mut phases = Vec::new();
            let mut from = 0;
            for (k, pct) in c.phase_list().into_iter().enumerate() {
                let to = crate::campaign::cut(pct, total);
                let mut counts: HashMap<&str, i64> = HashMap::new();
                for (_, state) in rows.iter().filter(|(o, _)| *o >= from && *o < to) {
                    *counts.entry(state.as_str()).or_default() += 1;
                }
                let k = i64::try_from(k).unwrap_or(i64::MAX);
                phases.push(json!({
                    "percent": pct, "devices": to - from,
                    "status": if k < c.phase || c.state == crate::campaign::COMPLETED { "done" }
                              else if k == c.phase { "current" } else { "waiting" },
                    "pending": counts.get("pending").copied().unwrap_or(0),
                    "offered": counts.get("offered").copied().unwrap_or(0),
                    "succeeded": counts.get("succeeded").copied().unwrap_or(0),
                    "failed": counts.get("failed").copied().unwrap_or(0),
                    "timed_out": counts.get("timed_out").copied().unwrap_or(0),
                }));
                from = to;
            }
            let release = releases
                .iter()
                .find(|r| r.0 == c.release_id)
                .map(|r| r.1.clone());
            campaigns.push(json!({
                "id": c.id, "name": c.name, "release_id": c.release_id, "release": release,
                "state": c.state, "reason": c.reason, "phase": c.phase + 1, "phases": phases,
            }));
        }
        let reports: Vec<ReportRow> = sqlx::query_as(
            "SELECT device_id, received_at, success, reason_code, campaign_id FROM reports ORDER BY received_at, id",
        )
        .fetch_all(pool)
        .await?;
        let mut last: HashMap<String, Value> = HashMap::new();
        for (device, at, success, reason, campaign) in reports {
            last.insert(
                device,
                json!({"at": at, "success": success != 0, "reason_code": reason, "campaign_id": campaign}),
            );
        }
        let devices: Vec<Value> = self
            .devices()
            .await?
            .into_iter()
            .map(|d| {
                json!({
                    "id": d.id, "sequence_number": d.sequence_number,
                    "release": names.get(&(d.class_id.clone(), d.sequence_number)),
                    "last_seen": d.last_seen, "last_report": last.remove(&d.id),
                })
            })
            .collect();
        let releases: Vec<Value> = releases
            .into_iter()
            .map(|r| json!({"id": r.0, "name": r.1, "sequence_number": r.3, "approved": r.4.is_some()}))
            .collect();
        Ok(json!({"releases": releases, "campaigns": campaigns, "devices": devices}))
    }
}
