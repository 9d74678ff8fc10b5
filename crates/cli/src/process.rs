//! `suitcase process FILE --key PUB.pem [--mac-key KEY.bin] [--device-key KEY.pem]
//! [--kek KEK.bin] --dir DIR`: a dry run for manifest authors. The device's own
//! processor authenticates the envelope and runs its update procedure, then its
//! invocation procedure, against components kept as files in DIR; the SUIT report the
//! device would send is printed (and signed with the device key when one is given).
//!
//! | device service | in the dry run |
//! |---|---|
//! | component storage | `DIR/<id>[.slot<N>]`: `<id>` is the component identifier's segments in hex, joined by `-` (`[h'00']` → `00`); a missing file is an empty component |
//! | fetch | `#…` integrated payloads from the envelope (by the processor); a relative URI from the envelope's folder; an absolute one (`http://host/a/file.bin`) from the envelope's folder by its last segment (`file.bin`) |
//! | identity | `--vendor` / `--class` UUIDs; without them every vendor / class condition holds, and the output says so |
//! | rollback counter | 0: every sequence number above 0 is newer |
//! | clock | the host's clock (use-before is checked for real) |
//! | update management | `--installed-version 1.2.3`, `--battery N`, `--authorized`; unanswered questions abort |
//! | invoke | recorded and printed, nothing runs |
//! | decryption | `--kek` (AES-KW KEK, any kid), `--device-key` (P-256: ECDH-ES) |
//! | report | ES256 COSE_Sign1 with `--device-key` (P-256), else unsigned; `--report OUT` writes it |
//!
//! Exit status: 0 when both procedures succeeded, 1 when a sequence (or authentication)
//! failed, 2 for usage and I/O errors.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use suitcase_cose::{SigningKey, VerifyingKey};
use suitcase_processor::platform::{
    Clock, ComponentStorage, DependencySupport, DeviceIdentity, DomainKeys, Fetch, FetchError,
    Invoke, InvokeError, MemoryRollback, NamedKey, Platform, Policy, Procedure, Rule,
    StaticDecryptionKeys, StaticPolicy, StorageError, Target, TrustAnchor, Version,
};
use suitcase_processor::report::{DeviceKey, Record, Reference, ReportLog, reason};
use suitcase_processor::suit::VendorId;
use suitcase_processor::{Error, authenticate};

use crate::Rejected;
use crate::keys::{self, PrivateKey};

/// Records kept for one report (per procedure).
const MAX_RECORDS: usize = 64;
/// RAM lent for dependency envelopes that are fetched rather than integrated.
const DEPENDENCY_BUF: usize = 64 * 1024;
/// Room for the encoded report and for its COSE wrapping.
const REPORT_BUF: usize = 8192;

/// Arguments of `process`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("anchors").required(true).multiple(true).args(["keys", "mac_keys"])
))]
pub struct Args {
    /// A trusted public key (PEM; repeatable): every key given must have signed.
    #[arg(long = "key", value_name = "PEM")]
    pub keys: Vec<PathBuf>,
    /// A trusted HMAC-256 secret: the raw bytes of FILE (repeatable).
    #[arg(long = "mac-key", value_name = "FILE")]
    pub mac_keys: Vec<PathBuf>,
    /// A public key trusted to sign dependency manifests (PEM; repeatable): any one of
    /// them must have signed each dependency. Without it, dependencies are held to the
    /// `--key`/`--mac-key` rule.
    #[arg(long = "dependency-key", value_name = "PEM")]
    pub dependency_keys: Vec<PathBuf>,
    /// The device's P-256 private key (PEM): ECDH-ES decryption and the report's signature.
    #[arg(long, value_name = "PEM")]
    pub device_key: Option<PathBuf>,
    /// An AES key-wrap KEK (raw 16 or 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub kek: Option<PathBuf>,
    /// The folder holding the components, one file each.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The device's vendor UUID (without it, every vendor condition holds).
    #[arg(long, value_name = "UUID")]
    pub vendor: Option<String>,
    /// The device's class UUID (without it, every class condition holds).
    #[arg(long, value_name = "UUID")]
    pub class: Option<String>,
    /// The installed version for the version condition, e.g. 1.2.3.
    #[arg(long, value_name = "X.Y.Z")]
    pub installed_version: Option<String>,
    /// The battery level for minimum-battery.
    #[arg(long, value_name = "N")]
    pub battery: Option<u64>,
    /// Answer update-authorized with yes.
    #[arg(long)]
    pub authorized: bool,
    /// A nonce for the report (hex).
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// Write the update procedure's report (COSE_Sign1, or bare CBOR unsigned) to OUT.
    #[arg(long, value_name = "OUT")]
    pub report: Option<PathBuf>,
    /// JSON Lines: one "record" per record, one "result" per procedure, one "report".
    #[arg(long)]
    pub json: bool,
    /// The envelope.
    pub file: PathBuf,
}

