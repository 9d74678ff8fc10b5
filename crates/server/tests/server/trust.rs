//! The fleet's trust store (docs/server.md, "The fleet's trust store"): a server started
//! with `--trust-store` checks releases with the devices' own policy, refuses a store
//! update a device would refuse, adopts a new store when its release is approved, rolls
//! it out as a campaign like any release, and from then on refuses what the revoked key
//! signs — as every device that took the campaign does.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use suitcase_processor::{AuthError, Error};
use suitcase_testkit::trust::{Device, by, envelope, keys, p256, signed, store_v};
use suitcase_trust::Store;

use crate::common::*;

/// An envelope for the fleet's class (sequence `seq_no`), carrying `store` if given,
/// signed by `signers`.
fn release(
    seq_no: u64,
    image: &[u8],
    store: Option<&[u8]>,
    signers: &[&suitcase_cose::SigningKey],
) -> Vec<u8> {
    let m =
        suitcase_testkit::trust::update_manifest_for(Some((&VENDOR, &CLASS)), seq_no, image, store);
    envelope(&m, &by(signers))
}

/// Uploads `env` as the author; it must be refused (422) with `why` in the message.
async fn refused(f: &Fleet, env: &[u8], why: &str) {
    let (status, v) = f.upload(&f.author, env, &CLASS).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains(why), "{v}");
}

#[tokio::test]
async fn a_store_is_checked_adopted_rolled_out_as_a_campaign_and_revokes_the_stolen_key() {
    let k = keys();
    let stolen = k.author.clone();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let f = Fleet::start_config(dir.clone(), 64 * 1024, Some(v1.clone())).await;
    let ts = f.view("/api/v1/trust-store").await;
    assert_eq!(
        (ts["mode"].as_str(), ts["version"].as_u64()),
        (Some("store"), Some(1))
    );

    // The device's policy, not a flat anchor list: the author alone is not enough.
    refused(&f, &release(2, b"x", None, &[&k.author]), "policy").await;

    // A store only one root key signed is refused at upload, as a device would.
    let new_author = p256(33);
    let weak = signed(&store_v(2, &k, &new_author), &[&k.roots[0]]);
    refused(
        &f,
        &release(2, b"x", Some(&weak), &[&k.operator, &k.author]),
        "signed by 1 current root keys, 2 required",
    )
    .await;

    // The rotation: store v2 names a new author key (two roots signed it); the operator
    // and the old author ship it. Uploading does not adopt it; approving does.
    let v2 = signed(&store_v(2, &k, &new_author), &[&k.roots[0], &k.roots[2]]);
    // Signed for v1's policy only, it is refused: once the device commits v2, its
    // bootloader checks the staged image under v2, where the old author no longer counts.
    refused(
        &f,
        &release(2, b"rotated", Some(&v2), &[&k.operator, &k.author]),
        "under the trust store it carries",
    )
    .await;
    // Signed for both: the operator, the old author and the new one.
    let rotation = release(
        2,
        b"rotated",
        Some(&v2),
        &[&k.operator, &k.author, &new_author],
    );
    let (status, r) = f.upload(&f.author, &rotation, &CLASS).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(f.view("/api/v1/trust-store").await["version"], 1);
    let a = f
        .post(&format!("/api/v1/releases/{rid}/approve"), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::OK);
    let a: serde_json::Value = a.json().await.unwrap();
    assert_eq!(a["trust_store_adopted"], 2, "{a}");
    assert_eq!(f.view("/api/v1/trust-store").await["version"], 2);

    // The campaign: three devices holding v1 take the release like any other.
    let mut fleet = Vec::new();
    for i in 0..3u8 {
        let enrolled = f.enrol(&format!("dev-{i}"), 40 + i, json!({})).await;
        let mut d = Device::provisioned(&v1);
        (d.vendor, d.class) = (VENDOR, CLASS);
        fleet.push((enrolled, d));
    }
    let refs: Vec<&FleetDevice> = fleet.iter().map(|(e, _)| e).collect();
    let group = f.group("all", &refs).await;
    let c = f
        .campaign(
            json!({ "name": "rotate", "release_id": rid, "group_id": group,
            "phases": [100], "success_percent": 100, "max_failures": 0,
            "device_timeout_secs": 600 }),
        )
        .await;
    let cid = c["id"].as_str().unwrap().to_string();
    for (e, d) in &mut fleet {
        let offer = e.check_in(&f, 1).await.expect("offered");
        assert_eq!(offer.envelope, rotation);
        // The report's reference is made with the store the device held when it
        // authenticated the offer.
        let mut held = vec![0u8; 8192];
        let current = d.area.load(&mut held).unwrap().as_bytes().to_vec();
        d.update(&offer.envelope).unwrap();
        assert_eq!((d.store_version(), d.firmware()), (2, &b"rotated"[..]));
        let report = report_with(
            &e.key,
            &Store::decode(&current).unwrap(),
            &offer.envelope,
            Some(&offer.nonce),
            true,
        );
        assert_eq!(e.send_report(&f, report).await, StatusCode::OK);
    }
    let s = f.view(&format!("/api/v1/campaigns/{cid}")).await;
    assert_eq!(
        (s["state"].as_str(), s["counts"]["succeeded"].as_u64()),
        (Some("completed"), Some(3)),
        "{s}"
    );

    // The thief, even with the operator's signature, gets nothing past the server...
    let evil = release(3, b"evil", None, &[&k.operator, &stolen]);
    refused(&f, &evil, "policy").await;
    // ...nor past any device that took the campaign, were it delivered another way.
    for (_, d) in &mut fleet {
        assert_eq!(
            d.update(&evil),
            Err(Error::Auth(AuthError::PolicyNotSatisfied))
        );
        assert_eq!(d.firmware(), b"rotated");
    }
    // The new author and the operator can.
    let next = release(3, b"next", None, &[&k.operator, &new_author]);
    assert_eq!(
        f.upload(&f.author, &next, &CLASS).await.0,
        StatusCode::CREATED
    );

    // A restart keeps the adopted store, even when started with v1 again.
    drop(f);
    let f = Fleet::start_config(dir, 64 * 1024, Some(v1)).await;
    assert_eq!(f.view("/api/v1/trust-store").await["version"], 2);
}

