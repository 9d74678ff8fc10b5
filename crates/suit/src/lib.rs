//! Zero-copy, `no_std`, no-alloc decoder for the IETF SUIT envelope and manifest
//! (draft-ietf-suit-manifest-34…37 wire codes, plus the extension codes of the trust
//! domains, update management and firmware encryption drafts).
//!
//! Decoding is strict and complete: [`Envelope::decode`] walks every byte once, checks
//! types, lengths, nesting and duplicate keys, and fails with a typed [`DecodeError`]
//! carrying the byte offset. The model types then borrow from the input and re-read it
//! on demand, so no decoded structure needs storage beyond a few slices.
//!
//! Decoding authenticates nothing: `suitcase-processor` checks digests and signatures
//! before any command runs. This crate holds no cryptography at all.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod cbor;
pub mod command;
pub mod component;
pub mod digest;
pub mod envelope;
mod error;
pub mod manifest;
pub mod parameter;

pub use cbor::Wrapped;
pub use command::{Command, CommandSequence, Condition, Directive, IndexArg, ReportingPolicy};
pub use component::{ComponentId, Components};
pub use digest::{Digest, DigestAlgorithm};
pub use envelope::{AuthWrapper, Envelope, Resolved, SequenceSource};
pub use error::{DecodeError, DecodeErrorKind, Element};
pub use manifest::{Common, Dependencies, Dependency, Manifest, Member, SeverableKind};
pub use parameter::{Parameter, Parameters, VendorId};

/// Deepest CBOR nesting accepted anywhere (generic items: text maps, COSE headers,
/// extension values). A fixed bound keeps the recursive skip's stack bounded.
pub const MAX_DEPTH: usize = 16;

/// Most components one manifest may declare. The processor keeps a parameter set per
/// component, so this bounds its RAM.
pub const MAX_COMPONENTS: usize = 8;

/// Most COSE blocks in one authentication wrapper.
pub const MAX_AUTH_BLOCKS: usize = 8;
