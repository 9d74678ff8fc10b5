//! `suitcase device sync --dir D --server URL [--id NAME]`: one round of the simulated
//! device with the fleet server (`suitcase serve`, docs/server.md).
//!
//! 1. Enrol, once: a P-256 report key is made in `report-key.pem` (0600), a server nonce
//!    is signed with it (`nonce ‖ id`, by the report signer), and the device token is kept
//!    in `server.json` (0600).
//! 2. Check in with the installed sequence number (the rollback counter); 204: done.
//! 3. Download each payload the offer names by SHA-256 into `cache/`, resuming a partial
//!    file (HTTP: `Range` + `If-Range`; CoAP: from the Block2 block holding its end), and
//!    check its digest.
//! 4. Stage the envelope through the processor and bootloader (as `apply`; a payload URI
//!    resolves to its last path segment, the digest, in `cache/`), reboot, self-test.
//! 5. Send the signed SUIT report (the processor's records, its refusal if any, the
//!    offer's nonce), so the server can move the campaign.
//!
//! The server is `http://…` or `coap://HOST:PORT` (docs/server.md §CoAP): the round is
//! the same, over a [`Transport`] of either kind.
//!
//! Exit 0 when the update took (or there was none), 1 when the device refused it (the
//! refusal is reported to the server first), 2 for transport or server errors.

use std::io::{Read, Seek as _, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use suitcase_cose::SigningKey;
use suitcase_processor::report::{DeviceKey, Reference, ReportLog, sign_report};

use suitcase_flash_sim::Fault;
use suitcase_processor::platform::InvokeError;

use super::{Device, DirArgs, FileFetch, authenticate, emit, refusal};
use crate::Rejected;
use crate::keys::{self, KeyAlg, PrivateKey};
use crate::output::{self, Mode as FileMode};

const KEY: &str = "report-key.pem";
const SESSION: &str = "server.json";
const CACHE: &str = "cache";
const PENDING: &str = "pending.json";
/// Largest envelope the device accepts from a check-in.
pub(super) const MAX_ENVELOPE: u64 = 64 * 1024;

/// `device sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// The fleet server, e.g. http://127.0.0.1:8080 or coap://127.0.0.1:5683.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The device's id at the server (default: the directory's name).
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// Run N simulated devices at once: `DIR/device-NNN`, each made on first use as a
    /// copy of the device in DIR (its flash and configuration; its own report key and
    /// token), each doing this round; then one summary line.
    #[arg(long, value_name = "N", conflicts_with = "id")]
    pub fleet: Option<usize>,
    /// With --fleet: devices syncing at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "fleet")]
    pub jobs: usize,
}

/// What `server.json` keeps.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    server: String,
    id: String,
    token: String,
}

/// An offer as a check-in returns it.
pub(super) struct Offer {
    /// The report nonce.
    pub(super) nonce: Vec<u8>,
    /// The payloads' SHA-256 digests (hex).
    pub(super) payloads: Vec<String>,
    /// The signed envelope.
    pub(super) envelope: Vec<u8>,
}

/// What a round asks of the server: the device resources, over HTTP or CoAP.
pub(super) trait Transport {
    /// A fresh enrolment nonce (hex).
    fn challenge(&self) -> anyhow::Result<String>;
    /// Sends the enrolment request; returns the answer (`id`, `token`).
    fn enrol(&self, body: &serde_json::Value) -> anyhow::Result<serde_json::Value>;
    /// Checks in with the installed sequence number; the offer, if any.
    fn check_in(&self, token: &str, sequence: u64) -> anyhow::Result<Option<Offer>>;
    /// Payload `sha` from byte `from` on, or from an earlier point the transport must
    /// start at: that offset, and the bytes from it to the end.
    fn fetch<'a>(
        &'a self,
        token: &'a str,
        sha: &str,
        from: u64,
    ) -> anyhow::Result<(u64, Box<dyn Read + 'a>)>;
    /// Sends a signed SUIT report.
    fn report(&self, token: &str, signed: &[u8]) -> anyhow::Result<()>;
}

