//! `suitcase keygen --alg es256|ed25519|hss-lms --out KEY.pem`: a fresh key pair, the
//! PKCS#8 private key in KEY.pem (mode 0600) and its SubjectPublicKeyInfo in KEY.pub.pem.
//!
//! An existing private key is never overwritten without `--force`: losing a signing key
//! (or, for HSS-LMS, its record of used leaves) is not a mistake to make by accident.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::json;

use crate::keys::{self, KeyAlg};
use crate::output::{self, Mode};

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key type: es256 (ECDSA P-256), ed25519, hss-lms (stateful hash-based).
    #[arg(long, value_enum)]
    pub alg: KeyAlg,
    /// Where the private key goes; the public key goes beside it as NAME.pub.pem. With
    /// `--pkcs11-…`: where the public key goes (the private key stays in the token).
    #[arg(long, short = 'o', value_name = "KEY.pem")]
    pub out: PathBuf,
    /// Generate the key pair inside a PKCS#11 token (es256 only).
    #[command(flatten)]
    pub pkcs11: crate::pkcs11::Pkcs11Args,
    /// HSS-LMS only: tree height, 2^H signatures (5, 10 or 15).
    #[arg(long, value_name = "H", default_value_t = 10)]
    pub lms_height: u8,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object of type "keygen" instead of the text line.
    #[arg(long)]
    pub json: bool,
}

/// KEY.pem → KEY.pub.pem; KEY → KEY.pub.pem.
pub fn public_path(private: &Path) -> PathBuf {
    let name = private
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".pem").unwrap_or(&name);
    private.with_file_name(format!("{stem}.pub.pem"))
}

/// Runs `keygen`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.pkcs11.given() {
        return run_pkcs11(args, out);
    }
    let public = public_path(&args.out);
    if public == args.out {
        bail!("{}: the private key needs its own name", args.out.display());
    }
    if !args.force {
        for p in [&args.out, &public] {
            if p.exists() {
                bail!(
                    "{}: already exists (use --force to replace it)",
                    p.display()
                );
            }
        }
    }
    let key = keys::generate(args.alg, args.lms_height)?;
    let pk = key.public();
    output::write_atomic(&args.out, key.to_pem()?.as_bytes(), Mode::Secret)?;
    if let Err(e) = output::write_atomic(&public, pk.to_pem()?.as_bytes(), Mode::Public) {
        // Half a key pair is no result: take the private half back.
        let _ = std::fs::remove_file(&args.out);
        return Err(e);
    }
    let kid = hex::encode(pk.key_id());
    let alg = crate::names::cose_algorithm(pk.algorithm());
    if args.json {
        let line = json!({
            "type": "keygen",
            "private": args.out.display().to_string(),
            "public": public.display().to_string(),
            "key_type": pk.kind(),
            "alg": alg,
            "alg_id": pk.algorithm().cose_id(),
            "key_id": kid,
            "signatures_left": key.signatures_left(),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{} key: {} (private, mode 0600), {} (public); key id {kid}",
            pk.kind(),
            args.out.display(),
            public.display()
        )?;
    }
    Ok(())
}

/// `keygen --pkcs11-…`: the key pair is generated in the token; only the public key is
/// written, to `--out`.
fn run_pkcs11(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.alg != KeyAlg::Es256 {
        bail!("PKCS#11 keys are es256 (ECDSA P-256) only");
    }
    if args.out.exists() && !args.force {
        bail!(
            "{}: already exists (use --force to replace it)",
            args.out.display()
        );
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "{}: {}: no such directory",
            args.out.display(),
            dir.display()
        );
    }
    let token = crate::pkcs11::Token::open(&args.pkcs11, true)?;
    token.generate()?;
    let pk = token.public()?;
    output::write_atomic(&args.out, pk.to_pem()?.as_bytes(), Mode::Public)?;
    let kid = hex::encode(pk.key_id());
    let (module, label, key) = (
        args.pkcs11
            .pkcs11_module
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        args.pkcs11.pkcs11_token.clone().unwrap_or_default(),
        args.pkcs11.pkcs11_key.clone().unwrap_or_default(),
    );
    if args.json {
        let line = json!({
            "type": "keygen",
            "pkcs11_module": module,
            "pkcs11_token": label,
            "pkcs11_key": key,
            "public": args.out.display().to_string(),
            "key_type": pk.kind(),
            "alg": crate::names::cose_algorithm(pk.algorithm()),
            "alg_id": pk.algorithm().cose_id(),
            "key_id": kid,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "{} key: in PKCS#11 token {label:?} as {key:?} (private, not extractable), {} (public); key id {kid}",
            pk.kind(),
            args.out.display()
        )?;
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
        let cli = Cli::try_parse_from(["suitcase", "keygen", "--alg", "hss-lms", "--out", "k.pem"])
            .unwrap();
        let Command::Keygen(a) = cli.command else {
            panic!("not keygen")
        };
        assert_eq!(a.alg, KeyAlg::HssLms);
        assert_eq!(a.lms_height, 10);
        assert!(!a.force && !a.json);
        assert!(Cli::try_parse_from(["suitcase", "keygen", "--alg", "rsa", "-o", "k"]).is_err());
        assert!(Cli::try_parse_from(["suitcase", "keygen", "--alg", "es256"]).is_err());
    }

    #[test]
    fn public_key_name() {
        assert_eq!(public_path(Path::new("a/k.pem")), Path::new("a/k.pub.pem"));
        assert_eq!(public_path(Path::new("k")), Path::new("k.pub.pem"));
    }
}
