//! Streaming encoder for the COSE `Sig_structure` / `MAC_structure` (RFC 9052 §4.4, §6.3).
//!
//! Encoding the CBOR heads by hand lets ECDSA and HMAC feed the structure straight into
//! the hash: the payload is never copied, and no buffer size limits them.

use crate::{CoseError, CoseKind};

/// Size of the stack buffer used when a primitive needs the whole `Sig_structure`
/// (Ed25519, HSS-LMS).
///
/// A SUIT payload is an encoded `SUIT_Digest` (36 bytes for SHA-256, 69 for SHA-512);
/// with the protected header `{1: alg}` the structure is 55 bytes for SHA-256. 256
/// leaves room for a SHA-512 digest plus a protected header of about 170 bytes.
pub const MAX_SIG_STRUCTURE_LEN: usize = 256;

/// CBOR major type 2 (byte string).
const MAJOR_BYTES: u8 = 2;
/// CBOR major type 3 (text string).
const MAJOR_TEXT: u8 = 3;
/// `array(4)`: every ToBeSigned / ToBeMaced structure here has four members.
const ARRAY_4: u8 = 0x84;
/// `h''`: SUIT uses no external AAD.
const EMPTY_BSTR: u8 = 0x40;

/// The context string that separates signatures from MACs (RFC 9052 §4.4, §6.3).
fn context(kind: CoseKind) -> &'static [u8] {
    match kind {
        CoseKind::Sign1 => b"Signature1",
        CoseKind::Mac0 => b"MAC0",
    }
}

/// Length of the shortest CBOR head for argument `len` (RFC 8949 §3, preferred encoding).
const fn head_len(len: u64) -> usize {
    if len < 24 {
        1
    } else if len <= 0xff {
        2
    } else if len <= 0xffff {
        3
    } else if len <= 0xffff_ffff {
        5
    } else {
        9
    }
}

