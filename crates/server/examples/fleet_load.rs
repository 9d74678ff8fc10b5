//! The server side of `cargo xtask bench-fleet`: a real server on a loopback port with N
//! devices enrolled (over HTTP, each with its own P-256 key and proof of possession) and
//! one payload uploaded, then served until the process is killed. The load itself comes
//! from `wrk`, a separate process, so the figures measure this server and not a client
//! sharing its runtime.
//!
//! ```text
//! cargo run --release -p suitcase-server --example fleet_load -- DIR DEVICES PAYLOAD_BYTES [DATABASE_URL]
//! ```
//!
//! When ready it prints one line, `ready URL TOKENS_FILE SHA256 BLOB_PATH`: the server's
//! base URL, a file with one device token a line, the payload's digest, and the file the
//! server serves it from (the same bytes nginx is pointed at).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use suitcase_cose::OwnedVerifyingKey;
use suitcase_processor::report::{DeviceKey, sign_report};
use suitcase_server::{Config, Role, State};

/// Enrolments in flight at once (each is two requests and a P-256 sign + verify).
const ENROL_CONCURRENCY: usize = 16;
const VENDOR: &str = "11111111-1111-1111-1111-111111111111";
const CLASS: &str = "22222222-2222-2222-2222-222222222222";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, devices, payload_bytes, rest @ ..] = args.as_slice() else {
        return Err("usage: fleet_load DIR DEVICES PAYLOAD_BYTES [DATABASE_URL]".into());
    };
    let dir = PathBuf::from(dir);
    let devices: usize = devices.parse()?;
    let payload_bytes: usize = payload_bytes.parse()?;
    let database = rest.first().cloned();

    // The author's key only has to exist: the benchmark uploads a payload, not a release.
    let anchor = p256::ecdsa::SigningKey::from_slice(&[7; 32])?;
    let state = State::open(Config {
        data: dir.clone(),
        database,
        trust_anchors: vec![OwnedVerifyingKey::P256(*anchor.verifying_key())],
        require: None,
        trust_store: None,
        max_upload: payload_bytes.max(1024),
    })
    .await?;
    let author = state
        .bootstrap_tokens()
        .await?
        .into_iter()
        .find(|(r, _)| *r == Role::Author)
        .map(|(_, t)| t)
        .ok_or("no author token (the data directory was used before)")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(suitcase_server::serve_on(
        state,
        listener,
        Duration::from_secs(3600),
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(devices);
    for chunk in (0..devices).collect::<Vec<_>>().chunks(ENROL_CONCURRENCY) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            set.spawn(enrol(http.clone(), url.clone(), i));
        }
        while let Some(token) = set.join_next().await {
            tokens.push(token??);
        }
    }
    eprintln!(
        "fleet_load: {devices} devices enrolled in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let payload = suitcase_testkit::image(16, payload_bytes);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&payload));
    let r = http
        .put(format!("{url}/api/v1/payloads/{sha}"))
        .bearer_auth(&author)
        .body(payload)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("payload upload: {}", r.status()).into());
    }
    let tokens_file = dir.join("tokens.txt");
    std::fs::write(&tokens_file, tokens.join("\n") + "\n")?;
    let blob = dir.join("blobs").join(&sha);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ready {url} {} {sha} {}",
        tokens_file.display(),
        blob.display()
    )?;
    out.flush()?;
    drop(out);
    server.await??;
    Ok(())
}

/// Enrols device `i` (challenge, proof over `nonce ‖ id`, enrol); returns its token.
async fn enrol(http: reqwest::Client, url: String, i: usize) -> Result<String, Error> {
    let seed = <sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes());
    let key = p256::ecdsa::SigningKey::from_slice(&seed)?;
    let id = format!("load-{i:06}");
    let challenge: Value = http
        .post(format!("{url}/device/v1/enrol/challenge"))
        .send()
        .await?
        .json()
        .await?;
    let nonce = challenge["nonce"].as_str().ok_or("no nonce")?;
    let mut signed = hex::decode(nonce)?;
    signed.extend_from_slice(id.as_bytes());
    let mut proof = vec![0u8; signed.len() + 128];
    let n = sign_report(DeviceKey::Es256(&key), None, &signed, &mut proof)
        .map_err(|e| format!("sign: {e:?}"))?;
    proof.truncate(n);
    let body = json!({
        "id": id,
        "public_key": key.verifying_key().to_public_key_pem(LineEnding::LF)?,
        "vendor_id": VENDOR, "class_id": CLASS,
        "proof": hex::encode(proof), "nonce": nonce,
    });
    let r = http
        .post(format!("{url}/device/v1/enrol"))
        .json(&body)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("enrol {id}: {}", r.status()).into());
    }
    let v: Value = r.json().await?;
    Ok(v["token"].as_str().ok_or("no token")?.to_owned())
}
