//! What the bootloader and the application image share on QEMU `mps2-an386`
//! (Cortex-M4F): see `firmware/README.md` ("Bootloader and update agent") and
//! `docs/boot.md` §10.
//!
//! - [`host`]: the semihosting calls both images use (files, the command line, exit);
//! - [`flash::HostFlash`]: a `NorFlash` whose contents live in a host file, so they
//!   survive QEMU runs and power cuts;
//! - [`LAYOUT`]: the regions of that flash, the same for bootloader and agent;
//! - [`power`]: the deterministic power cut (SysTick under `-icount shift=0`);
//! - [`BootInfo`]: what the bootloader tells the image it starts;
//! - [`anchor`]: the trust anchor both verify against;
//! - [`stack`]: peak stack by painting.
//!
//! Everything here is safe code except the raw semihosting traps in [`host`] and the
//! fixed-address [`BootInfo`] accessors, each with its SAFETY comment.
#![no_std]

pub mod flash;
pub mod host;
pub mod power;
pub mod stack;

use suitcase_boot::{Layout, Region, SectorRun};
use suitcase_processor::cose::VerifyingKey;
use suitcase_processor::platform::StaticIdentity;

/// The exception and panic handlers both images need: `SysTick` is the power cut
/// ([`power::cut`]); a HardFault exits 102 and a panic 101, without formatting (which
/// would add several KiB to the measured bootloader).
#[macro_export]
macro_rules! handlers {
    () => {
        #[cortex_m_rt::exception]
        fn SysTick() {
            $crate::power::cut()
        }

        #[cortex_m_rt::exception]
        unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
            $crate::host::exit(102)
        }

        #[panic_handler]
        fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
            $crate::host::exit(101)
        }
    };
}

/// Erase sector (an nRF52840-like part: 4 KiB sectors, 4-byte words).
pub const SECTOR: u32 = 4096;
/// Slot header + envelope area before the image.
pub const HEADER: u32 = 1024;
/// Byte size of the flash file: state 2 + counter 2 + primary 32 + secondary 33 sectors.
pub const FLASH_SIZE: usize = (2 + 2 + 32 + 33) * SECTOR as usize;

const TWO: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 2,
}];
const PRIMARY: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 32,
}];
const SECONDARY: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 33,
}];

/// The flash layout (offsets in the flash file): journal at 0, counter at 8 KiB, primary
/// slot at 16 KiB (128 KiB), secondary at 144 KiB (132 KiB: one unit more). One trial
/// boot: an image that does not confirm on its first run is reverted at the next boot.
pub const LAYOUT: Layout<'static> = Layout {
    state: Region {
        offset: 0,
        sectors: &TWO,
    },
    counter: Region {
        offset: 2 * SECTOR,
        sectors: &TWO,
    },
    primary: Region {
        offset: 4 * SECTOR,
        sectors: &PRIMARY,
    },
    secondary: Region {
        offset: 36 * SECTOR,
        sectors: &SECONDARY,
    },
    header_size: HEADER,
    erased: 0xFF,
    trial_boots: 1,
};

/// The image component, `[h'00']` (the spec examples' component 0).
pub const COMPONENT: [u8; 3] = [0x81, 0x41, 0x00];

/// The device's identity: the spec examples' vendor and class UUIDs.
pub const IDENTITY: StaticIdentity = StaticIdentity {
    vendor: [
        0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f,
        0xfe,
    ],
    class: [
        0x14, 0x92, 0xaf, 0x14, 0x25, 0x69, 0x5e, 0x48, 0xbf, 0x42, 0x9b, 0x2d, 0x51, 0xf2, 0xab,
        0x45,
    ],
    device: None,
    running_slot: 0,
};

