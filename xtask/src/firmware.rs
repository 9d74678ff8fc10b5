//! `cargo xtask firmware`: build `firmware/` with Debian's toolchain, run its
//! tests in QEMU (mps2-an386, Cortex-M4F) and print the image size.
//!
//! rustup's cargo and rustc must not take part: rustup here may have no Arm
//! target and cannot fetch one, while Debian's rustc-web builds `core` from
//! rust-web-src (`build-std`, unlocked by `RUSTC_BOOTSTRAP=1`).

use std::env;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{self, Failure, command, require};
use crate::root;

/// The firmware target (mps2-an386 has a Cortex-M4F).
const TARGET: &str = "thumbv7em-none-eabihf";
/// The test image.
const BINARY: &str = "qemu-tests";
/// A hung guest (no semihosting exit) is killed after this long; a passing
/// run takes well under a second.
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

/// Variables that rustup or the `cargo run` that started xtask may set, and
/// that would make Debian's cargo pick rustup's rustc, load rustup's
/// libraries, or replace the firmware's rustflags (dropping `-Tlink.x`).
const SCRUBBED_ENV: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "CARGO",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "LD_LIBRARY_PATH",
];

/// Builds, runs in QEMU, reports the size.
pub fn run() -> Result<(), Failure> {
    let dir = root().join("firmware");
    require(
        Path::new("/usr/bin/cargo"),
        "Debian's cargo (cargo-web; run `cargo xtask setup`)",
    )?;
    require(
        Path::new("/usr/bin/rustc"),
        "Debian's rustc (rustc-web; run `cargo xtask setup`)",
    )?;

    let started = Instant::now();
    process::run(&mut debian_cargo(&dir, &["build", "--release"]))?;
    println!(
        "firmware: build took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let elf = dir.join("target").join(TARGET).join("release").join(BINARY);
    require(&elf, "firmware image")?;
    let started = Instant::now();
    process::run_with_timeout(
        command("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            // Virtual time = instructions: makes the SysTick-based counts exact.
            .args(["-icount", "shift=0"])
            .arg("-kernel")
            .arg(&elf),
        QEMU_TIMEOUT,
    )?;
    println!(
        "firmware: QEMU run took {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let berkeley = process::output(command("arm-none-eabi-size").arg(&elf))?;
    print!("{}", String::from_utf8_lossy(&berkeley.stdout));
    let sysv = process::output(command("arm-none-eabi-size").arg("-A").arg(&elf))?;
    let sysv = String::from_utf8_lossy(&sysv.stdout);
    let section = |name: &str| {
        sysv.lines()
            .find_map(|l| {
                let mut cols = l.split_whitespace();
                (cols.next() == Some(name)).then(|| cols.next()?.parse::<u64>().ok())?
            })
            .unwrap_or(0)
    };
    println!(
        "firmware: {BINARY} .text {} B, .rodata {} B, .vector_table {} B, .bss {} B",
        section(".text"),
        section(".rodata"),
        section(".vector_table"),
        section(".bss"),
    );
    Ok(())
}

/// `/usr/bin/cargo <args>` in `dir`, with Debian's rustc first on `PATH`.
fn debian_cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.current_dir(dir).args(args);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let path = env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/bin:{path}"))
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}
