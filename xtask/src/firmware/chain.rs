//! `cargo xtask firmware`, the chained boot (docs/boot.md §11): the first stage
//! (`firmware/stage1`, QEMU's `-kernel`) verifies and starts the second stage (the
//! bootloader built with `--features stage2`, in a second-stage slot of the flash file with
//! the envelope of its manifest, signed by the ROM key), which boots the application as in
//! the single-stage build.
//!
//! - chain: stage1 → second stage v1 (slot A) → application A;
//! - second-stage update by manifest (component `["suitcase", "stage2"]`): v1 → v2 in slot
//!   B, a trial, confirmed by the application, v2 stays; a v2 that is never confirmed is
//!   abandoned for v1; an image altered after signing, or a manifest signed by another
//!   Ed25519 key than the ROM key, is refused by the update (the flash file unchanged),
//!   and written into slot B anyway is not started; no slot valid → the first stage halts;
//! - power cuts at the second-stage install (its erase and writes, and densely over its
//!   envelope, written last), at the first stage's trial mark and at the application's
//!   confirmation: each cut is followed by a restart that must start a verified second
//!   stage (v1 or v2) that boots the application; every other restart is itself cut once
//!   first.

use std::fs;
use std::path::Path;
use std::time::Instant;

use suitcase_cose::Algorithm;
use suitcase_cose::ed25519_dalek::SigningKey;
use suitcase_testkit::build::{bytes, digest_of, encode, int, manifest, params, seq, text};
use suitcase_testkit::resign::Signer;

use super::device::{self, Bench, CUT, Run, SECTOR, STANDARD};
use super::stage1::rom_key;
use super::{Sizes, sizes, trust};
use crate::process::Failure;

/// One second-stage slot (`board::STAGE2_SLOT`).
const SLOT: usize = 24 * SECTOR;
/// Where the envelope and the image start in a slot, and the confirmed flag
/// (`suitcase_boot::stage`).
const ENVELOPE: usize = suitcase_boot::stage::ENVELOPE as usize;
const IMAGE: usize = suitcase_boot::stage::IMAGE as usize;
const CONFIRMED: usize = 192;
/// Exit statuses: the application installed a second stage, or did not confirm one
/// (firmware/app/src/stage2.rs); refused (firmware/app); the first stage halted
/// (firmware/stage1).
const INSTALLED: i32 = 25;
const NOT_CONFIRMED: i32 = 26;
const HALTED: i32 = 6;
/// Power-cut points: evenly over the install's flash operations, densely over its envelope
/// (its last write) and just after it, over the trial mark and over the
/// confirmation (16 units each).
const CUTS_INSTALL: u64 = 24;
const CUTS_HEADER: u64 = 9;
const CUTS_TRIAL: u64 = 8;
const CUTS_CONFIRM: u64 = 8;
const UPDATE: &str = ",arg=stage2=stage2.suit,arg=payload=stage2.bin";

/// What the chained boot measured.
#[derive(Debug, Clone, Default)]
pub struct ChainReport {
    /// The second stage (the ES256 bootloader linked for its RAM window).
    pub stage2: Sizes,
    /// Its image length (what the first stage hashes and copies).
    pub stage2_len: usize,
    /// Instructions from reset to the first stage's hand-over (a confirmed v1).
    pub stage1_boot: u64,
    /// Power-cut points, and how many were followed by a verified chain.
    pub cuts: (usize, usize),
}

/// The first stage's line: (version, slot, trial).
fn started(r: &Run) -> Option<(u32, char, bool)> {
    let l = r
        .out
        .lines()
        .find(|l| l.starts_with("stage1: second stage v"))?;
    let rest = l.strip_prefix("stage1: second stage v")?;
    let (v, rest) = rest.split_once(" from slot ")?;
    let slot = rest.chars().next()?;
    Some((
        v.parse().ok()?,
        slot,
        rest.get(1..)?.starts_with(" (trial)"),
    ))
}

/// A whole chain: a second stage started, it verified image A (sequence 1, permanent) and
/// the application runs it.
fn chained(r: &Run) -> bool {
    started(r).is_some() && r.booted() == Some((1, false)) && r.app_runs_booted()
}

