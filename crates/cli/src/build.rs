//! `suitcase build MANIFEST.toml [-o OUT.suit] [--key KEY.pem …]`: a SUIT envelope from
//! a human-written description (see `examples/` and the crate README for the format).
//!
//! Vendor and class IDs come from names (UUIDv5, as the manifest spec recommends), image
//! digests and sizes from the image files, the sequence number from the clock unless
//! given. The encoding is deterministic (RFC 8949 §4.2.1), so the same description and
//! images always give the same manifest bytes; the spec's Appendix B examples are rebuilt
//! byte for byte from `examples/spec/`. With `--key` the envelope is signed as `sign`
//! would; without, it carries the digest only, and devices will refuse it until signed.

mod description;
mod encode;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;

use crate::output::{self, Mode};
use crate::sign;

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest description (TOML).
    pub file: PathBuf,
    /// Where the envelope goes; default: the description's name with `.suit`.
    #[arg(long, short = 'o', value_name = "OUT.suit")]
    pub out: Option<PathBuf>,
    /// Sign with this private key too (repeatable); default: unsigned.
    #[arg(long = "key", value_name = "KEY.pem")]
    pub keys: Vec<PathBuf>,
    /// Sign with a P-256 key in a PKCS#11 token too (after the `--key` files).
    #[command(flatten)]
    pub pkcs11: crate::pkcs11::Pkcs11Args,
    /// Override the sequence number (default: the description's, else now as Unix time).
    #[arg(long, value_name = "N")]
    pub sequence_number: Option<u64>,
    /// Print one JSON object of type "build".
    #[arg(long)]
    pub json: bool,
}

/// The default output: MANIFEST.toml → MANIFEST.suit.
fn default_out(file: &Path) -> PathBuf {
    file.with_extension("suit")
}

/// Builds the unsigned envelope for the description at `file`.
pub fn build_file(file: &Path, sequence_number: Option<u64>) -> anyhow::Result<(Vec<u8>, Summary)> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| name.clone())?;
    let desc = description::parse(&text).with_context(|| name.clone())?;
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut plan = description::resolve(&desc, base, now).with_context(|| name.clone())?;
    if let Some(n) = sequence_number {
        plan.sequence_number = n;
    }
    let built = encode::envelope(&plan).map_err(|e| anyhow!("{name}: {e}"))?;
    // What we wrote must be what a device reads: decode it with the device decoder.
    suitcase_suit::Envelope::decode(&built.envelope)
        .and_then(|e| e.manifest().map(|_| ()))
        .map_err(|e| anyhow!("{name}: internal error: the built envelope does not decode: {e}"))?;
    let summary = Summary {
        sequence_number: plan.sequence_number,
        manifest_size: built.manifest.len(),
        digest: hex::encode(built.digest),
        components: plan.components.iter().map(|c| c.name.clone()).collect(),
        payloads: plan.payloads.iter().map(|(k, _)| k.clone()).collect(),
        ciphertexts: plan.ciphertexts,
    };
    Ok((built.envelope, summary))
}

/// What was built, for the report line.
pub struct Summary {
    sequence_number: u64,
    manifest_size: usize,
    digest: String,
    components: Vec<String>,
    payloads: Vec<String>,
    /// Ciphertexts of encrypted fetched images, to write beside the envelope.
    ciphertexts: Vec<description::Ciphertext>,
}

/// Writes the envelope and the ciphertexts of its encrypted fetched images, each
/// atomically; if one fails, the files already written by this call are removed again.
/// Returns where each ciphertext went, with its component.
fn write_outputs(
    dest: &Path,
    env: &[u8],
    ciphertexts: &[description::Ciphertext],
) -> anyhow::Result<Vec<(String, PathBuf, usize)>> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut files: Vec<(String, PathBuf, &[u8])> = Vec::new();
    for c in ciphertexts {
        let path = c.out.clone().unwrap_or_else(|| dir.join(&c.default_name));
        if path == dest || files.iter().any(|(_, p, _)| *p == path) {
            bail!(
                "component {:?}: the ciphertext would overwrite {} (set encrypt.out)",
                c.component,
                path.display()
            );
        }
        files.push((c.component.clone(), path, &c.bytes));
    }
    let mut written: Vec<&Path> = Vec::new();
    let result = (|| {
        for (_, path, bytes) in &files {
            output::write_atomic(path, bytes, Mode::Public)?;
            written.push(path);
        }
        output::write_atomic(dest, env, Mode::Public)
    })();
    if let Err(e) = result {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(files.into_iter().map(|(c, p, b)| (c, p, b.len())).collect())
}

/// Runs `build`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let dest = args.out.clone().unwrap_or_else(|| default_out(&args.file));
    // Before anything is signed: an HSS-LMS signature spends a one-time leaf.
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(anyhow!("{}: no such directory", dir.display()))
            .context(dest.display().to_string());
    }
    let (env, s) = build_file(&args.file, args.sequence_number)?;
    let (env, kids) = sign::sign_all(env, &args.keys, &args.pkcs11)?;
    let encrypted = write_outputs(&dest, &env, &s.ciphertexts)?;
    if args.json {
        let line = json!({
            "type": "build",
            "file": args.file.display().to_string(),
            "out": dest.display().to_string(),
            "size": env.len(),
            "manifest_size": s.manifest_size,
            "manifest_digest": s.digest,
            "sequence_number": s.sequence_number,
            "components": s.components,
            "integrated": s.payloads,
            "signed_by": kids,
            "ciphertexts": encrypted
                .iter()
                .map(|(c, p, n)| json!({"component": c, "out": p.display().to_string(), "size": n}))
                .collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "built: {} ({} bytes; manifest {} bytes, sha-256:{}; sequence {}; components: {})",
            dest.display(),
            env.len(),
            s.manifest_size,
            s.digest,
            s.sequence_number,
            s.components.join(", ")
        )?;
        for (c, p, n) in &encrypted {
            writeln!(
                out,
                "ciphertext: {} ({n} bytes; publish it at component {c:?}'s uri)",
                p.display()
            )?;
        }
        if kids.is_empty() {
            writeln!(
                out,
                "note: unsigned: devices refuse it until signed ('suitcase sign --key KEY.pem')"
            )?;
        } else {
            writeln!(out, "signed by key id {}", kids.join(", "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "suitcase", "build", "m.toml", "--key", "a.pem", "--key", "b.pem", "-o", "x.suit",
        ])
        .unwrap();
        let Command::Build(a) = cli.command else {
            panic!("not build")
        };
        assert_eq!(a.keys.len(), 2);
        assert_eq!(a.out, Some(PathBuf::from("x.suit")));
        assert_eq!(default_out(Path::new("d/m.toml")), Path::new("d/m.suit"));
    }
}
