//! `cargo xtask firmware`: generate the host-side vectors, build `firmware/` with
//! Debian's toolchain, run its tests in QEMU (mps2-an386, Cortex-M4F), and report the
//! sizes (the test image, and the size probe with P-256 only and with every algorithm),
//! the processor's worst-case stack and example 3's device cost.
//!
//! rustup's cargo and rustc must not take part: rustup here may have no Arm
//! target and cannot fetch one, while Debian's rustc-web builds `core` from
//! rust-web-src (`build-std`, unlocked by `RUSTC_BOOTSTRAP=1`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{self, Failure, command, require};
use crate::{root, vectors};

mod chain;
mod device;
mod migration;
mod stage1;
mod trust;

/// The firmware target (mps2-an386 has a Cortex-M4F).
const TARGET: &str = "thumbv7em-none-eabihf";
/// The test image.
const BINARY: &str = "qemu-tests";
/// The bootloader-shaped image that is only linked and measured.
const PROBE: &str = "size-probe";
/// A hung guest (no semihosting exit) is killed after this long; a passing
/// run takes well under a second.
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

/// The device test that runs example 3's whole update (authenticate + update).
pub const EXAMPLE3_FULL: &str = "processor::example3_update_slot1";
/// The device test that runs only the COSE verification of the same envelope.
pub const EXAMPLE3_VERIFY: &str = "processor::example3_verify_only";
/// The device test that hashes what example 3's update hashes (manifest and image B).
pub const EXAMPLE3_HASHING: &str = "digest::example3_update_hashing";
/// The test's setup and checks and the platform stand-ins' work of example 3's update,
/// without the processor (subtracted from the full count with the verify and hashing).
pub const EXAMPLE3_HARNESS: &str = "processor::example3_update_harness";
/// The envelope and COSE decodes `EXAMPLE3_VERIFY` also does (processor work, added back).
pub const EXAMPLE3_DECODE: &str = "processor::example3_decode_only";
/// The device test that runs only `authenticate` on the same envelope.
pub const EXAMPLE3_AUTHENTICATE: &str = "processor::example3_authenticate_only";

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
    "SUITCASE_GENERATED",
];

/// One passing on-target test line: `test <name> ... ok (<n> instr, <m> B stack)`.
#[derive(Debug, Clone)]
pub struct Measured {
    /// `module::function`.
    pub name: String,
    /// Guest instructions the test executed.
    pub instructions: u64,
    /// Deepest stack the test reached, bytes.
    pub stack: u64,
}

/// Section sizes of one ELF, bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    /// `.text`: code.
    pub text: u64,
    /// `.rodata`: constants (curve tables, vectors).
    pub rodata: u64,
    /// `.data` + `.bss`: static RAM.
    pub ram: u64,
}

/// What a firmware run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every passing test line, in order.
    pub tests: Vec<Measured>,
    /// The size probe with P-256 only.
    pub probe_p256: Sizes,
    /// The size probe with P-256, Ed25519 and HMAC.
    pub probe_all: Sizes,
    /// The bootloader and the application with the update agent on the device.
    pub device: device::DeviceReport,
    /// The first stage of the updatable bootloader, without diagnostics (the one that
    /// ships) and with them (the one the tests run).
    pub stage1: Sizes,
    /// The same with its `stage1:` lines.
    pub stage1_logged: Sizes,
    /// The chained boot: first stage → second stage → application.
    pub chain: chain::ChainReport,
    /// The migration build: crypto agility on the device.
    pub migration: migration::MigrationReport,
}

impl Report {
    /// Example 3's update minus the signature check (key parse and verification: the
    /// verify test minus its envelope and COSE decodes), the hashing and the harness (the
    /// test's setup and checks and the platform stand-ins' work): the processor's logic.
    /// `None` when a test is missing or the parts exceed the whole (a broken measurement).
    pub fn processor_own_cost(&self) -> Option<u64> {
        let count = |name| self.test(name).map(|m| m.instructions);
        let signature = count(EXAMPLE3_VERIFY)?.checked_sub(count(EXAMPLE3_DECODE)?)?;
        let spent = signature + count(EXAMPLE3_HASHING)? + count(EXAMPLE3_HARNESS)?;
        count(EXAMPLE3_FULL)?.checked_sub(spent)
    }