/// `DIR/<hex segments joined by '-'>[.slot<N>]`.
pub fn component_path(dir: &Path, t: &Target<'_>) -> PathBuf {
    let id: Vec<String> = t.id.segments().map(hex::encode).collect();
    let mut name = if id.is_empty() {
        "component".to_string()
    } else {
        id.join("-")
    };
    if let Some(s) = t.slot {
        name.push_str(&format!(".slot{s}"));
    }
    dir.join(name)
}

/// Components as files.
struct FileStorage {
    dir: PathBuf,
}

fn io(_: std::io::Error) -> StorageError {
    StorageError::Device
}

impl ComponentStorage for FileStorage {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        match fs::metadata(component_path(&self.dir, t)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io(e)),
        }
    }
    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut f =
            File::open(component_path(&self.dir, t)).map_err(|_| StorageError::OutOfBounds)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        f.read_exact(buf).map_err(|_| StorageError::OutOfBounds)
    }
    fn begin_write(&mut self, t: &Target<'_>, _size: Option<u64>) -> Result<(), StorageError> {
        File::create(component_path(&self.dir, t))
            .map(drop)
            .map_err(io)
    }
    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut f = OpenOptions::new()
            .write(true)
            .open(component_path(&self.dir, t))
            .map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        f.write_all(data).map_err(io)
    }
    fn finish_write(&mut self, t: &Target<'_>, len: u64) -> Result<(), StorageError> {
        let f = OpenOptions::new()
            .write(true)
            .open(component_path(&self.dir, t))
            .map_err(io)?;
        f.set_len(len).map_err(io)
    }
    fn swap(&mut self, a: &Target<'_>, b: &Target<'_>) -> Result<(), StorageError> {
        let (pa, pb) = (component_path(&self.dir, a), component_path(&self.dir, b));
        let (da, db) = (
            fs::read(&pa).unwrap_or_default(),
            fs::read(&pb).unwrap_or_default(),
        );
        fs::write(&pa, db).map_err(io)?;
        fs::write(&pb, da).map_err(io)
    }
}

/// Serves URIs from the envelope's folder; logs what it served.
struct FileFetch {
    base: PathBuf,
    current: Option<File>,
    served: Vec<(String, PathBuf)>,
}

impl FileFetch {
    fn resolve(&self, uri: &str) -> PathBuf {
        match uri.split_once("://") {
            Some((_, rest)) => {
                let path = rest.split(['?', '#']).next().unwrap_or(rest);
                self.base.join(path.rsplit('/').next().unwrap_or(path))
            }
            None => self.base.join(uri),
        }
    }
}

impl Fetch for FileFetch {
    fn open(&mut self, uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        let path = self.resolve(uri);
        let f = File::open(&path).map_err(|_| FetchError::NotFound)?;
        self.served.push((uri.to_string(), path));
        self.current = Some(f);
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        self.current
            .as_mut()
            .ok_or(FetchError::Transport)?
            .read(buf)
            .map_err(|_| FetchError::Transport)
    }
}

