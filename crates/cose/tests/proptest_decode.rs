//! Property tests: hostile bytes never panic the decoder or verifier, and no
//! length-preserving corruption of a real COSE_Sign1 (or its payload) verifies.

use minicbor::Decoder;
use proptest::prelude::*;
use suitcase_cose::{CoseError, CoseMessage, VerifyingKey, ed25519_dalek, verifying_key_from_pem};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/");

/// example0's COSE_Sign1 and its detached payload (the bytes inside `auth[0]`).
fn example0() -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(format!("{VECTORS}suit-manifest-spec/example0.suit")).unwrap();
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.tag().unwrap().as_u64(), 107);
    d.map().unwrap();
    assert_eq!(d.u64().unwrap(), 2);
    let auth = d.bytes().unwrap();
    let mut a = Decoder::new(auth);
    assert_eq!(a.array().unwrap(), Some(2));
    let payload = a.bytes().unwrap().to_vec();
    let cose = a.bytes().unwrap().to_vec();
    (cose, payload)
}

fn key() -> suitcase_cose::OwnedVerifyingKey {
    let pem =
        std::fs::read_to_string(format!("{VECTORS}suit-manifest-spec/public_key.pem")).unwrap();
    verifying_key_from_pem(&pem).unwrap()
}

/// Every kind of key, so a decoded message reaches each verification path.
fn try_all_keys(msg: &CoseMessage<'_>, payload: &[u8]) {
    let p256 = key();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
    for k in [
        p256.as_verifying_key(),
        VerifyingKey::Ed25519(ed),
        VerifyingKey::Hmac256(&[1; 32]),
    ] {
        // Random input cannot carry a valid signature or MAC; anything else is a bug.
        assert!(k.verify(msg, payload).is_err());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(msg) = CoseMessage::decode(&bytes) {
            try_all_keys(&msg, b"");
        }
    }

    /// Random tails after a plausible prefix reach the header and payload parsing.
    #[test]
    fn arbitrary_tails_never_panic(
        tag in prop_oneof![Just(0xd1u8), Just(0xd2u8)],
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![tag, 0x84];
        bytes.extend_from_slice(&tail);
        if let Ok(msg) = CoseMessage::decode(&bytes) {
            try_all_keys(&msg, b"payload");
        }
    }

    #[test]
    fn mutated_sign1_never_verifies(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let (original, payload) = example0();
        let mut cose = original.clone();
        for (index, xor) in &edits {
            let i = index.index(cose.len());
            cose[i] ^= xor;
        }
        prop_assume!(cose != original);
        let k = key();
        match CoseMessage::decode(&cose) {
            Ok(msg) => prop_assert!(k.as_verifying_key().verify(&msg, &payload).is_err()),
            Err(e) => prop_assert_ne!(e, CoseError::SignatureInvalid),
        }
    }

    #[test]
    fn mutated_payload_never_verifies(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let (cose, original) = example0();
        let mut payload = original.clone();
        for (index, xor) in &edits {
            let i = index.index(payload.len());
            payload[i] ^= xor;
        }
        prop_assume!(payload != original);
        let msg = CoseMessage::decode(&cose).unwrap();
        prop_assert_eq!(
            key().as_verifying_key().verify(&msg, &payload),
            Err(CoseError::SignatureInvalid)
        );
    }
}

#[test]
fn unmutated_example0_verifies() {
    // Guards the properties above against vacuous truth.
    let (cose, payload) = example0();
    let msg = CoseMessage::decode(&cose).unwrap();
    assert_eq!(key().as_verifying_key().verify(&msg, &payload), Ok(()));
}
