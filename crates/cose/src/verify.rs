//! Signature and MAC verification with RustCrypto.
//!
//! Each algorithm family is a cargo feature (`p256`, `ed25519`, `hmac`, `hss-lms`): a
//! bootloader that trusts one P-256 key builds with `p256` only and links no Ed25519 or
//! HMAC code. A key variant exists only when its feature is on; a message in an
//! algorithm the build lacks still decodes (its `alg` is named), but no key accepts it.

use core::fmt;

#[cfg(feature = "hmac")]
use hmac::{Hmac, KeyInit, Mac};
#[cfg(feature = "p256")]
use p256::ecdsa::signature::hazmat::PrehashVerifier;
#[cfg(feature = "p256")]
use sha2::Digest;
#[cfg(any(feature = "p256", feature = "hmac"))]
use sha2::Sha256;

#[cfg(any(feature = "p256", feature = "hmac"))]
use crate::tbs::write_to_be_signed;
#[cfg(any(feature = "ed25519", feature = "hss-lms"))]
use crate::tbs::{MAX_SIG_STRUCTURE_LEN, encode_to_be_signed};
use crate::{Algorithm, CoseError, CoseKind, CoseMessage};

/// A trusted key that can check a [`CoseMessage`].
///
/// Borrowing (`'k`) lets a bootloader keep HMAC and HSS-LMS keys in flash without copying.
/// Each variant is there only when its cargo feature is on.
#[derive(Clone, Copy)]
pub enum VerifyingKey<'k> {
    /// ECDSA P-256 public key; checks ES256 (-7) and ESP256 (-9) COSE_Sign1.
    #[cfg(feature = "p256")]
    P256(p256::ecdsa::VerifyingKey),
    /// Ed25519 public key; checks EdDSA (-8) and Ed25519 (-19) COSE_Sign1.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    /// HMAC-SHA-256 secret; checks HMAC 256/256 (5) COSE_Mac0.
    #[cfg(feature = "hmac")]
    Hmac256(&'k [u8]),
    /// HSS-LMS public key in the RFC 8554 encoding (`L || LMS public key`, 60 bytes,
    /// SHA-256/M32/N32 parameter sets); checks HSS-LMS (-46) COSE_Sign1.
    #[cfg(feature = "hss-lms")]
    HssLms(&'k [u8]),
    /// Never constructed: holds the `'k` lifetime when no borrowing variant (HMAC,
    /// HSS-LMS) is compiled in, so the type keeps one signature in every build.
    #[cfg(not(any(feature = "hmac", feature = "hss-lms")))]
    #[doc(hidden)]
    Unused(
        core::convert::Infallible,
        core::marker::PhantomData<&'k [u8]>,
    ),
}

/// Hand-written so that an HMAC secret never ends up in a log.
impl fmt::Debug for VerifyingKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "p256")]
            Self::P256(k) => f.debug_tuple("P256").field(k).finish(),
            #[cfg(feature = "ed25519")]
            Self::Ed25519(k) => f.debug_tuple("Ed25519").field(k).finish(),
            #[cfg(feature = "hmac")]
            Self::Hmac256(_) => f.write_str("Hmac256(<secret>)"),
            #[cfg(feature = "hss-lms")]
            Self::HssLms(k) => f.debug_tuple("HssLms").field(k).finish(),
            #[cfg(not(any(feature = "hmac", feature = "hss-lms")))]
            Self::Unused(never, _) => {
                let _ = f;
                match *never {}
            }
        }
    }
}

