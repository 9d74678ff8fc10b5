//! `suitcase verify --key PUB.pem [--key …] [--mac-key FILE …] [--require K] FILE`:
//! authenticate an envelope with the processor's own `authenticate`, exactly as a device
//! would (digest, every COSE block, the signing policy, severed-member digests).
//!
//! Policy: K of the N keys given must each have produced a valid block
//! (`Rule::k_of(K, all N)`); by default K = N, every key given ("author AND operator").
//! `--require 1` is "any one of them"; `--require-all` is kept as a spelling of K = N.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use suitcase_cose::VerifyingKey;
use suitcase_processor::authenticate;
use suitcase_processor::platform::{Rule, StaticKeys, TrustAnchor};

use crate::Rejected;
use crate::keys::{self, PublicKey};

/// The policy addresses anchors by bit in a `u32`.
const MAX_KEYS: usize = 32;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("anchors").required(true).multiple(true).args(["keys", "mac_keys"])
))]
pub struct Args {
    /// A trusted public key: PEM SubjectPublicKeyInfo, P-256, Ed25519 or HSS-LMS
    /// (repeatable).
    #[arg(long = "key", value_name = "PEM")]
    pub keys: Vec<PathBuf>,
    /// A trusted HMAC-256 secret: the raw bytes of FILE (repeatable).
    #[arg(long = "mac-key", value_name = "FILE")]
    pub mac_keys: Vec<PathBuf>,
    /// How many of the keys given must have signed (k of n); default: every one.
    #[arg(long, value_name = "K", conflicts_with = "require_all")]
    pub require: Option<u8>,
    /// Every key given must have signed: the default, kept for scripts that spell it out.
    #[arg(long)]
    pub require_all: bool,
    /// Print one JSON object of type "verify" instead of the text line.
    #[arg(long)]
    pub json: bool,
    /// The envelope to verify.
    pub file: PathBuf,
}

/// A loaded trust anchor and the file it came from.
struct Anchor {
    name: String,
    key: Key,
}

enum Key {
    Public(PublicKey),
    Mac(Vec<u8>),
}

/// The file's own name, which the output uses to say who signed.
fn short_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn load_anchors(args: &Args) -> anyhow::Result<Vec<Anchor>> {
    let mut anchors = Vec::new();
    for p in &args.keys {
        let key = keys::load_public(p)?;
        anchors.push(Anchor {
            name: short_name(p),
            key: Key::Public(key),
        });
    }
    for p in &args.mac_keys {
        let secret = std::fs::read(p).with_context(|| p.display().to_string())?;
        if secret.is_empty() {
            bail!("{}: empty HMAC key", p.display());
        }
        anchors.push(Anchor {
            name: short_name(p),
            key: Key::Mac(secret),
        });
    }
    if anchors.len() > MAX_KEYS {
        bail!("at most {MAX_KEYS} keys, {} given", anchors.len());
    }
    Ok(anchors)
}

/// "k of the n anchors": one rule over all of them. `n` ≤ [`MAX_KEYS`].
fn rules(n: usize, k: u8) -> Vec<Rule> {
    let all = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
    vec![Rule::k_of(k, all)]
}

/// K from the flags: `--require K` (1 ≤ K ≤ n), else n.
fn required(args: &Args, n: usize) -> anyhow::Result<u8> {
    let n8 = u8::try_from(n).map_err(|_| anyhow!("too many keys"))?;
    match args.require {
        None => Ok(n8),
        Some(0) => bail!("--require 0 would accept an unsigned policy: give 1 to {n}"),
        Some(k) if usize::from(k) > n => bail!(
            "--require {k}: only {n} key{} given",
            if n == 1 { "" } else { "s" }
        ),
        Some(k) => Ok(k),
    }
}

/// Runs `verify`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let anchors = load_anchors(args)?;
    let k = required(args, anchors.len())?;
    let bytes = std::fs::read(&args.file).with_context(|| file.clone())?;
    let trust: Vec<TrustAnchor<'_>> = anchors
        .iter()
        .map(|a| TrustAnchor {
            key: match &a.key {
                Key::Public(k) => k.as_verifying_key(),
                Key::Mac(s) => VerifyingKey::Hmac256(s),
            },
            kid: None,
        })
        .collect();
    let rules = rules(anchors.len(), k);
    let store = StaticKeys {
        anchors: &trust,
        rules: &rules,
    };
    let policy = format!("{k} of {}", anchors.len());
    match authenticate(&bytes, &store) {
        Ok(a) => {
            let seq = a.manifest().sequence_number;
            let signers: Vec<&str> = anchors
                .iter()
                .enumerate()
                .filter(|(i, _)| a.signers() & (1 << i) != 0)
                .map(|(_, a)| a.name.as_str())
                .collect();
            if args.json {
                let line = json!({
                    "type": "verify", "file": file, "ok": true, "policy": policy,
                    "sequence_number": seq, "signers": signers,
                });
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "ok: {file}: sequence {seq}, signed by {}",
                    signers.join(", ")
                )?;
            }
            Ok(())
        }
        Err(e) => {
            let reason = e.to_string();
            if args.json {
                let line = json!({
                    "type": "verify", "file": file, "ok": false, "policy": policy,
                    "reason": reason,
                });
                writeln!(out, "{line}")?;
            }
            Err(anyhow::Error::new(Rejected(reason)).context(file))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let mut full = vec!["suitcase", "verify"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).map(|c| match c.command {
            Command::Verify(a) => a,
            _ => panic!("not verify"),
        })
    }

    #[test]
    fn key_flags_repeat_and_one_is_required() {
        let a = parse(&["--key", "a.pem", "--key", "b.pem", "--require", "1", "f"]).unwrap();
        assert_eq!(a.keys, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        assert_eq!(a.require, Some(1));
        assert!(!a.json);
        assert_eq!(required(&a, 2).unwrap(), 1);
        let a = parse(&["--mac-key", "k.bin", "--json", "f"]).unwrap();
        assert_eq!(a.mac_keys, [PathBuf::from("k.bin")]);
        assert!(a.keys.is_empty() && a.json && a.require.is_none());
        assert_eq!(required(&a, 1).unwrap(), 1, "default: every key");
        let a = parse(&["--key", "a", "--key", "b", "--require-all", "f"]).unwrap();
        assert_eq!(required(&a, 2).unwrap(), 2);
        assert!(parse(&["--key", "a", "--require-all", "--require", "1", "f"]).is_err());
        assert!(parse(&["f"]).is_err(), "no key at all");
        assert!(parse(&["--key", "a.pem"]).is_err(), "no file");
        let a = parse(&["--key", "a", "--require", "3", "f"]).unwrap();
        assert!(required(&a, 1).is_err(), "more than given");
        let a = parse(&["--key", "a", "--require", "0", "f"]).unwrap();
        assert!(required(&a, 1).is_err(), "zero");
    }

    #[test]
    fn k_of_n_is_one_rule_over_every_key() {
        assert_eq!(rules(3, 2), [Rule::k_of(2, 0b111)]);
        assert_eq!(rules(1, 1), [Rule::k_of(1, 0b1)]);
        assert_eq!(rules(32, 32), [Rule::k_of(32, u32::MAX)]);
    }

    #[test]
    fn names_are_file_names() {
        assert_eq!(short_name(Path::new("/a/b/author.pem")), "author.pem");
        assert_eq!(short_name(Path::new("op.pem")), "op.pem");
    }
}
