//! SHA-256 on the device: a known answer, and the SUIT auth digest of a real
//! envelope.

use minicbor::Decoder;
use sha2::{Digest, Sha256};

use crate::harness::Outcome;
use crate::vectors::{EXAMPLE0, flipped, split_envelope};

/// COSE algorithm identifier of SHA-256.
const SHA256: i64 = -16;

/// FIPS 180-2 example: SHA-256("abc").
pub fn sha256_abc() -> Outcome {
    const EXPECTED: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];
    let digest = Sha256::digest(core::hint::black_box(b"abc"));
    if digest[..] == EXPECTED[..] {
        Ok(())
    } else {
        Err("wrong digest")
    }
}

/// The digest in the authentication wrapper (`[-16, bstr]`) of `example0`.
fn auth_digest(envelope: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let parts = split_envelope(envelope)?;
    let mut d = Decoder::new(parts.auth_payload);
    let malformed = |_| "auth digest: malformed SUIT_Digest";
    if d.array().map_err(malformed)? != Some(2) {
        return Err("auth digest: not a 2-element array");
    }
    if d.i64().map_err(malformed)? != SHA256 {
        return Err("auth digest: not SHA-256");
    }
    Ok((d.bytes().map_err(malformed)?, parts.manifest_bstr))
}

/// SHA-256 over the bstr-wrapped manifest equals the auth wrapper's digest.
pub fn example0_auth_digest() -> Outcome {
    let (expected, manifest) = auth_digest(EXAMPLE0)?;
    let digest = Sha256::digest(manifest);
    if digest[..] == *expected {
        Ok(())
    } else {
        Err("manifest digest does not match")
    }
}

/// One flipped bit in the manifest changes its digest.
pub fn example0_flipped_manifest_digest_differs() -> Outcome {
    // Byte 200 is inside the manifest (which spans bytes 122..237).
    let tampered = flipped(EXAMPLE0, 200, 0);
    let (expected, manifest) = auth_digest(&tampered)?;
    let digest = Sha256::digest(manifest);
    if digest[..] != *expected {
        Ok(())
    } else {
        Err("tampered manifest still matches")
    }
}

/// Exactly the hashing example 3's update does besides its signature check: the
/// manifest digest and the digest of image B as it streams into slot 1. Its count,
/// subtracted from `processor::example3_update_slot1` minus
/// `processor::example3_verify_only`, leaves the processor's own cost.
pub fn example3_update_hashing() -> Outcome {
    let parts = split_envelope(crate::vectors::EXAMPLE3_REAL)?;
    let manifest = Sha256::digest(core::hint::black_box(parts.manifest_bstr));
    let image = Sha256::digest(core::hint::black_box(crate::vectors::IMAGE_B));
    if manifest == image {
        return Err("distinct inputs hashed alike");
    }
    Ok(())
}
