//! A minimal bootloader, linked to measure what the SUIT processor costs in flash.
//!
//! It is never run: `cargo xtask firmware` builds it and reports its `.text`. It holds
//! only what a secure-boot loader needs: read the envelope and the trust anchor from
//! flash, [`authenticate`], [`Authenticated::invoke`](suitcase_processor::Authenticated)
//! over a [`FlashStorage`] (validate: image-match over the installed image; invoke:
//! jump to it). No fetch, no clock, no reports, no semihosting, no formatting.
//!
//! By default only P-256 verification is compiled in (`suitcase-processor` with
//! `default-features = false, features = ["p256"]`); feature `all-algorithms` adds
//! Ed25519 and HMAC-SHA-256 and reads the anchor's kind from the key record, so the
//! two builds differ by exactly what dropping those algorithms saves.
//!
//! Everything the processor reads comes from flash through volatile reads, so the
//! optimiser cannot specialise the code for one envelope. The flash layout (on the
//! MPS2 map, for linking only):
//!
//! | address | what |
//! |---|---|
//! | `0x0000_0000` | this bootloader |
//! | `0x0003_F000` | key record: P-256 SEC1 point (with `all-algorithms`: a kind byte first) |
//! | `0x0003_F800` | rollback counter (u64) |
//! | `0x0004_0000` | envelope slot: u32 length, then the envelope (up to 8 KiB) |
//! | `0x0008_0000` | the image slot (1 MiB): component `[h'00']`, vector table first |

#![no_std]
#![no_main]

use core::ptr;

use cortex_m_rt::entry;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use suitcase_processor::cose::VerifyingKey;
use suitcase_processor::platform::{
    Invoke, InvokeError, MemoryRollback, NoClock, NoDecryptionKeys, NoFetch, StaticIdentity,
    StaticKeys, Target, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{FlashRegion, FlashStorage};
use suitcase_processor::{Platform, authenticate};

const KEY_RECORD: usize = 0x0003_F000;
const ROLLBACK: usize = 0x0003_F800;
const ENVELOPE_SLOT: usize = 0x0004_0000;
const ENVELOPE_MAX: usize = 8 * 1024;
const IMAGE_SLOT: u32 = 0x0008_0000;
const IMAGE_SLOT_SIZE: u32 = 1024 * 1024;
/// A flash controller's program/erase registers (the address is illustrative).
const FLASH_CTRL: usize = 0x4002_2000;

/// The image component `[h'00']`.
const IMAGE_ID: [u8; 3] = [0x81, 0x41, 0x00];
/// This device's vendor and class UUIDs (those of the spec examples).
const VENDOR: [u8; 16] = [
    0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f, 0xfe,
];
const CLASS: [u8; 16] = [
    0x14, 0x92, 0xaf, 0x14, 0x25, 0x69, 0x5e, 0x48, 0xbf, 0x42, 0x9b, 0x2d, 0x51, 0xf2, 0xab, 0x45,
];

/// `len` bytes of memory-mapped flash at `addr`.
fn flash_bytes(addr: usize, len: usize) -> &'static [u8] {
    // SAFETY: `addr..addr + len` lies in the 4 MiB of code flash, which is always
    // mapped and readable, and nothing writes it while the bootloader runs.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// A word read from flash that the optimiser must not assume.
fn flash_u32(addr: usize) -> u32 {
    // SAFETY: an aligned address in mapped code flash.
    unsafe { ptr::read_volatile(addr as *const u32) }
}

/// Internal NOR flash: memory-mapped reads, programming through a controller.
struct InternalFlash;

impl ErrorType for InternalFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for InternalFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let src = (offset as usize)
            .checked_add(bytes.len())
            .filter(|&end| end <= self.capacity())
            .map(|_| flash_bytes(offset as usize, bytes.len()))
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        4 * 1024 * 1024
    }
}

