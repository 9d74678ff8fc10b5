//! COSE algorithm identifiers used for SUIT authentication.

/// A COSE signature or MAC algorithm this crate can name.
///
/// Both the polymorphic IDs still found in the wild (-7 ES256, -8 EdDSA) and the
/// fully-specified IDs of the SUIT MTI profiles (-9 ESP256, -19 Ed25519) are listed,
/// because the manifest-spec examples use -7 while newer drafts use -9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ES256: ECDSA with SHA-256 (polymorphic curve, P-256 in practice), COSE -7.
    Es256,
    /// ESP256: ECDSA on P-256 with SHA-256 (fully specified), COSE -9.
    Esp256,
    /// EdDSA (polymorphic, Ed25519 in practice), COSE -8.
    EdDsa,
    /// Ed25519 (fully specified), COSE -19.
    Ed25519,
    /// HMAC with SHA-256, 256-bit tag (HMAC 256/256), COSE 5.
    Hmac256,
    /// HSS-LMS hash-based signature (RFC 8778), COSE -46.
    HssLms,
}

impl Algorithm {
    /// Map a COSE algorithm ID to an [`Algorithm`]; `None` for anything we cannot verify,
    /// so unknown IDs can be reported rather than guessed at.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            -7 => Some(Self::Es256),
            -9 => Some(Self::Esp256),
            -8 => Some(Self::EdDsa),
            -19 => Some(Self::Ed25519),
            5 => Some(Self::Hmac256),
            -46 => Some(Self::HssLms),
            _ => None,
        }
    }

    /// The COSE algorithm ID, as it appears in the `alg` (label 1) header.
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Esp256 => -9,
            Self::EdDsa => -8,
            Self::Ed25519 => -19,
            Self::Hmac256 => 5,
            Self::HssLms => -46,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Algorithm;

    #[test]
    fn ids_round_trip() {
        for alg in [
            Algorithm::Es256,
            Algorithm::Esp256,
            Algorithm::EdDsa,
            Algorithm::Ed25519,
            Algorithm::Hmac256,
            Algorithm::HssLms,
        ] {
            assert_eq!(Algorithm::from_cose(alg.cose_id()), Some(alg));
        }
        assert_eq!(Algorithm::from_cose(-7), Some(Algorithm::Es256));
        assert_eq!(Algorithm::from_cose(-35), None); // ES384: not a SUIT profile
        assert_eq!(Algorithm::from_cose(0), None);
    }
}
