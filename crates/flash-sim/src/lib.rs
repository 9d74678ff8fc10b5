//! A strict NOR-flash simulator for host tests (see README.md).
//!
//! [`SimFlash<W, E>`] implements embedded-storage's [`ReadNorFlash`] and [`NorFlash`] with
//! `WRITE_SIZE = W` and `ERASE_SIZE = E` (the smallest erase granularity); the physical
//! sectors, uniform or mixed, are a run-time [`Geometry`] whose every sector is a multiple of
//! `E`. [`MultiwriteSim`] adds [`MultiwriteNorFlash`].
//!
//! Rules it enforces (a breach is an error *and* a recorded [`Violation`], so a test can
//! assert there were none):
//!
//! - writes start and end on a `W` boundary; erases start and end on a *sector* boundary;
//! - a write unit (`W` bytes) is written once after an erase (the NOR constraint every
//!   layout above it must respect); [`MultiwriteSim`] relaxes this to "bits only move away
//!   from the erased value";
//! - nothing works while the power is off.
//!
//! Faults: [`SimFlash::schedule`] cuts the power *before* mutating operation `n`
//! ([`Fault::Cut`]) or *during* it ([`Fault::Tear`]): a write leaves a prefix of whole units
//! done and the unit in progress with undefined programmed bits; an erase leaves the sectors
//! before the cut erased and the sector in progress with arbitrary bytes, which must be
//! erased again before any write. See `docs/boot.md` ("The flash model") for why this model.
#![warn(missing_docs)]

mod fault;
mod persist;

use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

pub use fault::Fault;
use fault::Rng;

/// The physical sector map of a flash device, in address order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    sectors: Vec<u32>,
    starts: Vec<u32>,
}

impl Geometry {
    /// `runs` of `(sector size, count)`, in address order (e.g. STM32F4:
    /// `[(16 << 10, 4), (64 << 10, 1), (128 << 10, 7)]`).
    pub fn new(runs: &[(u32, u32)]) -> Geometry {
        let mut sectors = Vec::new();
        for &(size, count) in runs {
            assert!(size > 0, "sector size 0");
            sectors.extend(std::iter::repeat_n(size, count as usize));
        }
        Geometry::from_sectors(sectors)
    }

    /// `count` sectors of `size` bytes.
    pub fn uniform(size: u32, count: u32) -> Geometry {
        Geometry::new(&[(size, count)])
    }

    /// From a list of sector sizes.
    pub fn from_sectors(sectors: Vec<u32>) -> Geometry {
        let mut starts = Vec::with_capacity(sectors.len());
        let mut at = 0u32;
        for s in &sectors {
            starts.push(at);
            at = at.checked_add(*s).expect("flash larger than 4 GiB");
        }
        Geometry { sectors, starts }
    }

    /// Sector sizes, in address order.
    pub fn sectors(&self) -> &[u32] {
        &self.sectors
    }

    /// Total size in bytes.
    pub fn capacity(&self) -> usize {
        self.sectors.iter().map(|s| *s as usize).sum()
    }

    /// The index of the sector holding `addr`.
    pub fn sector_of(&self, addr: u32) -> Option<usize> {
        let i = self.starts.partition_point(|s| *s <= addr).checked_sub(1)?;
        (addr - self.starts[i] < self.sectors[i]).then_some(i)
    }

    /// Start address of sector `i`.
    pub fn start(&self, i: usize) -> u32 {
        self.starts[i]
    }

    /// Whether `addr` is a sector boundary (the end of the device counts).
    pub fn is_boundary(&self, addr: u32) -> bool {
        addr as usize == self.capacity() || self.starts.binary_search(&addr).is_ok()
    }
}

/// How a simulated device behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The value an erased byte reads as: `0xFF` (most NOR) or `0x00` (some MCUs' internal
    /// flash, e.g. with inverted cells).
    pub erased: u8,
    /// Keep the operation log ([`SimFlash::log`]).
    pub log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            erased: 0xFF,
            log: true,
        }
    }
}

/// A mutating operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `write(offset, len bytes)`.
    Write {
        /// Start.
        offset: u32,
        /// Length.
        len: u32,
    },
    /// `erase(from, to)`.
    Erase {
        /// Start.
        from: u32,
        /// End (exclusive).
        to: u32,
    },
}

/// What became of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done completely.
    Done,
    /// Power was cut before it started: nothing changed.
    Cut,
    /// Power was cut during it: partly done (see [`Fault::Tear`]).
    Torn,
    /// Refused by a rule (see [`Violation`]).
    Refused,
}

