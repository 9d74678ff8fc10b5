//! The platform traits: everything the processor needs from the device, each small
//! enough to implement on a microcontroller without allocation.
//!
//! The processor holds them as trait objects in one [`Platform`] bundle: one code path
//! for every device, and no monomorphised copy of the interpreter per platform (which
//! matters for bootloader flash size).

use suitcase_cose::VerifyingKey;
use suitcase_suit::{ComponentId, VendorId};

/// The component a command acts on, as the platform sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Index in the manifest's component list.
    pub index: usize,
    /// The component identifier.
    pub id: ComponentId<'a>,
    /// The component-slot parameter, if the manifest set one: A/B devices keep two
    /// storage areas under one identifier and tell them apart by slot.
    pub slot: Option<u64>,
}

/// Which procedure is running. Some answers depend on it: for an A/B device the slot an
/// update may write is the one *not* running, the slot to validate at boot is the one
/// that is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Procedure {
    /// dependency-resolution, payload-fetch, install, validate.
    Update,
    /// validate, load, invoke.
    Invoke,
}

/// Why a storage operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The platform has no such component (or slot).
    UnknownComponent,
    /// Write past the component's capacity.
    OutOfSpace,
    /// Read past what the component holds.
    OutOfBounds,
    /// The operation is not possible on this platform (for example swap).
    Unsupported,
    /// The medium failed (flash error kind, I/O error).
    Device,
    /// The component refused what was written: its content is checked as it is finished
    /// (for example a trust store that does not verify against the current one).
    Rejected,
}

