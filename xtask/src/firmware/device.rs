//! `cargo xtask firmware`, the device half: the bootloader (`firmware/bootloader`) and the
//! application with the update agent (`firmware/app`) on QEMU mps2-an386, over a flash
//! file that survives QEMU runs (docs/boot.md §10).
//!
//! - builds both with ES256, then both with Ed25519, and measures them;
//! - makes the images (one application build + a 16-byte trailer: A, B, and C whose
//!   self-test fails), their envelopes (example 2 re-signed: install by fetch, validate
//!   by image-match, invoke) and a factory flash file (image A in the primary slot);
//! - update and confirm; an update whose self-test fails, reverted; a staged image altered
//!   in the flash file, refused;
//! - the COSE verification and `authenticate` timed inside the application (ES256 and
//!   Ed25519), and a verified boot with the Ed25519 bootloader;
//! - power cuts: SysTick under `-icount shift=0` ends QEMU after N ticks (40 instructions
//!   each), in the install (the agent staging B) and in the swap and confirm; after
//!   each cut QEMU restarts on the same file until B runs confirmed, and the first boot
//!   after the cut must hand over a verified image; likewise in the revert of C, until A
//!   runs permanent again. Every other point also cuts the first restart.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use suitcase_cose::{Algorithm, SigningKey, ed25519_dalek, signing_key_from_pem};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, PLACEHOLDER_0};

use suitcase_trust::role;

use super::{Sizes, debian_cargo, elf_path, sizes, trust};
use crate::process::{self, Failure, command};

/// The flash file's geometry (board::LAYOUT, board::TRUST_AT, board::FLASH_SIZE).
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Sectors of the primary slot (the secondary has one more).
    primary_sectors: usize,
    /// Slot header (envelope area) before the image.
    pub header: usize,
}

/// The erase sector.
pub const SECTOR: usize = 4096;
/// The bootloader and application builds with one algorithm.
pub const STANDARD: Geometry = Geometry {
    primary_sectors: 32,
    header: 1024,
};
/// The migration build (`board/migration`): room for HSS-LMS envelopes and three
/// verifiers.
pub const MIGRATION: Geometry = Geometry {
    primary_sectors: 48,
    header: SECTOR,
};

impl Geometry {
    /// The primary slot.
    pub fn primary_at(&self) -> usize {
        4 * SECTOR
    }
    /// The secondary slot.
    pub fn secondary_at(&self) -> usize {
        (4 + self.primary_sectors) * SECTOR
    }
    /// The trust-store area (two copies of one sector).
    pub fn trust_at(&self) -> usize {
        (4 + 2 * self.primary_sectors + 1) * SECTOR
    }
    /// The flash file's size.
    pub fn size(&self) -> usize {
        self.trust_at() + 2 * SECTOR
    }
    /// Largest image the primary slot takes.
    pub fn max_image(&self) -> usize {
        self.primary_sectors * SECTOR - self.header
    }
}
/// Guest instructions per SysTick tick.
const TICK: u64 = 40;
/// Width of the `cut=` argument: the same command line, hence the same instructions, in
/// the measuring run and in every cut run.
const CUT_DIGITS: usize = 10;
/// Power-cut points: in the agent's install (its flash writes), in the bootloader's swap
/// (its flash writes), in the confirm, and spread over each whole run.
const CUTS_INSTALL: u64 = 60;
const CUTS_SWAP: u64 = 90;
const CUTS_CONFIRM: u64 = 20;
const CUTS_SPREAD: u64 = 15;
/// And in the revert of an image whose self-test failed.
const CUTS_REVERT: u64 = 40;
/// QEMU runs allowed after a cut before the phase must be done (install: stage again,
/// swap, confirm; a second cut adds one).
const RECOVERY_RUNS: usize = 5;
/// The seed of the Ed25519 test key (a test key: the seed is public).
const ED25519_SEED: [u8; 32] = *b"suitcase firmware ed25519 seed!!";
/// Exit status of the application when it refused an update.
pub(super) const REFUSED: i32 = 23;

