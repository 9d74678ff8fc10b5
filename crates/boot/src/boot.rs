//! The bootloader: replay the journal, carry the state machine to a bootable state,
//! verify the primary image with the SUIT processor, hand over.
//!
//! What each state does at boot, in order (one test per row in `tests/boot/rows.rs`):
//!
//! | # | state | condition | action | next |
//! |---|---|---|---|---|
//! | 1 | Requested | the staged image verifies and is newer than the counter (the primary, if it verifies, first raises the counter to its own number) | record SwapStart(units = max(new, old)) | Swapping |
//! | 2 | Requested | otherwise | record Reject | Idle(Rejected) |
//! | 3 | Swapping | — | finish the half-steps, recording each | Trial (Test) or Idle(Updated) (Permanent, or no valid old image) |
//! | 4 | Trial | attempts ≥ `trial_boots` | record Revert | Reverting |
//! | 5 | Trial | the primary does not verify | record Revert | Reverting |
//! | 6 | Trial | the primary verifies | record Attempt, hand over (trial) | — |
//! | 7 | Reverting | — | finish the half-steps, recording each | Idle(Reverted) |
//! | 8 | Idle | the primary verifies | raise the counter to its sequence number, hand over | — |
//! | 9 | Idle | otherwise | nothing is handed over: `NoBootableImage` | — |

use embedded_storage::nor_flash::NorFlash;
use suitcase_processor::platform::{DeviceIdentity, KeyStore};

use crate::counter::Counter;
use crate::error::{BootError, Refusal};
use crate::journal::Journal;
use crate::layout::{Layout, Plan};
use crate::slot::{Slot, Verified, verify};
use crate::state::{Idle, Mode, Record, Requested, Reverting, State, Swapping, Trial};
use crate::swap::{Direction, half_step, move_unit};

/// What the bootloader needs besides the flash.
#[derive(Clone, Copy)]
pub struct Config<'c> {
    /// The flash layout.
    pub layout: Layout<'c>,
    /// Trust anchors and signing policy for the stored envelopes.
    pub keys: &'c dyn KeyStore,
    /// Vendor, class and slot answers for the manifests' conditions.
    pub identity: &'c dyn DeviceIdentity,
    /// The encoded SUIT component identifier of the image the slots hold (e.g. `[h'00']`
    /// = `81 41 00`): the only component the bootloader reads or invokes.
    pub component: &'c [u8],
}

/// The verified image to jump to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// Absolute flash offset of the image (the primary slot plus `header_size`).
    pub image: u32,
    /// Image length from the slot header.
    pub len: u32,
    /// The manifest's sequence number.
    pub sequence: u64,
    /// Whether this is a trial boot: the image must confirm itself
    /// ([`crate::update::Updater::confirm`]) or it is reverted.
    pub trial: bool,
}

/// Everything a transition touches.
pub(crate) struct Ctx<'a, F: NorFlash> {
    pub flash: &'a mut F,
    pub cfg: &'a Config<'a>,
    pub plan: Plan,
    pub journal: Journal,
    pub buf: &'a mut [u8],
}

impl<F: NorFlash> Ctx<'_, F> {
    /// Records `record` (a transition out of `state`) and returns the new state.
    fn record(&mut self, state: State, record: Record) -> Result<State, BootError> {
        let next = state.apply(record, self.plan.max_units);
        self.journal.commit(self.flash, &self.plan, record, &next)?;
        Ok(next)
    }

    fn counter(&mut self) -> Counter<'_, F> {
        Counter::new(self.flash, self.plan)
    }

    fn verify(&mut self, slot: Slot, floor: u64) -> Result<Result<Verified, Refusal>, BootError> {
        verify(self.flash, &self.plan, self.cfg, slot, floor, self.buf)
    }

    fn handover(&self, v: Verified, trial: bool) -> Handover {
        Handover {
            image: self.plan.primary + self.plan.header,
            len: v.image_len,
            sequence: v.seq,
            trial,
        }
    }

    /// Runs half-steps `done` … `2 × units` of `dir`, recording each.
    fn run_swap(
        &mut self,
        mut state: State,
        dir: Direction,
        units: u16,
        mut done: u16,
    ) -> Result<State, BootError> {
        while u32::from(done) < crate::state::total(units) {
            let (dst, src) = half_step(&self.plan, dir, units, done);
            move_unit(self.flash, &self.plan, dst, src, self.buf)?;
            done += 1;
            state = self.record(state, Record::Progress(done))?;
        }
        Ok(state)
    }
}