/// One line of the operation log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Mutating-operation index (the index faults are scheduled by).
    pub index: u64,
    /// The operation.
    pub op: Op,
    /// Its fate.
    pub outcome: Outcome,
}

/// A broken rule: a bug in the code driving the flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Operation index.
    pub index: u64,
    /// The operation.
    pub op: Op,
    /// Which rule.
    pub rule: Rule,
}

/// The rules a [`Violation`] can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A write not aligned to the write size, or an erase not on sector boundaries.
    Alignment,
    /// Outside the device.
    Bounds,
    /// A write unit written again without an erase (offset of the unit).
    NotErased(u32),
    /// A multiwrite that asked for a bit to go back to the erased value (offset of the byte).
    BitToErased(u32),
}

/// Counters since creation (or [`SimFlash::reset_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Completed write calls.
    pub writes: u64,
    /// Bytes written by completed writes.
    pub bytes_written: u64,
    /// Completed erase calls.
    pub erases: u64,
    /// Sectors erased (an erase call may span several).
    pub sectors_erased: u64,
    /// Read calls.
    pub reads: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The power is off (cut by a fault): nothing works until [`SimFlash::restore_power`].
    #[error("power lost")]
    PowerLoss,
    /// Misaligned write or off-boundary erase.
    #[error("not aligned")]
    NotAligned,
    /// Outside the device.
    #[error("out of bounds")]
    OutOfBounds,
    /// A write over a unit that is not erased.
    #[error("write over programmed unit at {0:#x}")]
    NotErased(u32),
    /// The backing file failed.
    #[error("backing file: {0}")]
    Io(String),
    /// A backing file that is not a simulator image, or one of another geometry type.
    #[error("not a matching flash image: {0}")]
    BadImage(&'static str),
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// The simulated device. `W` is the write size (1, 2, 4, 8, 16 or 32), `E` the smallest
/// erase granularity (every sector of the geometry is a multiple of it).
pub struct SimFlash<const W: usize, const E: usize> {
    geometry: Geometry,
    opts: Options,
    multiwrite: bool,
    mem: Vec<u8>,
    /// One flag per write unit: 0 = erased since the last erase, 1 = programmed. Bytes, not
    /// bits, so that the hot checks are `memchr` and `memset` even in debug builds.
    programmed: Vec<u8>,
    wear: Vec<u32>,
    stats: Stats,
    ops: u64,
    faults: Vec<(u64, Fault)>,
    powered: bool,
    log: Vec<Entry>,
    violations: Vec<Violation>,
    backing: Option<persist::Backing>,
}

impl<const W: usize, const E: usize> Clone for SimFlash<W, E> {
    /// A copy of the device state, detached from any backing file.
    fn clone(&self) -> Self {
        SimFlash {
            geometry: self.geometry.clone(),
            opts: self.opts,
            multiwrite: self.multiwrite,
            mem: self.mem.clone(),
            programmed: self.programmed.clone(),
            wear: self.wear.clone(),
            stats: self.stats,
            ops: self.ops,
            faults: self.faults.clone(),
            powered: self.powered,
            log: self.log.clone(),
            violations: self.violations.clone(),
            backing: None,
        }
    }
}

impl<const W: usize, const E: usize> core::fmt::Debug for SimFlash<W, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimFlash")
            .field("write", &W)
            .field("erase", &E)
            .field("sectors", &self.geometry.sectors.len())
            .field("erased", &self.opts.erased)
            .field("ops", &self.ops)
            .field("powered", &self.powered)
            .finish_non_exhaustive()
    }
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    const CHECK: () = {
        assert!(
            W.is_power_of_two() && W <= 32,
            "write size 1, 2, 4, 8, 16 or 32"
        );
        assert!(
            E >= W && E.is_multiple_of(W),
            "erase size a multiple of the write size"
        );
    };

    /// A new device, every sector erased (wear 0).
    pub fn new(geometry: Geometry, opts: Options) -> Self {
        let () = Self::CHECK;
        assert!(
            opts.erased == 0xFF || opts.erased == 0x00,
            "erased 0xFF or 0x00"
        );
        for s in geometry.sectors() {
            assert!(
                (*s as usize).is_multiple_of(E),
                "sector size {s} not a multiple of {E}"
            );
        }
        let cap = geometry.capacity();
        SimFlash {
            mem: vec![opts.erased; cap],
            programmed: vec![0; cap / W],
            wear: vec![0; geometry.sectors.len()],
            geometry,
            opts,
            multiwrite: false,
            stats: Stats::default(),
            ops: 0,
            faults: Vec::new(),
            powered: true,
            log: Vec::new(),
            violations: Vec::new(),
            backing: None,
        }
    }

    /// A new device backed by the file at `path` (created or truncated): every change is
    /// written through, so the device survives the process.
    pub fn create(path: &Path, geometry: Geometry, opts: Options) -> Result<Self, SimError> {
        let mut f = SimFlash::new(geometry, opts);
        f.backing = Some(persist::Backing::create(path, &f)?);
        Ok(f)
    }

    /// The device saved at `path` (by [`SimFlash::create`] or [`SimFlash::persist`]),
    /// still backed by it. Fails if the file was made for another `W` or `E`.
    pub fn open(path: &Path, opts: Options) -> Result<Self, SimError> {
        persist::Backing::open(path, opts)
    }

    /// Saves the whole state to `path` and writes every later change through to it.
    pub fn persist(&mut self, path: &Path) -> Result<(), SimError> {
        self.backing = Some(persist::Backing::create(path, self)?);
        Ok(())
    }

    /// The sector map.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The erased value.
    pub fn erased(&self) -> u8 {
        self.opts.erased
    }

    /// Raw contents (no rules, no counting).
    pub fn contents(&self) -> &[u8] {
        &self.mem
    }

    /// Overwrites bytes regardless of the rules (bit rot, an attacker with a probe): the
    /// units touched count as programmed.
    pub fn tamper(&mut self, offset: u32, bytes: &[u8]) {
        let at = offset as usize;
        self.mem[at..at + bytes.len()].copy_from_slice(bytes);
        if !bytes.is_empty() {
            self.programmed[at / W..(at + bytes.len()).div_ceil(W)].fill(1);
        }
        self.write_through(at, bytes.len(), None);
    }

    /// Erase count of every sector.
    pub fn wear(&self) -> &[u32] {
        &self.wear
    }

    /// Operation counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Zeroes the operation counters and the wear (to measure one procedure).
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        self.wear.fill(0);
    }

    /// Mutating operations attempted so far while powered (the fault index).
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// The operation log (when [`Options::log`] is on).
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// Every rule broken so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Whether the power is on.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Switches the power back on after a fault: the next boot.
    pub fn restore_power(&mut self) {
        self.powered = true;
    }

    /// Schedules `fault` at mutating operation `index` (see [`SimFlash::ops`]).
    pub fn schedule(&mut self, index: u64, fault: Fault) {
        let at = self.faults.partition_point(|(i, _)| *i <= index);
        self.faults.insert(at, (index, fault));
    }

    /// Schedules `fault` `n` mutating operations from now (`0` = the next one).
    pub fn schedule_in(&mut self, n: u64, fault: Fault) {
        self.schedule(self.ops + n, fault);
    }

    /// Drops every scheduled fault.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Faults still to come.
    pub fn pending_faults(&self) -> usize {
        self.faults.len()
    }

    fn record(&mut self, op: Op, outcome: Outcome) {
        if self.opts.log {
            self.log.push(Entry {
                index: self.ops,
                op,
                outcome,
            });
        }
    }

    fn refuse(&mut self, op: Op, rule: Rule, err: SimError) -> Result<(), SimError> {
        self.violations.push(Violation {
            index: self.ops,
            op,
            rule,
        });
        self.record(op, Outcome::Refused);
        self.ops += 1;
        Err(err)
    }

    /// Starts a mutating operation: `Some(fault)` if one fires now.
    fn fault_now(&mut self) -> Option<Fault> {
        match self.faults.first() {
            Some((i, f)) if *i == self.ops => {
                let f = *f;
                self.faults.remove(0);
                Some(f)
            }
            _ => {
                // Faults scheduled in the past (while the power was off) never fire.
                let ops = self.ops;
                self.faults.retain(|(i, _)| *i > ops);
                None
            }
        }
    }

    fn power_cut(&mut self, op: Op, outcome: Outcome) -> Result<(), SimError> {
        self.record(op, outcome);
        self.ops += 1;
        self.powered = false;
        Err(SimError::PowerLoss)
    }

    /// The value a unit in progress reads as when the power goes: bits that were to move
    /// away from the erased value may or may not have (`noise` picks), the rest keep their
    /// old value (the `MultiwriteNorFlash` contract for an interrupted write).
    fn torn_byte(&self, old: u8, target: u8, noise: u8) -> u8 {
        if self.opts.erased == 0xFF {
            old & (target | noise)
        } else {
            old | (target & noise)
        }
    }

    fn program_unit(&mut self, at: usize, data: &[u8]) {
        if self.programmed[at / W] == 0 {
            self.mem[at..at + W].copy_from_slice(data);
        } else {
            for (m, d) in self.mem[at..at + W].iter_mut().zip(data) {
                *m = if self.opts.erased == 0xFF {
                    *m & d
                } else {
                    *m | d
                };
            }
        }
        self.programmed[at / W] = 1;
    }

    fn do_write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let op = Op::Write {
            offset,
            len: bytes.len() as u32,
        };
        if !self.powered {
            return Err(SimError::PowerLoss);
        }
        let at = offset as usize;
        if !at.is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return self.refuse(op, Rule::Alignment, SimError::NotAligned);
        }
        if at + bytes.len() > self.mem.len() {
            return self.refuse(op, Rule::Bounds, SimError::OutOfBounds);
        }
        let units = at / W..(at + bytes.len()) / W;
        if !self.multiwrite {
            if let Some(u) = self.programmed[units.clone()].iter().position(|p| *p != 0) {
                let unit = ((units.start + u) * W) as u32;
                return self.refuse(op, Rule::NotErased(unit), SimError::NotErased(unit));
            }
        } else if let Some(i) = self.reverts_bits(at, bytes) {
            return self.refuse(op, Rule::BitToErased(i), SimError::NotErased(i));
        }
        match self.fault_now() {
            Some(Fault::Cut) => self.power_cut(op, Outcome::Cut),
            Some(Fault::Tear { seed }) => {
                let mut rng = Rng::new(seed ^ u64::from(offset));
                let n = bytes.len() / W;
                let done = rng.below(n as u64) as usize;
                for k in 0..done {
                    self.program_unit(at + k * W, &bytes[k * W..(k + 1) * W]);
                }
                // The unit in progress: one time in four its cells had not moved yet.
                if n > 0 && rng.below(4) != 0 {
                    let u = at + done * W;
                    let mut torn = [0u8; 32];
                    for (j, t) in torn.iter_mut().take(W).enumerate() {
                        *t = self.torn_byte(self.mem[u + j], bytes[done * W + j], rng.byte());
                    }
                    self.mem[u..u + W].copy_from_slice(&torn[..W]);
                    // A unit whose cells did not move is indistinguishable from erased on
                    // any real part; anything else must be erased before reuse.
                    if torn[..W].iter().any(|b| *b != self.opts.erased) {
                        self.programmed[u / W] = 1;
                    }
                }
                let cut = self.power_cut(op, Outcome::Torn);
                self.write_through(at, bytes.len(), None);
                cut
            }
            None => {
                if self.multiwrite {
                    for k in 0..bytes.len() / W {
                        self.program_unit(at + k * W, &bytes[k * W..(k + 1) * W]);
                    }
                } else {
                    self.mem[at..at + bytes.len()].copy_from_slice(bytes);
                    self.programmed[units].fill(1);
                }
                self.stats.writes += 1;
                self.stats.bytes_written += bytes.len() as u64;
                self.record(op, Outcome::Done);
                self.ops += 1;
                self.write_through(at, bytes.len(), None);
                Ok(())
            }
        }
    }

    /// For a multiwrite: the first byte where `bytes` asks a programmed bit to go back to
    /// the erased value (which a write cannot do).
    fn reverts_bits(&self, at: usize, bytes: &[u8]) -> Option<u32> {
        let old = &self.mem[at..at + bytes.len()];
        let bad = |o: u8, n: u8| {
            if self.opts.erased == 0xFF {
                n & !o != 0
            } else {
                o & !n != 0
            }
        };
        old.iter()
            .zip(bytes)
            .position(|(o, n)| bad(*o, *n))
            .map(|i| (at + i) as u32)
    }

    fn erase_sector(&mut self, i: usize) {
        let (s, n) = (
            self.geometry.start(i) as usize,
            self.geometry.sectors[i] as usize,
        );
        self.mem[s..s + n].fill(self.opts.erased);
        self.programmed[s / W..(s + n) / W].fill(0);
        self.wear[i] += 1;
        self.stats.sectors_erased += 1;
    }

    fn do_erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let op = Op::Erase { from, to };
        if !self.powered {
            return Err(SimError::PowerLoss);
        }
        if to as usize > self.mem.len() || from > to {
            return self.refuse(op, Rule::Bounds, SimError::OutOfBounds);
        }
        if !self.geometry.is_boundary(from) || !self.geometry.is_boundary(to) {
            return self.refuse(op, Rule::Alignment, SimError::NotAligned);
        }
        let first = self.geometry.sector_of(from);
        let sectors: Vec<usize> = match first {
            Some(f) if from < to => (f..self.geometry.sectors.len())
                .take_while(|i| self.geometry.start(*i) < to)
                .collect(),
            _ => Vec::new(),
        };
        match self.fault_now() {
            Some(Fault::Cut) => self.power_cut(op, Outcome::Cut),
            Some(Fault::Tear { seed }) => {
                let mut rng = Rng::new(seed ^ u64::from(from));
                if !sectors.is_empty() {
                    let k = rng.below(sectors.len() as u64) as usize;
                    for &i in &sectors[..k] {
                        self.erase_sector(i);
                    }
                    self.tear_sector(sectors[k], &mut rng);
                }
                let cut = self.power_cut(op, Outcome::Torn);
                self.write_through(from as usize, (to - from) as usize, Some(&sectors));
                cut
            }
            None => {
                for &i in &sectors {
                    self.erase_sector(i);
                }
                self.stats.erases += 1;
                self.record(op, Outcome::Done);
                self.ops += 1;
                self.write_through(from as usize, (to - from) as usize, Some(&sectors));
                Ok(())
            }
        }
    }

    /// A sector whose erase was interrupted: runs of bytes keep their old value, read as
    /// erased, or lie in between; every unit must be erased again before a write, even
    /// where it reads as erased (its cells may be only weakly erased).
    fn tear_sector(&mut self, i: usize, rng: &mut Rng) {
        let (s, n) = (
            self.geometry.start(i) as usize,
            self.geometry.sectors[i] as usize,
        );
        let erased = self.opts.erased;
        for run in self.mem[s..s + n].chunks_mut(16) {
            match rng.below(3) {
                0 => {}
                1 => run.fill(erased),
                _ => {
                    for b in run {
                        let noise = rng.byte();
                        *b = if erased == 0xFF {
                            *b | noise
                        } else {
                            *b & noise
                        };
                    }
                }
            }
        }
        self.programmed[s / W..(s + n) / W].fill(1);
        self.wear[i] += 1;
    }

    fn write_through(&mut self, at: usize, len: usize, sectors: Option<&[usize]>) {
        if let Some(mut b) = self.backing.take() {
            // A failing backing file is a broken test machine, not a flash fault.
            b.update(self, at, len, sectors)
                .unwrap_or_else(|e| panic!("flash-sim backing file: {e}"));
            self.backing = Some(b);
        }
    }

    /// Turns this device into one that allows rewriting units (bits moving away from the
    /// erased value only).
    pub fn into_multiwrite(mut self) -> MultiwriteSim<W, E> {
        self.multiwrite = true;
        MultiwriteSim(self)
    }
}

