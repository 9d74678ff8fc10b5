//! Static buffers that a test borrows for its duration.
//!
//! Storage components and flash images are too large to be honest stack figures (the
//! stack measurement would count them), and there is no allocator. A test takes a
//! [`StaticBuf`] with [`StaticBuf::take`]; the guard gives it back when dropped, so the
//! next test can take it again. Taking it twice at once fails instead of aliasing.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// `N` bytes in `.bss`, lent out one borrower at a time.
pub struct StaticBuf<const N: usize> {
    taken: AtomicBool,
    bytes: UnsafeCell<[u8; N]>,
}

// SAFETY: the bytes are only reached through a `Lent`, and `taken` lets at most one
// exist at a time (an atomic swap, so even an interrupt could not get a second one).
unsafe impl<const N: usize> Sync for StaticBuf<N> {}

impl<const N: usize> StaticBuf<N> {
    /// A zeroed buffer, for a `static`.
    pub const fn new() -> Self {
        StaticBuf {
            taken: AtomicBool::new(false),
            bytes: UnsafeCell::new([0; N]),
        }
    }

    /// Borrows the buffer, filled with `fill`, until the guard is dropped.
    pub fn take(&'static self, fill: u8) -> Result<Lent<N>, &'static str> {
        if self.taken.swap(true, Ordering::Acquire) {
            return Err("static buffer already in use");
        }
        let mut lent = Lent { buf: self };
        lent.fill(fill);
        Ok(lent)
    }
}

/// Exclusive access to a [`StaticBuf`]; returns it on drop.
pub struct Lent<const N: usize> {
    buf: &'static StaticBuf<N>,
}

impl<const N: usize> Deref for Lent<N> {
    type Target = [u8; N];
    fn deref(&self) -> &[u8; N] {
        // SAFETY: this guard is the only borrower while it lives (`take`).
        unsafe { &*self.buf.bytes.get() }
    }
}

impl<const N: usize> DerefMut for Lent<N> {
    fn deref_mut(&mut self) -> &mut [u8; N] {
        // SAFETY: as above, and `&mut self` makes this the only reference through it.
        unsafe { &mut *self.buf.bytes.get() }
    }
}

impl<const N: usize> Drop for Lent<N> {
    fn drop(&mut self) {
        self.buf.taken.store(false, Ordering::Release);
    }
}
