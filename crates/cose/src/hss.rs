//! Structural pre-validation of HSS-LMS keys and signatures (RFC 8554 §4.5, §5.3, §5.4, §6).
//!
//! hbs-lms 0.1.1 parses with unchecked slicing, `unwrap` and fixed-capacity `push`, so a
//! truncated or hostile signature (e.g. a huge level count, an unknown typecode) panics
//! inside it. We therefore check every typecode, the level count, the leaf index and
//! the exact length here, and only hand hbs-lms input whose layout is known to be
//! consistent. Only the SHA-256/M32/N32 parameter sets are accepted: they are what
//! hbs-lms verifies with `Sha256_256`, and what the SUIT HSS-LMS profile uses.

/// Hash output size n = m = 32 (SHA-256/256).
const N: usize = 32;
/// Serialized LMS public key: type || otstype || I[16] || T1[m].
const LMS_PUBLIC_KEY_LEN: usize = 4 + 4 + 16 + N;
/// Serialized HSS public key: L || LMS public key.
const HSS_PUBLIC_KEY_LEN: usize = 4 + LMS_PUBLIC_KEY_LEN;
/// RFC 8554 allows 1 ..= 8 HSS levels.
const MAX_LEVELS: u32 = 8;

/// Tree height for an LMS typecode (LMS_SHA256_M32_H5 .. H25).
fn lms_height(typecode: u32) -> Option<usize> {
    match typecode {
        5 => Some(5),
        6 => Some(10),
        7 => Some(15),
        8 => Some(20),
        9 => Some(25),
        _ => None,
    }
}

/// Number of hash chains p for an LM-OTS typecode (LMOTS_SHA256_N32_W1 .. W8).
fn lmots_chains(typecode: u32) -> Option<usize> {
    match typecode {
        1 => Some(265),
        2 => Some(133),
        3 => Some(67),
        4 => Some(34),
        _ => None,
    }
}

/// Big-endian u32 at `at`, if the bytes are there.
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

/// Check a trusted HSS public key; returns its level count L.
pub(crate) fn public_key_levels(public_key: &[u8]) -> Option<u32> {
    if public_key.len() != HSS_PUBLIC_KEY_LEN {
        return None;
    }
    let levels = read_u32(public_key, 0)?;
    if !(1..=MAX_LEVELS).contains(&levels) {
        return None;
    }
    lms_height(read_u32(public_key, 4)?)?;
    lmots_chains(read_u32(public_key, 8)?)?;
    Some(levels)
}

/// Length of the LMS signature starting at `at`, if it is well-formed and present.
fn lms_signature_len(sig: &[u8], at: usize) -> Option<usize> {
    let leaf = read_u32(sig, at)?;
    let chains = lmots_chains(read_u32(sig, at.checked_add(4)?)?)?;
    // LM-OTS signature: otstype || C[n] || y[p][n].
    let ots_len = 4 + N + chains * N;
    let height = lms_height(read_u32(sig, at.checked_add(4 + ots_len)?)?)?;
    if u64::from(leaf) >= 1u64 << height {
        return None;
    }
    // q || LM-OTS signature || type || path[h][m].
    let len = 4 + ots_len + 4 + height * N;
    (at.checked_add(len)? <= sig.len()).then_some(len)
}

/// Whether `sig` is a well-formed HSS signature for a key with `levels` levels, with
/// nothing left over. Says nothing about validity; that is hbs-lms's job.
pub(crate) fn signature_well_formed(sig: &[u8], levels: u32) -> bool {
    well_formed(sig, levels).is_some()
}

fn well_formed(sig: &[u8], levels: u32) -> Option<()> {
    // Nspk = L - 1 signed public keys precede the final LMS signature.
    let signed_keys = read_u32(sig, 0)?;
    if signed_keys.checked_add(1)? != levels {
        return None;
    }
    let mut at = 4usize;
    for _ in 0..signed_keys {
        at = at.checked_add(lms_signature_len(sig, at)?)?;
        lms_height(read_u32(sig, at)?)?;
        lmots_chains(read_u32(sig, at.checked_add(4)?)?)?;
        at = at.checked_add(LMS_PUBLIC_KEY_LEN)?;
        if at > sig.len() {
            return None;
        }
    }
    at = at.checked_add(lms_signature_len(sig, at)?)?;
    (at == sig.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A structurally valid single-level signature (H5 / W8), all hash bytes zero.
    fn one_level_sig(leaf: u32) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&0u32.to_be_bytes()); // Nspk
        s.extend_from_slice(&leaf.to_be_bytes()); // q
        s.extend_from_slice(&4u32.to_be_bytes()); // LMOTS W8
        s.resize(s.len() + N + 34 * N, 0); // C, y
        s.extend_from_slice(&5u32.to_be_bytes()); // LMS H5
        s.resize(s.len() + 5 * N, 0); // path
        s
    }

    #[test]
    fn structure_checks() {
        let sig = one_level_sig(31);
        assert!(signature_well_formed(&sig, 1));
        assert!(!signature_well_formed(&sig, 2), "Nspk must be L-1");
        assert!(
            !signature_well_formed(&one_level_sig(32), 1),
            "leaf beyond 2^h"
        );
        assert!(!signature_well_formed(&sig[..sig.len() - 1], 1), "short");
        let mut long = sig.clone();
        long.push(0);
        assert!(!signature_well_formed(&long, 1), "trailing");
        let mut bad_type = sig.clone();
        bad_type[11] = 9; // LM-OTS typecode 9 does not exist
        assert!(!signature_well_formed(&bad_type, 1));
        let mut huge_levels = sig;
        huge_levels[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(!signature_well_formed(&huge_levels, u32::MAX));
        for cut in 0..40 {
            assert!(!signature_well_formed(&one_level_sig(0)[..cut], 1));
        }
    }

    #[test]
    fn public_key_checks() {
        let mut pk = Vec::new();
        pk.extend_from_slice(&1u32.to_be_bytes());
        pk.extend_from_slice(&5u32.to_be_bytes());
        pk.extend_from_slice(&3u32.to_be_bytes());
        pk.resize(HSS_PUBLIC_KEY_LEN, 0);
        assert_eq!(public_key_levels(&pk), Some(1));
        assert_eq!(public_key_levels(&pk[..59]), None);
        pk[3] = 0;
        assert_eq!(public_key_levels(&pk), None, "L = 0");
        pk[3] = 9;
        assert_eq!(public_key_levels(&pk), None, "L = 9");
        pk[3] = 2;
        pk[7] = 4; // LMS typecode 4 (not SHA-256/M32)
        assert_eq!(public_key_levels(&pk), None);
    }
}