/// The transport for `server`: CoAP for `coap://`, HTTP otherwise.
fn transport(server: &str) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match server.strip_prefix("coap://") {
        Some(authority) => Box::new(super::coap::CoapClient::connect(authority)?),
        None => Box::new(Http {
            agent: ureq::Agent::config_builder()
                // Statuses are answers here (204, 206, 4xx with a JSON reason), not
                // transport errors.
                .http_status_as_error(false)
                .build()
                .into(),
            server: server.to_string(),
        }),
    })
}

/// The HTTP transport (ureq, blocking).
struct Http {
    agent: ureq::Agent,
    server: String,
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

impl Transport for Http {
    fn challenge(&self) -> anyhow::Result<String> {
        let mut r = self
            .agent
            .post(format!("{}/device/v1/enrol/challenge", self.server))
            .send_empty()
            .context("enrol")?;
        if !r.status().is_success() {
            return Err(server_error("enrol", r));
        }
        let challenge: serde_json::Value = r.body_mut().read_json().context("enrol")?;
        Ok(challenge["nonce"].as_str().unwrap_or_default().to_string())
    }

    fn enrol(&self, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let mut r = self
            .agent
            .post(format!("{}/device/v1/enrol", self.server))
            .send_json(body)
            .context("enrol")?;
        if !r.status().is_success() {
            return Err(server_error("enrol", r));
        }
        r.body_mut().read_json().context("enrol")
    }

    fn check_in(&self, token: &str, sequence: u64) -> anyhow::Result<Option<Offer>> {
        let mut r = self
            .agent
            .post(format!("{}/device/v1/checkin", self.server))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(json!({ "sequence_number": sequence }))
            .context("check-in")?;
        if r.status().as_u16() == 204 {
            return Ok(None);
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
        let payloads = header("suit-payloads")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let envelope = r
            .body_mut()
            .with_config()
            .limit(MAX_ENVELOPE)
            .read_to_vec()
            .context("check-in: envelope")?;
        Ok(Some(Offer {
            nonce,
            payloads,
            envelope,
        }))
    }

    fn fetch<'a>(
        &'a self,
        token: &'a str,
        sha: &str,
        from: u64,
    ) -> anyhow::Result<(u64, Box<dyn Read + 'a>)> {
        let mut req = self
            .agent
            .get(format!("{}/device/v1/payloads/{sha}", self.server))
            .header("Authorization", format!("Bearer {token}"));
        if from > 0 {
            // If-Range: a changed representation comes back whole, never spliced.
            req = req
                .header("Range", format!("bytes={from}-"))
                .header("If-Range", format!("\"{sha}\""));
        }
        let r = req.call().with_context(|| format!("payload {sha}"))?;
        let start = match r.status().as_u16() {
            200 => 0,
            206 => from,
            _ => return Err(server_error(&format!("payload {sha}"), r)),
        };
        Ok((start, Box::new(r.into_body().into_reader())))
    }

    fn report(&self, token: &str, signed: &[u8]) -> anyhow::Result<()> {
        let r = self
            .agent
            .post(format!("{}/device/v1/reports", self.server))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/cose")
            .send(signed)
            .context("report")?;
        if !r.status().is_success() {
            return Err(server_error("report", r));
        }
        Ok(())
    }
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
    t: &dyn Transport,
    server: &str,
    id: &str,
    key: &p256::ecdsa::SigningKey,
    device: &Device,
) -> anyhow::Result<Session> {
    let nonce = t.challenge()?;
    let mut signed = hex::decode(&nonce).context("enrol: nonce")?;
    signed.extend_from_slice(id.as_bytes());
    let proof = sign(key, &signed)?;
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow!("{e}"))?;
    let c = device.config();
    let answer = t.enrol(&json!({
        "id": id, "public_key": pem, "vendor_id": c.vendor_id, "class_id": c.class_id,
        "nonce": nonce, "proof": hex::encode(proof),
    }))?;
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
fn download(t: &dyn Transport, token: &str, cache: &Path, sha: &str) -> anyhow::Result<u64> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("offer: {sha:?} is not a SHA-256");
    }
    let done = cache.join(sha);
    if done.is_file() {
        return Ok(0);
    }
    let part = cache.join(format!("{sha}.part"));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let (start, mut body) = t
        .fetch(token, sha, have)
        .with_context(|| format!("payload {sha}"))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .with_context(|| part.display().to_string())?;
    // The transport starts at or before what is there: keep only the bytes before it.
    file.set_len(start.min(have))?;
    file.seek(SeekFrom::End(0))?;
    let n = std::io::copy(&mut body, &mut file).with_context(|| format!("payload {sha}"))?;
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

