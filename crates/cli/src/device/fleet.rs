//! `suitcase device sync --fleet N --dir BASE --server URL`: N simulated devices in one
//! process, each in `BASE/device-NNN` (its own flash simulator, report key and token),
//! each doing exactly the round of `device sync` ([`super::sync::round`]) on a pool of
//! threads; then one summary line.
//!
//! A device directory that does not exist yet is made as a copy of the device in BASE
//! (`device.json`, `trust.pub.pem`, `flash.bin`): a factory line provisioning N units
//! from one golden device. Its report key is made at its first round, so every device
//! has its own. Device `BASE/device-NNN` is `{BASE's name}-NNN` at the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, anyhow};
use serde_json::json;

use super::sync::{Outcome, Round, SyncArgs, default_id, round};
use super::{CONFIG, FLASH, TRUST};
use crate::Rejected;

/// The directory and server id of fleet device `i` under `base`.
pub fn member(base: &Path, base_id: &str, i: usize) -> (PathBuf, String) {
    (
        base.join(format!("device-{i:03}")),
        format!("{base_id}-{i:03}"),
    )
}

/// Makes `dir` a copy of the device in `base` unless it is a device already.
fn clone_device(base: &Path, dir: &Path) -> anyhow::Result<()> {
    if dir.join(CONFIG).is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for name in [TRUST, FLASH, CONFIG] {
        // The configuration last: its presence marks a complete copy.
        std::fs::copy(base.join(name), dir.join(name))
            .with_context(|| format!("{}: {name}", base.display()))?;
    }
    Ok(())
}

/// Counts of a fleet round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Updated, confirmed, success reported.
    pub updated: usize,
    /// Nothing offered.
    pub up_to_date: usize,
    /// Refused by the processor (reported).
    pub refused: usize,
    /// Self-test failed, reverted (reported).
    pub self_test_failed: usize,
    /// Power cut during the reboot (no report).
    pub power_cut: usize,
    /// Power-on recoveries that confirmed an update.
    pub recovered: usize,
    /// Transport, server or device errors.
    pub errors: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of(results: &[anyhow::Result<Outcome>]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r {
                Err(_) => s.errors += 1,
                Ok(o) => {
                    s.recovered += usize::from(o.recovered.is_some());
                    match o.round {
                        Round::UpToDate { .. } => s.up_to_date += 1,
                        Round::Updated { .. } => s.updated += 1,
                        Round::Refused { .. } => s.refused += 1,
                        Round::SelfTestFailed { .. } => s.self_test_failed += 1,
                        Round::PowerCut { .. } => s.power_cut += 1,
                    }
                }
            }
        }
        s
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} updated, {} up to date, {} refused, {} self-test failed and reverted, {} power cut, {} recovered at power-on, {} errors",
            self.updated,
            self.up_to_date,
            self.refused,
            self.self_test_failed,
            self.power_cut,
            self.recovered,
            self.errors
        )
    }
}

/// One round of `n` devices under `base` with `server`, `jobs` at a time. `cut(i)` is
/// asked when device `i` has staged an update whether its power goes half-way through
/// the reboot;
/// `done` is called as each device finishes. Results are in device order.
pub fn sync_fleet(
    base: &Path,
    server: &str,
    n: usize,
    jobs: usize,
    cut: &(dyn Fn(usize) -> bool + Sync),
    done: &(dyn Fn(usize, &anyhow::Result<Outcome>) + Sync),
) -> anyhow::Result<Vec<anyhow::Result<Outcome>>> {
    let base_id = default_id(base, None)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<Outcome>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (dir, id) = member(base, &base_id, i);
                    let r = clone_device(base, &dir)
                        .and_then(|()| round(&dir, server, &id, &|| cut(i)));
                    done(i, &r);
                    if let Ok(mut all) = results.lock()
                        && let Some(slot) = all.get_mut(i)
                    {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let all = results
        .into_inner()
        .map_err(|_| anyhow!("a device thread panicked"))?;
    Ok(all
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow!("the device did not run"))))
        .collect())
}

/// Runs `device sync --fleet N`.
///
/// # Errors
/// The base is not a device; [`Rejected`] when any device failed its round.
pub fn run(a: &SyncArgs, n: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let base = &a.common.dir;
    super::Device::open(base)?;
    let results = sync_fleet(base, &a.server, n, a.jobs, &|_| false, &|_, _| {})?;
    for r in &results {
        let line = match r {
            Ok(o) => {
                json!({"type": "sync", "id": o.id, "round": o.round, "recovered": o.recovered})
            }
            Err(e) => json!({"type": "sync", "error": crate::one_line(&format!("{e:#}"))}),
        };
        if a.common.json {
            writeln!(out, "{line}")?;
        } else if let Err(e) = r {
            writeln!(out, "sync: {}", crate::one_line(&format!("{e:#}")))?;
        }
    }
    let s = Summary::of(&results);
    if a.common.json {
        writeln!(
            out,
            "{}",
            json!({"type": "fleet", "devices": n, "updated": s.updated,
            "up_to_date": s.up_to_date, "refused": s.refused, "self_test_failed": s.self_test_failed,
            "errors": s.errors})
        )?;
    } else {
        writeln!(out, "fleet: {n} devices: {s}")?;
    }
    if s.errors + s.refused + s.self_test_failed > 0 {
        return Err(Rejected(format!(
            "{} of {n} devices did not update",
            s.errors + s.refused + s.self_test_failed
        ))
        .into());
    }
    Ok(())
}
