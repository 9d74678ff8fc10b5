//! Keys on the host: generation, PEM files, the COSE key thumbprint, and COSE_Sign1
//! signing for every algorithm the device verifies (ESP256, Ed25519, HSS-LMS).
//!
//! P-256 and Ed25519 keys are PKCS#8 / SubjectPublicKeyInfo PEM written by RustCrypto.
//! HSS-LMS has a standard public key encoding (SPKI with id-alg-hss-lms-hashsig, the raw
//! HSS public key in the BIT STRING, RFC 9708) but no standard private key format, so the
//! private key is a PKCS#8 structure with the same OID whose OCTET STRING holds hbs-lms's
//! private key bytes. That key is **stateful**: it records which one-time leaves are
//! used, and must be rewritten after every signature (see `sign`).

use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use hbs_lms::signature::SignerMut as _;
use hbs_lms::{HssParameter, LmotsAlgorithm, LmsAlgorithm, Seed, Sha256_256};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};

use sha2::{Digest as _, Sha256};
use suitcase_cose::{
    Algorithm, CoseKind, KeyError, MAX_SIG_STRUCTURE_LEN, OwnedVerifyingKey, SigningKey,
    VerifyingKey, encode_to_be_signed, sign1_detached, signing_key_from_pem,
    verifying_key_from_pem,
};

use crate::cbor::Item;

/// id-alg-hss-lms-hashsig, 1.2.840.113549.1.9.16.3.17 (RFC 9708), DER content bytes.
const HSS_LMS_OID: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x03, 0x11,
];

/// id-Ed25519, 1.3.101.112 (RFC 8410).
const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];

/// The key types `keygen --alg` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlg {
    /// ECDSA P-256 with SHA-256 (signs as COSE ESP256, -9).
    Es256,
    /// Ed25519 (signs as COSE Ed25519, -19).
    Ed25519,
    /// HSS-LMS, SHA-256/M32/N32, one level (COSE -46). Stateful: each signature uses a leaf.
    HssLms,
}

/// A private key loaded or generated on the host.
pub enum PrivateKey {
    /// P-256 or Ed25519.
    Classic(SigningKey),
    /// HSS-LMS: hbs-lms's private key, including its used-leaf state, and the public
    /// key (derived once: it takes rebuilding the whole tree).
    HssLms(hbs_lms::SigningKey<Sha256_256>, Vec<u8>),
}

/// A public key loaded on the host.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// P-256 or Ed25519.
    Classic(OwnedVerifyingKey),
    /// The serialized HSS public key (RFC 8554 §5.4: L || LMS public key).
    HssLms(Vec<u8>),
}

/// Either half of a key pair, as found in a PEM file.
pub enum AnyKey {
    /// A "PRIVATE KEY" / "EC PRIVATE KEY" file.
    Private(PrivateKey),
    /// A "PUBLIC KEY" file.
    Public(PublicKey),
}

