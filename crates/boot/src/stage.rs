//! The updatable bootloader: a tiny immutable **first stage** chooses and starts one of two
//! **second-stage** slots; the second stage (the SUIT bootloader with its crypto) is updated
//! like any component, by a manifest. This is how the bootloader's own algorithms and keys
//! get replaced in the field (issue 8; docs/boot.md §11).
//!
//! The first stage needs only SHA-256 and one signature check with its own ROM key (the
//! caller's `verify`): it never parses SUIT. A second-stage **package** is what the release
//! engineer signs with that key and ships as the SUIT payload of the component
//! [`STAGE2_COMPONENT`]:
//!
//! ```text
//! package = header (112 bytes) || image
//! header  0  magic "S2HD"    4
//!         4  format 1, 0, 0, 0
//!         8  version u32 LE        anti-rollback: an update must be newer than the running one
//!        12  length  u32 LE        of the image
//!        16  sha256  [32]          of the image
//!        48  signature [64]        over bytes 0..48, by the first stage's key
//! slot    0  header (112 bytes), written last: the slot is valid only once it is complete
//!       128  tried      one write unit: programmed when the first stage starts a trial
//!       192  confirmed  one write unit: programmed by the second stage after its self-test
//!       256  image
//! ```
//!
//! A flag unit is *set* when it is not all erased bytes, so a flag torn by a power cut reads
//! as set: a torn "tried" counts as a trial that failed (the first stage falls back), a torn
//! "confirmed" as a confirmation (the self-test had passed).

use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest as _, Sha256};

use suitcase_processor::platform::ComponentStorage;
use suitcase_processor::storage::{Accept, Held};

/// The encoded component identifier of the second stage: `["suitcase", "stage2"]`.
pub const STAGE2_COMPONENT: &[u8] = &[
    0x82, 0x48, b's', b'u', b'i', b't', b'c', b'a', b's', b'e', 0x46, b's', b't', b'a', b'g', b'e',
    b'2',
];

/// Package header length.
pub const HEADER: usize = 112;
/// Length of the signed part of a header ([`signed_part`]).
pub const SIGNED: usize = 48;
const TRIED: u32 = 128;
const CONFIRMED: u32 = 192;
/// Where the image starts in a slot.
pub const IMAGE: u32 = 256;
const MAGIC: [u8; 4] = *b"S2HD";
const FLAG_UNIT: usize = 64;
const CHUNK: usize = 256;

/// The signed part of a package header (bytes 0..48): magic, format, version, image length
/// and SHA-256. The release engineer's tool signs these bytes with the first stage's key;
/// the first stage parses them back ([`Stages::choose`]).
pub fn signed_part(version: u32, len: u32, digest: &[u8; 32]) -> [u8; SIGNED] {
    let mut h = [0u8; SIGNED];
    let fields: [&[u8]; 5] = [
        &MAGIC,
        &[1, 0, 0, 0],
        &version.to_le_bytes(),
        &len.to_le_bytes(),
        digest,
    ];
    let mut at = 0;
    for f in fields {
        if let Some(dst) = h.get_mut(at..at + f.len()) {
            dst.copy_from_slice(f);
        }
        at += f.len();
    }
    h
}

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
    /// The package is not a valid, signed package for this device.
    BadPackage,
    /// The package is not newer than the running second stage.
    NotNewer,
}

/// A slot as read: a complete header whose image and signature verify.
#[derive(Clone, Copy, Debug)]
struct Valid {
    version: u32,
    len: u32,
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

/// Checks the signature over a header's first 48 bytes with the first stage's key.
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
            && (a + size <= b || b + size <= a)
            && (a.max(b) + size) as usize <= flash.capacity();
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

    fn flag(&mut self, s: Slot, at: u32) -> Result<bool, StageError> {
        let mut unit = [0u8; FLAG_UNIT];
        self.flash
            .read(self.start(s) + at, &mut unit)
            .map_err(|_| StageError::Flash)?;
        Ok(unit.iter().any(|&b| b != self.erased))
    }

    fn set_flag(&mut self, s: Slot, at: u32) -> Result<(), StageError> {
        let unit = [0x5A; FLAG_UNIT];
        self.flash
            .write(self.start(s) + at, &unit)
            .map_err(|_| StageError::Flash)
    }

