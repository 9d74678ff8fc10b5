//! Project automation for suitcase, run as `cargo xtask <command>`.
//!
//! - `setup`: install what a fresh Debian machine lacks (apt packages for the
//!   Cortex-M build, `cargo-fuzz`), only when missing.
//! - `test`: everything CI checks, in order, stopping at the first failure
//!   (setup, fmt, clippy, host tests, the server's suite again on a throwaway PostgreSQL,
//!   the Python check of the CLI's output, firmware, fuzz).
//!   `.ci/run` calls exactly this.
//! - `firmware`: generate the re-signed vectors, build `firmware/` with Debian's
//!   toolchain, run its tests in QEMU, report sizes, stack and device counts.
//! - `bench`: the processor's criterion benchmarks and the firmware's device counts,
//!   summarised in one table.
//! - `bench-fleet`: the fleet server under load on loopback (check-ins on SQLite and
//!   PostgreSQL, payload downloads next to nginx); not part of `test`.
//! - `fuzz`: a short run of every cargo-fuzz target in `fuzz/`.

mod bench;
mod bench_fleet;
mod firmware;
mod fuzz;
mod postgres;
mod process;
mod setup;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::process::Failure;

/// Fuzzing time per target in `cargo xtask test`, in seconds.
const DEFAULT_FUZZ_SECONDS: u64 = 20;

/// suitcase's project automation.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install missing apt packages and cargo-fuzz (idempotent).
    Setup,
    /// Run every check CI runs: setup, fmt, clippy, tests, firmware in QEMU, fuzz.
    Test {
        /// Skip the firmware build and the fuzz pass.
        #[arg(long)]
        quick: bool,
        /// Seconds to fuzz each target; 0 only replays the corpus.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_FUZZ_SECONDS)]
        fuzz_seconds: u64,
    },
    /// Build the Cortex-M firmware, run its tests in QEMU and print its size.
    Firmware,
    /// Host benchmarks (criterion) and device counts (QEMU), with a summary table.
    Bench {
        /// Passed to criterion (after `--`), e.g. `--measurement-time 2`.
        #[arg(last = true)]
        criterion_args: Vec<String>,
    },
    /// The fleet server under load on loopback (not a test): check-ins/s and latency on
    /// SQLite and PostgreSQL, payload MB/s next to nginx.
    BenchFleet {
        /// Devices enrolled before the check-ins.
        #[arg(long, default_value_t = 2000)]
        devices: usize,
        /// Seconds each load run lasts.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent check-in connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Fuzz every target in `fuzz/` (or only those named) for a while each.
    Fuzz {
        /// Seconds to fuzz each target; 0 only replays the corpus.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_FUZZ_SECONDS)]
        seconds: u64,
        /// Targets to run; all of `cargo fuzz list` when none is given.
        targets: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run(),
        Command::Test {
            quick,
            fuzz_seconds,
        } => test(quick, fuzz_seconds),
        Command::Firmware => firmware::run(),
        Command::Bench { criterion_args } => bench::run(&criterion_args),
        Command::BenchFleet {
            devices,
            seconds,
            connections,
        } => bench_fleet::run(&bench_fleet::Load {
            devices,
            seconds,
            connections,
        }),
        Command::Fuzz { seconds, targets } => fuzz::run(seconds, &targets),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the checkout), whatever the current directory.
fn root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map_or(xtask.clone(), PathBuf::from)
}

