//! Decode errors: one `Copy` enum of faults plus the byte offset where it was found.

use core::fmt;

/// What was wrong with the input. Each variant names one fault, so a test (or a
/// field report) can tell them apart without parsing a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The bytes are not well-formed CBOR, or end in the middle of an item.
    Malformed,
    /// A well-formed item of the wrong CBOR type for its place.
    UnexpectedType,
    /// Bytes remain after the one item a buffer must hold.
    TrailingBytes,
    /// An indefinite-length item: SUIT is encoded with definite lengths only.
    IndefiniteLength,
    /// Nesting deeper than [`crate::MAX_DEPTH`]: refused rather than risk the stack.
    TooDeep,
    /// The same key appears twice in one map.
    DuplicateKey,
    /// A tag other than the one this place allows.
    UnexpectedTag(u64),
    /// An integer too large for the field it fills.
    IntegerOverflow,
    /// An envelope key the spec does not define.
    UnknownEnvelopeElement(i64),
    /// A manifest key the spec does not define.
    UnknownManifestElement(i64),
    /// A SUIT_Common key the spec does not define.
    UnknownCommonElement(i64),
    /// A command code (condition or directive) the spec does not define.
    UnknownCommand(i64),
    /// A parameter code the spec does not define.
    UnknownParameter(i64),
    /// A command the spec forbids in the shared sequence.
    CommandNotAllowedInSharedSequence(i64),
    /// A required element is missing (see [`Element`]).
    Missing(Element),
    /// `manifest-version` is not 1.
    UnsupportedManifestVersion,
    /// The authentication wrapper comes after the manifest (the spec requires it first,
    /// so a streaming processor can authenticate before it parses).
    AuthAfterManifest,
    /// More components than [`crate::MAX_COMPONENTS`].
    TooManyComponents,
    /// More entries in one map or array than this decoder keeps track of.
    TooManyEntries,
    /// A value of the right type but outside what the spec allows
    /// (empty component list, UUID of the wrong length, odd-length command list, ...).
    InvalidValue,
    /// The envelope carries a severable member that the manifest does not record as
    /// severed, so no signature covers it.
    UnauthenticatedMember(i64),
    /// A digest algorithm other than the SUIT ones (SHA-256/384/512, SHAKE128/256).
    UnknownDigestAlgorithm(i64),
}

/// Required elements whose absence is reported by [`DecodeErrorKind::Missing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Element {
    /// Envelope key 2.
    AuthenticationWrapper,
    /// Envelope key 3.
    Manifest,
    /// Manifest key 1.
    ManifestVersion,
    /// Manifest key 2.
    SequenceNumber,
    /// Manifest key 3.
    Common,
    /// The digest at the head of the authentication wrapper.
    AuthDigest,
}

/// A decode failure: what and where (byte offset from the start of the outermost buffer
/// handed to the decoder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The fault.
    pub kind: DecodeErrorKind,
    /// Byte offset into the decoded buffer where the fault was found.
    pub offset: u32,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError {
            kind,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeErrorKind as K;
        match self {
            K::Malformed => f.write_str("malformed or truncated CBOR"),
            K::UnexpectedType => f.write_str("unexpected CBOR type"),
            K::TrailingBytes => f.write_str("trailing bytes after the item"),
            K::IndefiniteLength => f.write_str("indefinite-length item"),
            K::TooDeep => f.write_str("nesting too deep"),
            K::DuplicateKey => f.write_str("duplicate map key"),
            K::UnexpectedTag(t) => write!(f, "unexpected CBOR tag {t}"),
            K::IntegerOverflow => f.write_str("integer out of range"),
            K::UnknownEnvelopeElement(k) => write!(f, "unknown envelope element {k}"),
            K::UnknownManifestElement(k) => write!(f, "unknown manifest element {k}"),
            K::UnknownCommonElement(k) => write!(f, "unknown common element {k}"),
            K::UnknownCommand(k) => write!(f, "unknown command {k}"),
            K::UnknownParameter(k) => write!(f, "unknown parameter {k}"),
            K::CommandNotAllowedInSharedSequence(k) => {
                write!(f, "command {k} is not allowed in the shared sequence")
            }
            K::Missing(e) => write!(f, "missing {e:?}"),
            K::UnsupportedManifestVersion => f.write_str("manifest version is not 1"),
            K::AuthAfterManifest => f.write_str("authentication wrapper after the manifest"),
            K::TooManyComponents => f.write_str("too many components"),
            K::TooManyEntries => f.write_str("too many entries"),
            K::InvalidValue => f.write_str("invalid value"),
            K::UnauthenticatedMember(k) => {
                write!(f, "envelope member {k} is not covered by the manifest")
            }
            K::UnknownDigestAlgorithm(a) => write!(f, "unknown digest algorithm {a}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl core::error::Error for DecodeError {}
