//! `suitcase-boot` on the device: `boot::boot` over a RAM NOR flash (1 KiB sectors,
//! 4-byte words, programming only erased words) laid out as journal, counter, primary
//! and secondary slots. The primary holds example 0 re-signed for image A (sequence
//! number 0), put there as a factory programmer would; the update (example 0 for image
//! B, sequence number 1) is staged through `Updater::stage` (the processor's component
//! storage) and requested for test. Each test runs the real bootloader: verified boot,
//! the swap with its three signature checks, the trial, confirm and revert.

use embedded_storage::nor_flash::NorFlash;
use suitcase_boot::update::Updater;
use suitcase_boot::{Config, Handover, Layout, Mode, Region, SectorRun, State, boot};
use suitcase_cose::VerifyingKey;
use suitcase_cose::p256::ecdsa::VerifyingKey as P256Key;
use suitcase_processor::platform::{
    ComponentStorage, StaticIdentity, StaticKeys, Target, TrustAnchor,
};
use suitcase_processor::suit::ComponentId;

use crate::harness::Outcome;
use crate::statics::StaticBuf;
use crate::tests::flash::RamFlash;
use crate::vectors::{
    BOOT_B, EXAMPLE_KEY_SEC1, EXAMPLE0_REAL, IMAGE_A, IMAGE_B, SPEC_CLASS, SPEC_VENDOR,
};

/// Sector size of the RAM flash.
const SECTOR: u32 = 1024;
/// State (2 sectors) + counter (2) + primary (4) + secondary (5).
const FLASH_SIZE: usize = 13 * SECTOR as usize;
static FLASH: StaticBuf<FLASH_SIZE> = StaticBuf::new();

/// Header + envelope area before the image (example 0 re-signed is under 300 bytes).
const HEADER: u32 = 512;
const STATE_AT: u32 = 0;
const COUNTER_AT: u32 = 2 * SECTOR;
const PRIMARY_AT: u32 = 4 * SECTOR;
const SECONDARY_AT: u32 = 8 * SECTOR;

/// The image component, `[h'00']`.
const C0: [u8; 3] = [0x81, 0x41, 0x00];

const TWO: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 2,
}];
const FOUR: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 4,
}];
const FIVE: [SectorRun; 1] = [SectorRun {
    size: SECTOR,
    count: 5,
}];

fn layout(trial_boots: u8) -> Layout<'static> {
    Layout {
        state: Region {
            offset: STATE_AT,
            sectors: &TWO,
        },
        counter: Region {
            offset: COUNTER_AT,
            sectors: &TWO,
        },
        primary: Region {
            offset: PRIMARY_AT,
            sectors: &FOUR,
        },
        secondary: Region {
            offset: SECONDARY_AT,
            sectors: &FIVE,
        },
        header_size: HEADER,
        erased: 0xFF,
        trial_boots,
    }
}

/// Runs `f` with the bootloader's configuration (the spec key, the spec identity).
fn with_config<R>(trial_boots: u8, f: impl FnOnce(&Config<'_>) -> R) -> Result<R, &'static str> {
    let key = P256Key::from_sec1_bytes(&EXAMPLE_KEY_SEC1).map_err(|_| "example key invalid")?;
    let anchors = [TrustAnchor {
        key: VerifyingKey::P256(key),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: 0,
    };
    Ok(f(&Config {
        layout: layout(trial_boots),
        keys: &keys,
        identity: &identity,
        component: &C0,
    }))
}

/// The factory image: slot header, example 0 for image A, erased padding, image A.
fn program_primary(mem: &mut [u8]) -> Outcome {
    let slot = mem
        .get_mut(PRIMARY_AT as usize..SECONDARY_AT as usize)
        .ok_or("primary slot")?;
    let env_len = EXAMPLE0_REAL.len();
    if 32 + env_len > HEADER as usize {
        return Err("envelope larger than the header area");
    }
    let header = slot.get_mut(..32).ok_or("header")?;
    header.fill(0);
    header.get_mut(..4).ok_or("magic")?.copy_from_slice(b"SCs1");
    header
        .get_mut(4..8)
        .ok_or("length")?
        .copy_from_slice(&(env_len as u32).to_le_bytes());
    header
        .get_mut(8..12)
        .ok_or("length")?
        .copy_from_slice(&(IMAGE_A.len() as u32).to_le_bytes());
    slot.get_mut(32..32 + env_len)
        .ok_or("envelope")?
        .copy_from_slice(EXAMPLE0_REAL);
    slot.get_mut(HEADER as usize..HEADER as usize + IMAGE_A.len())
        .ok_or("image")?
        .copy_from_slice(IMAGE_A);
    Ok(())
}

/// Stages image B with its envelope through the updater and requests it for test: what
/// the update agent does after the processor's install (here fed the bytes directly).
fn stage_b<F: NorFlash>(flash: &mut F) -> Outcome {
    let layout = layout(1);
    let mut updater = Updater::new(flash, &layout).map_err(|_| "updater: layout")?;
    let mut staging = updater.stage(&C0).map_err(|_| "stage refused")?;
    let target = Target {
        index: 0,
        id: ComponentId::decode(&C0).map_err(|_| "component id")?,
        slot: None,
    };
    let len = IMAGE_B.len() as u64;
    staging
        .begin_write(&target, Some(len))
        .map_err(|_| "begin_write")?;
    // Uneven pieces, so the staging buffer's partial words are exercised.
    for piece in IMAGE_B.chunks(333) {
        let offset = offset_of(piece);
        staging
            .write(&target, offset, piece)
            .map_err(|_| "staging write")?;
    }
    staging
        .finish_write(&target, len)
        .map_err(|_| "finish_write")?;
    staging
        .commit(BOOT_B, Mode::Test)
        .map_err(|_| "commit refused")
}

fn offset_of(piece: &[u8]) -> u64 {
    (piece.as_ptr() as usize).wrapping_sub(IMAGE_B.as_ptr() as usize) as u64
}

/// One boot with a 1 KiB buffer (envelope, and the swap's copy buffer).
fn boot_once<F: NorFlash>(flash: &mut F, trial_boots: u8) -> Result<Handover, &'static str> {
    let mut buf = [0u8; 1024];
    with_config(trial_boots, |cfg| boot(flash, cfg, &mut buf))?.map_err(|_| "boot failed")
}

fn primary_image<'m>(mem: &'m [u8], len: usize) -> Result<&'m [u8], &'static str> {
    let at = (PRIMARY_AT + HEADER) as usize;
    mem.get(at..at + len).ok_or("primary image")
}

fn state<F: NorFlash>(flash: &mut F) -> Result<State, &'static str> {
    let layout = layout(1);
    Updater::new(flash, &layout)
        .and_then(|mut u| u.state())
        .map_err(|_| "journal unreadable")
}

