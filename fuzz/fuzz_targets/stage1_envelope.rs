//! The first stage's reading of a second stage's SUIT envelope on arbitrary bytes
//! (`suitcase_boot::stage`): `read_envelope` (whose manifest part the fuzzer rarely reaches:
//! the manifest digest is checked before anything else) and `read_manifest` on the input
//! taken as a manifest, so the shared-sequence and parameter reading is fuzzed directly.
//! Neither may panic or loop; without a signature the ROM key accepts, nothing is read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_boot::stage::{read_envelope, read_manifest};

fuzz_target!(|data: &[u8]| {
    let accept = |_: &[u8], sig: &[u8]| sig.len() == 64;
    let refuse = |_: &[u8], _: &[u8]| false;
    let _ = read_envelope(data, &accept);
    assert_eq!(read_envelope(data, &refuse), None);
    let _ = read_manifest(data);
});
