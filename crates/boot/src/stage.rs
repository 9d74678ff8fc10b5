//! The updatable bootloader: a tiny immutable **first stage** chooses and starts one of two
//! **second-stage** slots; the second stage (the SUIT bootloader with its crypto) is updated
//! like any component, by a manifest. This is how the bootloader's own algorithms and keys
//! get replaced in the field (issue 8; docs/boot.md §11).
//!
//! A second stage is described by a SUIT envelope like every other image (no header format
//! of our own): the manifest for the component [`STAGE2_COMPONENT`] that the update agent
//! processed is kept in the slot next to the image, and the first stage checks it with the
//! minimal SUIT reading of [`read_envelope`] — one COSE_Sign1 (EdDSA) by its ROM key over
//! the manifest digest, the manifest's sequence number, and the image digest and size of
//! its shared sequence — before it hashes the image. The agent runs the full processor on
//! the same envelope (which its trust store must authorise too) and, before it writes
//! anything, this same check ([`PackageCheck`]), so what it installs is what the first
//! stage will start.
//!
//! ```text
//! slot     0  (unused, erased)
//!        128  tried      one write unit: programmed when the first stage starts a trial
//!        192  confirmed  one write unit: programmed by the second stage after its self-test
//!        256  envelope   the SUIT envelope (CBOR, self-delimiting, at most 1792 bytes),
//!                        written last: the slot is valid only once it is complete
//!       2048  image      the second stage, as the manifest's image-digest / image-size name it
//! ```
//!
//! A flag unit is *set* when it is not all erased bytes, so a flag torn by a power cut reads
//! as set: a torn "tried" counts as a trial that failed (the first stage falls back), a torn
//! "confirmed" as a confirmation (the self-test had passed). The slot keeps the envelope
//! reduced to what the first stage reads ([`slot_envelope`]), every byte of it signed, so
//! a torn envelope does not verify.

use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest as _, Sha256};

use suitcase_processor::platform::ComponentStorage;
use suitcase_processor::storage::{Accept, Held};

/// The encoded component identifier of the second stage: `["suitcase", "stage2"]`.
pub const STAGE2_COMPONENT: &[u8] = &[
    0x82, 0x48, b's', b'u', b'i', b't', b'c', b'a', b's', b'e', 0x46, b's', b't', b'a', b'g', b'e',
    b'2',
];

const TRIED: u32 = 128;
const CONFIRMED: u32 = 192;
/// Where the envelope starts in a slot.
pub const ENVELOPE: u32 = 256;
/// Where the image starts in a slot.
pub const IMAGE: u32 = 2048;
/// The largest envelope a slot holds.
pub const ENVELOPE_MAX: usize = (IMAGE - ENVELOPE) as usize;
const FLAG_UNIT: usize = 64;
const CHUNK: usize = 256;

/// Which second-stage slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The first.
    A,
    /// The second.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

/// What the first stage decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Start this slot: its image starts at [`IMAGE`], `len` bytes.
    Run {
        /// The slot.
        slot: Slot,
        /// Its version.
        version: u32,
        /// Whether this is a trial boot (not confirmed yet).
        trial: bool,
        /// Image length.
        len: u32,
        /// The image's SHA-256, from the signed manifest: the bytes the caller starts
        /// must hash to it ([`digest_matches`] on its RAM copy), not only the bytes this
        /// choice read from flash.
        digest: [u8; 32],
    },
    /// No slot holds a second stage that verifies: stay in the first stage (recovery).
    Halt,
}

/// Why a stage-2 operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageError {
    /// The flash failed.
    Flash,
    /// The slots do not fit the flash, or are not sector-aligned.
    Layout,
    /// The envelope does not verify with the first stage's key, or does not describe the
    /// image (digest, size), or does not fit a slot.
    BadPackage,
    /// The envelope's sequence number is not above the running second stage's.
    NotNewer,
}

/// A slot as read: an envelope that verifies and an image that matches it.
#[derive(Clone, Copy, Debug)]
struct Valid {
    version: u32,
    len: u32,
    digest: [u8; 32],
    tried: bool,
    confirmed: bool,
}