/// Component storage: where images live. [`crate::storage::MemoryStorage`] keeps them in
/// RAM for tests, [`crate::storage::FlashStorage`] on embedded-storage `NorFlash`.
pub trait ComponentStorage {
    /// Bytes the component currently holds (after a completed write: its length; for a
    /// raw flash area: its capacity).
    fn len(&mut self, target: &Target<'_>) -> Result<u64, StorageError>;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(
        &mut self,
        target: &Target<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), StorageError>;
    /// Prepares the component to receive a new image of up to `size` bytes (erases it).
    fn begin_write(&mut self, target: &Target<'_>, size: Option<u64>) -> Result<(), StorageError>;
    /// Writes the next chunk. Chunks arrive in order with no gaps; their lengths need not
    /// match the medium's write size (the implementation buffers a partial word).
    fn write(&mut self, target: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError>;
    /// Completes the write: flushes any partial word and records the length.
    fn finish_write(&mut self, target: &Target<'_>, len: u64) -> Result<(), StorageError>;
    /// Exchanges the contents of two components (swap directive).
    fn swap(&mut self, a: &Target<'_>, b: &Target<'_>) -> Result<(), StorageError> {
        let _ = (a, b);
        Err(StorageError::Unsupported)
    }
}

/// Why a fetch failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// No such resource, or this transport cannot reach the URI's scheme.
    NotFound,
    /// The transport failed mid-transfer.
    Transport,
    /// Fetching is not available at all (a bootloader without a transport).
    Unsupported,
}

/// Fetches payloads over any transport: HTTP, CoAP, serial, BLE, a file. Pull-based so
/// the processor owns the one chunk buffer and the transport never needs to hold an image.
pub trait Fetch {
    /// Opens `uri` (with the optional fetch-arguments parameter).
    fn open(&mut self, uri: &str, args: Option<&[u8]>) -> Result<(), FetchError>;
    /// Reads the next bytes of the opened resource into `buf`; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError>;
}

/// A platform that cannot fetch: every fetch of a non-integrated URI fails clearly.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFetch;

impl Fetch for NoFetch {
    fn open(&mut self, _uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        Err(FetchError::Unsupported)
    }
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, FetchError> {
        Err(FetchError::Unsupported)
    }
}

/// Who this device is: the answers to the identity and slot conditions.
pub trait DeviceIdentity {
    /// Whether `vendor` is this device's vendor for `target`.
    fn vendor_matches(&self, target: &Target<'_>, vendor: VendorId<'_>) -> bool;
    /// Whether `class` (16-byte UUID) is a class this device (component) belongs to.
    fn class_matches(&self, target: &Target<'_>, class: &[u8]) -> bool;
    /// Whether `device` (16-byte UUID) is this device.
    fn device_matches(&self, target: &Target<'_>, device: &[u8]) -> bool;
    /// Whether the component is in `slot` for this procedure (A/B: during an update, the
    /// slot that is not running; during invocation, the one to boot).
    fn slot_matches(&self, target: &Target<'_>, slot: u64, procedure: Procedure) -> bool;
}

/// A device with one vendor, class and (optionally) device UUID for all components, and
/// an A/B slot pair where `running_slot` runs.
#[derive(Debug, Clone, Copy)]
pub struct StaticIdentity {
    /// Vendor UUID.
    pub vendor: [u8; 16],
    /// Class UUID.
    pub class: [u8; 16],
    /// Device UUID, if the device has one.
    pub device: Option<[u8; 16]>,
    /// The slot the device runs from; updates go to the other one.
    pub running_slot: u64,
}

impl DeviceIdentity for StaticIdentity {
    fn vendor_matches(&self, _t: &Target<'_>, vendor: VendorId<'_>) -> bool {
        matches!(vendor, VendorId::Uuid(v) if crate::bytes::same(v, &self.vendor))
    }
    fn class_matches(&self, _t: &Target<'_>, class: &[u8]) -> bool {
        crate::bytes::same(class, &self.class)
    }
    fn device_matches(&self, _t: &Target<'_>, device: &[u8]) -> bool {
        self.device.is_some_and(|d| crate::bytes::same(&d, device))
    }
    fn slot_matches(&self, _t: &Target<'_>, slot: u64, procedure: Procedure) -> bool {
        match procedure {
            Procedure::Update => slot != self.running_slot,
            Procedure::Invoke => slot == self.running_slot,
        }
    }
}

/// A trust anchor: a key and, optionally, the COSE key id that selects it.
#[derive(Clone, Copy, Debug)]
pub struct TrustAnchor<'k> {
    /// The verification key.
    pub key: VerifyingKey<'k>,
    /// The `kid` a COSE block names to select this key; blocks without a kid are tried
    /// against every anchor whose algorithm fits.
    pub kid: Option<&'k [u8]>,
}

/// One clause of a signing policy: at least `at_least` of the anchors in the bit set
/// `anchors` (bit i = anchor i) must have produced a valid block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Anchor indices, as a bit set.
    pub anchors: u32,
    /// How many of them must sign.
    pub at_least: u8,
}

impl Rule {
    /// "Anchor i must sign."
    pub const fn required(i: u8) -> Rule {
        Rule {
            anchors: 1 << i,
            at_least: 1,
        }
    }
    /// "k of these n anchors must sign."
    pub const fn k_of(k: u8, anchors: u32) -> Rule {
        Rule {
            anchors,
            at_least: k,
        }
    }
}

/// Which manifest is being authenticated: the envelope handed to `authenticate`, or a
/// dependency reached through dependency-integrity (trust domains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role<'x> {
    /// The envelope handed to [`crate::authenticate`].
    Root,
    /// A dependency manifest.
    Dependency {
        /// Its component identifier (the dependency-prefix).
        id: ComponentId<'x>,
        /// 1 for a dependency of the root, 2 for one of that dependency, and so on.
        depth: u8,
    },
}

/// The anchors whose signatures count for a role, and the rules over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy<'r> {
    /// Bit set over [`KeyStore::anchors`]: only these anchors' verifications count.
    /// An all-zero mask refuses everything (it never means "accept anything").
    pub anchors: u32,
    /// Every rule must hold over the counted anchors (empty: any one of them).
    pub rules: &'r [Rule],
}

/// The trust anchors and the policies over them.
pub trait KeyStore {
    /// The trust anchors (at most 32: the policy addresses them by bit).
    fn anchors(&self) -> &[TrustAnchor<'_>];
    /// The root manifest's rules. Every rule must hold. An empty policy means "any one
    /// anchor".
    fn policy(&self) -> &[Rule];
    /// The policy for a role. `None` refuses manifests in that role
    /// ([`crate::AuthError::RoleNotAllowed`]). The default trusts every anchor under
    /// [`KeyStore::policy`] for the root and refuses every dependency, so a key that may
    /// sign a device's root manifest never signs a dependency by accident.
    fn policy_for(&self, role: Role<'_>) -> Option<Policy<'_>> {
        match role {
            Role::Root => Some(Policy {
                anchors: u32::MAX,
                rules: self.policy(),
            }),
            Role::Dependency { .. } => None,
        }
    }
}

/// A key store with two trust domains: the root manifest's signers (say, the device
/// operator) and the dependencies' signers (say, the firmware author), each with its own
/// anchors and rules, optionally narrowed per dependency identifier.
#[derive(Clone, Copy, Debug)]
pub struct DomainKeys<'k> {
    /// Every anchor of every domain.
    pub anchors: &'k [TrustAnchor<'k>],
    /// Who may sign the root manifest.
    pub root: Policy<'k>,
    /// Who may sign a dependency, whatever its identifier; `None` refuses dependencies.
    pub dependencies: Option<Policy<'k>>,
    /// Narrower policies per dependency: the first entry whose encoded component
    /// identifier equals the dependency's prefix wins over `dependencies`.
    pub by_id: &'k [(&'k [u8], Policy<'k>)],
}

impl KeyStore for DomainKeys<'_> {
    fn anchors(&self) -> &[TrustAnchor<'_>] {
        self.anchors
    }
    fn policy(&self) -> &[Rule] {
        self.root.rules
    }
    fn policy_for(&self, role: Role<'_>) -> Option<Policy<'_>> {
        match role {
            Role::Root => Some(self.root),
            Role::Dependency { id, .. } => self
                .by_id
                .iter()
                .find(|(encoded, _)| *encoded == id.as_bytes())
                .map(|(_, p)| *p)
                .or(self.dependencies),
        }
    }
}

/// A key store over static slices: the usual case on a device, where anchors are
/// compiled in or read from a protected flash area at boot.
#[derive(Clone, Copy, Debug)]
pub struct StaticKeys<'k> {
    /// The anchors.
    pub anchors: &'k [TrustAnchor<'k>],
    /// The rules; empty = any one anchor.
    pub rules: &'k [Rule],
}

