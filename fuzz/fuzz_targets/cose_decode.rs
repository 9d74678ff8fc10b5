//! `CoseMessage::decode` on arbitrary bytes must never panic; whatever it
//! accepts must encode a `Sig_structure`/`MAC_structure` of exactly the length
//! `to_be_signed_len` predicts, and go through verification without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_cose::{CoseMessage, VerifyingKey, encode_to_be_signed, to_be_signed_len};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = CoseMessage::decode(data) else {
        return;
    };
    let payload = msg.payload.unwrap_or(&[]);
    let expected = to_be_signed_len(msg.kind, msg.protected.len(), payload.len());
    let mut buf = vec![0u8; expected];
    let tbs = encode_to_be_signed(msg.kind, msg.protected, payload, &mut buf)
        .expect("a buffer of to_be_signed_len bytes is enough");
    assert_eq!(tbs.len(), expected);

    // HMAC is cheap enough to run on every input; the result does not matter.
    let _ = VerifyingKey::Hmac256(b"fuzz").verify(&msg, data);
});