/// The two second-stage slots on a `NorFlash`.
#[derive(Debug)]
pub struct Stages<F> {
    flash: F,
    starts: [u32; 2],
    size: u32,
    erased: u8,
}

/// Checks an Ed25519 signature (second argument) over a message (first: the COSE
/// `Sig_structure`) with the first stage's ROM key.
pub type Verify<'v> = &'v dyn Fn(&[u8], &[u8]) -> bool;

impl<F: NorFlash> Stages<F> {
    /// Slots at `a` and `b`, `size` bytes each (whole sectors); `erased` is the value an
    /// erased byte reads as on this flash.
    pub fn new(flash: F, a: u32, b: u32, size: u32, erased: u8) -> Result<Self, StageError> {
        let e = F::ERASE_SIZE as u32;
        let ok = e != 0
            && a.is_multiple_of(e)
            && b.is_multiple_of(e)
            && size.is_multiple_of(e)
            && size > IMAGE
            && F::WRITE_SIZE <= FLAG_UNIT
            && FLAG_UNIT.is_multiple_of(F::WRITE_SIZE)
            && match (a.checked_add(size), b.checked_add(size)) {
                (Some(ea), Some(eb)) => {
                    (ea <= b || eb <= a) && ea.max(eb) as usize <= flash.capacity()
                }
                _ => false,
            };
        if !ok {
            return Err(StageError::Layout);
        }
        Ok(Stages {
            flash,
            starts: [a, b],
            size,
            erased,
        })
    }

