//! [`ComponentStorage`] implementations: RAM buffers (tests, simulators, RAM components
//! such as example 4's load target), regions of an embedded-storage `NorFlash` (real
//! devices and the flash simulator), and [`Held`], which keeps one component in RAM and
//! checks it as its write finishes (a trust store, a second-stage bootloader package).

use embedded_storage::nor_flash::NorFlash;

use crate::platform::{ComponentStorage, StorageError, Target};

/// One RAM component: its encoded identifier, optional slot, buffer and current length.
#[derive(Debug)]
pub struct MemoryComponent<'b> {
    /// The encoded SUIT_Component_Identifier (`[* bstr]`).
    pub id: &'b [u8],
    /// The slot, for A/B components.
    pub slot: Option<u64>,
    /// Capacity.
    pub data: &'b mut [u8],
    /// Bytes held.
    pub len: usize,
}

/// Components in RAM, found by identifier and slot.
#[derive(Debug)]
pub struct MemoryStorage<'s, 'b> {
    /// The components.
    pub components: &'s mut [MemoryComponent<'b>],
}

fn same(c: &MemoryComponent<'_>, t: &Target<'_>) -> bool {
    c.slot == t.slot && crate::bytes::same(c.id, t.id.as_bytes())
}

impl<'b> MemoryStorage<'_, 'b> {
    fn index(&self, t: &Target<'_>) -> Result<usize, StorageError> {
        self.components
            .iter()
            .position(|c| same(c, t))
            .ok_or(StorageError::UnknownComponent)
    }
    fn get(&mut self, t: &Target<'_>) -> Result<&mut MemoryComponent<'b>, StorageError> {
        let i = self.index(t)?;
        self.components
            .get_mut(i)
            .ok_or(StorageError::UnknownComponent)
    }
}

impl ComponentStorage for MemoryStorage<'_, '_> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        Ok(self.get(t)?.len as u64)
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let c = self.get(t)?;
        let start = usize::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(StorageError::OutOfBounds)?;
        if end > c.len {
            return Err(StorageError::OutOfBounds);
        }
        buf.copy_from_slice(c.data.get(start..end).ok_or(StorageError::OutOfBounds)?);
        Ok(())
    }

    fn begin_write(&mut self, t: &Target<'_>, size: Option<u64>) -> Result<(), StorageError> {
        let c = self.get(t)?;
        if size.is_some_and(|s| s > c.data.len() as u64) {
            return Err(StorageError::OutOfSpace);
        }
        c.len = 0;
        Ok(())
    }

    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let c = self.get(t)?;
        let start = usize::try_from(offset).map_err(|_| StorageError::OutOfSpace)?;
        let end = start
            .checked_add(data.len())
            .ok_or(StorageError::OutOfSpace)?;
        c.data
            .get_mut(start..end)
            .ok_or(StorageError::OutOfSpace)?
            .copy_from_slice(data);
        c.len = c.len.max(end);
        Ok(())
    }

    fn finish_write(&mut self, t: &Target<'_>, len: u64) -> Result<(), StorageError> {
        let c = self.get(t)?;
        c.len = usize::try_from(len).map_err(|_| StorageError::OutOfSpace)?;
        Ok(())
    }

    fn swap(&mut self, a: &Target<'_>, b: &Target<'_>) -> Result<(), StorageError> {
        let (i, j) = (self.index(a)?, self.index(b)?);
        if i == j {
            return Err(StorageError::Unsupported);
        }
        let (lo, hi) = (i.min(j), i.max(j));
        let (left, right) = self.components.split_at_mut(hi);
        let x = left.get_mut(lo).ok_or(StorageError::UnknownComponent)?;
        let y = right.first_mut().ok_or(StorageError::UnknownComponent)?;
        if x.len > y.data.len() || y.len > x.data.len() {
            return Err(StorageError::OutOfSpace);
        }
        let n = x.len.max(y.len);
        for k in 0..n {
            if let (Some(p), Some(q)) = (x.data.get_mut(k), y.data.get_mut(k)) {
                core::mem::swap(p, q);
            }
        }
        core::mem::swap(&mut x.len, &mut y.len);
        Ok(())
    }
}

/// A flash region holding one component (slot).
#[derive(Clone, Copy, Debug)]
pub struct FlashRegion<'b> {
    /// The encoded SUIT_Component_Identifier.
    pub id: &'b [u8],
    /// The slot, for A/B components.
    pub slot: Option<u64>,
    /// Start offset in the flash; a multiple of the erase size.
    pub offset: u32,
    /// Size; a multiple of the erase size.
    pub size: u32,
}

/// Largest flash write granularity supported (bytes); covers every NOR part we know of.
pub const MAX_WRITE_SIZE: usize = 32;

/// Re-blocks a stream of chunks of any length into whole flash words written in order:
/// NOR flash takes writes only in multiples of its write size, at aligned offsets, once
/// per erase, while transports and decryptors hand over whatever they have. Holds at most
/// one partial word; offsets given to the write callback count from the stream's start.
#[derive(Clone, Copy, Debug)]
pub struct WordWriter {
    pending: [u8; MAX_WRITE_SIZE],
    pending_len: usize,
    written: u32,
}

