//! The trust-store decoder and the update check on arbitrary bytes: `Store::decode`,
//! `Store::verify_genesis`, and `verify_update` against a fixed valid store (so inputs
//! that decode reach the signature counting). Nothing may panic, and nothing unsigned may
//! be accepted as an update.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use suitcase_cose::SigningKey;
use suitcase_trust::build::{KeySpec, StoreSpec, assemble, encode_body, sign};
use suitcase_trust::{Clause, Store, role};

fn current() -> &'static [u8] {
    static V1: OnceLock<Vec<u8>> = OnceLock::new();
    V1.get_or_init(|| {
        let root = SigningKey::Ed25519(suitcase_cose::ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        let spec = StoreSpec {
            version: 1,
            keys: vec![
                KeySpec::of(&root.verifying_key(), role::ROOT | role::OPERATOR),
            ],
            root_threshold: 1,
            manifest: vec![Clause { role: role::OPERATOR, k: 1, family: None }],
            dependency: None,
        };
        let body = encode_body(&spec).expect("encodes");
        let sig = sign(&body, &root, None);
        assemble(&body, &[sig])
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Store::decode(data);
    let _ = Store::verify_genesis(data);
    let cur = Store::decode(current()).expect("the fixed store decodes");
    // Only the fixed root key can sign an update, and the fuzzer does not hold it.
    assert!(cur.verify_update(data).is_err());
});