/// Feed the shortest CBOR head for `major` / `arg` into `sink`.
///
/// Shared with the host encoder so signer and verifier agree byte for byte.
pub(crate) fn write_head(major: u8, arg: u64, sink: &mut impl FnMut(&[u8])) {
    let mt = major << 5;
    // Truncating casts are guarded by the range checks in each arm.
    #[allow(clippy::cast_possible_truncation)]
    match head_len(arg) {
        1 => sink(&[mt | arg as u8]),
        2 => sink(&[mt | 24, arg as u8]),
        3 => {
            let b = (arg as u16).to_be_bytes();
            sink(&[mt | 25, b[0], b[1]]);
        }
        5 => {
            let b = (arg as u32).to_be_bytes();
            sink(&[mt | 26, b[0], b[1], b[2], b[3]]);
        }
        _ => {
            let b = arg.to_be_bytes();
            sink(&[mt | 27, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        }
    }
}

/// Feed a definite-length byte or text string (head + content) into `sink`.
fn write_string(major: u8, bytes: &[u8], sink: &mut impl FnMut(&[u8])) {
    write_head(major, bytes.len() as u64, sink);
    sink(bytes);
}

/// Feed the CBOR encoding of the `Sig_structure` (for [`CoseKind::Sign1`]) or the
/// `MAC_structure` (for [`CoseKind::Mac0`]) into `sink`, piece by piece:
/// `[context, protected, h'', payload]`.
///
/// `protected` is the *content* of the protected-header bstr exactly as it was
/// received (RFC 9052 requires the original bytes, not a re-encoding); `payload` is the
/// payload bytes (for SUIT: the bytes inside `auth[0]`).
pub fn write_to_be_signed(
    kind: CoseKind,
    protected: &[u8],
    payload: &[u8],
    sink: &mut impl FnMut(&[u8]),
) {
    sink(&[ARRAY_4]);
    write_string(MAJOR_TEXT, context(kind), sink);
    write_string(MAJOR_BYTES, protected, sink);
    sink(&[EMPTY_BSTR]);
    write_string(MAJOR_BYTES, payload, sink);
}

/// Exact encoded length of the structure [`write_to_be_signed`] produces, saturating at
/// `usize::MAX` (which no buffer can hold, so callers still see "too large").
pub fn to_be_signed_len(kind: CoseKind, protected_len: usize, payload_len: usize) -> usize {
    let ctx = context(kind).len();
    let parts = [
        1,
        head_len(ctx as u64),
        ctx,
        head_len(protected_len as u64),
        protected_len,
        1,
        head_len(payload_len as u64),
        payload_len,
    ];
    parts.iter().fold(0usize, |acc, n| acc.saturating_add(*n))
}

/// Encode the `Sig_structure` / `MAC_structure` into `buf` and return the used prefix.
///
/// For primitives that need the whole message at once (Ed25519, HSS-LMS). The length is
/// checked first, so nothing is written when it would not fit.
///
/// # Errors
/// [`CoseError::SigStructureTooLarge`] if the encoding is longer than `buf`.
pub fn encode_to_be_signed<'b>(
    kind: CoseKind,
    protected: &[u8],
    payload: &[u8],
    buf: &'b mut [u8],
) -> Result<&'b [u8], CoseError> {
    let total = to_be_signed_len(kind, protected.len(), payload.len());
    if total > buf.len() {
        return Err(CoseError::SigStructureTooLarge);
    }
    let mut pos = 0usize;
    let mut overflow = false;
    write_to_be_signed(kind, protected, payload, &mut |chunk: &[u8]| {
        let end = pos.saturating_add(chunk.len());
        match buf.get_mut(pos..end) {
            Some(dst) => {
                dst.copy_from_slice(chunk);
                pos = end;
            }
            // Unreachable after the length check; kept so a bug cannot panic.
            None => overflow = true,
        }
    });
    if overflow || pos != total {
        return Err(CoseError::SigStructureTooLarge);
    }
    buf.get(..pos).ok_or(CoseError::SigStructureTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn collect(kind: CoseKind, protected: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_to_be_signed(kind, protected, payload, &mut |b: &[u8]| {
            out.extend_from_slice(b)
        });
        out
    }

    #[test]
    fn sig_structure_bytes() {
        let out = collect(CoseKind::Sign1, &[0xa1, 0x01, 0x26], &[0x01, 0x02]);
        let mut expected = std::vec![0x84, 0x6a];
        expected.extend_from_slice(b"Signature1");
        expected.extend_from_slice(&[0x43, 0xa1, 0x01, 0x26, 0x40, 0x42, 0x01, 0x02]);
        assert_eq!(out, expected);
        assert_eq!(to_be_signed_len(CoseKind::Sign1, 3, 2), expected.len());
    }

    #[test]
    fn mac_structure_bytes() {
        let out = collect(CoseKind::Mac0, &[0xa1, 0x01, 0x05], &[]);
        let mut expected = std::vec![0x84, 0x64];
        expected.extend_from_slice(b"MAC0");
        expected.extend_from_slice(&[0x43, 0xa1, 0x01, 0x05, 0x40, 0x40]);
        assert_eq!(out, expected);
    }

    #[test]
    fn heads_use_shortest_form() {
        for (len, head) in [
            (23usize, std::vec![0x57]),
            (24, std::vec![0x58, 24]),
            (255, std::vec![0x58, 0xff]),
            (256, std::vec![0x59, 0x01, 0x00]),
            (65536, std::vec![0x5a, 0x00, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            write_head(MAJOR_BYTES, len as u64, &mut |b: &[u8]| {
                out.extend_from_slice(b)
            });
            assert_eq!(out, head, "len {len}");
        }
        let mut out = Vec::new();
        write_head(0, u64::MAX, &mut |b: &[u8]| out.extend_from_slice(b));
        assert_eq!(out, [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn streaming_and_buffered_agree_and_large_is_refused() {
        let payload = [0x5a; 300];
        let streamed = collect(CoseKind::Sign1, &[0xa1, 0x01, 0x27], &payload[..100]);
        let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
        let buffered = encode_to_be_signed(
            CoseKind::Sign1,
            &[0xa1, 0x01, 0x27],
            &payload[..100],
            &mut buf,
        );
        assert_eq!(buffered, Ok(streamed.as_slice()));
        let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
        assert_eq!(
            encode_to_be_signed(CoseKind::Sign1, &[0xa1, 0x01, 0x27], &payload, &mut buf),
            Err(CoseError::SigStructureTooLarge)
        );
    }
}
