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
//! - [`trust_store`]: the trust store both verify against, from its two flash copies
//!   ([`TRUST_AT`]; docs/trust-store.md);
//! - [`stack`]: peak stack by painting;
//! - [`start`]: the jump into a verified image;
//! - with feature `chain` (docs/boot.md §11): the second-stage slots ([`STAGE2_AT`],
//!   [`stages`]), the first stage's ROM-key check (`rom_verify`) and its [`Handover`].
//!
//! Everything here is safe code except the raw semihosting traps in [`host`], the
//! fixed-address [`BootInfo`] and [`Handover`] accessors and [`start`], each with its
//! SAFETY comment.
#![no_std]

pub mod flash;
pub mod host;
pub mod power;
pub mod stack;

use suitcase_boot::{Layout, Region, SectorRun};
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

/// Slot header + envelope area before the image. The crypto-agility build (`migration`)
/// stores envelopes with an HSS-LMS signature (about 2.4 KB) and a trust store in the
/// manifest, so its header is a whole sector.
#[cfg(not(feature = "migration"))]
pub const HEADER: u32 = 1024;
/// See above.
#[cfg(feature = "migration")]
pub const HEADER: u32 = SECTOR;
/// Sectors of the primary slot (the secondary has one more: the swap's spare). The
/// migration build links three verifiers (about 1.7 times the code), so its slots are
/// larger.
#[cfg(not(feature = "migration"))]
const PRIMARY_SECTORS: u32 = 32;
/// See above.
#[cfg(feature = "migration")]
const PRIMARY_SECTORS: u32 = 48;
/// Sectors of one trust-store copy ([`suitcase_trust::Area`]).
pub const TRUST_COPY_SECTORS: u32 = 1;
/// Offset of the trust-store area: after the slots, so the rest of the layout is the
/// one docs/boot.md §10 describes. Copy A here, copy B one copy further.
pub const TRUST_AT: u32 = (2 + 2 + PRIMARY_SECTORS + PRIMARY_SECTORS + 1) * SECTOR;
/// Offset of the two second-stage slots of the chained boot (docs/boot.md §11), after
/// the trust store; slot A here, slot B one slot further.
pub const STAGE2_AT: u32 = TRUST_AT + 2 * TRUST_COPY_SECTORS * SECTOR;
/// Size of one second-stage slot: flags and envelope (2 KiB) and a second stage of up to
/// 94 KiB (the ES256 bootloader is about 87 KB).
pub const STAGE2_SLOT: u32 = 24 * SECTOR;
/// Byte size of the flash file: state 2 + counter 2 + primary + secondary (one more) +
/// the two trust-store copies.
#[cfg(not(feature = "chain"))]
pub const FLASH_SIZE: usize = STAGE2_AT as usize;
/// Byte size of the flash file of the chained boot: the same and the two second-stage
/// slots.
#[cfg(feature = "chain")]
pub const FLASH_SIZE: usize = (STAGE2_AT + 2 * STAGE2_SLOT) as usize;

/// The second-stage slots over `flash` (`suitcase_boot::stage`).
pub fn stages<F: embedded_storage::nor_flash::NorFlash>(
    flash: F,
) -> Result<suitcase_boot::stage::Stages<F>, suitcase_boot::stage::StageError> {
    suitcase_boot::stage::Stages::new(flash, STAGE2_AT, STAGE2_AT + STAGE2_SLOT, STAGE2_SLOT, 0xFF)
}

/// The first stage's Ed25519 public key (the ROM key), written by xtask
/// (`target/generated/stage1-rom.pub`; its private half signs second-stage manifests).
#[cfg(feature = "chain")]
static ROM_KEY: &[u8; 32] = include_bytes!("../../target/generated/stage1-rom.pub");

