//! NOR flash in a host file: `HostFlash` implements embedded-storage's `NorFlash` over a
//! file opened through semihosting, so its contents survive QEMU runs and power cuts.
//!
//! Semantics (docs/boot.md §2 and §10):
//! - erased is `0xFF`; [`NorFlash::ERASE_SIZE`] 4 KiB, [`NorFlash::WRITE_SIZE`] 4 bytes;
//! - a write unit may be written only while it reads erased: writing a unit that holds
//!   anything else is refused (`NorFlashErrorKind::Other`) and counted in
//!   [`HostFlash::violations`], where real NOR would silently AND the bits;
//! - **what a cut can tear**: every write unit goes to the file in its own semihosting
//!   call, and an erase in 256-byte pieces, one call each. A call is atomic (QEMU does
//!   it between two guest instructions), so a cut leaves a write as a prefix of whole
//!   units, and an erase as a prefix of whole pieces (a sector partly erased, partly
//!   old). It cannot leave a unit with some bits programmed, nor weakly erased cells
//!   that read `0xFF` but are not: those are `suitcase-flash-sim`'s job on the host.
//!
//! Reads are served from a RAM copy of the file (read once at start; every write goes to
//! both), so verification costs no semihosting calls.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

use crate::host::File;

/// One erase call covers this much.
const ERASE_PIECE: usize = 256;
const ERASED: [u8; ERASE_PIECE] = [0xFF; ERASE_PIECE];

/// The flash file's contents in RAM (reads are served from here). `.uninit`: not zeroed
/// by the reset handler and not counted in `.bss`, so an image's own RAM figures stay
/// those of firmware on real, memory-mapped flash.
#[unsafe(link_section = ".uninit.flash")]
static mut MEMORY: MaybeUninit<[u8; crate::FLASH_SIZE]> = MaybeUninit::uninit();
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The RAM copy [`HostFlash::open`] fills, erased; `None` after the first call.
pub fn memory() -> Option<&'static mut [u8]> {
    if TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    // SAFETY: TAKEN makes this the only reference ever made to MEMORY; its bytes are
    // initialised through the raw pointer before the slice is formed.
    Some(unsafe {
        let p = (&raw mut MEMORY).cast::<u8>();
        core::ptr::write_bytes(p, 0xFF, crate::FLASH_SIZE);
        core::slice::from_raw_parts_mut(p, crate::FLASH_SIZE)
    })
}

/// A NOR flash in a host file.
pub struct HostFlash<'m> {
    file: File,
    /// The file's contents.
    mem: &'m mut [u8],
    /// Where the host file position is (saves a seek per sequential write).
    pos: Option<usize>,
    /// Tick stamps of the first and last program/erase call.
    first: Option<u32>,
    last: u32,
    violations: u32,
}

impl<'m> HostFlash<'m> {
    /// Opens `path` (it must exist and be exactly `mem.len()` bytes) and reads it into
    /// `mem`.
    pub fn open(path: &[u8], mem: &'m mut [u8]) -> Option<HostFlash<'m>> {
        let file = File::open_rw(path)?;
        if file.len()? != mem.len() || !file.seek(0) || file.read(mem)? != mem.len() {
            return None;
        }
        Some(HostFlash {
            file,
            mem,
            // Unknown after the read: the first write seeks.
            pos: None,
            first: None,
            last: 0,
            violations: 0,
        })
    }

    /// Ticks ([`crate::power::ticks`]) of the first and the last program or erase call
    /// since [`HostFlash::open`], if any.
    pub fn window(&self) -> Option<(u32, u32)> {
        self.first.map(|f| (f, self.last))
    }

    /// Writes refused because the unit was not erased.
    pub fn violations(&self) -> u32 {
        self.violations
    }

    fn put(&mut self, at: usize, bytes: &[u8]) -> Result<(), NorFlashErrorKind> {
        let now = crate::power::ticks();
        self.first.get_or_insert(now);
        self.last = now;
        if self.pos != Some(at) && !self.file.seek(at) {
            self.pos = None;
            return Err(NorFlashErrorKind::Other);
        }
        self.pos = None;
        if !self.file.write(bytes) {
            return Err(NorFlashErrorKind::Other);
        }
        self.pos = Some(at + bytes.len());
        Ok(())
    }

    fn range(&self, offset: u32, len: usize, align: usize) -> Result<usize, NorFlashErrorKind> {
        let at = offset as usize;
        if at % align != 0 || len % align != 0 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        match at.checked_add(len) {
            Some(end) if end <= self.mem.len() => Ok(at),
            _ => Err(NorFlashErrorKind::OutOfBounds),
        }
    }
}

impl ErrorType for HostFlash<'_> {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for HostFlash<'_> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let at = self.range(offset, bytes.len(), 1)?;
        let src = self
            .mem
            .get(at..at + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for HostFlash<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let len = to.checked_sub(from).ok_or(NorFlashErrorKind::OutOfBounds)? as usize;
        let at = self.range(from, len, Self::ERASE_SIZE)?;
        for piece in (at..at + len).step_by(ERASE_PIECE) {
            // The file first: a cut after this call leaves the piece erased in the file,
            // which is what the next boot reads.
            self.put(piece, &ERASED)?;
            if let Some(m) = self.mem.get_mut(piece..piece + ERASE_PIECE) {
                m.fill(0xFF);
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let at = self.range(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (i, unit) in bytes.chunks_exact(Self::WRITE_SIZE).enumerate() {
            let to = at + i * Self::WRITE_SIZE;
            let dst = self
                .mem
                .get_mut(to..to + Self::WRITE_SIZE)
                .ok_or(NorFlashErrorKind::OutOfBounds)?;
            if dst.iter().any(|&b| b != 0xFF) {
                // Write-once per unit after an erase (docs/boot.md §2, rule 2).
                self.violations += 1;
                return Err(NorFlashErrorKind::Other);
            }
            dst.copy_from_slice(unit);
            self.put(to, unit)?;
        }
        Ok(())
    }
}
