//! `cargo xtask setup`: install what a fresh Debian 12 machine lacks, only
//! when it is missing, printing one line per thing checked.

use crate::process::{self, Failure, command, first_line};

/// Debian packages the firmware build and run, the PKCS#11 tests, the dashboard
/// test and the server's PostgreSQL and curl tests need.
///
/// rustc-web/cargo-web (1.96, bookworm-security) build `core` from
/// rust-web-src for thumbv7em: rustup may have no Arm target on these
/// machines and cannot fetch one.
const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "gcc-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "qemu-system-arm",
    // PKCS#11 signing tests (`suitcase sign --pkcs11-…`): a software token,
    // /usr/lib/softhsm/libsofthsm2.so and softhsm2-util.
    "softhsm2",
    // The fleet dashboard's test loads the page in headless Chromium
    // (crates/cli/tests/cli/fleet.rs).
    "chromium",
    // The server's integration suite runs a second time on PostgreSQL, on a throwaway
    // cluster xtask starts (xtask/src/postgres.rs); `cargo xtask bench-fleet` too.
    "postgresql",
    // crates/server/tests/server/curl.rs: the real curl resumes a cut download.
    "curl",
];

/// PyPI packages the independent check of the CLI's output needs
/// (`tests/python`): CBOR decoding, COSE signature verification, the runner.
const PIP_PACKAGES: &[(&str, &str)] = &[
    ("aiocoap", "aiocoap"),
    ("cbor2", "cbor2"),
    ("cryptography", "cryptography"),
    ("pytest", "pytest"),
];

/// cargo-fuzz release installed when `cargo fuzz` is missing (pinned so CI
/// does not change under us).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Checks and installs; see the module docs.
pub fn run() -> Result<(), Failure> {
    apt_ensure(APT_PACKAGES)?;

    match first_line(command("cargo").args(["fuzz", "--version"])) {
        Some(version) => println!("setup: {:<28} {version}", "cargo-fuzz"),
        None => {
            println!(
                "setup: {:<28} missing: installing {CARGO_FUZZ_VERSION}",
                "cargo-fuzz"
            );
            process::cargo(&[
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                CARGO_FUZZ_VERSION,
            ])?;
        }
    }

    python_packages()?;

    // Present on these machines already; reported, not installed.
    let tools: [(&str, &str, &[&str]); 7] = [
        ("cargo", "cargo", &["--version"]),
        ("rustfmt", "cargo", &["fmt", "--version"]),
        ("clippy", "cargo", &["clippy", "--version"]),
        (
            "cargo-nextest (optional)",
            "cargo",
            &["nextest", "--version"],
        ),
        (
            "/usr/bin/cargo (firmware)",
            "/usr/bin/cargo",
            &["--version"],
        ),
        ("arm-none-eabi-gcc", "arm-none-eabi-gcc", &["--version"]),
        ("qemu-system-arm", "qemu-system-arm", &["--version"]),
    ];
    for (name, program, args) in tools {
        let version = first_line(command(program).args(args));
        println!(
            "setup: {name:<28} {}",
            version.as_deref().unwrap_or("not found")
        );
    }
    Ok(())
}

/// Installs the PyPI packages of [`PIP_PACKAGES`] that `python3` cannot import.
fn python_packages() -> Result<(), Failure> {
    let mut missing = Vec::new();
    for &(module, package) in PIP_PACKAGES {
        let found = process::succeeds(command("python3").args(["-c", &format!("import {module}")]));
        println!(
            "setup: pip {package:<24} {}",
            if found { "installed" } else { "missing" }
        );
        if !found {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["-m", "pip", "install", "--quiet"];
    args.extend_from_slice(&missing);
    if process::run(command("python3").args(&args)).is_ok() {
        return Ok(());
    }
    // Debian's own python3 refuses user installs into its environment (PEP 668);
    // these test-only packages are fine there.
    args.push("--break-system-packages");
    process::run(command("python3").args(&args))
}

/// Installs the Debian packages of `packages` that are missing, one line per package.
pub fn apt_ensure(packages: &[&str]) -> Result<(), Failure> {
    let mut missing = Vec::new();
    for &package in packages {
        let installed = apt_installed(package)?;
        println!(
            "setup: apt {package:<24} {}",
            if installed { "installed" } else { "missing" }
        );
        if !installed {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

fn apt_installed(package: &str) -> Result<bool, Failure> {
    let out = command("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map_err(|e| Failure(format!("cannot run dpkg-query (is this Debian?): {e}")))?;
    // Exit status 1 with nothing printed means "no such package known".
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "install ok installed")
}

fn apt_install(packages: &[&str]) -> Result<(), Failure> {
    let root = first_line(command("id").arg("-u")).as_deref() == Some("0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            command("apt-get")
        } else {
            let mut sudo = command("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        process::run(&mut cmd)
    };
    apt(&["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}
