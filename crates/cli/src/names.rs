//! Human names for SUIT integer codes (`shared/spec/suit-codes.md` §4, §6, §8) and COSE
//! algorithms. Tables keyed by the wire code rather than by the decoder's enums, so a
//! code the decoder learns later still prints its registered name here.

use suitcase_cose::{Algorithm, CoseKind};
use suitcase_suit::DigestAlgorithm;

/// Commands (§4): conditions carry the `condition-` prefix, directives none.
const COMMANDS: &[(i64, &str)] = &[
    (1, "condition-vendor-identifier"),
    (2, "condition-class-identifier"),
    (3, "condition-image-match"),
    (4, "condition-use-before"),
    (5, "condition-component-slot"),
    (6, "condition-check-content"),
    (7, "condition-dependency-integrity"),
    (8, "condition-is-dependency"),
    (11, "process-dependency"),
    (12, "set-component-index"),
    (14, "condition-abort"),
    (15, "try-each"),
    (18, "write"),
    (19, "set-parameters"),
    (20, "override-parameters"),
    (21, "fetch"),
    (22, "copy"),
    (23, "invoke"),
    (24, "condition-device-identifier"),
    (25, "condition-image-not-match"),
    (26, "condition-minimum-battery"),
    (27, "condition-update-authorized"),
    (28, "condition-version"),
    (29, "wait"),
    (31, "swap"),
    (32, "run-sequence"),
    (33, "unlink"),
    (34, "override-multiple"),
    (35, "copy-params"),
];

/// Parameters (§6).
const PARAMETERS: &[(i64, &str)] = &[
    (1, "vendor-id"),
    (2, "class-id"),
    (3, "image-digest"),
    (4, "use-before"),
    (5, "component-slot"),
    (12, "strict-order"),
    (13, "soft-failure"),
    (14, "image-size"),
    (18, "content"),
    (19, "encryption-info"),
    (21, "uri"),
    (22, "source-component"),
    (23, "invoke-args"),
    (24, "device-id"),
    (25, "fetch-arguments"),
    (26, "minimum-battery"),
    (27, "update-priority"),
    (28, "version"),
    (29, "wait-info"),
    (30, "component-metadata"),
];

fn lookup(table: &[(i64, &'static str)], code: i64) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The name of command `code`; `custom(-N)` for private-use codes, `command(N)` otherwise.
pub fn command(code: i64) -> String {
    match lookup(COMMANDS, code) {
        Some(n) => n.to_string(),
        None if code < 0 => format!("custom({code})"),
        None => format!("command({code})"),
    }
}

/// The name of parameter `code`; `custom(-N)` for private-use codes.
pub fn parameter(code: i64) -> String {
    match lookup(PARAMETERS, code) {
        Some(n) => n.to_string(),
        None if code < 0 => format!("custom({code})"),
        None => format!("parameter({code})"),
    }
}

/// The name of a SUIT digest algorithm.
pub fn digest_algorithm(alg: DigestAlgorithm) -> &'static str {
    match alg {
        DigestAlgorithm::Sha256 => "sha-256",
        DigestAlgorithm::Shake128 => "shake128",
        DigestAlgorithm::Sha384 => "sha-384",
        DigestAlgorithm::Sha512 => "sha-512",
        DigestAlgorithm::Shake256 => "shake256",
        // The enum is non-exhaustive: a later algorithm gets a generic name.
        _ => "digest",
    }
}

/// `sha-256:<hex>`.
pub fn digest(d: &suitcase_suit::Digest<'_>) -> String {
    format!("{}:{}", digest_algorithm(d.algorithm), hex::encode(d.bytes))
}

/// The COSE name of a signature or MAC algorithm.
pub fn cose_algorithm(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Es256 => "ES256",
        Algorithm::Esp256 => "ESP256",
        Algorithm::EdDsa => "EdDSA",
        Algorithm::Ed25519 => "Ed25519",
        Algorithm::Hmac256 => "HMAC 256/256",
        Algorithm::HssLms => "HSS-LMS",
    }
}

/// `COSE_Sign1` or `COSE_Mac0`.
pub fn cose_kind(kind: CoseKind) -> &'static str {
    match kind {
        CoseKind::Sign1 => "COSE_Sign1",
        CoseKind::Mac0 => "COSE_Mac0",
    }
}

/// A 16-byte UUID in its 8-4-4-4-12 form; other lengths as plain hex.
pub fn uuid(b: &[u8]) -> String {
    let h = hex::encode(b);
    if b.len() != 16 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_code_has_a_name() {
        // suit-codes.md §4 and §6, in full.
        let commands = [
            1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
            31, 32, 33, 34, 35,
        ];
        for c in commands {
            assert!(lookup(COMMANDS, c).is_some(), "command {c}");
        }
        assert_eq!(COMMANDS.len(), commands.len());
        let params = [
            1, 2, 3, 4, 5, 12, 13, 14, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        ];
        for p in params {
            assert!(lookup(PARAMETERS, p).is_some(), "parameter {p}");
        }
        assert_eq!(PARAMETERS.len(), params.len());
    }

    #[test]
    fn names_are_unique_and_fallbacks_say_the_code() {
        for table in [COMMANDS, PARAMETERS] {
            let mut names: Vec<_> = table.iter().map(|(_, n)| *n).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), table.len());
        }
        assert_eq!(command(3), "condition-image-match");
        assert_eq!(command(-300), "custom(-300)");
        assert_eq!(command(9), "command(9)");
        assert_eq!(parameter(14), "image-size");
        assert_eq!(parameter(-257), "custom(-257)");
    }

    #[test]
    fn uuid_form() {
        let v = hex::decode("fa6b4a53d5ad5fdfbe9de663e4d41ffe").unwrap();
        assert_eq!(uuid(&v), "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe");
        assert_eq!(uuid(&[1, 2]), "0102");
    }
}