impl<const W: usize, const E: usize> ErrorType for SimFlash<W, E> {
    type Error = SimError;
}

impl<const W: usize, const E: usize> ReadNorFlash for SimFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if !self.powered {
            return Err(SimError::PowerLoss);
        }
        let at = offset as usize;
        let src = self
            .mem
            .get(at..at + bytes.len())
            .ok_or(SimError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        self.stats.reads += 1;
        self.stats.bytes_read += bytes.len() as u64;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for SimFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        self.do_erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.do_write(offset, bytes)
    }
}

/// A [`SimFlash`] that also implements [`MultiwriteNorFlash`]: a unit may be written again
/// as long as no bit goes back to the erased value (the result is the AND, for `0xFF`
/// flash, or the OR, for `0x00` flash, of old and new).
#[derive(Clone, Debug)]
pub struct MultiwriteSim<const W: usize, const E: usize>(pub SimFlash<W, E>);

impl<const W: usize, const E: usize> ErrorType for MultiwriteSim<W, E> {
    type Error = SimError;
}

impl<const W: usize, const E: usize> ReadNorFlash for MultiwriteSim<W, E> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<const W: usize, const E: usize> NorFlash for MultiwriteSim<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        self.0.do_erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.0.do_write(offset, bytes)
    }
}

impl<const W: usize, const E: usize> MultiwriteNorFlash for MultiwriteSim<W, E> {}

#[cfg(test)]
mod tests;
