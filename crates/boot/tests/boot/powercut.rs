//! The exhaustive power-cut test. For each geometry and each scenario (update confirmed;
//! update never confirmed, so reverted), a clean run counts the flash operations from
//! the factory state: first boot (counter update), install (staging and request), swap,
//! trial boots, confirm or revert. Then for every operation index, twice (power cut
//! before it; torn during it), the scenario runs again from the factory state with that
//! cut, and after it a seeded random sequence of 6 more cuts (five within the next eight
//! operations each, the last anywhere) hits the recovery. After every boot the invariants are checked:
//!
//! 1. `boot` hands over (never `NoBootableImage`), and only after the processor verified
//!    the manifest signature and the image digest;
//! 2. the primary slot holds exactly the old or the new slot content (header, envelope,
//!    image), the one whose sequence number was handed over: never a mix;
//! 3. the rollback counter never decreases;
//! 4. the simulator saw no rule broken (misaligned, write over unerased, off-sector erase);
//! 5. the scenario ends: with the new image permanent if a confirm ever returned, with
//!    the old one after a revert otherwise, and the counter at the final image's number.

use std::io::Write as _;
use std::time::{Duration, Instant};

use suitcase_boot::{BootError, Handover, Mode};
use suitcase_flash_sim::Fault;

use super::common::{Device, Fixture, Rng, SEQ_NEW, SEQ_OLD, Spec};
use super::geometries;

/// What a geometry's run found.
pub struct Report {
    pub name: String,
    pub cut_points: u64,
    pub fired: u64,
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The new image confirms itself on its first trial boot.
    Confirm,
    /// The new image never confirms: it is reverted.
    Revert,
}

/// Random cuts after the first one.
const FURTHER: u32 = 6;
const MAX_BOOTS: usize = 60;

struct Driver {
    installed: bool,
    saw_trial: bool,
    confirmed: bool,
    counter: u64,
    fired: u64,
}

fn check<const W: usize, const E: usize>(
    dev: &mut Device<'_, W, E>,
    h: &Handover,
    d: &mut Driver,
) -> Result<(), String> {
    let fx = dev.fx;
    let Some(p) = [&fx.old, &fx.new].into_iter().find(|p| p.seq == h.sequence) else {
        return Err(format!("handed over sequence {}", h.sequence));
    };
    if !dev.primary_holds(p) {
        return Err(format!(
            "sequence {} handed over, primary holds something else",
            h.sequence
        ));
    }
    if h.len as usize != p.image.len() || h.image != fx.offsets[2] + super::common::HEADER {
        return Err(format!("hand-over {h:?} does not describe the image"));
    }
    let c = dev.counter();
    if c < d.counter {
        return Err(format!("rollback counter went down: {} -> {c}", d.counter));
    }
    if c > h.sequence {
        return Err(format!(
            "counter {c} above the running image {}",
            h.sequence
        ));
    }
    d.counter = c;
    if let Some(v) = dev.flash.violations().first() {
        return Err(format!("flash rule broken: {v:?}"));
    }
    Ok(())
}

/// Runs `scenario` to its end, reacting to power cuts like a device: every cut is a
/// reboot. Returns the number of cuts that fired.
pub fn drive<const W: usize, const E: usize>(
    dev: &mut Device<'_, W, E>,
    scenario: Scenario,
    rng: &mut Rng,
    mut further: u32,
    span: u64,
) -> Result<u64, String> {
    let mut d = Driver {
        installed: false,
        saw_trial: false,
        confirmed: false,
        counter: 0,
        fired: 0,
    };
    let new = dev.fx.new.clone();
    let mut cut = |dev: &mut Device<'_, W, E>, d: &mut Driver, further: &mut u32| {
        d.fired += 1;
        dev.power_on(rng, further, span);
    };
    for _ in 0..MAX_BOOTS {
        if !dev.flash.is_powered() {
            cut(dev, &mut d, &mut further);
        }
        let h = match dev.boot() {
            Ok(h) => h,
            Err(BootError::Flash(_)) if !dev.flash.is_powered() => continue,
            Err(e) => return Err(format!("boot failed: {e:?}")),
        };
        check(dev, &h, &mut d)?;
        match (h.sequence, h.trial) {
            (SEQ_OLD, false) if d.saw_trial => {
                if d.confirmed {
                    return Err("reverted after a confirm returned".into());
                }
                if dev.counter() != SEQ_OLD {
                    return Err("counter not at the old image after the revert".into());
                }
                return Ok(d.fired);
            }
            (SEQ_OLD, false) if d.installed => {
                return Err("an accepted request never started a swap".into());
            }
            (SEQ_OLD, false) => match dev.install(&new, Mode::Test) {
                Ok(()) => d.installed = true,
                Err(_) if !dev.flash.is_powered() => {}
                Err(e) => return Err(format!("install failed: {e:?}")),
            },
            (SEQ_NEW, true) => {
                d.saw_trial = true;
                if scenario == Scenario::Confirm {
                    match dev.confirm() {
                        Ok(()) => d.confirmed = true,
                        Err(_) if !dev.flash.is_powered() => {}
                        Err(e) => return Err(format!("confirm failed: {e:?}")),
                    }
                }
            }
            (SEQ_NEW, false) => {
                if scenario == Scenario::Revert {
                    return Err("the new image became permanent without a confirm".into());
                }
                if dev.counter() != SEQ_NEW {
                    return Err("counter not at the new image after the confirm".into());
                }
                return Ok(d.fired);
            }
            (s, t) => return Err(format!("sequence {s} trial {t}")),
        }
        // The application is done: reset (not a power cut).
    }
    Err(format!("no end after {MAX_BOOTS} boots"))
}

