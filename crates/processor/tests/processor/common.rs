//! Shared fixtures: keys, images, re-signed examples.

use std::collections::HashMap;

use suitcase_cose::{
    Algorithm, OwnedVerifyingKey, SigningKey, signing_key_from_pem, verifying_key_from_pem,
};
use suitcase_processor::platform::{Rule, StaticKeys, TrustAnchor};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors;

pub use suitcase_testkit::image;
pub use suitcase_testkit::vectors::{PLACEHOLDER_0 as P0, PLACEHOLDER_1 as P1};

pub fn spec_public() -> OwnedVerifyingKey {
    verifying_key_from_pem(&vectors::spec_keys().0).unwrap()
}

pub fn spec_private() -> SigningKey {
    signing_key_from_pem(&vectors::spec_keys().1).unwrap()
}

pub fn public(set: &str, name: &str) -> OwnedVerifyingKey {
    verifying_key_from_pem(&vectors::read_string(set, name)).unwrap()
}

/// A fresh P-256 key from a fixed seed.
pub fn p256_key(seed: u8) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes[31] = seed.max(1);
    SigningKey::P256(p256::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap())
}

/// A fresh Ed25519 key from a fixed seed.
pub fn ed25519_key(seed: u8) -> SigningKey {
    SigningKey::Ed25519(suitcase_cose::ed25519_dalek::SigningKey::from_bytes(
        &[seed; 32],
    ))
}

/// Example `n` with its placeholder digests replaced by the digests of `images`, signed
/// with the published key.
pub fn resigned(n: u32, images: &[([u8; 32], &[u8])]) -> Vec<u8> {
    rewrite(images, vec![Signer::Sign(spec_private(), Algorithm::Es256)])
        .apply(&vectors::spec_example(n))
        .unwrap()
}

pub fn rewrite(images: &[([u8; 32], &[u8])], signers: Vec<Signer>) -> Rewrite {
    Rewrite {
        images: images
            .iter()
            .map(|(d, i)| (d.to_vec(), i.to_vec()))
            .collect::<HashMap<_, _>>(),
        sequence_number: None,
        signers,
    }
}

/// Runs `f` with a key store holding `anchors` and `rules`.
pub fn with_keys<R>(
    anchors: &[&OwnedVerifyingKey],
    rules: &[Rule],
    f: impl FnOnce(&StaticKeys<'_>) -> R,
) -> R {
    let list: Vec<TrustAnchor<'_>> = anchors
        .iter()
        .map(|k| TrustAnchor {
            key: k.as_verifying_key(),
            kid: None,
        })
        .collect();
    f(&StaticKeys {
        anchors: &list,
        rules,
    })
}

/// The published key as the only anchor.
pub fn with_spec_key<R>(f: impl FnOnce(&StaticKeys<'_>) -> R) -> R {
    let k = spec_public();
    with_keys(&[&k], &[], f)
}

/// Authenticates `env` against one HMAC-256 anchor `key` and runs the update on `dev`.
pub fn mac_update(
    dev: &mut suitcase_testkit::device::MemDevice,
    env: &[u8],
    key: &[u8],
) -> Result<suitcase_processor::UpdateSummary, suitcase_processor::Error> {
    with_mac_key(key, |keys| {
        let a = suitcase_processor::authenticate(env, keys)?;
        dev.with_platform(|p| a.update(p))
    })
}

/// Authenticates `env` against one HMAC-256 anchor `key` and runs the invocation on `dev`.
pub fn mac_invoke(
    dev: &mut suitcase_testkit::device::MemDevice,
    env: &[u8],
    key: &[u8],
) -> Result<(), suitcase_processor::Error> {
    with_mac_key(key, |keys| {
        let a = suitcase_processor::authenticate(env, keys)?;
        dev.with_platform(|p| a.invoke(p))
    })
}

/// Runs `f` with a key store holding one HMAC-256 anchor.
pub fn with_mac_key<R>(key: &[u8], f: impl FnOnce(&StaticKeys<'_>) -> R) -> R {
    let anchors = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(key),
        kid: None,
    }];
    f(&StaticKeys {
        anchors: &anchors,
        rules: &[],
    })
}
