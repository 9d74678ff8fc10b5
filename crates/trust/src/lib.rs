//! The device's trust store (docs/trust-store.md): which keys it trusts, for which role,
//! and how many must agree; kept in two flash copies ([`Area`]) and replaced in the field
//! by a newer store signed by a threshold of the current root keys **and** of its own
//! ([`Store::verify_update`]). A [`Store`] is the processor's [`KeyStore`]: the manifest
//! policy for root manifests, the dependency policy for dependency manifests (trust
//! domains).
//!
//! ```text
//!  flash ──Area::load──▶ Store ──(KeyStore)──▶ authenticate / update
//!  manifest payload ──Staging──▶ Store::verify_update ──Area::commit──▶ flash
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

#[cfg(not(any(feature = "p256", feature = "ed25519", feature = "hss-lms")))]
compile_error!("suitcase-trust needs at least one key algorithm: p256, ed25519 or hss-lms");

mod area;
#[cfg(feature = "std")]
pub mod build;
mod carried;
mod decode;
mod staging;

use core::fmt;

use suitcase_cose::{Algorithm, CoseMessage, VerifyingKey};
use suitcase_processor::platform::{KeyStore, Policy, Role, Rule, TrustAnchor};

pub use area::{Area, Copy as CopyIndex, HEADER_LEN};
pub use carried::{Carried, carried, pending};
pub use staging::{Staging, TRUST_STORE_COMPONENT, UpdateCheck, staging};

/// Most keys one store holds.
pub const MAX_KEYS: usize = 16;
/// Most clauses in one policy.
pub const MAX_CLAUSES: usize = 8;

/// Role bits (docs/trust-store.md, "Roles").
pub mod role {
    /// Signs trust-store updates.
    pub const ROOT: u32 = 1;
    /// Signs root manifests.
    pub const OPERATOR: u32 = 2;
    /// Signs dependency manifests.
    pub const AUTHOR: u32 = 4;
    /// Reserved for what the server signs to devices.
    pub const REPORT: u32 = 8;
    /// Every role bit this version knows.
    pub const ALL: u32 = ROOT | OPERATOR | AUTHOR | REPORT;
}

/// Why a store was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustError {
    /// Not a well-formed signed store; the byte offset where decoding stopped.
    Decode(usize),
    /// A key's bytes are not a key of its algorithm (key index).
    BadKey(u8),
    /// More keys or clauses than this build holds.
    TooLarge,
    /// The new store's version is not above the current one.
    Rollback {
        /// The current version.
        current: u64,
        /// The offered one.
        offered: u64,
    },
    /// Fewer than the current root threshold of current root keys signed it.
    BelowCurrentThreshold {
        /// Distinct current root keys that signed.
        signed: u8,
        /// The current root threshold.
        threshold: u8,
    },
    /// Fewer than its own root threshold of its own root keys signed it.
    NewKeysDidNotSign {
        /// Distinct new root keys that signed.
        signed: u8,
        /// The new root threshold.
        threshold: u8,
    },
    /// Its root threshold or a manifest-policy clause cannot be met by keys this build
    /// verifies (or a threshold is 0).
    Unusable,
    /// A signature block is not a COSE_Sign1 this build can decode.
    Signature,
    /// Neither flash copy holds a valid store.
    NoValidCopy,
    /// The flash failed, or the area's geometry does not fit the store.
    Flash,
    /// The caller's buffer cannot hold the store.
    BufferTooSmall,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::Decode(at) => write!(f, "not a well-formed trust store (byte {at})"),
            TrustError::BadKey(i) => write!(f, "key {i} is not a key of its algorithm"),
            TrustError::TooLarge => write!(
                f,
                "more than {MAX_KEYS} keys or {MAX_CLAUSES} clauses per policy"
            ),
            TrustError::Rollback { current, offered } => write!(
                f,
                "store version {offered} is not above the current version {current}"
            ),
            TrustError::BelowCurrentThreshold { signed, threshold } => write!(
                f,
                "signed by {signed} current root keys, {threshold} required"
            ),
            TrustError::NewKeysDidNotSign { signed, threshold } => write!(
                f,
                "signed by {signed} of its own root keys, {threshold} required"
            ),
            TrustError::Unusable => f.write_str(
                "its root threshold or manifest policy cannot be met with the algorithms this build verifies",
            ),
            TrustError::Signature => f.write_str("a signature is not a COSE_Sign1"),
            TrustError::NoValidCopy => f.write_str("no valid trust store on flash"),
            TrustError::Flash => f.write_str("trust store flash failed"),
            TrustError::BufferTooSmall => f.write_str("buffer too small for the trust store"),
        }
    }
}

