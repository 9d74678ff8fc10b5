//! Device-side COSE signing with no allocation: a COSE_Sign1 (ES256) or COSE_Mac0
//! (HMAC 256/256) around an *attached* payload, encoded into a caller-supplied buffer.
//! A device signs its SUIT reports with these so the server can trust them.
//!
//! Layout (both kinds; `kid` only when given):
//!
//! ```text
//! d2 / d1                      tag 18 (COSE_Sign1) / tag 17 (COSE_Mac0)
//! 84                           array(4)
//!   43 a1 01 26 / 43 a1 01 05  protected: bstr .cbor {1: -7 (ES256)} / {1: 5 (HMAC 256/256)}
//!   a1 04 <bstr kid> / a0      unprotected: {4: kid} / {}
//!   <bstr payload>             the payload, attached
//!   58 40 <r‖s> / 58 20 <tag>  64-byte raw ECDSA signature / 32-byte HMAC tag
//! ```
//!
//! ECDSA nonces are deterministic (RFC 6979): a device needs no random number
//! generator to sign, and a weak one cannot leak its key.

// With `sign` but neither algorithm, only the shared encoder remains (and goes unused).
#![cfg_attr(
    not(any(feature = "p256", feature = "hmac")),
    allow(dead_code, unused_imports)
)]

use crate::tbs::{write_head, write_to_be_signed};
use crate::{CoseError, CoseKind};

/// `{1: -7}` (ES256).
#[cfg(feature = "p256")]
const PROTECTED_ES256: [u8; 3] = [0xa1, 0x01, 0x26];
/// `{1: 5}` (HMAC 256/256).
#[cfg(feature = "hmac")]
const PROTECTED_HMAC256: [u8; 3] = [0xa1, 0x01, 0x05];

/// Writes into a slice, remembering whether anything did not fit.
struct Out<'b> {
    buf: &'b mut [u8],
    pos: usize,
    overflow: bool,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        match self.buf.get_mut(self.pos..end) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.pos = end;
            }
            _ => self.overflow = true,
        }
    }
    fn bstr(&mut self, bytes: &[u8]) {
        write_head(2, bytes.len() as u64, &mut |h: &[u8]| self.put(h));
        self.put(bytes);
    }
}

fn encode(
    kind: CoseKind,
    protected: &[u8],
    kid: Option<&[u8]>,
    payload: &[u8],
    tag: &[u8],
    out: &mut [u8],
) -> Result<usize, CoseError> {
    let mut o = Out {
        buf: out,
        pos: 0,
        overflow: false,
    };
    o.put(&[match kind {
        CoseKind::Sign1 => 0xd2,
        CoseKind::Mac0 => 0xd1,
    }]);
    o.put(&[0x84]);
    o.bstr(protected);
    match kid {
        Some(kid) => {
            o.put(&[0xa1, 0x04]);
            o.bstr(kid);
        }
        None => o.put(&[0xa0]),
    }
    o.bstr(payload);
    o.bstr(tag);
    if o.overflow {
        Err(CoseError::BufferTooSmall)
    } else {
        Ok(o.pos)
    }
}

/// Signs `payload` with `key` (ES256) and writes the tagged COSE_Sign1, payload attached,
/// into `out`; returns its length.
///
/// # Errors
/// [`CoseError::BufferTooSmall`] when `out` cannot hold the message;
/// [`CoseError::InvalidKey`] if the primitive refuses (it does not for a valid key).
#[cfg(feature = "p256")]
pub fn sign1_es256(
    key: &p256::ecdsa::SigningKey,
    kid: Option<&[u8]>,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, CoseError> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    write_to_be_signed(
        CoseKind::Sign1,
        &PROTECTED_ES256,
        payload,
        &mut |c: &[u8]| hasher.update(c),
    );
    let sig: p256::ecdsa::Signature = key
        .sign_prehash(&hasher.finalize())
        .map_err(|_| CoseError::InvalidKey)?;
    encode(
        CoseKind::Sign1,
        &PROTECTED_ES256,
        kid,
        payload,
        &sig.to_bytes(),
        out,
    )
}

/// MACs `payload` with HMAC-SHA-256 under `key` and writes the tagged COSE_Mac0, payload
/// attached, into `out`; returns its length.
///
/// # Errors
/// [`CoseError::InvalidKey`] for an empty key (verifiers refuse those);
/// [`CoseError::BufferTooSmall`] when `out` cannot hold the message.
#[cfg(feature = "hmac")]
pub fn mac0_hmac256(
    key: &[u8],
    kid: Option<&[u8]>,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, CoseError> {
    use hmac::{KeyInit, Mac};
    if key.is_empty() {
        return Err(CoseError::InvalidKey);
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| CoseError::InvalidKey)?;
    write_to_be_signed(
        CoseKind::Mac0,
        &PROTECTED_HMAC256,
        payload,
        &mut |c: &[u8]| mac.update(c),
    );
    let tag = mac.finalize().into_bytes();
    encode(CoseKind::Mac0, &PROTECTED_HMAC256, kid, payload, &tag, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CoseMessage, VerifyingKey};

    #[test]
    fn sign1_round_trips_through_the_verifier() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let vk = *sk.verifying_key();
        let mut out = [0u8; 200];
        let n = sign1_es256(&sk, Some(b"dev"), b"report", &mut out).unwrap();
        let msg = CoseMessage::decode(&out[..n]).unwrap();
        assert_eq!(msg.payload, Some(&b"report"[..]));
        VerifyingKey::P256(vk).verify(&msg, b"").unwrap();
        // Deterministic: the same input gives the same bytes.
        let mut again = [0u8; 200];
        let m = sign1_es256(&sk, Some(b"dev"), b"report", &mut again).unwrap();
        assert_eq!(out[..n], again[..m]);
        // A changed payload byte fails.
        let mut bad = out;
        let at = n - 64 - 3;
        bad[at] ^= 1;
        let msg = CoseMessage::decode(&bad[..n]).unwrap();
        assert_eq!(
            VerifyingKey::P256(vk).verify(&msg, b""),
            Err(CoseError::SignatureInvalid)
        );
    }

    #[test]
    fn mac0_round_trips_and_small_buffers_are_refused() {
        let mut out = [0u8; 100];
        let n = mac0_hmac256(b"k", None, b"payload", &mut out).unwrap();
        let msg = CoseMessage::decode(&out[..n]).unwrap();
        VerifyingKey::Hmac256(b"k").verify(&msg, b"").unwrap();
        for len in 0..n {
            assert_eq!(
                mac0_hmac256(b"k", None, b"payload", &mut out[..len]),
                Err(CoseError::BufferTooSmall)
            );
        }
        assert_eq!(
            mac0_hmac256(b"", None, b"x", &mut out),
            Err(CoseError::InvalidKey)
        );
    }
}