    /// The flash.
    pub fn flash(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    fn start(&self, s: Slot) -> u32 {
        match s {
            Slot::A => self.starts[0],
            Slot::B => self.starts[1],
        }
    }

    /// Whether a flag is set. A unit that cannot be read counts as set, as a torn one
    /// does (on ECC flash a torn program reads back as an error).
    fn flag(&mut self, s: Slot, at: u32) -> bool {
        let mut unit = [0u8; FLAG_UNIT];
        self.flash.read(self.start(s) + at, &mut unit).is_err()
            || unit.iter().any(|&b| b != self.erased)
    }

    fn set_flag(&mut self, s: Slot, at: u32) -> Result<(), StageError> {
        let unit = [0x5A; FLAG_UNIT];
        self.flash
            .write(self.start(s) + at, &unit)
            .map_err(|_| StageError::Flash)
    }

    /// Reads and checks slot `s`: envelope ([`read_envelope`]), then the image digest.
    /// A slot that cannot be read is not valid (the other one may still be): a read error
    /// never stops the boot by itself.
    fn probe(&mut self, s: Slot, verify: Verify<'_>) -> Option<Valid> {
        let start = self.start(s);
        let mut env = [0u8; ENVELOPE_MAX];
        self.flash.read(start + ENVELOPE, &mut env).ok()?;
        let signed = read_envelope(&env, verify)?;
        if signed.len == 0 || signed.len > self.size - IMAGE {
            return None;
        }
        let mut hasher = Sha256::new();
        let mut buf = [0u8; CHUNK];
        let mut off = 0u32;
        while off < signed.len {
            let n = ((signed.len - off) as usize).min(CHUNK);
            let part = buf.get_mut(..n)?;
            self.flash.read(start + IMAGE + off, part).ok()?;
            hasher.update(&*part);
            off += n as u32;
        }
        if hasher.finalize().as_slice() != signed.digest {
            return None;
        }
        Some(Valid {
            version: signed.version,
            len: signed.len,
            digest: signed.digest,
            tried: self.flag(s, TRIED),
            confirmed: self.flag(s, CONFIRMED),
        })
    }

    /// The first stage's decision (it programs "tried" before starting a trial):
    ///
    /// | newest valid slot | the other slot | start |
    /// |---|---|---|
    /// | confirmed | any | the newest |
    /// | not tried | any | the newest, as a trial (marked tried first) |
    /// | tried, not confirmed | valid | the other (the newest failed its trial) |
    /// | tried, not confirmed | not valid | the newest (it is all there is) |
    /// | none | none | halt |
    pub fn choose(&mut self, verify: Verify<'_>) -> Result<Choice, StageError> {
        let a = self.probe(Slot::A, verify);
        let b = self.probe(Slot::B, verify);
        let (newest, n, other) = match (a, b) {
            (Some(a), Some(b)) if b.version > a.version => (Slot::B, b, Some(a)),
            (Some(a), b) => (Slot::A, a, b),
            (None, Some(b)) => (Slot::B, b, None),
            (None, None) => return Ok(Choice::Halt),
        };
        let run = |slot, v: Valid, trial| Choice::Run {
            slot,
            version: v.version,
            trial,
            len: v.len,
            digest: v.digest,
        };
        if n.confirmed {
            return Ok(run(newest, n, false));
        }
        if !n.tried {
            self.set_flag(newest, TRIED)?;
            return Ok(run(newest, n, true));
        }
        Ok(match other {
            Some(o) => run(newest.other(), o, !o.confirmed),
            None => run(newest, n, true),
        })
    }

    /// The running second stage confirms itself after its self-test.
    pub fn confirm(&mut self, running: Slot) -> Result<(), StageError> {
        if self.flag(running, CONFIRMED) {
            return Ok(());
        }
        self.set_flag(running, CONFIRMED)
    }

    /// Installs a second stage into the slot that is not running (erase, image, envelope
    /// last), after checking that `envelope` describes `image`, is signed by the first
    /// stage's key and is newer than `running_version`. The slot keeps the envelope
    /// reduced to what the first stage reads ([`slot_envelope`]).
    pub fn install(
        &mut self,
        running: Slot,
        running_version: u32,
        envelope: &[u8],
        image: &[u8],
        verify: Verify<'_>,
    ) -> Result<(), StageError> {
        // One signature check for both the decision and the slot's copy.
        let opened = open(envelope, verify).ok_or(StageError::BadPackage)?;
        let signed = read_manifest(
            Cbor::new(opened.whole)
                .bytes()
                .ok_or(StageError::BadPackage)?,
        )
        .ok_or(StageError::BadPackage)?;
        describes(&signed, image, self.size, running_version)?;
        let mut kept = [0xFF; ENVELOPE_MAX];
        let kept = reduce(&opened, &mut kept).ok_or(StageError::BadPackage)?;
        let start = self.start(running.other());
        // Sector by sector from the end: a cut leaves the old image or envelope erased
        // (the slot invalid) before its flags at the start are, so a second stage that
        // failed its trial never comes back with its "tried" flag cleared.
        let e = F::ERASE_SIZE as u32;
        let mut at = start + self.size;
        while at > start {
            self.flash
                .erase(at - e, at)
                .map_err(|_| StageError::Flash)?;
            at -= e;
        }
        self.write_padded(start + IMAGE, image)?;
        // The envelope makes the slot valid: written last.
        self.write_padded(start + ENVELOPE, kept)
    }

    /// Writes `bytes` at `at`, the last chunk padded to whole write units.
    fn write_padded(&mut self, mut at: u32, bytes: &[u8]) -> Result<(), StageError> {
        for part in bytes.chunks(CHUNK) {
            let mut chunk = [0xFF; CHUNK];
            let n = part.len().div_ceil(F::WRITE_SIZE) * F::WRITE_SIZE;
            chunk
                .get_mut(..part.len())
                .ok_or(StageError::Flash)?
                .copy_from_slice(part);
            let unit = chunk.get(..n).ok_or(StageError::Flash)?;
            self.flash.write(at, unit).map_err(|_| StageError::Flash)?;
            at += part.len() as u32;
        }
        Ok(())
    }
}

/// Whether `envelope` is a second-stage envelope signed for this device that describes
/// `image`, fits a slot and is newer than `running_version`.
fn check(
    envelope: &[u8],
    image: &[u8],
    slot_size: u32,
    running_version: u32,
    verify: Verify<'_>,
) -> Result<(), StageError> {
    let s = read_envelope(envelope, verify).ok_or(StageError::BadPackage)?;
    describes(&s, image, slot_size, running_version)
}

/// Whether what an envelope says (`s`) describes `image`, fits a slot and is newer than
/// `running_version`.
fn describes(
    s: &Signed,
    image: &[u8],
    slot_size: u32,
    running_version: u32,
) -> Result<(), StageError> {
    if s.len as usize != image.len()
        || s.len == 0
        || s.len > slot_size - IMAGE
        || !digest_matches(image, &s.digest)
    {
        return Err(StageError::BadPackage);
    }
    if s.version <= running_version {
        return Err(StageError::NotNewer);
    }
    Ok(())
}

/// Whether `image` hashes to `digest` (SHA-256): the first stage's check of the copy it
/// is about to start, so the bytes that run are the bytes verified even if the flash
/// changed after [`Stages::choose`] read it (external flash, a fault). The same hasher as
/// the slot probe's (one copy of the code).
#[inline(never)] // one copy for its callers: the first stage counts bytes
pub fn digest_matches(image: &[u8], digest: &[u8; 32]) -> bool {
    let mut h = Sha256::new();
    h.update(image);
    h.finalize().as_slice() == digest
}

/// What the first stage takes from a second-stage envelope that verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The manifest's sequence number: the second stage's version (anti-rollback).
    pub version: u32,
    /// The image size (`suit-parameter-image-size`).
    pub len: u32,
    /// The image's SHA-256 (`suit-parameter-image-digest`).
    pub digest: [u8; 32],
}

