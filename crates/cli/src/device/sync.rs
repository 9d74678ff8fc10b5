//! `suitcase device sync --dir D --server URL [--id NAME]`: one round of the simulated
//! device with the fleet server (`suitcase serve`, docs/server.md).
//!
//! 1. Enrol, once: a P-256 report key is made in `report-key.pem` (0600), a server nonce
//!    is signed with it (`nonce ‖ id`, by the report signer), and the device token is kept
//!    in `server.json` (0600).
//! 2. Check in with the installed sequence number (the rollback counter); 204: done.
//! 3. Download each payload the offer names by SHA-256 into `cache/`, resuming a partial
//!    file with `Range` + `If-Range`, and check its digest.
//! 4. Stage the envelope through the processor and bootloader (as `apply`; a payload URI
//!    resolves to its last path segment, the digest, in `cache/`), reboot, self-test.
//! 5. Send the signed SUIT report (the processor's records, its refusal if any, the
//!    offer's nonce), so the server can move the campaign.
//!
//! Exit 0 when the update took (or there was none), 1 when the device refused it (the
//! refusal is reported to the server first), 2 for transport or server errors.

use std::io::{Read as _, Write};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use suitcase_cose::SigningKey;
use suitcase_processor::report::{DeviceKey, Reference, ReportLog, sign_report};

use super::{Device, DirArgs, FileFetch, authenticate, emit, refusal};
use crate::Rejected;
use crate::keys::{self, KeyAlg, PrivateKey};
use crate::output::{self, Mode as FileMode};

const KEY: &str = "report-key.pem";
const SESSION: &str = "server.json";
const CACHE: &str = "cache";
/// Largest envelope the device accepts from a check-in.
const MAX_ENVELOPE: u64 = 64 * 1024;

/// `device sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// The fleet server, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The device's id at the server (default: the directory's name).
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
}

/// What `server.json` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    server: String,
    id: String,
    token: String,
}

fn agent() -> ureq::Agent {
    // Statuses are answers here (204, 206, 4xx with a JSON reason), not transport errors.
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The server's one-line reason from a 4xx/5xx answer.
fn server_error(what: &str, mut r: ureq::http::Response<ureq::Body>) -> anyhow::Error {
    let status = r.status();
    let reason = r
        .body_mut()
        .read_json::<serde_json::Value>()
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default();
    anyhow!("{what}: server answered {status} {reason}")
}

fn report_key(dir: &Path) -> anyhow::Result<p256::ecdsa::SigningKey> {
    let path = dir.join(KEY);
    if !path.exists() {
        let key = keys::generate(KeyAlg::Es256, 0)?;
        output::write_atomic(&path, key.to_pem()?.as_bytes(), FileMode::Secret)?;
    }
    match keys::load_private(&path)? {
        PrivateKey::Classic(SigningKey::P256(k)) => Ok(k),
        _ => bail!("{}: the report key must be P-256", path.display()),
    }
}

fn enrol(
    agent: &ureq::Agent,
    server: &str,
    id: &str,
    key: &p256::ecdsa::SigningKey,
    device: &Device,
) -> anyhow::Result<Session> {
    let mut r = agent
        .post(format!("{server}/device/v1/enrol/challenge"))
        .send_empty()
        .context("enrol")?;
    if !r.status().is_success() {
        return Err(server_error("enrol", r));
    }
    let challenge: serde_json::Value = r.body_mut().read_json().context("enrol")?;
    let nonce = challenge["nonce"].as_str().unwrap_or_default().to_string();
    let mut signed = hex::decode(&nonce).context("enrol: nonce")?;
    signed.extend_from_slice(id.as_bytes());
    let proof = sign(key, &signed)?;
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow!("{e}"))?;
    let c = device.config();
    let mut r = agent
        .post(format!("{server}/device/v1/enrol"))
        .send_json(json!({
            "id": id, "public_key": pem, "vendor_id": c.vendor_id, "class_id": c.class_id,
            "nonce": nonce, "proof": hex::encode(proof),
        }))
        .context("enrol")?;
    if !r.status().is_success() {
        return Err(server_error("enrol", r));
    }
    let answer: serde_json::Value = r.body_mut().read_json().context("enrol")?;
    let token = answer["token"]
        .as_str()
        .ok_or_else(|| anyhow!("enrol: no token in the answer"))?;
    Ok(Session {
        server: server.to_string(),
        id: id.to_string(),
        token: token.to_string(),
    })
}

/// COSE_Sign1 (ES256, attached) with the device's report signer.
fn sign(key: &p256::ecdsa::SigningKey, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0u8; payload.len() + 128];
    let n = sign_report(DeviceKey::Es256(key), None, payload, &mut out)
        .map_err(|e| anyhow!("signing: {e:?}"))?;
    out.truncate(n);
    Ok(out)
}

