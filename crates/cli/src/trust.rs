//! `suitcase trust`: build a trust store from a description, let each root key holder add
//! a signature on their own machine, and check a store as a device would
//! (docs/trust-store.md).
//!
//! ```text
//! suitcase trust new store.toml -o store-v2.cbor          # unsigned: [body, []]
//! suitcase trust sign store-v2.cbor --key root1.pem       # holder 1, in place
//! suitcase trust sign store-v2.cbor --key root2.pem       # holder 2, elsewhere
//! suitcase trust check store-v2.cbor --current store-v1.cbor   # exit 0: a device accepts it
//! ```
//!
//! The store then travels as the payload of a manifest whose component is
//! `["suitcase", "trust-store"]` (`suitcase build`, `content = "store-v2.cbor"`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use serde_json::json;
use suitcase_trust::build::{self, KeySpec, StoreSpec};
use suitcase_trust::{Clause, Family, Store, role};

use crate::Rejected;
use crate::keys::{self, PublicKey};
use crate::output::{self, Mode};

/// Arguments of `trust`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TrustCommand,
}

/// `trust` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TrustCommand {
    /// Encode a store from a description (TOML); unsigned.
    New(NewArgs),
    /// Add this key's signature to a store (in place unless -o).
    Sign(SignArgs),
    /// Check a store as a device would: against the current store (an update) or on its
    /// own (a first store); exit 1 when a device would refuse it.
    Check(CheckArgs),
}

/// Arguments of `trust new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The description (TOML; see docs/trust-store.md and examples/trust-store.toml).
    pub description: PathBuf,
    /// Where to write the unsigned store.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

/// Arguments of `trust sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The store.
    pub store: PathBuf,
    /// A root private key (PEM). An HSS-LMS key file is rewritten with its advanced state
    /// before the signature is written.
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// Write here instead of in place.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Arguments of `trust check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The store.
    pub store: PathBuf,
    /// The store the device holds now; without it the store is checked as a first store.
    #[arg(long, value_name = "STORE")]
    pub current: Option<PathBuf>,
    /// One JSON object of type "trust-store".
    #[arg(long)]
    pub json: bool,
}

/// The description.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Description {
    version: u64,
    root_threshold: u8,
    #[serde(rename = "key")]
    keys: Vec<KeyDesc>,
    manifest_policy: Vec<ClauseDesc>,
    dependency_policy: Option<Vec<ClauseDesc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KeyDesc {
    /// A public key file (PEM), relative to the description.
    public: PathBuf,
    roles: Vec<String>,
    /// Hex.
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ClauseDesc {
    role: String,
    k: u8,
    alg: Option<String>,
}

fn role_bit(name: &str) -> anyhow::Result<u32> {
    Ok(match name {
        "root" => role::ROOT,
        "operator" => role::OPERATOR,
        "author" => role::AUTHOR,
        "report" => role::REPORT,
        other => bail!("unknown role {other:?} (root, operator, author, report)"),
    })
}

fn role_names(bits: u32) -> Vec<&'static str> {
    [
        (role::ROOT, "root"),
        (role::OPERATOR, "operator"),
        (role::AUTHOR, "author"),
        (role::REPORT, "report"),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| n)
    .collect()
}

fn family(name: &str) -> anyhow::Result<Family> {
    Ok(match name {
        "es256" | "p256" => Family::P256,
        "ed25519" | "eddsa" => Family::Ed25519,
        "hss-lms" => Family::HssLms,
        other => bail!("unknown algorithm {other:?} (es256, ed25519, hss-lms)"),
    })
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::P256 => "es256",
        Family::Ed25519 => "ed25519",
        Family::HssLms => "hss-lms",
    }
}

fn clauses(list: &[ClauseDesc], what: &str) -> anyhow::Result<Vec<Clause>> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(Clause {
                role: role_bit(&c.role).with_context(|| format!("{what}[{i}]"))?,
                k: c.k,
                family: c.alg.as_deref().map(family).transpose()?,
            })
        })
        .collect()
}

fn key_spec(base: &Path, k: &KeyDesc, i: usize) -> anyhow::Result<KeySpec> {
    let what = || format!("key {i}");
    let path = base.join(&k.public);
    let public = keys::load_public(&path).with_context(what)?;
    let mut roles = 0;
    for r in &k.roles {
        roles |= role_bit(r).with_context(what)?;
    }
    if roles == 0 {
        bail!("key {i}: give at least one role");
    }
    let mut spec = match &public {
        PublicKey::Classic(c) => KeySpec::of(c, roles),
        PublicKey::HssLms(bytes) => KeySpec {
            alg: -46,
            roles,
            public: bytes.clone(),
            kid: None,
        },
    };
    spec.kid = k
        .kid
        .as_deref()
        .map(hex::decode)
        .transpose()
        .map_err(|e| anyhow!("key {i}: kid: {e}"))?;
    Ok(spec)
}