/// A manifest (sequence `seq_no`: the second stage's version) whose install fetches `pkg`
/// into the second-stage component and checks its digest, signed by `signers` (the
/// device's trust store authorises it for the agent, the ROM key for the first stage).
fn stage2_envelope(pkg: &[u8], seq_no: u64, signers: &[Signer]) -> Vec<u8> {
    // 1 vendor, 2 class, 3 image-match / image-digest, 12 set-component-index, 14
    // image-size, 20 override-parameters, 21 fetch / uri; 15 = report policy.
    let shared = seq(&[
        (12, int(0)),
        (
            20,
            params(&[
                (1, bytes(&trust::VENDOR)),
                (2, bytes(&trust::CLASS)),
                (3, digest_of(pkg)),
                (14, int(pkg.len() as i64)),
            ]),
        ),
        (1, int(15)),
        (2, int(15)),
    ]);
    let install = seq(&[
        (12, int(0)),
        (20, params(&[(21, text("file:stage2.bin"))])),
        (21, int(15)),
        (3, int(15)),
    ]);
    let id: &[&[u8]] = &[b"suitcase", b"stage2"];
    let m = encode(&manifest(
        seq_no,
        &[id],
        &[],
        Some(shared),
        &[(20, install)],
    ));
    suitcase_testkit::build::sign_raw_manifest(&m, signers)
}

/// `envelope` as a second-stage slot keeps it (`suitcase_boot::stage::slot_envelope`).
fn slot_copy(envelope: &[u8], rom: &SigningKey) -> Result<Vec<u8>, Failure> {
    let key = rom.verifying_key();
    let verify = |msg: &[u8], sig: &[u8]| {
        suitcase_cose::ed25519_dalek::Signature::from_slice(sig)
            .is_ok_and(|s| key.verify_strict(msg, &s).is_ok())
    };
    let mut buf = [0u8; suitcase_boot::stage::ENVELOPE_MAX];
    suitcase_boot::stage::slot_envelope(envelope, &verify, &mut buf)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Failure("firmware chain: a second-stage envelope does not read".into()))
}

/// A signer with Ed25519 `key` (the ROM key, or another).
fn ed25519(key: &SigningKey) -> Signer {
    Signer::Sign(
        suitcase_cose::SigningKey::Ed25519(key.clone()),
        Algorithm::EdDsa,
    )
}

/// The second stage's image: the binary and a 16-byte tag naming its version, so v1 and
/// v2 differ (the first stage copies the whole image; the tag is never executed).
fn stage2_image(bin: &[u8], version: u8) -> Vec<u8> {
    let mut v = bin.to_vec();
    let mut tag = *b"stage2 v0   SCs2";
    tag[8] = b'0' + version;
    v.extend_from_slice(&tag);
    v
}

