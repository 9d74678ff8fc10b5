//! Host-side helpers for tests, benchmarks and the demo (see README.md).
#![warn(missing_docs)]

pub mod build;
pub mod device;
pub mod encrypt;
pub mod lean;
pub mod resign;
pub mod trust;
pub mod vectors;

/// A deterministic pseudo-random image (xorshift64): the same bytes on every run, so a
/// failure reproduces.
pub fn image(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}