impl VerifyingKey<'_> {
    /// Whether this key can check a message of `kind` with `alg`.
    ///
    /// P256 takes Es256 and Esp256, Ed25519 takes EdDSA and Ed25519, HSS-LMS takes
    /// HssLms, all only as COSE_Sign1; Hmac256 takes Hmac256 only as COSE_Mac0. Tying
    /// the key to its algorithms stops algorithm-substitution attacks (e.g. an attacker
    /// declaring HMAC and using a public key as the secret).
    pub fn accepts(&self, kind: CoseKind, alg: Algorithm) -> bool {
        match self {
            #[cfg(feature = "p256")]
            Self::P256(_) => {
                kind == CoseKind::Sign1 && matches!(alg, Algorithm::Es256 | Algorithm::Esp256)
            }
            #[cfg(feature = "ed25519")]
            Self::Ed25519(_) => {
                kind == CoseKind::Sign1 && matches!(alg, Algorithm::EdDsa | Algorithm::Ed25519)
            }
            #[cfg(feature = "hmac")]
            Self::Hmac256(_) => kind == CoseKind::Mac0 && alg == Algorithm::Hmac256,
            #[cfg(feature = "hss-lms")]
            Self::HssLms(_) => kind == CoseKind::Sign1 && alg == Algorithm::HssLms,
            #[cfg(not(any(feature = "hmac", feature = "hss-lms")))]
            Self::Unused(never, _) => {
                let _ = (kind, alg);
                match *never {}
            }
        }
    }

    /// Verify `msg` with this key.
    ///
    /// Payload rule: if `msg.payload` is `None` (detached, as in SUIT), the signed
    /// payload is `detached_payload` (which may legitimately be empty). If the message
    /// carries its own payload, that is used and `detached_payload` must be empty;
    /// otherwise [`CoseError::PayloadConflict`], so a caller can never believe it checked
    /// bytes other than the ones that were signed.
    ///
    /// No external AAD is used (SUIT defines none).
    ///
    /// # Errors
    /// - [`CoseError::AlgorithmMismatch`] if [`accepts`](Self::accepts) is false;
    /// - [`CoseError::PayloadConflict`] as described above;
    /// - [`CoseError::InvalidKey`] for an empty HMAC key or a malformed HSS-LMS public key;
    /// - [`CoseError::SigStructureTooLarge`] when Ed25519 / HSS-LMS would need more than
    ///   [`MAX_SIG_STRUCTURE_LEN`] bytes;
    /// - [`CoseError::SignatureInvalid`] for any cryptographic failure, including a
    ///   signature of the wrong length.
    pub fn verify(&self, msg: &CoseMessage<'_>, detached_payload: &[u8]) -> Result<(), CoseError> {
        if !self.accepts(msg.kind, msg.alg) {
            return Err(CoseError::AlgorithmMismatch);
        }
        let payload = match msg.payload {
            None => detached_payload,
            Some(attached) if detached_payload.is_empty() => attached,
            Some(_) => return Err(CoseError::PayloadConflict),
        };

        match self {
            #[cfg(feature = "p256")]
            Self::P256(key) => {
                // COSE carries raw r||s (64 bytes), not DER.
                let sig = p256::ecdsa::Signature::from_slice(msg.tag)
                    .map_err(|_| CoseError::SignatureInvalid)?;
                let mut hasher = Sha256::new();
                write_to_be_signed(msg.kind, msg.protected, payload, &mut |chunk: &[u8]| {
                    hasher.update(chunk)
                });
                let digest = hasher.finalize();
                key.verify_prehash(&digest, &sig)
                    .map_err(|_| CoseError::SignatureInvalid)
            }
            #[cfg(feature = "ed25519")]
            Self::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(msg.tag)
                    .map_err(|_| CoseError::SignatureInvalid)?;
                // PureEdDSA hashes the message twice, so it needs it all at once.
                let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
                let tbs = encode_to_be_signed(msg.kind, msg.protected, payload, &mut buf)?;
                key.verify_strict(tbs, &sig)
                    .map_err(|_| CoseError::SignatureInvalid)
            }
            #[cfg(feature = "hmac")]
            Self::Hmac256(secret) => {
                if secret.is_empty() {
                    return Err(CoseError::InvalidKey);
                }
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
                    .map_err(|_| CoseError::InvalidKey)?;
                write_to_be_signed(msg.kind, msg.protected, payload, &mut |chunk: &[u8]| {
                    mac.update(chunk)
                });
                // Constant-time comparison; also refuses truncated tags (HMAC 256/256
                // means the full 32 bytes).
                mac.verify_slice(msg.tag)
                    .map_err(|_| CoseError::SignatureInvalid)
            }
            #[cfg(feature = "hss-lms")]
            Self::HssLms(public_key) => {
                // hbs-lms panics on malformed input, so the layout is checked first.
                let levels =
                    crate::hss::public_key_levels(public_key).ok_or(CoseError::InvalidKey)?;
                if !crate::hss::signature_well_formed(msg.tag, levels) {
                    return Err(CoseError::SignatureInvalid);
                }
                let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
                let tbs = encode_to_be_signed(msg.kind, msg.protected, payload, &mut buf)?;
                hbs_lms::verify::<hbs_lms::Sha256_256>(tbs, msg.tag, public_key)
                    .map_err(|_| CoseError::SignatureInvalid)
            }
            #[cfg(not(any(feature = "hmac", feature = "hss-lms")))]
            Self::Unused(never, _) => {
                let _ = payload;
                match *never {}
            }
        }
    }
}