impl PublicKey {
    /// The verifier's view of this key.
    pub fn as_verifying_key(&self) -> VerifyingKey<'_> {
        match self {
            PublicKey::Classic(k) => k.as_verifying_key(),
            PublicKey::HssLms(k) => VerifyingKey::HssLms(k),
        }
    }

    /// The COSE algorithm this tool signs with for this key type.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Classic(OwnedVerifyingKey::P256(_)) => Algorithm::Esp256,
            PublicKey::Classic(OwnedVerifyingKey::Ed25519(_)) => Algorithm::Ed25519,
            PublicKey::HssLms(_) => Algorithm::HssLms,
        }
    }

    /// A human name for the key type.
    pub fn kind(&self) -> &'static str {
        match self {
            PublicKey::Classic(OwnedVerifyingKey::P256(_)) => "P-256",
            PublicKey::Classic(OwnedVerifyingKey::Ed25519(_)) => "Ed25519",
            PublicKey::HssLms(_) => "HSS-LMS",
        }
    }

    /// The COSE_Key holding only the thumbprint's required parameters (RFC 9679 §4).
    fn thumbprint_input(&self) -> Item {
        match self {
            PublicKey::Classic(OwnedVerifyingKey::P256(k)) => {
                let point = k.to_sec1_point(false);
                let raw = point.as_bytes();
                // Uncompressed SEC1: 0x04 || x || y.
                let (x, y) = raw.get(1..).unwrap_or_default().split_at(32);
                Item::int_map([
                    (1, Item::int(2)),  // kty: EC2
                    (-1, Item::int(1)), // crv: P-256
                    (-2, Item::Bytes(x.to_vec())),
                    (-3, Item::Bytes(y.to_vec())),
                ])
            }
            PublicKey::Classic(OwnedVerifyingKey::Ed25519(k)) => Item::int_map([
                (1, Item::int(1)),  // kty: OKP
                (-1, Item::int(6)), // crv: Ed25519
                (-2, Item::Bytes(k.to_bytes().to_vec())),
            ]),
            PublicKey::HssLms(k) => Item::int_map([
                (1, Item::int(5)), // kty: HSS-LMS
                (-1, Item::Bytes(k.clone())),
            ]),
        }
    }

    /// The COSE key thumbprint (RFC 9679, SHA-256): this tool's key id, and the `kid`
    /// `sign` puts in each COSE_Sign1 it makes.
    pub fn key_id(&self) -> [u8; 32] {
        let bytes = self
            .thumbprint_input()
            .encode()
            .unwrap_or_else(|_| unreachable!("fixed distinct keys"));
        Sha256::digest(bytes).into()
    }

    /// SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        match self {
            PublicKey::Classic(OwnedVerifyingKey::P256(k)) => {
                Ok(p256::PublicKey::from(k).to_public_key_pem(LineEnding::LF)?)
            }
            PublicKey::Classic(OwnedVerifyingKey::Ed25519(k)) => {
                Ok(k.to_public_key_pem(LineEnding::LF)?)
            }
            PublicKey::HssLms(k) => {
                // SEQUENCE { SEQUENCE { OID }, BIT STRING (0 unused bits) key }
                let alg = der(0x30, &der(0x06, &HSS_LMS_OID));
                let mut bits = vec![0u8];
                bits.extend_from_slice(k);
                let spki = der(0x30, &[alg, der(0x03, &bits)].concat());
                Ok(pem::encode_string("PUBLIC KEY", LineEnding::LF, &spki)?)
            }
        }
    }
}

impl PrivateKey {
    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Classic(k) => PublicKey::Classic(k.verifying_key()),
            PrivateKey::HssLms(_, public) => PublicKey::HssLms(public.clone()),
        }
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        match self {
            PrivateKey::Classic(SigningKey::P256(k)) => {
                let sk = p256::SecretKey::from(k);
                Ok(sk.to_pkcs8_pem(LineEnding::LF)?.to_string())
            }
            PrivateKey::Classic(SigningKey::Ed25519(k)) => {
                // PKCS#8 v1 (RFC 8410 §7, first form): ed25519-dalek writes v2 with the
                // public key attached, which OpenSSL and Python's cryptography refuse.
                let alg = der(0x30, &der(0x06, &ED25519_OID));
                let seed = der(0x04, &der(0x04, k.as_bytes()));
                let body = [der(0x02, &[0]), alg, seed].concat();
                Ok(pem::encode_string(
                    "PRIVATE KEY",
                    LineEnding::LF,
                    &der(0x30, &body),
                )?)
            }
            PrivateKey::HssLms(k, _) => {
                // OneAsymmetricKey v1: SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING }
                let alg = der(0x30, &der(0x06, &HSS_LMS_OID));
                let body = [der(0x02, &[0]), alg, der(0x04, k.as_slice())].concat();
                Ok(pem::encode_string(
                    "PRIVATE KEY",
                    LineEnding::LF,
                    &der(0x30, &body),
                )?)
            }
        }
    }

    /// Signatures this key can still make (`None`: unlimited).
    pub fn signatures_left(&self) -> Option<u64> {
        match self {
            PrivateKey::Classic(_) => None,
            PrivateKey::HssLms(k, _) => Some(k.get_lifetime().unwrap_or(0)),
        }
    }

    /// Whether signing changes the key (it must then be saved before the signature is used).
    pub fn is_stateful(&self) -> bool {
        matches!(self, PrivateKey::HssLms(..))
    }

    /// A tagged COSE_Sign1 with detached payload over `payload` (the bstr-wrapped
    /// SUIT_Digest), protected header `{1: alg}`, unprotected `{4: kid}`.
    pub fn sign1(&mut self, kid: &[u8], payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            PrivateKey::Classic(k) => {
                let alg = k.default_algorithm();
                Ok(sign1_detached(k, alg, Some(kid), payload)?)
            }
            PrivateKey::HssLms(k, _) => {
                if k.get_lifetime().unwrap_or(0) == 0 {
                    bail!("HSS-LMS key exhausted: every one-time leaf has been used");
                }
                // {1: -46}
                let protected = [0xa1, 0x01, 0x38, 0x2d];
                let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
                let tbs = encode_to_be_signed(CoseKind::Sign1, &protected, payload, &mut buf)
                    .map_err(|e| anyhow!("COSE ToBeSigned: {e}"))?
                    .to_vec();
                let mut key = k.clone();
                let sig = with_big_stack(move || {
                    let sig = key.try_sign(&tbs).map(|s| s.as_ref().to_vec());
                    (key, sig)
                });
                let (key, sig) = sig?;
                let sig = sig.map_err(|_| anyhow!("HSS-LMS signing failed"))?;
                *k = key;
                let msg = Item::Tag(
                    18,
                    Box::new(Item::Array(vec![
                        Item::Bytes(protected.to_vec()),
                        Item::int_map([(4, Item::Bytes(kid.to_vec()))]),
                        Item::Null,
                        Item::Bytes(sig),
                    ])),
                );
                Ok(msg.encode()?)
            }
        }
    }
}

