//! A trust-store update as a SUIT component: [`Staging`] keeps the component
//! `["suitcase", "trust-store"]` in RAM, checks it against the current store the moment
//! its write finishes, and hands every other component to the device's storage.

use suitcase_processor::platform::{ComponentStorage, StorageError, Target};

use crate::{Store, TrustError};

/// The encoded component identifier of the trust store: `["suitcase", "trust-store"]`.
pub const TRUST_STORE_COMPONENT: &[u8] = &[
    0x82, 0x48, b's', b'u', b'i', b't', b'c', b'a', b's', b'e', 0x4b, b't', b'r', b'u', b's', b't',
    b'-', b's', b't', b'o', b'r', b'e',
];

/// Storage for an update that may carry a new trust store.
pub struct Staging<'s, 'c> {
    inner: &'s mut dyn ComponentStorage,
    current: &'s Store<'c>,
    buf: &'s mut [u8],
    len: usize,
    accepted: bool,
    /// Why the last staged store was refused.
    pub refused: Option<TrustError>,
}

impl<'s, 'c> Staging<'s, 'c> {
    /// `inner` holds every other component; `current` is the store in force; `buf` takes
    /// the new store (size it for the largest store: keys and root signatures).
    pub fn new(
        inner: &'s mut dyn ComponentStorage,
        current: &'s Store<'c>,
        buf: &'s mut [u8],
    ) -> Self {
        Staging {
            inner,
            current,
            buf,
            len: 0,
            accepted: false,
            refused: None,
        }
    }

    /// The new store, when one was written and accepted by
    /// [`Store::verify_update`]: commit it with [`crate::Area::commit`] once the update
    /// procedure has succeeded.
    pub fn staged(&self) -> Option<&[u8]> {
        if self.accepted {
            self.buf.get(..self.len)
        } else {
            None
        }
    }

    fn is_store(t: &Target<'_>) -> bool {
        t.id.as_bytes() == TRUST_STORE_COMPONENT
    }
}

impl ComponentStorage for Staging<'_, '_> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        if Self::is_store(t) {
            Ok(self.len as u64)
        } else {
            self.inner.len(t)
        }
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        if !Self::is_store(t) {
            return self.inner.read(t, offset, buf);
        }
        let start = usize::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        let src = start
            .checked_add(buf.len())
            .filter(|&end| end <= self.len)
            .and_then(|end| self.buf.get(start..end))
            .ok_or(StorageError::OutOfBounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn begin_write(&mut self, t: &Target<'_>, size: Option<u64>) -> Result<(), StorageError> {
        if !Self::is_store(t) {
            return self.inner.begin_write(t, size);
        }
        if size.is_some_and(|s| s > self.buf.len() as u64) {
            return Err(StorageError::OutOfSpace);
        }
        self.len = 0;
        self.accepted = false;
        self.refused = None;
        Ok(())
    }

    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        if !Self::is_store(t) {
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
        if !Self::is_store(t) {
            return self.inner.finish_write(t, len);
        }
        if len != self.len as u64 {
            return Err(StorageError::OutOfBounds);
        }
        let bytes = self.buf.get(..self.len).ok_or(StorageError::OutOfBounds)?;
        // Refused at once, so the update fails before the rollback counter moves.
        match self.current.verify_update(bytes) {
            Ok(_) => {
                self.accepted = true;
                Ok(())
            }
            Err(e) => {
                self.refused = Some(e);
                Err(StorageError::Rejected)
            }
        }
    }

    fn swap(&mut self, a: &Target<'_>, b: &Target<'_>) -> Result<(), StorageError> {
        if Self::is_store(a) || Self::is_store(b) {
            return Err(StorageError::Unsupported);
        }
        self.inner.swap(a, b)
    }
}