    /// Reads and checks slot `s`: header, signature, image digest.
    fn probe(&mut self, s: Slot, verify: Verify<'_>) -> Result<Option<Valid>, StageError> {
        let start = self.start(s);
        let mut h = [0u8; HEADER];
        self.flash
            .read(start, &mut h)
            .map_err(|_| StageError::Flash)?;
        let Some((version, len, digest)) = parse(&h, self.size, verify) else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        let mut buf = [0u8; CHUNK];
        let mut off = 0u32;
        while off < len {
            let n = ((len - off) as usize).min(CHUNK);
            let part = buf.get_mut(..n).ok_or(StageError::Flash)?;
            self.flash
                .read(start + IMAGE + off, part)
                .map_err(|_| StageError::Flash)?;
            hasher.update(&*part);
            off += n as u32;
        }
        if hasher.finalize().as_slice() != digest {
            return Ok(None);
        }
        Ok(Some(Valid {
            version,
            len,
            tried: self.flag(s, TRIED)?,
            confirmed: self.flag(s, CONFIRMED)?,
        }))
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
        let a = self.probe(Slot::A, verify)?;
        let b = self.probe(Slot::B, verify)?;
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
        if self.flag(running, CONFIRMED)? {
            return Ok(());
        }
        self.set_flag(running, CONFIRMED)
    }

    /// Installs `package` into the slot that is not running (erase, image, header last),
    /// after checking it is signed for this device and newer than `running_version`.
    pub fn install(
        &mut self,
        running: Slot,
        running_version: u32,
        package: &[u8],
        verify: Verify<'_>,
    ) -> Result<(), StageError> {
        check(package, self.size, running_version, verify)?;
        let (h, image) = package
            .split_at_checked(HEADER)
            .ok_or(StageError::BadPackage)?;
        let target = running.other();
        let start = self.start(target);
        self.flash
            .erase(start, start + self.size)
            .map_err(|_| StageError::Flash)?;
        let mut at = start + IMAGE;
        for part in image.chunks(CHUNK) {
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
        // The header makes the slot valid: written last, padded to whole write units.
        let mut header = [0xFF; 128];
        header
            .get_mut(..HEADER)
            .ok_or(StageError::Flash)?
            .copy_from_slice(h);
        self.flash
            .write(start, &header)
            .map_err(|_| StageError::Flash)
    }
}

/// Whether `package` is a complete package signed for this device and newer than
/// `running_version`.
fn check(
    package: &[u8],
    slot_size: u32,
    running_version: u32,
    verify: Verify<'_>,
) -> Result<(), StageError> {
    let (h, image) = package
        .split_at_checked(HEADER)
        .ok_or(StageError::BadPackage)?;
    let (version, len, digest) = parse(h, slot_size, verify).ok_or(StageError::BadPackage)?;
    if len as usize != image.len() || Sha256::digest(image).as_slice() != digest {
        return Err(StageError::BadPackage);
    }
    if version <= running_version {
        return Err(StageError::NotNewer);
    }
    Ok(())
}

/// `(version, length, digest)` of a header whose magic, format, length and signature are
/// right.
fn parse<'h>(h: &'h [u8], slot_size: u32, verify: Verify<'_>) -> Option<(u32, u32, &'h [u8])> {
    let signed = h.get(..SIGNED)?;
    let signature = h.get(SIGNED..HEADER)?;
    if h.get(..4)? != MAGIC || h.get(4)? != &1 {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(h.get(at..at + 4)?.try_into().ok()?))
    };
    let (version, len) = (word(8)?, word(12)?);
    if len == 0 || len > slot_size - IMAGE || !verify(signed, signature) {
        return None;
    }
    Some((version, len, h.get(16..48)?))
}

/// The check of a second-stage package while the update runs: signed with the first
/// stage's key, complete, newer than the running second stage.
pub struct PackageCheck<'s> {
    slot_size: u32,
    running_version: u32,
    verify: Verify<'s>,
    /// Why the last package was refused.
    pub refused: Option<StageError>,
}

impl Accept for PackageCheck<'_> {
    fn accept(&mut self, bytes: &[u8]) -> bool {
        self.refused = check(bytes, self.slot_size, self.running_version, self.verify).err();
        self.refused.is_none()
    }
}

/// Storage for an update that may carry a second-stage package (component
/// [`STAGE2_COMPONENT`], held in RAM and checked as its write finishes, so a bad package
/// fails the update before the rollback counter moves). Once the update has succeeded,
/// [`Stages::install`] writes [`Held::accepted`] into the inactive slot.
pub type Stage2Storage<'s> = Held<'s, PackageCheck<'s>>;

impl<F: NorFlash> Stages<F> {
    /// A [`Stage2Storage`] over `inner` for an update run by the second stage of version
    /// `running_version`.
    pub fn storage<'s>(
        &self,
        inner: &'s mut dyn ComponentStorage,
        running_version: u32,
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
                verify,
                refused: None,
            },
        )
    }
}
