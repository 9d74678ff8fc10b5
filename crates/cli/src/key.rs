//! `suitcase key show FILE`: the key id (COSE key thumbprint, RFC 9679, SHA-256 — the
//! `kid` that `sign` writes) and the algorithm of a private or public key file.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::keys::{self, AnyKey};

/// Arguments of `key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// `key` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Print a key's id (COSE key thumbprint) and algorithm.
    Show(ShowArgs),
}

/// Arguments of `key show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A PEM key: PKCS#8 / SEC1 private key or SubjectPublicKeyInfo public key.
    pub file: PathBuf,
    /// Print one JSON object of type "key".
    #[arg(long)]
    pub json: bool,
}

/// Runs `key`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let KeyCommand::Show(args) = &args.command;
    let key = keys::load_any(&args.file)?;
    let (half, public, left) = match &key {
        AnyKey::Private(k) => ("private", k.public(), k.signatures_left()),
        AnyKey::Public(k) => ("public", k.clone(), None),
    };
    let alg = public.algorithm();
    let kid = hex::encode(public.key_id());
    if args.json {
        let line = json!({
            "type": "key",
            "file": args.file.display().to_string(),
            "half": half,
            "key_type": public.kind(),
            "alg": crate::names::cose_algorithm(alg),
            "alg_id": alg.cose_id(),
            "key_id": kid,
            "signatures_left": left,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "key id: {kid}")?;
        writeln!(
            out,
            "algorithm: {} ({}), {} {half} key",
            crate::names::cose_algorithm(alg),
            alg.cose_id(),
            public.kind()
        )?;
        if let Some(n) = left {
            writeln!(out, "signatures left: {n}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["suitcase", "key", "show", "--json", "k.pem"]).unwrap();
        let Command::Key(a) = cli.command else {
            panic!("not key")
        };
        let super::KeyCommand::Show(s) = a.command;
        assert!(s.json);
        assert!(Cli::try_parse_from(["suitcase", "key"]).is_err());
    }
}
