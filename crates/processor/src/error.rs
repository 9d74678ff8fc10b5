//! Processor errors: one `Copy` enum, grouped by stage, each variant one fault.

use core::fmt;

use suitcase_cose::CoseError;
use suitcase_suit::{Condition, DecodeError, SeverableKind};

use crate::platform::{FetchError, InvokeError, RollbackError, StorageError};
use crate::report::SequenceKind;

/// Why an envelope was not authenticated. Signature failures are one opaque variant:
/// which check failed is nobody's business but the verifier's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The wrapper holds no COSE block (an "unsigned" envelope).
    NoSignature,
    /// The manifest bytes do not hash to the wrapper's digest.
    ManifestDigestMismatch,
    /// The wrapper's digest uses an algorithm this processor does not implement.
    UnsupportedDigest,
    /// A COSE block could not be decoded or uses what this build does not support.
    Cose(CoseError),
    /// No trust anchor verified enough blocks to satisfy the signing policy.
    PolicyNotSatisfied,
    /// A carried severed member does not match the digest the manifest records.
    SeveredDigestMismatch(SeverableKind),
    /// The key store allows no manifest in this role (for example a dependency on a
    /// device whose store names no dependency signers).
    RoleNotAllowed,
}

/// Why a dependency manifest (trust domains) was refused. Every one aborts the procedure:
/// the draft leaves no soft outcome for dependency-integrity or process-dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DependencyError {
    /// The component index is not in the manifest's dependency map.
    NotADependency,
    /// process-dependency on a component that has not passed dependency-integrity since
    /// it was last written.
    NotVerified,
    /// The dependency has no dependency-prefix, so its component has no identifier.
    NoPrefix,
    /// The dependency's manifest-component-id differs from its prefix.
    IdMismatch,
    /// The dependency's manifest digest differs from the image-digest parameter.
    DigestMismatch,
    /// The dependency envelope is not well-formed.
    Decode(DecodeError),
    /// The dependency envelope failed authentication under the dependency policy.
    Auth(AuthError),
    /// The envelope is larger than what is left of the platform's dependency buffer.
    TooLarge,
    /// Dependencies nested deeper than [`crate::MAX_DEPENDENCY_DEPTH`].
    TooDeep,
    /// The dependency is already being processed further up the chain.
    Cycle,
    /// process-dependency in the shared sequence (the draft forbids it).
    InCommonSequence,
    /// More distinct components across the chain than the parameter table holds.
    TooManyComponents,
    /// The platform lends no dependency support (no key store and buffer for them).
    Unsupported,
}

impl fmt::Display for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DependencyError::NotADependency => f.write_str("not a dependency"),
            DependencyError::NotVerified => {
                f.write_str("not verified by dependency-integrity since it was written")
            }
            DependencyError::NoPrefix => f.write_str("the dependency has no prefix"),
            DependencyError::IdMismatch => {
                f.write_str("manifest-component-id differs from the dependency prefix")
            }
            DependencyError::DigestMismatch => {
                f.write_str("manifest digest differs from image-digest")
            }
            DependencyError::Decode(e) => write!(f, "decode: {e}"),
            DependencyError::Auth(e) => write!(f, "authentication: {e}"),
            DependencyError::TooLarge => f.write_str("larger than the dependency buffer left"),
            DependencyError::TooDeep => f.write_str("dependencies nested too deep"),
            DependencyError::Cycle => f.write_str("dependency cycle"),
            DependencyError::InCommonSequence => {
                f.write_str("process-dependency in the shared sequence")
            }
            DependencyError::TooManyComponents => {
                f.write_str("too many components across the dependency chain")
            }
            DependencyError::Unsupported => f.write_str("this device processes no dependencies"),
        }
    }
}