impl core::error::Error for TrustError {}

/// Algorithm family: what a clause's `alg` and a key's `alg` are compared by (ES256 and
/// ESP256 are one key type, as are EdDSA and Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// ECDSA P-256.
    P256,
    /// Ed25519.
    Ed25519,
    /// HSS-LMS.
    HssLms,
}

impl Family {
    /// The family of COSE algorithm `alg`; `None` for one a store cannot hold (HMAC keys
    /// are secrets, unknown values are unknown).
    pub fn of(alg: i64) -> Option<Family> {
        match Algorithm::from_cose(alg)? {
            Algorithm::Es256 | Algorithm::Esp256 => Some(Family::P256),
            Algorithm::EdDsa | Algorithm::Ed25519 => Some(Family::Ed25519),
            Algorithm::HssLms => Some(Family::HssLms),
            Algorithm::Hmac256 => None,
        }
    }
}

/// One key of a store.
#[derive(Clone, Copy, Debug)]
pub struct Key<'b> {
    /// Its algorithm family.
    pub family: Family,
    /// Role bits.
    pub roles: u32,
    /// The encoded public key.
    pub public: &'b [u8],
    /// Its COSE key id, if the store names one.
    pub kid: Option<&'b [u8]>,
    /// Index into [`KeyStore::anchors`], when this build verifies the algorithm.
    pub anchor: Option<u8>,
}

/// One policy clause: at least `k` distinct keys with `role` (and `family`) signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clause {
    /// The role bit.
    pub role: u32,
    /// How many.
    pub k: u8,
    /// Only keys of this family count, if given.
    pub family: Option<Family>,
}

/// A decoded trust store, borrowing the signed bytes. Holds the parsed keys as trust
/// anchors and the policies as processor rules.
#[derive(Clone, Debug)]
pub struct Store<'b> {
    signed: &'b [u8],
    body: &'b [u8],
    signatures: &'b [u8],
    version: u64,
    keys: [Option<Key<'b>>; MAX_KEYS],
    /// The anchors of the keys this build verifies, in key order: the `KeyStore` slice is
    /// the first `anchor_count`; the rest repeat the first and no policy bit names them.
    packed: [TrustAnchor<'b>; MAX_KEYS],
    anchor_count: usize,
    root_threshold: u8,
    manifest: Rules,
    dependency: Option<Rules>,
}

/// A policy compiled to processor rules over anchor bits.
#[derive(Clone, Copy, Debug)]
struct Rules {
    rules: [Rule; MAX_CLAUSES],
    len: usize,
    mask: u32,
}

impl Rules {
    fn as_policy(&self) -> Policy<'_> {
        Policy {
            anchors: self.mask,
            rules: self.rules.get(..self.len).unwrap_or(&[]),
        }
    }
}