/// How one round ended (the report, if any, was sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Round {
    /// Nothing offered: the device runs `sequence`.
    UpToDate {
        /// The installed sequence number.
        sequence: u64,
    },
    /// Installed, booted, self-tested, confirmed; success reported.
    Updated {
        /// The new sequence number.
        sequence: u64,
        /// Bytes downloaded now.
        downloaded: u64,
        /// Bytes the processor fetched from the cache.
        fetched: u64,
    },
    /// The processor refused the envelope; failure reported.
    Refused {
        /// Why, in one line.
        reason: String,
    },
    /// Installed and booted, but the self-test failed: reverted; failure reported.
    SelfTestFailed {
        /// The release that failed.
        sequence: u64,
        /// What the device runs after the revert.
        running: Option<u64>,
    },
    /// The power went during the reboot into the update (fault injection): no report;
    /// the next round powers the device on and the bootloader finishes the swap.
    PowerCut {
        /// The flash operation of the boot the cut hit.
        at: u64,
        /// Operations the boot would have taken.
        of: u64,
    },
}

/// One device's round: its result, and a power-on recovery the round began with (the
/// sequence a trial left by a cut was confirmed at).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The device's id at the server.
    pub id: String,
    /// What happened.
    pub round: Round,
    /// The sequence confirmed at power-on, when the last round ended in a power cut.
    pub recovered: Option<u64>,
}

/// The device's id: `--id`, or the directory's name.
pub fn default_id(dir: &Path, id: Option<&str>) -> anyhow::Result<String> {
    match id {
        Some(id) => Ok(id.to_string()),
        None => dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| anyhow!("--id is needed: the directory has no name")),
    }
}

/// The simulated firmware's self-test on the image the boot handed over; a failure
/// leaves a trial unconfirmed.
fn self_test(device: &mut Device, h: &suitcase_boot::Handover) -> anyhow::Result<bool> {
    let image = device.image(h)?;
    let pass = !image
        .windows(super::SELF_TEST_FAILS.len())
        .any(|w| w == super::SELF_TEST_FAILS);
    match device.self_test(!pass) {
        Ok(_) => Ok(true),
        Err(e) if e.downcast_ref::<Rejected>().is_some() && !pass => Ok(false),
        Err(e) => Err(e),
    }
}

/// The offer being installed, kept (`pending.json`) until its report is sent: a power
/// cut between the install and the report does not lose the nonce.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The offer's report nonce, hex.
    nonce: String,
    /// The offered envelope, hex.
    envelope: String,
}

/// Power-on: a device that is off (nothing running: a power cut ended the last round)
/// boots; a trial the bootloader finished is self-tested and confirmed, or reverted.
/// Returns the trial's sequence and whether it passed.
fn power_on(device: &mut Device) -> anyhow::Result<Option<(u64, bool)>> {
    if device.running().is_some() {
        return Ok(None);
    }
    let boot = device.reboot(None)?;
    let Some(h) = boot.handover else {
        return Ok(None);
    };
    if !h.trial {
        return Ok(None);
    }
    let pass = self_test(device, &h)?;
    if !pass {
        device.reboot(None)?;
    }
    Ok(Some((h.sequence, pass)))
}

