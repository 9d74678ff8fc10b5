//! Host side (feature `std`): encode a store body, sign it, add signatures one key holder
//! at a time, and read a signed store back for display. The device only decodes.

use minicbor::Encoder;
use suitcase_cose::{Algorithm, OwnedVerifyingKey, SigningKey, sign1_detached};

use crate::{Clause, Family, TrustError, decode};

/// One key to put in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// COSE algorithm (-7/-9 P-256, -8/-19 Ed25519, -46 HSS-LMS).
    pub alg: i64,
    /// Role bits ([`crate::role`]).
    pub roles: u32,
    /// The encoded public key (SEC1 point, 32 bytes, or the 60-byte HSS public key).
    pub public: Vec<u8>,
    /// Optional COSE kid.
    pub kid: Option<Vec<u8>>,
}

impl KeySpec {
    /// A P-256 or Ed25519 public key with `roles`.
    pub fn of(key: &OwnedVerifyingKey, roles: u32) -> KeySpec {
        match key {
            OwnedVerifyingKey::P256(k) => KeySpec {
                alg: -9,
                roles,
                public: k.to_sec1_point(true).as_bytes().to_vec(),
                kid: None,
            },
            OwnedVerifyingKey::Ed25519(k) => KeySpec {
                alg: -19,
                roles,
                public: k.to_bytes().to_vec(),
                kid: None,
            },
        }
    }
}

/// A store to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// Version (above the store it replaces).
    pub version: u64,
    /// Keys.
    pub keys: Vec<KeySpec>,
    /// Root threshold.
    pub root_threshold: u8,
    /// Manifest policy.
    pub manifest: Vec<Clause>,
    /// Dependency policy (`None`: dependencies refused).
    pub dependency: Option<Vec<Clause>>,
}

fn family_alg(f: Family) -> i64 {
    match f {
        Family::P256 => -7,
        Family::Ed25519 => -8,
        Family::HssLms => -46,
    }
}

fn clauses(e: &mut Encoder<&mut Vec<u8>>, cs: &[Clause]) -> Result<(), TrustError> {
    let enc = |_| TrustError::TooLarge;
    e.array(cs.len() as u64).map_err(enc)?;
    for c in cs {
        let n = 2 + u64::from(c.family.is_some());
        e.array(n)
            .map_err(enc)?
            .u32(c.role)
            .map_err(enc)?
            .u8(c.k)
            .map_err(enc)?;
        if let Some(f) = c.family {
            e.i64(family_alg(f)).map_err(enc)?;
        }
    }
    Ok(())
}

/// The store body (`Store`, docs/trust-store.md).
pub fn encode_body(spec: &StoreSpec) -> Result<Vec<u8>, TrustError> {
    let enc = |_| TrustError::TooLarge;
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.map(4 + u64::from(spec.dependency.is_some()))
        .map_err(enc)?;
    e.u8(1).map_err(enc)?.u64(spec.version).map_err(enc)?;
    e.u8(2)
        .map_err(enc)?
        .array(spec.keys.len() as u64)
        .map_err(enc)?;
    for k in &spec.keys {
        e.array(3 + u64::from(k.kid.is_some())).map_err(enc)?;
        e.i64(k.alg)
            .map_err(enc)?
            .u32(k.roles)
            .map_err(enc)?
            .bytes(&k.public)
            .map_err(enc)?;
        if let Some(kid) = &k.kid {
            e.bytes(kid).map_err(enc)?;
        }
    }
    e.u8(3).map_err(enc)?.u8(spec.root_threshold).map_err(enc)?;
    e.u8(4).map_err(enc)?;
    clauses(&mut e, &spec.manifest)?;
    if let Some(d) = &spec.dependency {
        e.u8(5).map_err(enc)?;
        clauses(&mut e, d)?;
    }
    Ok(out)
}

/// `[body, signatures]`.
pub fn assemble(body: &[u8], signatures: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    // Writing into a Vec cannot fail.
    let _ = e
        .array(2)
        .and_then(|e| e.bytes(body))
        .and_then(|e| e.array(signatures.len() as u64));
    for s in signatures {
        let _ = e.bytes(s);
    }
    out
}

/// The body and the signatures of a signed store (or of an unsigned one: `[body, []]`).
pub fn split(signed: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), TrustError> {
    let mut d = minicbor::Decoder::new(signed);
    let bad = |d: &minicbor::Decoder<'_>| TrustError::Decode(d.position());
    if d.array().map_err(|_| bad(&d))? != Some(2) {
        return Err(bad(&d));
    }
    let body = d.bytes().map_err(|_| bad(&d))?.to_vec();
    let n = d.array().map_err(|_| bad(&d))?.ok_or(bad(&d))?;
    let mut sigs = Vec::new();
    for _ in 0..n {
        sigs.push(d.bytes().map_err(|_| bad(&d))?.to_vec());
    }
    if d.position() != signed.len() {
        return Err(bad(&d));
    }
    Ok((body, sigs))
}

/// A COSE_Sign1 over `body` (detached) with `key`, in its default algorithm.
pub fn sign(body: &[u8], key: &SigningKey, kid: Option<&[u8]>) -> Vec<u8> {
    let alg: Algorithm = key.default_algorithm();
    // P-256 and Ed25519 sign any payload with their default algorithm.
    sign1_detached(key, alg, kid, body).unwrap_or_default()
}

/// `signed` with one more signature.
pub fn add_signature(signed: &[u8], signature: Vec<u8>) -> Result<Vec<u8>, TrustError> {
    let (body, mut sigs) = split(signed)?;
    sigs.push(signature);
    Ok(assemble(&body, &sigs))
}

/// Checks that `body` decodes as a store on its own (before anyone signs it).
pub fn check_body(body: &[u8]) -> Result<(), TrustError> {
    decode::signed_store(&assemble(body, &[])).map(|_| ())
}