impl<'b> Store<'b> {
    /// Decodes a signed store and parses its keys. Checks structure and usability, not
    /// signatures: a store read back from its flash area was verified when it was
    /// installed (use [`Store::verify_update`] for a new one, [`Store::verify_genesis`] to
    /// provision).
    pub fn decode(signed: &'b [u8]) -> Result<Store<'b>, TrustError> {
        let raw = decode::signed_store(signed)?;
        let mut keys = [None; MAX_KEYS];
        let mut anchors = [None; MAX_KEYS];
        let mut anchor_count = 0usize;
        for (i, k) in raw.keys.iter().enumerate() {
            let Some(k) = k else { continue };
            let verifying =
                parse_key(k.family, k.public).map_err(|()| TrustError::BadKey(i as u8))?;
            let anchor = match verifying {
                Some(key) => {
                    let slot = anchors.get_mut(anchor_count).ok_or(TrustError::TooLarge)?;
                    *slot = Some(TrustAnchor { key, kid: k.kid });
                    anchor_count += 1;
                    Some((anchor_count - 1) as u8)
                }
                None => None,
            };
            if let Some(slot) = keys.get_mut(i) {
                *slot = Some(Key {
                    family: k.family,
                    roles: k.roles,
                    public: k.public,
                    kid: k.kid,
                    anchor,
                });
            }
        }
        let first = anchors
            .iter()
            .flatten()
            .next()
            .copied()
            .ok_or(TrustError::Unusable)?;
        let packed = core::array::from_fn(|i| anchors.get(i).copied().flatten().unwrap_or(first));
        let mut store = Store {
            signed,
            body: raw.body,
            signatures: raw.signatures,
            version: raw.version,
            keys,
            packed,
            anchor_count,
            root_threshold: raw.root_threshold,
            manifest: Rules {
                rules: [Rule::k_of(0, 0); MAX_CLAUSES],
                len: 0,
                mask: 0,
            },
            dependency: None,
        };
        store.manifest = store.compile(&raw.manifest)?;
        store.dependency = match &raw.dependency {
            Some(c) => Some(store.compile(c)?),
            None => None,
        };
        // Usable: the root threshold and every manifest clause can be met by keys this
        // build verifies.
        let roots = store.mask(role::ROOT, None).count_ones();
        if store.root_threshold == 0 || u32::from(store.root_threshold) > roots {
            return Err(TrustError::Unusable);
        }
        if store.manifest.len == 0
            || store
                .manifest
                .rules
                .iter()
                .take(store.manifest.len)
                .any(|r| r.at_least == 0 || u32::from(r.at_least) > r.anchors.count_ones())
        {
            return Err(TrustError::Unusable);
        }
        Ok(store)
    }

    fn compile(&self, clauses: &decode::Clauses) -> Result<Rules, TrustError> {
        let mut out = Rules {
            rules: [Rule::k_of(0, 0); MAX_CLAUSES],
            len: 0,
            mask: 0,
        };
        for c in clauses.iter() {
            let slot = out.rules.get_mut(out.len).ok_or(TrustError::TooLarge)?;
            let anchors = self.mask(c.role, c.family);
            *slot = Rule::k_of(c.k, anchors);
            out.mask |= anchors;
            out.len += 1;
        }
        Ok(out)
    }

    /// Anchor bits of the keys holding `role` (and of `family`).
    fn mask(&self, role: u32, family: Option<Family>) -> u32 {
        self.keys
            .iter()
            .flatten()
            .filter(|k| k.roles & role != 0 && family.is_none_or(|f| f == k.family))
            .filter_map(|k| k.anchor)
            .fold(0, |m, a| m | (1 << a))
    }

    /// The store's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The signed bytes this store was decoded from.
    pub fn as_bytes(&self) -> &'b [u8] {
        self.signed
    }