/// The device's connection to the server: transport, session, report key.
struct Link {
    transport: Box<dyn Transport>,
    session: Session,
    key: p256::ecdsa::SigningKey,
}

/// Signs and sends the SUIT report of `envelope` for the offer `nonce`: the processor's
/// records in `log`, and `result`.
fn send_report(
    link: &Link,
    device: &Device,
    envelope: &[u8],
    nonce: &[u8],
    log: &ReportLog<16>,
    result: Result<(), &suitcase_processor::Error>,
) -> anyhow::Result<()> {
    // The report names the manifest when it authenticated (its reference).
    let mut buf = vec![0u8; 4096];
    let n = device.with_keys(|k| {
        let auth = authenticate(envelope, k).ok();
        let reference = auth.as_ref().map(Reference::of);
        log.encode(reference.as_ref(), Some(nonce), result, &mut buf)
    });
    let n = n.map_err(|e| anyhow!("report: {e:?}"))?;
    let signed = sign(&link.key, buf.get(..n).unwrap_or_default())?;
    link.transport.report(&link.session.token, &signed)
}

/// After a power-on that finished a trial: reports the pending offer it belonged to.
fn report_pending(
    link: &Link,
    device: &Device,
    (sequence, passed): (u64, bool),
) -> anyhow::Result<()> {
    let path = device.dir.join(PENDING);
    let Some(p) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
    else {
        return Ok(());
    };
    let envelope = hex::decode(&p.envelope).context("pending.json")?;
    let nonce = hex::decode(&p.nonce).context("pending.json")?;
    let offered = device
        .with_keys(|k| authenticate(&envelope, k).map(|a| a.manifest().sequence_number))
        .ok();
    if offered == Some(sequence) {
        let self_test_failed = suitcase_processor::Error::Invoke(InvokeError::Failed);
        let result = if passed {
            Ok(())
        } else {
            Err(&self_test_failed)
        };
        send_report(link, device, &envelope, &nonce, &ReportLog::new(), result)?;
    }
    std::fs::remove_file(&path).with_context(|| path.display().to_string())
}

