//! The application image with the update agent; docs/boot.md §10.
//!
//! Linked to run from the RAM window the bootloader copies it into (`memory/app.x`). The
//! image ends with a 16-byte trailer xtask appends: an 8-byte name, then `pass` or
//! `fail` (what its self-test will say), then `SCt1`. So one build gives every image
//! of the demonstration (A, B, and C whose self-test fails), each with its own digest.
//!
//! What it does, from [`BootInfo`] and its command line (`flash=<file>`,
//! `update=<envelope file>`, `payload=<image file>`):
//!
//! | situation | action | exit status |
//! |---|---|---|
//! | trial boot, self-test passes | `Updater::confirm` | [`EXIT_CONFIRMED`] |
//! | trial boot, self-test fails | nothing (the next boot reverts) | [`EXIT_SELF_TEST_FAILED`] |
//! | permanent, `update=` and `payload=` given | what `Updater::install` does (authenticate with the trust store, fetch the payload into the staging slot, request a test swap), with a new trust store carried by the manifest checked on arrival and committed after the request | [`EXIT_STAGED`], or [`EXIT_REFUSED`] |
//! | permanent, `update=` and `measure=1` given | time the envelope's COSE verification and `authenticate` | 0 |
//! | permanent (first, before the rows below), its envelope carries a store never committed (a cut after the swap request) | commit it ([`roll_forward`]; also right after a confirm) | as below |
//! | otherwise | nothing | 0 |
//!
//! Built with feature `stage2` (the chained boot, docs/boot.md §11), it also looks after
//! the second stage ([`stage2`]): a second stage on trial is confirmed first (unless
//! `s2test=fail`: [`stage2::EXIT_NOT_CONFIRMED`]), and, permanent and given
//! `stage2=<envelope file> payload=<image file>`, it installs the second stage the
//! manifest carries, with the envelope ([`stage2::EXIT_INSTALLED`], or [`EXIT_REFUSED`]).
//!
//! Each exit is the "reset" after which xtask starts QEMU again on the same flash file.

#![no_std]
#![no_main]

#[cfg(feature = "stage2")]
mod stage2;

use board::flash::HostFlash;
use board::host::{Cmdline, File, Part, exit, line};
use board::{BootInfo, COMPONENT, IDENTITY, LAYOUT, RAM_IMAGE, power};
use cortex_m_rt::entry;
use suitcase_boot::Mode;
use suitcase_boot::update::{Floor, Updater};
use suitcase_processor::cose::CoseMessage;
use suitcase_processor::platform::{
    ComponentStorage, Fetch, FetchError, KeyStore, NoClock, NoDecryptionKeys, NoInvoke, NoPolicy,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::suit::Envelope;
use suitcase_processor::{Authenticated, Platform, UpdateSummary, authenticate};

/// The trial image passed its self-test and confirmed itself.
const EXIT_CONFIRMED: u32 = 20;
/// The trial image's self-test failed; it did not confirm.
const EXIT_SELF_TEST_FAILED: u32 = 21;
/// The update is staged and requested: reset into the bootloader.
const EXIT_STAGED: u32 = 22;
/// The agent refused the update (or could not read it).
const EXIT_REFUSED: u32 = 23;
/// No boot information, trailer, flash file or key.
const EXIT_SETUP: u32 = 24;

/// The trailer's last four bytes.
const TRAILER_MAGIC: &[u8; 4] = b"SCt1";

/// The largest envelope the agent reads (the slot header holds it, less 32 bytes).
const ENVELOPE_MAX: usize = board::HEADER as usize;

/// Serves every fetch from the payload file on the host, whatever the URI (the
/// envelope's URI is the spec example's `http://example.com/file.bin`; the transport is
/// not what this demonstrates). The image digest in the signed manifest is what makes
/// the bytes trustworthy.
struct FileFetch<'c> {
    path: &'c [u8],
    file: Option<File>,
}

impl Fetch for FileFetch<'_> {
    fn open(&mut self, _uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        if let Some(f) = self.file.take() {
            f.close();
        }
        self.file = Some(File::open_read(self.path).ok_or(FetchError::NotFound)?);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let f = self.file.ok_or(FetchError::Transport)?;
        f.read(buf).ok_or(FetchError::Transport)
    }
}