/// Writes whole words at a stream offset (the caller adds its base address).
pub type WordSink<'a> = dyn FnMut(u32, &[u8]) -> Result<(), StorageError> + 'a;

impl Default for WordWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl WordWriter {
    /// An empty writer at stream offset 0.
    pub const fn new() -> Self {
        WordWriter {
            pending: [0; MAX_WRITE_SIZE],
            pending_len: 0,
            written: 0,
        }
    }

    /// Bytes accepted so far: written words plus the partial word held back.
    pub fn position(&self) -> u64 {
        u64::from(self.written) + self.pending_len as u64
    }

    /// Bytes written to flash (whole words only).
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Takes `data`, writing every completed `word`-byte word through `write`.
    /// `word` must be between 1 and [`MAX_WRITE_SIZE`].
    pub fn feed(
        &mut self,
        word: usize,
        mut data: &[u8],
        write: &mut WordSink<'_>,
    ) -> Result<(), StorageError> {
        if word == 0 || word > MAX_WRITE_SIZE {
            return Err(StorageError::Unsupported);
        }
        if self.pending_len > 0 {
            let take = (word - self.pending_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending
                .get_mut(self.pending_len..self.pending_len + take)
                .ok_or(StorageError::Device)?
                .copy_from_slice(head);
            self.pending_len += take;
            data = rest;
            if self.pending_len < word {
                // The chunk did not complete the word: keep it all for the next one.
                return Ok(());
            }
            let full = self.pending.get(..word).ok_or(StorageError::Device)?;
            write(self.written, full)?;
            self.written += word as u32;
            self.pending_len = 0;
        }
        let whole = data.len() / word * word;
        if whole > 0 {
            let (body, rest) = data.split_at(whole);
            write(self.written, body)?;
            self.written += whole as u32;
            data = rest;
        }
        self.pending
            .get_mut(..data.len())
            .ok_or(StorageError::Device)?
            .copy_from_slice(data);
        self.pending_len = data.len();
        Ok(())
    }

    /// Pads a held-back partial word with `pad` (the erased value, so the padding reads
    /// as never written) and writes it.
    pub fn finish(
        &mut self,
        word: usize,
        pad: u8,
        write: &mut WordSink<'_>,
    ) -> Result<(), StorageError> {
        if self.pending_len == 0 {
            return Ok(());
        }
        let tail = self
            .pending
            .get_mut(self.pending_len..word)
            .ok_or(StorageError::Device)?;
        tail.fill(pad);
        let full = self.pending.get(..word).ok_or(StorageError::Device)?;
        write(self.written, full)?;
        self.written += word as u32;
        self.pending_len = 0;
        Ok(())
    }
}

/// Components in regions of a `NorFlash`. Writes are re-blocked to the flash's write
/// size (a chunk rarely ends on a word boundary); the tail is padded with `0xFF`.
///
/// Raw flash has no length: [`ComponentStorage::len`] reports the region size, so
/// image-match on flash needs the image-size parameter (which every spec example sets
/// for installed images). The bootloader crate adds trailers that record more.
pub struct FlashStorage<'b, F: NorFlash> {
    flash: F,
    regions: &'b [FlashRegion<'b>],
    words: WordWriter,
}

impl<'b, F: NorFlash> FlashStorage<'b, F> {
    const WRITE: usize = {
        assert!(F::WRITE_SIZE <= MAX_WRITE_SIZE && F::WRITE_SIZE > 0);
        F::WRITE_SIZE
    };

    /// Storage over `flash` with these regions.
    pub fn new(flash: F, regions: &'b [FlashRegion<'b>]) -> Self {
        FlashStorage {
            flash,
            regions,
            words: WordWriter::new(),
        }
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    fn region(&self, t: &Target<'_>) -> Result<FlashRegion<'b>, StorageError> {
        self.regions
            .iter()
            .find(|r| r.id == t.id.as_bytes() && r.slot == t.slot)
            .copied()
            .ok_or(StorageError::UnknownComponent)
    }
}

impl<F: NorFlash> ComponentStorage for FlashStorage<'_, F> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        Ok(u64::from(self.region(t)?.size))
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let r = self.region(t)?;
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(StorageError::OutOfBounds)?;
        if end > u64::from(r.size) {
            return Err(StorageError::OutOfBounds);
        }
        let at = r.offset + u32::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        self.flash.read(at, buf).map_err(|_| StorageError::Device)
    }

    fn begin_write(&mut self, t: &Target<'_>, size: Option<u64>) -> Result<(), StorageError> {
        let r = self.region(t)?;
        let want = size.unwrap_or(u64::from(r.size));
        if want > u64::from(r.size) {
            return Err(StorageError::OutOfSpace);
        }
        // Erase only the sectors the image will occupy: fewer erases, less wear.
        let erase = F::ERASE_SIZE as u64;
        let span = want.div_ceil(erase) * erase;
        let span =
            u32::try_from(span.min(u64::from(r.size))).map_err(|_| StorageError::OutOfSpace)?;
        if span > 0 {
            self.flash
                .erase(r.offset, r.offset + span)
                .map_err(|_| StorageError::Device)?;
        }
        self.words = WordWriter::new();
        Ok(())
    }

    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let r = self.region(t)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StorageError::OutOfSpace)?;
        if offset != self.words.position() || end > u64::from(r.size) {
            return Err(StorageError::OutOfSpace);
        }
        let flash = &mut self.flash;
        self.words.feed(Self::WRITE, data, &mut |at, bytes| {
            flash
                .write(r.offset + at, bytes)
                .map_err(|_| StorageError::Device)
        })
    }

    fn finish_write(&mut self, t: &Target<'_>, _len: u64) -> Result<(), StorageError> {
        let r = self.region(t)?;
        let flash = &mut self.flash;
        self.words.finish(Self::WRITE, 0xFF, &mut |at, bytes| {
            flash
                .write(r.offset + at, bytes)
                .map_err(|_| StorageError::Device)
        })
    }
}

