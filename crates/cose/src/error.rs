//! The single error type of this crate.

use core::fmt;

/// Why a COSE message was rejected.
///
/// Decode errors carry the byte offset (into the slice given to
/// [`CoseMessage::decode`](crate::CoseMessage::decode)) of the offending item, so a host
/// tool can point at it. Cryptographic failure is deliberately a single variant,
/// [`CoseError::SignatureInvalid`]: a verifier must not tell an attacker which check failed;
/// for decryption it is [`CoseError::DecryptionFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoseError {
    /// The input ended in the middle of a CBOR item.
    Truncated {
        /// Offset of the item that could not be completed.
        offset: usize,
    },
    /// Ill-formed CBOR, or a CBOR item of the wrong type for its position.
    Malformed {
        /// Offset of the offending item.
        offset: usize,
    },
    /// An indefinite-length item; COSE in SUIT must use definite lengths.
    IndefiniteLength {
        /// Offset of the offending item.
        offset: usize,
    },
    /// An unknown header value nests deeper than [`MAX_SKIP_DEPTH`](crate::MAX_SKIP_DEPTH).
    NestingTooDeep {
        /// Offset of the container that exceeded the limit.
        offset: usize,
    },
    /// Bytes follow the message (or follow the map inside the protected header bstr).
    TrailingBytes {
        /// Offset of the first unexpected byte.
        offset: usize,
    },
    /// The message is not a CBOR tag; untagged COSE is ambiguous and is refused.
    Untagged,
    /// The message carries a tag that is not a COSE message tag.
    UnknownTag(u64),
    /// COSE_Sign (98) or COSE_Mac (97): legal in SUIT but not supported here.
    UnsupportedMessage(u64),
    /// The COSE array does not have exactly 4 elements.
    WrongArrayLength {
        /// Offset of the array head.
        offset: usize,
    },
    /// A header label is not an int or tstr, or a known header has a value of the wrong type.
    InvalidHeader {
        /// Offset of the offending label or value.
        offset: usize,
    },
    /// The same label appears twice, within one header map or across both.
    DuplicateHeader {
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// More header labels than [`MAX_HEADER_LABELS`](crate::MAX_HEADER_LABELS) in total.
    TooManyHeaders {
        /// Offset of the first label over the limit.
        offset: usize,
    },
    /// A `crit` header (label 2) is present; we understand no optional header, so we must refuse.
    CriticalHeader {
        /// Offset of the `crit` label.
        offset: usize,
    },
    /// No `alg` (label 1) in the protected header.
    MissingAlgorithm,
    /// `alg` (label 1) appears in the unprotected header, where it is not integrity-protected.
    UnprotectedAlgorithm {
        /// Offset of the label in the unprotected header.
        offset: usize,
    },
    /// The `alg` ID is not one this crate implements.
    UnsupportedAlgorithm(i64),
    /// The key cannot check this message: wrong algorithm family or wrong COSE structure.
    AlgorithmMismatch,
    /// The message has an attached payload and a non-empty detached payload was also given.
    PayloadConflict,
    /// The key itself is unusable (e.g. an empty HMAC key).
    InvalidKey,
    /// The Sig_structure does not fit in [`MAX_SIG_STRUCTURE_LEN`](crate::MAX_SIG_STRUCTURE_LEN) bytes.
    SigStructureTooLarge,
    /// The signature or MAC does not verify (for any reason).
    SignatureInvalid,
    /// A COSE_Encrypt carries its ciphertext; SUIT_Encryption_Info must detach it (`nil`).
    AttachedCiphertext,
    /// A COSE_Encrypt with an empty recipients array: no way to obtain the content key.
    NoRecipients,
    /// No `IV` (label 5) for the content algorithm.
    MissingIv,
    /// A protected header that must be an empty bstr is not (the COSE_Encrypt of
    /// AES-CTR content, RFC 9459; an AES key-wrap recipient, RFC 9053 §6.2.1).
    NonEmptyProtected {
        /// Offset of the protected bstr.
        offset: usize,
    },
    /// An ECDH-ES recipient without its ephemeral key (label -1).
    MissingEphemeralKey,
    /// A header this crate understands but does not implement and must not ignore
    /// (Partial IV, the ECDH party identities that would change the KDF context).
    UnsupportedHeader {
        /// Offset of the label.
        offset: usize,
    },
    /// Decryption failed: a key unwrap integrity check, an ECDH ephemeral key, or the
    /// AEAD tag (one variant for all, as for signatures).
    DecryptionFailed,
    /// The output buffer is too small for the message being encoded (signing).
    BufferTooSmall,
}

impl CoseError {
    /// Byte offset into the decoded input, for errors that have one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            Self::Truncated { offset }
            | Self::Malformed { offset }
            | Self::IndefiniteLength { offset }
            | Self::NestingTooDeep { offset }
            | Self::TrailingBytes { offset }
            | Self::WrongArrayLength { offset }
            | Self::InvalidHeader { offset }
            | Self::DuplicateHeader { offset }
            | Self::TooManyHeaders { offset }
            | Self::CriticalHeader { offset }
            | Self::UnprotectedAlgorithm { offset }
            | Self::NonEmptyProtected { offset }
            | Self::UnsupportedHeader { offset } => Some(offset),
            _ => None,
        }
    }
}