#[entry]
fn main() -> ! {
    let Some(info) = BootInfo::load() else {
        exit(EXIT_SETUP)
    };
    // SAFETY: the bootloader copied `info.len` bytes of this image to RAM_IMAGE and
    // they stay there, unchanged, while it runs (nothing writes its own code window).
    let image: &[u8] =
        unsafe { core::slice::from_raw_parts(RAM_IMAGE as *const u8, info.len as usize) };
    let Some(trailer) = image.len().checked_sub(16).and_then(|at| image.get(at..)) else {
        exit(EXIT_SETUP)
    };
    let (name, rest) = trailer.split_at(8);
    let (verdict, magic) = rest.split_at(4);
    if magic != TRAILER_MAGIC {
        exit(EXIT_SETUP)
    }
    let painted = board::stack::paint();
    let cmd = Cmdline::get();
    let Some(mem) = board::flash::memory() else {
        exit(EXIT_SETUP)
    };
    let Some(mut flash) = HostFlash::open(cmd.value(b"flash").unwrap_or(b"flash.img"), mem) else {
        exit(EXIT_SETUP)
    };
    line(&[
        Part::S("app "),
        Part::B(name),
        Part::S(": running sequence "),
        Part::N(info.sequence),
        Part::S(if info.trial {
            " on trial"
        } else {
            " (permanent)"
        }),
    ]);
    #[cfg(feature = "stage2")]
    if let Some(status) = stage2::on_boot(&mut flash, &info, &cmd) {
        finish(&flash, painted, status)
    }
    // A permanent image first finishes a store commit a power cut interrupted.
    if !info.trial {
        roll_forward(&mut flash);
    }
    let status = if info.trial {
        trial(&mut flash, verdict == b"pass")
    } else if let (Some(update), Some(b"1")) = (cmd.value(b"update"), cmd.value(b"measure")) {
        measure(&mut flash, update)
    } else if let (Some(update), Some(payload)) = (cmd.value(b"update"), cmd.value(b"payload")) {
        install(&mut flash, update, payload)
    } else if let Some(status) = install_stage2(&mut flash, &info, &cmd) {
        status
    } else {
        0
    };
    finish(&flash, painted, status)
}

/// The chained boot's second-stage update, when `stage2=` and `payload=` are given.
#[cfg(feature = "stage2")]
fn install_stage2(flash: &mut HostFlash<'_>, info: &BootInfo, cmd: &Cmdline) -> Option<u32> {
    let (envelope, package) = cmd.value(b"stage2").zip(cmd.value(b"payload"))?;
    Some(stage2::install(flash, info, envelope, package))
}

/// Without the chained boot there is no second stage to update.
#[cfg(not(feature = "stage2"))]
fn install_stage2(_: &mut HostFlash<'_>, _: &BootInfo, _: &Cmdline) -> Option<u32> {
    None
}

/// The last line (flash window, ticks, stack) and the exit.
fn finish(flash: &HostFlash<'_>, painted: board::stack::Painted, status: u32) -> ! {
    let (first, last) = flash.window().unwrap_or((0, 0));
    line(&[
        Part::S("app: flash writes at ticks "),
        Part::N(u64::from(first)),
        Part::S(".."),
        Part::N(u64::from(last)),
        Part::S("; exit at tick "),
        Part::N(u64::from(power::ticks())),
        Part::S(", flash rule violations "),
        Part::N(u64::from(flash.violations())),
        Part::S("; peak stack "),
        Part::N(board::stack::peak(painted) as u64),
        Part::S(" B"),
    ]);
    exit(status)
}

/// A trial boot: confirm if the self-test passed; otherwise leave it to the bootloader
/// to revert at the next boot.
fn trial(flash: &mut HostFlash<'_>, self_test_passed: bool) -> u32 {
    if !self_test_passed {
        line(&[Part::S("app: self-test failed, not confirming")]);
        return EXIT_SELF_TEST_FAILED;
    }
    let confirmed = Updater::new(flash, &LAYOUT).and_then(|mut u| u.confirm());
    if confirmed.is_ok() {
        line(&[Part::S("app: self-test passed, confirmed")]);
        // Permanent now: a store its envelope carries may be committed (never during the
        // trial: a revert must find the old image verifiable under the store in force).
        roll_forward(flash);
        EXIT_CONFIRMED
    } else {
        line(&[Part::S("app: confirm failed")]);
        EXIT_SETUP
    }
}

