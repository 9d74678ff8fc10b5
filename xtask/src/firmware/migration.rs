//! `cargo xtask firmware`, crypto agility on the device: the migration build of the
//! bootloader and the application (ES256, Ed25519 and HSS-LMS, `--features migration`)
//! takes the device from trust store v1 (ES256) through v2 (adds Ed25519, dual
//! signatures), v3 (drops ES256) to v4 (an HSS-LMS operator key), each store carried by
//! an update's manifest (component `["suitcase", "trust-store"]`); after each step an
//! image signed per the new policy installs and boots, and one signed only with the
//! algorithm the step dropped (or no longer sufficient) is refused. Then each
//! algorithm's verification is timed in the application, and the power is cut inside
//! the commit of store v2 on the device.

use std::fs;
use std::path::Path;
use std::time::Instant;

use suitcase_trust::{Family, role};

use super::device::{
    self, Bench, CONFIRMED, MIGRATION, Phase, REFUSED, Run, STAGED, recover, tagged,
};
use super::trust::{Key, envelope, operators, store, whole_store};
use super::{Sizes, sizes};
use crate::process::Failure;

/// Cut points inside the store commit (its flash writes), and spread over the whole
/// install run.
const CUTS_COMMIT: u64 = 30;
const CUTS_SPREAD: u64 = 6;
/// Guest instructions per SysTick tick.
const TICK: u64 = 40;
/// The bootloader's exit status when no image verifies.
const NO_BOOTABLE_IMAGE: i32 = 3;

/// One algorithm's cost on the device (migration build).
#[derive(Debug, Clone, Default)]
pub struct Verify {
    /// `ES256`, `Ed25519`, `HSS-LMS`.
    pub name: &'static str,
    /// The COSE verification alone, instructions.
    pub instructions: u64,
    /// Its peak stack, bytes (below the caller's frame).
    pub stack: u64,
    /// `authenticate` of the envelope, instructions.
    pub authenticate: u64,
    /// Reset to hand-over of a verified boot, instructions.
    pub boot: u64,
    /// The bootloader's peak stack in that boot.
    pub boot_stack: u64,
}

/// What the migration half measured.
#[derive(Debug, Clone, Default)]
pub struct MigrationReport {
    /// The bootloader (three verifiers).
    pub bootloader: Sizes,
    /// The bootloader with HSS-LMS alone.
    pub bootloader_hss: Sizes,
    /// The application.
    pub app: Sizes,
    /// Per algorithm.
    pub verify: Vec<Verify>,
    /// Store versions the device reached, in order.
    pub steps: Vec<u64>,
    /// Power-cut points in the store update, how many ended with a whole store and a
    /// verified boot (always on store v2: the application rolls a store forward).
    pub cuts: (usize, usize),
}

