//! The immutable first stage of the updatable bootloader (docs/boot.md §11), on a
//! Cortex-M4 in QEMU: `suitcase_boot::stage::Stages::choose` over two second-stage slots,
//! with SHA-256 and the first stage's Ed25519 ROM key (salty). It runs the first stage's
//! table on the slots xtask generated and exits 0 only when every choice is the expected
//! one; `arm-none-eabi-size` of this image is the first stage's size (the jump into the
//! chosen slot, a few instructions, is the bootloader's and is not exercised here).
//!
//! Scenario, on one flash (slot A: second stage v1, confirmed; slot B: v2, never tried):
//! 1. choose → B, v2, trial (marks B tried);
//! 2. choose → A, v1 (B's trial never confirmed);
//! 3. B's image altered by one bit → choose → A, v1;
//! 4. both slots altered → halt.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use suitcase_boot::stage::{Choice, IMAGE, Slot, Stages};

/// The two slots as xtask wrote them (`firmware/target/generated/stage1-slots.bin`).
static SLOTS: &[u8] = include_bytes!("../../target/generated/stage1-slots.bin");
/// The first stage's Ed25519 public key (the ROM key).
static ROM_KEY: &[u8; 32] = include_bytes!("../../target/generated/stage1-rom.pub");

const SECTOR: usize = 4096;
const SLOT: u32 = 3 * SECTOR as u32;
const SIZE: usize = 2 * SLOT as usize;

#[unsafe(link_section = ".uninit.flash")]
static mut MEMORY: MaybeUninit<[u8; SIZE]> = MaybeUninit::uninit();
static TAKEN: AtomicBool = AtomicBool::new(false);

/// A NOR flash in RAM: 4 KiB sectors, 4-byte writes that may only clear bits.
struct RamFlash {
    mem: &'static mut [u8],
}

#[derive(Debug)]
struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl ErrorType for RamFlash {
    type Error = FlashError;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        let src = self
            .mem
            .get(start..start + bytes.len())
            .ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        self.mem
            .get_mut(from as usize..to as usize)
            .ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?
            .fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        let dst = self
            .mem
            .get_mut(start..start + bytes.len())
            .ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}

fn flash() -> Option<RamFlash> {
    if TAKEN.swap(true, Ordering::Relaxed) || SLOTS.len() != SIZE {
        return None;
    }
    // SAFETY: TAKEN makes this the only reference ever made to MEMORY; its bytes are
    // initialised through the raw pointer before the slice is formed.
    let mem = unsafe {
        let p = (&raw mut MEMORY).cast::<u8>();
        core::ptr::copy_nonoverlapping(SLOTS.as_ptr(), p, SIZE);
        core::slice::from_raw_parts_mut(p, SIZE)
    };
    Some(RamFlash { mem })
}

/// The ROM key's check of a header's signed bytes.
fn verify(signed: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        salty::PublicKey::try_from(ROM_KEY),
        <&[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    key.verify(signed, &salty::Signature::from(sig)).is_ok()
}

/// Prints one line without `core::fmt` (so the measured image holds no formatter).
fn say(parts: &[&[u8]]) {
    if let Ok(mut out) = hio::hstdout() {
        for p in parts {
            let _ = out.write_all(p);
        }
        let _ = out.write_all(b"\n");
    }
}

fn expect(step: &[u8], got: Choice, want: Option<(Slot, u32, bool)>) -> bool {
    let (what, ok): (&[u8], bool) = match (got, want) {
        (Choice::Halt, None) => (b"halt", true),
        (Choice::Halt, Some(_)) => (b"halt", false),
        (
            Choice::Run {
                slot,
                version,
                trial,
                ..
            },
            want,
        ) => {
            let what: &[u8] = match (slot, version, trial) {
                (Slot::A, 1, false) => b"run A v1",
                (Slot::B, 2, true) => b"run B v2 (trial)",
                _ => b"run (other)",
            };
            (what, want == Some((slot, version, trial)))
        }
    };
    say(&[b"stage1: ", step, b": ", what, if ok { b" ok" } else { b" WRONG" }]);
    ok
}

fn run() -> bool {
    let Some(f) = flash() else { return false };
    let Ok(mut s) = Stages::new(f, 0, SLOT, SLOT, 0xFF) else {
        return false;
    };
    let mut all = true;
    all &= matches!(s.choose(&verify), Ok(c) if expect(b"fresh v2", c, Some((Slot::B, 2, true))));
    all &= matches!(s.choose(&verify), Ok(c) if expect(b"v2 never confirmed", c, Some((Slot::A, 1, false))));
    let image_b = (SLOT + IMAGE) as usize + 100;
    let flip = |s: &mut Stages<RamFlash>, at: usize| {
        if let Some(b) = s.flash().mem.get_mut(at) {
            *b ^= 0x01;
        }
    };
    flip(&mut s, image_b);
    all &= matches!(s.choose(&verify), Ok(c) if expect(b"v2 altered", c, Some((Slot::A, 1, false))));
    flip(&mut s, IMAGE as usize + 100);
    all &= matches!(s.choose(&verify), Ok(c) if expect(b"both altered", c, None));
    all
}

#[entry]
fn main() -> ! {
    let ok = run();
    say(&[b"stage1: ", if ok { b"passed" } else { b"FAILED" }]);
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A panic ends the run as a failure (no formatter: it would count in the size).
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
