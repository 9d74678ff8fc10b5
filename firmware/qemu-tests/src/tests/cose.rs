//! `suitcase-cose` on the device: the COSE_Sign1 (ES256, detached payload)
//! of `example0.suit` verifies with the published key, and one flipped bit in
//! the signature or in the signed payload makes it fail.

use suitcase_cose::p256::ecdsa::VerifyingKey as P256Key;
use suitcase_cose::{CoseError, CoseMessage, VerifyingKey};

use crate::harness::Outcome;
use crate::vectors::{EXAMPLE_KEY_SEC1, EXAMPLE0, flipped, offset_in, split_envelope};

/// Decodes the envelope's COSE_Sign1 and verifies it over its detached
/// payload (the auth wrapper's first bstr) with the example key. The outer
/// `Err` is a broken test setup, the inner result what `suitcase-cose` said.
fn verify_envelope(envelope: &[u8]) -> Result<Result<(), CoseError>, &'static str> {
    let parts = split_envelope(envelope)?;
    let key = P256Key::from_sec1_bytes(&EXAMPLE_KEY_SEC1).map_err(|_| "example key invalid")?;
    Ok(CoseMessage::decode(parts.cose_sign1)
        .and_then(|msg| VerifyingKey::P256(key).verify(&msg, parts.auth_payload)))
}

/// The COSE_Sign1 decodes strictly (tag 18, alg ES256, detached payload).
pub fn example0_decode() -> Outcome {
    let parts = split_envelope(EXAMPLE0)?;
    let msg = CoseMessage::decode(parts.cose_sign1).map_err(|_| "decode failed")?;
    if msg.payload.is_some() {
        return Err("payload should be detached");
    }
    if msg.tag.len() != 64 {
        return Err("ES256 signature is not 64 bytes");
    }
    Ok(())
}

/// The published example verifies.
pub fn example0_sign1_verifies() -> Outcome {
    verify_envelope(EXAMPLE0)?.map_err(|_| "signature rejected")
}

/// Last bit of the signature (`s`) flipped: rejected as an invalid signature.
pub fn example0_flipped_signature_rejected() -> Outcome {
    let parts = split_envelope(EXAMPLE0)?;
    let last = offset_in(EXAMPLE0, parts.cose_sign1) + parts.cose_sign1.len() - 1;
    expect_invalid(&flipped(EXAMPLE0, last, 0))
}

/// Last bit of the signed digest flipped: rejected as an invalid signature.
pub fn example0_flipped_payload_rejected() -> Outcome {
    let parts = split_envelope(EXAMPLE0)?;
    let last = offset_in(EXAMPLE0, parts.auth_payload) + parts.auth_payload.len() - 1;
    expect_invalid(&flipped(EXAMPLE0, last, 0))
}

fn expect_invalid(envelope: &[u8]) -> Outcome {
    match verify_envelope(envelope)? {
        Err(CoseError::SignatureInvalid) => Ok(()),
        Ok(()) => Err("tampered envelope verified"),
        Err(_) => Err("rejected, but not as SignatureInvalid"),
    }
}