#[cfg(feature = "p256")]
impl From<p256::ecdsa::VerifyingKey> for VerifyingKey<'_> {
    fn from(key: p256::ecdsa::VerifyingKey) -> Self {
        Self::P256(key)
    }
}

#[cfg(feature = "ed25519")]
impl From<ed25519_dalek::VerifyingKey> for VerifyingKey<'_> {
    fn from(key: ed25519_dalek::VerifyingKey) -> Self {
        Self::Ed25519(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_key() -> p256::ecdsa::VerifyingKey {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        *sk.verifying_key()
    }

    fn ed_key() -> ed25519_dalek::VerifyingKey {
        ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key()
    }

    fn message(
        kind: CoseKind,
        alg: Algorithm,
        payload: Option<&'static [u8]>,
    ) -> CoseMessage<'static> {
        CoseMessage {
            kind,
            protected: &[0xa1, 0x01, 0x26],
            alg,
            kid: None,
            payload,
            tag: &[0u8; 64],
        }
    }

    #[test]
    fn accepts_matrix() {
        use Algorithm::*;
        use CoseKind::*;
        let p = VerifyingKey::P256(p256_key());
        let e = VerifyingKey::Ed25519(ed_key());
        let h = VerifyingKey::Hmac256(b"k");
        for alg in [Es256, Esp256, EdDsa, Ed25519, Hmac256, HssLms] {
            for kind in [Sign1, Mac0] {
                assert_eq!(
                    p.accepts(kind, alg),
                    kind == Sign1 && matches!(alg, Es256 | Esp256)
                );
                assert_eq!(
                    e.accepts(kind, alg),
                    kind == Sign1 && matches!(alg, EdDsa | Ed25519)
                );
                assert_eq!(h.accepts(kind, alg), kind == Mac0 && alg == Hmac256);
            }
        }
    }

    #[test]
    fn mismatch_and_conflict_are_reported_before_crypto() {
        let p = VerifyingKey::P256(p256_key());
        let m = message(CoseKind::Mac0, Algorithm::Es256, None);
        assert_eq!(p.verify(&m, b""), Err(CoseError::AlgorithmMismatch));
        let m = message(CoseKind::Sign1, Algorithm::EdDsa, None);
        assert_eq!(p.verify(&m, b""), Err(CoseError::AlgorithmMismatch));
        let m = message(CoseKind::Sign1, Algorithm::Es256, Some(b"attached"));
        assert_eq!(p.verify(&m, b"detached"), Err(CoseError::PayloadConflict));
        // Attached payload with an empty detached one is checked (and fails on crypto).
        assert_eq!(p.verify(&m, b""), Err(CoseError::SignatureInvalid));
    }

    #[test]
    fn empty_hmac_key_is_refused() {
        let h = VerifyingKey::Hmac256(&[]);
        let m = message(CoseKind::Mac0, Algorithm::Hmac256, None);
        assert_eq!(h.verify(&m, b"x"), Err(CoseError::InvalidKey));
    }

    #[test]
    fn wrong_length_tags_are_opaque_failures() {
        let mut m = message(CoseKind::Sign1, Algorithm::Es256, None);
        m.tag = &[1u8; 63];
        assert_eq!(
            VerifyingKey::P256(p256_key()).verify(&m, b"x"),
            Err(CoseError::SignatureInvalid)
        );
        m.alg = Algorithm::Ed25519;
        assert_eq!(
            VerifyingKey::Ed25519(ed_key()).verify(&m, b"x"),
            Err(CoseError::SignatureInvalid)
        );
        let mut m = message(CoseKind::Mac0, Algorithm::Hmac256, None);
        m.tag = &[1u8; 16];
        assert_eq!(
            VerifyingKey::Hmac256(b"key").verify(&m, b"x"),
            Err(CoseError::SignatureInvalid)
        );
    }

    #[test]
    fn ed25519_too_large_sig_structure() {
        let m = message(CoseKind::Sign1, Algorithm::Ed25519, None);
        let big = [0u8; MAX_SIG_STRUCTURE_LEN];
        assert_eq!(
            VerifyingKey::Ed25519(ed_key()).verify(&m, &big),
            Err(CoseError::SigStructureTooLarge)
        );
    }

    #[test]
    fn debug_hides_hmac_secret() {
        let s = std::format!("{:?}", VerifyingKey::Hmac256(b"supersecret"));
        assert!(!s.contains("supersecret") && !s.contains("115"), "{s}");
    }
}