/// The HSS public key of a private key. hbs-lms has no accessor for it, so it is
/// regenerated from the parameters and seed the private key stores (hbs-lms 0.1.1
/// reference layout: used-leaf counter u64 ‖ one byte `lms << 4 | lmots` per level,
/// 0xff-padded to 8 ‖ 32-byte seed); the used-leaf counter does not affect it.
fn hss_public_key(k: &hbs_lms::SigningKey<Sha256_256>) -> Vec<u8> {
    let bytes = k.as_slice().to_vec();
    with_big_stack(move || hss_public_from_private(&bytes))
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn hss_public_from_private(bytes: &[u8]) -> Option<Vec<u8>> {
    let (params_raw, seed_raw) = (bytes.get(8..16)?, bytes.get(16..48)?);
    let mut params = Vec::new();
    for &p in params_raw.iter().take_while(|p| **p != 0xff) {
        let lmots = LmotsAlgorithm::from(u32::from(p & 0x0f));
        let lms = LmsAlgorithm::from(u32::from(p >> 4));
        if lmots == LmotsAlgorithm::LmotsReserved || matches!(lms, LmsAlgorithm::LmsReserved) {
            return None;
        }
        params.push(HssParameter::<Sha256_256>::new(lmots, lms));
    }
    if params.is_empty() {
        return None;
    }
    let mut seed = Seed::<Sha256_256>::default();
    seed.as_mut_slice().copy_from_slice(seed_raw);
    let (_, vk) = hbs_lms::keygen::<Sha256_256>(&params, &seed, None).ok()?;
    Some(vk.as_slice().to_vec())
}

/// hbs-lms key generation and signing recurse deeply; give them room.
fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .context("cannot start a signing thread")?
        .join()
        .map_err(|_| anyhow!("HSS-LMS operation panicked"))
}

/// Random bytes from the operating system.
fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness from the OS: {e}"))?;
    Ok(b)
}