/// The identity from the flags; an absent one holds for every value.
struct Identity {
    vendor: Option<[u8; 16]>,
    class: Option<[u8; 16]>,
}

impl DeviceIdentity for Identity {
    fn vendor_matches(&self, _t: &Target<'_>, vendor: VendorId<'_>) -> bool {
        match (self.vendor, vendor) {
            (None, _) => true,
            (Some(v), VendorId::Uuid(u)) => u == v,
            _ => false,
        }
    }
    fn class_matches(&self, _t: &Target<'_>, class: &[u8]) -> bool {
        self.class.is_none_or(|c| c == class)
    }
    fn device_matches(&self, _t: &Target<'_>, _device: &[u8]) -> bool {
        false
    }
    fn slot_matches(&self, _t: &Target<'_>, slot: u64, procedure: Procedure) -> bool {
        match procedure {
            Procedure::Update => slot != 0,
            Procedure::Invoke => slot == 0,
        }
    }
}

struct HostClock;
impl Clock for HostClock {
    fn now(&self) -> Option<u64> {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

#[derive(Default)]
struct LogInvoke(Vec<usize>);
impl Invoke for LogInvoke {
    fn invoke(&mut self, t: &Target<'_>, _args: Option<&[u8]>) -> Result<(), InvokeError> {
        self.0.push(t.index);
        Ok(())
    }
}

fn uuid(s: &str) -> anyhow::Result<[u8; 16]> {
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(&hexs).map_err(|_| anyhow!("{s}: not a UUID"))?;
    v.try_into().map_err(|_| anyhow!("{s}: not a 16-byte UUID"))
}

fn version(s: &str) -> anyhow::Result<Version> {
    let parts = s
        .split('.')
        .map(|p| p.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("{s}: not a version (integers separated by dots)"))?;
    Version::new(&parts).ok_or_else(|| anyhow!("{s}: 1 to 8 integers"))
}

/// What one procedure did.
struct Outcome {
    name: &'static str,
    result: Result<(), Error>,
    log: ReportLog<MAX_RECORDS>,
}

fn record_json(r: &Record) -> serde_json::Value {
    json!({
        "section": r.sequence.name(), "section_key": r.sequence.key(), "offset": r.offset,
        "command": r.command, "component": r.component,
        "outcome": if r.outcome == suitcase_processor::report::Outcome::Success { "success" } else { "failure" },
    })
}

/// Runs `process`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let bytes = fs::read(&args.file).with_context(|| file.clone())?;
    fs::create_dir_all(&args.dir).with_context(|| args.dir.display().to_string())?;

    let mut publics = Vec::new();
    for p in &args.keys {
        publics.push(keys::load_public(p)?);
    }
    let mut macs = Vec::new();
    for p in &args.mac_keys {
        let k = fs::read(p).with_context(|| p.display().to_string())?;
        if k.is_empty() {
            bail!("{}: empty HMAC key", p.display());
        }
        macs.push(k);
    }
    let mut anchors: Vec<TrustAnchor<'_>> = publics
        .iter()
        .map(|k| TrustAnchor {
            key: k.as_verifying_key(),
            kid: None,
        })
        .collect();
    anchors.extend(macs.iter().map(|k| TrustAnchor {
        key: VerifyingKey::Hmac256(k),
        kid: None,
    }));
    let mut dependency_publics = Vec::new();
    for p in &args.dependency_keys {
        dependency_publics.push(keys::load_public(p)?);
    }
    let n = anchors.len();
    anchors.extend(dependency_publics.iter().map(|k| TrustAnchor {
        key: k.as_verifying_key(),
        kid: None,
    }));
    if anchors.len() > 32 {
        bail!("at most 32 keys");
    }
    let bits = |from: usize, to: usize| (from..to).fold(0u32, |b, i| b | (1 << i));
    let rules = [Rule::k_of(u8::try_from(n)?, bits(0, n))];
    let dependency_rules = [Rule::k_of(1, bits(n, anchors.len()))];
    let root = Policy {
        anchors: bits(0, n),
        rules: &rules,
    };
    let store = DomainKeys {
        anchors: &anchors,
        root,
        dependencies: Some(if dependency_publics.is_empty() {
            root
        } else {
            Policy {
                anchors: bits(n, anchors.len()),
                rules: &dependency_rules,
            }
        }),
        by_id: &[],
    };
    let mut dependency_buffer = vec![0u8; DEPENDENCY_BUF];

    let device_key = match &args.device_key {
        None => None,
        Some(p) => match keys::load_private(p)? {
            PrivateKey::Classic(SigningKey::P256(sk)) => Some(sk),
            _ => bail!(
                "{}: the device key must be a P-256 private key",
                p.display()
            ),
        },
    };
    let scalar = device_key.as_ref().map(|k| k.to_bytes().to_vec());
    let kek = match &args.kek {
        Some(p) => Some(fs::read(p).with_context(|| p.display().to_string())?),
        None => None,
    };
    let keks: Vec<NamedKey<'_>> = kek.iter().map(|k| NamedKey { kid: None, key: k }).collect();
    let ecdh: Vec<NamedKey<'_>> = scalar
        .iter()
        .map(|k| NamedKey { kid: None, key: k })
        .collect();
    let decryption = StaticDecryptionKeys {
        keks: &keks,
        ecdh: &ecdh,
    };
    let identity = Identity {
        vendor: args.vendor.as_deref().map(uuid).transpose()?,
        class: args.class.as_deref().map(uuid).transpose()?,
    };
    let mut policy = StaticPolicy {
        installed: args.installed_version.as_deref().map(version).transpose()?,
        battery: args.battery,
        authorized: args.authorized.then_some(true),
        events_occur: false,
    };
    let nonce = args
        .nonce
        .as_deref()
        .map(hex::decode)
        .transpose()
        .map_err(|_| anyhow!("--nonce: not hex"))?;

    let base = args
        .file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut storage = FileStorage {
        dir: args.dir.clone(),
    };
    let mut fetch = FileFetch {
        base: base.clone(),
        current: None,
        served: Vec::new(),
    };
    let mut invoker = LogInvoke::default();
    let mut rollback = MemoryRollback(0);

    let auth = authenticate(&bytes, &store);
    let mut outcomes: Vec<Outcome> = Vec::new();
    if let Ok(a) = &auth {
        for (name, procedure) in [("update", Procedure::Update), ("invoke", Procedure::Invoke)] {
            let mut log = ReportLog::<MAX_RECORDS>::new();
            let result = {
                let mut platform = Platform {
                    storage: &mut storage,
                    fetch: &mut fetch,
                    identity: &identity,
                    rollback: &mut rollback,
                    clock: &HostClock,
                    invoker: &mut invoker,
                    reporter: &mut log,
                    decryption: &decryption,
                    policy: &mut policy,
                    dependencies: Some(DependencySupport {
                        keys: &store,
                        buffer: &mut dependency_buffer,
                    }),
                };
                match procedure {
                    Procedure::Update => a.update(&mut platform).map(|_| ()),
                    Procedure::Invoke => a.invoke(&mut platform),
                }
            };
            let failed = result.is_err();
            outcomes.push(Outcome { name, result, log });
            if failed {
                break;
            }
        }
    }

    // The update procedure's report (or the authentication failure's).
    let reference = auth.as_ref().ok().map(Reference::of);
    let mut report = vec![0u8; REPORT_BUF];
    let len = match (&auth, outcomes.first()) {
        (Err(e), _) => suitcase_processor::report::encode_report(
            None,
            nonce.as_deref(),
            &[],
            Err((e, None)),
            &mut report,
        ),
        (Ok(_), Some(o)) => o.log.encode(
            reference.as_ref(),
            nonce.as_deref(),
            o.result.as_ref().map(|_| ()),
            &mut report,
        ),
        (Ok(_), None) => bail!("internal: no procedure ran"),
    }
    .map_err(|e| anyhow!("report: {e:?}"))?;
    report.truncate(len);
    let signed = match &device_key {
        Some(sk) => {
            let mut cose = vec![0u8; REPORT_BUF + 256];
            let n = suitcase_processor::report::sign_report(
                DeviceKey::Es256(sk),
                None,
                &report,
                &mut cose,
            )
            .map_err(|e| anyhow!("report: {e:?}"))?;
            cose.truncate(n);
            Some(cose)
        }
        None => None,
    };
    let report_bytes = signed.as_deref().unwrap_or(&report);
    if let Some(p) = &args.report {
        crate::output::write_atomic(p, report_bytes, crate::output::Mode::Public)?;
    }

    print(
        args, out, &file, &auth, &outcomes, &fetch, &invoker, &identity,
    )?;
    if args.json {
        let line = json!({
            "type": "report", "signed": signed.is_some(), "cbor": hex::encode(report_bytes),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "report: {} bytes, {}",
            report_bytes.len(),
            if signed.is_some() {
                "COSE_Sign1 (ES256, device key)"
            } else {
                "unsigned (no --device-key)"
            }
        )?;
    }

    let failure = match &auth {
        Err(e) => Some(format!("authentication: {e}")),
        Ok(_) => outcomes
            .iter()
            .find_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name))),
    };
    match failure {
        None => Ok(()),
        Some(why) => Err(anyhow::Error::new(Rejected(why)).context(file)),
    }
}