impl KeyStore for StaticKeys<'_> {
    fn anchors(&self) -> &[TrustAnchor<'_>] {
        self.anchors
    }
    fn policy(&self) -> &[Rule] {
        self.rules
    }
}

/// Why the rollback store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackError {
    /// The medium failed.
    Device,
    /// The requested value is lower than the stored one: the store never goes back.
    WouldDecrease,
}

/// The anti-rollback counter: the highest sequence number installed.
pub trait RollbackStore {
    /// The stored sequence number.
    fn current(&mut self) -> Result<u64, RollbackError>;
    /// Records `sequence` after a fully successful install. Must never decrease, and must
    /// survive power loss (the bootloader crate stores it power-safely).
    fn advance(&mut self, sequence: u64) -> Result<(), RollbackError>;
}

/// A RAM counter, for tests and for devices that keep the counter elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryRollback(pub u64);

impl RollbackStore for MemoryRollback {
    fn current(&mut self) -> Result<u64, RollbackError> {
        Ok(self.0)
    }
    fn advance(&mut self, sequence: u64) -> Result<(), RollbackError> {
        if sequence < self.0 {
            return Err(RollbackError::WouldDecrease);
        }
        self.0 = sequence;
        Ok(())
    }
}

/// Time, for use-before.
pub trait Clock {
    /// POSIX seconds, or `None` when the device does not know the time (use-before then
    /// fails: an unknown time never passes an expiry check).
    fn now(&self) -> Option<u64>;
}

/// A device without a clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> Option<u64> {
        None
    }
}

/// Why invoke failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvokeError {
    /// The platform cannot start this component.
    Unsupported,
    /// The component refused or failed to start.
    Failed,
}

/// Hands control to a component. On a bootloader this jumps and never returns; in a
/// simulator it records the request.
pub trait Invoke {
    /// Starts `target` with the invoke-args parameter.
    fn invoke(&mut self, target: &Target<'_>, args: Option<&[u8]>) -> Result<(), InvokeError>;
}

/// A platform that never invokes (an update agent running inside the application).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInvoke;

impl Invoke for NoInvoke {
    fn invoke(&mut self, _t: &Target<'_>, _args: Option<&[u8]>) -> Result<(), InvokeError> {
        Err(InvokeError::Unsupported)
    }
}

/// The device's decryption keys (draft-ietf-suit-firmware-encryption), for payloads
/// with an encryption-info parameter. Keys are raw bytes so the trait needs no crypto
/// types and stays the same in every build; a store backed by protected flash or OTP
/// returns slices of its own copy.
///
/// A recipient that names a `kid` should get the key with that id; one that names none
/// gets the store's choice (usually its only key). A wrong key is harmless: the unwrap
/// fails its integrity check and the next recipient is tried.
pub trait DecryptionKeys {
    /// The pre-shared key-encryption key for an A128KW (16 bytes) or A256KW (32 bytes)
    /// recipient naming `kid`.
    fn kek(&self, kid: Option<&[u8]>) -> Option<&[u8]>;
    /// The device's P-256 private key (the 32-byte big-endian scalar) for an
    /// ECDH-ES+A128KW recipient naming `kid`.
    fn ecdh_private_key(&self, kid: Option<&[u8]>) -> Option<&[u8]>;
}

/// A device that holds no decryption key: every encrypted payload fails with
/// `Error::NoDecryptionKey` (or `UnsupportedParameter(19)` without the `encryption`
/// feature).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDecryptionKeys;

impl DecryptionKeys for NoDecryptionKeys {
    fn kek(&self, _kid: Option<&[u8]>) -> Option<&[u8]> {
        None
    }
    fn ecdh_private_key(&self, _kid: Option<&[u8]>) -> Option<&[u8]> {
        None
    }
}

/// A key and the `kid` it answers to.
#[derive(Clone, Copy)]
pub struct NamedKey<'k> {
    /// The key id; `None` answers to every recipient.
    pub kid: Option<&'k [u8]>,
    /// The key bytes.
    pub key: &'k [u8],
}