fn new(args: &NewArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.description.display().to_string();
    let text = std::fs::read_to_string(&args.description).with_context(|| file.clone())?;
    let d: Description = toml::from_str(&text).map_err(|e| anyhow!("{file}: {}", e.message()))?;
    let base = args.description.parent().unwrap_or(Path::new("."));
    let spec = StoreSpec {
        version: d.version,
        keys: d
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| key_spec(base, k, i))
            .collect::<anyhow::Result<_>>()?,
        root_threshold: d.root_threshold,
        manifest: clauses(&d.manifest_policy, "manifest-policy")?,
        dependency: d
            .dependency_policy
            .as_deref()
            .map(|c| clauses(c, "dependency-policy"))
            .transpose()?,
    };
    let body = build::encode_body(&spec).map_err(|e| anyhow!("{file}: {e}"))?;
    // The same checks a device makes, except signatures: refuse now what would be
    // refused later.
    Store::decode(&build::assemble(&body, &[]))
        .map_err(|e| anyhow!("{file}: a device would refuse this store: {e}"))?;
    output::write_atomic(&args.output, &build::assemble(&body, &[]), Mode::Public)?;
    writeln!(
        out,
        "trust store version {} ({} keys) written to {}: unsigned; each root key holder runs `suitcase trust sign`",
        spec.version,
        spec.keys.len(),
        args.output.display()
    )?;
    Ok(())
}

fn sign(args: &SignArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.store.display().to_string();
    let signed = std::fs::read(&args.store).with_context(|| file.clone())?;
    let (body, _) = build::split(&signed).map_err(|e| anyhow!("{file}: {e}"))?;
    let mut key = keys::load_private(&args.key)?;
    let kid = key.public().key_id();
    let signature = key.sign1(&kid, &body)?;
    if key.is_stateful() {
        output::write_atomic(&args.key, key.to_pem()?.as_bytes(), Mode::Secret)
            .context("saving the HSS-LMS key state")?;
    }
    let signed = build::add_signature(&signed, signature).map_err(|e| anyhow!("{file}: {e}"))?;
    let dest = args.output.as_ref().unwrap_or(&args.store);
    output::write_atomic(dest, &signed, Mode::Public)?;
    writeln!(
        out,
        "signed {} with key {}",
        dest.display(),
        hex::encode(kid)
    )?;
    Ok(())
}

fn check(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.store.display().to_string();
    let bytes = std::fs::read(&args.store).with_context(|| file.clone())?;
    let current = match &args.current {
        Some(p) => Some(std::fs::read(p).with_context(|| p.display().to_string())?),
        None => None,
    };
    let store = Store::decode(&bytes).map_err(|e| Rejected(format!("{file}: {e}")))?;
    let verdict = match &current {
        Some(cur) => Store::decode(cur)
            .map_err(|e| anyhow!("--current: {e}"))?
            .verify_update(&bytes)
            .map(|_| ()),
        None => Store::verify_genesis(&bytes).map(|_| ()),
    };
    let (_, signatures) = build::split(&bytes).map_err(|e| anyhow!("{file}: {e}"))?;
    if args.json {
        let keys: Vec<_> = store
            .keys()
            .map(|k| {
                json!({
                    "alg": family_name(k.family),
                    "roles": role_names(k.roles),
                    "public": hex::encode(k.public),
                    "verifiable": k.anchor.is_some(),
                })
            })
            .collect();
        let line = json!({
            "type": "trust-store",
            "file": file,
            "version": store.version(),
            "root_threshold": store.root_threshold(),
            "keys": keys,
            "signatures": signatures.len(),
            "accepted": verdict.is_ok(),
            "reason": verdict.as_ref().err().map(ToString::to_string),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "trust store version {}: {} keys, root threshold {}, {} signatures",
            store.version(),
            store.keys().count(),
            store.root_threshold(),
            signatures.len()
        )?;
        for k in store.keys() {
            writeln!(
                out,
                "  {:<8} {:<22} {}",
                family_name(k.family),
                role_names(k.roles).join(","),
                hex::encode(k.public)
            )?;
        }
    }
    match verdict {
        Ok(()) => {
            if !args.json {
                writeln!(out, "accepted")?;
            }
            Ok(())
        }
        Err(e) => Err(Rejected(format!("{file}: {e}")).into()),
    }
}

/// Runs `trust`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        TrustCommand::New(a) => new(a, out),
        TrustCommand::Sign(a) => sign(a, out),
        TrustCommand::Check(a) => check(a, out),
    }
}