impl Requested {
    /// Rows 1–2: verify the staged image, then start the swap or refuse it.
    pub(crate) fn decide<F: NorFlash>(self, cx: &mut Ctx<'_, F>) -> Result<State, BootError> {
        let me = State::Requested(self);
        let mut floor = cx.counter().read()?;
        let primary = cx.verify(Slot::Primary, floor)?;
        if let Ok(p) = primary
            && p.seq > floor
        {
            // The primary is permanent here: the counter follows it before anything is
            // compared against the counter.
            cx.counter().advance_to(p.seq)?;
            floor = p.seq;
        }
        let staged = match cx.verify(Slot::Staged, floor)? {
            Ok(s) if s.seq > floor => s,
            _ => return cx.record(me, Record::Reject),
        };
        let new_units = cx.plan.units_for(staged.image_len);
        let old_units = primary.map_or(0, |p| cx.plan.units_for(p.image_len));
        let units = u16::try_from(new_units.max(old_units)).unwrap_or(u16::MAX);
        // Nothing valid to go back to: a trial would only be able to revert to garbage.
        let mode = if primary.is_ok() {
            self.mode
        } else {
            Mode::Permanent
        };
        cx.record(
            me,
            Record::SwapStart {
                mode,
                units,
                seq: staged.seq,
            },
        )
    }
}

impl Swapping {
    /// Row 3.
    pub(crate) fn run<F: NorFlash>(self, cx: &mut Ctx<'_, F>) -> Result<State, BootError> {
        cx.run_swap(
            State::Swapping(self),
            Direction::Install,
            self.units,
            self.done,
        )
    }
}

/// What a trial boot leads to.
pub(crate) enum TrialBoot {
    /// Hand over.
    Boot(Handover),
    /// Revert.
    Revert(State),
}

impl Trial {
    /// Rows 4–6.
    pub(crate) fn attempt<F: NorFlash>(self, cx: &mut Ctx<'_, F>) -> Result<TrialBoot, BootError> {
        let me = State::Trial(self);
        if self.attempts >= cx.plan.trial_boots {
            return Ok(TrialBoot::Revert(cx.record(me, Record::Revert)?));
        }
        // The counter stays below the trial image until it confirms: the old image must
        // still boot after a revert.
        let floor = cx.counter().read()?;
        match cx.verify(Slot::Primary, floor)? {
            Ok(v) => {
                cx.record(me, Record::Attempt)?;
                Ok(TrialBoot::Boot(cx.handover(v, true)))
            }
            Err(_) => Ok(TrialBoot::Revert(cx.record(me, Record::Revert)?)),
        }
    }
}

impl Reverting {
    /// Row 7.
    pub(crate) fn run<F: NorFlash>(self, cx: &mut Ctx<'_, F>) -> Result<State, BootError> {
        cx.run_swap(
            State::Reverting(self),
            Direction::Revert,
            self.units,
            self.done,
        )
    }
}

impl Idle {
    /// Rows 8–9.
    pub(crate) fn boot<F: NorFlash>(self, cx: &mut Ctx<'_, F>) -> Result<Handover, BootError> {
        let floor = cx.counter().read()?;
        match cx.verify(Slot::Primary, floor)? {
            Ok(v) => {
                if v.seq > floor {
                    cx.counter().advance_to(v.seq)?;
                }
                Ok(cx.handover(v, false))
            }
            Err(r) => Err(BootError::NoBootableImage(r)),
        }
    }
}

/// Boots: finishes whatever the journal says is in progress, then verifies the primary
/// image and returns where to jump. `buf` holds the stored envelope and is the copy
/// buffer of the swap (at least the largest envelope; 1–4 KiB is typical).
///
/// Safe to cut at any point: the next call carries on from the journal.
///
/// # Errors
/// [`BootError::Flash`] (retry at the next boot), [`BootError::Layout`], or
/// [`BootError::NoBootableImage`] when no image verifies.
pub fn boot<F: NorFlash>(
    flash: &mut F,
    cfg: &Config<'_>,
    buf: &mut [u8],
) -> Result<Handover, BootError> {
    let plan = cfg.layout.plan::<F>()?;
    if buf.len() < plan.write as usize {
        return Err(BootError::BufferTooSmall);
    }
    let (journal, mut state) = Journal::read(flash, &plan)?;
    let mut cx = Ctx {
        flash,
        cfg,
        plan,
        journal,
        buf,
    };
    loop {
        state = match state {
            State::Requested(s) => s.decide(&mut cx)?,
            State::Swapping(s) => s.run(&mut cx)?,
            State::Trial(s) => match s.attempt(&mut cx)? {
                TrialBoot::Boot(h) => return Ok(h),
                TrialBoot::Revert(next) => next,
            },
            State::Reverting(s) => s.run(&mut cx)?,
            State::Idle(s) => return s.boot(&mut cx),
        };
    }
}
