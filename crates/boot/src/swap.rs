//! The swap: the staged image sits one unit up in the secondary slot, so each unit of the
//! primary can move down into the unit just freed, and each slot unit is erased once per
//! swap (MCUboot's swap-offset, generalised to units of several sectors).
//!
//! Install, for i = 0 … u − 1 (P = primary, S = secondary; S[i + 1] holds new[i]):
//!
//! | half-step | erase | copy | why the source is intact |
//! |---|---|---|---|
//! | 2i + 1 | S[i] | P[i] → S[i] | S[i] held new[i − 1], already in P[i − 1] (S[0] is spare) |
//! | 2i + 2 | P[i] | S[i + 1] → P[i] | P[i] = old[i] is now in S[i]; S[i + 1] untouched so far |
//!
//! Afterwards P = new, S[0 … u − 1] = old. Revert, for i = u − 1 … 0:
//!
//! | half-step | erase | copy | why the source is intact |
//! |---|---|---|---|
//! | 2k + 1 | S[i + 1] | P[i] → S[i + 1] | S[i + 1] held old[i + 1], already back in P[i + 1] (or a stale copy, for i = u − 1) |
//! | 2k + 2 | P[i] | S[i] → P[i] | P[i] = new[i] is now in S[i + 1]; S[i] = old[i] untouched |
//!
//! Afterwards P = old, S[1 … u] = new: the layout of a staged update again.
//!
//! Each half-step is recorded after it completes. A cut inside one leaves its
//! destination unknown and its source intact, so recovery repeats it from the erase.

use embedded_storage::nor_flash::NorFlash;

use crate::error::{BootError, flash};
use crate::layout::Plan;

/// Which way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Staged image into the primary slot.
    Install,
    /// Back out.
    Revert,
}

/// (destination, source) of half-step `done + 1` (0-based `done`) of a swap of `units`.
pub(crate) fn half_step(plan: &Plan, dir: Direction, units: u16, done: u16) -> (u32, u32) {
    let i = u32::from(done / 2);
    let first = done.is_multiple_of(2);
    match dir {
        Direction::Install if first => (plan.secondary_unit(i), plan.primary_unit(i)),
        Direction::Install => (plan.primary_unit(i), plan.secondary_unit(i + 1)),
        Direction::Revert => {
            let j = u32::from(units).saturating_sub(1 + i);
            if first {
                (plan.secondary_unit(j + 1), plan.primary_unit(j))
            } else {
                (plan.primary_unit(j), plan.secondary_unit(j))
            }
        }
    }
}

/// Erases the unit at `dst` and copies the unit at `src` into it through `buf`. Chunks
/// that read erased are not written: the destination already holds exactly that, and a
/// partly filled last unit then costs no writes.
pub(crate) fn move_unit<F: NorFlash>(
    f: &mut F,
    plan: &Plan,
    dst: u32,
    src: u32,
    buf: &mut [u8],
) -> Result<(), BootError> {
    let w = plan.write as usize;
    let chunk = (buf.len() / w * w).min(plan.unit as usize);
    let buf = buf
        .get_mut(..chunk)
        .filter(|b| !b.is_empty())
        .ok_or(BootError::BufferTooSmall)?;
    f.erase(dst, dst + plan.unit).map_err(flash)?;
    let mut off = 0u32;
    while off < plan.unit {
        let n = (plan.unit - off).min(chunk as u32) as usize;
        let part = buf.get_mut(..n).ok_or(BootError::BufferTooSmall)?;
        f.read(src + off, part).map_err(flash)?;
        if part.iter().any(|b| *b != plan.erased) {
            f.write(dst + off, part).map_err(flash)?;
        }
        off += n as u32;
    }
    Ok(())
}