/// The trust store's roll-forward (docs/trust-store.md, "A cut between the swap request
/// and the store commit"): the envelope kept with the running, permanent image may carry
/// a store the device never committed (the power failed after the swap request); commit
/// it now. Returns whether it committed one. An envelope that does not name the
/// trust-store component is skipped before any signature is checked, so an ordinary
/// boot pays one scan of its envelope.
fn roll_forward(flash: &mut HostFlash<'_>) -> bool {
    let mut kept = [0u8; ENVELOPE_MAX];
    let envelope =
        match Updater::new(&mut *flash, &LAYOUT).and_then(|mut u| u.running_envelope(&mut kept)) {
            Ok(Some(e)) => e,
            _ => return false,
        };
    let id = suitcase_trust::TRUST_STORE_COMPONENT;
    if !envelope.windows(id.len()).any(|w| w == id) {
        return false;
    }
    let mut current = [0u8; board::STORE_MAX];
    let Ok(store) = board::trust_store(&mut *flash, &mut current) else {
        return false;
    };
    let Ok(auth) = authenticate(envelope, &store) else {
        return false;
    };
    let Some(new) = suitcase_trust::pending(&store, &auth) else {
        return false;
    };
    let committed = board::trust_area(&mut *flash).and_then(|mut area| {
        area.load(&mut current)?;
        area.commit(new)?;
        Ok(area.load(&mut current)?.version())
    });
    match committed {
        Ok(v) => {
            line(&[
                Part::S("app: trust store v"),
                Part::N(v),
                Part::S(" rolled forward from the running image's envelope"),
            ]);
            true
        }
        Err(e) => {
            line(&[
                Part::S("app: trust store roll-forward failed: "),
                Part::S(board::trust_error(e)),
            ]);
            false
        }
    }
}

/// Reads the envelope in file `path`; its length.
fn read_envelope(path: &[u8], envelope: &mut [u8]) -> Option<usize> {
    let f = File::open_read(path)?;
    let n = f.read(envelope);
    f.close();
    n
}

/// Times, on the device, the COSE verification of the envelope in file `path` alone (the
/// key already decoded: the first trust-store key that accepts the first signature and
/// verifies it) and `authenticate` (envelope decode, manifest digest, every signature
/// against every key of its algorithm, manifest decode): instructions, to within one
/// 40-instruction tick; and the stack the verification alone used.
#[inline(never)] // its buffers must not add to the other paths' stack figures
fn measure(flash: &mut HostFlash<'_>, path: &[u8]) -> u32 {
    let mut envelope = [0u8; ENVELOPE_MAX];
    let Some(envelope) = read_envelope(path, &mut envelope).and_then(|n| envelope.get(..n)) else {
        return EXIT_REFUSED;
    };
    let mut buf = [0u8; board::STORE_MAX];
    let Ok(store) = board::trust_store(flash, &mut buf) else {
        return EXIT_SETUP;
    };
    let Ok(env) = Envelope::decode(envelope) else {
        return EXIT_REFUSED;
    };
    let Some(Ok(msg)) = env.auth.blocks().next().map(CoseMessage::decode) else {
        return EXIT_REFUSED;
    };
    let mut timed = None;
    for anchor in store.anchors() {
        if !anchor.key.accepts(msg.kind, msg.alg) {
            continue;
        }
        let depth = board::stack::depth();
        let painted = board::stack::paint();
        let t0 = power::ticks();
        let ok = anchor.key.verify(&msg, env.auth.signed_payload).is_ok();
        let t1 = power::ticks();
        let stack = board::stack::peak(painted).saturating_sub(depth);
        if ok {
            timed = Some((t1 - t0, stack));
            break;
        }
    }
    let t2 = power::ticks();
    let authenticated = authenticate(envelope, &store).is_ok();
    let t3 = power::ticks();
    let Some((verify, stack)) = timed else {
        line(&[Part::S(
            "app: measured: no trust-store key verifies the first signature",
        )]);
        return EXIT_REFUSED;
    };
    let per_tick = u64::from(power::INSTRUCTIONS_PER_TICK);
    line(&[
        Part::S("app: measured: COSE verify "),
        Part::N(u64::from(verify) * per_tick),
        Part::S(" instr, "),
        Part::N(stack as u64),
        Part::S(" B stack, authenticate "),
        Part::N(u64::from(t3 - t2) * per_tick),
        Part::S(" instr"),
    ]);
    if authenticated { 0 } else { EXIT_REFUSED }
}

