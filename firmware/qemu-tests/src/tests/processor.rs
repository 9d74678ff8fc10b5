//! `suitcase-processor` on the device, over a lean no-alloc platform: static RAM
//! buffers for storage, a transport that hands out slices, no reports.
//!
//! - every signed spec example authenticates with the published key, and every
//!   unsigned one is refused as `NoSignature`;
//! - example 3 (A/B slots), re-signed on the host with the digests of two real images,
//!   runs its whole update: slot 1 (not running) receives image B, the rollback counter
//!   becomes 3; `example3_verify_only` is the COSE verification of the same envelope
//!   alone, so the two counts give the cost of everything but the signature;
//! - example 0 (secure boot), re-signed for image A: validate + invoke reaches the
//!   invoker exactly once, and a different image is not invoked.

use suitcase_cose::p256::ecdsa::VerifyingKey as P256Key;
use suitcase_cose::{CoseMessage, VerifyingKey};
use suitcase_processor::platform::{
    Fetch, FetchError, Invoke, InvokeError, MemoryRollback, NoClock, NoDecryptionKeys, NoFetch,
    NoInvoke, StaticIdentity, StaticKeys, Target, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::platform::ComponentStorage as _;
use suitcase_processor::suit::{ComponentId, Condition, Envelope};
use suitcase_processor::{AuthError, Error, Platform, authenticate};

use crate::harness::Outcome;
use crate::statics::StaticBuf;
use crate::vectors::{
    EXAMPLE_KEY_SEC1, EXAMPLE0_REAL, EXAMPLE3_REAL, IMAGE_A, IMAGE_B, SIGNED, SPEC_CLASS,
    SPEC_VENDOR, UNSIGNED,
};

/// The encoded component identifier `[h'00']` of examples 0 and 3.
const C0: [u8; 3] = [0x81, 0x41, 0x00];
/// Example 3's URIs: slot 0 gets file1, slot 1 file2.
const URI_A: &str = "http://example.com/file1.bin";
const URI_B: &str = "http://example.com/file2.bin";

/// Slot buffers, large enough for either generated image (image B, 2 KiB, is the
/// larger). No larger: each test zero-fills them, and that fill is counted in the
/// measured instructions of `example3_update_*` (about 1 instruction a byte).
static SLOT0: StaticBuf<2048> = StaticBuf::new();
static SLOT1: StaticBuf<2048> = StaticBuf::new();

/// The published key as the only trust anchor; `f` gets the key store.
fn with_spec_key<R>(f: impl FnOnce(&StaticKeys<'_>) -> R) -> Result<R, &'static str> {
    let key = P256Key::from_sec1_bytes(&EXAMPLE_KEY_SEC1).map_err(|_| "example key invalid")?;
    let anchors = [TrustAnchor {
        key: VerifyingKey::P256(key),
        kid: None,
    }];
    Ok(f(&StaticKeys {
        anchors: &anchors,
        rules: &[],
    }))
}

/// A one-line reason for a processor error (the harness prints `&'static str`s).
fn describe(e: Error) -> &'static str {
    match e {
        Error::Decode(_) => "not well-formed SUIT",
        Error::Auth(AuthError::NoSignature) => "auth: no signature",
        Error::Auth(AuthError::ManifestDigestMismatch) => "auth: manifest digest mismatch",
        Error::Auth(AuthError::Cose(_)) => "auth: COSE block malformed",
        Error::Auth(AuthError::PolicyNotSatisfied) => "auth: signature not verified",
        Error::Auth(_) => "auth: refused",
        Error::Rollback { .. } => "rollback: sequence number not newer",
        Error::ConditionFailed {
            condition: Condition::ImageMatch,
            ..
        } => "image-match failed",
        Error::ConditionFailed { .. } => "a condition failed",
        Error::TryEachExhausted { .. } => "try-each exhausted",
        Error::Storage(_) => "storage failed",
        Error::Fetch(_) => "fetch failed",
        Error::Invoke(_) => "invoke failed",
        _ => "processing failed",
    }
}

/// Signed example `n` of [`SIGNED`] authenticates, with its sequence number.
fn authenticates(n: usize) -> Outcome {
    let (_, bytes, sequence) = SIGNED.get(n).copied().ok_or("no such example")?;
    with_spec_key(|keys| {
        let auth = authenticate(bytes, keys).map_err(describe)?;
        if auth.manifest().sequence_number != sequence {
            return Err("wrong sequence number");
        }
        if auth.signers() != 1 {
            return Err("signer set is not {anchor 0}");
        }
        Ok(())
    })?
}

/// Unsigned example `n` is refused before anything of its manifest runs.
fn refused_unsigned(n: usize) -> Outcome {
    let bytes = UNSIGNED.get(n).copied().ok_or("no such example")?;
    match with_spec_key(|keys| authenticate(bytes, keys).map(|_| ()))? {
        Err(Error::Auth(AuthError::NoSignature)) => Ok(()),
        Ok(()) => Err("unsigned envelope accepted"),
        Err(_) => Err("refused, but not as Auth(NoSignature)"),
    }
}

/// example0.suit authenticates.
pub fn example0_authenticates() -> Outcome {
    authenticates(0)
}
/// example1.suit authenticates.
pub fn example1_authenticates() -> Outcome {
    authenticates(1)
}
/// example2.suit (severed members carried) authenticates.
pub fn example2_authenticates() -> Outcome {
    authenticates(2)
}
/// example2-severed.suit (severed members absent) authenticates.
pub fn example2_severed_authenticates() -> Outcome {
    authenticates(3)
}
/// example3.suit authenticates.
pub fn example3_authenticates() -> Outcome {
    authenticates(4)
}
/// example4.suit authenticates.
pub fn example4_authenticates() -> Outcome {
    authenticates(5)
}
/// example5.suit authenticates.
pub fn example5_authenticates() -> Outcome {
    authenticates(6)
}

/// example0-unsigned.suit is refused.
pub fn example0_unsigned_refused() -> Outcome {
    refused_unsigned(0)
}
/// example1-unsigned.suit is refused.
pub fn example1_unsigned_refused() -> Outcome {
    refused_unsigned(1)
}
/// example2-unsigned.suit is refused.
pub fn example2_unsigned_refused() -> Outcome {
    refused_unsigned(2)
}
/// example3-unsigned.suit is refused.
pub fn example3_unsigned_refused() -> Outcome {
    refused_unsigned(3)
}
/// example4-unsigned.suit is refused.
pub fn example4_unsigned_refused() -> Outcome {
    refused_unsigned(4)
}
/// example5-unsigned.suit is refused.
pub fn example5_unsigned_refused() -> Outcome {
    refused_unsigned(5)
}

/// A transport over two fixed slices; remembers which it opened (bit 0: A, bit 1: B).
struct SliceFetch {
    served: [(&'static str, &'static [u8]); 2],
    current: &'static [u8],
    opened: u32,
}

impl SliceFetch {
    fn example3() -> Self {
        SliceFetch {
            served: [(URI_A, IMAGE_A), (URI_B, IMAGE_B)],
            current: &[],
            opened: 0,
        }
    }
}

impl Fetch for SliceFetch {
    fn open(&mut self, uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        let i = self
            .served
            .iter()
            .position(|(u, _)| *u == uri)
            .ok_or(FetchError::NotFound)?;
        self.current = self.served.get(i).ok_or(FetchError::NotFound)?.1;
        self.opened |= 1 << i;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let n = self.current.len().min(buf.len());
        let (head, tail) = self.current.split_at(n);
        buf.get_mut(..n)
            .ok_or(FetchError::Transport)?
            .copy_from_slice(head);
        self.current = tail;
        Ok(n)
    }
}

/// Example 3's A/B device running from `running`: two empty slots in the static buffers,
/// the transport, the rollback counter at 0. `work` runs on them (the update, or the
/// harness's platform calls); then the checks: the other slot holds its image, the running
/// slot is untouched, only that image was fetched, the counter is 3. Shared by
/// `example3_update` and `example3_update_harness`, so the harness pays exactly the setup
/// and checks the update test pays.
fn example3_device(
    running: u64,
    work: impl FnOnce(
        &mut MemoryStorage<'_, '_>,
        &mut SliceFetch,
        &StaticIdentity,
        &mut MemoryRollback,
    ) -> Outcome,
) -> Outcome {
    let (mut s0, mut s1) = (SLOT0.take(0)?, SLOT1.take(0)?);
    let mut components = [
        MemoryComponent {
            id: &C0,
            slot: Some(0),
            data: &mut s0[..],
            len: 0,
        },
        MemoryComponent {
            id: &C0,
            slot: Some(1),
            data: &mut s1[..],
            len: 0,
        },
    ];
    let mut storage = MemoryStorage {
        components: &mut components,
    };
    let mut fetch = SliceFetch::example3();
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: running,
    };
    let mut rollback = MemoryRollback(0);
    work(&mut storage, &mut fetch, &identity, &mut rollback)?;

    let (image, want_fetched, installed, untouched) = match running {
        0 => (IMAGE_B, 0b10, 1, 0),
        _ => (IMAGE_A, 0b01, 0, 1),
    };
    if rollback.0 != 3 {
        return Err("rollback counter is not 3");
    }
    if fetch.opened != want_fetched {
        return Err("fetched something other than the inactive slot's image");
    }
    let slot = components.get(installed).ok_or("no slot")?;
    if !same_bytes(slot.data.get(..slot.len).ok_or("slot length")?, image) {
        return Err("the inactive slot does not hold the image");
    }
    if components.get(untouched).is_none_or(|c| c.len != 0) {
        return Err("the running slot was written");
    }
    Ok(())
}

/// Example 3's update on an A/B device running from `running`: authenticate, then the
/// whole update procedure ([`example3_device`] checks the result).
fn example3_update(running: u64) -> Outcome {
    let image_len = match running {
        0 => IMAGE_B.len(),
        _ => IMAGE_A.len(),
    } as u64;
    example3_device(running, |storage, fetch, identity, rollback| {
        let summary = with_spec_key(|keys| {
            let auth = authenticate(EXAMPLE3_REAL, keys).map_err(describe)?;
            let mut platform = Platform {
                storage,
                fetch,
                identity,
                rollback,
                clock: &NoClock,
                invoker: &mut NoInvoke,
                reporter: &mut NoReport,
                decryption: &NoDecryptionKeys,
                policy: &mut suitcase_processor::platform::NoPolicy,
                dependencies: None,
            };
            auth.update(&mut platform).map_err(describe)
        })??;
        if summary.sequence_number != 3 {
            return Err("the summary's sequence number is not 3");
        }
        if summary.bytes_written != image_len {
            return Err("bytes written differ from the image size");
        }
        Ok(())
    })
}

/// `a == b`, eight bytes at a time. The same check as slice equality, which here calls
/// compiler-builtins' byte-at-a-time `memcmp` (about 6 instructions a byte: 12 k for
/// image B, counted in the measured update though it is not the processor's work).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map(u64::from_ne_bytes).unwrap_or(0);
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    a.len() == b.len() && wa.remainder() == wb.remainder() && wa.map(word).eq(wb.map(word))
}