/// A fresh key. `lms_height` is the HSS-LMS tree height (2^height signatures).
pub fn generate(alg: KeyAlg, lms_height: u8) -> anyhow::Result<PrivateKey> {
    match alg {
        KeyAlg::Es256 => loop {
            // A uniformly random scalar; the rare out-of-range value is drawn again.
            let bytes = random::<32>()?;
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                return Ok(PrivateKey::Classic(SigningKey::P256(k)));
            }
        },
        KeyAlg::Ed25519 => Ok(PrivateKey::Classic(SigningKey::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&random::<32>()?),
        ))),
        KeyAlg::HssLms => {
            let lms = match lms_height {
                5 => LmsAlgorithm::LmsH5,
                10 => LmsAlgorithm::LmsH10,
                15 => LmsAlgorithm::LmsH15,
                // hbs-lms recomputes the whole tree for each signature (no aux data
                // kept), so taller trees would take minutes per signature.
                h => bail!("LMS tree height must be 5, 10 or 15, not {h}"),
            };
            let seed_bytes = random::<32>()?;
            let (sk, vk) = with_big_stack(move || {
                let mut seed = Seed::<Sha256_256>::default();
                seed.as_mut_slice().copy_from_slice(&seed_bytes);
                let params = [HssParameter::<Sha256_256>::new(
                    LmotsAlgorithm::LmotsW4,
                    lms,
                )];
                hbs_lms::keygen::<Sha256_256>(&params, &seed, None)
            })?
            .map_err(|_| anyhow!("HSS-LMS key generation failed"))?;
            Ok(PrivateKey::HssLms(sk, vk.as_slice().to_vec()))
        }
    }
}

