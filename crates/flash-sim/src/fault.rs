//! Faults and the deterministic noise they leave.

/// What happens at a scheduled operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The power goes before the operation starts: nothing changes.
    Cut,
    /// The power goes during the operation. A write leaves a prefix of whole units done and
    /// the unit in progress with undefined programmed bits; an erase leaves the sectors
    /// before the cut erased and the sector in progress with arbitrary bytes (see
    /// [`crate::SimFlash`]). `seed` picks where and what, reproducibly.
    Tear {
        /// Seed of the tear's position and noise.
        seed: u64,
    },
}

/// xorshift64*: reproducible noise without a dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[7]
    }
}