/// CBOR tags: SUIT_Envelope_Tagged, COSE_Sign1_Tagged.
const TAG_ENVELOPE: u64 = 107;
const TAG_SIGN1: u64 = 18;
/// COSE algorithms: EdDSA (polymorphic), Ed25519 (fully specified), SHA-256.
const EDDSA: i64 = -8;
const ED25519: i64 = -19;
const SHA_256: i64 = -16;

/// The first stage's reading of a SUIT envelope (the bytes after it are ignored: the slot's
/// envelope area is read whole). It accepts exactly this, and refuses everything else:
///
/// - envelope `{2: auth, 3: manifest, …}` (tag 107 optional; other members skipped);
/// - auth `[bstr .cbor [-16, bstr .size 32], * bstr]`: the digest must be the SHA-256 of
///   the manifest bstr (head included, as SUIT digests it), and one of the blocks must
///   be a COSE_Sign1 with `{1: -8}` (EdDSA) or `{1: -19}` (Ed25519) in its protected
///   header and a detached payload
///   whose signature over the `Sig_structure` (payload: the digest bstr's content)
///   `verify` accepts — the ROM key's; other blocks (the operator's, in any algorithm)
///   are for the update agent and are passed over;
/// - manifest `{1: 1, 2: sequence number (≤ u32::MAX), 3: common, …}`;
/// - common `{2: [STAGE2_COMPONENT], 4: shared sequence, …}`: one component, the second
///   stage's;
/// - the shared sequence holds only set-component-index 0, override-parameters, and the
///   identity conditions vendor (1), class (2), image-match (3) and device (24), which
///   the update agent evaluated before installing; override-parameters must set the image
///   digest (SHA-256) and size exactly once between them. Anything that could make the
///   digest depend on the device's state (try-each, set-parameters, …) is refused.
pub fn read_envelope(envelope: &[u8], verify: Verify<'_>) -> Option<Signed> {
    read_manifest(Cbor::new(open(envelope, verify)?.whole).bytes()?)
}

/// The envelope a slot keeps (the first stage's input): `{2: bstr .cbor [auth[0], the
/// ROM key's COSE_Sign1], 3: manifest}` — `envelope` without the other signature blocks
/// (the operator's, in whatever algorithm the trust store uses: an HSS-LMS signature alone
/// is larger than the slot's envelope area) and without any other member. The ROM key's
/// signature covers the manifest digest only, so it stays valid, and every byte of the
/// result is signed: a torn copy does not verify. `None` when `envelope` does not satisfy
/// [`read_envelope`], when the reduced authentication wrapper would be 256 bytes or more
/// (the ROM key's block with a large unprotected header: the first stage's writer stops
/// at one-byte lengths), or when the result does not fit `buf`.
pub fn slot_envelope<'b>(
    envelope: &[u8],
    verify: Verify<'_>,
    buf: &'b mut [u8],
) -> Option<&'b [u8]> {
    let o = open(envelope, verify)?;
    read_manifest(Cbor::new(o.whole).bytes()?)?;
    reduce(&o, buf)
}

