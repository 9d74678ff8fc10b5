//! The anti-rollback counter: a value that never decreases, stored power-safely in two
//! banks of write-once records.
//!
//! Each record holds a value; the counter is the largest valid value in either bank. An
//! advance appends a record to the bank holding that value; when it is full, the other
//! bank is erased and the new value becomes its first record. Values only grow, so the
//! bank being erased never holds the largest value: a cut during the erase or the write
//! leaves the old value readable, and a torn record fails its check.
//!
//! | # | state of the banks | `advance(v)`, v > current |
//! |---|---|---|
//! | 1 | no valid record anywhere | erase bank 0, write v at frame 0 |
//! | 2 | bank b holds the largest value and has an erased frame | write v there |
//! | 3 | bank b holds the largest value and is full | erase the other bank, write v at its frame 0 |
//!
//! `advance(v)` with v = current does nothing; v < current is refused
//! (`RollbackError::WouldDecrease`).

use embedded_storage::nor_flash::NorFlash;
use suitcase_processor::platform::{RollbackError, RollbackStore};

use crate::error::{BootError, flash};
use crate::layout::{Bank, Plan};
use crate::record::{RECORD_LEN, Raw, decode_record, encode_record, put, tag};

/// The counter over a flash and the plan's counter banks.
pub struct Counter<'a, F: NorFlash> {
    flash: &'a mut F,
    plan: Plan,
}

#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// The largest value and its bank.
    max: Option<(u64, u8)>,
    /// First erased frame of each bank (`None`: full).
    free: [Option<u32>; 2],
}

fn salt(bank: u8, frame: u32) -> [u8; 5] {
    let mut s = [bank; 5];
    put(&mut s, 1, &frame.to_le_bytes());
    s
}

impl<'a, F: NorFlash> Counter<'a, F> {
    /// The counter of `plan`'s layout.
    pub fn new(flash: &'a mut F, plan: Plan) -> Self {
        Counter { flash, plan }
    }

    fn bank(&self, b: u8) -> Bank {
        if b == 0 {
            self.plan.counter[0]
        } else {
            self.plan.counter[1]
        }
    }

    fn frames(&self, b: u8) -> u32 {
        self.bank(b).size / self.plan.frame
    }

    fn at(&self, b: u8, frame: u32) -> u32 {
        self.bank(b).offset + frame * self.plan.frame
    }

    fn scan(&mut self) -> Result<Scan, BootError> {
        let mut s = Scan::default();
        let mut buf = [0u8; 32];
        for b in 0..2u8 {
            for i in 0..self.frames(b) {
                let at = self.at(b, i);
                let frame = buf
                    .get_mut(..self.plan.frame as usize)
                    .ok_or(BootError::BufferTooSmall)?;
                self.flash.read(at, frame).map_err(flash)?;
                if frame.iter().all(|x| *x == self.plan.erased) {
                    if let Some(f) = s.free.get_mut(b as usize) {
                        *f = Some(i);
                    }
                    break;
                }
                let raw = frame
                    .get(..RECORD_LEN)
                    .and_then(|r| decode_record(r, &salt(b, i)));
                if let Some(Raw {
                    tag: tag::COUNTER,
                    a64,
                    ..
                }) = raw
                    && s.max.is_none_or(|(m, _)| a64 > m)
                {
                    s.max = Some((a64, b));
                }
            }
        }
        Ok(s)
    }

    /// The stored value (0 when nothing was ever stored).
    pub fn read(&mut self) -> Result<u64, BootError> {
        Ok(self.scan()?.max.map_or(0, |(v, _)| v))
    }

    fn write(&mut self, b: u8, frame: u32, v: u64) -> Result<(), BootError> {
        let mut buf = [self.plan.erased; 32];
        let raw = Raw {
            tag: tag::COUNTER,
            a8: 0,
            a16: 0,
            a64: v,
        };
        put(&mut buf, 0, &encode_record(raw, &salt(b, frame)));
        let at = self.at(b, frame);
        let data = buf
            .get(..self.plan.frame as usize)
            .ok_or(BootError::BufferTooSmall)?;
        self.flash.write(at, data).map_err(flash)
    }

    /// Raises the counter to `v`.
    ///
    /// # Errors
    /// `Ok(false)` if `v` is below the stored value (nothing written); flash errors.
    pub fn advance_to(&mut self, v: u64) -> Result<bool, BootError> {
        let s = self.scan()?;
        let current = s.max.map_or(0, |(m, _)| m);
        if v < current {
            return Ok(false);
        }
        if v == current {
            return Ok(true);
        }
        match s.max {
            Some((_, b)) => match s.free.get(b as usize).copied().flatten() {
                Some(i) => self.write(b, i, v)?,
                None => {
                    let other = 1 - b;
                    let bank = self.bank(other);
                    self.flash
                        .erase(bank.offset, bank.offset + bank.size)
                        .map_err(flash)?;
                    self.write(other, 0, v)?;
                }
            },
            None => {
                let bank = self.bank(0);
                // Never trust a bank that merely looks erased.
                self.flash
                    .erase(bank.offset, bank.offset + bank.size)
                    .map_err(flash)?;
                self.write(0, 0, v)?;
            }
        }
        Ok(true)
    }
}

impl<F: NorFlash> RollbackStore for Counter<'_, F> {
    fn current(&mut self) -> Result<u64, RollbackError> {
        self.read().map_err(|_| RollbackError::Device)
    }

    fn advance(&mut self, sequence: u64) -> Result<(), RollbackError> {
        match self.advance_to(sequence) {
            Ok(true) => Ok(()),
            Ok(false) => Err(RollbackError::WouldDecrease),
            Err(_) => Err(RollbackError::Device),
        }
    }
}

#[cfg(test)]
mod tests;
