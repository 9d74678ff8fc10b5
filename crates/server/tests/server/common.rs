//! A server on a free loopback port, its tokens, and devices that speak to it.

use std::sync::Arc;

use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::StatusCode;
use serde_json::{Value, json};
use suitcase_cose::{Algorithm, OwnedVerifyingKey, SigningKey};
use suitcase_processor::platform::{StaticKeys, TrustAnchor};
use suitcase_processor::report::{DeviceKey, Reference, encode_report, sign_report};
use suitcase_server::{Config, Role, State};
use suitcase_testkit::build::{bytes, digest_of, envelope, int, params, seq};
use suitcase_testkit::resign::{Rewrite, Signer};

pub const VENDOR: [u8; 16] = [0x11; 16];
pub const CLASS: [u8; 16] = [0x22; 16];
pub const OTHER_CLASS: [u8; 16] = [0x33; 16];

pub fn uuid(b: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*b).to_string()
}

/// A P-256 key from a seed byte (deterministic, so failures reproduce).
pub fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
}

/// A running server.
pub struct Fleet {
    pub url: String,
    pub state: State,
    pub author: String,
    pub operator: String,
    pub viewer: String,
    pub http: reqwest::Client,
    pub author_key: p256::ecdsa::SigningKey,
    pub _dir: Arc<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Fleet {
    pub async fn start() -> Fleet {
        Self::start_with(Arc::new(tempfile::tempdir().unwrap()), 64 * 1024).await
    }

    pub async fn start_with(dir: Arc<tempfile::TempDir>, max_upload: usize) -> Fleet {
        Self::start_config(dir, max_upload, None).await
    }

    /// A server that checks releases with the fleet's trust store `store` (and keeps
    /// the author key as its only flat anchor, unused then).
    pub async fn start_config(
        dir: Arc<tempfile::TempDir>,
        max_upload: usize,
        trust_store: Option<Vec<u8>>,
    ) -> Fleet {
        let author_key = p256_key(7);
        let state = State::open(Config {
            data: dir.path().to_path_buf(),
            database: database_for(dir.path()).await,
            trust_anchors: vec![OwnedVerifyingKey::P256(*author_key.verifying_key())],
            require: None,
            trust_store,
            max_upload,
        })
        .await
        .unwrap();
        let mut tokens = state.bootstrap_tokens().await.unwrap();
        if tokens.is_empty() {
            for role in Role::ALL {
                tokens.push((role, state.create_token(role, "again").await.unwrap()));
            }
        }
        let token = |r: Role| tokens.iter().find(|(x, _)| *x == r).unwrap().1.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = suitcase_server::app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fleet {
            url,
            state,
            author: token(Role::Author),
            operator: token(Role::Operator),
            viewer: token(Role::Viewer),
            http: reqwest::Client::new(),
            author_key,
            _dir: dir,
            server,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    /// PUTs a payload as `token`; returns the status.
    pub async fn put_payload(&self, token: &str, sha: &str, body: Vec<u8>) -> StatusCode {
        self.http
            .put(format!("{}/api/v1/payloads/{sha}", self.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The status of a GET.
    pub async fn status(&self, path: &str, token: &str) -> StatusCode {
        self.get(path, token).send().await.unwrap().status()
    }

    /// A GET's JSON answer.
    pub async fn json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// GET as the viewer, as JSON.
    pub async fn view(&self, path: &str) -> Value {
        let r = self.get(path, &self.viewer).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }

    /// Uploads a release; returns the status and the JSON answer.
    pub async fn upload(&self, token: &str, env: &[u8], class: &[u8; 16]) -> (StatusCode, Value) {
        let r = self
            .post("/api/v1/releases", token)
            .query(&[
                ("name", "app"),
                ("vendor_id", &uuid(&VENDOR)),
                ("class_id", &uuid(class)),
            ])
            .body(env.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A release that must be accepted, approved by the operator; returns its id.
    pub async fn release(&self, sequence_number: u64) -> (String, Vec<u8>) {
        let (id, env) = self.unapproved_release(sequence_number).await;
        assert_eq!(self.approve(&self.operator, &id).await, StatusCode::OK);
        (id, env)
    }

    /// A release that must be accepted; returns its id.
    pub async fn unapproved_release(&self, sequence_number: u64) -> (String, Vec<u8>) {
        let env = self.envelope(sequence_number, &CLASS, &self.author_key);
        let (status, v) = self.upload(&self.author, &env, &CLASS).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (v["id"].as_str().unwrap().to_string(), env)
    }

    /// Approves release `id` as `token`; returns the status.
    pub async fn approve(&self, token: &str, id: &str) -> StatusCode {
        self.post(&format!("/api/v1/releases/{id}/approve"), token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A signed envelope for one image of `class`.
    pub fn envelope(
        &self,
        sequence_number: u64,
        class: &[u8; 16],
        key: &p256::ecdsa::SigningKey,
    ) -> Vec<u8> {
        let image = image();
        let shared = seq(&[
            (
                20,
                params(&[
                    (1, bytes(&VENDOR)),
                    (2, bytes(class)),
                    (3, digest_of(&image)),
                    (14, int(image.len() as i64)),
                ]),
            ),
            (1, int(15)),
            (2, int(15)),
        ]);
        let unsigned = envelope(sequence_number, &[&[b"app"]], Some(shared), &[], &[]);
        Rewrite {
            signers: vec![Signer::Sign(
                SigningKey::P256(key.clone()),
                Algorithm::Es256,
            )],
            ..Rewrite::default()
        }
        .apply(&unsigned)
        .unwrap()
    }

    /// Creates a static group of `devices`; returns its id.
    pub async fn group(&self, name: &str, devices: &[&FleetDevice]) -> String {
        let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        let r = self
            .post("/api/v1/groups", &self.operator)
            .json(&json!({ "name": name, "devices": ids }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// POSTs a campaign as `token`; returns the status.
    pub async fn start_campaign(&self, token: &str, body: &Value) -> StatusCode {
        self.post("/api/v1/campaigns", token)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Starts a campaign; returns its JSON.
    pub async fn campaign(&self, body: Value) -> Value {
        let r = self
            .post("/api/v1/campaigns", &self.operator)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    /// Enrols a device.
    pub async fn enrol(&self, id: &str, seed: u8, attributes: Value) -> FleetDevice {
        let key = p256_key(seed);
        let r = self.enrol_request(id, &key, &key, attributes).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        FleetDevice {
            id: id.to_string(),
            token: v["token"].as_str().unwrap().to_string(),
            key,
        }
    }

    /// A fresh enrolment nonce (hex).
    pub async fn challenge(&self) -> String {
        let c: Value = self
            .http
            .post(format!("{}/device/v1/enrol/challenge", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        c["nonce"].as_str().unwrap().to_string()
    }

    /// POSTs an enrolment body.
    pub async fn post_enrol(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/device/v1/enrol", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The enrolment exchange, with the proof signed by `signer` for the public key `key`.
    pub async fn enrol_request(
        &self,
        id: &str,
        key: &p256::ecdsa::SigningKey,
        signer: &p256::ecdsa::SigningKey,
        attributes: Value,
    ) -> reqwest::Response {
        let nonce = self.challenge().await;
        let mut body = enrol_body(id, key, signer, &nonce);
        body["attributes"] = attributes;
        self.post_enrol(&body).await
    }
}

/// An enrolment request for `key`, its proof over `nonce ‖ id` signed by `signer`.
pub fn enrol_body(
    id: &str,
    key: &p256::ecdsa::SigningKey,
    signer: &p256::ecdsa::SigningKey,
    nonce: &str,
) -> Value {
    let mut signed = hex::decode(nonce).unwrap();
    signed.extend_from_slice(id.as_bytes());
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    json!({
        "id": id, "public_key": pem, "vendor_id": uuid(&VENDOR), "class_id": uuid(&CLASS),
        "proof": hex::encode(sign(signer, &signed)), "nonce": nonce,
    })
}

/// The PostgreSQL server the suite runs on (`SUITCASE_TEST_POSTGRES`), or `None` for
/// SQLite. With `SUITCASE_TEST_POSTGRES_REQUIRED=1` (set by `cargo xtask test`, which
/// starts the server) a missing variable fails the test instead of quietly falling back
/// to SQLite, so a green run proves the PostgreSQL pass happened.
pub fn postgres_server() -> Option<String> {
    match std::env::var("SUITCASE_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => Some(server),
        _ if std::env::var("SUITCASE_TEST_POSTGRES_REQUIRED").as_deref() == Ok("1") => {
            panic!("SUITCASE_TEST_POSTGRES_REQUIRED=1 but SUITCASE_TEST_POSTGRES is not set")
        }
        _ => None,
    }
}

/// The PostgreSQL database name of the test whose directory is `dir`.
pub fn database_name(dir: &std::path::Path) -> String {
    format!(
        "suitcase_{}",
        hex::encode(
            &<sha2::Sha256 as sha2::Digest>::digest(dir.as_os_str().as_encoded_bytes())[..8]
        )
    )
}

/// The database of a test: the SQLite file in its directory (`None`), or, when
/// `SUITCASE_TEST_POSTGRES` names a PostgreSQL server (`postgres://user@host:port`), a
/// database of its own there, named after the directory so that a restart finds it again.
/// An unreachable server fails the test (the connection is unwrapped), never skips it.
async fn database_for(dir: &std::path::Path) -> Option<String> {
    use sqlx::Connection as _;
    let server = postgres_server()?;
    let name = database_name(dir);
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    if exists.is_none() {
        // The name is hex made here: no injection.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    Some(format!("{server}/{name}"))
}

/// SHA-256, lower-case hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// The payload every test release installs.
pub fn image() -> Vec<u8> {
    suitcase_testkit::image(42, 3000)
}

/// COSE_Sign1 (ES256, attached) with the device's own signer.
pub fn sign(key: &p256::ecdsa::SigningKey, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 128];
    let n = sign_report(DeviceKey::Es256(key), None, payload, &mut out).unwrap();
    out.truncate(n);
    out
}

/// An enrolled device.
pub struct FleetDevice {
    pub id: String,
    pub token: String,
    pub key: p256::ecdsa::SigningKey,
}

/// What a check-in answered.
pub struct Offer {
    pub envelope: Vec<u8>,
    pub nonce: Vec<u8>,
    pub campaign: String,
    /// The payload digests the server named.
    pub payloads: String,
}

impl FleetDevice {
    pub async fn check_in(&self, fleet: &Fleet, sequence_number: u64) -> Option<Offer> {
        let r = fleet
            .post("/device/v1/checkin", &self.token)
            .json(&json!({ "sequence_number": sequence_number }))
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::NO_CONTENT => None,
            StatusCode::OK => {
                let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
                let nonce = hex::decode(h("suit-report-nonce")).unwrap();
                let campaign = h("suit-campaign");
                let payloads = h("suit-payloads");
                Some(Offer {
                    envelope: r.bytes().await.unwrap().to_vec(),
                    nonce,
                    campaign,
                    payloads,
                })
            }
            s => panic!("check-in: {s}"),
        }
    }

    /// The signed SUIT report of processing `offer`, as the device makes it.
    pub fn report(&self, fleet: &Fleet, offer: &Offer, success: bool) -> Vec<u8> {
        report_by(
            &self.key,
            fleet,
            &offer.envelope,
            Some(&offer.nonce),
            success,
        )
    }

    /// Sends a report body; returns the status.
    pub async fn send_report(&self, fleet: &Fleet, body: Vec<u8>) -> StatusCode {
        fleet
            .post("/device/v1/reports", &self.token)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// A report over `envelope`, signed with `key`: the reference comes from authenticating
/// the envelope as the device does.
pub fn report_by(
    key: &p256::ecdsa::SigningKey,
    fleet: &Fleet,
    envelope: &[u8],
    nonce: Option<&[u8]>,
    success: bool,
) -> Vec<u8> {
    let anchors = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::P256(*fleet.author_key.verifying_key()),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    report_with(key, &keys, envelope, nonce, success)
}

/// A report over `envelope` authenticated with `keys` (the device's key store), signed
/// with the device's `key`.
pub fn report_with(
    key: &p256::ecdsa::SigningKey,
    keys: &dyn suitcase_processor::platform::KeyStore,
    envelope: &[u8],
    nonce: Option<&[u8]>,
    success: bool,
) -> Vec<u8> {
    let auth = suitcase_processor::authenticate(envelope, keys).unwrap();
    let reference = Reference::of(&auth);
    let failure = suitcase_processor::Error::UnsupportedDigest;
    let result = if success {
        Ok(())
    } else {
        Err((&failure, None))
    };
    let mut buf = [0u8; 512];
    let n = encode_report(Some(&reference), nonce, &[], result, &mut buf).unwrap();
    sign(key, &buf[..n])
}