/// The ROM key's check of a second-stage envelope's COSE_Sign1 (`suitcase_boot::stage::Verify`:
/// the `Sig_structure`, the signature): the first stage's before it starts a second stage,
/// and the update agent's before it installs one, so both judge an envelope alike.
#[cfg(feature = "chain")]
pub fn rom_verify(signed: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        salty::PublicKey::try_from(ROM_KEY),
        <&[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    key.verify(signed, &salty::Signature::from(sig)).is_ok()
}

/// Starts the image at `at`: points VTOR at its vector table (so its exceptions, the
/// power-cut SysTick among them, reach its own handlers; the barriers make the new table
/// take effect first), then `bootload`: MSP from word 0, PC from word 1.
///
/// # Safety
///
/// `at` must hold a complete image linked for that address, beginning with its vector
/// table, whose bytes the caller verified and nothing changed since.
pub unsafe fn start(scb: &cortex_m::peripheral::SCB, at: u32) -> ! {
    // SAFETY: the caller's contract: a verified image linked for `at` is there.
    unsafe {
        scb.vtor.write(at);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        cortex_m::asm::bootload(at as *const u32)
    }
}

/// Where the first stage copies the chosen second stage and starts it: the second stage
/// is linked for this window (`memory/stage2.x`), in the 4 MiB SSRAM at 0 (RAM on the
/// MPS2 board and in QEMU), above the first stage's own code.
pub const STAGE2_RAM: u32 = 0x0010_0000;
/// Size of that window; its last [`HANDOVER_LEN`] bytes hold the [`Handover`].
pub const STAGE2_RAM_SIZE: u32 = 0x0010_0000;
/// Bytes reserved for the [`Handover`] at the end of the window.
pub const HANDOVER_LEN: u32 = 64;
/// Where the [`Handover`] lives.
pub const HANDOVER_AT: u32 = STAGE2_RAM + STAGE2_RAM_SIZE - HANDOVER_LEN;
/// "SCs2": a [`Handover`] the first stage wrote.
const HANDOVER_MAGIC: u32 = u32::from_le_bytes(*b"SCs2");
/// The largest signed trust store the images read (a copy holds up to a sector minus
/// its 64-byte header; the test stores are under 1 KiB).
pub const STORE_MAX: usize = 2048;

const TWO: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 2,
}];
const PRIMARY: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: PRIMARY_SECTORS,
}];
const SECONDARY: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: PRIMARY_SECTORS + 1,
}];

/// The flash layout (offsets in the flash file): journal at 0, counter at 8 KiB, primary
/// slot at 16 KiB (128 KiB; 192 KiB in the migration build), the secondary after it (one
/// unit more). One trial boot: an image that does not confirm on its first run is
/// reverted at the next boot.
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
        offset: (4 + PRIMARY_SECTORS) * SECTOR,
        sectors: &SECONDARY,
    },
    header_size: HEADER,
    erased: 0xFF,
    trial_boots: 1,
};

#[cfg(feature = "suitcase-trust")]
/// The trust-store area (docs/trust-store.md, "Two copies on flash") over `flash`.
pub fn trust_area<F: embedded_storage::nor_flash::NorFlash>(
    flash: F,
) -> Result<suitcase_trust::Area<F>, suitcase_trust::TrustError> {
    let size = TRUST_COPY_SECTORS * SECTOR;
    suitcase_trust::Area::new(flash, TRUST_AT, TRUST_AT + size, size)
}

#[cfg(feature = "suitcase-trust")]
/// Loads the current trust store into `buf`, finishing an interrupted commit first
/// (so the images always act on one whole store, the old or the new).
pub fn trust_store<'b, F: embedded_storage::nor_flash::NorFlash>(
    flash: &mut F,
    buf: &'b mut [u8],
) -> Result<suitcase_trust::Store<'b>, suitcase_trust::TrustError> {
    trust_area(flash)?.load(buf)
}

#[cfg(feature = "suitcase-trust")]
/// A short reason for a trust-store error, without formatting (which would add
/// several KiB to the measured bootloader).
pub fn trust_error(e: suitcase_trust::TrustError) -> &'static str {
    use suitcase_trust::TrustError as E;
    match e {
        E::Decode(_) => "malformed",
        E::BadKey(_) => "a key is not a key of its algorithm",
        E::TooLarge => "too many keys or clauses",
        E::Rollback { .. } => "not newer than the current store",
        E::BelowCurrentThreshold { .. } => "below the current root threshold",
        E::NewKeysDidNotSign { .. } => "its own root keys did not sign",
        E::Unusable => "its policy needs algorithms this build lacks",
        E::Signature => "a signature is not a COSE_Sign1",
        E::NoValidCopy => "no valid copy",
        E::Flash => "flash error",
        E::BufferTooSmall => "larger than the buffer",
        _ => "refused",
    }
}

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