    /// The keys, in store order.
    pub fn keys(&self) -> impl Iterator<Item = &Key<'b>> {
        self.keys.iter().flatten()
    }

    /// The root threshold.
    pub fn root_threshold(&self) -> u8 {
        self.root_threshold
    }

    /// How many distinct keys of `store` holding the root role signed this store's body.
    fn root_signers(&self, store: &Store<'_>) -> Result<u8, TrustError> {
        let mask = store.mask(role::ROOT, None);
        let mut signed = 0u32;
        for block in decode::blocks(self.signatures) {
            let msg = CoseMessage::decode(block).map_err(|_| TrustError::Signature)?;
            for (i, a) in store.packed.iter().enumerate().take(store.anchor_count) {
                if mask & (1 << i) == 0 || signed & (1 << i) != 0 {
                    continue;
                }
                if let (Some(want), Some(got)) = (a.kid, msg.kid)
                    && want != got
                {
                    continue;
                }
                if a.key.accepts(msg.kind, msg.alg) && a.key.verify(&msg, self.body).is_ok() {
                    signed |= 1 << i;
                }
            }
        }
        Ok(signed.count_ones() as u8)
    }

    /// Checks a first store (provisioning, the factory): it must be signed by its own root
    /// threshold.
    pub fn verify_genesis(signed: &'b [u8]) -> Result<Store<'b>, TrustError> {
        let new = Store::decode(signed)?;
        let n = new.root_signers(&new)?;
        if n < new.root_threshold {
            return Err(TrustError::NewKeysDidNotSign {
                signed: n,
                threshold: new.root_threshold,
            });
        }
        Ok(new)
    }

    /// Accepts `new` to replace this store (docs/trust-store.md, "Accepting a new store"):
    /// newer, signed by this store's root threshold and by its own.
    pub fn verify_update<'n>(&self, new: &'n [u8]) -> Result<Store<'n>, TrustError> {
        let new = Store::decode(new)?;
        if new.version <= self.version {
            return Err(TrustError::Rollback {
                current: self.version,
                offered: new.version,
            });
        }
        let by_current = new.root_signers(self)?;
        if by_current < self.root_threshold {
            return Err(TrustError::BelowCurrentThreshold {
                signed: by_current,
                threshold: self.root_threshold,
            });
        }
        let by_new = new.root_signers(&new)?;
        if by_new < new.root_threshold {
            return Err(TrustError::NewKeysDidNotSign {
                signed: by_new,
                threshold: new.root_threshold,
            });
        }
        Ok(new)
    }
}

impl KeyStore for Store<'_> {
    fn anchors(&self) -> &[TrustAnchor<'_>] {
        self.packed.get(..self.anchor_count).unwrap_or(&[])
    }
    fn policy(&self) -> &[Rule] {
        self.manifest.rules.get(..self.manifest.len).unwrap_or(&[])
    }
    fn policy_for(&self, role: Role<'_>) -> Option<Policy<'_>> {
        match role {
            Role::Root => Some(self.manifest.as_policy()),
            Role::Dependency { .. } => self.dependency.as_ref().map(Rules::as_policy),
        }
    }
}

/// The verifying key for `public` in `family`; `Ok(None)` when this build lacks the
/// algorithm (the key is kept and counts for nothing), `Err` when the bytes are not a key.
#[allow(clippy::unnecessary_wraps)]
fn parse_key(family: Family, public: &[u8]) -> Result<Option<VerifyingKey<'_>>, ()> {
    match family {
        #[cfg(feature = "p256")]
        Family::P256 => suitcase_cose::p256::ecdsa::VerifyingKey::from_sec1_bytes(public)
            .map(|k| Some(VerifyingKey::P256(k)))
            .map_err(|_| ()),
        #[cfg(feature = "ed25519")]
        Family::Ed25519 => {
            let bytes: &[u8; 32] = public.try_into().map_err(|_| ())?;
            suitcase_cose::ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map(|k| Some(VerifyingKey::Ed25519(k)))
                .map_err(|_| ())
        }
        #[cfg(feature = "hss-lms")]
        Family::HssLms => {
            if public.len() == 60 {
                Ok(Some(VerifyingKey::HssLms(public)))
            } else {
                Err(())
            }
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = public;
            Ok(None)
        }
    }
}