/// Decides whether the bytes written into a [`Held`] component are acceptable.
pub trait Accept {
    /// `true` accepts `bytes`; `false` fails the write with [`StorageError::Rejected`].
    fn accept(&mut self, bytes: &[u8]) -> bool;
}

/// A storage that keeps the component `id` (encoded identifier) in a RAM buffer, checks
/// it with `A` when its write finishes, and hands every other component to `inner`.
/// Refusing at `finish_write` fails the update before the rollback counter moves; the
/// caller installs [`Held::accepted`] only once the whole update succeeded.
pub struct Held<'s, A> {
    inner: &'s mut dyn ComponentStorage,
    id: &'s [u8],
    buf: &'s mut [u8],
    len: usize,
    accepted: bool,
    /// The check (and whatever it records about a refusal).
    pub check: A,
}

impl<'s, A: Accept> Held<'s, A> {
    /// Holds component `id` in `buf` (size it for the largest payload).
    pub fn new(
        inner: &'s mut dyn ComponentStorage,
        id: &'s [u8],
        buf: &'s mut [u8],
        check: A,
    ) -> Self {
        Held {
            inner,
            id,
            buf,
            len: 0,
            accepted: false,
            check,
        }
    }

    /// The bytes written and accepted, if the component was written.
    pub fn accepted(&self) -> Option<&[u8]> {
        if self.accepted {
            self.buf.get(..self.len)
        } else {
            None
        }
    }

    fn holds(&self, t: &Target<'_>) -> bool {
        t.id.as_bytes() == self.id
    }
}

impl<A: Accept> ComponentStorage for Held<'_, A> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        if self.holds(t) {
            Ok(self.len as u64)
        } else {
            self.inner.len(t)
        }
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, out: &mut [u8]) -> Result<(), StorageError> {
        if !self.holds(t) {
            return self.inner.read(t, offset, out);
        }
        let start = usize::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        let src = start
            .checked_add(out.len())
            .filter(|&end| end <= self.len)
            .and_then(|end| self.buf.get(start..end))
            .ok_or(StorageError::OutOfBounds)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn begin_write(&mut self, t: &Target<'_>, size: Option<u64>) -> Result<(), StorageError> {
        if !self.holds(t) {
            return self.inner.begin_write(t, size);
        }
        if size.is_some_and(|s| s > self.buf.len() as u64) {
            return Err(StorageError::OutOfSpace);
        }
        self.len = 0;
        self.accepted = false;
        Ok(())
    }

    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        if !self.holds(t) {
            return self.inner.write(t, offset, data);
        }
        if offset != self.len as u64 {
            return Err(StorageError::OutOfBounds);
        }
        let dst = self
            .len
            .checked_add(data.len())
            .and_then(|end| self.buf.get_mut(self.len..end))
            .ok_or(StorageError::OutOfSpace)?;
        dst.copy_from_slice(data);
        self.len += data.len();
        Ok(())
    }

    fn finish_write(&mut self, t: &Target<'_>, len: u64) -> Result<(), StorageError> {
        if !self.holds(t) {
            return self.inner.finish_write(t, len);
        }
        if len != self.len as u64 {
            return Err(StorageError::OutOfBounds);
        }
        let bytes = self.buf.get(..self.len).ok_or(StorageError::OutOfBounds)?;
        if self.check.accept(bytes) {
            self.accepted = true;
            Ok(())
        } else {
            Err(StorageError::Rejected)
        }
    }

    fn swap(&mut self, a: &Target<'_>, b: &Target<'_>) -> Result<(), StorageError> {
        if self.holds(a) || self.holds(b) {
            return Err(StorageError::Unsupported);
        }
        self.inner.swap(a, b)
    }
}

#[cfg(test)]
mod tests;