/// What the device half measured.
#[derive(Debug, Clone, Default)]
pub struct DeviceReport {
    /// Bootloader sections, ES256 build.
    pub boot_p256: Sizes,
    /// Bootloader sections, Ed25519 build.
    pub boot_ed25519: Sizes,
    /// The application image (with the agent).
    pub app: Sizes,
    /// Instructions from reset to the hand-over of a verified boot of image A, ES256.
    pub verified_boot_p256: u64,
    /// The same with the Ed25519 bootloader.
    pub verified_boot_ed25519: u64,
    /// Image A's length.
    pub image_len: usize,
    /// Power-cut points tried, and how many were followed by a verified boot.
    pub cuts: (usize, usize),
    /// Peak stack of the bootloader (ES256, the update boot: verify both slots, swap,
    /// verify) and of the Ed25519 one (verified boot), and of the application (install).
    pub stack_boot_p256: u64,
    /// See `stack_boot_p256`.
    pub stack_boot_ed25519: u64,
    /// See `stack_boot_p256`.
    pub stack_app: u64,
    /// COSE verification alone, ES256, instructions (key decoded before).
    pub verify_p256: u64,
    /// `authenticate`, ES256.
    pub authenticate_p256: u64,
    /// COSE verification alone, Ed25519.
    pub verify_ed25519: u64,
    /// `authenticate`, Ed25519.
    pub authenticate_ed25519: u64,
    /// The ES256 bootloader's `.text` by crate.
    pub boot_by_crate: Vec<(String, u64)>,
}