/// The reduced envelope of [`slot_envelope`], from what [`open`] found.
fn reduce<'b>(o: &Opened<'_>, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let auth =
        1 + head_len(o.payload.len()) + o.payload.len() + head_len(o.rom.len()) + o.rom.len();
    let n = {
        let mut w = Writer {
            buf: &mut *buf,
            at: 0,
        };
        w.put(&[0xA2, 0x02])?;
        w.head(2, auth)?;
        w.put(&[0x82])?;
        w.bstr(o.payload)?;
        w.bstr(o.rom)?;
        w.put(&[0x03])?;
        w.put(o.whole)?;
        w.at
    };
    buf.get(..n)
}

/// What the ROM key authenticates in an envelope.
struct Opened<'a> {
    /// The manifest member as encoded (bstr head included): what the digest covers.
    whole: &'a [u8],
    /// The content of `auth[0]` (the encoded SUIT_Digest): what the signature covers.
    payload: &'a [u8],
    /// The ROM key's COSE_Sign1 block.
    rom: &'a [u8],
}

/// The envelope checks of [`read_envelope`], up to the manifest.
fn open<'a>(envelope: &'a [u8], verify: Verify<'_>) -> Option<Opened<'a>> {
    let mut d = Cbor::new(envelope);
    d.tag(TAG_ENVELOPE)?;
    let [auth, manifest] = d.fields([2, 3])?;
    let whole = manifest?;
    // auth: the digest first, then the signature blocks.
    let mut a = Cbor::new(Cbor::new(auth?).bytes()?);
    let blocks = a.array()?;
    let payload = a.bytes()?;
    let mut p = Cbor::new(payload);
    if p.array()? != 2 || p.int()? != SHA_256 {
        return None;
    }
    if !digest_matches(whole, p.bytes()?.try_into().ok()?) {
        return None;
    }
    let mut rom = None;
    for _ in 1..blocks {
        let block = a.bytes()?;
        if rom.is_none() && rom_signed(block, payload, verify) == Some(true) {
            rom = Some(block);
        }
    }
    Some(Opened {
        whole,
        payload,
        rom: rom?,
    })
}

/// Whether `block` is a COSE_Sign1 (EdDSA, detached payload) that `verify` accepts over
/// `payload`; `None` when it is not shaped so (another verifier's block).
fn rom_signed(block: &[u8], payload: &[u8], verify: Verify<'_>) -> Option<bool> {
    let mut c = Cbor::new(block);
    c.tag(TAG_SIGN1)?;
    if c.array()? != 4 {
        return None;
    }
    let protected = c.bytes()?;
    c.skip()?;
    // A detached payload: null (major type 7, simple value 22).
    if c.head()? != (7, 22) {
        return None;
    }
    let signature = c.bytes()?;
    let [alg] = Cbor::new(protected).fields([1])?;
    let alg = Cbor::new(alg?).int()?;
    if alg != EDDSA && alg != ED25519 {
        return None;
    }
    // Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 §4.4), as
    // suitcase_cose::encode_to_be_signed writes it, for the short strings a SUIT
    // signature has (its closure-generic encoder is 0.6 KB here; this is a tenth).
    let mut buf = [0u8; 128];
    let mut w = Writer {
        buf: &mut buf,
        at: 0,
    };
    w.put(&[0x84, 0x6A])?;
    w.put(b"Signature1")?;
    w.bstr(protected)?;
    w.put(&[0x40])?;
    w.bstr(payload)?;
    let at = w.at;
    Some(verify(buf.get(..at)?, signature))
}

/// Length of the head [`Writer::head`] writes for `n` (< 256).
fn head_len(n: usize) -> usize {
    if n < 24 { 1 } else { 2 }
}

