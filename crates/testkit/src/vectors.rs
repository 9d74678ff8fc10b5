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