/// Builds and runs the migration; `work` is `target/device`.
pub fn run(dir: &Path, work: &Path) -> Result<MigrationReport, Failure> {
    let work = work.join("migration");
    fs::create_dir_all(&work).map_err(|e| Failure(format!("{}: {e}", work.display())))?;
    let started = Instant::now();
    const FEATURES: &[&str] = &["--no-default-features", "--features", "migration"];
    let app_elf = device::build_kept(dir, &work, "app", "migration", FEATURES)?;
    let boot_elf = device::build_kept(dir, &work, "bootloader", "migration", FEATURES)?;
    // HSS-LMS alone: only its size is measured (ES256 alone and Ed25519 alone are the
    // device half's bootloaders).
    const HSS: &[&str] = &["--no-default-features", "--features", "hss-lms"];
    let boot_hss = device::build_kept(dir, &work, "bootloader", "hss-lms", HSS)?;
    let mut report = MigrationReport {
        bootloader: sizes(&boot_elf)?,
        bootloader_hss: sizes(&boot_hss)?,
        app: sizes(&app_elf)?,
        ..MigrationReport::default()
    };
    let app = device::binary(&app_elf)?;
    println!(
        "firmware migration: builds took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut roots_es = [
        Key::p256(11, b"root-es-1"),
        Key::p256(12, b"root-es-2"),
        Key::p256(13, b"root-es-3"),
    ];
    let mut op_es = Key::p256(21, b"op-es");
    let mut roots_ed = [
        Key::ed25519(52, b"root-ed-1"),
        Key::ed25519(53, b"root-ed-2"),
    ];
    let mut op_ed = Key::ed25519(51, b"op-ed");
    let mut op_hss = Key::hss(61, b"op-hss")?;
    let (es, ed, hss) = (
        operators(1, Family::P256),
        operators(1, Family::Ed25519),
        operators(1, Family::HssLms),
    );
    let es_keys: Vec<_> = roots_es
        .iter()
        .map(|k| k.spec(role::ROOT))
        .chain([op_es.spec(role::OPERATOR)])
        .collect();
    let ed_keys: Vec<_> = roots_ed
        .iter()
        .map(|k| k.spec(role::ROOT))
        .chain([op_ed.spec(role::OPERATOR)])
        .collect();
    // v1: three ES256 roots (2 of 3), an ES256 operator.
    let [r1, r2, r3] = &mut roots_es;
    let v1 = store(1, es_keys.clone(), 2, vec![es], &mut [&mut *r1, &mut *r2])?;
    // v2: adds Ed25519 roots and operator; root manifests need one ES256 and one Ed25519
    // operator signature.
    let both = [es_keys.clone(), ed_keys.clone()].concat();
    let v2 = store(2, both, 2, vec![es, ed], &mut [&mut *r2, &mut *r3])?;
    // v3: ES256 dropped, roots included; an old root and the two new ones sign.
    let [e1, e2] = &mut roots_ed;
    let v3 = store(
        3,
        ed_keys.clone(),
        2,
        vec![ed],
        &mut [&mut *r1, &mut *e1, &mut *e2],
    )?;
    // v4: the operator key is post-quantum (HSS-LMS); the Ed25519 roots keep the store.
    let v4_keys = [ed_keys, vec![op_hss.spec(role::OPERATOR)]].concat();
    let v4 = store(4, v4_keys, 2, vec![hss], &mut [&mut *e1, &mut *e2])?;

    let bench = Bench {
        work: work.clone(),
        bootloader: boot_elf,
    };
    let image = |n: u64| tagged(&app, format!("M{n}").as_bytes(), true);

    // Each algorithm timed in the application, on a factory file whose store trusts it.
    for (name, store_bytes, key) in [
        ("ES256", &v1, &mut op_es),
        ("Ed25519", &v3, &mut op_ed),
        ("HSS-LMS", &v4, &mut op_hss),
    ] {
        let img = image(1);
        let env = envelope(&img, 1, None, &mut [key])?;
        bench.put_flash(&device::factory(&MIGRATION, &env, &img, store_bytes)?)?;
        bench.set_update(&env, &img)?;
        report.verify.push(measure(&bench, name)?);
    }

    println!("firmware migration: ES256 → ES256 + Ed25519 → Ed25519 → HSS-LMS on the device");
    let img1 = image(1);
    let env1 = envelope(&img1, 1, None, &mut [&mut op_es])?;
    let factory = device::factory(&MIGRATION, &env1, &img1, &v1)?;
    bench.put_flash(&factory)?;
    settle(&bench, 1, 1)?;
    report.steps.push(1);
    // Each step: the update that carries store `version` (signed for the current policy
    // and the new one: the bootloader checks the staged image under the new store once
    // it is committed); then an image signed only with the algorithm the step dropped
    // (or made insufficient), refused; then one signed per the new policy alone.
    let mut ops = [op_es, op_ed, op_hss];
    let steps = [
        Step {
            version: 2,
            store: &v2,
            carrier: &[0, 1],
            weak: &[0],
            what: "ES256 alone",
            enough: &[0, 1],
        },
        Step {
            version: 3,
            store: &v3,
            carrier: &[0, 1],
            weak: &[0],
            what: "ES256",
            enough: &[1],
        },
        Step {
            version: 4,
            store: &v4,
            carrier: &[1, 2],
            weak: &[1],
            what: "Ed25519",
            enough: &[2],
        },
    ];
    let mut carrier_v2 = Vec::new();
    for (i, s) in steps.into_iter().enumerate() {
        let Step {
            version,
            store: new,
            carrier,
            weak,
            what,
            enough,
        } = s;
        let seq = 2 + 2 * i as u64;
        let env = envelope(&image(seq), seq, Some(new), &mut pick(&mut ops, carrier))?;
        step(&bench, &env, &image(seq), seq, version)?;
        if version == 2 {
            carrier_v2 = env;
        }
        let next = seq + 1;
        let env = envelope(&image(next), next, None, &mut pick(&mut ops, weak))?;
        refused(&bench, &env, seq, what)?;
        let env = envelope(&image(next), next, None, &mut pick(&mut ops, enough))?;
        step(&bench, &env, &image(next), next, version)?;
        report.steps.push(version);
    }
    // The bootloader enforces the store as well: under v4, an image signed with Ed25519
    // alone in the primary slot (put there past the agent, by whoever can write the
    // flash) is not booted.
    let img = image(9);
    let env = envelope(&img, 9, None, &mut pick(&mut ops, &[1]))?;
    bench.put_flash(&device::factory(&MIGRATION, &env, &img, &v4)?)?;
    let run = bench.run(&bench.bootloader, 0, false)?;
    print!("{}", run.out);
    if run.status != NO_BOOTABLE_IMAGE || run.booted().is_some() {
        return Err(Failure(format!(
            "firmware migration: the bootloader booted an Ed25519-only image under store v4 \
             (status {})",
            run.status
        )));
    }
    println!("firmware migration: under store v4 the bootloader boots no Ed25519-only image");
    println!(
        "firmware migration: stores v1 → v4 took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    report.cuts = store_cuts(&bench, &factory, &carrier_v2, &image(2))?;
    println!(
        "firmware migration: power cuts took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// One migration step; key indices into `[ES256, Ed25519, HSS-LMS]` operators.
struct Step<'s> {
    /// The store it installs.
    version: u64,
    store: &'s [u8],
    /// Who signs the update that carries it.
    carrier: &'static [usize],
    /// Who signs the image refused afterwards, and what that is.
    weak: &'static [usize],
    what: &'static str,
    /// Who signs the image accepted afterwards.
    enough: &'static [usize],
}

/// The keys of `keys` at the indices `which`, to sign with.
fn pick<'k>(keys: &'k mut [Key], which: &[usize]) -> Vec<&'k mut Key> {
    keys.iter_mut()
        .enumerate()
        .filter(|(i, _)| which.contains(i))
        .map(|(_, k)| k)
        .collect()
}