/// Everything `example3_update_slot1` does that is not the processor's: the same setup
/// (slot buffers, platform stand-ins), the platform's own work for that update — the
/// transport handing out image B in the pipeline's 512-byte chunks and the RAM storage
/// taking it into slot 1 (`begin_write`, `write`, `finish_write`), as the update calls
/// them — and the same checks afterwards. No manifest is read. Its count, subtracted from
/// `example3_update_slot1` minus `example3_verify_only` minus
/// `digest::example3_update_hashing`, leaves the processor's own logic.
pub fn example3_update_harness() -> Outcome {
    example3_device(0, |storage, fetch, _, rollback| {
        let id = ComponentId::decode(&C0).map_err(|_| "component id")?;
        let target = Target {
            index: 0,
            id,
            slot: Some(1),
        };
        // The platform's part of the update: fetch image B into slot 1.
        let mut buf = [0u8; suitcase_processor::pipeline::CHUNK];
        fetch.open(URI_B, None).map_err(|_| "open")?;
        storage
            .begin_write(&target, Some(IMAGE_B.len() as u64))
            .map_err(|_| "begin_write")?;
        let mut off = 0u64;
        loop {
            let n = fetch.read(&mut buf).map_err(|_| "read")?;
            if n == 0 {
                break;
            }
            let part = core::hint::black_box(buf.get(..n).ok_or("chunk")?);
            storage.write(&target, off, part).map_err(|_| "write")?;
            off += n as u64;
        }
        storage.finish_write(&target, off).map_err(|_| "finish_write")?;
        rollback.0 = core::hint::black_box(3);
        if off != IMAGE_B.len() as u64 {
            return Err("bytes written differ from the image size");
        }
        Ok(())
    })
}

