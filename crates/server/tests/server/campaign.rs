//! Phased campaigns: advancing, halting by themselves, timeouts, operator actions.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn fleet_of(f: &Fleet, n: u8) -> Vec<FleetDevice> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            f.enrol(
                &format!("dev-{i:02}"),
                i + 1,
                json!({ "ring": if i % 2 == 0 { "even" } else { "odd" } }),
            )
            .await,
        );
    }
    out
}

/// Release 2, `n` enrolled devices in one group, and a running campaign over them in
/// phases 10/50/100 % (success 100 %) tolerating `max_failures`.
async fn ramp(f: &Fleet, n: u8, max_failures: u32) -> (String, Vec<FleetDevice>, Value) {
    let (release, _) = f.release(2).await;
    let devices = fleet_of(f, n).await;
    let refs: Vec<&FleetDevice> = devices.iter().collect();
    let group = f.group("all", &refs).await;
    let c = f
        .campaign(
            json!({ "name": "ramp", "release_id": release, "group_id": group,
            "phases": [10, 50, 100], "success_percent": 100, "max_failures": max_failures,
            "device_timeout_secs": 600 }),
        )
        .await;
    (release, devices, c)
}

/// Every device checks in on sequence 1; those offered the release, with their offer.
async fn offers<'a>(f: &Fleet, devices: &'a [FleetDevice]) -> Vec<(&'a FleetDevice, Offer)> {
    let mut offered = Vec::new();
    for d in devices {
        if let Some(o) = d.check_in(f, 1).await {
            offered.push((d, o));
        }
    }
    offered
}

async fn state_of(f: &Fleet, cid: &str) -> Value {
    f.view(&format!("/api/v1/campaigns/{cid}")).await
}

