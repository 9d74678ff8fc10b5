//! Every single-bit flip of every signed vector envelope is refused (exhaustive).
//!
//! Integrated payloads (text-keyed envelope entries) are outside the signature by
//! design: the manifest authenticates them by digest when a command uses them. Flips
//! there are checked separately: the envelope still authenticates, and the payload's
//! digest no longer matches what the manifest says.

use suitcase_processor::authenticate;
use suitcase_processor::platform::{KeyStore, StaticKeys, TrustAnchor};
use suitcase_testkit::vectors::{self, ENC, SPEC, TD};

use super::common::*;

/// Flips every bit of `bytes` and returns the positions whose flip was accepted.
fn accepted_flips(bytes: &[u8], keys: &dyn KeyStore) -> Vec<usize> {
    assert!(
        authenticate(bytes, keys).is_ok(),
        "the unflipped envelope must authenticate"
    );
    let mut copy = bytes.to_vec();
    let mut accepted = Vec::new();
    for i in 0..bytes.len() * 8 {
        copy[i / 8] ^= 1 << (i % 8);
        if authenticate(&copy, keys).is_ok() {
            accepted.push(i);
        }
        copy[i / 8] ^= 1 << (i % 8);
    }
    accepted
}

#[test]
fn spec_examples_refuse_every_bit_flip() {
    let mut total = 0;
    with_spec_key(|k| {
        for (name, _) in vectors::SIGNED_SPEC_EXAMPLES {
            let bytes = vectors::read(SPEC, name);
            total += bytes.len() * 8;
            assert_eq!(accepted_flips(&bytes, k), Vec::<usize>::new(), "{name}");
        }
    });
    assert_eq!(total, (237 + 272 + 923 + 333 + 396 + 403 + 382) * 8);
}

#[test]
fn encryption_and_trust_domain_manifests_refuse_every_bit_flip() {
    let mac_key = vectors::read(ENC, "mac-key-hmac256.bin");
    let mac = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&mac_key),
        kid: None,
    }];
    let mac = StaticKeys {
        anchors: &mac,
        rules: &[],
    };
    for name in [
        "suit-manifest-aes-kw-content.suit",
        "suit-manifest-aes-kw.suit",
        "suit-manifest-aes-kw-slot.suit",
    ] {
        assert_eq!(
            accepted_flips(&vectors::read(ENC, name), &mac),
            Vec::<usize>::new(),
            "{name}"
        );
    }
    let signing = public(ENC, "signing-public-key.pem");
    with_keys(&[&signing], &[], |k| {
        let name = "suit-manifest-es-ecdh-content.suit";
        assert_eq!(
            accepted_flips(&vectors::read(ENC, name), k),
            Vec::<usize>::new(),
            "{name}"
        );
    });
    let td = public(TD, "public_key.pem");
    with_keys(&[&td], &[], |k| {
        for name in ["example0_dependent.suit", "example1_process.suit"] {
            assert_eq!(
                accepted_flips(&vectors::read(TD, name), k),
                Vec::<usize>::new(),
                "{name}"
            );
        }
    });
}

#[test]
fn flips_in_an_integrated_entry_leave_the_named_payload_unmatched() {
    let td = public(TD, "public_key.pem");
    let bytes = vectors::read(TD, "example2_integrated.suit");
    with_keys(&[&td], &[], |k| {
        let a = authenticate(&bytes, k).unwrap();
        use sha2::Digest as _;
        let good = sha2::Sha256::digest(a.envelope().integrated("#dependent.suit").unwrap());
        let accepted = accepted_flips(&bytes, k);
        assert!(!accepted.is_empty());
        // Each accepted flip changed the integrated entry (its key or its bytes): the
        // payload the manifest names is gone or no longer has the digest the manifest
        // checks it against (dependency-integrity / image-match).
        let mut copy = bytes.clone();
        for bit in &accepted {
            copy[bit / 8] ^= 1 << (bit % 8);
            let a = authenticate(&copy, k).unwrap();
            if let Some(p) = a.envelope().integrated("#dependent.suit") {
                assert_ne!(sha2::Sha256::digest(p), good, "flip {bit}");
            }
            copy[bit / 8] ^= 1 << (bit % 8);
        }
    });
}