/// Example 3 end to end, running from slot 0: image B goes into slot 1.
pub fn example3_update_slot1() -> Outcome {
    example3_update(0)
}

/// The same running from slot 1: image A goes into slot 0.
pub fn example3_update_slot0() -> Outcome {
    example3_update(1)
}

/// Only `authenticate` of the envelope `example3_update_*` processes: decode, manifest
/// digest, COSE verification, policy, manifest decode.
pub fn example3_authenticate_only() -> Outcome {
    with_spec_key(|keys| {
        authenticate(EXAMPLE3_REAL, keys)
            .map(|_| ())
            .map_err(describe)
    })?
}

/// Only the COSE_Sign1 verification of the envelope `example3_update_*` processes
/// (plus the shallow envelope decode that finds the block and building the key, both
/// also part of the full run): the baseline for the processing overhead.
pub fn example3_verify_only() -> Outcome {
    // Keep in step with `example3_decode_only`, which is this without the key and the
    // signature check.
    let envelope = Envelope::decode(EXAMPLE3_REAL).map_err(|_| "envelope decode failed")?;
    let block = envelope.auth.blocks().next().ok_or("no COSE block")?;
    let msg = CoseMessage::decode(block).map_err(|_| "COSE decode failed")?;
    let key = P256Key::from_sec1_bytes(&EXAMPLE_KEY_SEC1).map_err(|_| "example key invalid")?;
    VerifyingKey::P256(key)
        .verify(&msg, envelope.auth.signed_payload)
        .map_err(|_| "signature rejected")
}