/// Everything that stops processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The envelope or manifest is not well-formed SUIT.
    Decode(DecodeError),
    /// Authentication failed; nothing was executed.
    Auth(AuthError),
    /// The manifest's sequence number is not above the installed one.
    Rollback {
        /// Installed sequence number.
        installed: u64,
        /// The manifest's.
        offered: u64,
    },
    /// A sequence the procedure needs is severed and the envelope does not carry it.
    Severed(SeverableKind),
    /// A condition failed outside any soft-failure scope.
    ConditionFailed {
        /// Which condition.
        condition: Condition,
        /// The component it was checked on.
        component: u32,
        /// Where.
        sequence: SequenceKind,
    },
    /// Every branch of a try-each failed and it has no empty fallback.
    TryEachExhausted {
        /// Where.
        sequence: SequenceKind,
    },
    /// A command this build does not implement (an extension left out, or custom).
    UnsupportedCommand(i64),
    /// A parameter this build cannot act on (for example encryption-info without the
    /// encryption feature).
    UnsupportedParameter(i64),
    /// A command needs a parameter that is not set for its component.
    MissingParameter {
        /// Parameter code.
        parameter: i64,
        /// Component index.
        component: u32,
    },
    /// A command needs a selected component and none is (several components, no
    /// set-component-index).
    NoComponentSelected,
    /// A component index beyond the manifest's component list.
    ComponentIndexOutOfRange(u32),
    /// soft-failure set outside a try-each branch or run-sequence.
    SoftFailureNotAllowed,
    /// A payload longer than the image-size parameter, or a copy/source mismatch.
    ImageSizeExceeded,
    /// copy or swap with the component as its own source.
    SourceIsDestination,
    /// A digest algorithm this build does not implement.
    UnsupportedDigest,
    /// Component storage failed.
    Storage(StorageError),
    /// The transport failed.
    Fetch(FetchError),
    /// The rollback store failed.
    RollbackStore(RollbackError),
    /// Invoke failed.
    Invoke(InvokeError),
    /// The encryption-info parameter is not a SUIT_Encryption_Info this build can use
    /// (malformed, or an algorithm it does not implement).
    EncryptionInfo(CoseError),
    /// No recipient of the encryption info names a key the platform holds.
    NoDecryptionKey,
    /// The platform cannot answer an update-management condition or wait (its
    /// [`crate::platform::UpdatePolicy`] returned `None`), or the parameter it needs is
    /// not a value this build can compare (a version of more than
    /// [`crate::platform::MAX_VERSION_PARTS`] integers). An abort, not a condition
    /// failure: "cannot tell" never selects a try-each branch.
    CannotAnswer {
        /// The command code (26 minimum-battery, 27 update-authorized, 28 version,
        /// 29 wait).
        command: i64,
        /// The component it was evaluated on.
        component: u32,
    },
    /// The platform answered a wait directive (29): the events did not occur.
    WaitFailed {
        /// The component.
        component: u32,
    },
    /// Decryption failed: a key unwrap, or the payload's authentication tag. One opaque
    /// variant, as for signatures. The component is left unfinished and untrusted.
    DecryptionFailed,
    /// A dependency manifest was refused (trust domains).
    Dependency {
        /// The dependent's component index that holds the dependency.
        component: u32,
        /// Why.
        kind: DependencyError,
    },
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}
impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        Error::Auth(e)
    }
}
impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}
impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        Error::Fetch(e)
    }
}
impl From<RollbackError> for Error {
    fn from(e: RollbackError) -> Self {
        Error::RollbackStore(e)
    }
}
impl From<InvokeError> for Error {
    fn from(e: InvokeError) -> Self {
        Error::Invoke(e)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NoSignature => f.write_str("envelope is not signed"),
            AuthError::ManifestDigestMismatch => f.write_str("manifest digest mismatch"),
            AuthError::UnsupportedDigest => f.write_str("unsupported digest algorithm"),
            AuthError::Cose(e) => write!(f, "COSE: {e}"),
            AuthError::PolicyNotSatisfied => {
                f.write_str("signatures do not satisfy the signing policy")
            }
            AuthError::SeveredDigestMismatch(k) => {
                write!(f, "severed member {} does not match its digest", k.key())
            }
            AuthError::RoleNotAllowed => f.write_str("no signer is trusted for this role"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => write!(f, "decode: {e}"),
            Error::Auth(e) => write!(f, "authentication: {e}"),
            Error::Rollback { installed, offered } => write!(
                f,
                "rollback: sequence number {offered} is not above installed {installed}"
            ),
            Error::Severed(k) => write!(f, "member {} is severed and not supplied", k.key()),
            Error::ConditionFailed {
                condition,
                component,
                sequence,
            } => write!(
                f,
                "condition {} failed on component {component} in {}",
                condition.name(),
                sequence.name()
            ),
            Error::TryEachExhausted { sequence } => {
                write!(f, "no try-each branch succeeded in {}", sequence.name())
            }
            Error::UnsupportedCommand(c) => write!(f, "unsupported command {c}"),
            Error::UnsupportedParameter(p) => write!(f, "unsupported parameter {p}"),
            Error::MissingParameter {
                parameter,
                component,
            } => write!(f, "parameter {parameter} not set for component {component}"),
            Error::NoComponentSelected => f.write_str("no component selected"),
            Error::ComponentIndexOutOfRange(i) => write!(f, "component index {i} out of range"),
            Error::SoftFailureNotAllowed => {
                f.write_str("soft-failure set outside try-each or run-sequence")
            }
            Error::ImageSizeExceeded => f.write_str("payload larger than image-size"),
            Error::SourceIsDestination => f.write_str("component is its own source"),
            Error::UnsupportedDigest => f.write_str("unsupported digest algorithm"),
            Error::Storage(e) => write!(f, "storage: {e:?}"),
            Error::Fetch(e) => write!(f, "fetch: {e:?}"),
            Error::RollbackStore(e) => write!(f, "rollback store: {e:?}"),
            Error::Invoke(e) => write!(f, "invoke: {e:?}"),
            Error::EncryptionInfo(e) => write!(f, "encryption info: {e}"),
            Error::NoDecryptionKey => f.write_str("no decryption key for any recipient"),
            Error::DecryptionFailed => f.write_str("decryption failed"),
            Error::WaitFailed { component } => {
                write!(
                    f,
                    "wait: the events did not occur for component {component}"
                )
            }
            Error::Dependency { component, kind } => {
                write!(f, "dependency at component {component}: {kind}")
            }
            Error::CannotAnswer { command, component } => write!(
                f,
                "the platform cannot answer command {command} on component {component}"
            ),
        }
    }
}

impl core::error::Error for Error {}