#[tokio::test]
async fn failures_beyond_the_threshold_halt_the_campaign() {
    let f = Fleet::start().await;
    let (_, devices, c) = ramp(&f, 20, 1).await;
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["devices_in_phase"], 2);

    // Phase 1 is 10 % of 20: exactly two devices are offered the release.
    let offered = offers(&f, &devices).await;
    assert_eq!(offered.len(), 2);
    // The first failure is tolerated (max_failures = 1)…
    let (d0, o0) = &offered[0];
    assert_eq!(
        d0.send_report(&f, d0.report(&f, o0, false)).await,
        StatusCode::OK
    );
    assert_eq!(state_of(&f, &cid).await["state"], "running");
    // …the second pauses the campaign by itself.
    let (d1, o1) = &offered[1];
    assert_eq!(
        d1.send_report(&f, d1.report(&f, o1, false)).await,
        StatusCode::OK
    );
    let s = state_of(&f, &cid).await;
    assert_eq!(s["state"], "paused");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .starts_with("halted: 2 failures"),
        "{s}"
    );
    assert_eq!(s["phase"], 0);
    // No device gets the release now, inside the phase or out of it.
    for d in &devices {
        assert!(
            d.check_in(&f, 1).await.is_none(),
            "{} was offered the release",
            d.id
        );
    }
    assert_eq!(state_of(&f, &cid).await["counts"]["offered"], 0);
    assert_eq!(state_of(&f, &cid).await["counts"]["pending"], 18);

    // The operator resumes: failures so far are acknowledged; still phase 1, so the
    // devices outside it still get nothing; cancelling ends it.
    let r = f
        .post(&format!("/api/v1/campaigns/{cid}/resume"), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state_of(&f, &cid).await["state"], "running");
    for d in &devices {
        assert!(d.check_in(&f, 1).await.is_none());
    }
    let r = f
        .post(&format!("/api/v1/campaigns/{cid}/cancel"), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = f
        .post(&format!("/api/v1/campaigns/{cid}/resume"), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = f
        .post(&format!("/api/v1/campaigns/{cid}/explode"), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn successful_phases_advance_to_the_whole_group() {
    let f = Fleet::start().await;
    let (release, _) = f.release(2).await;
    let devices = fleet_of(&f, 10).await;
    // An attribute filter: the five "even" devices.
    let r = f
        .post("/api/v1/groups", &f.operator)
        .json(&json!({ "name": "even", "filter": { "ring": "even" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["devices"].as_array().unwrap().len(), 5);
    let c = f
        .campaign(
            json!({ "name": "ramp", "release_id": release, "group_id": g["id"],
            "phases": [20, 60, 100], "success_percent": 100, "max_failure_percent": 50,
            "device_timeout_secs": 600 }),
        )
        .await;
    let cid = c["id"].as_str().unwrap().to_string();
    let mut phases_seen = Vec::new();
    let mut done = 0;
    for _round in 0..5 {
        // Everyone checks in first, then the offered devices report: a round is a phase.
        let mut offers = Vec::new();
        for d in &devices {
            let odd = d.id.ends_with(['1', '3', '5', '7', '9']);
            if let Some(o) = d.check_in(&f, 1).await {
                assert!(!odd, "{} is not in the group", d.id);
                offers.push((d, o));
            }
        }
        let offered = offers.len();
        for (d, o) in offers {
            assert_eq!(
                d.send_report(&f, d.report(&f, &o, true)).await,
                StatusCode::OK
            );
        }
        done += offered;
        phases_seen.push(offered);
        if state_of(&f, &cid).await["state"] == "completed" {
            break;
        }
    }
    // 20 % of 5 = 1, 60 % = 3, 100 % = 5: 1, then 2 more, then 2 more.
    assert_eq!(phases_seen, vec![1, 2, 2]);
    assert_eq!(done, 5);
    let s = state_of(&f, &cid).await;
    assert_eq!(s["counts"]["succeeded"], 5, "{s}");
}

#[tokio::test]
async fn silent_devices_time_out_and_count_as_failures() {
    let f = Fleet::start().await;
    let (release, _) = f.release(2).await;
    let devices = fleet_of(&f, 2).await;
    let refs: Vec<&FleetDevice> = devices.iter().collect();
    let group = f.group("pair", &refs).await;
    let c = f
        .campaign(
            json!({ "name": "t", "release_id": release, "group_id": group,
            "phases": [100], "success_percent": 100, "max_failures": 0,
            "device_timeout_secs": 1 }),
        )
        .await;
    let cid = c["id"].as_str().unwrap().to_string();
    let offer = devices[0].check_in(&f, 1).await.unwrap();
    assert_eq!(state_of(&f, &cid).await["state"], "running");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    f.state.tick().await.unwrap();
    let s = state_of(&f, &cid).await;
    assert_eq!(s["state"], "paused", "{s}");
    assert_eq!(s["counts"]["timed_out"], 2, "{s}");
    // A late report is still recorded (the device did act), but nothing is offered.
    assert_eq!(
        devices[0]
            .send_report(&f, devices[0].report(&f, &offer, true))
            .await,
        StatusCode::OK
    );
    assert_eq!(state_of(&f, &cid).await["counts"]["succeeded"], 1);
    assert!(devices[1].check_in(&f, 1).await.is_none());
}

#[tokio::test]
async fn campaigns_need_an_approved_release_and_valid_phases() {
    let f = Fleet::start().await;
    let (release, _) = f.unapproved_release(2).await;
    let devices = fleet_of(&f, 1).await;
    let group = f.group("one", &[&devices[0]]).await;
    let body = json!({ "name": "x", "release_id": release, "group_id": group, "phases": [100],
        "success_percent": 100, "device_timeout_secs": 60 });
    assert_eq!(
        f.start_campaign(&f.operator, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(devices[0].check_in(&f, 1).await.is_none());
    // The author cannot approve its own upload; the viewer cannot either.
    assert_eq!(f.approve(&f.author, &release).await, StatusCode::FORBIDDEN);
    assert_eq!(f.approve(&f.viewer, &release).await, StatusCode::FORBIDDEN);
    let path = format!("/api/v1/releases/{release}");
    assert_eq!(f.view(&path).await["approved_by"], Value::Null);
    assert_eq!(f.approve(&f.operator, &release).await, StatusCode::OK);
    assert_eq!(f.approve(&f.operator, &release).await, StatusCode::CONFLICT);
    assert_eq!(
        f.approve(&f.operator, "rel-nope").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(f.view(&path).await["approved_by"], "operator");

    for (body, want) in [
        (
            json!({ "name": "x", "release_id": release, "group_id": group, "phases": [50],
            "success_percent": 100, "device_timeout_secs": 60 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "name": "x", "release_id": "rel-nope", "group_id": group, "phases": [100],
            "success_percent": 100, "device_timeout_secs": 60 }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": "x", "release_id": release, "group_id": "grp-nope", "phases": [100],
            "success_percent": 100, "device_timeout_secs": 60 }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": "x", "release_id": release, "group_id": group, "phases": [100],
            "success_percent": 100 }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(f.start_campaign(&f.operator, &body).await, want, "{body}");
    }
    assert_eq!(f.view("/api/v1/campaigns").await, json!([]));
    f.campaign(body).await;
    assert!(devices[0].check_in(&f, 1).await.is_some());
}

#[tokio::test]
async fn the_dashboard_summary_shows_phases_and_last_reports() {
    let f = Fleet::start().await;
    let (release, devices, c) = ramp(&f, 10, 0).await;
    let offered = offers(&f, &devices).await;
    assert_eq!(offered.len(), 1);
    let (d0, o0) = &offered[0];
    assert_eq!(
        d0.send_report(&f, d0.report(&f, o0, false)).await,
        StatusCode::OK
    );

    // Any token reads it; none, or an unknown one, does not.
    assert_eq!(
        f.status("/api/v1/dashboard", "nope").await,
        StatusCode::UNAUTHORIZED
    );
    let s = f.view("/api/v1/dashboard").await;
    assert_eq!(s["releases"][0]["id"], release.as_str());
    assert_eq!(s["releases"][0]["approved"], true);
    let cmp = &s["campaigns"][0];
    assert_eq!(cmp["id"], c["id"]);
    assert_eq!(cmp["state"], "paused");
    assert!(
        cmp["reason"].as_str().unwrap().starts_with("halted"),
        "{cmp}"
    );
    let phases = cmp["phases"].as_array().unwrap();
    let shape: Vec<(i64, &str, i64, i64)> = phases
        .iter()
        .map(|p| {
            (
                p["devices"].as_i64().unwrap(),
                p["status"].as_str().unwrap(),
                p["failed"].as_i64().unwrap(),
                p["pending"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (1, "current", 1, 0),
            (4, "waiting", 0, 4),
            (5, "waiting", 0, 5)
        ]
    );
    let rows = s["devices"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let report = &row["last_report"];
        if row["id"] == d0.id.as_str() {
            assert_eq!(report["success"], false, "{row}");
            assert_eq!(report["campaign_id"], c["id"]);
        } else {
            assert!(report.is_null(), "{row}");
        }
        assert_eq!(row["sequence_number"], 1);
    }

    // The page and its script hold no data, need no token, and forbid inline and
    // foreign scripts.
    for path in ["/dashboard", "/dashboard.js"] {
        let r = f.http.get(format!("{}{path}", f.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    }
}
