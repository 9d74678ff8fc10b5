//! The store's flash area: two copies, each written body first and header last, so that
//! a power cut at any instant leaves the old store or the new one current
//! (docs/trust-store.md, "Two copies on flash").

use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest as _, Sha256};

use crate::{Store, TrustError, decode};

/// Bytes before the store in each copy (the header, padded).
pub const HEADER_LEN: usize = 64;
const MAGIC: [u8; 4] = *b"SUTS";
const FORMAT: u8 = 1;
/// Chunk for reads and writes (a multiple of every write size this area accepts).
const CHUNK: usize = 64;

/// Which copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    /// The first.
    A,
    /// The second.
    B,
}

impl Copy {
    fn other(self) -> Copy {
        match self {
            Copy::A => Copy::B,
            Copy::B => Copy::A,
        }
    }
}

/// What a valid copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Found {
    len: usize,
    digest: [u8; 32],
    version: u64,
}

/// The two copies of the store on a `NorFlash`.
#[derive(Debug)]
pub struct Area<F> {
    flash: F,
    starts: [u32; 2],
    size: u32,
    current: Option<Copy>,
}

impl<F: NorFlash> Area<F> {
    /// Copies at `a` and `b`, `size` bytes each (whole erase sectors, not overlapping).
    pub fn new(flash: F, a: u32, b: u32, size: u32) -> Result<Self, TrustError> {
        let erase = F::ERASE_SIZE as u32;
        let aligned = |x: u32| erase != 0 && x.is_multiple_of(erase);
        let fits = |x: u32| {
            x.checked_add(size)
                .is_some_and(|end| end as usize <= flash.capacity())
        };
        if !(aligned(a) && aligned(b) && aligned(size))
            || (size as usize) <= HEADER_LEN
            || F::WRITE_SIZE == 0
            || !CHUNK.is_multiple_of(F::WRITE_SIZE)
            || !(fits(a) && fits(b))
            || (a < b && a + size > b)
            || (b < a && b + size > a)
            || a == b
        {
            return Err(TrustError::Flash);
        }
        Ok(Area {
            flash,
            starts: [a, b],
            size,
            current: None,
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

    /// The copy [`Area::load`] found current.
    pub fn current(&self) -> Option<Copy> {
        self.current
    }

    fn start(&self, c: Copy) -> u32 {
        match c {
            Copy::A => self.starts[0],
            Copy::B => self.starts[1],
        }
    }

    /// Reads copy `c` into `buf` and checks it: header, digest, structure.
    fn probe(&mut self, c: Copy, buf: &mut [u8]) -> Result<Option<Found>, TrustError> {
        let start = self.start(c);
        let mut header = [0u8; HEADER_LEN];
        self.flash
            .read(start, &mut header)
            .map_err(|_| TrustError::Flash)?;
        let (Some(magic), Some(&format), Some(len), Some(digest)) = (
            header.get(..4),
            header.get(4),
            header.get(8..12),
            header.get(12..44),
        ) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(len.try_into().unwrap_or([0xFF; 4])) as usize;
        if magic != MAGIC || format != FORMAT || len == 0 || len > self.size as usize - HEADER_LEN {
            return Ok(None);
        }
        let body = buf.get_mut(..len).ok_or(TrustError::BufferTooSmall)?;
        self.read(start + HEADER_LEN as u32, body)?;
        if Sha256::digest(&*body).as_slice() != digest {
            return Ok(None);
        }
        let Ok(raw) = decode::signed_store(body) else {
            return Ok(None);
        };
        let mut d = [0u8; 32];
        d.copy_from_slice(digest);
        Ok(Some(Found {
            len,
            digest: d,
            version: raw.version,
        }))
    }

    fn read(&mut self, mut at: u32, out: &mut [u8]) -> Result<(), TrustError> {
        for part in out.chunks_mut(CHUNK) {
            self.flash.read(at, part).map_err(|_| TrustError::Flash)?;
            at += part.len() as u32;
        }
        Ok(())
    }

    /// The current store, read into `buf`. Finishes an interrupted commit first: when the
    /// copies differ, the lower or invalid one is rewritten from the current one, so both
    /// hold the same store before anything trusts it.
    pub fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Store<'b>, TrustError> {
        let a = self.probe(Copy::A, buf)?;
        let b = self.probe(Copy::B, buf)?;
        let (winner, found, other) = match (a, b) {
            (Some(a), Some(b)) if b.version > a.version => (Copy::B, b, Some(a)),
            (Some(a), other) => (Copy::A, a, other),
            (None, Some(b)) => (Copy::B, b, None),
            (None, None) => return Err(TrustError::NoValidCopy),
        };
        // B was probed last: when B won, `buf` holds its checked bytes; when A won, B's
        // probe may have overwritten them, so A is read (and checked) again.
        if winner == Copy::A && self.probe(Copy::A, buf)? != Some(found) {
            return Err(TrustError::Flash);
        }
        let bytes = buf.get(..found.len).ok_or(TrustError::BufferTooSmall)?;
        if other.is_none_or(|o| o.digest != found.digest) {
            self.write_copy(winner.other(), bytes)?;
        }
        self.current = Some(winner);
        Store::decode(bytes)
    }

    /// Writes an accepted store (see [`Store::verify_update`]) into the copy that is not
    /// current, then into the other. Call [`Area::load`] first.
    pub fn commit(&mut self, signed: &[u8]) -> Result<(), TrustError> {
        let current = self.current.ok_or(TrustError::NoValidCopy)?;
        self.write_copy(current.other(), signed)?;
        self.current = Some(current.other());
        self.write_copy(current, signed)
    }

    /// Writes a first store into both copies (the factory; nothing is current before).
    pub fn provision(&mut self, signed: &[u8]) -> Result<(), TrustError> {
        self.write_copy(Copy::A, signed)?;
        self.current = Some(Copy::A);
        self.write_copy(Copy::B, signed)
    }

    /// Erase, the store's bytes, then the header (which makes the copy valid).
    fn write_copy(&mut self, c: Copy, signed: &[u8]) -> Result<(), TrustError> {
        if signed.is_empty() || signed.len() > self.size as usize - HEADER_LEN {
            return Err(TrustError::BufferTooSmall);
        }
        let start = self.start(c);
        self.flash
            .erase(start, start + self.size)
            .map_err(|_| TrustError::Flash)?;
        let mut at = start + HEADER_LEN as u32;
        for part in signed.chunks(CHUNK) {
            // The last chunk is padded to whole write units; the padding is never read
            // (the header's length bounds the store).
            let mut chunk = [0xFF; CHUNK];
            let n = part.len().div_ceil(F::WRITE_SIZE) * F::WRITE_SIZE;
            let dst = chunk.get_mut(..part.len()).ok_or(TrustError::Flash)?;
            dst.copy_from_slice(part);
            let unit = chunk.get(..n).ok_or(TrustError::Flash)?;
            self.flash.write(at, unit).map_err(|_| TrustError::Flash)?;
            at += part.len() as u32;
        }
        let mut header = [0xFF; HEADER_LEN];
        let fields = header.get_mut(..44).ok_or(TrustError::Flash)?;
        let (magic, rest) = fields.split_at_mut(4);
        magic.copy_from_slice(&MAGIC);
        let (format, rest) = rest.split_at_mut(4);
        format.copy_from_slice(&[FORMAT, 0, 0, 0]);
        let (len, digest) = rest.split_at_mut(4);
        len.copy_from_slice(&(signed.len() as u32).to_le_bytes());
        digest.copy_from_slice(&Sha256::digest(signed));
        self.flash
            .write(start, &header)
            .map_err(|_| TrustError::Flash)
    }
}
