//! The update agent's side of the chained boot (docs/boot.md §11): confirm the second stage
//! that booted this image when it runs on trial, and install a second stage that a manifest
//! carries (component `["suitcase", "stage2"]`) into the slot that is not running, with
//! that manifest's envelope.
//!
//! The envelope must satisfy the trust store (the processor) and the first stage's own
//! reading of it with its ROM key ([`board::rom_verify`]); the image is checked against it
//! as it arrives ([`suitcase_boot::stage::Stages::storage`]: held in RAM, refused at the end
//! of its write, so a bad one fails the update) and written only once the whole update
//! succeeded ([`suitcase_boot::stage::Stages::install`]: erase, image, envelope last). The
//! next boot's first stage then starts it as a trial.

use board::flash::HostFlash;
use board::host::{Cmdline, Part, line};
use board::{BootInfo, LAYOUT};
use suitcase_boot::stage::{IMAGE, Slot, StageError};
use suitcase_boot::update::Updater;
use suitcase_processor::authenticate;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};

use crate::{ENVELOPE_MAX, EXIT_REFUSED, EXIT_SETUP, FileFetch, read_envelope};

/// The second stage is installed in the other slot: reset into the first stage.
pub const EXIT_INSTALLED: u32 = 25;
/// The second stage runs on trial and its check failed (`s2test=fail`): not confirmed,
/// so the first stage falls back to the previous one at the next boot.
pub const EXIT_NOT_CONFIRMED: u32 = 26;

/// The largest second stage a slot takes.
const PACKAGE_MAX: usize = (board::STAGE2_SLOT - IMAGE) as usize;

fn slot_name(s: Slot) -> &'static str {
    match s {
        Slot::A => "A",
        Slot::B => "B",
    }
}

/// At every boot: a second stage on trial is confirmed, since it has just verified and
/// started this image (its self-test), unless the command line says `s2test=fail`. `Some`
/// ends the run with that status.
pub fn on_boot(flash: &mut HostFlash<'_>, info: &BootInfo, cmd: &Cmdline) -> Option<u32> {
    let Some(h) = info.stage2 else {
        line(&[Part::S("app: no second-stage hand-over")]);
        return Some(EXIT_SETUP);
    };
    if !h.trial {
        return None;
    }
    if cmd.value(b"s2test") == Some(b"fail") {
        line(&[
            Part::S("app: second stage v"),
            Part::N(u64::from(h.version)),
            Part::S(" failed its check, not confirming"),
        ]);
        return Some(EXIT_NOT_CONFIRMED);
    }
    match board::stages(&mut *flash).and_then(|mut s| s.confirm(h.slot)) {
        Ok(()) => {
            line(&[
                Part::S("app: second stage v"),
                Part::N(u64::from(h.version)),
                Part::S(" in slot "),
                Part::S(slot_name(h.slot)),
                Part::S(" confirmed"),
            ]);
            None
        }
        Err(_) => {
            line(&[Part::S("app: second-stage confirm failed")]);
            Some(EXIT_SETUP)
        }
    }
}

/// Authenticates the envelope in file `envelope` with the trust store, runs its update with
/// the second-stage component held and checked in RAM (the image fetched from file
/// `package`), then installs the envelope and the image into the slot that is not running.
#[inline(never)] // its package buffer must not add to the other paths' stack
pub fn install(flash: &mut HostFlash<'_>, info: &BootInfo, envelope: &[u8], package: &[u8]) -> u32 {
    let Some(h) = info.stage2 else {
        return EXIT_SETUP;
    };
    let mut env = [0u8; ENVELOPE_MAX];
    let Some(env) = read_envelope(envelope, &mut env).and_then(|n| env.get(..n)) else {
        line(&[Part::S("app: cannot read the update")]);
        return EXIT_REFUSED;
    };
    let mut store_buf = [0u8; board::STORE_MAX];
    let Ok(store) = board::trust_store(&mut *flash, &mut store_buf) else {
        return EXIT_SETUP;
    };
    let Ok(auth) = authenticate(env, &store) else {
        line(&[Part::S("app: second-stage update refused by the processor")]);
        return EXIT_REFUSED;
    };
    // The manifest's sequence number must be above the image's counter (the processor's
    // rule; read only: a second-stage update leaves the image's counter alone). The same
    // number must also be above the running second stage's version (`PackageCheck`), and
    // the first stage prefers the highest version it finds. Sequence numbers are one
    // series for all of a device's manifests (a release timestamp in seconds, as RFC 9019
    // suggests), and the first stage takes them as 32 bits: a second-stage manifest
    // numbered above 2^32 - 1 is refused.
    let Ok(floor) = Updater::new(&mut *flash, &LAYOUT).and_then(|mut u| u.floor()) else {
        return EXIT_SETUP;
    };
    let Ok(mut stages) = board::stages(&mut *flash) else {
        return EXIT_SETUP;
    };
    let mut none: [MemoryComponent<'_>; 0] = [];
    let mut inner = MemoryStorage {
        components: &mut none,
    };
    let mut held = [0u8; PACKAGE_MAX];
    let mut storage = stages.storage(&mut inner, h.version, env, &board::rom_verify, &mut held);
    let mut fetch = FileFetch {
        path: package,
        file: None,
    };
    let updated = crate::update(&auth, &mut storage, &mut fetch, floor);
    if let Some(f) = fetch.file {
        f.close();
    }
    if let Some(e) = storage.check.refused {
        line(&[
            Part::S("app: second-stage package refused: "),
            Part::S(match e {
                StageError::BadPackage => "not signed for this device's first stage",
                StageError::NotNewer => "not newer than the running second stage",
                _ => "flash or layout",
            }),
        ]);
        return EXIT_REFUSED;
    }
    if updated.is_err() {
        line(&[Part::S("app: second-stage update refused by the processor")]);
        return EXIT_REFUSED;
    }
    let Some(image) = storage.accepted() else {
        line(&[Part::S("app: the update carried no second stage")]);
        return EXIT_REFUSED;
    };
    match stages.install(h.slot, h.version, env, image, &board::rom_verify) {
        Ok(()) => {
            line(&[
                Part::S("app: second stage installed in slot "),
                Part::S(slot_name(h.slot.other())),
            ]);
            EXIT_INSTALLED
        }
        Err(_) => {
            line(&[Part::S("app: second-stage install failed")]);
            EXIT_SETUP
        }
    }
}