/// The trust anchor: the draft's published P-256 test key (`public_key.pem`) as an
/// uncompressed SEC1 point.
#[cfg(not(feature = "ed25519"))]
pub fn anchor() -> Option<VerifyingKey<'static>> {
    const KEY: [u8; 65] = [
        0x04, 0x84, 0x96, 0x81, 0x1a, 0xae, 0x0b, 0xaa, 0xab, 0xd2, 0x61, 0x57, 0x18, 0x9e, 0xec,
        0xda, 0x26, 0xbe, 0xaa, 0x8b, 0xf1, 0x1b, 0x6f, 0x3f, 0xe6, 0xe2, 0xb5, 0x65, 0x9c, 0x85,
        0xdb, 0xc0, 0xad, 0x3b, 0x1f, 0x2a, 0x4b, 0x6c, 0x09, 0x81, 0x31, 0xc0, 0xa3, 0x6d, 0xac,
        0xd1, 0xd7, 0x8b, 0xd3, 0x81, 0xdc, 0xdf, 0xb0, 0x9c, 0x05, 0x2d, 0xb3, 0x39, 0x91, 0xdb,
        0x73, 0x38, 0xb4, 0xa8, 0x96,
    ];
    suitcase_processor::cose::p256::ecdsa::VerifyingKey::from_sec1_bytes(&KEY)
        .ok()
        .map(VerifyingKey::P256)
}

/// The trust anchor: the Ed25519 key xtask generated (`generated/fw-ed25519.pub`, from a
/// fixed seed) and signs the Ed25519 envelopes with.
#[cfg(feature = "ed25519")]
pub fn anchor() -> Option<VerifyingKey<'static>> {
    static KEY: &[u8; 32] = include_bytes!(concat!(env!("SUITCASE_GENERATED"), "/fw-ed25519.pub"));
    suitcase_processor::cose::ed25519_dalek::VerifyingKey::from_bytes(KEY)
        .ok()
        .map(VerifyingKey::Ed25519)
}

/// Where the bootloader copies the verified image and jumps ("RAM load"): the
/// application is linked for this 1 MiB window (`memory/app.x`).
pub const RAM_IMAGE: u32 = 0x2010_0000;
/// Size of that window; the last [`BOOT_INFO_LEN`] bytes hold the [`BootInfo`].
pub const RAM_IMAGE_SIZE: u32 = 0x0010_0000;
/// Bytes reserved for [`BootInfo`] at the end of the window.
pub const BOOT_INFO_LEN: u32 = 64;
/// Where [`BootInfo`] lives.
pub const BOOT_INFO_AT: u32 = RAM_IMAGE + RAM_IMAGE_SIZE - BOOT_INFO_LEN;
/// "SCbi": a [`BootInfo`] the bootloader wrote.
const BOOT_INFO_MAGIC: u32 = u32::from_le_bytes(*b"SCbi");

/// What the bootloader tells the image it starts: which manifest it verified, whether
/// the boot is a trial, and how long the image is (its trailer, the build tag, is in
/// the last 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The image must confirm itself or be reverted.
    pub trial: bool,
    /// Image length in bytes.
    pub len: u32,
}

impl BootInfo {
    /// Writes `self` to [`BOOT_INFO_AT`].
    pub fn store(&self) {
        let words = [
            BOOT_INFO_MAGIC,
            self.sequence as u32,
            (self.sequence >> 32) as u32,
            u32::from(self.trial),
            self.len,
        ];
        for (i, w) in words.iter().enumerate() {
            // SAFETY: BOOT_INFO_AT.. is the last 64 bytes of the RAM image window, which
            // is always mapped SRAM; neither image links anything there (the bootloader's
            // RAM ends at 0x2010_0000, the application's image must end before it).
            unsafe { core::ptr::write_volatile((BOOT_INFO_AT as *mut u32).add(i), *w) };
        }
    }

    /// Reads what the bootloader stored, if it did.
    pub fn load() -> Option<BootInfo> {
        let mut w = [0u32; 5];
        for (i, slot) in w.iter_mut().enumerate() {
            // SAFETY: as in `store`; a read of mapped SRAM.
            *slot = unsafe { core::ptr::read_volatile((BOOT_INFO_AT as *const u32).add(i)) };
        }
        (w[0] == BOOT_INFO_MAGIC).then(|| BootInfo {
            sequence: u64::from(w[1]) | (u64::from(w[2]) << 32),
            trial: w[3] != 0,
            len: w[4],
        })
    }
}
