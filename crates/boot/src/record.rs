//! The write-once records of the journal and the counter, and the check that tells a
//! whole record from a torn, erased or stale one.
//!
//! Every record is written in one `write` call and ends with a 31-bit check over its
//! bytes *and where it sits* (bank, generation, frame), so a record torn anywhere, a
//! remnant of an interrupted erase, or a valid record copied elsewhere all read as "not a
//! record". The check is never all-ones or all-zeros, so an erased or half-written check
//! field never passes.

/// A checkpoint: the first frame of a journal bank.
pub(crate) const CHECKPOINT_LEN: usize = 32;
/// A journal or counter record (padded to the write size when that is 32).
pub(crate) const RECORD_LEN: usize = 16;

const CHECKPOINT_MAGIC: [u8; 4] = *b"SCj1";

/// Record tags. None is 0x00 or 0xFF: the first byte of a written record is never the
/// erased value, so a frame that reads erased was never (even partly) programmed.
pub(crate) mod tag {
    pub const SWAP_START: u8 = 0xA1;
    pub const PROGRESS: u8 = 0xA2;
    pub const ATTEMPT: u8 = 0xA3;
    pub const CONFIRM: u8 = 0xA4;
    pub const REVERT: u8 = 0xA5;
    pub const REJECT: u8 = 0xA6;
    pub const COUNTER: u8 = 0xC1;
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: a few hundred bytes per boot, no table.
pub(crate) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }
    !crc
}

/// The stored check: bit 0 set and bit 31 clear, so never `0x0000_0000` nor `0xFFFF_FFFF`.
pub(crate) fn check(salt: &[u8], data: &[u8]) -> u32 {
    (crc32(&[salt, data]) | 1) & 0x7FFF_FFFF
}

/// Reads a little-endian field of `N` bytes at `at` (zeros if out of range: callers pass
/// fixed-size buffers).
pub(crate) fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Writes `src` at `at` in `b` (ignored if out of range: callers pass fixed-size buffers).
pub(crate) fn put(b: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + src.len()) {
        dst.copy_from_slice(src);
    }
}

/// The raw fields of a journal record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Raw {
    pub tag: u8,
    pub a8: u8,
    pub a16: u16,
    pub a64: u64,
}

/// Record layout: tag (1), a8 (1), a16 (LE 2), a64 (LE 8), check (LE 4).
pub(crate) fn encode_record(r: Raw, salt: &[u8]) -> [u8; RECORD_LEN] {
    let mut b = [0u8; RECORD_LEN];
    put(&mut b, 0, &[r.tag, r.a8]);
    put(&mut b, 2, &r.a16.to_le_bytes());
    put(&mut b, 4, &r.a64.to_le_bytes());
    let c = check(salt, b.get(..12).unwrap_or_default());
    put(&mut b, 12, &c.to_le_bytes());
    b
}

/// The record in `b`, if its check holds for this position.
pub(crate) fn decode_record(b: &[u8], salt: &[u8]) -> Option<Raw> {
    let body = b.get(..12)?;
    if u32::from_le_bytes(field(b, 12)) != check(salt, body) {
        return None;
    }
    Some(Raw {
        tag: *b.first()?,
        a8: *b.get(1)?,
        a16: u16::from_le_bytes(field(b, 2)),
        a64: u64::from_le_bytes(field(b, 4)),
    })
}

/// The raw fields of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawCheckpoint {
    pub generation: u32,
    pub phase: u8,
    pub mode: u8,
    pub count: u8,
    pub units: u16,
    pub done: u16,
    pub seq: u64,
}

/// Checkpoint layout: magic (4), generation (LE 4), phase (1), mode (1), attempts or
/// outcome (1), zero (1), units (LE 2), done (LE 2), sequence (LE 8), zero (4), check (LE 4).
pub(crate) fn encode_checkpoint(c: RawCheckpoint, bank: u8) -> [u8; CHECKPOINT_LEN] {
    let mut b = [0u8; CHECKPOINT_LEN];
    put(&mut b, 0, &CHECKPOINT_MAGIC);
    put(&mut b, 4, &c.generation.to_le_bytes());
    put(&mut b, 8, &[c.phase, c.mode, c.count, 0]);
    put(&mut b, 12, &c.units.to_le_bytes());
    put(&mut b, 14, &c.done.to_le_bytes());
    put(&mut b, 16, &c.seq.to_le_bytes());
    let k = check(&[bank], b.get(..28).unwrap_or_default());
    put(&mut b, 28, &k.to_le_bytes());
    b
}

/// The checkpoint in `b`, if magic and check hold for this bank.
pub(crate) fn decode_checkpoint(b: &[u8], bank: u8) -> Option<RawCheckpoint> {
    if field::<4>(b, 0) != CHECKPOINT_MAGIC
        || u32::from_le_bytes(field(b, 28)) != check(&[bank], b.get(..28)?)
    {
        return None;
    }
    Some(RawCheckpoint {
        generation: u32::from_le_bytes(field(b, 4)),
        phase: *b.get(8)?,
        mode: *b.get(9)?,
        count: *b.get(10)?,
        units: u16::from_le_bytes(field(b, 12)),
        done: u16::from_le_bytes(field(b, 14)),
        seq: u64::from_le_bytes(field(b, 16)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    }

    #[test]
    fn a_record_round_trips_only_at_its_own_position() {
        let r = Raw {
            tag: tag::PROGRESS,
            a8: 1,
            a16: 7,
            a64: 99,
        };
        let b = encode_record(r, b"pos1");
        assert_eq!(decode_record(&b, b"pos1"), Some(r));
        assert_eq!(decode_record(&b, b"pos2"), None);
    }

    #[test]
    fn erased_or_torn_records_never_decode() {
        for e in [0x00, 0xFF] {
            assert_eq!(decode_record(&[e; 16], b""), None);
            assert_eq!(decode_checkpoint(&[e; 32], 0), None);
        }
        let r = Raw {
            tag: tag::CONFIRM,
            a8: 0,
            a16: 0,
            a64: 0,
        };
        let b = encode_record(r, b"");
        // Every prefix, the rest erased either way, fails.
        for cut in 0..16 {
            for e in [0x00, 0xFF] {
                let mut t = [e; 16];
                t[..cut].copy_from_slice(&b[..cut]);
                if t != b {
                    assert_eq!(decode_record(&t, b""), None, "cut {cut} erased {e:#x}");
                }
            }
        }
    }

    #[test]
    fn a_checkpoint_round_trips_in_its_bank_only() {
        let c = RawCheckpoint {
            generation: 5,
            phase: 3,
            mode: 1,
            count: 2,
            units: 9,
            done: 4,
            seq: 1 << 40,
        };
        let b = encode_checkpoint(c, 1);
        assert_eq!(decode_checkpoint(&b, 1), Some(c));
        assert_eq!(decode_checkpoint(&b, 0), None);
    }
}