/// Never prints key bytes.
impl core::fmt::Debug for NamedKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NamedKey")
            .field("kid", &self.kid)
            .field("key", &"<secret>")
            .finish()
    }
}

/// Decryption keys over static slices. A recipient naming a kid gets the first key with
/// that kid, else the first key with none; a recipient naming no kid gets the first key.
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticDecryptionKeys<'k> {
    /// AES key-wrap KEKs.
    pub keks: &'k [NamedKey<'k>],
    /// P-256 private scalars for ECDH-ES.
    pub ecdh: &'k [NamedKey<'k>],
}

fn lookup<'k>(keys: &'k [NamedKey<'k>], kid: Option<&[u8]>) -> Option<&'k [u8]> {
    let found = match kid {
        Some(want) => keys
            .iter()
            .find(|k| k.kid == Some(want))
            .or_else(|| keys.iter().find(|k| k.kid.is_none())),
        None => keys.first(),
    };
    found.map(|k| k.key)
}

impl DecryptionKeys for StaticDecryptionKeys<'_> {
    fn kek(&self, kid: Option<&[u8]>) -> Option<&[u8]> {
        lookup(self.keks, kid)
    }
    fn ecdh_private_key(&self, kid: Option<&[u8]>) -> Option<&[u8]> {
        lookup(self.ecdh, kid)
    }
}

/// Most integers a version (`[+int]`) may hold: `1.2.3-rc4` style versions need four or
/// five; a longer one in a manifest fails to decode as a version and the condition aborts.
pub const MAX_VERSION_PARTS: usize = 8;

/// A component version: a list of integers (draft-ietf-suit-update-management
/// `SUIT_Condition_Version_Comparison_Value`), held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Version {
    parts: [i64; MAX_VERSION_PARTS],
    len: u8,
}

impl Version {
    /// A version from its parts; `None` for an empty list or more than
    /// [`MAX_VERSION_PARTS`].
    pub fn new(parts: &[i64]) -> Option<Version> {
        if parts.is_empty() || parts.len() > MAX_VERSION_PARTS {
            return None;
        }
        let mut v = Version::default();
        for (dst, src) in v.parts.iter_mut().zip(parts) {
            *dst = *src;
        }
        v.len = u8::try_from(parts.len()).ok()?;
        Some(v)
    }

    /// The parts.
    pub fn parts(&self) -> &[i64] {
        self.parts.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Compares part by part, the shorter list padded with zeros: `1.2` equals `1.2.0`
    /// and is below `1.2.1` (our reading; the draft compares "integer by integer").
    pub fn compare(&self, other: &Version) -> core::cmp::Ordering {
        for i in 0..MAX_VERSION_PARTS {
            let a = self.parts().get(i).copied().unwrap_or(0);
            let b = other.parts().get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                core::cmp::Ordering::Equal => {}
                o => return o,
            }
        }
        core::cmp::Ordering::Equal
    }
}