    /// The test named `name`.
    pub fn test(&self, name: &str) -> Option<&Measured> {
        self.tests.iter().find(|t| t.name == name)
    }

    /// The processor test (module `processor` or `flash`) with the deepest stack.
    pub fn worst_processor_stack(&self) -> Option<&Measured> {
        self.tests
            .iter()
            .filter(|t| t.name.starts_with("processor::") || t.name.starts_with("flash::"))
            .max_by_key(|t| t.stack)
    }
}

/// `cargo xtask firmware`.
pub fn run() -> Result<(), Failure> {
    let report = build_and_measure()?;
    // Issue 6's goal, kept: the processor's own logic at most 2 % of one Ed25519 verify.
    // (Here, not in `build_and_measure`: `cargo xtask bench` prints the figures whatever
    // they are.)
    let own = report.processor_own_cost().ok_or_else(|| {
        Failure("firmware: the example 3 measurements are missing or inconsistent".into())
    })?;
    let limit = report.device.verify_ed25519 / 50;
    if own > limit {
        return Err(Failure(format!(
            "firmware: the processor's own cost is {own} instructions, over 2 % of an Ed25519 \
             verify ({limit})"
        )));
    }
    Ok(())
}

/// Generates the vectors, builds, runs in QEMU, measures the sizes; prints a summary.
pub fn build_and_measure() -> Result<Report, Failure> {
    let dir = root().join("firmware");
    require(
        Path::new("/usr/bin/cargo"),
        "Debian's cargo (cargo-web; run `cargo xtask setup`)",
    )?;
    require(
        Path::new("/usr/bin/rustc"),
        "Debian's rustc (rustc-web; run `cargo xtask setup`)",
    )?;
    let total = Instant::now();

    // Host step first: the test image include_bytes!() what this writes.
    vectors::generate(&dir.join("target").join("generated"))?;

    let started = Instant::now();
    // One package per build: a workspace-wide build would unify the crates' features
    // across members, and the size probe must get only its own (P-256 only).
    process::run(&mut debian_cargo(
        &dir,
        &["build", "--release", "--package", BINARY],
    ))?;
    println!(
        "firmware: build took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let elf = elf_path(&dir, BINARY);
    require(&elf, "firmware image")?;
    let started = Instant::now();
    let output = process::run_tee(
        command("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            // Virtual time = instructions: makes the SysTick-based counts exact.
            .args(["-icount", "shift=0"])
            .arg("-kernel")
            .arg(&elf),
        Some(QEMU_TIMEOUT),
    )?;
    println!(
        "firmware: QEMU run took {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let tests = parse_tests(&output);

    let berkeley = process::output(command("arm-none-eabi-size").arg(&elf))?;
    print!("{}", String::from_utf8_lossy(&berkeley.stdout));
    let image = sizes(&elf)?;
    println!(
        "firmware: {BINARY} .text {} B, .rodata {} B, .data+.bss {} B",
        image.text, image.rodata, image.ram
    );

    let started = Instant::now();
    let probe_p256 = build_probe(&dir, &[])?;
    let probe_all = build_probe(&dir, &["--features", "all-algorithms"])?;
    println!(
        "firmware: {PROBE} builds took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let device = device::run(&dir)?;
    let device_dir = dir.join("target").join("device");
    std::fs::create_dir_all(&device_dir)
        .map_err(|e| Failure(format!("{}: {e}", device_dir.display())))?;
    let first = stage1::run(&dir, &device_dir)?;
    let chain = chain::run(&dir, &first.logged_elf, &first.quiet_elf)?;
    let migration = migration::run(&dir, &device_dir)?;
    let report = Report {
        tests,
        probe_p256,
        probe_all,
        device,
        stage1: first.quiet,
        stage1_logged: first.logged,
        chain,
        migration,
    };
    print_summary(&report);
    println!("firmware: done in {:.1} s", total.elapsed().as_secs_f64());
    Ok(report)
}

/// Builds the size probe with `extra` cargo arguments and measures it (before the next
/// build replaces the binary).
fn build_probe(dir: &Path, extra: &[&str]) -> Result<Sizes, Failure> {
    let mut args = vec!["build", "--release", "--package", PROBE];
    args.extend_from_slice(extra);
    process::run(&mut debian_cargo(dir, &args))?;
    let elf = elf_path(dir, PROBE);
    require(&elf, "size probe image")?;
    let berkeley = process::output(command("arm-none-eabi-size").arg(&elf))?;
    print!("{}", String::from_utf8_lossy(&berkeley.stdout));
    sizes(&elf)
}

fn print_summary(r: &Report) {
    let kib = |b: u64| b as f64 / 1024.0;
    let (p, a) = (r.probe_p256, r.probe_all);
    println!(
        "firmware: {PROBE} (authenticate + invoke, FlashStorage), P-256 only: \
         .text {} B ({:.1} KiB), .rodata {} B, .data+.bss {} B",
        p.text,
        kib(p.text),
        p.rodata,
        p.ram
    );
    println!(
        "firmware: {PROBE}, P-256 + Ed25519 + HMAC: .text {} B ({:.1} KiB), .rodata {} B \
         (P-256 only saves {} B of .text, {} B of .rodata)",
        a.text,
        kib(a.text),
        a.rodata,
        a.text.saturating_sub(p.text),
        a.rodata.saturating_sub(p.rodata)
    );
    println!(
        "firmware: first stage of the updatable bootloader (the SUIT envelope: COSE_Sign1 \
         Ed25519 with salty, manifest digest, sequence number, image digest; SHA-256 compact; \
         the choice table, flash file, copy and jump), no diagnostics: .text + vectors {} B \
         ({:.1} KiB; budget for a verifying bootloader {} B), .rodata {} B, .data+.bss {} B; \
         with its stage1: lines {} B ({:.1} KiB)",
        r.stage1.text,
        kib(r.stage1.text),
        stage1::BUDGET,
        r.stage1.rodata,
        r.stage1.ram,
        r.stage1_logged.text,
        kib(r.stage1_logged.text),
    );
    let c = &r.chain;
    println!(
        "firmware: chained boot: second stage (ES256 bootloader in its RAM window) .text {} B \
         ({:.1} KiB), .rodata {} B, image {} B; first stage to hand-over (confirmed v1) {} \
         instr; power cuts {} points, {} restarted a verified chain",
        c.stage2.text,
        kib(c.stage2.text),
        c.stage2.rodata,
        c.stage2_len,
        c.stage1_boot,
        c.cuts.0,
        c.cuts.1
    );
    let d = &r.device;
    for (name, b) in [("ES256", d.boot_p256), ("Ed25519", d.boot_ed25519)] {
        println!(
            "firmware: bootloader (suitcase-boot, flash file, RAM load), {name}: .text {} B \
             ({:.1} KiB), .rodata {} B, .data+.bss {} B",
            b.text,
            kib(b.text),
            b.rodata,
            b.ram
        );
    }
    let top: Vec<String> = d
        .boot_by_crate
        .iter()
        .take(12)
        .map(|(k, b)| format!("{k} {b}"))
        .collect();
    println!(
        "firmware: bootloader ES256 .text by crate (B): {}",
        top.join(", ")
    );
    println!(
        "firmware: bootloader peak stack: ES256 {} B (update boot), Ed25519 {} B (verified \
         boot); application {} B (install)",
        d.stack_boot_p256, d.stack_boot_ed25519, d.stack_app
    );
    println!(
        "firmware: application with the update agent: .text {} B ({:.1} KiB), .rodata {} B; \
         verified boot of its {} B image: ES256 {} instr, Ed25519 {} instr",
        d.app.text,
        kib(d.app.text),
        d.app.rodata,
        d.image_len,
        d.verified_boot_p256,
        d.verified_boot_ed25519
    );
    println!(
        "firmware: timed in the application: COSE verify ES256 {} instr (authenticate {}), \
         Ed25519 {} instr (authenticate {})",
        d.verify_p256, d.authenticate_p256, d.verify_ed25519, d.authenticate_ed25519
    );
    if let (Some(verify), Some(decode), Some(harness), Some(own)) = (
        r.test(EXAMPLE3_VERIFY),
        r.test(EXAMPLE3_DECODE),
        r.test(EXAMPLE3_HARNESS),
        r.processor_own_cost(),
    ) {
        let share = |n: u64, of: u64| 100.0 * n as f64 / of.max(1) as f64;
        let with_harness = own + harness.instructions;
        println!(
            "firmware: the processor's own cost (example 3: full - (verify - its decodes {}) - \
             hashing - harness {}) {own} instr = {:.2} % of an ES256 verify, {:.2} % of an \
             Ed25519 verify (goal: <= 2 %); with the harness counted in, {with_harness} instr = \
             {:.2} % of Ed25519",
            decode.instructions,
            harness.instructions,
            share(own, verify.instructions),
            share(own, d.verify_ed25519),
            share(with_harness, d.verify_ed25519)
        );
    }
    let m = &r.migration;
    println!(
        "firmware: migration build (ES256 + Ed25519 + HSS-LMS): bootloader .text {} B, \
         .rodata {} B; application .text {} B; HSS-LMS-only bootloader .text {} B, .rodata {} B",
        m.bootloader.text,
        m.bootloader.rodata,
        m.app.text,
        m.bootloader_hss.text,
        m.bootloader_hss.rodata
    );
    for v in &m.verify {
        println!(
            "firmware: migration build, {}: COSE verify {} instr, {} B stack; authenticate {} \
             instr; verified boot {} instr, bootloader peak stack {} B",
            v.name, v.instructions, v.stack, v.authenticate, v.boot, v.boot_stack
        );
    }
    println!(
        "firmware: trust store on the device: v{} reached; store-update power cuts: {} \
         points, {} ended on a whole store v2 and booted",
        m.steps
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" → v"),
        m.cuts.0,
        m.cuts.1
    );
    if let Some(w) = r.worst_processor_stack() {
        println!(
            "firmware: worst-case stack of the processor tests: {} B ({})",
            w.stack, w.name
        );
    }
    if let (Some(full), Some(verify)) = (r.test(EXAMPLE3_FULL), r.test(EXAMPLE3_VERIFY)) {
        let (f, v) = (full.instructions as f64, verify.instructions as f64);
        println!(
            "firmware: example 3 on the device: authenticate + update {} instr \
             (authenticate alone {}), COSE verify alone {} instr; full / verify = {:.3}, \
             (full - verify) / verify = {:.2} %",
            full.instructions,
            r.test(EXAMPLE3_AUTHENTICATE)
                .map_or_else(|| "-".to_owned(), |a| a.instructions.to_string()),
            verify.instructions,
            f / v,
            100.0 * (f - v) / v
        );
    }
}

/// The passing test lines of a QEMU run.
pub fn parse_tests(output: &str) -> Vec<Measured> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, rest) = rest.split_once(" ... ok (")?;
            let (instructions, rest) = rest.split_once(" instr, ")?;
            let stack = rest.strip_suffix(" B stack)")?;
            Some(Measured {
                name: name.to_owned(),
                instructions: instructions.parse().ok()?,
                stack: stack.parse().ok()?,
            })
        })
        .collect()
}

fn elf_path(dir: &Path, binary: &str) -> PathBuf {
    dir.join("target").join(TARGET).join("release").join(binary)
}

/// The size of one section, from `arm-none-eabi-size -A` (0 when absent).
fn section(elf: &Path, name: &str) -> Result<u64, Failure> {
    let sysv = process::output(command("arm-none-eabi-size").arg("-A").arg(elf))?;
    Ok(String::from_utf8_lossy(&sysv.stdout)
        .lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some(name)).then(|| cols.next()?.parse::<u64>().ok())?
        })
        .unwrap_or(0))
}

/// Section sizes from `arm-none-eabi-size -A`.
fn sizes(elf: &Path) -> Result<Sizes, Failure> {
    Ok(Sizes {
        text: section(elf, ".text")?,
        rodata: section(elf, ".rodata")?,
        ram: section(elf, ".data")? + section(elf, ".bss")?,
    })
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
