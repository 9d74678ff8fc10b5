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
//! | permanent, `update=` and `payload=` given | `Updater::install` (authenticate, fetch the payload into the staging slot, request a test swap) | [`EXIT_STAGED`], or [`EXIT_REFUSED`] |
//! | permanent, `update=` and `measure=1` given | time the envelope's COSE verification and `authenticate` | 0 |
//! | otherwise | nothing | 0 |
//!
//! Each exit is the "reset" after which xtask starts QEMU again on the same flash file.

#![no_std]
#![no_main]

use board::flash::HostFlash;
use board::host::{Cmdline, File, Part, exit, line};
use board::{BootInfo, COMPONENT, IDENTITY, LAYOUT, RAM_IMAGE, power};
use cortex_m_rt::entry;
use suitcase_boot::Mode;
use suitcase_boot::update::{Agent, InstallError, Updater};
use suitcase_processor::authenticate;
use suitcase_processor::cose::CoseMessage;
use suitcase_processor::platform::{
    Fetch, FetchError, NoClock, NoDecryptionKeys, NoPolicy, StaticKeys, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::suit::Envelope;

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

/// The largest envelope the agent reads.
const ENVELOPE_MAX: usize = 2048;

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
    let status = if info.trial {
        trial(&mut flash, verdict == b"pass")
    } else if let (Some(update), Some(b"1")) = (cmd.value(b"update"), cmd.value(b"measure")) {
        measure(update)
    } else if let (Some(update), Some(payload)) = (cmd.value(b"update"), cmd.value(b"payload")) {
        install(&mut flash, update, payload)
    } else {
        0
    };
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
        EXIT_CONFIRMED
    } else {
        line(&[Part::S("app: confirm failed")]);
        EXIT_SETUP
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
/// key already decoded) and `authenticate` (envelope decode, manifest digest, COSE
/// verify, manifest decode): instructions, to within one 40-instruction tick.
#[inline(never)] // its buffers must not add to the other paths' stack figures
fn measure(path: &[u8]) -> u32 {
    let mut envelope = [0u8; ENVELOPE_MAX];
    let Some(envelope) = read_envelope(path, &mut envelope).and_then(|n| envelope.get(..n)) else {
        return EXIT_REFUSED;
    };
    let (Some(key), Some(anchor)) = (board::anchor(), board::anchor()) else {
        return EXIT_SETUP;
    };
    let Ok(env) = Envelope::decode(envelope) else {
        return EXIT_REFUSED;
    };
    let Some(Ok(msg)) = env.auth.blocks().next().map(CoseMessage::decode) else {
        return EXIT_REFUSED;
    };
    let t0 = power::ticks();
    let verified = key.verify(&msg, env.auth.signed_payload).is_ok();
    let t1 = power::ticks();
    let anchors = [TrustAnchor {
        key: anchor,
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let t2 = power::ticks();
    let authenticated = authenticate(envelope, &keys).is_ok();
    let t3 = power::ticks();
    let per_tick = u64::from(power::INSTRUCTIONS_PER_TICK);
    line(&[
        Part::S("app: measured: COSE verify "),
        Part::N(u64::from(t1 - t0) * per_tick),
        Part::S(" instr, authenticate "),
        Part::N(u64::from(t3 - t2) * per_tick),
        Part::S(" instr"),
    ]);
    if verified && authenticated {
        0
    } else {
        EXIT_REFUSED
    }
}

/// The update agent: read the envelope, authenticate it, fetch the payload into the
/// staging slot through the processor's update procedure, request a test swap.
#[inline(never)]
fn install(flash: &mut HostFlash<'_>, update: &[u8], payload: &[u8]) -> u32 {
    let mut envelope = [0u8; ENVELOPE_MAX];
    let Some(len) = read_envelope(update, &mut envelope) else {
        line(&[Part::S("app: cannot read the update")]);
        return EXIT_REFUSED;
    };
    let Some(key) = board::anchor() else {
        return EXIT_SETUP;
    };
    let anchors = [TrustAnchor { key, kid: None }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let mut fetch = FileFetch {
        path: payload,
        file: None,
    };
    let mut agent = Agent {
        keys: &keys,
        identity: &IDENTITY,
        fetch: &mut fetch,
        clock: &NoClock,
        reporter: &mut NoReport,
        decryption: &NoDecryptionKeys,
        policy: &mut NoPolicy,
    };
    let result = Updater::new(flash, &LAYOUT)
        .map_err(InstallError::Boot)
        .and_then(|mut u| {
            u.install(
                envelope.get(..len).unwrap_or(&[]),
                &COMPONENT,
                &mut agent,
                Mode::Test,
            )
        });
    if let Some(f) = fetch.file {
        f.close();
    }
    match result {
        Ok(_) => {
            line(&[Part::S("app: update staged and requested")]);
            EXIT_STAGED
        }
        Err(e) => {
            line(&[Part::S(match e {
                InstallError::Processor(_) => "app: update refused by the processor",
                _ => "app: update refused by the bootloader side",
            })]);
            EXIT_REFUSED
        }
    }
}

board::handlers!();
