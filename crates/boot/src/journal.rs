//! The swap journal: two banks, each a checkpoint followed by write-once records.
//!
//! The live bank is the one whose checkpoint is valid and newer (table below, one test
//! per row). Records are appended after the last written frame; a frame torn by a power
//! cut is skipped, never rewritten (NOR cannot rewrite a unit without an erase). When the
//! live bank is full, or a new update is requested, the other bank is erased and opened
//! with a checkpoint of the state: the live bank stays intact until the new checkpoint is
//! whole, so a cut during the erase or the checkpoint write loses nothing.
//!
//! | # | bank 0 checkpoint | bank 1 checkpoint | live |
//! |---|---|---|---|
//! | 1 | valid, generation g₀ | valid, g₁ > g₀ | bank 1 |
//! | 2 | valid, g₀ ≥ g₁ | valid, g₁ | bank 0 |
//! | 3 | valid | erased, torn or inconsistent | bank 0 |
//! | 4 | erased, torn or inconsistent | valid | bank 1 |
//! | 5 | erased, torn or inconsistent | erased, torn or inconsistent | none: Idle |

use embedded_storage::nor_flash::NorFlash;

use crate::error::{BootError, flash};
use crate::layout::Plan;
use crate::record::{
    CHECKPOINT_LEN, RECORD_LEN, decode_checkpoint, decode_record, encode_checkpoint, encode_record,
};
use crate::state::{Record, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    bank: u8,
    generation: u32,
    /// Index of the first frame after the last written one.
    next: u32,
}

/// The journal's position: which bank is live and where the next record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Journal {
    live: Option<Live>,
}

/// Where a record sits, bound into its check: a record is valid only where it was written.
fn salt(bank: u8, generation: u32, frame: u32) -> [u8; 9] {
    let mut s = [bank; 9];
    crate::record::put(&mut s, 1, &generation.to_le_bytes());
    crate::record::put(&mut s, 5, &frame.to_le_bytes());
    s
}

fn bank_of(plan: &Plan, bank: u8) -> crate::layout::Bank {
    if bank == 0 {
        plan.state[0]
    } else {
        plan.state[1]
    }
}

fn frame_offset(plan: &Plan, bank: u8, frame: u32) -> u32 {
    bank_of(plan, bank).offset + CHECKPOINT_LEN as u32 + frame * plan.frame
}

impl Journal {
    /// Reads both banks and replays the live one.
    pub(crate) fn read<F: NorFlash>(f: &mut F, plan: &Plan) -> Result<(Journal, State), BootError> {
        let mut best: Option<(u8, u32, State)> = None;
        for bank in 0..2u8 {
            let mut b = [0u8; CHECKPOINT_LEN];
            f.read(bank_of(plan, bank).offset, &mut b).map_err(flash)?;
            let Some(c) = decode_checkpoint(&b, bank) else {
                continue;
            };
            let Some(state) = State::from_checkpoint(&c, plan.max_units) else {
                continue;
            };
            if best.is_none_or(|(_, g, _)| c.generation > g) {
                best = Some((bank, c.generation, state));
            }
        }
        let Some((bank, generation, mut state)) = best else {
            return Ok((Journal { live: None }, State::EMPTY));
        };
        let mut next = 0;
        let mut buf = [0u8; 32];
        let frame = buf
            .get_mut(..plan.frame as usize)
            .ok_or(BootError::BufferTooSmall)?;
        for i in 0..plan.journal_frames {
            f.read(frame_offset(plan, bank, i), frame).map_err(flash)?;
            // Records are appended in order after a completed erase: the first frame that
            // reads erased is the end.
            if frame.iter().all(|b| *b == plan.erased) {
                break;
            }
            next = i + 1;
            let raw = frame
                .get(..RECORD_LEN)
                .and_then(|r| decode_record(r, &salt(bank, generation, i)));
            if let Some(record) = raw.and_then(crate::state::Record::from_raw) {
                state = state.apply(record, plan.max_units);
            }
        }
        Ok((
            Journal {
                live: Some(Live {
                    bank,
                    generation,
                    next,
                }),
            },
            state,
        ))
    }

    /// Appends `record`, whose effect is `next`; if the live bank is full (or there is
    /// none), opens the other bank with a checkpoint of `next` instead.
    pub(crate) fn commit<F: NorFlash>(
        &mut self,
        f: &mut F,
        plan: &Plan,
        record: Record,
        next: &State,
    ) -> Result<(), BootError> {
        match &mut self.live {
            Some(l) if l.next < plan.journal_frames => {
                let mut buf = [plan.erased; 32];
                crate::record::put(
                    &mut buf,
                    0,
                    &encode_record(record.raw(), &salt(l.bank, l.generation, l.next)),
                );
                let frame = buf
                    .get(..plan.frame as usize)
                    .ok_or(BootError::BufferTooSmall)?;
                f.write(frame_offset(plan, l.bank, l.next), frame)
                    .map_err(flash)?;
                l.next += 1;
                Ok(())
            }
            _ => self.open(f, plan, next),
        }
    }

    /// Erases the bank that is not live and starts it with a checkpoint of `state`.
    pub(crate) fn open<F: NorFlash>(
        &mut self,
        f: &mut F,
        plan: &Plan,
        state: &State,
    ) -> Result<(), BootError> {
        let (bank, generation) = match self.live {
            Some(l) => (1 - l.bank, l.generation.wrapping_add(1)),
            None => (0, 1),
        };
        let b = bank_of(plan, bank);
        // Never trust a bank that merely looks erased: its last erase may have been cut.
        f.erase(b.offset, b.offset + b.size).map_err(flash)?;
        let c = encode_checkpoint(state.checkpoint(generation), bank);
        f.write(b.offset, &c).map_err(flash)?;
        self.live = Some(Live {
            bank,
            generation,
            next: 0,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
