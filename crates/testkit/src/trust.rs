//! Trust-store fixtures shared by the trust store's tests and the fleet server's: keys,
//! stores signed by chosen root holders, update manifests that may carry a store, and a
//! simulated device that holds its store in two flash copies and runs the device's own
//! agent steps (authenticate with the store, update with staging, commit the store after
//! success).

use ciborium::Value;
use sha2::{Digest as _, Sha256};
use suitcase_cose::{SigningKey, sign1_detached};
use suitcase_flash_sim::{Geometry, Options, SimFlash};
use suitcase_processor::platform::{
    MemoryRollback, NoClock, NoDecryptionKeys, NoFetch, NoInvoke, NoPolicy, StaticIdentity,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::{Error, Platform, authenticate};
use suitcase_trust::build::{KeySpec, StoreSpec, assemble, encode_body, sign};
use suitcase_trust::{Area, Clause, Family, role};

use crate::build::{bytes, encode, int, manifest, params, seq, wrap};
use crate::resign::bstr_encoding;

/// A P-256 test key from a seed (a valid scalar for every seed).
pub fn p256(seed: u8) -> SigningKey {
    let mut b = [0u8; 32];
    b[0] = 1;
    b[31] = seed;
    match suitcase_cose::p256::ecdsa::SigningKey::from_bytes(&b.into()) {
        Ok(k) => SigningKey::P256(k),
        Err(_) => unreachable!("1 << 248 | seed is below the group order"),
    }
}

/// An Ed25519 test key from a seed.
pub fn ed(seed: u8) -> SigningKey {
    SigningKey::Ed25519(suitcase_cose::ed25519_dalek::SigningKey::from_bytes(
        &[seed; 32],
    ))
}

/// `k`'s public key with `roles`.
pub fn spec_key(k: &SigningKey, roles: u32) -> KeySpec {
    KeySpec::of(&k.verifying_key(), roles)
}

/// A policy clause: `k` signatures by keys of `role`, any algorithm.
pub fn clause(role: u32, k: u8) -> Clause {
    Clause {
        role,
        k,
        family: None,
    }
}

/// A policy clause restricted to one algorithm family.
pub fn clause_of(role: u32, k: u8, family: Family) -> Clause {
    Clause {
        role,
        k,
        family: Some(family),
    }
}

/// Signs `spec`'s body with every key in `signers`.
pub fn signed(spec: &StoreSpec, signers: &[&SigningKey]) -> Vec<u8> {
    let body = encode_body(spec).expect("a test store encodes");
    let sigs: Vec<Vec<u8>> = signers.iter().map(|k| sign(&body, k, None)).collect();
    assemble(&body, &sigs)
}

/// The fleet's key holders in these tests.
pub struct Keys {
    /// Three root keys (2 of 3 sign a store).
    pub roots: Vec<SigningKey>,
    /// The device operator.
    pub operator: SigningKey,
    /// The firmware author.
    pub author: SigningKey,
}

/// Fixed keys: roots 11, 12, 13, operator 21, author 31.
pub fn keys() -> Keys {
    Keys {
        roots: vec![p256(11), p256(12), p256(13)],
        operator: p256(21),
        author: p256(31),
    }
}

/// Version `v`: three root keys (2 of 3), the operator and `author`; root manifests need
/// the operator **and** the author (two parties approve); dependencies need the author.
pub fn store_v(v: u64, k: &Keys, author: &SigningKey) -> StoreSpec {
    let mut keys: Vec<KeySpec> = k.roots.iter().map(|r| spec_key(r, role::ROOT)).collect();
    keys.push(spec_key(&k.operator, role::OPERATOR));
    keys.push(spec_key(author, role::AUTHOR));
    StoreSpec {
        version: v,
        keys,
        root_threshold: 2,
        manifest: vec![clause(role::OPERATOR, 1), clause(role::AUTHOR, 1)],
        dependency: Some(vec![clause(role::AUTHOR, 1)]),
    }
}

/// An envelope around `manifest`, its digest signed by `sign` (one COSE block each).
pub fn envelope(manifest: &[u8], sign: &dyn Fn(&[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
    let digest = encode(&Value::Array(vec![
        int(-16),
        bytes(&Sha256::digest(bstr_encoding(manifest))),
    ]));
    let mut auth = vec![Value::Bytes(digest.clone())];
    auth.extend(sign(&digest).into_iter().map(Value::Bytes));
    encode(&Value::Tag(
        107,
        Box::new(Value::Map(vec![
            (int(2), wrap(&Value::Array(auth))),
            (int(3), Value::Bytes(manifest.to_vec())),
        ])),
    ))
}

/// A signer for [`envelope`]: one detached COSE_Sign1 per key, in order.
pub fn by(keys: &[&SigningKey]) -> impl Fn(&[u8]) -> Vec<Vec<u8>> + use<> {
    let keys: Vec<SigningKey> = keys.iter().map(|k| (*k).clone()).collect();
    move |payload: &[u8]| {
        keys.iter()
            .map(|k| {
                sign1_detached(k, k.default_algorithm(), None, payload).expect("test key signs")
            })
            .collect()
    }
}

/// The firmware component of [`update_manifest`].
pub const FW: &[u8] = b"fw";
/// The trust-store component, as segments.
pub const STORE_ID: [&[u8]; 2] = [b"suitcase", b"trust-store"];

/// A manifest (sequence `seq_no`) writing `image` into `["fw"]`, and `store` into the
/// trust-store component when given (directive-write with `content`).
pub fn update_manifest(seq_no: u64, image: &[u8], store: Option<&[u8]>) -> Vec<u8> {
    update_manifest_for(None, seq_no, image, store)
}

/// [`update_manifest`] for one device class: the shared sequence sets `ids`' vendor and
/// class ids and checks them (what a fleet server requires of a release).
pub fn update_manifest_for(
    ids: Option<(&[u8; 16], &[u8; 16])>,
    seq_no: u64,
    image: &[u8],
    store: Option<&[u8]>,
) -> Vec<u8> {
    let mut comps: Vec<&[&[u8]]> = vec![&[FW]];
    let mut install = vec![
        (12, int(0)),
        (20, params(&[(18, bytes(image))])),
        (18, int(15)),
    ];
    if let Some(s) = store {
        comps.push(&STORE_ID);
        install.extend([(12, int(1)), (20, params(&[(18, bytes(s))])), (18, int(15))]);
    }
    let shared = ids.map(|(vendor, class)| {
        seq(&[
            (12, int(0)),
            (20, params(&[(1, bytes(vendor)), (2, bytes(class))])),
            (1, int(15)),
            (2, int(15)),
        ])
    });
    encode(&manifest(
        seq_no,
        &comps,
        &[],
        shared,
        &[(20, seq(&install))],
    ))
}

/// The flash holding a device's two store copies.
pub type Flash = SimFlash<4, 4096>;
/// Its sector size.
pub const SECTOR: u32 = 4096;

/// A blank flash of four 4 KiB sectors.
pub fn flash() -> Flash {
    SimFlash::new(Geometry::uniform(SECTOR, 4), Options::default())
}

/// The store area over `f`: two copies of two sectors each.
pub fn area(f: Flash) -> Area<Flash> {
    Area::new(f, 0, 2 * SECTOR, 2 * SECTOR).expect("the test geometry fits")
}

/// A simulated device: its trust-store area, firmware RAM, rollback counter and identity.
pub struct Device {
    /// The two store copies.
    pub area: Area<Flash>,
    fw: Vec<u8>,
    fw_len: usize,
    /// The anti-rollback counter.
    pub rollback: MemoryRollback,
    /// Vendor and class ids the device answers conditions with.
    pub vendor: [u8; 16],
    /// See `vendor`.
    pub class: [u8; 16],
    /// The envelope of the installed image, as the bootloader keeps it.
    kept: Option<Vec<u8>>,
}

impl Device {
    /// A device whose store area is provisioned with `first`.
    pub fn provisioned(first: &[u8]) -> Device {
        let mut area = area(flash());
        area.provision(first)
            .expect("the first store is provisioned");
        Device {
            area,
            fw: vec![0; 256],
            fw_len: 0,
            rollback: MemoryRollback(0),
            vendor: [0; 16],
            class: [0; 16],
            kept: None,
        }
    }

    /// The installed firmware.
    pub fn firmware(&self) -> &[u8] {
        &self.fw[..self.fw_len]
    }

    /// The version of the store in force.
    pub fn store_version(&mut self) -> u64 {
        let mut buf = vec![0u8; 8192];
        self.area.load(&mut buf).expect("a store").version()
    }

    /// The agent: load the store, authenticate with it, run the update with staging,
    /// commit a staged store once the update succeeded.
    pub fn update(&mut self, envelope: &[u8]) -> Result<(), Error> {
        if let Some(s) = self.install(envelope)? {
            self.area.commit(&s).expect("the store commits");
        }
        Ok(())
    }

    /// [`Device::update`] with the power cut after the image is installed (the swap
    /// requested) and before the new store is committed; the bootloader keeps the
    /// envelope with the image.
    pub fn update_cut_before_store_commit(&mut self, envelope: &[u8]) -> Result<(), Error> {
        self.install(envelope).map(|_| ())
    }

    /// The agent at start: the envelope kept with the running image may carry a store
    /// that was never committed (a cut after the swap request): commit it now. Returns
    /// whether it committed one.
    pub fn start(&mut self) -> bool {
        let Some(kept) = self.kept.clone() else {
            return false;
        };
        let mut cur = vec![0u8; 8192];
        let store = self.area.load(&mut cur).expect("a store");
        let Ok(auth) = authenticate(&kept, &store) else {
            return false;
        };
        let Some(new) = suitcase_trust::pending(&store, &auth).map(<[u8]>::to_vec) else {
            return false;
        };
        self.area.commit(&new).expect("the store commits");
        true
    }

    /// Authenticates and runs the update; keeps the envelope on success; returns the
    /// staged store, not yet committed.
    fn install(&mut self, envelope: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut cur = vec![0u8; 8192];
        let mut staged = vec![0u8; 8192];
        let store = self.area.load(&mut cur).expect("a store");
        let auth = authenticate(envelope, &store)?;
        let id = crate::device::component_id(&[FW]);
        let mut comps = [MemoryComponent {
            id: &id,
            slot: None,
            data: &mut self.fw,
            len: self.fw_len,
        }];
        let mut inner = MemoryStorage {
            components: &mut comps,
        };
        let mut staging = suitcase_trust::staging(&mut inner, &store, &mut staged);
        let identity = StaticIdentity {
            vendor: self.vendor,
            class: self.class,
            device: None,
            running_slot: 0,
        };
        let r = auth.update(&mut Platform {
            storage: &mut staging,
            fetch: &mut NoFetch,
            identity: &identity,
            rollback: &mut self.rollback,
            clock: &NoClock,
            invoker: &mut NoInvoke,
            reporter: &mut NoReport,
            decryption: &NoDecryptionKeys,
            policy: &mut NoPolicy,
            dependencies: None,
        });
        let new_store = staging.accepted().map(<[u8]>::to_vec);
        self.fw_len = comps[0].len;
        r?;
        self.kept = Some(envelope.to_vec());
        Ok(new_store)
    }
}
