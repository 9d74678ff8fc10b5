#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod build;
mod cbor;
mod demo;
mod device;
mod diag;
mod encrypt;
mod inspect;
mod key;
mod keygen;
mod keys;
mod names;
mod output;
mod pkcs11;
mod process;
mod serve;
mod sign;
mod trust;
mod verify;

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when a check said no (ripgrep's "nothing found").
const EXIT_REJECTED: u8 = 1;
/// Exit code for usage and operational errors.
const EXIT_ERROR: u8 = 2;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "suitcase",
    version,
    about = "Author, sign, inspect and verify IETF SUIT firmware-update envelopes",
    after_help = "Exit status: 0 ok, 1 a check said no (e.g. verify rejected), 2 usage or operational error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair: PKCS#8 private key (mode 0600) and its public key.
    Keygen(keygen::Args),
    /// Show a key's id and algorithm.
    Key(key::Args),
    /// Build an envelope from a manifest description (TOML).
    Build(build::Args),
    /// Add a signature to an envelope without re-encoding its manifest.
    Sign(sign::Args),
    /// Decode an envelope and print its contents (nothing is authenticated).
    Inspect(inspect::Args),
    /// Authenticate an envelope against trusted keys, as a device would.
    Verify(verify::Args),
    /// Encrypt a payload for a device key or a shared key-encryption key.
    Encrypt(encrypt::Args),
    /// Run the guided end-to-end demo on an in-memory device with the published vectors.
    Demo(demo::Args),
    /// A simulated device: the real processor and bootloader over a flash simulator in DIR.
    Device(device::Args),
    /// Dry run: run an envelope's sequences against components kept as files in DIR.
    Process(process::Args),
    /// Trust stores: build one, add a root key holder's signature, check it as a device would.
    Trust(trust::Args),
    /// The fleet update server: releases, devices, campaigns over HTTP (docs/server.md).
    Serve(serve::Args),
}

impl Command {
    /// The subcommand's name, the `<what>` of its error lines.
    fn name(&self) -> &'static str {
        match self {
            Command::Keygen(_) => "keygen",
            Command::Key(_) => "key",
            Command::Build(_) => "build",
            Command::Sign(_) => "sign",
            Command::Inspect(_) => "inspect",
            Command::Verify(_) => "verify",
            Command::Demo(_) => "demo",
            Command::Device(_) => "device",
            Command::Encrypt(_) => "encrypt",
            Command::Process(_) => "process",
            Command::Trust(_) => "trust",
            Command::Serve(_) => "serve",
        }
    }
}

/// A check said no: `main` exits with 1 instead of 2. The message is the `<why>`.
#[derive(Debug)]
pub struct Rejected(pub String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejected {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let what = cli.command.name();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Keygen(args) => keygen::run(args, &mut out),
        Command::Key(args) => key::run(args, &mut out),
        Command::Build(args) => build::run(args, &mut out),
        Command::Sign(args) => sign::run(args, &mut out),
        Command::Inspect(args) => inspect::run(args, &mut out),
        Command::Verify(args) => verify::run(args, &mut out),
        Command::Demo(args) => demo::run(args, &mut out),
        Command::Device(args) => device::run(args, &mut out),
        Command::Encrypt(args) => encrypt::run(args, &mut out),
        Command::Process(args) => process::run(args, &mut out),
        Command::Trust(args) => trust::run(args, &mut out),
        Command::Serve(args) => serve::run(args, &mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(what, &e),
    }
}

/// Maps an error to its exit code and prints its one line.
fn report(what: &str, e: &anyhow::Error) -> ExitCode {
    // A closed pipe (`suitcase inspect f | head`) is the reader's choice, not a failure.
    if e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    eprintln!("suitcase: {what}: {}", one_line(&format!("{e:#}")));
    if e.chain().any(|c| c.is::<Rejected>()) {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::from(EXIT_ERROR)
    }
}

/// Help and version go to stdout with 0; every other clap error becomes one line and 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        // Nothing sensible is left to do when stdout is gone.
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let msg = match e.kind() {
        K::DisplayHelpOnMissingArgumentOrSubcommand | K::MissingSubcommand => {
            // Listed from the parser itself, so a new subcommand cannot be left out.
            let names: Vec<String> = <Cli as clap::CommandFactory>::command()
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string())
                .collect();
            format!("a subcommand is required: {}", names.join(", "))
        }
        _ => clap_message(e),
    };
    eprintln!("suitcase: usage: {msg} (see 'suitcase --help')");
    ExitCode::from(EXIT_ERROR)
}

/// The first paragraph of clap's rendered error, without its `error:` prefix.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.split("\n\n").next().unwrap_or_default();
    let first = first.trim().strip_prefix("error:").unwrap_or(first);
    one_line(first)
}

/// Collapses whitespace runs (newlines included) so an error stays on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from(["suitcase", "demo"]).unwrap();
        assert_eq!(cli.command.name(), "demo");
        assert!(Cli::try_parse_from(["suitcase"]).is_err());
        assert!(Cli::try_parse_from(["suitcase", "frobnicate"]).is_err());
    }

    #[test]
    fn usage_errors_are_one_line() {
        let e = Cli::try_parse_from(["suitcase", "verify", "f.suit"]).unwrap_err();
        let msg = clap_message(&e);
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("--key"), "{msg}");
        assert!(!msg.starts_with("error"), "{msg}");
    }

    #[test]
    fn rejected_is_found_through_context() {
        let e = anyhow::Error::new(Rejected("no".into())).context("file.suit");
        assert!(e.chain().any(|c| c.is::<Rejected>()));
        assert_eq!(format!("{e:#}"), "file.suit: no");
    }
}
