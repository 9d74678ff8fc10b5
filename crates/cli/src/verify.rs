//! `suitcase verify --key PUB.pem [--key …] [--mac-key FILE …] [--require-all] FILE`:
//! authenticate an envelope with the processor's own `authenticate`, exactly as a device
//! would (digest, every COSE block, the signing policy, severed-member digests).
//!
//! Policy: by default any one key suffices; `--require-all` needs a valid block from
//! every key given (one `Rule::required(i)` per key): the "author AND operator" check.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use suitcase_cose::{KeyError, OwnedVerifyingKey, VerifyingKey, verifying_key_from_pem};
use suitcase_processor::authenticate;
use suitcase_processor::platform::{Rule, StaticKeys, TrustAnchor};

use crate::Rejected;

/// The policy addresses anchors by bit in a `u32`.
const MAX_KEYS: usize = 32;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("anchors").required(true).multiple(true).args(["keys", "mac_keys"])
))]
pub struct Args {
    /// A trusted public key: PEM SubjectPublicKeyInfo, P-256 or Ed25519 (repeatable).
    #[arg(long = "key", value_name = "PEM")]
    pub keys: Vec<PathBuf>,
    /// A trusted HMAC-256 secret: the raw bytes of FILE (repeatable).
    #[arg(long = "mac-key", value_name = "FILE")]
    pub mac_keys: Vec<PathBuf>,
    /// Every key given must have signed (e.g. author AND operator); default: any one.
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
    Public(OwnedVerifyingKey),
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
        let ctx = || p.display().to_string();
        let raw = std::fs::read(p).with_context(ctx)?;
        let pem = String::from_utf8(raw)
            .map_err(|_| anyhow!("not valid PEM (binary file)"))
            .with_context(ctx)?;
        let key = verifying_key_from_pem(&pem)
            .map_err(|e| match e {
                KeyError::UnsupportedLabel => anyhow!("{e}: want a PUBLIC KEY"),
                e => anyhow!("{e}"),
            })
            .with_context(ctx)?;
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

/// One `Rule::required(i)` per anchor under `--require-all`; none (= any one) otherwise.
fn rules(n: usize, require_all: bool) -> Vec<Rule> {
    if !require_all {
        return Vec::new();
    }
    (0..n)
        .filter_map(|i| u8::try_from(i).ok())
        .map(Rule::required)
        .collect()
}

/// Runs `verify`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let anchors = load_anchors(args)?;
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
    let rules = rules(anchors.len(), args.require_all);
    let store = StaticKeys {
        anchors: &trust,
        rules: &rules,
    };
    let policy = if args.require_all { "all" } else { "any" };
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
        let a = parse(&["--key", "a.pem", "--key", "b.pem", "--require-all", "f"]).unwrap();
        assert_eq!(a.keys, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        assert!(a.require_all && !a.json);
        let a = parse(&["--mac-key", "k.bin", "--json", "f"]).unwrap();
        assert_eq!(a.mac_keys, [PathBuf::from("k.bin")]);
        assert!(a.keys.is_empty() && a.json && !a.require_all);
        assert!(parse(&["f"]).is_err(), "no key at all");
        assert!(parse(&["--key", "a.pem"]).is_err(), "no file");
    }

    #[test]
    fn require_all_means_one_rule_per_key() {
        assert!(rules(3, false).is_empty());
        assert_eq!(rules(2, true), [Rule::required(0), Rule::required(1)]);
    }

    #[test]
    fn names_are_file_names() {
        assert_eq!(short_name(Path::new("/a/b/author.pem")), "author.pem");
        assert_eq!(short_name(Path::new("op.pem")), "op.pem");
    }
}
