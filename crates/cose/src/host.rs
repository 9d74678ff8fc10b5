//! Host-only helpers (feature `std`): PEM key loading and COSE signing.
//!
//! These exist so host tools and tests create exactly the bytes the device code checks:
//! the signer reuses [`write_to_be_signed`], so both sides encode the structure alike.

use core::fmt;
use std::vec::Vec;

use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use sha2::{Digest, Sha256};

use crate::tbs::{write_head, write_to_be_signed};
use crate::{Algorithm, CoseKind, VerifyingKey};

/// Why a key could not be loaded or used for signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not PEM (bad armor or base64).
    Pem,
    /// The PEM label is not one we load ("PUBLIC KEY", "PRIVATE KEY", "EC PRIVATE KEY").
    UnsupportedLabel,
    /// The DER inside is not a P-256 or Ed25519 key, or is invalid.
    UnsupportedKey,
    /// The key cannot produce the requested COSE algorithm.
    AlgorithmMismatch,
    /// The key is unusable for this operation (e.g. an empty HMAC secret).
    InvalidKey,
    /// The signature primitive failed.
    Signing,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pem => "not valid PEM",
            Self::UnsupportedLabel => "unsupported PEM label",
            Self::UnsupportedKey => "not a valid P-256 or Ed25519 key",
            Self::AlgorithmMismatch => "cannot sign with this algorithm",
            Self::InvalidKey => "unusable key",
            Self::Signing => "signing failed",
        })
    }
}

impl std::error::Error for KeyError {}

/// A public key loaded on the host; lend it to the verifier with
/// [`as_verifying_key`](Self::as_verifying_key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnedVerifyingKey {
    /// ECDSA P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl OwnedVerifyingKey {
    /// The verifier's view of this key.
    pub fn as_verifying_key(&self) -> VerifyingKey<'_> {
        match self {
            Self::P256(k) => VerifyingKey::P256(*k),
            Self::Ed25519(k) => VerifyingKey::Ed25519(*k),
        }
    }
}

impl<'a> From<&'a OwnedVerifyingKey> for VerifyingKey<'a> {
    fn from(key: &'a OwnedVerifyingKey) -> Self {
        key.as_verifying_key()
    }
}

/// A private key for host-side signing.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// ECDSA P-256; signatures are deterministic (RFC 6979).
    P256(p256::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    /// The matching public key.
    pub fn verifying_key(&self) -> OwnedVerifyingKey {
        match self {
            Self::P256(k) => OwnedVerifyingKey::P256(*k.verifying_key()),
            Self::Ed25519(k) => OwnedVerifyingKey::Ed25519(k.verifying_key()),
        }
    }

    /// The fully-specified algorithm of the SUIT MTI profiles for this key
    /// (ESP256 or Ed25519), for callers without a preference.
    pub fn default_algorithm(&self) -> Algorithm {
        match self {
            Self::P256(_) => Algorithm::Esp256,
            Self::Ed25519(_) => Algorithm::Ed25519,
        }
    }
}

/// Load a P-256 or Ed25519 public key from PEM SubjectPublicKeyInfo ("PUBLIC KEY").
///
/// # Errors
/// [`KeyError::Pem`], [`KeyError::UnsupportedLabel`] or [`KeyError::UnsupportedKey`].
pub fn verifying_key_from_pem(pem: &str) -> Result<OwnedVerifyingKey, KeyError> {
    match pem_label(pem)? {
        "PUBLIC KEY" => {}
        _ => return Err(KeyError::UnsupportedLabel),
    }
    // Each decoder checks the SPKI algorithm OID (and curve), so trying both is exact.
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        return Ok(OwnedVerifyingKey::P256(k));
    }
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
        return Ok(OwnedVerifyingKey::Ed25519(k));
    }
    Err(KeyError::UnsupportedKey)
}

/// Load a private key from PEM: PKCS#8 "PRIVATE KEY" (P-256 or Ed25519) or SEC1
/// "EC PRIVATE KEY" (P-256); both forms occur in the published SUIT test keys.
///
/// # Errors
/// [`KeyError::Pem`], [`KeyError::UnsupportedLabel`] or [`KeyError::UnsupportedKey`].
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    match pem_label(pem)? {
        "PRIVATE KEY" => {
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
                return Ok(SigningKey::P256(k));
            }
            if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
                return Ok(SigningKey::Ed25519(k));
            }
            Err(KeyError::UnsupportedKey)
        }
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(pem)
            .map(|sk| SigningKey::P256(sk.into()))
            .map_err(|_| KeyError::UnsupportedKey),
        _ => Err(KeyError::UnsupportedLabel),
    }
}

/// The PEM label, or [`KeyError::Pem`] when the armor is broken.
fn pem_label(pem: &str) -> Result<&str, KeyError> {
    pem::decode_label(pem.trim_start().as_bytes()).map_err(|_| KeyError::Pem)
}