impl fmt::Display for CoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { offset } => write!(f, "input truncated at byte {offset}"),
            Self::Malformed { offset } => write!(f, "malformed CBOR at byte {offset}"),
            Self::IndefiniteLength { offset } => {
                write!(f, "indefinite-length item at byte {offset}")
            }
            Self::NestingTooDeep { offset } => {
                write!(f, "header value nested too deep at byte {offset}")
            }
            Self::TrailingBytes { offset } => write!(f, "trailing bytes at byte {offset}"),
            Self::Untagged => f.write_str("COSE message is not tagged"),
            Self::UnknownTag(tag) => write!(f, "unknown CBOR tag {tag}"),
            Self::UnsupportedMessage(tag) => {
                write!(f, "COSE_Sign/COSE_Mac (tag {tag}) not supported")
            }
            Self::WrongArrayLength { offset } => {
                write!(f, "COSE array not of 4 elements at byte {offset}")
            }
            Self::InvalidHeader { offset } => write!(f, "invalid header at byte {offset}"),
            Self::DuplicateHeader { offset } => {
                write!(f, "duplicate header label at byte {offset}")
            }
            Self::TooManyHeaders { offset } => write!(f, "too many headers at byte {offset}"),
            Self::CriticalHeader { offset } => {
                write!(f, "unsupported crit header at byte {offset}")
            }
            Self::MissingAlgorithm => f.write_str("no alg in protected header"),
            Self::UnprotectedAlgorithm { offset } => {
                write!(f, "alg in unprotected header at byte {offset}")
            }
            Self::UnsupportedAlgorithm(alg) => write!(f, "unsupported COSE algorithm {alg}"),
            Self::AlgorithmMismatch => f.write_str("key does not match message algorithm"),
            Self::PayloadConflict => f.write_str("both attached and detached payload"),
            Self::InvalidKey => f.write_str("unusable key"),
            Self::SigStructureTooLarge => f.write_str("Sig_structure too large"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
            Self::SignatureInvalid => f.write_str("signature invalid"),
            Self::AttachedCiphertext => f.write_str("COSE_Encrypt ciphertext not detached"),
            Self::NoRecipients => f.write_str("COSE_Encrypt has no recipient"),
            Self::MissingIv => f.write_str("no IV for the content algorithm"),
            Self::NonEmptyProtected { offset } => {
                write!(f, "protected header must be empty at byte {offset}")
            }
            Self::MissingEphemeralKey => f.write_str("ECDH-ES recipient without ephemeral key"),
            Self::UnsupportedHeader { offset } => {
                write!(f, "unsupported header at byte {offset}")
            }
            Self::DecryptionFailed => f.write_str("decryption failed"),
        }
    }
}

impl core::error::Error for CoseError {}

#[cfg(test)]
mod tests {
    use super::CoseError;

    #[test]
    fn display_is_one_short_line_and_offset_is_exposed() {
        let all = [
            CoseError::Truncated { offset: 1 },
            CoseError::Malformed { offset: 2 },
            CoseError::IndefiniteLength { offset: 3 },
            CoseError::NestingTooDeep { offset: 4 },
            CoseError::TrailingBytes { offset: 5 },
            CoseError::Untagged,
            CoseError::UnknownTag(16),
            CoseError::UnsupportedMessage(98),
            CoseError::WrongArrayLength { offset: 6 },
            CoseError::InvalidHeader { offset: 7 },
            CoseError::DuplicateHeader { offset: 8 },
            CoseError::TooManyHeaders { offset: 9 },
            CoseError::CriticalHeader { offset: 10 },
            CoseError::MissingAlgorithm,
            CoseError::UnprotectedAlgorithm { offset: 11 },
            CoseError::UnsupportedAlgorithm(-35),
            CoseError::AlgorithmMismatch,
            CoseError::PayloadConflict,
            CoseError::InvalidKey,
            CoseError::SigStructureTooLarge,
            CoseError::SignatureInvalid,
            CoseError::AttachedCiphertext,
            CoseError::NoRecipients,
            CoseError::MissingIv,
            CoseError::NonEmptyProtected { offset: 12 },
            CoseError::MissingEphemeralKey,
            CoseError::UnsupportedHeader { offset: 13 },
            CoseError::DecryptionFailed,
            CoseError::BufferTooSmall,
        ];
        for e in all {
            let s = std::format!("{e}");
            assert!(!s.is_empty() && s.len() < 60 && !s.contains('\n'), "{s}");
            if let Some(offset) = e.offset() {
                assert!(s.ends_with(&std::format!("byte {offset}")), "{s}");
            }
        }
        assert_eq!(CoseError::SignatureInvalid.offset(), None);
        assert_eq!(
            std::format!("{}", CoseError::SignatureInvalid),
            "signature invalid"
        );
    }
}