/// Appends to a buffer, failing when it is full.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    #[inline(never)] // one copy: the first stage counts bytes
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.buf.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    /// A head of major type `major` with argument `n` < 256, shortest form (all a
    /// signature's `Sig_structure` and a slot's reduced authentication wrapper need).
    fn head(&mut self, major: u8, n: usize) -> Option<()> {
        let n = u8::try_from(n).ok()?;
        let m = major << 5;
        if n < 24 {
            self.put(&[m | n])
        } else {
            self.put(&[m | 24, n])
        }
    }

    /// A byte string shorter than 256 bytes (head and content).
    fn bstr(&mut self, bytes: &[u8]) -> Option<()> {
        self.head(2, bytes.len())?;
        self.put(bytes)
    }
}

/// The manifest part of [`read_envelope`] (the content of the manifest bstr). Public for
/// the fuzz target and the property tests: [`read_envelope`] calls it only on bytes whose
/// digest the ROM key signed, and so must any other caller.
#[inline(never)] // one copy (the agent and the first stage): the first stage counts bytes
pub fn read_manifest(manifest: &[u8]) -> Option<Signed> {
    let [version, sequence, common] = Cbor::new(manifest).fields([1, 2, 3])?;
    if Cbor::new(version?).uint()? != 1 {
        return None;
    }
    let version = u32::try_from(Cbor::new(sequence?).uint()?).ok()?;
    let [components, shared] = Cbor::new(Cbor::new(common?).bytes()?).fields([2, 4])?;
    // [STAGE2_COMPONENT]: array(1), then the identifier.
    if components?.split_first() != Some((&0x81, STAGE2_COMPONENT)) {
        return None;
    }
    let (mut digest, mut len) = (None, None);
    let mut s = Cbor::new(Cbor::new(shared?).bytes()?);
    let n = s.array()?;
    if n % 2 != 0 {
        return None;
    }
    for _ in 0..n / 2 {
        match s.uint()? {
            12 if s.uint()? == 0 => {}
            1 | 2 | 3 | 24 => {
                s.uint()?;
            }
            20 => {
                let [d, l] = s.fields([3, 14])?;
                if d.is_some() {
                    if digest.is_some() {
                        return None;
                    }
                    digest = d;
                }
                if l.is_some() {
                    if len.is_some() {
                        return None;
                    }
                    len = l;
                }
            }
            _ => return None,
        }
    }
    let mut d = Cbor::new(Cbor::new(digest?).bytes()?);
    if d.array()? != 2 || d.int()? != SHA_256 {
        return None;
    }
    Some(Signed {
        version,
        len: u32::try_from(Cbor::new(len?).uint()?).ok()?,
        digest: <[u8; 32]>::try_from(d.bytes()?).ok()?,
    })
}