/// Sign `payload` and return a tagged COSE_Sign1 (tag 18) with a detached (`nil`)
/// payload, as SUIT's authentication wrapper carries it.
///
/// Protected header: `{1: alg}` only, so it is the same few bytes for every message.
/// Unprotected header: `{4: kid}` when `kid` is given, else `{}`.
///
/// # Errors
/// [`KeyError::AlgorithmMismatch`] if `key` cannot produce `alg` (P-256 signs Es256 /
/// Esp256, Ed25519 signs EdDsa / Ed25519); [`KeyError::Signing`] if the primitive fails.
pub fn sign1_detached(
    key: &SigningKey,
    alg: Algorithm,
    kid: Option<&[u8]>,
    payload: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if !key
        .verifying_key()
        .as_verifying_key()
        .accepts(CoseKind::Sign1, alg)
    {
        return Err(KeyError::AlgorithmMismatch);
    }
    let protected = protected_header(alg);
    let signature: Vec<u8> = match key {
        SigningKey::P256(sk) => {
            let mut hasher = Sha256::new();
            write_to_be_signed(CoseKind::Sign1, &protected, payload, &mut |c: &[u8]| {
                hasher.update(c)
            });
            let sig: p256::ecdsa::Signature = sk
                .sign_prehash(&hasher.finalize())
                .map_err(|_| KeyError::Signing)?;
            sig.to_bytes().to_vec()
        }
        SigningKey::Ed25519(sk) => {
            use ed25519_dalek::Signer;
            let tbs = collect_to_be_signed(CoseKind::Sign1, &protected, payload);
            sk.try_sign(&tbs).map_err(|_| KeyError::Signing)?.to_vec()
        }
    };
    Ok(encode_message(CoseKind::Sign1, &protected, kid, &signature))
}

/// MAC `payload` with HMAC-SHA-256 and return a tagged COSE_Mac0 (tag 17) with a
/// detached payload; protected header `{1: 5}`, unprotected `{4: kid}` or `{}`.
///
/// # Errors
/// [`KeyError::InvalidKey`] for an empty key (the verifier refuses those too).
pub fn mac0_detached(key: &[u8], kid: Option<&[u8]>, payload: &[u8]) -> Result<Vec<u8>, KeyError> {
    if key.is_empty() {
        return Err(KeyError::InvalidKey);
    }
    let protected = protected_header(Algorithm::Hmac256);
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| KeyError::InvalidKey)?;
    write_to_be_signed(CoseKind::Mac0, &protected, payload, &mut |c: &[u8]| {
        mac.update(c)
    });
    let tag = mac.finalize().into_bytes();
    Ok(encode_message(CoseKind::Mac0, &protected, kid, &tag))
}

/// `{1: alg}` as CBOR.
fn protected_header(alg: Algorithm) -> Vec<u8> {
    let mut out = std::vec![0xa1, 0x01];
    push_int(&mut out, alg.cose_id());
    out
}

/// Append a CBOR integer (major 0 or 1) in preferred encoding.
fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut sink = |b: &[u8]| out.extend_from_slice(b);
    if v >= 0 {
        write_head(0, v.unsigned_abs(), &mut sink);
    } else {
        // -1 - v, computed without overflow for i64::MIN.
        write_head(1, (-(v + 1)).unsigned_abs(), &mut sink);
    }
}

/// Append a CBOR byte string.
fn push_bstr(out: &mut Vec<u8>, bytes: &[u8]) {
    write_head(2, bytes.len() as u64, &mut |b: &[u8]| {
        out.extend_from_slice(b)
    });
    out.extend_from_slice(bytes);
}

/// The whole ToBeSigned structure, for Ed25519 which needs it at once.
fn collect_to_be_signed(kind: CoseKind, protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_to_be_signed(kind, protected, payload, &mut |c: &[u8]| {
        out.extend_from_slice(c)
    });
    out
}

/// `tag([bstr(protected), {?4: kid}, nil, bstr(sig_or_mac)])`.
fn encode_message(kind: CoseKind, protected: &[u8], kid: Option<&[u8]>, tag: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + protected.len() + tag.len());
    out.push(match kind {
        CoseKind::Sign1 => 0xd2,
        CoseKind::Mac0 => 0xd1,
    });
    out.push(0x84);
    push_bstr(&mut out, protected);
    match kid {
        Some(kid) => {
            out.extend_from_slice(&[0xa1, 0x04]);
            push_bstr(&mut out, kid);
        }
        None => out.push(0xa0),
    }
    out.push(0xf6);
    push_bstr(&mut out, tag);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_encoding() {
        for (v, enc) in [
            (0i64, std::vec![0x00]),
            (5, std::vec![0x05]),
            (-1, std::vec![0x20]),
            (-7, std::vec![0x26]),
            (-46, std::vec![0x38, 0x2d]),
            (-257, std::vec![0x39, 0x01, 0x00]),
            (
                i64::MIN,
                std::vec![0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ] {
            let mut out = Vec::new();
            push_int(&mut out, v);
            assert_eq!(out, enc, "{v}");
        }
    }

    #[test]
    fn pem_errors() {
        assert_eq!(verifying_key_from_pem("hello"), Err(KeyError::Pem));
        let wrong_label = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            verifying_key_from_pem(wrong_label),
            Err(KeyError::UnsupportedLabel)
        );
        assert!(matches!(
            signing_key_from_pem(wrong_label),
            Err(KeyError::UnsupportedLabel)
        ));
        let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(verifying_key_from_pem(junk), Err(KeyError::UnsupportedKey));
    }

    #[test]
    fn sign_refuses_foreign_algorithm() {
        let key = SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
        assert_eq!(
            sign1_detached(&key, Algorithm::Es256, None, b"p"),
            Err(KeyError::AlgorithmMismatch)
        );
        assert_eq!(
            sign1_detached(&key, Algorithm::Hmac256, None, b"p"),
            Err(KeyError::AlgorithmMismatch)
        );
        assert_eq!(mac0_detached(&[], None, b"p"), Err(KeyError::InvalidKey));
    }
}
