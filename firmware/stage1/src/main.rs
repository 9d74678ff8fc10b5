//! The immutable first stage of the updatable bootloader (docs/boot.md §11), on a
//! Cortex-M4 in QEMU: a SUIT bootloader reduced to what a boot needs — the envelope kept
//! with each second stage, read by [`suitcase_boot::stage::read_envelope`] (one COSE_Sign1
//! by its Ed25519 ROM key, with salty; the manifest digest; sequence number, image digest
//! and size), and SHA-256 over the image.
//!
//! 1. Reads its command line (`flash=<file> cut=<ticks>`), arms the power-cut timer
//!    ([`board::power`]; it keeps counting through the second stage and the application,
//!    which do not re-arm it), opens the flash file ([`board::flash::HostFlash`]).
//! 2. Runs [`Stages::choose`] over the two second-stage slots ([`board::STAGE2_AT`]):
//!    the newest slot whose envelope and image verify, as a trial (marked "tried" first) until it
//!    is confirmed; the other one when a trial was never confirmed.
//! 3. Copies the chosen image into the window the second stage is linked for
//!    ([`board::STAGE2_RAM`]), checks the copy's SHA-256 against the manifest's digest
//!    (the bytes that run are the bytes verified, whatever the flash did after `choose`
//!    read it), leaves a [`Handover`] at the window's end, points VTOR at it and jumps.
//!
//! Prints one `stage1:` line before the jump (feature `log`, on by default and in every
//! test run; without it the first stage prints nothing, as MCUboot's minimal build logs
//! nothing: that is the build BENCHMARKS.md §3 sizes against MCUboot's 16 KiB). Exit statuses: [`EXIT_HALT`] when no slot
//! verifies (the recovery state), [`EXIT_ERROR`] for a flash or layout error,
//! [`EXIT_SETUP`] when the flash file is missing, [`board::power::CUT_STATUS`] at a
//! power cut, 101 on a panic, 102 on a HardFault.
#![no_std]
#![no_main]

use board::flash::HostFlash;
use board::host::{Cmdline, Part, exit};
use board::{HANDOVER_LEN, Handover, STAGE2_RAM, STAGE2_RAM_SIZE, power};
use cortex_m_rt::entry;
use embedded_storage::nor_flash::ReadNorFlash;
use suitcase_boot::stage::{Choice, IMAGE, Slot, digest_matches};

/// No second-stage slot verifies: stay in the first stage.
const EXIT_HALT: u32 = 6;
/// A flash or layout error.
const EXIT_ERROR: u32 = 4;
/// The flash file cannot be opened.
const EXIT_SETUP: u32 = 5;

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        exit(EXIT_SETUP)
    };
    let cmd = Cmdline::get();
    let Some(mem) = board::flash::memory() else {
        exit(EXIT_SETUP)
    };
    power::arm(&mut cp.SYST, cmd.number(b"cut").unwrap_or(0));
    let Some(flash) = HostFlash::open(cmd.value(b"flash").unwrap_or(b"flash.img"), mem) else {
        say(&[Part::S("stage1: cannot open the flash file")]);
        exit(EXIT_SETUP)
    };
    let Ok(mut stages) = board::stages(flash) else {
        exit(EXIT_ERROR)
    };
    let (slot, version, trial, len, digest) = match stages.choose(&board::rom_verify) {
        Ok(Choice::Run {
            slot,
            version,
            trial,
            len,
            digest,
        }) => (slot, version, trial, len, digest),
        Ok(Choice::Halt) => {
            say(&[Part::S("stage1: no second stage verifies, halt")]);
            exit(EXIT_HALT)
        }
        Err(_) => {
            say(&[Part::S("stage1: flash or layout error")]);
            exit(EXIT_ERROR)
        }
    };
    let mut flash = stages.into_inner();
    let (first, last) = flash.window().unwrap_or((0, 0));
    if len > STAGE2_RAM_SIZE - HANDOVER_LEN {
        exit(EXIT_ERROR)
    }
    let start = match slot {
        Slot::A => board::STAGE2_AT,
        Slot::B => board::STAGE2_AT + board::STAGE2_SLOT,
    };
    // SAFETY: STAGE2_RAM .. STAGE2_RAM + len lies in the second stage's window (checked
    // above), mapped SSRAM above this image's code (memory/stage1.x ends it at 1 MiB, and
    // this image is about 13 KB); nothing else refers to it.
    let window = unsafe { core::slice::from_raw_parts_mut(STAGE2_RAM as *mut u8, len as usize) };
    if flash.read(start + IMAGE, window).is_err() {
        exit(EXIT_ERROR)
    }
    // Verify the bytes that will run, not only the ones `choose` read: on a real part the
    // flash could change in between (external flash, a glitch). A mismatch ends the boot
    // here; the next reset chooses again.
    if !digest_matches(window, &digest) {
        say(&[Part::S("stage1: the copy in RAM does not match its manifest, halt")]);
        exit(EXIT_ERROR)
    }
    say(&[
        Part::S("stage1: second stage v"),
        Part::N(u64::from(version)),
        Part::S(if slot == Slot::A {
            " from slot A"
        } else {
            " from slot B"
        }),
        Part::S(if trial {
            " (trial), "
        } else {
            " (confirmed), "
        }),
        Part::N(u64::from(len)),
        Part::S(" B; flash writes at ticks "),
        Part::N(u64::from(first)),
        Part::S(".."),
        Part::N(u64::from(last)),
        Part::S("; hand-over at tick "),
        Part::N(u64::from(power::ticks())),
    ]);
    Handover {
        slot,
        version,
        trial,
        len,
    }
    .store();
    // SAFETY: the one jump of the first stage. The window now holds exactly an image whose
    // SHA-256 is the one in the manifest the ROM key signed (checked on this copy just
    // above), and the second stage is linked for this address (memory/stage2.x), vector
    // table first.
    unsafe { board::start(&cp.SCB, STAGE2_RAM) }
}

/// One diagnostics line on the semihosting console (feature `log`).
#[cfg(feature = "log")]
fn say(parts: &[Part<'_>]) {
    board::host::line(parts);
}

/// Without feature `log`: nothing (and no decimal printer linked).
#[cfg(not(feature = "log"))]
fn say(_: &[Part<'_>]) {}

board::handlers!();