#[tokio::test]
async fn a_store_that_no_longer_applies_is_not_adopted_and_the_approval_fails() {
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let f = Fleet::start_config(Arc::new(tempfile::tempdir().unwrap()), 64 * 1024, Some(v1)).await;
    // Two releases carry two different stores v2, both valid updates of v1 at upload.
    let mut ids = Vec::new();
    for (seq_no, author) in [(2, p256(33)), (3, p256(34))] {
        let v2 = signed(&store_v(2, &k, &author), &[&k.roots[0], &k.roots[1]]);
        let env = release(seq_no, b"r", Some(&v2), &[&k.operator, &k.author, &author]);
        let (status, r) = f.upload(&f.author, &env, &CLASS).await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    assert_eq!(f.approve(&f.operator, &ids[0]).await, StatusCode::OK);
    // The second is now a rollback (version 2 is not above 2): approval refused, nothing
    // adopted, the release stays unapproved.
    let r = f
        .post(&format!("/api/v1/releases/{}/approve", ids[1]), &f.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("store version 2 is not above the current version 2"),
        "{e}"
    );
    assert_eq!(f.view("/api/v1/trust-store").await["version"], 2);
    let r = f.view(&format!("/api/v1/releases/{}", ids[1])).await;
    assert!(r["approved_by"].is_null(), "{r}");
    // A viewer cannot approve, and nothing moves.
    assert_eq!(f.approve(&f.viewer, &ids[1]).await, StatusCode::FORBIDDEN);
}
