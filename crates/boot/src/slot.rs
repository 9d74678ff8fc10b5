//! Slot contents and verified boot.
//!
//! A slot's content starts with a 32-byte header, then the envelope, padded to
//! `header_size`; the image follows. The content moves with the swap, so the envelope
//! always travels with its image. Layout (little-endian):
//!
//! | offset | size | field | erased / torn |
//! |---|---|---|---|
//! | 0 | 4 | magic `SCs1` | anything else: no image |
//! | 4 | 4 | envelope length `L` (≤ `header_size` − 32) | too large: refused |
//! | 8 | 4 | image length (≤ the slot's capacity) | too large: refused |
//! | 12 | 20 | zero | not checked |
//! | 32 | L | the SUIT envelope | refused unless it authenticates |
//! | 32 + L | to `header_size` | padding | not read |
//! | `header_size` | image length | the image | refused unless the manifest's validate sequence passes (its image-match) |
//!
//! The header needs no check of its own: everything in it is either bounded (lengths) or
//! authenticated (the envelope, then the image through the envelope's digest).

use embedded_storage::nor_flash::{NorFlash, NorFlashErrorKind};
use suitcase_processor::platform::{
    ComponentStorage, Invoke, InvokeError, MemoryRollback, NoClock, NoDecryptionKeys, NoFetch,
    StorageError, Target,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::{Platform, authenticate};

use crate::boot::Config;
use crate::error::{BootError, Refusal, flash};
use crate::layout::Plan;
use crate::record::{field, put};

/// Size of the slot header before the envelope.
pub const HEADER_LEN: usize = 32;
const MAGIC: [u8; 4] = *b"SCs1";

/// Which slot content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The primary slot, from its start.
    Primary,
    /// A staged update: the secondary slot from unit 1.
    Staged,
}

impl Slot {
    pub(crate) fn content(self, plan: &Plan) -> u32 {
        match self {
            Slot::Primary => plan.primary,
            Slot::Staged => plan.secondary_unit(1),
        }
    }
}

/// The slot header.
pub(crate) fn encode_header(envelope_len: u32, image_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    put(&mut h, 0, &MAGIC);
    put(&mut h, 4, &envelope_len.to_le_bytes());
    put(&mut h, 8, &image_len.to_le_bytes());
    h
}

/// An image that verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The manifest's sequence number.
    pub seq: u64,
    /// The image length from the header (at least what the manifest's digest covers).
    pub image_len: u32,
}

/// The image of one slot as the processor's component: read-only, bounded by the header's
/// image length. Flash faults are kept so they are not mistaken for a bad image.
struct SlotImage<'f, F: NorFlash> {
    flash: &'f mut F,
    base: u32,
    len: u32,
    component: &'f [u8],
    fault: Option<NorFlashErrorKind>,
}

impl<F: NorFlash> SlotImage<'_, F> {
    fn check(&self, t: &Target<'_>) -> Result<(), StorageError> {
        if t.id.as_bytes() == self.component {
            Ok(())
        } else {
            Err(StorageError::UnknownComponent)
        }
    }
}

impl<F: NorFlash> ComponentStorage for SlotImage<'_, F> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        self.check(t)?;
        Ok(u64::from(self.len))
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.check(t)?;
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(StorageError::OutOfBounds)?;
        if end > u64::from(self.len) {
            return Err(StorageError::OutOfBounds);
        }
        let at = self.base + u32::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        self.flash.read(at, buf).map_err(|e| {
            self.fault = Some(embedded_storage::nor_flash::NorFlashError::kind(&e));
            StorageError::Device
        })
    }

    fn begin_write(&mut self, _t: &Target<'_>, _size: Option<u64>) -> Result<(), StorageError> {
        Err(StorageError::Unsupported)
    }
    fn write(&mut self, _t: &Target<'_>, _offset: u64, _data: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::Unsupported)
    }
    fn finish_write(&mut self, _t: &Target<'_>, _len: u64) -> Result<(), StorageError> {
        Err(StorageError::Unsupported)
    }
}

/// Records the hand-over the invoke sequence asks for; the caller jumps after `boot`
/// returns.
struct HandOver<'c> {
    component: &'c [u8],
    invoked: bool,
}

impl Invoke for HandOver<'_> {
    fn invoke(&mut self, t: &Target<'_>, _args: Option<&[u8]>) -> Result<(), InvokeError> {
        if t.id.as_bytes() != self.component {
            return Err(InvokeError::Unsupported);
        }
        self.invoked = true;
        Ok(())
    }
}

/// Reads the envelope stored in `slot` into `buf`; the envelope and the image length
/// the header gives (both bounded, neither authenticated yet).
pub(crate) fn read_envelope<'b, F: NorFlash>(
    f: &mut F,
    plan: &Plan,
    slot: Slot,
    buf: &'b mut [u8],
) -> Result<Result<(&'b [u8], u32), Refusal>, BootError> {
    let at = slot.content(plan);
    let mut h = [0u8; HEADER_LEN];
    f.read(at, &mut h).map_err(flash)?;
    if field::<4>(&h, 0) != MAGIC {
        return Ok(Err(Refusal::NoHeader));
    }
    let env_len = u32::from_le_bytes(field(&h, 4));
    let image_len = u32::from_le_bytes(field(&h, 8));
    if env_len > plan.header - HEADER_LEN as u32 {
        return Ok(Err(Refusal::EnvelopeTooLarge));
    }
    let Some(envelope) = buf.get_mut(..env_len as usize) else {
        return Ok(Err(Refusal::EnvelopeTooLarge));
    };
    if image_len > plan.max_image() {
        return Ok(Err(Refusal::ImageTooLarge));
    }
    f.read(at + HEADER_LEN as u32, envelope).map_err(flash)?;
    Ok(Ok((envelope, image_len)))
}

/// Runs the SUIT invocation procedure (validate, load, invoke) of the envelope stored in
/// `slot` against the image stored after it, with the rollback counter at `floor`.
///
/// The outer `Result` is the flash (a power loss must not be taken for a bad image); the
/// inner one is the verdict.
pub(crate) fn verify<F: NorFlash>(
    f: &mut F,
    plan: &Plan,
    cfg: &Config<'_>,
    slot: Slot,
    floor: u64,
    buf: &mut [u8],
) -> Result<Result<Verified, Refusal>, BootError> {
    let at = slot.content(plan);
    let (envelope, image_len) = match read_envelope(f, plan, slot, buf)? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let auth = match authenticate(envelope, cfg.keys) {
        Ok(a) => a,
        Err(e) => return Ok(Err(Refusal::Processor(e))),
    };
    let seq = auth.manifest().sequence_number;
    let mut storage = SlotImage {
        flash: f,
        base: at + plan.header,
        len: image_len,
        component: cfg.component,
        fault: None,
    };
    let mut hand = HandOver {
        component: cfg.component,
        invoked: false,
    };
    let result = auth.invoke(&mut Platform {
        storage: &mut storage,
        fetch: &mut NoFetch,
        identity: cfg.identity,
        rollback: &mut MemoryRollback(floor),
        clock: &NoClock,
        invoker: &mut hand,
        reporter: &mut NoReport,
        decryption: &NoDecryptionKeys,
        policy: &mut suitcase_processor::platform::NoPolicy,
        dependencies: None,
    });
    if let Some(kind) = storage.fault {
        return Err(BootError::Flash(kind));
    }
    Ok(match result {
        Err(e) => Err(Refusal::Processor(e)),
        Ok(()) if !hand.invoked => Err(Refusal::NotInvoked),
        Ok(()) => Ok(Verified { seq, image_len }),
    })
}