impl NorFlash for InternalFlash {
    const WRITE_SIZE: usize = 8;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        for sector in (from..to).step_by(Self::ERASE_SIZE) {
            // SAFETY: the (illustrative) controller's address and start registers.
            unsafe {
                ptr::write_volatile((FLASH_CTRL + 4) as *mut u32, sector);
                ptr::write_volatile(FLASH_CTRL as *mut u32, 2);
                while ptr::read_volatile((FLASH_CTRL + 8) as *const u32) & 1 != 0 {}
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        for (i, word) in bytes.chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            // SAFETY: programming mode writes words straight to the flash address.
            unsafe {
                ptr::write_volatile(FLASH_CTRL as *mut u32, 1);
                ptr::write_volatile((offset as usize + 4 * i) as *mut u32, w);
                while ptr::read_volatile((FLASH_CTRL + 8) as *const u32) & 1 != 0 {}
            }
        }
        Ok(())
    }
}

/// Jumps to the image's vector table.
struct Jump;

impl Invoke for Jump {
    fn invoke(&mut self, target: &Target<'_>, _args: Option<&[u8]>) -> Result<(), InvokeError> {
        if target.index != 0 {
            return Err(InvokeError::Unsupported);
        }
        // SAFETY: the image slot starts with a vector table that validate just checked
        // (image-match over the whole image) before invoke ran.
        unsafe { cortex_m::asm::bootload(IMAGE_SLOT as *const u32) }
    }
}

/// The trust anchor from the key record.
#[cfg(not(feature = "all-algorithms"))]
fn anchor() -> Option<VerifyingKey<'static>> {
    use suitcase_processor::cose::p256::ecdsa::VerifyingKey as P256;
    P256::from_sec1_bytes(flash_bytes(KEY_RECORD, 65))
        .ok()
        .map(VerifyingKey::P256)
}

/// The trust anchor from the key record: a kind byte, then the key.
#[cfg(feature = "all-algorithms")]
fn anchor() -> Option<VerifyingKey<'static>> {
    use suitcase_processor::cose::ed25519_dalek::VerifyingKey as Ed25519;
    use suitcase_processor::cose::p256::ecdsa::VerifyingKey as P256;
    let key = flash_bytes(KEY_RECORD + 1, 65);
    match flash_u32(KEY_RECORD) & 0xff {
        0 => P256::from_sec1_bytes(key).ok().map(VerifyingKey::P256),
        1 => {
            let bytes: &[u8; 32] = key.get(..32)?.try_into().ok()?;
            Ed25519::from_bytes(bytes).ok().map(VerifyingKey::Ed25519)
        }
        _ => Some(VerifyingKey::Hmac256(key.get(..32)?)),
    }
}

#[entry]
fn main() -> ! {
    boot();
    // No valid image: a real bootloader would enter recovery here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Authenticates the stored envelope and runs its invocation procedure; returns only
/// when that fails.
fn boot() {
    let Some(key) = anchor() else { return };
    let anchors = [TrustAnchor { key, kid: None }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let len = (flash_u32(ENVELOPE_SLOT) as usize).min(ENVELOPE_MAX);
    let envelope = flash_bytes(ENVELOPE_SLOT + 4, len);

    let regions = [FlashRegion {
        id: &IMAGE_ID,
        slot: None,
        offset: IMAGE_SLOT,
        size: IMAGE_SLOT_SIZE,
    }];
    let mut storage = FlashStorage::new(InternalFlash, &regions);
    let identity = StaticIdentity {
        vendor: VENDOR,
        class: CLASS,
        device: None,
        running_slot: 0,
    };
    let installed = u64::from(flash_u32(ROLLBACK)) | (u64::from(flash_u32(ROLLBACK + 4)) << 32);
    let mut rollback = MemoryRollback(installed);
    let Ok(auth) = authenticate(envelope, &keys) else {
        return;
    };
    let _ = auth.invoke(&mut Platform {
        storage: &mut storage,
        fetch: &mut NoFetch,
        identity: &identity,
        rollback: &mut rollback,
        clock: &NoClock,
        invoker: &mut Jump,
        reporter: &mut NoReport,
        decryption: &NoDecryptionKeys,
        policy: &mut suitcase_processor::platform::NoPolicy,
        dependencies: None,
    });
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