/// A DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one DER TLV at the start of `bytes`: `(tag, content, rest)`.
fn der_read(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (raw, rest) = rest.split_at_checked(n)?;
        (
            raw.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
            rest,
        )
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The HSS-LMS key inside a SubjectPublicKeyInfo or PKCS#8 DER, if it is one.
/// `private`: PKCS#8 (version, algorithm, OCTET STRING); else SPKI (algorithm, BIT STRING).
fn hss_der_key(der_bytes: &[u8], private: bool) -> Option<Vec<u8>> {
    let (0x30, body, []) = der_read(der_bytes)? else {
        return None;
    };
    let body = if private {
        let (0x02, [0], rest) = der_read(body)? else {
            return None;
        };
        rest
    } else {
        body
    };
    let (0x30, alg, rest) = der_read(body)? else {
        return None;
    };
    let (0x06, oid, []) = der_read(alg)? else {
        return None;
    };
    if oid != HSS_LMS_OID {
        return None;
    }
    match der_read(rest)? {
        (0x04, key, []) if private => Some(key.to_vec()),
        (0x03, [0, key @ ..], []) if !private => Some(key.to_vec()),
        _ => None,
    }
}

/// The text of a PEM file, or a clear reason it is not one.
fn read_pem(path: &Path) -> anyhow::Result<String> {
    let raw = std::fs::read(path)?;
    String::from_utf8(raw).map_err(|_| anyhow!("not a PEM key (binary file)"))
}

/// Parses PEM text as either half of a key pair.
pub fn parse_any(text: &str) -> anyhow::Result<AnyKey> {
    let (label, der_bytes) =
        pem::decode_vec(text.trim_start().as_bytes()).map_err(|_| anyhow!("not a PEM key"))?;
    match label {
        "PUBLIC KEY" => {
            if let Some(k) = hss_der_key(&der_bytes, false) {
                return Ok(AnyKey::Public(PublicKey::HssLms(k)));
            }
            verifying_key_from_pem(text)
                .map(|k| AnyKey::Public(PublicKey::Classic(k)))
                .map_err(key_error)
        }
        "PRIVATE KEY" | "EC PRIVATE KEY" => {
            if let Some(k) = hss_der_key(&der_bytes, true) {
                let sk = hbs_lms::SigningKey::<Sha256_256>::from_bytes(&k)
                    .map_err(|_| anyhow!("not a valid HSS-LMS private key"))?;
                let public = hss_public_key(&sk);
                if sk.get_lifetime().is_err() || public.is_empty() {
                    bail!("not a valid HSS-LMS private key");
                }
                return Ok(AnyKey::Private(PrivateKey::HssLms(sk, public)));
            }
            signing_key_from_pem(text)
                .map(|k| AnyKey::Private(PrivateKey::Classic(k)))
                .map_err(key_error)
        }
        other => bail!("unsupported PEM label {other:?}: want PRIVATE KEY or PUBLIC KEY"),
    }
}

fn key_error(e: KeyError) -> anyhow::Error {
    match e {
        KeyError::UnsupportedKey => anyhow!("not a P-256, Ed25519 or HSS-LMS key"),
        e => anyhow!("{e}"),
    }
}

/// Loads a private key (PKCS#8, or SEC1 for P-256).
pub fn load_private(path: &Path) -> anyhow::Result<PrivateKey> {
    let ctx = || path.display().to_string();
    match parse_any(&read_pem(path).with_context(ctx)?).with_context(ctx)? {
        AnyKey::Private(k) => Ok(k),
        AnyKey::Public(_) => Err(anyhow!(
            "this is a public key: signing needs the PRIVATE KEY"
        ))
        .with_context(ctx),
    }
}

/// Loads a public key (SubjectPublicKeyInfo).
pub fn load_public(path: &Path) -> anyhow::Result<PublicKey> {
    let ctx = || path.display().to_string();
    let text = read_pem(path).with_context(ctx)?;
    // Say "wrong half" before "wrong type": a private key of any type is the mistake.
    if let Ok((label, _)) = pem::decode_vec(text.trim_start().as_bytes())
        && label.contains("PRIVATE KEY")
    {
        return Err(anyhow!(
            "this is a private key: want a PUBLIC KEY (e.g. KEY.pub.pem)"
        ))
        .with_context(ctx);
    }
    match parse_any(&text).with_context(ctx)? {
        AnyKey::Public(k) => Ok(k),
        AnyKey::Private(_) => Err(anyhow!(
            "this is a private key: want a PUBLIC KEY (e.g. KEY.pub.pem)"
        ))
        .with_context(ctx),
    }
}

/// Loads either half of a key pair.
pub fn load_any(path: &Path) -> anyhow::Result<AnyKey> {
    let ctx = || path.display().to_string();
    parse_any(&read_pem(path).with_context(ctx)?).with_context(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_round_trip() {
        let long = vec![7u8; 300];
        let t = der(0x04, &long);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, content, rest) = der_read(&t).unwrap();
        assert_eq!((tag, content, rest), (0x04, &long[..], &[][..]));
        assert!(der_read(&t[..10]).is_none());
    }

    #[test]
    fn classic_keys_round_trip_through_pem() {
        for alg in [KeyAlg::Es256, KeyAlg::Ed25519] {
            let k = generate(alg, 10).unwrap();
            let pem = k.to_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
            let AnyKey::Private(back) = parse_any(&pem).unwrap() else {
                panic!("not private")
            };
            assert_eq!(back.public().key_id(), k.public().key_id());
            let pub_pem = k.public().to_pem().unwrap();
            let AnyKey::Public(p) = parse_any(&pub_pem).unwrap() else {
                panic!("not public")
            };
            assert_eq!(p.key_id(), k.public().key_id());
        }
    }

    #[test]
    fn thumbprint_matches_rfc9679_example() {
        // RFC 9679 §6: the EC2 P-256 key of RFC 9052 C.7.1 ("meriadoc.brandybuck").
        let x = hex::decode("65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d")
            .unwrap();
        let y = hex::decode("1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c")
            .unwrap();
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let k = PublicKey::Classic(OwnedVerifyingKey::P256(vk));
        assert_eq!(
            hex::encode(k.key_id()),
            "496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec"
        );
    }

    #[test]
    fn hss_lms_keys_round_trip_and_sign() {
        let mut k = generate(KeyAlg::HssLms, 5).unwrap();
        assert_eq!(k.signatures_left(), Some(32));
        let public = k.public();
        assert!(
            public
                .as_verifying_key()
                .accepts(CoseKind::Sign1, Algorithm::HssLms)
        );
        let AnyKey::Private(back) = parse_any(&k.to_pem().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(back.public().key_id(), public.key_id());
        let AnyKey::Public(p) = parse_any(&public.to_pem().unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(p.key_id(), public.key_id());
        let payload = b"\x82\x2f\x58\x20 a stand-in SUIT digest.........";
        let cose = k.sign1(b"kid", payload).unwrap();
        assert_eq!(k.signatures_left(), Some(31), "the key state advanced");
        let msg = suitcase_cose::CoseMessage::decode(&cose).unwrap();
        assert_eq!(msg.kid, Some(&b"kid"[..]));
        assert_eq!(public.as_verifying_key().verify(&msg, payload), Ok(()));
    }
}
