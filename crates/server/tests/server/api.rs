//! Health, OpenAPI, roles, release checks, payload uploads and downloads.

use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn health_and_openapi() {
    let f = Fleet::start().await;
    let r = f
        .http
        .get(format!("{}/healthz", f.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = f.json("/api/openapi.json", "").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/device/v1/checkin"]["post"].is_object());
    let r = f.get("/no/such/route", &f.viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn no_token_or_wrong_role_changes_nothing() {
    let f = Fleet::start().await;
    let env = f.envelope(1, &CLASS, &f.author_key);
    let (s, v) = f.upload("", &env, &CLASS).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = f.upload("not-a-token", &env, &CLASS).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = f.upload(&f.viewer, &env, &CLASS).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"], "role viewer may not upload releases");
    let (s, _) = f.upload(&f.operator, &env, &CLASS).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(f.view("/api/v1/releases").await, json!([]));
    let r = f
        .http
        .get(format!("{}/api/v1/releases", f.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A device token is not an operator token.
    let d = f.enrol("dev-1", 1, json!({})).await;
    let r = f.get("/api/v1/devices", &d.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Groups and campaigns: operator only.
    let (release, _) = f.release(1).await;
    for token in [&f.author, &f.viewer] {
        let r = f
            .post("/api/v1/groups", token)
            .json(&json!({ "name": "g", "devices": ["dev-1"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(f.view("/api/v1/groups").await, json!([]));
    let group = f.group("g", &[&d]).await;
    let body = json!({ "name": "c", "release_id": release, "group_id": group, "phases": [100],
        "success_percent": 100, "device_timeout_secs": 60 });
    for token in [&f.author, &f.viewer] {
        assert_eq!(f.start_campaign(token, &body).await, StatusCode::FORBIDDEN);
    }
    assert_eq!(f.view("/api/v1/campaigns").await, json!([]));
    let c = f.campaign(body).await;
    let id = c["id"].as_str().unwrap();
    let r = f
        .post(&format!("/api/v1/campaigns/{id}/pause"), &f.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        f.view(&format!("/api/v1/campaigns/{id}")).await["state"],
        "running"
    );
}

#[tokio::test]
async fn uploads_a_device_would_refuse_are_refused() {
    let f = Fleet::start().await;
    // Signed by a key that is not a trust anchor.
    let forged = f.envelope(5, &CLASS, &p256_key(99));
    let (s, v) = f.upload(&f.author, &forged, &CLASS).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("refused as a device would"),
        "{v}"
    );
    // Not CBOR at all.
    let (s, _) = f.upload(&f.author, b"garbage", &CLASS).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // One flipped bit in the signed envelope.
    let mut tampered = f.envelope(5, &CLASS, &f.author_key);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (s, _) = f.upload(&f.author, &tampered, &CLASS).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Authentic, but for another class than the release targets.
    let other = f.envelope(5, &OTHER_CLASS, &f.author_key);
    let (s, v) = f.upload(&f.author, &other, &CLASS).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"].as_str().unwrap().starts_with("wrong class"),
        "{v}"
    );
    assert_eq!(f.view("/api/v1/releases").await, json!([]));

    // Accepted, then not-newer sequence numbers are refused.
    let (id, _) = f.release(5).await;
    for n in [5, 4] {
        let (s, v) = f
            .upload(&f.author, &f.envelope(n, &CLASS, &f.author_key), &CLASS)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["error"].as_str().unwrap().contains("not newer"), "{v}");
    }
    f.release(6).await;
    let list = f.view("/api/v1/releases").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let one = f.view(&format!("/api/v1/releases/{id}")).await;
    assert_eq!(one["sequence_number"], 5);
    assert_eq!(one["class_id"], uuid(&CLASS));
    let sha = sha256(&image());
    assert_eq!(one["images"], json!([{ "sha256": sha, "uploaded": false }]));
    // Query errors are 400, not a panic.
    let r = f
        .post("/api/v1/releases", &f.author)
        .query(&[("name", "x")])
        .body(vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = f
        .post("/api/v1/releases", &f.author)
        .query(&[("name", "x"), ("vendor_id", "nope"), ("class_id", "nope")])
        .body(vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_4xx() {
    let f = Fleet::start().await;
    let big = vec![0u8; 64 * 1024 + 1];
    let (s, _) = f.upload(&f.author, &big, &CLASS).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let sha = sha256(&big);
    assert_eq!(
        f.put_payload(&f.author, &sha, big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let d = f.enrol("dev-1", 1, json!({})).await;
    for body in [
        "",
        "{",
        "[]",
        "{\"sequence_number\": -1}",
        "{\"sequence_number\": 1, \"extra\": 2}",
    ] {
        let r = f
            .post("/device/v1/checkin", &d.token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string());
    }
    let huge = format!(
        "{{\"sequence_number\": 1, \"attributes\": {{\"a\": \"{}\"}}}}",
        "x".repeat(70_000)
    );
    let r = f
        .post("/device/v1/checkin", &d.token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for body in [
        vec![],
        vec![0xff; 10],
        vec![0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40],
    ] {
        assert_eq!(d.send_report(&f, body).await, StatusCode::BAD_REQUEST);
    }
    let r = f
        .http
        .post(format!("{}/device/v1/enrol", f.url))
        .json(&json!({ "id": "x", "public_key": "nope", "vendor_id": uuid(&VENDOR), "class_id": uuid(&CLASS),
            "proof": "00", "nonce": "00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn payloads_download_with_range_resume_and_etag() {
    let f = Fleet::start().await;
    let image = image();
    let sha = sha256(&image);
    assert_eq!(
        f.put_payload(&f.author, &sha, image.clone()).await,
        StatusCode::CREATED
    );
    assert_eq!(
        f.put_payload(&f.author, &sha, image.clone()).await,
        StatusCode::OK
    );
    // The body must hash to its name.
    assert_eq!(
        f.put_payload(&f.author, &sha, b"other".to_vec()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        f.put_payload(&f.author, "ABC", image.clone()).await,
        StatusCode::BAD_REQUEST
    );
    // Only the author uploads.
    assert_eq!(
        f.put_payload(&f.viewer, &sha, image.clone()).await,
        StatusCode::FORBIDDEN
    );

    let d = f.enrol("dev-1", 1, json!({})).await;
    let path = format!("/device/v1/payloads/{sha}");
    // Downloads need a device token.
    assert_eq!(f.status(&path, "").await, StatusCode::UNAUTHORIZED);
    let whole = f.get(&path, &d.token).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    let etag = whole.headers()[header::ETAG].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(whole.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(whole.bytes().await.unwrap().to_vec(), image);

    // A download cut after 1000 bytes resumes where it stopped.
    let first = f
        .get(&path, &d.token)
        .header(header::RANGE, "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        first.headers()[header::CONTENT_RANGE],
        format!("bytes 0-999/{}", image.len())
    );
    let mut got = first.bytes().await.unwrap().to_vec();
    let rest = f
        .get(&path, &d.token)
        .header(header::RANGE, format!("bytes={}-", got.len()))
        .header(header::IF_RANGE, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    got.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(got, image);

    // A stale If-Range gets the whole representation, not a splice of two.
    let stale = f
        .get(&path, &d.token)
        .header(header::RANGE, "bytes=1000-")
        .header(header::IF_RANGE, "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.bytes().await.unwrap().len(), image.len());
    // Past the end: 416 with the length.
    let past = f
        .get(&path, &d.token)
        .header(header::RANGE, format!("bytes={}-", image.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", image.len())
    );
    // Revalidation.
    let same = f
        .get(&path, &d.token)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    // Unknown or malformed names.
    let missing = format!("/device/v1/payloads/{}", "0".repeat(64));
    assert_eq!(f.status(&missing, &d.token).await, StatusCode::NOT_FOUND);
    assert_eq!(
        f.status("/device/v1/payloads/..%2F..%2Fetc", &d.token)
            .await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn uploads_take_the_upload_limit_and_json_keeps_its_own() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let f = Fleet::start_with(dir, 1024 * 1024).await;
    // Larger than the JSON limit, within the upload limit.
    let payload = suitcase_testkit::image(9, 200 * 1024);
    let sha = sha256(&payload);
    assert_eq!(
        f.put_payload(&f.author, &sha, payload.clone()).await,
        StatusCode::CREATED
    );
    let big = vec![7u8; 1024 * 1024 + 1];
    let sha = sha256(&big);
    assert_eq!(
        f.put_payload(&f.author, &sha, big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let group = format!(
        "{{\"name\": \"{}\", \"devices\": []}}",
        "g".repeat(100 * 1024)
    );
    let r = f
        .post("/api/v1/groups", &f.operator)
        .header(header::CONTENT_TYPE, "application/json")
        .body(group)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_by_operators_only() {
    let f = Fleet::start().await;
    // Only an operator manages tokens.
    for t in [&f.author, &f.viewer] {
        assert_eq!(f.status("/api/v1/tokens", t).await, StatusCode::FORBIDDEN);
        let r = f
            .post("/api/v1/tokens", t)
            .json(&json!({ "name": "ci", "role": "author" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = f
        .post("/api/v1/tokens", &f.operator)
        .json(&json!({ "name": "ci", "role": "root" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = f
        .post("/api/v1/tokens", &f.operator)
        .json(&json!({ "name": "ci", "role": "author" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let ci = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The new token works, as an author.
    let (status, _) = f
        .upload(&ci, &f.envelope(5, &CLASS, &f.author_key), &CLASS)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Listed without the token itself.
    let list = f.json("/api/v1/tokens", &f.operator).await;
    let text = list.to_string();
    assert!(
        !text.contains(&ci) && !text.contains(&sha256(ci.as_bytes())),
        "{text}"
    );
    let find = |name: &str, role: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name && t["role"] == role)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ci_id = find("ci", "author");
    let revoke = |id: String, token: String| {
        let f = &f;
        async move {
            f.http
                .delete(format!("{}/api/v1/tokens/{id}", f.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke(ci_id.clone(), f.author.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        revoke(ci_id.clone(), f.operator.clone()).await,
        StatusCode::NO_CONTENT
    );
    // Revoked at once: the next call is unauthenticated and uploads nothing.
    let (status, _) = f
        .upload(&ci, &f.envelope(6, &CLASS, &f.author_key), &CLASS)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoke(ci_id, f.operator.clone()).await,
        StatusCode::NOT_FOUND
    );
    // The last operator token stays: nobody would be left to manage the server.
    let op_id = find("operator", "operator");
    assert_eq!(
        revoke(op_id, f.operator.clone()).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        f.status("/api/v1/tokens", &f.operator).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_device_is_refused_and_keeps_its_history() {
    let f = Fleet::start().await;
    let d = f.enrol("dev-1", 1, json!({})).await;
    assert!(d.check_in(&f, 1).await.is_none());
    let revoke = |token: &str| f.post("/api/v1/devices/dev-1/revoke", token).send();
    assert_eq!(
        revoke(&f.viewer).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        revoke(&f.operator).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let r = f
        .post("/device/v1/checkin", &d.token)
        .json(&json!({ "sequence_number": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Still listed for the operators.
    assert_eq!(f.view("/api/v1/devices/dev-1").await["id"], "dev-1");
    assert_eq!(
        f.post("/api/v1/devices/nobody/revoke", &f.operator)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}