/// Builds, runs the scenarios and the power cuts.
pub fn run(dir: &Path, stage1: &Path, quiet: &Path) -> Result<ChainReport, Failure> {
    let work = dir.join("target").join("device").join("chain");
    fs::create_dir_all(&work).map_err(|e| Failure(format!("{}: {e}", work.display())))?;
    let mut report = ChainReport::default();
    let started_at = Instant::now();
    let boot_elf = device::build_kept(
        dir,
        &work,
        "bootloader",
        "stage2",
        &["--features", "stage2"],
    )?;
    let app_elf = device::build_kept(dir, &work, "app", "stage2", &["--features", "stage2"])?;
    let kernel = work.join("stage1");
    if stage1 != kernel {
        fs::copy(stage1, &kernel).map_err(|e| Failure(format!("{}: {e}", kernel.display())))?;
    }
    report.stage2 = sizes(&boot_elf)?;
    let stage2_bin = device::binary(&boot_elf)?;
    let app = device::binary(&app_elf)?;
    println!(
        "firmware chain: second stage and application builds took {:.1} s",
        started_at.elapsed().as_secs_f64()
    );

    let (v1, v2) = (stage2_image(&stage2_bin, 1), stage2_image(&stage2_bin, 2));
    report.stage2_len = v1.len();
    if IMAGE + v1.len() > SLOT {
        return Err(Failure(format!(
            "firmware chain: the second stage ({} B) does not fit its slot ({SLOT} B)",
            v1.len()
        )));
    }
    let rom = rom_key();
    let image_a = device::tagged(&app, b"A", true);
    let es256 = device::es256_key()?;
    let Signer::Sign(es256_signing, _) = &es256 else {
        return Err(Failure("firmware chain: the ES256 signer is a key".into()));
    };
    let store = device::single_key_store(trust::Key::Cose(es256_signing.clone(), b"factory"))?;
    let env_a = device::envelope(&image_a, 1, es256.clone())?;
    // The factory file: image A in the primary slot, the store, and second stage v1 in
    // slot A, confirmed (installed and checked in the factory); slot B erased.
    let mut factory = device::factory(&STANDARD, &env_a, &image_a, &store)?;
    let stage2_at = factory.len();
    factory.resize(stage2_at + 2 * SLOT, 0xFF);
    let signers = [es256.clone(), ed25519(&rom)];
    let env_v1 = stage2_envelope(&v1, 1, &signers);
    // The slot keeps the envelope as `Stages::install` does: reduced to what the first
    // stage reads.
    let kept_v1 = slot_copy(&env_v1, &rom)?;
    factory[stage2_at + ENVELOPE..stage2_at + ENVELOPE + kept_v1.len()].copy_from_slice(&kept_v1);
    factory[stage2_at + CONFIRMED..stage2_at + CONFIRMED + 64].fill(0x5A);
    factory[stage2_at + IMAGE..stage2_at + IMAGE + v1.len()].copy_from_slice(&v1);

    let env_v2 = stage2_envelope(&v2, 2, &signers);
    let mut altered = v2.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    let other = SigningKey::from_bytes(&[0x33; 32]);
    let foreign = stage2_envelope(&v2, 2, &[es256.clone(), ed25519(&other)]);

    let bench = Bench {
        bootloader: kernel,
        work,
    };
    let set = |env: &[u8], image: &[u8]| -> Result<(), Failure> {
        for (name, b) in [("stage2.suit", env), ("stage2.bin", image)] {
            let p = bench.work.join(name);
            fs::write(&p, b).map_err(|e| Failure(format!("{}: {e}", p.display())))?;
        }
        Ok(())
    };
    // One run that must chain to second stage (version, slot, trial) and end with `status`.
    let expect = |args: &str, want: (u32, char, bool), status: i32| -> Result<Run, Failure> {
        let r = bench.qemu(&bench.bootloader, 0, args)?;
        print!("{}", r.out);
        if started(&r) != Some(want) || !chained(&r) || r.status != status {
            return Err(Failure(format!(
                "firmware chain: expected second stage {want:?} to boot A and end with status \
                 {status}, got {:?} and status {}",
                started(&r),
                r.status
            )));
        }
        Ok(r)
    };

    let t0 = Instant::now();
    println!("firmware chain: stage1 → second stage v1 → application");
    bench.put_flash(&factory)?;
    let first = expect("", (1, 'A', false), 0)?;
    report.stage1_boot = first
        .number_after("hand-over at tick ")
        .map_or(0, |t| t * 40);
    // The first boot of a factory file writes the bootloader's journal; from here on the
    // file as it is after that boot is the starting point.
    let factory = bench.flash()?;
    // The first stage without diagnostics (the one BENCHMARKS.md sizes) chains the same.
    let r = bench.qemu(quiet, 0, "")?;
    print!("{}", r.out);
    if r.status != 0
        || started(&r).is_some()
        || r.booted() != Some((1, false))
        || !r.app_runs_booted()
    {
        return Err(Failure(format!(
            "firmware chain: the first stage without diagnostics did not chain to the \
             application silently (status {})",
            r.status
        )));
    }
    bench.put_flash(&factory)?;
    let kept = bench.work.join("factory.img");
    fs::write(&kept, &factory).map_err(|e| Failure(format!("{}: {e}", kept.display())))?;

    println!("firmware chain: second stage updated by a manifest (v1 → v2, trial, confirmed)");
    set(&env_v2, &v2)?;
    expect(UPDATE, (1, 'A', false), INSTALLED)?;
    let installed = bench.flash()?;
    let trial = expect("", (2, 'B', true), 0)?;
    if !trial.out.contains("second stage v2 in slot B confirmed") {
        return Err(Failure("firmware chain: v2 was not confirmed".into()));
    }
    expect("", (2, 'B', false), 0)?;

    println!("firmware chain: a second stage that is never confirmed is abandoned (v2 → v1)");
    bench.put_flash(&installed)?;
    expect(",arg=s2test=fail", (2, 'B', true), NOT_CONFIRMED)?;
    expect("", (1, 'A', false), 0)?;

    println!("firmware chain: altered and foreign second stages are refused, and not started");
    for (what, env, image) in [
        ("altered after signing", &env_v2, &altered),
        ("signed by another key", &foreign, &v2),
    ] {
        bench.put_flash(&factory)?;
        set(env, image)?;
        let r = expect(UPDATE, (1, 'A', false), device::REFUSED)?;
        if bench.flash()? != factory || !r.out.contains("package refused") {
            return Err(Failure(format!(
                "firmware chain: the second stage {what} was not refused with the flash untouched"
            )));
        }
        let mut forced = factory.clone();
        let b = stage2_at + SLOT;
        forced[b + ENVELOPE..b + ENVELOPE + env.len()].copy_from_slice(env);
        forced[b + IMAGE..b + IMAGE + image.len()].copy_from_slice(image);
        bench.put_flash(&forced)?;
        expect("", (1, 'A', false), 0)?;
    }
    let mut broken = factory.clone();
    broken[stage2_at + IMAGE + 100] ^= 0x01;
    bench.put_flash(&broken)?;
    let r = bench.qemu(&bench.bootloader, 0, "")?;
    print!("{}", r.out);
    if r.status != HALTED || started(&r).is_some() {
        return Err(Failure(format!(
            "firmware chain: with no valid second stage the first stage must halt (status {})",
            r.status
        )));
    }
    println!(
        "firmware chain: scenarios took {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let t0 = Instant::now();
    set(&env_v2, &v2)?;
    report.cuts = power_cuts(
        &bench,
        &factory,
        &installed,
        slot_copy(&env_v2, &rom)?.len(),
    )?;
    println!(
        "firmware chain: power cuts took {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// `n` points evenly over `a..=b`.
fn spread(a: u64, b: u64, n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |i| a + (b + 1 - a) * i / n)
}

/// One power-cut phase: the file it starts from, the command line, the flash bytes its
/// operation writes (`focus`), how they read before and after a clean run, and where to cut.
struct Phase<'a> {
    name: &'static str,
    start: &'a [u8],
    args: &'static str,
    focus: std::ops::Range<usize>,
    after: Vec<u8>,
    ticks: Vec<u64>,
}

impl Phase<'_> {
    /// Whether a cut at `tick` left the focus as it was before the phase.
    fn untouched(&self, bench: &Bench, tick: u64) -> Result<bool, Failure> {
        bench.put_flash(self.start)?;
        bench.qemu(&bench.bootloader, tick, self.args)?;
        Ok(bench.flash()?.get(self.focus.clone()) == self.start.get(self.focus.clone()))
    }

    /// The first tick at which a cut has written something of the focus, between `lo`
    /// (nothing yet) and `hi` (something). A cut run's flash operations can fall a few
    /// ticks later than the clean run's stamps say (QEMU schedules its timer differently
    /// once the SysTick interrupt is armed), so the dense points are placed from here.
    fn first_write(&self, bench: &Bench, mut lo: u64, mut hi: u64) -> Result<u64, Failure> {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.untouched(bench, mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(hi)
    }
}

/// The power cuts; (points, points followed by a verified chain).
fn power_cuts(
    bench: &Bench,
    factory: &[u8],
    installed: &[u8],
    envelope_len: usize,
) -> Result<(usize, usize), Failure> {
    bench.put_flash(factory)?;
    let install = bench.qemu(&bench.bootloader, 0, UPDATE)?;
    bench.put_flash(installed)?;
    let trial = bench.qemu(&bench.bootloader, 0, "")?;
    let marked = bench.flash()?;
    let (Some(w_install), Some(w_mark), Some(w_confirm)) = (
        install.window("app:"),
        trial.window("stage1:"),
        trial.window("app:"),
    ) else {
        return Err(Failure(format!(
            "firmware chain: clean runs without tick stamps:\n{}{}",
            install.out, trial.out
        )));
    };
    let b = STANDARD.size() + SLOT;
    let phase = |name, start, args, focus: std::ops::Range<usize>, after: &[u8]| Phase {
        name,
        start,
        args,
        after: after[focus.clone()].to_vec(),
        focus,
        ticks: Vec::new(),
    };
    let mut install_phase = phase("install", factory, UPDATE, b..b + SLOT, installed);
    let mut mark = phase("trial mark", installed, "", b + 128..b + 192, &marked);
    let mut confirm = phase("confirmation", installed, "", b + 192..b + 256, &marked);
    // Where the envelope (written last) and the two flags really start being written.
    let envelope = b + ENVELOPE..b + ENVELOPE + envelope_len;
    let header = phase("envelope", factory, UPDATE, envelope, installed);
    let slack = |w: (u64, u64)| w.1 + 4 * (w.1 - w.0) + 64;
    // Ticks per 4-byte unit (a flag is 16 units); the envelope's units take as long, and
    // its last point falls one unit after them.
    let unit_span = |w: (u64, u64)| (w.1 - w.0 + 1).div_ceil(16);
    let envelope_span = (envelope_len.div_ceil(4) as u64 + 1) * unit_span(w_confirm);
    let h0 = header.first_write(
        bench,
        w_install.1.saturating_sub(2 * envelope_span + 200),
        w_install.1 + 200,
    )?;
    let m0 = mark.first_write(bench, w_mark.0.saturating_sub(8), slack(w_mark))?;
    let c0 = confirm.first_write(bench, w_confirm.0.saturating_sub(8), slack(w_confirm))?;
    println!(
        "firmware chain: clean runs (1 tick = 40 instructions): install writes at ticks {}..{}, \
         trial mark {}..{}, confirmation {}..{}; in cut runs the first unit of the envelope, the \
         mark and the confirmation lands at ticks {h0}, {m0}, {c0}",
        w_install.0, w_install.1, w_mark.0, w_mark.1, w_confirm.0, w_confirm.1
    );
    install_phase.ticks = spread(w_install.0, w_install.1, CUTS_INSTALL)
        // `spread` stops short of its end by one step: the last point lands after the
        // envelope's last unit.
        .chain(spread(
            h0,
            h0 + envelope_span + envelope_span / CUTS_HEADER + 32,
            CUTS_HEADER,
        ))
        .collect();
    mark.ticks = spread(m0, m0 + 16 * unit_span(w_mark), CUTS_TRIAL).collect();
    confirm.ticks = spread(c0, c0 + 16 * unit_span(w_confirm), CUTS_CONFIRM).collect();

    // A whole boot that confirms v2 (the longest restart without an update).
    let end = trial.number_after("exit at tick ").unwrap_or(w_confirm.1);
    let (mut points, mut good, mut seconds) = (0, 0, 0);
    let mut failures = Vec::new();
    for phase in [&mut install_phase, &mut mark, &mut confirm] {
        phase.ticks.sort_unstable();
        phase.ticks.dedup();
        let name = phase.name;
        // Restarts on v1 / v2; cuts that left the focus as before / torn / complete.
        let mut outcomes = [0usize; 2];
        let mut torn = [0usize; 3];
        for (index, &tick) in phase.ticks.iter().enumerate() {
            bench.put_flash(phase.start)?;
            let cut = bench.qemu(&bench.bootloader, tick, phase.args)?;
            if cut.status != CUT {
                failures.push(format!("{name}: the cut at tick {tick} did not land"));
                continue;
            }
            let now = bench.flash()?;
            let focus = now.get(phase.focus.clone());
            torn[if focus == phase.start.get(phase.focus.clone()) {
                0
            } else if focus == Some(&phase.after[..]) {
                2
            } else {
                1
            }] += 1;
            // Every other point: the restart is cut too, at a point spread over a whole
            // boot; then the run after it must chain.
            let mut again = match (index % 2 == 1).then(|| 1 + tick.wrapping_mul(7919) % end) {
                Some(second) => bench.qemu(&bench.bootloader, second, "")?,
                None => bench.qemu(&bench.bootloader, 0, "")?,
            };
            if again.status == CUT {
                seconds += 1;
                if again.out.contains("halt") {
                    failures.push(format!("{name}: the restart after tick {tick} halted"));
                }
                again = bench.qemu(&bench.bootloader, 0, "")?;
            }
            match started(&again) {
                Some((v @ (1 | 2), _, _)) if chained(&again) && again.status == 0 => {
                    good += 1;
                    outcomes[v as usize - 1] += 1;
                }
                _ => failures.push(format!(
                    "{name}: after the cut at tick {tick}, status {}:\n{}",
                    again.status, again.out
                )),
            }
        }
        println!(
            "firmware chain: {} cuts in the {name} ({} before its first write, {} inside, {} \
             after its last): {} restarted on v1, {} on v2",
            phase.ticks.len(),
            torn[0],
            torn[1],
            torn[2],
            outcomes[0],
            outcomes[1]
        );
        points += phase.ticks.len();
    }
    println!("firmware chain: {seconds} of the points cut the restart too (then one more run)");
    println!("power cuts (chained boot): {points} points, {good} restarted a verified chain");
    if !failures.is_empty() || good != points {
        return Err(Failure(format!(
            "firmware chain: power cuts failed:\n{}",
            failures.join("\n")
        )));
    }
    Ok((points, good))
}
