//! The install pipeline: source → transform → (hash ‖ write), one chunk at a time.
//!
//! Every byte crosses the pipeline once: it is read from its source into the one chunk
//! buffer, transformed in place (decryption sits here), hashed, and written. The image is
//! never held whole, so RAM use is the chunk size whatever the image size.
//!
//! ```text
//!  Source ──read──▶ [chunk: CHUNK bytes] ──Transform::apply (in place)──▶ [..n] ┬─▶ SHA-256
//!  (bytes / Fetch /                                                            └─▶ ComponentStorage::write
//!   another component)
//! ```
//!
//! A transform may output fewer bytes than it was given (`n ≤ chunk.len()`): AES-GCM
//! holds back the last 16 bytes it has seen, because only the end of the stream tells
//! whether they are ciphertext or the tag. Offsets, the image-size limit and the digest
//! all count the transform's output (the plaintext), never the source bytes.

use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::platform::{ComponentStorage, Fetch, StorageError, Target};

/// Chunk size of the pipeline: the one buffer it uses. 512 bytes keeps SHA-256 on its
/// block-aligned fast path and stays small for a microcontroller's stack.
pub const CHUNK: usize = 512;

/// An in-place transform between source and sink, such as payload decryption. It sees
/// every source byte once, in order.
pub trait Transform {
    /// Transforms `chunk` in place and returns how many of its leading bytes are output
    /// (at most `chunk.len()`); the rest stays inside the transform, which releases it
    /// with a later chunk or consumes it in [`finish`](Self::finish).
    ///
    /// # Errors
    /// Whatever stops the transform; the install stops with it.
    fn apply(&mut self, chunk: &mut [u8]) -> Result<usize, Error>;
    /// Called after the last chunk: an AEAD checks its tag here. An error fails the
    /// install and leaves the component unfinished (`finish_write` is not called; what
    /// was written is not trusted, and its digest is not recorded).
    ///
    /// # Errors
    /// For decryption, [`Error::DecryptionFailed`].
    fn finish(&mut self) -> Result<(), Error>;
}

/// Where the bytes come from.
pub enum Source<'s, 'a> {
    /// A byte string in the envelope (write's content, an integrated payload).
    Bytes(&'a [u8]),
    /// An opened transport.
    Fetch(&'s mut dyn Fetch),
    /// Another component of the same storage, `len` bytes of it.
    Component(Target<'a>, u64),
}

/// What an install wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// SHA-256 of the bytes written (after the transform).
    pub digest: [u8; 32],
    /// How many.
    pub len: u64,
}

/// Streams `source` into `dst`. `limit` (the image-size parameter) bounds what may be
/// written: a longer payload stops with [`Error::ImageSizeExceeded`] before the extra
/// byte reaches storage. With a transform, `limit` and the returned length and digest
/// are those of its output.
///
/// # Errors
/// Storage, transport and transform errors; [`Error::ImageSizeExceeded`].
pub fn install(
    storage: &mut dyn ComponentStorage,
    dst: &Target<'_>,
    limit: Option<u64>,
    mut source: Source<'_, '_>,
    mut transform: Option<&mut dyn Transform>,
) -> Result<Written, Error> {
    storage.begin_write(dst, limit)?;
    let mut buf = [0u8; CHUNK];
    let mut hasher = Sha256::new();
    // `read` counts source bytes (for a component source), `off` output bytes.
    let mut read: u64 = 0;
    let mut off: u64 = 0;
    loop {
        let n = match &mut source {
            Source::Bytes(b) => {
                let n = b.len().min(CHUNK);
                let (head, tail) = b.split_at(n);
                buf.get_mut(..n)
                    .ok_or(Error::Storage(StorageError::OutOfBounds))?
                    .copy_from_slice(head);
                *b = tail;
                n
            }
            Source::Fetch(f) => f.read(&mut buf)?.min(CHUNK),
            Source::Component(src, len) => {
                let left = len.saturating_sub(read);
                let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                if n > 0 {
                    let part = buf
                        .get_mut(..n)
                        .ok_or(Error::Storage(StorageError::OutOfBounds))?;
                    storage.read(src, read, part)?;
                }
                n
            }
        };
        if n == 0 {
            break;
        }
        read = read.saturating_add(n as u64);
        let chunk = buf
            .get_mut(..n)
            .ok_or(Error::Storage(StorageError::OutOfBounds))?;
        let produced = match transform.as_deref_mut() {
            Some(t) => t.apply(chunk)?,
            None => n,
        };
        // A transform claiming more than it was given is a bug; refuse, never read past.
        let out = chunk
            .get(..produced)
            .ok_or(Error::Storage(StorageError::OutOfBounds))?;
        if out.is_empty() {
            continue;
        }
        let end = off
            .checked_add(out.len() as u64)
            .ok_or(Error::ImageSizeExceeded)?;
        if limit.is_some_and(|l| end > l) {
            return Err(Error::ImageSizeExceeded);
        }
        hasher.update(out);
        storage.write(dst, off, out)?;
        off = end;
    }
    if let Some(t) = transform {
        t.finish()?;
    }
    storage.finish_write(dst, off)?;
    Ok(Written {
        digest: hasher.finalize().into(),
        len: off,
    })
}

/// SHA-256 of the first `len` bytes of a component, read back in chunks. `Ok(None)`
/// when the component holds fewer bytes.
pub fn digest_component(
    storage: &mut dyn ComponentStorage,
    target: &Target<'_>,
    len: u64,
) -> Result<Option<[u8; 32]>, Error> {
    let mut buf = [0u8; CHUNK];
    let mut hasher = Sha256::new();
    let mut off = 0u64;
    while off < len {
        let n = usize::try_from(len - off).unwrap_or(CHUNK).min(CHUNK);
        let part = buf
            .get_mut(..n)
            .ok_or(Error::Storage(StorageError::OutOfBounds))?;
        match storage.read(target, off, part) {
            Ok(()) => {}
            Err(StorageError::OutOfBounds) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        hasher.update(&*part);
        off += n as u64;
    }
    Ok(Some(hasher.finalize().into()))
}

/// Compares a component with `expected` without an early exit (check-content must be
/// constant-time: the content may be a secret the manifest checks for).
pub fn content_equals(
    storage: &mut dyn ComponentStorage,
    target: &Target<'_>,
    expected: &[u8],
) -> Result<bool, Error> {
    let have = storage.len(target)?;
    let mut diff = u8::from(have != expected.len() as u64);
    let mut buf = [0u8; CHUNK];
    let mut off = 0usize;
    for want in expected.chunks(CHUNK) {
        let part = buf
            .get_mut(..want.len())
            .ok_or(Error::Storage(StorageError::OutOfBounds))?;
        match storage.read(target, off as u64, part) {
            Ok(()) => {
                for (a, b) in part.iter().zip(want) {
                    diff |= a ^ b;
                }
            }
            Err(StorageError::OutOfBounds) => diff |= 1,
            Err(e) => return Err(e.into()),
        }
        off += want.len();
    }
    Ok(diff == 0)
}