/// One round of device `dir` with `server` (module doc). When an update is staged,
/// `cut` is asked whether the power goes half-way through the reboot into it (fault
/// injection: the middle of the swap).
///
/// # Errors
/// Transport and server errors, I/O, flash errors.
pub fn round(
    dir: &Path,
    server: &str,
    id: &str,
    cut: &dyn Fn() -> bool,
) -> anyhow::Result<Outcome> {
    let mut device = Device::open(dir)?;
    let key = report_key(dir)?;
    let server = server.trim_end_matches('/').to_string();
    let transport = transport(&server)?;
    let session_path = dir.join(SESSION);
    let session = match std::fs::read(&session_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Session>(&b).ok())
        .filter(|s| s.server == server && s.id == id)
    {
        Some(s) => s,
        None => {
            let s = enrol(transport.as_ref(), &server, id, &key, &device)?;
            output::write_atomic(&session_path, &serde_json::to_vec(&s)?, FileMode::Secret)?;
            s
        }
    };
    let link = Link {
        transport,
        session,
        key,
    };
    let trial = power_on(&mut device)?;
    if let Some(t) = trial {
        report_pending(&link, &device, t)?;
    }
    let recovered = trial.and_then(|(seq, passed)| passed.then_some(seq));
    let outcome = |round| Outcome {
        id: id.to_string(),
        round,
        recovered,
    };

    let installed = device.counter()?;
    let Some(Offer {
        nonce,
        payloads,
        envelope,
    }) = link.transport.check_in(&link.session.token, installed)?
    else {
        return Ok(outcome(Round::UpToDate {
            sequence: installed,
        }));
    };

    let cache = dir.join(CACHE);
    std::fs::create_dir_all(&cache)?;
    let mut downloaded = 0;
    for sha in &payloads {
        downloaded += download(link.transport.as_ref(), &link.session.token, &cache, sha)?;
    }

    let pending = Pending {
        nonce: hex::encode(&nonce),
        envelope: hex::encode(&envelope),
    };
    output::write_atomic(
        &dir.join(PENDING),
        &serde_json::to_vec(&pending)?,
        FileMode::Public,
    )?;
    let mut log = ReportLog::<16>::new();
    let mut fetch = FileFetch::new(vec![cache]);
    let staged = device.stage(&envelope, &mut fetch, &mut log)?;
    // The self-test's failure, as the processor's words for a component that failed to
    // start (SUIT report reason: invoke failed).
    let self_test_failed = suitcase_processor::Error::Invoke(InvokeError::Failed);
    let mut round = match &staged {
        Ok(_) => None,
        Err(e) => Some(Round::Refused { reason: refusal(e) }),
    };
    if let Ok(seq) = staged {
        let of = device.next_boot_ops()?;
        let at = cut().then_some((of / 2, Fault::Cut));
        let boot = device.reboot(at)?;
        if boot.power_cut {
            return Ok(outcome(Round::PowerCut { at: boot.ops, of }));
        }
        match boot.handover {
            Some(h) if h.sequence == seq => {
                round = Some(if self_test(&mut device, &h)? {
                    Round::Updated {
                        sequence: seq,
                        downloaded,
                        fetched: fetch.bytes,
                    }
                } else {
                    let back = device.reboot(None)?;
                    Round::SelfTestFailed {
                        sequence: seq,
                        running: back.handover.map(|h| h.sequence),
                    }
                });
            }
            _ => bail!("the staged update did not boot"),
        }
    }
    let round = round.ok_or_else(|| anyhow!("no result"))?;
    // The verdict: the processor's, or the self-test's.
    let result = match (&staged, &round) {
        (Err(e), _) => Err(e),
        (Ok(_), Round::SelfTestFailed { .. }) => Err(&self_test_failed),
        (Ok(_), _) => Ok(()),
    };
    send_report(&link, &device, &envelope, &nonce, &log, result)?;
    let path = dir.join(PENDING);
    std::fs::remove_file(&path).with_context(|| path.display().to_string())?;
    Ok(outcome(round))
}

/// Runs `device sync`.
///
/// # Errors
/// Transport and server errors; [`Rejected`] when the device refused the update.
pub fn run(a: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(n) = a.fleet {
        return super::fleet::run(a, n, out);
    }
    let dir = &a.common.dir;
    let id = default_id(dir, a.id.as_deref())?;
    let o = round(dir, &a.server, &id, &|| false)?;
    let json = a.common.json;
    match o.round {
        Round::UpToDate { sequence } => emit(
            out,
            json,
            &json!({"type": "sync", "id": id, "update": false, "sequence": sequence}),
            &format!("sync: {id}: up to date (sequence {sequence})"),
        ),
        Round::Updated {
            sequence,
            downloaded,
            fetched,
        } => emit(
            out,
            json,
            &json!({"type": "sync", "id": id, "update": true, "sequence": sequence,
                    "downloaded": downloaded, "fetched": fetched, "reported": "success"}),
            &format!(
                "sync: {id}: updated to sequence {sequence} ({downloaded} B downloaded), confirmed, success reported"
            ),
        ),
        Round::Refused { reason } => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"type": "sync", "id": id, "update": false,
                           "refused": reason, "reported": "failure"})
                )?;
            }
            Err(Rejected(format!("{reason}; failure reported")).into())
        }
        Round::SelfTestFailed { sequence, running } => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"type": "sync", "id": id, "update": false, "self_test": "failed",
                           "sequence": sequence, "running": running, "reported": "failure"})
                )?;
            }
            Err(Rejected(format!(
                "sequence {sequence} failed its self-test and was reverted; failure reported"
            ))
            .into())
        }
        Round::PowerCut { at, of } => {
            bail!("power cut at flash operation {at} of {of} of the reboot")
        }
    }
}
