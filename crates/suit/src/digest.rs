//! SUIT_Digest: `[alg-id, bstr digest, *ext]`.

use crate::cbor::{Reader, Result};
use crate::error::{DecodeError, DecodeErrorKind as K};

/// Digest algorithms SUIT names (COSE algorithm ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// -16, mandatory to implement.
    Sha256,
    /// -18.
    Shake128,
    /// -43.
    Sha384,
    /// -44.
    Sha512,
    /// -45.
    Shake256,
}

impl DigestAlgorithm {
    /// From the COSE algorithm id.
    pub fn from_cose(id: i64) -> Option<Self> {
        Some(match id {
            -16 => Self::Sha256,
            -18 => Self::Shake128,
            -43 => Self::Sha384,
            -44 => Self::Sha512,
            -45 => Self::Shake256,
            _ => return None,
        })
    }

    /// The COSE algorithm id.
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Sha256 => -16,
            Self::Shake128 => -18,
            Self::Sha384 => -43,
            Self::Sha512 => -44,
            Self::Shake256 => -45,
        }
    }

    /// The output length in bytes (SHAKE at the lengths the MTI draft names).
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Shake128 => 32,
            Self::Sha384 => 48,
            Self::Sha512 | Self::Shake256 => 64,
        }
    }
}

/// A decoded SUIT_Digest, borrowing the digest bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest<'a> {
    /// The algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest value; its length matches the algorithm.
    pub bytes: &'a [u8],
}

impl<'a> Digest<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, depth: usize) -> Result<Self> {
        let n = r.array()?;
        if n < 2 {
            return r.err(K::InvalidValue);
        }
        let at = r.offset();
        let id = r.i64()?;
        let algorithm = DigestAlgorithm::from_cose(id)
            .ok_or(DecodeError::new(K::UnknownDigestAlgorithm(id), at))?;
        let at = r.offset();
        let bytes = r.bytes()?;
        if bytes.len() != algorithm.output_len() {
            return Err(DecodeError::new(K::InvalidValue, at));
        }
        // Extensions (`*ext`) have no defined meaning yet: accepted, bounded, ignored.
        for _ in 2..n {
            r.skip(depth + 1)?;
        }
        Ok(Digest { algorithm, bytes })
    }

    /// Decodes a digest that fills `bytes` exactly (the `bstr .cbor SUIT_Digest` form).
    pub fn decode(bytes: &'a [u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0);
        let d = Self::read(&mut r, 0)?;
        r.finish()?;
        Ok(d)
    }
}