/// Downloads blob `sha` into `cache/sha`, resuming `cache/sha.part`; returns the bytes
/// transferred now.
fn download(agent: &ureq::Agent, s: &Session, cache: &Path, sha: &str) -> anyhow::Result<u64> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("offer: {sha:?} is not a SHA-256");
    }
    let done = cache.join(sha);
    if done.is_file() {
        return Ok(0);
    }
    let part = cache.join(format!("{sha}.part"));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent
        .get(format!("{}/device/v1/payloads/{sha}", s.server))
        .header("Authorization", format!("Bearer {}", s.token));
    if have > 0 {
        // If-Range: a changed representation comes back whole, never spliced.
        req = req
            .header("Range", format!("bytes={have}-"))
            .header("If-Range", format!("\"{sha}\""));
    }
    let mut r = req.call().with_context(|| format!("payload {sha}"))?;
    let append = match r.status().as_u16() {
        200 => false,
        206 => true,
        _ => return Err(server_error(&format!("payload {sha}"), r)),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&part)
        .with_context(|| part.display().to_string())?;
    let n = std::io::copy(&mut r.body_mut().as_reader(), &mut file)
        .with_context(|| format!("payload {sha}"))?;
    file.sync_all()?;
    drop(file);
    let mut bytes = Vec::new();
    std::fs::File::open(&part)?.read_to_end(&mut bytes)?;
    if hex::encode(Sha256::digest(&bytes)) != sha {
        // A corrupt partial file would be resumed forever: start over next time.
        let _ = std::fs::remove_file(&part);
        bail!("payload {sha}: the download does not hash to its name");
    }
    std::fs::rename(&part, &done)?;
    Ok(n)
}

/// Runs `device sync`.
///
/// # Errors
/// Transport and server errors; [`Rejected`] when the device refused the update.
pub fn run(a: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = &a.common.dir;
    let mut device = Device::open(dir)?;
    let key = report_key(dir)?;
    let server = a.server.trim_end_matches('/').to_string();
    let id = match &a.id {
        Some(id) => id.clone(),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| anyhow!("--id is needed: the directory has no name"))?,
    };
    let agent = agent();
    let session_path = dir.join(SESSION);
    let session = match std::fs::read(&session_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Session>(&b).ok())
        .filter(|s| s.server == server && s.id == id)
    {
        Some(s) => s,
        None => {
            let s = enrol(&agent, &server, &id, &key, &device)?;
            output::write_atomic(&session_path, &serde_json::to_vec(&s)?, FileMode::Secret)?;
            s
        }
    };

    let installed = device.counter()?;
    let mut r = agent
        .post(format!("{server}/device/v1/checkin"))
        .header("Authorization", format!("Bearer {}", session.token))
        .send_json(json!({ "sequence_number": installed }))
        .context("check-in")?;
    if r.status().as_u16() == 204 {
        return emit(
            out,
            a.common.json,
            &json!({"type": "sync", "id": id, "update": false, "sequence": installed}),
            &format!("sync: {id}: up to date (sequence {installed})"),
        );
    }
    if r.status().as_u16() != 200 {
        return Err(server_error("check-in", r));
    }
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let nonce = hex::decode(header("suit-report-nonce")).context("check-in: nonce")?;
    let payloads = header("suit-payloads");
    let envelope = r
        .body_mut()
        .with_config()
        .limit(MAX_ENVELOPE)
        .read_to_vec()
        .context("check-in: envelope")?;

    let cache = dir.join(CACHE);
    std::fs::create_dir_all(&cache)?;
    let mut downloaded = 0;
    for sha in payloads.split(',').filter(|s| !s.is_empty()) {
        downloaded += download(&agent, &session, &cache, sha)?;
    }

    let mut log = ReportLog::<16>::new();
    let mut fetch = FileFetch::new(vec![cache]);
    let staged = device.stage(&envelope, &mut fetch, &mut log)?;
    let mut booted = None;
    if let Ok(seq) = staged {
        let boot = device.reboot(None)?;
        if boot.handover.is_some_and(|h| h.sequence == seq) {
            device.self_test(false)?;
            booted = Some(seq);
        }
    }
    // The report names the manifest when it authenticated (its reference), the offer's
    // nonce, and the processor's verdict.
    let mut buf = vec![0u8; 4096];
    let result = match &staged {
        Ok(_) if booted.is_none() => bail!("the staged update did not boot"),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    let n = device.with_keys(|k| {
        let auth = authenticate(&envelope, k).ok();
        let reference = auth.as_ref().map(Reference::of);
        log.encode(reference.as_ref(), Some(&nonce), result, &mut buf)
    });
    let n = n.map_err(|e| anyhow!("report: {e:?}"))?;
    let signed = sign(&key, buf.get(..n).unwrap_or_default())?;
    let r = agent
        .post(format!("{server}/device/v1/reports"))
        .header("Authorization", format!("Bearer {}", session.token))
        .header("Content-Type", "application/cose")
        .send(&signed[..])
        .context("report")?;
    if !r.status().is_success() {
        return Err(server_error("report", r));
    }
    match (staged, booted) {
        (Ok(seq), Some(_)) => emit(
            out,
            a.common.json,
            &json!({"type": "sync", "id": id, "update": true, "sequence": seq,
                    "downloaded": downloaded, "fetched": fetch.bytes, "reported": "success"}),
            &format!(
                "sync: {id}: updated to sequence {seq} ({downloaded} B downloaded), confirmed, success reported"
            ),
        ),
        (Err(e), _) => {
            if a.common.json {
                writeln!(
                    out,
                    "{}",
                    json!({"type": "sync", "id": id, "update": false, "sequence": installed,
                           "refused": refusal(&e), "reported": "failure"})
                )?;
            }
            Err(Rejected(format!("refused ({}); failure reported", refusal(&e))).into())
        }
        // Returned early above, before the report.
        (Ok(_), None) => bail!("the staged update did not boot"),
    }
}
