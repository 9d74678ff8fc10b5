//! `FlashStorage` on the device: `pipeline::install` streams a payload into a region of
//! a NOR flash and the flash ends up holding exactly the payload, padded with the
//! erased value. The flash is a RAM model with NOR rules (erase sets 1 KiB sectors to
//! `0xFF`; a write must be word-aligned, a whole number of words, and may only clear
//! bits of erased words), so a misaligned or repeated write fails the test.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash, check_erase, check_read, check_write,
};
use sha2::{Digest as _, Sha256};
use suitcase_processor::pipeline::{self, Source};
use suitcase_processor::platform::{Fetch, FetchError, Target};
use suitcase_processor::storage::{FlashRegion, FlashStorage};
use suitcase_processor::suit::ComponentId;

use crate::harness::Outcome;
use crate::statics::StaticBuf;
use crate::vectors::{IMAGE_A, IMAGE_B};

/// Two 4 KiB regions.
const FLASH_SIZE: usize = 8 * 1024;
static FLASH: StaticBuf<FLASH_SIZE> = StaticBuf::new();

/// The encoded component identifier `[h'00']`.
const C0: [u8; 3] = [0x81, 0x41, 0x00];

/// NOR flash in RAM with a `W`-byte write granule and 1 KiB erase sectors.
pub(crate) struct RamFlash<'m, const W: usize> {
    pub(crate) mem: &'m mut [u8],
    pub(crate) erases: u32,
    pub(crate) writes: u32,
}

impl<const W: usize> ErrorType for RamFlash<'_, W> {
    type Error = NorFlashErrorKind;
}

impl<const W: usize> ReadNorFlash for RamFlash<'_, W> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        let at = offset as usize;
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

impl<const W: usize> NorFlash for RamFlash<'_, W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = 1024;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        self.mem
            .get_mut(from as usize..to as usize)
            .ok_or(NorFlashErrorKind::OutOfBounds)?
            .fill(0xFF);
        self.erases += (to - from) / Self::ERASE_SIZE as u32;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        let at = offset as usize;
        let dst = self
            .mem
            .get_mut(at..at + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        // NOR programs only erased words: writing a word twice is a driver bug.
        if dst.iter().any(|&b| b != 0xFF) {
            return Err(NorFlashErrorKind::Other);
        }
        dst.copy_from_slice(bytes);
        self.writes += 1;
        Ok(())
    }
}

/// A transport that hands the payload out in uneven pieces (7, 13, 250, 7, ... bytes),
/// so chunks never end on a flash word.
struct UnevenFetch {
    rest: &'static [u8],
    turn: usize,
}

impl Fetch for UnevenFetch {
    fn open(&mut self, _uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        const PIECES: [usize; 3] = [7, 13, 250];
        let want = PIECES.get(self.turn % PIECES.len()).copied().unwrap_or(1);
        self.turn += 1;
        let n = want.min(buf.len()).min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        buf.get_mut(..n)
            .ok_or(FetchError::Transport)?
            .copy_from_slice(head);
        self.rest = tail;
        Ok(n)
    }
}

/// Installs `payload` into region 1 (at 4 KiB) of a `W`-byte-word flash from `source`,
/// then checks the digest, the contents, the padding and the untouched region 0.
fn install<const W: usize>(payload: &'static [u8], uneven: bool) -> Outcome {
    let mut mem = FLASH.take(0xFF)?;
    let regions = [
        FlashRegion {
            id: &C0,
            slot: Some(0),
            offset: 0,
            size: 4096,
        },
        FlashRegion {
            id: &C0,
            slot: Some(1),
            offset: 4096,
            size: 4096,
        },
    ];
    // Region 0 holds a "running" image that must survive.
    if let Some(r0) = mem.get_mut(..4096) {
        r0.fill(0x5A);
    }
    let flash = RamFlash::<W> {
        mem: &mut mem[..],
        erases: 0,
        writes: 0,
    };
    let mut storage = FlashStorage::new(flash, &regions);
    let target = Target {
        index: 0,
        id: ComponentId::decode(&C0).map_err(|_| "component id")?,
        slot: Some(1),
    };
    let len = payload.len() as u64;
    let mut fetch = UnevenFetch {
        rest: payload,
        turn: 0,
    };
    let source = if uneven {
        Source::Fetch(&mut fetch)
    } else {
        Source::Bytes(payload)
    };
    let written = pipeline::install(&mut storage, &target, Some(len), source, None)
        .map_err(|_| "install failed")?;
    if written.len != len || written.digest[..] != Sha256::digest(payload)[..] {
        return Err("install reported a wrong length or digest");
    }
    let read_back =
        pipeline::digest_component(&mut storage, &target, len).map_err(|_| "read-back failed")?;
    if read_back != Some(written.digest) {
        return Err("read-back digest differs");
    }
    let flash = storage.into_inner();
    let sectors = payload.len().div_ceil(1024) as u32;
    if flash.erases != sectors {
        return Err("erased more or fewer sectors than the image needs");
    }
    let region1 = flash.mem.get(4096..).ok_or("flash too small")?;
    let (image, after) = region1.split_at(payload.len());
    if image != payload {
        return Err("flash does not hold the payload");
    }
    if after.iter().any(|&b| b != 0xFF) {
        return Err("bytes after the payload are not erased");
    }
    if flash
        .mem
        .get(..4096)
        .is_none_or(|r0| r0.iter().any(|&b| b != 0x5A))
    {
        return Err("region 0 was touched");
    }
    Ok(())
}

/// Image B less 5 bytes (2043 B: not a whole number of words) in uneven chunks, onto a
/// flash with 4-byte words.
pub fn install_uneven_chunks_write4() -> Outcome {
    install::<4>(IMAGE_B.get(..IMAGE_B.len() - 5).ok_or("image B")?, true)
}

/// The same onto 8-byte words.
pub fn install_uneven_chunks_write8() -> Outcome {
    install::<8>(IMAGE_B.get(..IMAGE_B.len() - 5).ok_or("image B")?, true)
}

/// Image A (1 KiB) from an envelope byte string, 512-byte chunks, onto 8-byte words.
pub fn install_bytes_write8() -> Outcome {
    install::<8>(IMAGE_A, false)
}