/// The few CBOR reads the first stage needs, over definite lengths only (SUIT allows
/// nothing else). Not minicbor: its decoder (indefinite lengths, UTF-8 checks, floats)
/// took 4 KB of the 16 KiB the immutable first stage may have; this is a few hundred
/// bytes. Every read is bounds-checked and returns `None` on anything unexpected.
struct Cbor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cbor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cbor { b, at: 0 }
    }

    /// Major type and argument of the next item (its head only); `None` for an
    /// indefinite length, a reserved value or the end of the input.
    #[inline(never)] // one copy, not one per call site: the first stage counts bytes
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = *self.b.get(self.at)?;
        self.at += 1;
        let info = first & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = self.b.get(self.at..self.at.checked_add(n)?)?;
                self.at += n;
                bytes.iter().fold(0, |acc, &x| acc << 8 | u64::from(x))
            }
            _ => return None,
        };
        Some((first >> 5, arg))
    }

    /// The argument of the next item, which must be of major type `major`.
    #[inline(never)] // one copy, not one per call site: the first stage counts bytes
    fn expect(&mut self, major: u8) -> Option<u64> {
        let (m, arg) = self.head()?;
        (m == major).then_some(arg)
    }

    fn uint(&mut self) -> Option<u64> {
        self.expect(0)
    }

    #[inline(never)] // one copy, not one per call site: the first stage counts bytes
    fn int(&mut self) -> Option<i64> {
        match self.head()? {
            (0, a) => i64::try_from(a).ok(),
            (1, a) => i64::try_from(a).ok().map(|a| -1 - a),
            _ => None,
        }
    }

    fn array(&mut self) -> Option<u64> {
        self.expect(4)
    }

    fn map(&mut self) -> Option<u64> {
        self.expect(5)
    }

    #[inline(never)] // one copy, not one per call site: the first stage counts bytes
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.expect(2)?).ok()?;
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// Passes over tag `want` if the next item is tagged; any other tag fails.
    fn tag(&mut self, want: u64) -> Option<()> {
        if self.b.get(self.at)? >> 5 == 6 && self.expect(6)? != want {
            return None;
        }
        Some(())
    }

    /// Reads a map and returns the encoded values of the unsigned-integer keys `keys`
    /// (`None` for a key that is absent), skipping every other entry; a key in `keys` that
    /// appears twice refuses the map.
    fn fields<const N: usize>(&mut self, keys: [u64; N]) -> Option<[Option<&'a [u8]>; N]> {
        let mut out = [None; N];
        self.fields_into(&keys, &mut out)?;
        Some(out)
    }

    #[inline(never)] // one copy for every map: the first stage counts bytes
    fn fields_into(&mut self, keys: &[u64], out: &mut [Option<&'a [u8]>]) -> Option<()> {
        for _ in 0..self.map()? {
            let key = match self.b.get(self.at)? >> 5 {
                0 => self.uint(),
                _ => self.skip().map(|()| u64::MAX),
            }?;
            let at = self.at;
            self.skip()?;
            let value = self.b.get(at..self.at);
            if let Some(i) = keys.iter().position(|&k| k == key) {
                let slot = out.get_mut(i)?;
                if slot.is_some() {
                    return None;
                }
                *slot = value;
            }
        }
        Some(())
    }

    /// Skips one whole item. Iterative (a count of items still to pass over), so nesting
    /// costs no stack; every step consumes at least one byte, so it ends within the input.
    #[inline(never)] // one copy, not one per call site: the first stage counts bytes
    fn skip(&mut self) -> Option<()> {
        let mut pending = 1u64;
        while pending > 0 {
            pending -= 1;
            let (major, arg) = self.head()?;
            match major {
                2 | 3 => {
                    let end = self.at.checked_add(usize::try_from(arg).ok()?)?;
                    if end > self.b.len() {
                        return None;
                    }
                    self.at = end;
                }
                4 => pending = pending.checked_add(arg)?,
                5 => pending = pending.checked_add(arg.checked_mul(2)?)?,
                6 => pending += 1,
                _ => {}
            }
        }
        Some(())
    }
}

/// The check of a second-stage image while the update runs: `envelope` (the update's own)
/// describes it and is signed with the first stage's key, and it is newer than the running
/// second stage.
pub struct PackageCheck<'s> {
    slot_size: u32,
    running_version: u32,
    envelope: &'s [u8],
    verify: Verify<'s>,
    /// Why the last image was refused.
    pub refused: Option<StageError>,
}

impl Accept for PackageCheck<'_> {
    fn accept(&mut self, bytes: &[u8]) -> bool {
        self.refused = check(
            self.envelope,
            bytes,
            self.slot_size,
            self.running_version,
            self.verify,
        )
        .err();
        self.refused.is_none()
    }
}

/// Storage for an update that may carry a second stage (component [`STAGE2_COMPONENT`],
/// held in RAM and checked as its write finishes, so a bad one fails the update before the
/// rollback counter moves). Once the update has succeeded, [`Stages::install`] writes the
/// envelope and [`Held::accepted`] into the inactive slot.
pub type Stage2Storage<'s> = Held<'s, PackageCheck<'s>>;

impl<F: NorFlash> Stages<F> {
    /// A [`Stage2Storage`] over `inner` for the update `envelope`, run by the second stage
    /// of version `running_version`.
    pub fn storage<'s>(
        &self,
        inner: &'s mut dyn ComponentStorage,
        running_version: u32,
        envelope: &'s [u8],
        verify: Verify<'s>,
        buf: &'s mut [u8],
    ) -> Stage2Storage<'s> {
        Held::new(
            inner,
            STAGE2_COMPONENT,
            buf,
            PackageCheck {
                slot_size: self.size,
                running_version,
                envelope,
                verify,
                refused: None,
            },
        )
    }
}