/// What the first stage tells the second stage it starts (the chained boot), and the
/// second stage passes on to the application in [`BootInfo::stage2`]: which slot runs,
/// its version (its manifest's sequence number), whether it runs on trial (it must be confirmed, or the first
/// stage falls back at the next boot), its image length.
///
/// At [`HANDOVER_AT`], five little-endian words: `"SCs2"`, slot (0 = A, 1 = B),
/// version, trial (0/1), length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The running slot.
    pub slot: suitcase_boot::stage::Slot,
    /// Its version (its manifest's sequence number).
    pub version: u32,
    /// The first stage started it as a trial.
    pub trial: bool,
    /// Image length in bytes.
    pub len: u32,
}

impl Handover {
    fn words(&self) -> [u32; 4] {
        [
            u32::from(self.slot == suitcase_boot::stage::Slot::B),
            self.version,
            u32::from(self.trial),
            self.len,
        ]
    }

    fn from_words(w: [u32; 4]) -> Handover {
        Handover {
            slot: if w[0] == 1 {
                suitcase_boot::stage::Slot::B
            } else {
                suitcase_boot::stage::Slot::A
            },
            version: w[1],
            trial: w[2] != 0,
            len: w[3],
        }
    }

    /// Writes `self` to [`HANDOVER_AT`] (the first stage, before the jump).
    pub fn store(&self) {
        let w = self.words();
        for (i, v) in [HANDOVER_MAGIC, w[0], w[1], w[2], w[3]].iter().enumerate() {
            // SAFETY: HANDOVER_AT.. is the last 64 bytes of the second stage's window,
            // always mapped SSRAM; nothing is linked there (memory/stage2.x ends the
            // second stage's code 64 bytes earlier, and the first stage's RAM is SRAM).
            unsafe { core::ptr::write_volatile((HANDOVER_AT as *mut u32).add(i), *v) };
        }
    }

    /// Reads what the first stage stored, if it did (the second stage, at start).
    pub fn load() -> Option<Handover> {
        let mut w = [0u32; 5];
        for (i, slot) in w.iter_mut().enumerate() {
            // SAFETY: as in `store`; a read of mapped SSRAM.
            *slot = unsafe { core::ptr::read_volatile((HANDOVER_AT as *const u32).add(i)) };
        }
        (w[0] == HANDOVER_MAGIC).then(|| Handover::from_words([w[1], w[2], w[3], w[4]]))
    }
}

/// What the bootloader tells the image it starts: which manifest it verified, whether
/// the boot is a trial, and how long the image is (its trailer, the build tag, is in
/// the last 16 bytes); in the chained boot, also which second stage runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The image must confirm itself or be reverted.
    pub trial: bool,
    /// Image length in bytes.
    pub len: u32,
    /// The second stage that booted the image (chained boot only).
    pub stage2: Option<Handover>,
}

impl BootInfo {
    /// Writes `self` to [`BOOT_INFO_AT`].
    pub fn store(&self) {
        // Words 5..10: the second stage's handover, magic first (0 when none).
        let (magic, s2) = match self.stage2 {
            Some(h) => (HANDOVER_MAGIC, h.words()),
            None => (0, [0; 4]),
        };
        let words = [
            BOOT_INFO_MAGIC,
            self.sequence as u32,
            (self.sequence >> 32) as u32,
            u32::from(self.trial),
            self.len,
            magic,
            s2[0],
            s2[1],
            s2[2],
            s2[3],
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
        let mut w = [0u32; 10];
        for (i, slot) in w.iter_mut().enumerate() {
            // SAFETY: as in `store`; a read of mapped SRAM.
            *slot = unsafe { core::ptr::read_volatile((BOOT_INFO_AT as *const u32).add(i)) };
        }
        (w[0] == BOOT_INFO_MAGIC).then(|| BootInfo {
            sequence: u64::from(w[1]) | (u64::from(w[2]) << 32),
            trial: w[3] != 0,
            len: w[4],
            stage2: (w[5] == HANDOVER_MAGIC)
                .then(|| Handover::from_words([w[6], w[7], w[8], w[9]])),
        })
    }
}