/// The exhaustive run over one geometry.
pub fn run<const W: usize, const E: usize>(spec: Spec) -> Report {
    let start = Instant::now();
    let fx = Fixture::new(spec);
    let base = Device::<W, E>::factory(&fx);
    let mut report = Report {
        name: fx.spec.name.clone(),
        cut_points: 0,
        fired: 0,
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for scenario in [Scenario::Confirm, Scenario::Revert] {
        let mut clean = base.clone();
        if let Err(e) = drive(&mut clean, scenario, &mut Rng::new(1), 0, 0) {
            report
                .failures
                .push(format!("{} {scenario:?} without cuts: {e}", fx.spec.name));
            continue;
        }
        let total = clean.flash.ops() - base.flash.ops();
        for k in 0..total {
            for torn in [false, true] {
                let seed = (k << 2) ^ (u64::from(torn) << 1) ^ (scenario as u64) ^ 0x5EED;
                let mut dev = base.clone();
                let fault = if torn {
                    Fault::Tear { seed }
                } else {
                    Fault::Cut
                };
                dev.flash.schedule(base.flash.ops() + k, fault);
                report.cut_points += 1;
                match drive(&mut dev, scenario, &mut Rng::new(seed), FURTHER, total) {
                    Ok(fired) => report.fired += fired,
                    Err(e) => report.failures.push(format!(
                        "{} {scenario:?} {} at op {k}: {e}",
                        fx.spec.name,
                        if torn { "tear" } else { "cut" }
                    )),
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// Runs the entries on every core, prints one line per geometry to stderr (visible with
/// `--nocapture`) and the summary line to stdout, uncaptured.
/// `SUITCASE_POWERCUT_ONLY=<substring>` keeps the geometries whose name contains it (for
/// debugging one geometry; the summary line then says how many ran).
fn matrix(mut entries: Vec<geometries::Entry>) -> Vec<Report> {
    if let Ok(only) = std::env::var("SUITCASE_POWERCUT_ONLY") {
        entries.retain(|(name, _)| name.contains(&only));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, f)) = entries.get(i) else { break };
                    let r = f();
                    eprintln!(
                        "{:<28} {:>6} cut points {:>6} cuts fired {:>3} failures {:>7.1?}",
                        r.name,
                        r.cut_points,
                        r.fired,
                        r.failures.len(),
                        r.elapsed
                    );
                    reports.lock().unwrap().push(r);
                }
            });
        }
    });
    let reports = reports.into_inner().unwrap();
    let cut_points: u64 = reports.iter().map(|r| r.cut_points).sum();
    let failures: usize = reports.iter().map(|r| r.failures.len()).sum();
    let line = format!(
        "{cut_points} cut points × {} geometries: {failures} failures\n",
        reports.len()
    );
    // Straight to the process's stdout: the test harness captures `print!`, not this.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    reports
}

fn assert_clean(reports: &[Report]) {
    let failures: Vec<&String> = reports.iter().flat_map(|r| &r.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures, first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn power_cut_at_every_operation_over_the_ci_matrix() {
    let entries = geometries::ci();
    assert!(entries.len() >= 24);
    let reports = matrix(entries);
    assert_clean(&reports);
}

/// `cargo test -p suitcase-boot --release -- --ignored power_cut_full` (about an hour on
/// two cores).
#[test]
#[ignore = "long: the full matrix, run on demand"]
fn power_cut_full_matrix() {
    assert_clean(&matrix(geometries::full()));
}
