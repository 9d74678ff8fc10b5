//! Authentication: the manifest digest, the COSE blocks against the trust anchors and
//! their policy, and the digests of carried severed members. Nothing of the manifest is
//! decoded before the signature check passes (draft-ietf-suit-manifest §6.2).

use sha2::{Digest as _, Sha256};
use suitcase_cose::{CoseError, CoseMessage};
use suitcase_suit::{DigestAlgorithm, Envelope, Manifest, Resolved, SeverableKind};

use crate::error::{AuthError, Error};
use crate::platform::{KeyStore, Role};

/// An envelope whose manifest is authentic. Only [`authenticate`] makes one, so holding
/// one is the proof that every later step acts on signed data (the typestate replaces a
/// "verified" flag that could be forgotten).
#[derive(Clone, Copy, Debug)]
pub struct Authenticated<'a> {
    envelope: Envelope<'a>,
    manifest: Manifest<'a>,
    signers: u32,
}

impl<'a> Authenticated<'a> {
    /// The envelope.
    pub fn envelope(&self) -> &Envelope<'a> {
        &self.envelope
    }
    /// The decoded, authenticated manifest.
    pub fn manifest(&self) -> &Manifest<'a> {
        &self.manifest
    }
    /// Bit set of the trust anchors whose blocks verified (and count for the role).
    pub fn signers(&self) -> u32 {
        self.signers
    }
    /// The manifest digest the wrapper records, checked against the manifest bytes: what
    /// a dependent's image-digest names.
    pub fn manifest_digest(&self) -> &'a [u8] {
        self.envelope.auth.digest.bytes
    }
}

/// Whether `bytes` hash to `digest` (SHA-256 only: the one algorithm the spec requires).
pub(crate) fn digest_matches(
    digest: &suitcase_suit::Digest<'_>,
    bytes: &[u8],
) -> Result<bool, Error> {
    match digest.algorithm {
        DigestAlgorithm::Sha256 => Ok(crate::bytes::same(&Sha256::digest(bytes), digest.bytes)),
        _ => Err(Error::UnsupportedDigest),
    }
}

/// Decodes `bytes` as an envelope and authenticates it against `keys`.
///
/// Steps, in order: shallow decode; manifest digest; every COSE block against every
/// anchor it may name; the policy; only then the manifest decode; then the digest of
/// every severed member the envelope carries.
pub fn authenticate<'a>(bytes: &'a [u8], keys: &dyn KeyStore) -> Result<Authenticated<'a>, Error> {
    authenticate_as(bytes, keys, Role::Root)
}

/// [`authenticate`] for a manifest in `role`: only the anchors of
/// [`KeyStore::policy_for`]`(role)` count, under that policy's rules.
pub fn authenticate_as<'a>(
    bytes: &'a [u8],
    keys: &dyn KeyStore,
    role: Role<'_>,
) -> Result<Authenticated<'a>, Error> {
    let policy = keys.policy_for(role).ok_or(AuthError::RoleNotAllowed)?;
    let envelope = Envelope::decode(bytes)?;
    let auth = envelope.auth;
    match digest_matches(&auth.digest, envelope.manifest_bytes) {
        Ok(true) => {}
        Ok(false) => return Err(AuthError::ManifestDigestMismatch.into()),
        Err(_) => return Err(AuthError::UnsupportedDigest.into()),
    }
    if auth.block_count() == 0 {
        return Err(AuthError::NoSignature.into());
    }
    let signers = verify_blocks(&envelope, keys)? & policy.anchors;
    if !policy_satisfied(signers, policy.rules) {
        return Err(AuthError::PolicyNotSatisfied.into());
    }
    finish(envelope, signers)
}

/// Decodes again an envelope that [`authenticate_as`] accepted, from the same bytes
/// (immutably borrowed since, so they cannot have changed): the manifest decode and the
/// severed-member digests, without the signatures. For dependencies: verified once by
/// dependency-integrity, run by process-dependency.
#[cfg(feature = "trust-domains")]
pub(crate) fn reopen(bytes: &[u8], signers: u32) -> Result<Authenticated<'_>, Error> {
    finish(Envelope::decode(bytes)?, signers)
}

fn finish(envelope: Envelope<'_>, signers: u32) -> Result<Authenticated<'_>, Error> {
    // The manifest is decoded where it stays: moving it out of a `Result` and into the
    // struct is a `memcpy` of a few hundred bytes each on a microcontroller.
    let mut a = Authenticated {
        envelope,
        manifest: Manifest::default(),
        signers,
    };
    a.envelope.manifest_into(&mut a.manifest)?;
    for kind in SeverableKind::ALL {
        if let Resolved::Severed {
            digest,
            value: Some(w),
        } = a.envelope.resolve(&a.manifest, kind)
        {
            let ok = digest_matches(&digest, w.whole).map_err(|_| AuthError::UnsupportedDigest)?;
            if !ok {
                return Err(AuthError::SeveredDigestMismatch(kind).into());
            }
        }
    }
    Ok(a)
}

/// The bit set of anchors that verified at least one block. A block in an algorithm
/// this build lacks is passed over (it may be meant for another verifier); a malformed
/// block refuses the envelope.
fn verify_blocks(envelope: &Envelope<'_>, keys: &dyn KeyStore) -> Result<u32, Error> {
    let anchors = keys.anchors();
    let mut signers = 0u32;
    for block in envelope.auth.blocks() {
        let msg = match CoseMessage::decode(block) {
            Ok(m) => m,
            // An algorithm or message type (COSE_Sign, COSE_Mac) this build does not
            // verify: another verifier's block; it counts for nothing here.
            Err(CoseError::UnsupportedAlgorithm(_) | CoseError::UnsupportedMessage(_)) => continue,
            Err(e) => return Err(AuthError::Cose(e).into()),
        };
        for (i, anchor) in anchors.iter().enumerate().take(32) {
            if let (Some(want), Some(got)) = (anchor.kid, msg.kid)
                && want != got
            {
                continue;
            }
            if !anchor.key.accepts(msg.kind, msg.alg) {
                continue;
            }
            if anchor
                .key
                .verify(&msg, envelope.auth.signed_payload)
                .is_ok()
            {
                signers |= 1 << i;
            }
        }
    }
    Ok(signers)
}

/// Every rule must hold; and whatever the rules say, at least one anchor must have
/// signed (an all-zero policy must not turn into "accept anything").
pub(crate) fn policy_satisfied(signers: u32, rules: &[crate::platform::Rule]) -> bool {
    signers != 0
        && rules
            .iter()
            .all(|r| (signers & r.anchors).count_ones() >= u32::from(r.at_least))
}
