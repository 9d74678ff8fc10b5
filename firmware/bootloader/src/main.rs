//! The suitcase bootloader on QEMU `mps2-an386` (Cortex-M4F); docs/boot.md §10.
//!
//! 1. Reads its command line (`flash=<file> cut=<ticks>`), arms the power-cut timer
//!    ([`board::power`]), opens the flash file ([`board::flash::HostFlash`]).
//! 2. Runs [`suitcase_boot::boot`]: replay the journal, finish or start a swap or revert,
//!    verify the primary slot (signature, then the manifest's validate sequence with
//!    its image-match) — all in the device crates, safe code.
//! 3. "RAM load": copies the verified image from the primary slot into the window the
//!    application is linked for (`0x2010_0000`), leaves a [`BootInfo`] at the end of the
//!    window, points VTOR at the image and jumps. Code cannot run from a semihosting
//!    file, so the bytes that run are a copy of the bytes that were verified, taken
//!    from the same RAM copy of the flash in the same run.
//!
//! Built with feature `stage2`, it is the second stage of the chained boot (docs/boot.md
//! §11): the first stage copied it to its window and started it, having armed the
//! power-cut timer (which this build leaves running), and left a [`board::Handover`]
//! saying which second-stage slot runs; it passes that on in [`BootInfo::stage2`].
//!
//! Prints one `boot:` line before the jump; exit statuses: [`EXIT_NO_IMAGE`] when no image
//! verifies, [`EXIT_ERROR`] for a flash or layout error, [`EXIT_SETUP`] when the flash file
//! or the key is missing, [`board::power::CUT_STATUS`] at a power cut, 101 on a panic,
//! 102 on a HardFault.

#![no_std]
#![no_main]

use board::flash::HostFlash;
use board::host::{Cmdline, Part, exit, line};
use board::{BOOT_INFO_LEN, BootInfo, COMPONENT, IDENTITY, LAYOUT, RAM_IMAGE};
use board::{RAM_IMAGE_SIZE, power};
use cortex_m_rt::entry;
use embedded_storage::nor_flash::ReadNorFlash;
use suitcase_boot::{BootError, Config, boot};
use suitcase_trust::TrustError;

/// No image verifies (`BootError::NoBootableImage`).
const EXIT_NO_IMAGE: u32 = 3;
/// A flash or layout error.
const EXIT_ERROR: u32 = 4;
/// The flash file cannot be opened, or it holds no valid trust store.
const EXIT_SETUP: u32 = 5;

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(EXIT_SETUP)
    };
    let cmd = Cmdline::get();
    let Some(mem) = board::flash::memory() else {
        exit(EXIT_SETUP)
    };
    let painted = board::stack::paint();
    // Only the single-stage bootloader arms the timer: as the chained second stage, the
    // first stage armed it, and its count (and a pending cut) must run on through this
    // image and the application.
    #[cfg(not(feature = "stage2"))]
    {
        let mut syst = cp.SYST;
        power::arm(&mut syst, cmd.number(b"cut").unwrap_or(0));
    }
    #[cfg(feature = "stage2")]
    let Some(stage2) = board::Handover::load() else {
        line(&[Part::S("boot: no hand-over from the first stage")]);
        exit(EXIT_SETUP)
    };
    let Some(mut flash) = HostFlash::open(cmd.value(b"flash").unwrap_or(b"flash.img"), mem) else {
        line(&[Part::S("boot: cannot open the flash file")]);
        exit(EXIT_SETUP)
    };
    // The trust anchors and the signing policy come from the trust-store area, never
    // from the image: a store update re-keys the bootloader without reflashing it.
    let mut store_buf = [0u8; board::STORE_MAX];
    let store = match board::trust_store(&mut flash, &mut store_buf) {
        Ok(s) => s,
        Err(e) => {
            line(&[
                Part::S("boot: no usable trust store: "),
                Part::S(board::trust_error(e)),
            ]);
            exit(if e == TrustError::Flash {
                EXIT_ERROR
            } else {
                EXIT_SETUP
            })
        }
    };
    let cfg = Config {
        layout: LAYOUT,
        keys: &store,
        identity: &IDENTITY,
        component: &COMPONENT,
    };
    // The stored envelope (≤ HEADER − 32 bytes) and the swap's copy buffer.
    let mut buf = [0u8; board::HEADER as usize];
    let handover = match boot(&mut flash, &cfg, &mut buf) {
        Ok(h) => h,
        Err(e) => {
            let (status, why) = match e {
                BootError::NoBootableImage(_) => (EXIT_NO_IMAGE, "no bootable image"),
                _ => (EXIT_ERROR, "flash or layout error"),
            };
            line(&[
                Part::S("boot: "),
                Part::S(why),
                Part::S(", flash rule violations "),
                Part::N(u64::from(flash.violations())),
            ]);
            exit(status)
        }
    };
    let (first, last) = flash.window().unwrap_or((0, 0));
    line(&[
        Part::S("boot: verified sequence "),
        Part::N(handover.sequence),
        Part::S(if handover.trial {
            " (trial), "
        } else {
            " (permanent), "
        }),
        Part::N(u64::from(handover.len)),
        Part::S(" B; flash writes at ticks "),
        Part::N(u64::from(first)),
        Part::S(".."),
        Part::N(u64::from(last)),
        Part::S("; hand-over at tick "),
        Part::N(u64::from(power::ticks())),
        Part::S("; trust store v"),
        Part::N(store.version()),
        Part::S("; peak stack "),
        Part::N(board::stack::peak(painted) as u64),
        Part::S(" B"),
    ]);
    if handover.len > RAM_IMAGE_SIZE - BOOT_INFO_LEN {
        line(&[Part::S("boot: image larger than the RAM window")]);
        exit(EXIT_ERROR)
    }
    // SAFETY: RAM_IMAGE .. RAM_IMAGE + len lies in the RAM-load window (checked above),
    // mapped SRAM that nothing in this image uses (its RAM ends at 0x2010_0000,
    // memory/bootloader.x), so this is the only reference to it.
    let window =
        unsafe { core::slice::from_raw_parts_mut(RAM_IMAGE as *mut u8, handover.len as usize) };
    if flash.read(handover.image, window).is_err() {
        exit(EXIT_ERROR)
    }
    BootInfo {
        sequence: handover.sequence,
        trial: handover.trial,
        len: handover.len,
        #[cfg(feature = "stage2")]
        stage2: Some(stage2),
        #[cfg(not(feature = "stage2"))]
        stage2: None,
    }
    .store();
    // SAFETY: the window now holds exactly the image `boot` verified (signature, then
    // image-match over these bytes), read from the same RAM copy of the flash with
    // nothing in between. It is linked for this address (memory/app.x) and begins with
    // its vector table.
    unsafe { board::start(&cp.SCB, RAM_IMAGE) }
}

board::handlers!();
