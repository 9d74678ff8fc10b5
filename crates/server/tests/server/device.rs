//! Enrolment, check-in, reports, and what one device can do about another.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn enrolment_needs_proof_of_the_key() {
    let f = Fleet::start().await;
    // Proof signed by another key than the one enrolled.
    let r = f
        .enrol_request("dev-1", &p256_key(1), &p256_key(2), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(f.view("/api/v1/devices").await, json!([]));
    // A proper one.
    let d = f.enrol("dev-1", 1, json!({ "site": "north" })).await;
    let me: Value = f.json("/device/v1/self", &d.token).await;
    assert_eq!(me["id"], "dev-1");
    assert_eq!(me["attributes"]["site"], "north");
    // Someone else's key cannot take over the id.
    let r = f
        .enrol_request("dev-1", &p256_key(3), &p256_key(3), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // The same key re-enrols and gets a new token; the old one stops working.
    let again = f.enrol("dev-1", 1, json!({})).await;
    assert_ne!(again.token, d.token);
    assert_eq!(
        f.status("/device/v1/self", &d.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        f.status("/device/v1/self", &again.token).await,
        StatusCode::OK
    );

    // A nonce is single use.
    let nonce = f.challenge().await;
    let body = enrol_body("dev-4", &p256_key(4), &p256_key(4), &nonce);
    assert_eq!(f.post_enrol(&body).await.status(), StatusCode::CREATED);
    let replay = f.post_enrol(&body).await;
    assert_eq!(replay.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = replay.json().await.unwrap();
    assert_eq!(v["error"], "nonce: unknown, used or expired");
    // The id is inside the signature: the proof does not enrol the key under another name.
    let mut renamed = body.clone();
    renamed["id"] = json!("dev-5");
    let r = f.post_enrol(&renamed).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A release, devices A and B, and a one-phase campaign of the release over both;
/// returns the envelope, the campaign id and the devices.
async fn two_devices_in_a_campaign(f: &Fleet) -> (Vec<u8>, String, FleetDevice, FleetDevice) {
    let (release, env) = f.release(3).await;
    let a = f.enrol("dev-a", 1, json!({})).await;
    let b = f.enrol("dev-b", 2, json!({})).await;
    let group = f.group("both", &[&a, &b]).await;
    let c = f
        .campaign(
            json!({ "name": "c", "release_id": release, "group_id": group,
            "phases": [100], "success_percent": 100, "device_timeout_secs": 600 }),
        )
        .await;
    (env, c["id"].as_str().unwrap().to_string(), a, b)
}

#[tokio::test]
async fn reports_are_verified_and_bound_to_the_device() {
    let f = Fleet::start().await;
    let (env, cid, a, b) = two_devices_in_a_campaign(&f).await;
    let offer_a = a.check_in(&f, 1).await.expect("a is offered the release");
    assert_eq!(offer_a.envelope, env);
    assert_eq!(offer_a.campaign, cid);
    // The payloads to fetch, by digest.
    let sha = sha256(&image());
    assert_eq!(offer_a.payloads, sha);
    let offer_b = b.check_in(&f, 1).await.expect("b is offered the release");
    assert_ne!(offer_a.nonce, offer_b.nonce);
    // Checking in again re-offers the same thing (the device may have lost it).
    assert_eq!(a.check_in(&f, 1).await.unwrap().nonce, offer_a.nonce);

    // A reports for B: B's report (signed by B) sent with A's token fails A's key.
    assert_eq!(
        a.send_report(&f, b.report(&f, &offer_b, false)).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A signs a report carrying B's nonce: it answers no offer made to A.
    let forged = report_by(&a.key, &f, &offer_b.envelope, Some(&offer_b.nonce), false);
    assert_eq!(
        a.send_report(&f, forged).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A report without a nonce answers nothing.
    let bare = report_by(&a.key, &f, &offer_a.envelope, None, true);
    assert_eq!(
        a.send_report(&f, bare).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Nothing above changed anything.
    let counts = f.view(&format!("/api/v1/campaigns/{cid}")).await["counts"].clone();
    assert_eq!(counts["offered"], 2, "{counts}");
    assert_eq!(counts["failed"], 0);

    // A's own report is recorded once; a replay is refused.
    let good = a.report(&f, &offer_a, true);
    let r = f
        .post("/device/v1/reports", &a.token)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(a.send_report(&f, good).await, StatusCode::CONFLICT);
    let dev = f.view("/api/v1/devices/dev-a").await;
    assert_eq!(dev["sequence_number"], 3);
    assert_eq!(f.view("/api/v1/devices/dev-b").await["sequence_number"], 1);
    // A device sees only itself: /self, and no operator route.
    let me: Value = f.json("/device/v1/self", &b.token).await;
    assert_eq!(me["id"], "dev-b");
    assert_eq!(
        f.status("/api/v1/devices/dev-a", &b.token).await,
        StatusCode::UNAUTHORIZED
    );
    // Done: nothing more to apply.
    assert!(a.check_in(&f, 3).await.is_none());

    let counts = f.view(&format!("/api/v1/campaigns/{cid}")).await["counts"].clone();
    assert_eq!(counts["succeeded"], 1, "{counts}");
    assert_eq!(
        b.send_report(&f, b.report(&f, &offer_b, true)).await,
        StatusCode::OK
    );
    assert_eq!(
        f.view(&format!("/api/v1/campaigns/{cid}")).await["state"],
        "completed"
    );
}

#[tokio::test]
async fn acknowledged_reports_survive_a_restart() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let f = Fleet::start_with(dir.clone(), 64 * 1024).await;
    let (_, cid, a, b) = two_devices_in_a_campaign(&f).await;
    let offer = a.check_in(&f, 1).await.unwrap();
    assert_eq!(
        a.send_report(&f, a.report(&f, &offer, true)).await,
        StatusCode::OK
    );
    drop(f);
    // A new server over the same directory and database: the acknowledged report, the
    // campaign and the device's token are all there.
    let g = Fleet::start_with(dir, 64 * 1024).await;
    let v = g.view(&format!("/api/v1/campaigns/{cid}")).await;
    assert_eq!(v["counts"]["succeeded"], 1, "{v}");
    assert_eq!(g.status("/device/v1/self", &a.token).await, StatusCode::OK);
    assert!(a.check_in(&g, 3).await.is_none());
    assert!(b.check_in(&g, 1).await.is_some());
}