/// One step of `cargo xtask test`.
type Step = (&'static str, Box<dyn Fn() -> Result<(), Failure>>);

/// `cargo xtask test`: every step in order, stopping at the first failure.
fn test(quick: bool, fuzz_seconds: u64) -> Result<(), Failure> {
    // What the checkout looked like before the run: the run must leave it so. A lock file
    // that a build rewrites (a stale `fuzz/Cargo.lock`, say) is a change a user's fresh
    // clone would see too. In CI the clone must also start clean: cargo rewrites a stale
    // root `Cargo.lock` while it builds xtask, before this runs.
    let before = git_status();
    if std::env::var_os("CI").is_some() {
        match before.as_deref() {
            // Without git status the last step would compare nothing with nothing.
            None => {
                return Err(Failure(
                    "`git status` failed in CI (no git, or a checkout owned by another user: \
                     git config --global --add safe.directory <checkout>)"
                        .into(),
                ));
            }
            Some(changed) if !changed.is_empty() => {
                return Err(Failure(format!(
                    "the checkout is not clean before the tests (a stale Cargo.lock?):\n{changed}"
                )));
            }
            Some(_) => {}
        }
    }
    let mut steps: Vec<Step> = vec![
        ("setup", Box::new(setup::run)),
        (
            "fmt",
            Box::new(|| process::cargo(&["fmt", "--all", "--check"])),
        ),
        (
            "clippy",
            Box::new(|| {
                process::cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            }),
        ),
        (
            "clippy --all-features",
            Box::new(|| {
                process::cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ])
            }),
        ),
        ("tests", Box::new(host_tests)),
        ("python", Box::new(python_tests)),
    ];
    if !quick {
        steps.push(("firmware", Box::new(firmware::run)));
        steps.push(("fuzz", Box::new(move || fuzz::run(fuzz_seconds, &[]))));
    }
    steps.push((
        "checkout unchanged",
        Box::new(move || {
            let after = git_status();
            if after == before {
                return Ok(());
            }
            Err(Failure(format!(
                "the run changed the checkout (commit a rewritten lock file, or ignore \
                 generated output); `git status --porcelain` before:\n{}\nafter:\n{}",
                before.as_deref().unwrap_or("(no git)"),
                after.as_deref().unwrap_or("(no git)")
            )))
        }),
    ));

    let total = steps.len();
    let started = Instant::now();
    for (i, (name, run)) in steps.iter().enumerate() {
        println!("\n==> [{}/{total}] {name}", i + 1);
        let t = Instant::now();
        let result = run();
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("<== [{}/{total}] {name}: ok in {secs:.1} s", i + 1),
            Err(failure) => {
                println!("<== [{}/{total}] {name}: FAILED after {secs:.1} s", i + 1);
                return Err(Failure(format!(
                    "step {} of {total} ({name}) failed: {failure}",
                    i + 1
                )));
            }
        }
    }
    println!(
        "\nxtask test: all {total} steps passed in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if quick {
            " (--quick: no firmware, no fuzz)"
        } else {
            ""
        }
    );
    // The plain closing line CI reads: every step is itself a test suite (nextest,
    // QEMU, fuzz) whose own summary is printed above.
    println!("steps: {total} passed, 0 failed");
    Ok(())
}

/// `git status --porcelain` of the checkout (untracked files included), or `None` where
/// there is no git or no repository.
fn git_status() -> Option<String> {
    let out = std::process::Command::new("git")
        .current_dir(root())
        .args(["status", "--porcelain", "--untracked-files=all"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// pytest's exit status when it collected no test: a failure here, never a pass.
const PYTEST_NO_TESTS: i32 = 5;

/// `tests/python`: an independent check (cbor2, cryptography) of the envelopes and
/// signatures the `suitcase` binary writes. The binary is the one the host tests built.
fn python_tests() -> Result<(), Failure> {
    // Same profile and features as the host tests, so nothing is rebuilt.
    process::cargo(&[
        "build",
        "--workspace",
        "--all-features",
        "--bin",
        "suitcase",
    ])?;
    let bin = root().join("target").join("debug").join("suitcase");
    let mut cmd = process::command("python3");
    // No cache or bytecode files left in the checkout.
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/python",
    ])
    .env("SUITCASE_BIN", &bin)
    .env("PYTHONDONTWRITEBYTECODE", "1");
    let line = process::display(&cmd);
    println!("$ {line}");
    let status = cmd
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(PYTEST_NO_TESTS) => Err(Failure(format!("`{line}` collected no tests"))),
        _ => Err(Failure(format!("`{line}` failed ({status})"))),
    }
}

/// Unit, integration and doc tests of the host workspace, every feature on; then the
/// server's integration suite again on a throwaway PostgreSQL cluster.
fn host_tests() -> Result<(), Failure> {
    let nextest = process::succeeds(process::command("cargo").args(["nextest", "--version"]));
    if nextest {
        process::cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-tests=warn",
        ])?;
        // nextest does not run doctests.
        process::cargo(&["test", "--doc", "--workspace", "--all-features"])?;
    } else {
        process::cargo(&["test", "--workspace", "--all-features"])?;
    }
    server_tests_on_postgres(nextest)
}

/// The server's integration suite (`crates/server/tests/server`) on PostgreSQL: the same
/// tests that just ran on SQLite, each in a database of its own on a cluster started here
/// and removed afterwards (also on failure: [`postgres::Cluster`] cleans up on drop).
/// `SUITCASE_TEST_POSTGRES_REQUIRED=1` makes a test fail rather than fall back to SQLite.
fn server_tests_on_postgres(nextest: bool) -> Result<(), Failure> {
    let cluster = postgres::Cluster::start(postgres::Durability::Throwaway)?;
    println!(
        "xtask: server suite on PostgreSQL: {} at {}",
        cluster.version, cluster.url
    );
    let mut cmd = process::command("cargo");
    if nextest {
        cmd.args(["nextest", "run"]);
    } else {
        cmd.arg("test");
    }
    cmd.args([
        "-p",
        "suitcase-server",
        "--all-features",
        "--test",
        "server",
    ])
    .env("SUITCASE_TEST_POSTGRES", &cluster.url)
    .env("SUITCASE_TEST_POSTGRES_REQUIRED", "1");
    process::run(&mut cmd)
}