/// A permanent boot of `seq` that times the update envelope's verification.
fn measure(bench: &Bench, name: &'static str) -> Result<Verify, Failure> {
    let run = bench.qemu(
        &bench.bootloader,
        0,
        ",arg=update=update.suit,arg=measure=1",
    )?;
    print!("{}", run.out);
    let v = Verify {
        name,
        instructions: run.number_after("COSE verify ").unwrap_or(0),
        stack: run.number_after(" instr, ").unwrap_or(0),
        authenticate: run.number_after("authenticate ").unwrap_or(0),
        boot: run.number_after("hand-over at tick ").unwrap_or(0) * TICK,
        boot_stack: run.stack("boot:").unwrap_or(0),
    };
    if run.status != 0 || v.instructions == 0 || v.stack == 0 {
        return Err(Failure(format!(
            "firmware migration: measuring {name} failed (status {})",
            run.status
        )));
    }
    Ok(v)
}

/// The trust-store version a run's `boot:` line reports.
fn store_version(run: &Run) -> Option<u64> {
    run.number_after("trust store v")
}

/// Runs without update files until `seq` runs permanent under store `version`: the
/// swap (on trial, confirmed; or permanent when the image it replaces no longer
/// verifies under the new store, so there is nothing to revert to).
fn settle(bench: &Bench, seq: u64, version: u64) -> Result<(), Failure> {
    for _ in 0..3 {
        let run = bench.run(&bench.bootloader, 0, false)?;
        print!("{}", run.out);
        if !run.app_runs_booted() || ![0, CONFIRMED].contains(&run.status) {
            return Err(Failure(format!(
                "firmware migration: no verified boot of sequence {seq} (status {})",
                run.status
            )));
        }
        if run.booted() == Some((seq, false)) && run.status == 0 {
            return match store_version(&run) {
                Some(v) if v == version => Ok(()),
                v => Err(Failure(format!(
                    "firmware migration: sequence {seq} runs under store {v:?}, not v{version}"
                ))),
            };
        }
    }
    Err(Failure(format!(
        "firmware migration: sequence {seq} does not run permanent"
    )))
}