/// `.text` of `elf` by crate: the code symbols (`arm-none-eabi-nm -S -C`, types `t`/`T`)
/// summed by the first path segment of their demangled name (`<a::X as b::Y>::f` counts
/// for `a`), largest first. After LTO a function inlined into another counts for the
/// caller's crate, so this is a guide, not an exact split.
pub fn text_by_crate(elf: &Path) -> Result<Vec<(String, u64)>, Failure> {
    let nm = process::output(command("arm-none-eabi-nm").args(["-S", "-C"]).arg(elf))?;
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for line in String::from_utf8_lossy(&nm.stdout).lines() {
        let mut cols = line.splitn(4, ' ');
        let (Some(_), Some(size), Some(kind), Some(name)) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let Ok(size) = u64::from_str_radix(size, 16) else {
            continue;
        };
        if !kind.eq_ignore_ascii_case("t") {
            continue;
        }
        let name = name.trim_start_matches(['<', '&']);
        let name = ["*const ", "*mut ", "dyn ", "mut "]
            .iter()
            .fold(name, |n, p| n.strip_prefix(p).unwrap_or(n));
        let krate = match name.split_once("::") {
            Some((k, _)) if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => k,
            _ => "(no crate path: builtins, memcpy, ...)",
        };
        *by.entry(krate.to_owned()).or_default() += size;
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    Ok(v)
}

/// One QEMU run: exit status and console output.
pub(super) struct Run {
    pub(super) status: i32,
    pub(super) out: String,
}

impl Run {
    /// The `boot:` line's sequence number and whether it was a trial.
    pub(super) fn booted(&self) -> Option<(u64, bool)> {
        let l = self.out.lines().find(|l| l.starts_with("boot: verified"))?;
        let seq = l.strip_prefix("boot: verified sequence ")?;
        let (n, rest) = seq.split_once(' ')?;
        Some((n.parse().ok()?, rest.starts_with("(trial)")))
    }

    /// Whether the application started and reported the sequence number the bootloader
    /// verified: the jump reached the verified image, and it runs.
    pub(super) fn app_runs_booted(&self) -> bool {
        let app = self
            .out
            .lines()
            .find_map(|l| l.split_once(": running sequence "))
            .and_then(|(_, r)| r.split(' ').next()?.parse::<u64>().ok());
        app.is_some() && app == self.booted().map(|(seq, _)| seq)
    }

    /// Ticks `a..b` of the `flash writes at ticks a..b` the line starting with `prefix`
    /// reports.
    pub(super) fn window(&self, prefix: &str) -> Option<(u64, u64)> {
        let (_, rest) = self
            .out
            .lines()
            .filter(|l| l.starts_with(prefix))
            .find_map(|l| l.split_once("flash writes at ticks "))?;
        let (a, rest) = rest.split_once("..")?;
        let b: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    /// The peak stack the line starting with `prefix` reports.
    pub(super) fn stack(&self, prefix: &str) -> Option<u64> {
        let (_, rest) = self
            .out
            .lines()
            .filter(|l| l.starts_with(prefix))
            .find_map(|l| l.split_once("peak stack "))?;
        rest.strip_suffix(" B")?.parse().ok()
    }

    /// The number after `marker` in the output.
    pub(super) fn number_after(&self, marker: &str) -> Option<u64> {
        let (_, rest) = self.out.split_once(marker)?;
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        n.parse().ok()
    }
}

/// Exit statuses (firmware/bootloader and firmware/app).
pub(super) const CUT: i32 = 98;
pub(super) const CONFIRMED: i32 = 20;
const SELF_TEST_FAILED: i32 = 21;
pub(super) const STAGED: i32 = 22;

/// The work folder and the two ELF files every run uses.
pub(super) struct Bench {
    pub(super) work: PathBuf,
    pub(super) bootloader: PathBuf,
}

impl Bench {
    /// Runs the bootloader in QEMU on `work/flash.img`, with `cut` ticks (0: none) and
    /// the update files if `update`.
    pub(super) fn run(&self, bootloader: &Path, cut: u64, update: bool) -> Result<Run, Failure> {
        let files = if update {
            ",arg=update=update.suit,arg=payload=update.bin"
        } else {
            ""
        };
        self.qemu(bootloader, cut, files)
    }

    /// A run in which the (permanent) application times the COSE verification and
    /// `authenticate` of `update.suit`: (verify, authenticate) instructions.
    fn measure(&self, bootloader: &Path) -> Result<(u64, u64), Failure> {
        let run = self.qemu(bootloader, 0, ",arg=update=update.suit,arg=measure=1")?;
        print!("{}", run.out);
        match (
            run.status,
            run.number_after("COSE verify "),
            run.number_after("authenticate "),
        ) {
            (0, Some(v), Some(a)) => Ok((v, a)),
            _ => Err(Failure(format!(
                "firmware device: the measuring run failed (status {})",
                run.status
            ))),
        }
    }

    /// QEMU with the bootloader, `cut` and further semihosting arguments `args`.
    pub(super) fn qemu(&self, bootloader: &Path, cut: u64, args: &str) -> Result<Run, Failure> {
        let cfg =
            format!("enable=on,target=native,arg=flash=flash.img,arg=cut={cut:0CUT_DIGITS$}{args}");
        // `timeout`: a guest that never exits is a failure, not a hang.
        let out = Command::new("timeout")
            .current_dir(&self.work)
            .args(["60", "qemu-system-arm", "-machine", "mps2-an386"])
            .args(["-cpu", "cortex-m4", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", &cfg, "-icount", "shift=0", "-kernel"])
            .arg(bootloader)
            .output()
            .map_err(|e| Failure(format!("cannot start qemu-system-arm: {e}")))?;
        Ok(Run {
            status: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }

    pub(super) fn put_flash(&self, bytes: &[u8]) -> Result<(), Failure> {
        write(&self.work.join("flash.img"), bytes)
    }

    pub(super) fn flash(&self) -> Result<Vec<u8>, Failure> {
        let p = self.work.join("flash.img");
        fs::read(&p).map_err(|e| Failure(format!("{}: {e}", p.display())))
    }

    pub(super) fn set_update(&self, envelope: &[u8], image: &[u8]) -> Result<(), Failure> {
        write(&self.work.join("update.suit"), envelope)?;
        write(&self.work.join("update.bin"), image)
    }

    /// A run that must end with `status` after booting `seq` (trial or not).
    pub(super) fn expect(
        &self,
        update: bool,
        seq: u64,
        trial: bool,
        status: i32,
    ) -> Result<Run, Failure> {
        let run = self.run(&self.bootloader, 0, update)?;
        print!("{}", run.out);
        if run.booted() != Some((seq, trial)) || !run.app_runs_booted() || run.status != status {
            return Err(Failure(format!(
                "firmware device: expected a {} boot of sequence {seq} ending with status \
                 {status}, got {:?} and status {}",
                if trial { "trial" } else { "permanent" },
                run.booted(),
                run.status
            )));
        }
        Ok(run)
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    fs::write(path, bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Builds `package` with `extra` cargo arguments and copies its ELF to
/// `work/<package>-<name>`.
pub fn build_kept(
    dir: &Path,
    work: &Path,
    package: &str,
    name: &str,
    extra: &[&str],
) -> Result<PathBuf, Failure> {
    let mut args = vec!["build", "--release", "--package", package];
    args.extend_from_slice(extra);
    process::run(&mut debian_cargo(dir, &args))?;
    let kept = work.join(format!("{package}-{name}"));
    fs::copy(elf_path(dir, package), &kept)
        .map_err(|e| Failure(format!("{}: {e}", kept.display())))?;
    Ok(kept)
}

/// The loadable bytes of `elf` (`objcopy -O binary`: vector table, code, constants, the
/// load image of `.data`).
pub fn binary(elf: &Path) -> Result<Vec<u8>, Failure> {
    let bin = elf.with_extension("bin");
    process::run(
        command("arm-none-eabi-objcopy")
            .args(["-O", "binary"])
            .arg(elf)
            .arg(&bin),
    )?;
    fs::read(&bin).map_err(|e| Failure(format!("{}: {e}", bin.display())))
}

/// Builds, measures and runs the device half.
pub fn run(dir: &Path) -> Result<DeviceReport, Failure> {
    let work = dir.join("target").join("device");
    fs::create_dir_all(&work).map_err(|e| Failure(format!("{}: {e}", work.display())))?;
    let mut report = DeviceReport::default();

    // One package, one feature set per build (README: features unify across a build);
    // each ELF is copied out before the next build replaces it.
    let started = Instant::now();
    const ED25519: &[&str] = &["--no-default-features", "--features", "ed25519"];
    let app_elf = build_kept(dir, &work, "app", "p256", &[])?;
    let app_ed_elf = build_kept(dir, &work, "app", "ed25519", ED25519)?;
    let boot_p256 = build_kept(dir, &work, "bootloader", "p256", &[])?;
    let boot_ed25519 = build_kept(dir, &work, "bootloader", "ed25519", ED25519)?;
    report.app = sizes(&app_elf)?;
    let app = binary(&app_elf)?;
    let app_ed = binary(&app_ed_elf)?;
    let builds = [sizes(&boot_p256)?, sizes(&boot_ed25519)?];
    report.boot_by_crate = text_by_crate(&work.join("bootloader-p256"))?;
    report.boot_p256 = builds[0];
    report.boot_ed25519 = builds[1];
    println!(
        "firmware: bootloader and app builds took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let images = [
        tagged(&app, b"A", true),
        tagged(&app, b"B", true),
        tagged(&app, b"C", false),
    ];
    report.image_len = images[0].len();
    fits(&STANDARD, images[0].len())?;
    let es256 = es256_key()?;
    let ed25519_key = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&ED25519_SEED));
    let ed25519 = Signer::Sign(ed25519_key.clone(), Algorithm::EdDsa);
    // The factory trust stores: one key that is both the root and the operator (the
    // smallest deployment; every anchor costs a verification per signature block, and
    // these envelopes carry no kid).
    let Signer::Sign(es256_signing, _) = &es256 else {
        return Err(Failure("firmware device: the ES256 signer is a key".into()));
    };
    let store_es256 = single_key_store(trust::Key::Cose(es256_signing.clone(), b"factory"))?;
    let store_ed25519 = single_key_store(trust::Key::Cose(ed25519_key, b"factory"))?;
    let env_a = envelope(&images[0], 1, es256.clone())?;
    let env_b = envelope(&images[1], 2, es256.clone())?;
    let env_c = envelope(&images[2], 2, es256)?;
    let factory_a = factory(&STANDARD, &env_a, &images[0], &store_es256)?;

    let bench = Bench {
        bootloader: work.join("bootloader-p256"),
        work,
    };
    let started = Instant::now();
    println!("firmware device: update and confirm (A → B)");
    bench.put_flash(&factory_a)?;
    bench.set_update(&env_b, &images[1])?;
    let first = bench.expect(true, 1, false, STAGED)?;
    report.verified_boot_p256 = first
        .number_after("hand-over at tick ")
        .map_or(0, |t| t * TICK);
    report.stack_app = first.stack("app:").unwrap_or(0);
    let swap = bench.expect(true, 2, true, CONFIRMED)?;
    report.stack_boot_p256 = swap.stack("boot:").unwrap_or(0);
    bench.expect(false, 2, false, 0)?;

    println!("firmware device: an update whose self-test fails is reverted (A → C → A)");
    bench.put_flash(&factory_a)?;
    bench.set_update(&env_c, &images[2])?;
    bench.expect(true, 1, false, STAGED)?;
    bench.expect(true, 2, true, SELF_TEST_FAILED)?;
    bench.expect(false, 1, false, 0)?;

    println!("firmware device: a staged image altered in flash is refused (A keeps running)");
    bench.put_flash(&factory_a)?;
    bench.set_update(&env_b, &images[1])?;
    bench.expect(true, 1, false, STAGED)?;
    let mut flash = bench.flash()?;
    // One bit of the staged image's last byte (secondary slot, unit 1, after the header).
    let last = STANDARD.secondary_at() + SECTOR + STANDARD.header + images[1].len() - 1;
    flash[last] ^= 0x01;
    bench.put_flash(&flash)?;
    let refused = bench.run(&bench.bootloader, 0, false)?;
    print!("{}", refused.out);
    if refused.booted() != Some((1, false)) || !refused.app_runs_booted() || refused.status != 0 {
        return Err(Failure(format!(
            "firmware device: the altered staged image was not refused (status {})",
            refused.status
        )));
    }

    println!("firmware device: signature verification and authenticate timed in the application");
    bench.put_flash(&factory_a)?;
    bench.set_update(&env_b, &images[1])?;
    (report.verify_p256, report.authenticate_p256) = bench.measure(&bench.bootloader)?;
    let image_ed = tagged(&app_ed, b"A-ed", true);
    let env_ed = envelope(&image_ed, 1, ed25519.clone())?;
    bench.put_flash(&factory(&STANDARD, &env_ed, &image_ed, &store_ed25519)?)?;
    bench.set_update(&env_ed, &image_ed)?;
    (report.verify_ed25519, report.authenticate_ed25519) =
        bench.measure(&bench.work.join("bootloader-ed25519"))?;

    println!("firmware device: verified boot with the Ed25519 bootloader");
    let env_a_ed = envelope(&images[0], 1, ed25519)?;
    bench.put_flash(&factory(&STANDARD, &env_a_ed, &images[0], &store_ed25519)?)?;
    let run = bench.run(&bench.work.join("bootloader-ed25519"), 0, false)?;
    print!("{}", run.out);
    if run.booted() != Some((1, false)) || run.status != 0 {
        return Err(Failure(format!(
            "firmware device: the Ed25519 bootloader did not boot image A (status {})",
            run.status
        )));
    }
    report.verified_boot_ed25519 = run
        .number_after("hand-over at tick ")
        .map_or(0, |t| t * TICK);
    report.stack_boot_ed25519 = run.stack("boot:").unwrap_or(0);
    println!(
        "firmware device: scenarios took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    report.cuts = power_cuts(
        &bench,
        &factory_a,
        (&env_c, &images[2]),
        (&env_b, &images[1]),
    )?;
    println!(
        "firmware device: power cuts took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// Where a power-cut phase starts and when it is over.
pub(super) struct Phase {
    /// `install`, `swap`, `revert`.
    pub(super) name: &'static str,
    /// The flash file before the phase's run.
    pub(super) start: Vec<u8>,
    /// Whether its runs get the update files.
    pub(super) update: bool,
    /// The state the phase must reach: (sequence number, trial) of a boot, or the
    /// confirm status.
    pub(super) done: fn(&Run) -> bool,
    /// (first tick, last tick, points) to spread cuts over.
    pub(super) spans: Vec<(u64, u64, u64)>,
    /// The clean run's last tick (second cuts are spread up to it).
    pub(super) end: u64,
}

impl Phase {
    /// The cut points: each span's points evenly over it, sorted, without repeats.
    pub(super) fn ticks(&self) -> Vec<u64> {
        let mut ticks: Vec<u64> = self
            .spans
            .iter()
            .flat_map(|&(a, b, n)| (0..n).map(move |i| a + (b + 1 - a) * i / n))
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }
}

/// B runs confirmed, or permanent.
fn b_done(r: &Run) -> bool {
    r.status == CONFIRMED || r.booted() == Some((2, false))
}

/// A runs permanent again.
fn a_back(r: &Run) -> bool {
    r.booted() == Some((1, false))
}

/// The power-cut loop; (points, points followed by a verified boot).
fn power_cuts(
    bench: &Bench,
    factory: &[u8],
    update_c: (&[u8], &[u8]),
    update_b: (&[u8], &[u8]),
) -> Result<(usize, usize), Failure> {
    // Clean runs first: where the flash writes fall, in ticks. The revert's start is the
    // file after C's failed trial (without the update files: A, once back, would stage
    // C again).
    bench.put_flash(factory)?;
    bench.set_update(update_c.0, update_c.1)?;
    bench.run(&bench.bootloader, 0, true)?;
    bench.run(&bench.bootloader, 0, true)?;
    let failed_trial = bench.flash()?;
    let revert = bench.run(&bench.bootloader, 0, false)?;
    bench.set_update(update_b.0, update_b.1)?;
    bench.put_flash(factory)?;
    let install = bench.run(&bench.bootloader, 0, true)?;
    let staged = bench.flash()?;
    let swap = bench.run(&bench.bootloader, 0, true)?;
    let (
        Some(w_install),
        Some(end_install),
        Some(w_swap),
        Some(w_confirm),
        Some(end_swap),
        Some(w_revert),
        Some(end_revert),
    ) = (
        install.window("app:"),
        install.number_after("exit at tick "),
        swap.window("boot:"),
        swap.window("app:"),
        swap.number_after("exit at tick "),
        revert.window("boot:"),
        revert.number_after("exit at tick "),
    )
    else {
        return Err(Failure(format!(
            "firmware device: clean runs without tick stamps:\n{}{}{}",
            install.out, swap.out, revert.out
        )));
    };
    println!(
        "firmware device: clean runs (1 tick = {TICK} instructions): install writes at ticks \
         {}..{} of {end_install}; swap writes {}..{}, confirm {}..{} of {end_swap}; revert \
         writes {}..{} of {end_revert}",
        w_install.0,
        w_install.1,
        w_swap.0,
        w_swap.1,
        w_confirm.0,
        w_confirm.1,
        w_revert.0,
        w_revert.1
    );
    let phases = [
        Phase {
            name: "install",
            start: factory.to_vec(),
            update: true,
            done: b_done,
            spans: vec![
                (w_install.0, w_install.1, CUTS_INSTALL),
                (1, end_install, CUTS_SPREAD),
            ],
            end: end_install,
        },
        Phase {
            name: "swap",
            start: staged,
            update: true,
            done: b_done,
            spans: vec![
                (w_swap.0, w_swap.1, CUTS_SWAP),
                (w_confirm.0, w_confirm.1, CUTS_CONFIRM),
                (1, end_swap, CUTS_SPREAD),
            ],
            end: end_swap,
        },
        Phase {
            name: "revert",
            start: failed_trial,
            update: false,
            done: a_back,
            spans: vec![(w_revert.0, w_revert.1, CUTS_REVERT)],
            end: end_revert,
        },
    ];

    let (mut points, mut booted, mut seconds) = (0, 0, 0);
    let mut failures = Vec::new();
    for phase in &phases {
        let ticks = phase.ticks();
        let before = booted;
        for (index, &tick) in ticks.iter().enumerate() {
            bench.put_flash(&phase.start)?;
            let cut = bench.run(&bench.bootloader, tick, phase.update)?;
            // Every other point: the first run after the cut is cut again, at a point
            // spread over the whole run.
            let second = (index % 2 == 1).then(|| 1 + tick.wrapping_mul(7919) % phase.end);
            seconds += usize::from(second.is_some());
            match recover(bench, phase, &cut, second) {
                Ok(verified) => booted += usize::from(verified),
                Err(why) => {
                    failures.push(format!("cut in the {} at tick {tick}: {why}", phase.name))
                }
            }
        }
        println!(
            "firmware device: {} cuts in the {}: {} booted a verified image",
            ticks.len(),
            phase.name,
            booted - before
        );
        points += ticks.len();
    }
    println!(
        "firmware device: {seconds} of the points cut a second time, in the first run after \
         the cut"
    );
    println!("power cuts: {points} points, {booted} booted a verified image");
    if !failures.is_empty() || booted != points {
        return Err(Failure(format!(
            "firmware device: power cuts failed:\n{}",
            failures.join("\n")
        )));
    }
    Ok((points, booted))
}

/// After a cut run: QEMU again on the same flash until the phase is done. Whether the
/// first boot after the cut handed over a verified image; an error if the phase did not
/// complete or a run failed.
pub(super) fn recover(
    bench: &Bench,
    phase: &Phase,
    cut: &Run,
    second: Option<u64>,
) -> Result<bool, String> {
    if cut.status != CUT && (phase.done)(cut) {
        // The cut fell after the end of the run: nothing was cut.
        return Ok(true);
    }
    for i in 0..RECOVERY_RUNS {
        let again = if i == 0 { second.unwrap_or(0) } else { 0 };
        let run = bench
            .run(&bench.bootloader, again, phase.update)
            .map_err(|f| f.0)?;
        if run.out.contains("violations") && !run.out.contains("violations 0") {
            return Err(format!("flash rule violated:\n{}", run.out));
        }
        if run.status == CUT && again != 0 {
            // Cut again (before or after the hand-over): the next run is the boot that
            // must verify and run.
            continue;
        }
        if !run.app_runs_booted() {
            return Err(format!(
                "no verified boot (status {}):\n{}",
                run.status, run.out
            ));
        }
        if (phase.done)(&run) {
            return Ok(true);
        }
        if ![STAGED, CUT, 0].contains(&run.status) {
            return Err(format!("status {}:\n{}", run.status, run.out));
        }
    }
    Err(format!("not done after {RECOVERY_RUNS} runs"))
}

/// The application image with its trailer: name (8 bytes), self-test verdict, magic.
pub(super) fn tagged(app: &[u8], name: &[u8], passes: bool) -> Vec<u8> {
    let mut image = app.to_vec();
    let mut tag = [b' '; 8];
    tag[..name.len()].copy_from_slice(name);
    image.extend_from_slice(&tag);
    image.extend_from_slice(if passes { b"pass" } else { b"fail" });
    image.extend_from_slice(b"SCt1");
    image
}

/// The published ES256 test key.
pub(super) fn es256_key() -> Result<Signer, Failure> {
    let path = vectors::dir().join(vectors::SPEC).join("private_key.pem");
    let pem = fs::read_to_string(&path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    let key =
        signing_key_from_pem(&pem).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    Ok(Signer::Sign(key, Algorithm::Es256))
}

/// Example 2 (fetch + install, validate by image-match, invoke) re-signed for `image`
/// with sequence number `seq`.
pub(super) fn envelope(image: &[u8], seq: u64, signer: Signer) -> Result<Vec<u8>, Failure> {
    let path = vectors::dir().join(vectors::SPEC).join("example2.suit");
    let example = fs::read(&path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    let env = Rewrite {
        images: [(PLACEHOLDER_0.to_vec(), image.to_vec())]
            .into_iter()
            .collect(),
        sequence_number: Some(seq),
        signers: vec![signer],
    }
    .apply(&example)
    .map_err(|e| Failure(format!("firmware device: re-signing example 2: {e}")))?;
    Ok(env)
}

/// Whether an image of `len` bytes fits the primary slot of `geo`.
pub fn fits(geo: &Geometry, len: usize) -> Result<(), Failure> {
    if len > geo.max_image() {
        return Err(Failure(format!(
            "firmware device: the application image ({len} B) does not fit the slot ({} B)",
            geo.max_image()
        )));
    }
    Ok(())
}

/// A first trust store with `key` as its only key, root and operator (threshold 1),
/// signed by it.
pub(super) fn single_key_store(mut k: trust::Key) -> Result<Vec<u8>, Failure> {
    let family = k.family();
    trust::store(
        1,
        vec![k.spec(role::ROOT | role::OPERATOR)],
        1,
        vec![trust::operators(1, family)],
        &mut [&mut k],
    )
}

/// The flash file as a factory programmer leaves it: everything erased but the primary
/// slot, holding header, envelope and image (docs/boot.md §3), and both copies of the
/// trust-store area, holding `store` (docs/trust-store.md).
pub fn factory(
    geo: &Geometry,
    envelope: &[u8],
    image: &[u8],
    store: &[u8],
) -> Result<Vec<u8>, Failure> {
    if 32 + envelope.len() > geo.header {
        return Err(Failure(format!(
            "firmware device: envelope of {} B does not fit the {} B slot header",
            envelope.len(),
            geo.header
        )));
    }
    fits(geo, image.len())?;
    let mut flash = vec![0xFF; geo.size()];
    trust::provision(&mut flash, geo.trust_at(), store)?;
    let slot = &mut flash[geo.primary_at()..];
    slot[..32].fill(0);
    slot[..4].copy_from_slice(b"SCs1");
    let len = |n: usize| u32::try_from(n).map(u32::to_le_bytes);
    let lens = len(envelope.len()).and_then(|e| Ok((e, len(image.len())?)));
    let (e, i) = lens.map_err(|_| Failure("firmware device: length overflow".into()))?;
    slot[4..8].copy_from_slice(&e);
    slot[8..12].copy_from_slice(&i);
    slot[32..32 + envelope.len()].copy_from_slice(envelope);
    slot[geo.header..geo.header + image.len()].copy_from_slice(image);
    Ok(flash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "boot: verified sequence 2 (trial), 70688 B; flash writes at ticks 5..9; \
                       hand-over at tick 12; peak stack 10592 B\n\
                       app B       : running sequence 2 on trial\n\
                       app: self-test passed, confirmed\n\
                       app: flash writes at ticks 20..30; exit at tick 31, flash rule \
                       violations 0; peak stack 2112 B\n";

    fn run(out: &str) -> Run {
        Run {
            status: CONFIRMED,
            out: out.to_owned(),
        }
    }

    #[test]
    fn parses_the_boot_and_app_lines() {
        let r = run(RUN);
        assert_eq!(r.booted(), Some((2, true)));
        assert!(r.app_runs_booted());
        assert_eq!(r.window("boot:"), Some((5, 9)));
        assert_eq!(r.window("app:"), Some((20, 30)));
        assert_eq!(r.stack("boot:"), Some(10592));
        assert_eq!(r.stack("app:"), Some(2112));
        assert_eq!(r.number_after("hand-over at tick "), Some(12));
        assert!(b_done(&r));
        assert!(!a_back(&r));
    }

    #[test]
    fn an_app_running_another_sequence_is_not_the_verified_image() {
        let r = run(&RUN.replace("running sequence 2", "running sequence 1"));
        assert!(!r.app_runs_booted());
        let r = run(&RUN.replace("app B       : running sequence 2 on trial\n", ""));
        assert!(!r.app_runs_booted());
        assert_eq!(run("boot: no bootable image").booted(), None);
    }

    #[test]
    fn trailer_and_factory_layout() {
        let image = tagged(&[1, 2, 3], b"C", false);
        assert_eq!(&image[3..], b"C       failSCt1");
        let store = single_key_store(trust::Key::p256(9, b"t")).expect("store");
        let flash = factory(&STANDARD, &[0xAA; 5], &image, &store).expect("fits");
        assert_eq!(flash.len(), STANDARD.size());
        assert_eq!(trust::whole_store(&flash, STANDARD.trust_at()), Ok(1));
        let slot = &flash[STANDARD.primary_at()..];
        assert_eq!(&slot[..12], b"SCs1\x05\0\0\0\x13\0\0\0");
        assert!(slot[12..32].iter().all(|&b| b == 0));
        assert_eq!(&slot[32..37], &[0xAA; 5]);
        let header = STANDARD.header;
        assert!(slot[37..header].iter().all(|&b| b == 0xFF));
        assert_eq!(&slot[header..header + image.len()], &image[..]);
        assert!(flash[..STANDARD.primary_at()].iter().all(|&b| b == 0xFF));
    }
}