/// The device's answers to the update-management conditions and the wait directive
/// (draft-ietf-suit-update-management), used with the `update-management` feature.
///
/// Every method answers `None` when the platform *cannot* tell. The processor then aborts
/// with [`crate::Error::CannotAnswer`] rather than treating the condition as failed:
/// "cannot answer" is not "no", and a soft failure inside a try-each would otherwise
/// silently pick another branch on a device that never looked. The defaults answer
/// `None`, so a platform implements only what it can.
pub trait UpdatePolicy {
    /// The version installed in `target` (condition version, 28).
    fn installed_version(&self, target: &Target<'_>) -> Option<Version> {
        let _ = target;
        None
    }
    /// The battery level, in the unit the fleet's manifests use for minimum-battery
    /// (the draft leaves it to the profile; mWh is usual).
    fn battery_level(&self) -> Option<u64> {
        None
    }
    /// Whether an update of `target` with `priority` (the update-priority parameter,
    /// if set) may proceed now (condition update-authorized, 27).
    fn update_authorized(&self, target: &Target<'_>, priority: Option<i64>) -> Option<bool> {
        let _ = (target, priority);
        None
    }
    /// Waits for the events of the wait-info parameter (`{+ event => value}`, kept
    /// encoded) before `target` proceeds (directive wait, 29): `Some(true)` when they
    /// occurred, `Some(false)` when they did not (the directive fails).
    fn wait(&mut self, target: &Target<'_>, wait_info: &[u8]) -> Option<bool> {
        let _ = (target, wait_info);
        None
    }
    /// Records the manifest's set-version (manifest key 6) after a fully successful
    /// update, so the next version condition sees it.
    fn set_version(&mut self, version: &Version) {
        let _ = version;
    }
}

/// A platform that answers no update-management question: every such condition and
/// wait aborts with [`crate::Error::CannotAnswer`]; set-version is dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPolicy;

impl UpdatePolicy for NoPolicy {}

/// Fixed answers, for tests, simulators and dry runs. `wait` answers `Some(true)` when
/// `events_occur`, else `None`; set-version is stored in `installed`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StaticPolicy {
    /// The version of every component, and where set-version lands.
    pub installed: Option<Version>,
    /// The battery level.
    pub battery: Option<u64>,
    /// The answer to update-authorized.
    pub authorized: Option<bool>,
    /// Whether waits are answered (`true`: every event has occurred).
    pub events_occur: bool,
}

impl UpdatePolicy for StaticPolicy {
    fn installed_version(&self, _target: &Target<'_>) -> Option<Version> {
        self.installed
    }
    fn battery_level(&self) -> Option<u64> {
        self.battery
    }
    fn update_authorized(&self, _target: &Target<'_>, _priority: Option<i64>) -> Option<bool> {
        self.authorized
    }
    fn wait(&mut self, _target: &Target<'_>, _wait_info: &[u8]) -> Option<bool> {
        self.events_occur.then_some(true)
    }
    fn set_version(&mut self, version: &Version) {
        self.installed = Some(*version);
    }
}

/// Every platform service, as one bundle of trait objects.
pub struct Platform<'p> {
    /// Component storage.
    pub storage: &'p mut dyn ComponentStorage,
    /// Transport.
    pub fetch: &'p mut dyn Fetch,
    /// Identity and slot answers.
    pub identity: &'p dyn DeviceIdentity,
    /// Anti-rollback counter.
    pub rollback: &'p mut dyn RollbackStore,
    /// Time.
    pub clock: &'p dyn Clock,
    /// Invocation.
    pub invoker: &'p mut dyn Invoke,
    /// Where records of command outcomes go.
    pub reporter: &'p mut dyn crate::report::Reporter,
    /// Keys for encrypted payloads ([`NoDecryptionKeys`] when the device has none; used
    /// only with the `encryption` feature).
    pub decryption: &'p dyn DecryptionKeys,
    /// Answers to the update-management conditions ([`NoPolicy`] when the device has
    /// none; used only with the `update-management` feature).
    pub policy: &'p mut dyn UpdatePolicy,
    /// What the device lends for dependency manifests (trust domains); `None` on a
    /// device that processes none (dependency-integrity then aborts).
    pub dependencies: Option<DependencySupport<'p>>,
}

/// What the processor needs to handle dependency manifests.
pub struct DependencySupport<'p> {
    /// The anchors and per-role policies dependencies are authenticated with
    /// ([`KeyStore::policy_for`] with [`Role::Dependency`]).
    pub keys: &'p dyn KeyStore,
    /// RAM for dependency envelopes that are not integrated in the root envelope (those
    /// are used in place): each one verified during a procedure takes its length from
    /// the front, for the rest of the procedure, so that the bytes checked are the bytes
    /// run. Size it as the sum of the dependency envelopes one procedure verifies.
    pub buffer: &'p mut [u8],
}