/// The update agent: read the envelope, load the trust store, authenticate with it,
/// fetch the payload into the staging slot (and a new trust store, if the manifest
/// carries one, into RAM, checked against the current store as it arrives), request a
/// test swap, then commit the new store.
///
/// The store is committed after the request, not before: a cut between the two leaves
/// the old store and a staged image that the old store verifies (the manifest that
/// carries a store is signed for both policies), so the device boots the new image
/// under the old store; the other order could leave a new store that refuses the image
/// still in the primary slot.
#[inline(never)]
fn install(flash: &mut HostFlash<'_>, update: &[u8], payload: &[u8]) -> u32 {
    let mut envelope = [0u8; ENVELOPE_MAX];
    let Some(len) = read_envelope(update, &mut envelope) else {
        line(&[Part::S("app: cannot read the update")]);
        return EXIT_REFUSED;
    };
    let envelope = envelope.get(..len).unwrap_or(&[]);
    let mut current = [0u8; board::STORE_MAX];
    let store = match board::trust_store(&mut *flash, &mut current) {
        Ok(s) => s,
        Err(e) => {
            line(&[
                Part::S("app: no usable trust store: "),
                Part::S(board::trust_error(e)),
            ]);
            return EXIT_SETUP;
        }
    };
    let mut fetch = FileFetch {
        path: payload,
        file: None,
    };
    let mut staged = [0u8; board::STORE_MAX];
    let result = stage(flash, envelope, &store, &mut fetch, &mut staged);
    if let Some(f) = fetch.file {
        f.close();
    }
    let staged_len = match result {
        Ok(n) => n,
        Err(e) => {
            line(&[Part::S(match e {
                Refused::Processor => "app: update refused by the processor",
                Refused::Store(_) => "app: update refused: its trust store does not verify",
                Refused::Boot => "app: update refused by the bootloader side",
            })]);
            if let Refused::Store(e) = e {
                line(&[
                    Part::S("app: trust store refused: "),
                    Part::S(board::trust_error(e)),
                ]);
            }
            return EXIT_REFUSED;
        }
    };
    line(&[Part::S("app: update staged and requested")]);
    let Some(new) = staged_len.and_then(|n| staged.get(..n)) else {
        return EXIT_STAGED;
    };
    // `current` is free again (the old store is no longer used); the area's `load`
    // needs it to find the copy to write first.
    let t0 = power::ticks();
    let committed = board::trust_area(&mut *flash).and_then(|mut area| {
        area.load(&mut current)?;
        area.commit(new)?;
        Ok(area.load(&mut current)?.version())
    });
    let t1 = power::ticks();
    match committed {
        Ok(v) => {
            // The tick window tells xtask where to cut the power inside the commit.
            line(&[
                Part::S("app: trust store v"),
                Part::N(v),
                Part::S(" committed; flash writes at ticks "),
                Part::N(u64::from(t0)),
                Part::S(".."),
                Part::N(u64::from(t1)),
            ]);
            EXIT_STAGED
        }
        Err(e) => {
            line(&[
                Part::S("app: trust store commit failed: "),
                Part::S(board::trust_error(e)),
            ]);
            EXIT_SETUP
        }
    }
}

/// Why [`stage`] requested nothing.
#[derive(Clone, Copy)]
enum Refused {
    /// Authentication, conditions, rollback, fetch.
    Processor,
    /// The trust store the manifest carries.
    Store(suitcase_trust::TrustError),
    /// Busy, flash, envelope too large.
    Boot,
}

/// `Updater::install` with the trust store's [`suitcase_trust::Staging`] between the
/// processor and the staging slot: authenticate, update (image into the slot, a store
/// component into `staged`), request. The length of an accepted new store, if the
/// manifest carried one.
fn stage(
    flash: &mut HostFlash<'_>,
    envelope: &[u8],
    store: &suitcase_trust::Store<'_>,
    fetch: &mut FileFetch<'_>,
    staged: &mut [u8],
) -> Result<Option<usize>, Refused> {
    let auth = authenticate(envelope, store).map_err(|_| Refused::Processor)?;
    let mut updater = Updater::new(flash, &LAYOUT).map_err(|_| Refused::Boot)?;
    let floor = updater.floor().map_err(|_| Refused::Boot)?;
    let mut slot = updater.stage(&COMPONENT).map_err(|_| Refused::Boot)?;
    let mut storage = suitcase_trust::staging(&mut slot, store, staged);
    let updated = update(&auth, &mut storage, fetch, floor);
    if let Some(e) = storage.check.refused {
        return Err(Refused::Store(e));
    }
    updated.map_err(|_| Refused::Processor)?;
    let new = storage.accepted().map(<[u8]>::len);
    slot.commit(envelope, Mode::Test)
        .map_err(|_| Refused::Boot)?;
    Ok(new)
}

/// Runs the update of `auth` as the agent does: components in `storage`, every fetch from
/// `fetch`, the sequence number checked against the image counter's `floor`; no clock,
/// invocation, reports, decryption or policy.
fn update(
    auth: &Authenticated<'_>,
    storage: &mut dyn ComponentStorage,
    fetch: &mut FileFetch<'_>,
    floor: u64,
) -> Result<UpdateSummary, suitcase_processor::Error> {
    auth.update(&mut Platform {
        storage,
        fetch,
        identity: &IDENTITY,
        rollback: &mut Floor(floor),
        clock: &NoClock,
        invoker: &mut NoInvoke,
        reporter: &mut NoReport,
        decryption: &NoDecryptionKeys,
        policy: &mut NoPolicy,
        dependencies: None,
    })
}

board::handlers!();