/// Verified boot of the factory image: the journal is empty (Idle), the primary's
/// envelope authenticates and its validate sequence matches image A; the counter rises
/// to its sequence number.
pub fn verified_boot() -> Outcome {
    let mut mem = FLASH.take(0xFF)?;
    program_primary(&mut mem[..])?;
    let mut flash = RamFlash::<4> {
        mem: &mut mem[..],
        erases: 0,
        writes: 0,
    };
    let h = boot_once(&mut flash, 1)?;
    if h.image != PRIMARY_AT + HEADER || h.len as usize != IMAGE_A.len() {
        return Err("handover: wrong image");
    }
    if h.sequence != 0 || h.trial {
        return Err("handover: wrong sequence or trial");
    }
    Ok(())
}

/// The whole update: image B staged and requested; the boot verifies both slots,
/// swaps (3 units, 6 half-steps), verifies the new primary and hands it over on trial;
/// the image confirms; the next boot is permanent. Every sector is erased at most the
/// swap's once (plus the agent's staging erase).
pub fn staged_swap_trial_confirm() -> Outcome {
    let mut mem = FLASH.take(0xFF)?;
    program_primary(&mut mem[..])?;
    let mut flash = RamFlash::<4> {
        mem: &mut mem[..],
        erases: 0,
        writes: 0,
    };
    stage_b(&mut flash)?;
    let h = boot_once(&mut flash, 1)?;
    if !h.trial || h.sequence != 1 || h.len as usize != IMAGE_B.len() {
        return Err("first boot: not a trial of image B");
    }
    if primary_image(flash.mem, IMAGE_B.len())? != IMAGE_B {
        return Err("primary does not hold image B after the swap");
    }
    {
        let layout = layout(1);
        let mut updater = Updater::new(&mut flash, &layout).map_err(|_| "updater")?;
        updater.confirm().map_err(|_| "confirm refused")?;
        if updater.floor().map_err(|_| "counter")? != 1 {
            return Err("counter did not rise to 1 on confirm");
        }
    }
    let h = boot_once(&mut flash, 1)?;
    if h.trial || h.sequence != 1 {
        return Err("after confirm: not a permanent boot of image B");
    }
    if !matches!(state(&mut flash)?, State::Idle(_)) {
        return Err("journal not idle after confirm");
    }
    // Staging: 3 sectors (header + 2 KiB from unit 1); the swap: 3 + 3 units; the
    // journal and the counter: at most a bank each to open and one to compact.
    if flash.erases > 3 + 3 + 3 + 2 + 2 {
        return Err("more erases than one update needs");
    }
    Ok(())
}

/// An unconfirmed trial is reverted at the next boot (one trial boot allowed): image A
/// comes back, permanent, with its own sequence number, and the counter stays at 0.
pub fn unconfirmed_trial_reverted() -> Outcome {
    let mut mem = FLASH.take(0xFF)?;
    program_primary(&mut mem[..])?;
    let mut flash = RamFlash::<4> {
        mem: &mut mem[..],
        erases: 0,
        writes: 0,
    };
    stage_b(&mut flash)?;
    let h = boot_once(&mut flash, 1)?;
    if !h.trial || h.sequence != 1 {
        return Err("first boot: not a trial of image B");
    }
    let h = boot_once(&mut flash, 1)?;
    if h.trial || h.sequence != 0 || h.len as usize != IMAGE_A.len() {
        return Err("second boot: image A not back");
    }
    if primary_image(flash.mem, IMAGE_A.len())? != IMAGE_A {
        return Err("primary does not hold image A after the revert");
    }
    let layout = layout(1);
    let floor = Updater::new(&mut flash, &layout)
        .and_then(|mut u| u.floor())
        .map_err(|_| "counter")?;
    if floor != 0 {
        return Err("counter moved without a confirm");
    }
    Ok(())
}