/// Installs `env` (staged, and its store committed if it carries one), then settles.
fn step(bench: &Bench, env: &[u8], image: &[u8], seq: u64, version: u64) -> Result<(), Failure> {
    bench.set_update(env, image)?;
    let run = bench.run(&bench.bootloader, 0, true)?;
    print!("{}", run.out);
    if run.status != STAGED {
        return Err(Failure(format!(
            "firmware migration: sequence {seq} was not staged (status {})",
            run.status
        )));
    }
    settle(bench, seq, version)
}

/// An update the current store's policy refuses: the application says so and keeps
/// running `running`.
fn refused(bench: &Bench, env: &[u8], running: u64, what: &str) -> Result<(), Failure> {
    bench.set_update(env, b"-")?;
    let run = bench.run(&bench.bootloader, 0, true)?;
    print!("{}", run.out);
    if run.status != REFUSED || run.booted() != Some((running, false)) {
        return Err(Failure(format!(
            "firmware migration: an image signed with {what} was not refused (status {})",
            run.status
        )));
    }
    println!("firmware migration: an image signed with {what} only is refused");
    Ok(())
}

/// B (here: M2 carrying store v2) runs confirmed, or permanent.
fn m2_done(r: &Run) -> bool {
    r.status == CONFIRMED || r.booted() == Some((2, false))
}

/// Power cuts in the update that carries store v2: points over the commit's flash
/// writes and over the whole run; after each, QEMU again until M2 runs, and the flash
/// file must hold store v2, whole, in both copies (a cut before the commit is rolled
/// forward by the application once M2 is permanent).
fn store_cuts(
    bench: &Bench,
    factory: &[u8],
    env: &[u8],
    image: &[u8],
) -> Result<(usize, usize), Failure> {
    bench.put_flash(factory)?;
    bench.set_update(env, image)?;
    let clean = bench.run(&bench.bootloader, 0, true)?;
    let (Some(window), Some(end)) = (
        clean.window("app: trust store v2 committed"),
        clean.number_after("exit at tick "),
    ) else {
        return Err(Failure(format!(
            "firmware migration: the clean install reports no store commit:\n{}",
            clean.out
        )));
    };
    println!(
        "firmware migration: clean install: store commit at ticks {}..{} of {end}",
        window.0, window.1
    );
    let phase = Phase {
        name: "store commit",
        start: factory.to_vec(),
        update: true,
        done: m2_done,
        spans: vec![(window.0, window.1, CUTS_COMMIT), (1, end, CUTS_SPREAD)],
        end,
    };
    let ticks = phase.ticks();
    let trust_at = MIGRATION.trust_at();
    let (mut whole, mut failures) = (0, Vec::new());
    for (index, &tick) in ticks.iter().enumerate() {
        bench.put_flash(&phase.start)?;
        let cut = bench.run(&bench.bootloader, tick, true)?;
        let second = (index % 2 == 1).then(|| 1 + tick.wrapping_mul(7919) % phase.end);
        let outcome = recover(bench, &phase, &cut, second).and_then(|verified| {
            let flash = bench.flash().map_err(|f| f.0)?;
            // Whatever the cut left (v1 whole, v2 whole, a copy half-written), the
            // recovery ends on v2: a cut after the swap request is rolled forward from
            // the envelope kept with M2 once it runs permanent (docs/trust-store.md).
            match whole_store(&flash, trust_at)? {
                2 if verified => Ok(2),
                v => Err(format!(
                    "store v{v} after the recovery (verified boot: {verified}): not rolled forward"
                )),
            }
        });
        match outcome {
            Ok(_) => whole += 1,
            Err(why) => failures.push(format!("cut at tick {tick}: {why}")),
        }
    }
    println!(
        "firmware migration: {} cuts in the store update: {whole} ended with a whole store \
         on v2 (rolled forward when the cut fell before the commit) and booted a verified image",
        ticks.len(),
    );
    if !failures.is_empty() {
        return Err(Failure(format!(
            "firmware migration: power cuts failed:\n{}",
            failures.join("\n")
        )));
    }
    Ok((ticks.len(), whole))
}