#[allow(clippy::too_many_arguments)]
fn print(
    args: &Args,
    out: &mut dyn Write,
    file: &str,
    auth: &Result<suitcase_processor::Authenticated<'_>, Error>,
    outcomes: &[Outcome],
    fetch: &FileFetch,
    invoker: &LogInvoke,
    identity: &Identity,
) -> anyhow::Result<()> {
    if !args.json {
        match auth {
            Ok(a) => writeln!(
                out,
                "{file}: authentic, sequence {}",
                a.manifest().sequence_number
            )?,
            Err(e) => writeln!(out, "{file}: not authentic: {e}")?,
        }
        if identity.vendor.is_none() || identity.class.is_none() {
            writeln!(
                out,
                "note: no --vendor/--class: vendor and class conditions hold for any value"
            )?;
        }
        for (uri, path) in &fetch.served {
            writeln!(out, "fetched {uri} from {}", path.display())?;
        }
    }
    for o in outcomes {
        for r in o.log.records() {
            if args.json {
                let mut v = record_json(r);
                v["type"] = json!("record");
                v["procedure"] = json!(o.name);
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "  {} {}+{} command {} component {}: {}",
                    o.name,
                    r.sequence.name(),
                    r.offset,
                    r.command,
                    r.component,
                    if r.outcome == suitcase_processor::report::Outcome::Success {
                        "ok"
                    } else {
                        "FAILED"
                    }
                )?;
            }
        }
        let failing = o.log.failure().map(|(r, _)| r);
        match (&o.result, args.json) {
            (Ok(()), true) => writeln!(
                out,
                "{}",
                json!({"type": "result", "procedure": o.name, "ok": true})
            )?,
            (Ok(()), false) => writeln!(out, "{}: ok", o.name)?,
            (Err(e), true) => writeln!(
                out,
                "{}",
                json!({
                    "type": "result", "procedure": o.name, "ok": false, "error": e.to_string(),
                    "reason": reason(e) as u8, "at": failing.map(record_json),
                })
            )?,
            (Err(e), false) => match failing {
                Some(r) => writeln!(
                    out,
                    "{}: FAILED at {}+{} (command {}, component {}): {e}",
                    o.name,
                    r.sequence.name(),
                    r.offset,
                    r.command,
                    r.component
                )?,
                None => writeln!(out, "{}: FAILED: {e}", o.name)?,
            },
        }
    }
    if !args.json {
        for i in &invoker.0 {
            writeln!(out, "invoke component {i} (dry run: not started)")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;
    use suitcase_cose::{Algorithm, CoseMessage, signing_key_from_pem};
    use suitcase_testkit::resign::{Rewrite, Signer};
    use suitcase_testkit::vectors::{self, ENC, PLACEHOLDER_0, SPEC};

    fn parse(argv: &[&str]) -> Args {
        let mut full = vec!["suitcase", "process"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Process(a) => a,
            _ => panic!("not process"),
        }
    }

    fn vector(set: &str, name: &str) -> String {
        vectors::dir().join(set).join(name).display().to_string()
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// Example 1 in `tmp` (re-signed for `img` when given), serving `img` as file.bin.
    fn example1(tmp: &Path, resign_for: Option<&[u8]>, served: &[u8]) -> String {
        let mut bytes = vectors::spec_example(1);
        if let Some(img) = resign_for {
            let sk = signing_key_from_pem(&vectors::read_string(SPEC, "private_key.pem")).unwrap();
            bytes = Rewrite {
                images: [(PLACEHOLDER_0.to_vec(), img.to_vec())].into(),
                sequence_number: None,
                signers: vec![Signer::Sign(sk, Algorithm::Es256)],
            }
            .apply(&bytes)
            .unwrap();
        }
        let env = tmp.join("example1.suit");
        fs::write(&env, bytes).unwrap();
        fs::write(tmp.join("file.bin"), served).unwrap();
        env.display().to_string()
    }

    fn run_args(argv: &[&str]) -> (anyhow::Result<()>, String) {
        let mut out = Vec::new();
        let r = run(&parse(argv), &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    fn lines(out: &str) -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn example1_resigned_installs_into_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let img = image(34768);
        let env = example1(tmp.path(), Some(&img), &img);
        let dir = tmp.path().join("dev");
        let key = vector(SPEC, "public_key.pem");
        let (r, out) = run_args(&["--key", &key, "--dir", dir.to_str().unwrap(), &env]);
        r.unwrap();
        assert_eq!(fs::read(dir.join("00")).unwrap(), img);
        assert!(
            out.contains("update: ok") && out.contains("invoke: ok"),
            "{out}"
        );
        assert!(
            out.contains("fetched http://example.com/file.bin from"),
            "{out}"
        );
    }

    #[test]
    fn a_failing_install_reports_the_command_and_the_report_verifies() {
        // The published example 1 carries a placeholder digest: install's image-match fails.
        let tmp = tempfile::tempdir().unwrap();
        let img = image(1000);
        let env = example1(tmp.path(), None, &img);
        let dir = tmp.path().join("dev");
        let report = tmp.path().join("report.cose");
        let (key, device) = (
            vector(SPEC, "public_key.pem"),
            vector(SPEC, "private_key.pem"),
        );
        let (r, out) = run_args(&[
            "--key",
            &key,
            "--device-key",
            &device,
            "--dir",
            dir.to_str().unwrap(),
            "--nonce",
            "0102",
            "--report",
            report.to_str().unwrap(),
            "--json",
            &env,
        ]);
        let e = r.unwrap_err();
        assert!(e.chain().any(|c| c.is::<Rejected>()), "exit 1: {e:#}");
        let ls = lines(&out);
        let result = ls.iter().find(|l| l["type"] == "result").unwrap();
        assert_eq!(result["ok"], false);
        assert_eq!(result["at"]["command"], 3, "image-match");
        assert_eq!(result["at"]["section"], "install");
        assert_eq!(result["reason"], 10);
        assert!(
            !ls.iter().any(|l| l["procedure"] == "invoke"),
            "invoke never ran"
        );

        // The report file: ES256 under the device key, naming install's image-match.
        let cose = fs::read(&report).unwrap();
        let msg = CoseMessage::decode(&cose).unwrap();
        let public = keys::load_public(Path::new(&key)).unwrap();
        public.as_verifying_key().verify(&msg, b"").unwrap();
        let v: ciborium::Value = ciborium::from_reader(msg.payload.unwrap()).unwrap();
        let m = v.as_map().unwrap();
        let get = |k: i64| {
            &m.iter()
                .find(|(x, _)| x.as_integer() == Some(k.into()))
                .unwrap()
                .1
        };
        assert_eq!(get(2), &ciborium::Value::Bytes(vec![1, 2]));
        let res = get(4).as_map().unwrap();
        assert_eq!(res[0].1, ciborium::Value::Integer(3.into()));
        let rec = res[1].1.as_array().unwrap();
        assert_eq!(rec[1], ciborium::Value::Integer(20.into()));
        let report_line = ls.iter().find(|l| l["type"] == "report").unwrap();
        assert_eq!(report_line["signed"], true);
        assert_eq!(report_line["cbor"], hex::encode(&cose));
    }

    #[test]
    fn an_unauthentic_envelope_is_refused_before_anything_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let img = image(10);
        let env = example1(tmp.path(), None, &img);
        let dir = tmp.path().join("dev");
        let other = vector(ENC, "receiver-kid-2-public-p256.pem");
        let (r, out) = run_args(&["--key", &other, "--dir", dir.to_str().unwrap(), &env]);
        assert!(r.unwrap_err().chain().any(|c| c.is::<Rejected>()));
        assert!(out.contains("not authentic"), "{out}");
        assert!(!dir.join("00").exists());
    }

    #[test]
    fn the_encryption_vectors_decrypt_into_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dev");
        let (r, out) = run_args(&[
            "--mac-key",
            &vector(ENC, "mac-key-hmac256.bin"),
            "--kek",
            &vector(ENC, "kek-a128kw-kid-1.bin"),
            "--dir",
            dir.to_str().unwrap(),
            &vector(ENC, "suit-manifest-aes-kw-content.suit"),
        ]);
        r.unwrap();
        let plain = vectors::read(ENC, "plaintext.bin");
        let written: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(written.len(), 1, "{out}");
        assert_eq!(fs::read(&written[0]).unwrap(), plain);
    }

    #[test]
    fn es_ecdh_decrypts_with_the_device_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dev");
        let (r, out) = run_args(&[
            "--key",
            &vector(ENC, "signing-public-key.pem"),
            "--device-key",
            &vector(ENC, "receiver-kid-2-private-p256.pem"),
            "--dir",
            dir.to_str().unwrap(),
            &vector(ENC, "suit-manifest-es-ecdh-content.suit"),
        ]);
        r.unwrap();
        assert!(out.contains("COSE_Sign1"), "{out}");
        let plain = vectors::read(ENC, "plaintext.bin");
        let written: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(written.len(), 1, "{out}");
        assert_eq!(fs::read(&written[0]).unwrap(), plain);
    }

    #[test]
    fn component_files_are_named_by_hex_id_and_slot() {
        let raw = [0x82, 0x41, 0x00, 0x42, 0xab, 0xcd];
        let id = suitcase_processor::suit::ComponentId::decode(&raw).unwrap();
        let t = Target {
            index: 0,
            id,
            slot: Some(1),
        };
        assert_eq!(
            component_path(Path::new("d"), &t),
            Path::new("d/00-abcd.slot1")
        );
        let f = FileFetch {
            base: PathBuf::from("b"),
            current: None,
            served: vec![],
        };
        assert_eq!(f.resolve("http://h/x/y.bin?q"), Path::new("b/y.bin"));
        assert_eq!(f.resolve("sub/z.bin"), Path::new("b/sub/z.bin"));
        assert_eq!(version("1.2.3").unwrap().parts(), &[1, 2, 3]);
        assert!(version("1.x").is_err());
        assert!(uuid("fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe").is_ok());
    }
}
