//! The first stage's reading of a second-stage envelope (`suitcase_boot::stage::
//! read_envelope`) on arbitrary bytes: it must never panic, and, with a verifier that
//! accepts every signature (so the fuzzer gets past the signature to the manifest), what
//! it returns must be what the manifest holds: an image digest of 32 bytes (by type) and
//! a size and version that fit 32 bits (by type) — the reading itself must not loop or
//! read out of bounds, which the sanitizer checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_boot::stage::read_envelope;

fuzz_target!(|data: &[u8]| {
    let accept = |_: &[u8], sig: &[u8]| sig.len() == 64;
    let refuse = |_: &[u8], _: &[u8]| false;
    let _ = read_envelope(data, &accept);
    // Without a signature the ROM key accepts, nothing is ever read.
    assert_eq!(read_envelope(data, &refuse), None);
});
