//! COSE_Sign1 / COSE_Mac0 parsing and verification for SUIT authentication blocks.
//!
//! A SUIT envelope's authentication wrapper holds one or more COSE structures whose
//! (detached) payload is the bstr-wrapped `SUIT_Digest` of the manifest. This crate
//! decodes such a structure strictly ([`CoseMessage::decode`]) and checks it against a
//! trusted key ([`VerifyingKey::verify`]) with RustCrypto primitives.
//!
//! Design constraints (this code runs in a bootloader):
//! - `no_std`, no allocation; decoding borrows from the input.
//! - Never panics on input; every failure is a small `Copy` [`CoseError`].
//! - A bad signature or MAC is reported as one opaque [`CoseError::SignatureInvalid`],
//!   so an attacker learns nothing about which check failed.
//! - ECDSA and HMAC hash the `Sig_structure` / `MAC_structure` in a streaming way
//!   ([`write_to_be_signed`]); only Ed25519 (and HSS-LMS) need the whole message and use a
//!   fixed stack buffer of [`MAX_SIG_STRUCTURE_LEN`] bytes.
//!
//! Features: `p256`, `ed25519` and `hmac` (all three on by default) each bring one
//! algorithm family, its [`VerifyingKey`] variant and its RustCrypto dependency, so a
//! bootloader links only what it trusts; `std` (which turns on all three) adds PEM key
//! loading and COSE signing for host tools and tests; `hss-lms` adds HSS-LMS (COSE alg
//! -46) verification; `encryption` adds [`encryption`]: SUIT_Encryption_Info
//! (COSE_Encrypt) decoding, content-key unwrapping and streaming AES-GCM / AES-CTR
//! decryption of a firmware payload.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![warn(missing_docs)]

#[cfg(any(feature = "std", test))]
extern crate std;

mod algorithm;
mod decode;
#[cfg(feature = "encryption")]
pub mod encryption;
mod error;
#[cfg(feature = "std")]
mod host;
#[cfg(feature = "hss-lms")]
mod hss;
#[cfg(feature = "sign")]
pub mod sign;
mod tbs;
mod verify;

pub use algorithm::Algorithm;
pub use decode::{CoseKind, CoseMessage, MAX_HEADER_LABELS, MAX_SKIP_DEPTH};
pub use error::CoseError;
#[cfg(feature = "std")]
pub use host::{
    KeyError, OwnedVerifyingKey, SigningKey, mac0_detached, sign1_detached, signing_key_from_pem,
    verifying_key_from_pem,
};
pub use tbs::{MAX_SIG_STRUCTURE_LEN, encode_to_be_signed, to_be_signed_len, write_to_be_signed};
pub use verify::VerifyingKey;

/// Re-exported so callers build [`VerifyingKey::P256`] with exactly the version we verify with.
#[cfg(feature = "p256")]
pub use p256;

/// Re-exported so callers build [`VerifyingKey::Ed25519`] with exactly the version we verify with.
#[cfg(feature = "ed25519")]
pub use ed25519_dalek;