/// `example3_verify_only` without the crypto: the envelope and COSE structure decodes it
/// also does, which are the processor's work. xtask subtracts `verify_only` minus this as
/// "the signature check" (key parse and verification), so these decodes count in the
/// processor's own cost.
pub fn example3_decode_only() -> Outcome {
    let envelope = Envelope::decode(EXAMPLE3_REAL).map_err(|_| "envelope decode failed")?;
    let block = envelope.auth.blocks().next().ok_or("no COSE block")?;
    let msg = CoseMessage::decode(block).map_err(|_| "COSE decode failed")?;
    if core::hint::black_box(&msg).kid.is_some_and(<[u8]>::is_empty)
        || core::hint::black_box(envelope.auth.signed_payload).is_empty()
    {
        return Err("decoded nothing");
    }
    Ok(())
}

/// Records what it was asked to start (a bootloader would jump instead).
#[derive(Default)]
struct RecordingInvoke {
    calls: u32,
    index: Option<usize>,
    slot: Option<u64>,
}

impl Invoke for RecordingInvoke {
    fn invoke(&mut self, target: &Target<'_>, _args: Option<&[u8]>) -> Result<(), InvokeError> {
        self.calls += 1;
        self.index = Some(target.index);
        self.slot = target.slot;
        Ok(())
    }
}

/// Example 0's invocation procedure (validate: image-match; invoke) over component
/// `[h'00']` holding image A, with bit 0 of byte `flip` inverted if given. Returns
/// what the processor said and the invoker's record.
fn example0_invoke(
    flip: Option<usize>,
) -> Result<(Result<(), Error>, RecordingInvoke), &'static str> {
    let mut buf = SLOT0.take(0)?;
    let held = buf.get_mut(..IMAGE_A.len()).ok_or("image A too large")?;
    held.copy_from_slice(IMAGE_A);
    if let Some(b) = flip.and_then(|i| held.get_mut(i)) {
        *b ^= 1;
    }
    let mut components = [MemoryComponent {
        id: &C0,
        slot: None,
        data: &mut buf[..],
        len: IMAGE_A.len(),
    }];
    let mut storage = MemoryStorage {
        components: &mut components,
    };
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: 0,
    };
    let mut rollback = MemoryRollback(0);
    let mut invoker = RecordingInvoke::default();
    let result = with_spec_key(|keys| {
        let auth = authenticate(EXAMPLE0_REAL, keys)?;
        auth.invoke(&mut Platform {
            storage: &mut storage,
            fetch: &mut NoFetch,
            identity: &identity,
            rollback: &mut rollback,
            clock: &NoClock,
            invoker: &mut invoker,
            reporter: &mut NoReport,
            decryption: &NoDecryptionKeys,
            policy: &mut suitcase_processor::platform::NoPolicy,
            dependencies: None,
        })
    })?;
    Ok((result, invoker))
}

/// Secure boot: the installed image matches, so component 0 is invoked, once.
pub fn example0_validate_invoke() -> Outcome {
    let (result, invoker) = example0_invoke(None)?;
    result.map_err(describe)?;
    match (invoker.calls, invoker.index, invoker.slot) {
        (1, Some(0), None) => Ok(()),
        (0, ..) => Err("invoke was not called"),
        _ => Err("invoke called more than once or on the wrong component"),
    }
}

/// Secure boot with one flipped bit in the installed image: refused, never invoked.
pub fn example0_tampered_image_not_invoked() -> Outcome {
    let (result, invoker) = example0_invoke(Some(100))?;
    if invoker.calls != 0 {
        return Err("a tampered image was invoked");
    }
    match result {
        Err(Error::ConditionFailed {
            condition: Condition::ImageMatch,
            ..
        }) => Ok(()),
        Ok(()) => Err("a tampered image validated"),
        Err(e) => Err(describe(e)),
    }
}
