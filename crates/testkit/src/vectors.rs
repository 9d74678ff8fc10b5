//! The published vectors, read from `shared/vectors` beside the checkout.

use std::path::PathBuf;

/// The vectors folder: `$SUITCASE_VECTORS`, else `../shared/vectors` relative to the
/// workspace root.
pub fn dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SUITCASE_VECTORS") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

/// Reads `set/name`, panicking with the path on failure (tests only need this).
pub fn read(set: &str, name: &str) -> Vec<u8> {
    let p = dir().join(set).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Reads `set/name` as text.
pub fn read_string(set: &str, name: &str) -> String {
    String::from_utf8(read(set, name)).unwrap_or_else(|e| panic!("{set}/{name}: {e}"))
}

/// The manifest-spec examples folder.
pub const SPEC: &str = "suit-manifest-spec";
/// The firmware-encryption folder.
pub const ENC: &str = "suit-firmware-encryption";
/// The trust-domains folder.
pub const TD: &str = "suit-trust-domains";

/// `exampleN.suit` of the manifest spec.
pub fn spec_example(n: u32) -> Vec<u8> {
    read(SPEC, &format!("example{n}.suit"))
}

/// The published P-256 key pair of the manifest-spec examples, as PEM.
pub fn spec_keys() -> (String, String) {
    (
        read_string(SPEC, "public_key.pem"),
        read_string(SPEC, "private_key.pem"),
    )
}

/// The signed manifest-spec envelopes, with their sequence numbers.
pub const SIGNED_SPEC_EXAMPLES: [(&str, u64); 7] = [
    ("example0.suit", 0),
    ("example1.suit", 1),
    ("example2.suit", 2),
    ("example2-severed.suit", 2),
    ("example3.suit", 3),
    ("example4.suit", 4),
    ("example5.suit", 5),
];

/// Placeholder image digest 0 of the spec examples (`0011…3210`).
pub const PLACEHOLDER_0: [u8; 32] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];

/// Placeholder image digest 1 of the spec examples (`0123…eeff`).
pub const PLACEHOLDER_1: [u8; 32] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
