//! The trust store: thresholds, rollback, power cuts at every flash operation of a
//! commit, rotation by manifest, algorithm migration ES256 → Ed25519 → HSS-LMS, and the
//! compromise drill (docs/trust-store.md).

use ciborium::Value;
use suitcase_cose::{CoseKind, encode_to_be_signed};
use suitcase_flash_sim::Fault;
use suitcase_processor::platform::StorageError;
use suitcase_processor::{AuthError, Error};
use suitcase_testkit::build::encode;
use suitcase_testkit::trust::{
    Device, Flash, SECTOR, area, by, clause, clause_of, ed, envelope, flash, keys, p256, signed,
    spec_key, store_v, update_manifest,
};
use suitcase_trust::build::{KeySpec, StoreSpec};
use suitcase_trust::{Area, Clause, Family, Store, TrustError, role};

// ---------------------------------------------------------------------------------------
// Keys and stores.

#[test]
fn a_first_store_needs_its_own_root_threshold() {
    let k = keys();
    let spec = store_v(1, &k, &k.author);
    let one = signed(&spec, &[&k.roots[0]]);
    assert_eq!(
        Store::verify_genesis(&one).err(),
        Some(TrustError::NewKeysDidNotSign {
            signed: 1,
            threshold: 2
        })
    );
    let two = signed(&spec, &[&k.roots[0], &k.roots[2]]);
    let s = Store::verify_genesis(&two).unwrap();
    assert_eq!(s.version(), 1);
    assert_eq!(s.keys().count(), 5);
    // The same root key signing twice counts once.
    let twice = signed(&spec, &[&k.roots[0], &k.roots[0]]);
    assert!(Store::verify_genesis(&twice).is_err());
}

#[test]
fn updates_below_threshold_rolled_back_or_unsigned_by_the_new_keys_are_refused() {
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let current = Store::decode(&v1).unwrap();

    // One current root key is not the threshold.
    let v2 = store_v(2, &k, &k.author);
    let below = signed(&v2, &[&k.roots[0]]);
    assert_eq!(
        current.verify_update(&below).err(),
        Some(TrustError::BelowCurrentThreshold {
            signed: 1,
            threshold: 2
        })
    );
    // Not newer.
    let same = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    assert_eq!(
        current.verify_update(&same).err(),
        Some(TrustError::Rollback {
            current: 1,
            offered: 1
        })
    );
    // New root keys that did not sign: the old roots alone cannot hand the device to
    // keys nobody showed they hold.
    let mut rotated = store_v(2, &k, &k.author);
    let new_roots = [p256(41), p256(42), p256(43)];
    for (i, r) in new_roots.iter().enumerate() {
        rotated.keys[i] = spec_key(r, role::ROOT);
    }
    let only_old = signed(&rotated, &[&k.roots[0], &k.roots[1]]);
    assert_eq!(
        current.verify_update(&only_old).err(),
        Some(TrustError::NewKeysDidNotSign {
            signed: 0,
            threshold: 2
        })
    );
    let both = signed(
        &rotated,
        &[&k.roots[0], &k.roots[1], &new_roots[0], &new_roots[2]],
    );
    assert_eq!(current.verify_update(&both).unwrap().version(), 2);
    // A changed body breaks every signature.
    let mut tampered = both.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 1;
    assert!(current.verify_update(&tampered).is_err());
}

#[test]
fn malformed_and_unusable_stores_are_refused() {
    let k = keys();
    let mut spec = store_v(1, &k, &k.author);
    spec.root_threshold = 4; // only three root keys
    assert_eq!(
        Store::decode(&signed(&spec, &[&k.roots[0]])).err(),
        Some(TrustError::Unusable)
    );
    let mut spec = store_v(1, &k, &k.author);
    spec.manifest = vec![clause(role::OPERATOR, 2)]; // one operator key
    assert_eq!(
        Store::decode(&signed(&spec, &[&k.roots[0]])).err(),
        Some(TrustError::Unusable)
    );
    let mut spec = store_v(1, &k, &k.author);
    // A compressed point whose x is 2^256 - 1 ≥ p: never a P-256 point.
    spec.keys[0].public = [&[0x02][..], &[0xFF; 32]].concat();
    assert_eq!(
        Store::decode(&signed(&spec, &[&k.roots[1]])).err(),
        Some(TrustError::BadKey(0))
    );
    for bad in [
        &b""[..],
        &[0x80],
        &[0x82, 0x40, 0x80],
        &[0x82, 0x41, 0xa0, 0x81, 0x40],
    ] {
        assert!(
            matches!(Store::decode(bad), Err(TrustError::Decode(_))),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Two copies on flash, power cuts.

/// Stores v1 and v2 (a new author key, signed by two other roots), and an area
/// provisioned with v1 and loaded.
fn v1_v2_area(buf: &mut [u8]) -> (Vec<u8>, Vec<u8>, Area<Flash>) {
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let v2 = signed(&store_v(2, &k, &p256(32)), &[&k.roots[1], &k.roots[2]]);
    let mut a = area(flash());
    a.provision(&v1).unwrap();
    a.load(buf).unwrap();
    (v1, v2, a)
}

#[test]
fn a_power_cut_at_any_flash_operation_of_a_commit_leaves_the_old_or_the_new_store() {
    let mut buf = vec![0u8; 4096];
    // The operations a clean commit takes.
    let (v1, v2, mut a) = v1_v2_area(&mut buf);
    let before = a.flash().ops();
    a.commit(&v2).unwrap();
    let ops = a.flash().ops() - before;
    assert!(ops > 4, "erase, body, header, twice");

    let (mut old, mut new) = (0, 0);
    for i in 0..ops {
        for fault in [Fault::Cut, Fault::Tear { seed: i * 7 + 1 }] {
            let mut a = area(flash());
            a.provision(&v1).unwrap();
            a.load(&mut buf).unwrap();
            let start = a.flash().ops();
            a.flash().schedule(start + i, fault);
            assert!(
                a.commit(&v2).is_err(),
                "op {i}: the cut must stop the commit"
            );
            let mut f = a.into_inner();
            f.restore_power();
            f.clear_faults();
            // Reboot: load (which repairs), with the power cut again during the repair
            // (each of its first operations in turn), then load again: stable, both
            // copies equal.
            let mut a = area(f);
            for j in 0..3 {
                let at = a.flash().ops() + j;
                a.flash().schedule(at, Fault::Cut);
                let _ = a.load(&mut buf);
                a.flash().restore_power();
                a.flash().clear_faults();
            }
            let v = a.load(&mut buf).unwrap().version();
            assert!(v == 1 || v == 2, "op {i}: version {v}");
            let ops_after_repair = a.flash().ops();
            assert_eq!(a.load(&mut buf).unwrap().version(), v);
            assert_eq!(
                a.flash().ops(),
                ops_after_repair,
                "op {i}: nothing left to repair"
            );
            if v == 1 {
                old += 1;
                // The device can still take the update afterwards.
                a.commit(&v2).unwrap();
                assert_eq!(a.load(&mut buf).unwrap().version(), 2);
            } else {
                new += 1;
            }
        }
    }
    assert!(
        old > 0 && new > 0,
        "cuts before and after the switch: {old} old, {new} new"
    );
    eprintln!(
        "trust store: {} cut points ({ops} operations × cut/tear): {old} kept v1, {new} had v2",
        2 * ops
    );
}

#[test]
fn a_corrupted_copy_is_rebuilt_from_the_other_and_never_brings_back_an_old_store() {
    let mut buf = vec![0u8; 4096];
    let (_, v2, mut a) = v1_v2_area(&mut buf);
    a.commit(&v2).unwrap();
    // Both copies hold v2: flipping a bit in either leaves v2 current.
    for at in [100u32, 2 * SECTOR + 100] {
        let mut f = a.into_inner();
        let byte = f.contents()[at as usize] ^ 0x10;
        f.tamper(at, &[byte]);
        a = area(f);
        assert_eq!(a.load(&mut buf).unwrap().version(), 2);
    }
    // Both copies broken: no store, and the device says so.
    let mut f = a.into_inner();
    f.tamper(70, &[0]);
    f.tamper(2 * SECTOR + 70, &[0]);
    assert_eq!(area(f).load(&mut buf).err(), Some(TrustError::NoValidCopy));
}

// ---------------------------------------------------------------------------------------
// Rotation by manifest, the compromise drill, algorithm migration.

/// An envelope around `manifest` whose auth blocks come from `sign` (given the detached
/// payload: the encoded digest).
#[test]
fn the_compromise_drill() {
    let k = keys();
    let stolen = k.author.clone();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let mut fleet: Vec<Device> = (0..3).map(|_| Device::provisioned(&v1)).collect();

    // A release both parties signed, downloaded by every device but not yet installed.
    let release = envelope(
        &update_manifest(2, b"release", None),
        &by(&[&k.operator, &k.author]),
    );

    // 1. The author key is stolen. Alone, the thief installs nothing: root manifests need
    //    the operator too.
    let evil = envelope(&update_manifest(9, b"evil", None), &by(&[&stolen]));
    for d in &mut fleet {
        assert_eq!(
            d.update(&evil),
            Err(Error::Auth(AuthError::PolicyNotSatisfied))
        );
        assert_eq!(d.firmware(), b"");
    }

    // 2. The root key holders revoke it: store v2 names a new author key; two of three
    //    roots sign it; the operator and the new author ship it in a manifest.
    let new_author = p256(33);
    let v2 = signed(&store_v(2, &k, &new_author), &[&k.roots[0], &k.roots[2]]);
    let rotation = envelope(
        &update_manifest(3, b"rotated", Some(&v2)),
        &by(&[&k.operator, &k.author]),
    );
    for d in &mut fleet {
        d.update(&rotation).unwrap();
        assert_eq!(d.store_version(), 2);
        assert_eq!(d.firmware(), b"rotated");
    }

    // 3. Afterwards nothing signed with the stolen key verifies on any device: not the
    //    thief's next try, and not the release downloaded before the rotation.
    let evil2 = envelope(
        &update_manifest(10, b"evil", None),
        &by(&[&k.operator, &stolen]),
    );
    for d in &mut fleet {
        for env in [&evil2, &release] {
            assert_eq!(
                d.update(env),
                Err(Error::Auth(AuthError::PolicyNotSatisfied))
            );
        }
        assert_eq!(d.firmware(), b"rotated");
    }
    // The new author and the operator together still can.
    let next = envelope(
        &update_manifest(4, b"next", None),
        &by(&[&k.operator, &new_author]),
    );
    for d in &mut fleet {
        d.update(&next).unwrap();
        assert_eq!(d.firmware(), b"next");
    }
}

#[test]
fn a_store_update_that_does_not_verify_fails_the_whole_update() {
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let mut d = Device::provisioned(&v1);
    // Properly shipped, but only one root key signed the store.
    let weak = signed(&store_v(2, &k, &p256(34)), &[&k.roots[0]]);
    let env = envelope(
        &update_manifest(2, b"x", Some(&weak)),
        &by(&[&k.operator, &k.author]),
    );
    assert_eq!(d.update(&env), Err(Error::Storage(StorageError::Rejected)));
    assert_eq!(d.store_version(), 1);
    assert_eq!(d.rollback.0, 0, "the counter did not move");
}

#[test]
fn a_cut_between_the_swap_request_and_the_store_commit_is_rolled_forward_at_start() {
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let new_author = p256(33);
    let v2 = signed(&store_v(2, &k, &new_author), &[&k.roots[0], &k.roots[2]]);
    let mut d = Device::provisioned(&v1);
    let rotation = envelope(
        &update_manifest(2, b"rotated", Some(&v2)),
        &by(&[&k.operator, &k.author]),
    );
    d.update_cut_before_store_commit(&rotation).unwrap();
    // The new image runs under the old store (the envelope was signed for both).
    assert_eq!((d.store_version(), d.firmware()), (1, &b"rotated"[..]));
    assert!(d.start(), "the kept envelope's store is committed at start");
    assert_eq!(d.store_version(), 2);
    assert!(!d.start(), "once: v2 is not newer than v2");
    assert_eq!(d.store_version(), 2);
    // The revoked author no longer counts; the new one does.
    let next = envelope(
        &update_manifest(3, b"next", None),
        &by(&[&k.operator, &k.author]),
    );
    assert_eq!(
        d.update(&next),
        Err(Error::Auth(AuthError::PolicyNotSatisfied))
    );
    let next = envelope(
        &update_manifest(3, b"next", None),
        &by(&[&k.operator, &new_author]),
    );
    d.update(&next).unwrap();
    // The kept envelope now carries no store: nothing to roll forward.
    assert!(!d.start());
}

#[test]
fn carried_reads_the_store_a_manifest_writes_and_only_that() {
    use suitcase_trust::{Carried, carried};
    let k = keys();
    let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
    let store = Store::decode(&v1).unwrap();
    let with = envelope(
        &update_manifest(2, b"x", Some(&v1)),
        &by(&[&k.operator, &k.author]),
    );
    let without = envelope(
        &update_manifest(2, b"x", None),
        &by(&[&k.operator, &k.author]),
    );
    let a = suitcase_processor::authenticate(&with, &store).unwrap();
    assert_eq!(carried(&a), Carried::Store(&v1[..]));
    // Not an update of itself: nothing pending.
    assert_eq!(suitcase_trust::pending(&store, &a), None);
    let a = suitcase_processor::authenticate(&without, &store).unwrap();
    assert_eq!(carried(&a), Carried::None);

    // As the processor reads it: set-parameters does not replace content already set, and
    // content set inside a try-each depends on the branch the device takes.
    use suitcase_testkit::build::{bytes, encode, int, manifest, params, seq};
    use suitcase_testkit::trust::{FW, STORE_ID};
    let sign = |install: Vec<(i64, ciborium::Value)>| {
        let m = encode(&manifest(
            2,
            &[&[FW], &STORE_ID],
            &[],
            None,
            &[(20, seq(&install))],
        ));
        envelope(&m, &by(&[&k.operator, &k.author]))
    };
    let set_after = sign(vec![
        (12, int(1)),
        (20, params(&[(18, bytes(b"first"))])),
        (19, params(&[(18, bytes(b"second"))])),
    ]);
    let a = suitcase_processor::authenticate(&set_after, &store).unwrap();
    assert_eq!(carried(&a), Carried::Store(&b"first"[..]));
    let in_try_each = sign(vec![
        (12, int(1)),
        (20, params(&[(18, bytes(b"first"))])),
        (
            15,
            ciborium::Value::Array(vec![
                seq(&[(20, params(&[(18, bytes(b"other"))]))]),
                seq(&[(20, params(&[(18, bytes(b"third"))]))]),
            ]),
        ),
    ]);
    let a = suitcase_processor::authenticate(&in_try_each, &store).unwrap();
    assert_eq!(carried(&a), Carried::Unreadable);
}

/// HSS-LMS: a key (height 5: 32 signatures) and a COSE_Sign1 signer. hbs-lms recurses
/// deeply, so it runs on a thread with a big stack.
fn hss_key(seed: u8) -> (hbs_lms::SigningKey<hbs_lms::Sha256_256>, Vec<u8>) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut s = hbs_lms::Seed::<hbs_lms::Sha256_256>::default();
            s.as_mut_slice().fill(seed);
            let params = [hbs_lms::HssParameter::<hbs_lms::Sha256_256>::new(
                hbs_lms::LmotsAlgorithm::LmotsW4,
                hbs_lms::LmsAlgorithm::LmsH5,
            )];
            let (sk, vk) = hbs_lms::keygen::<hbs_lms::Sha256_256>(&params, &s, None).unwrap();
            (sk, vk.as_slice().to_vec())
        })
        .unwrap()
        .join()
        .unwrap()
}

fn hss_sign1(sk: &hbs_lms::SigningKey<hbs_lms::Sha256_256>, payload: &[u8]) -> Vec<u8> {
    use hbs_lms::signature::SignerMut as _;
    let protected = vec![0xa1, 0x01, 0x38, 0x2d]; // {1: -46}
    let mut buf = vec![0u8; suitcase_cose::MAX_SIG_STRUCTURE_LEN];
    let tbs = encode_to_be_signed(CoseKind::Sign1, &protected, payload, &mut buf)
        .unwrap()
        .to_vec();
    let mut key = sk.clone();
    let sig = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || key.try_sign(&tbs).unwrap().as_ref().to_vec())
        .unwrap()
        .join()
        .unwrap();
    encode(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Null,
            Value::Bytes(sig),
        ])),
    ))
}

#[test]
fn the_fleet_migrates_es256_then_ed25519_then_hss_lms() {
    let k = keys();
    let (op_ed, root_ed) = (ed(51), [ed(52), ed(53)]);
    let (op_hss, op_hss_public) = hss_key(61);
    let with = |v: u64, extra: Vec<KeySpec>, manifest: Vec<Clause>| {
        let mut keys: Vec<KeySpec> = k.roots.iter().map(|r| spec_key(r, role::ROOT)).collect();
        keys.push(spec_key(&k.operator, role::OPERATOR));
        keys.extend(extra);
        StoreSpec {
            version: v,
            keys,
            root_threshold: 2,
            manifest,
            dependency: None,
        }
    };
    let es = clause_of(role::OPERATOR, 1, Family::P256);
    let edc = clause_of(role::OPERATOR, 1, Family::Ed25519);
    let v1 = signed(&with(1, vec![], vec![es]), &[&k.roots[0], &k.roots[1]]);
    let mut d = Device::provisioned(&v1);
    let es_only = |s: u64, img: &[u8], store: Option<&[u8]>| {
        envelope(&update_manifest(s, img, store), &by(&[&k.operator]))
    };

    // v2: add Ed25519 keys; root manifests now need one ES256 and one Ed25519 operator
    // signature (the dual-signature transition).
    let ed_keys = vec![
        spec_key(&op_ed, role::OPERATOR),
        spec_key(&root_ed[0], role::ROOT),
        spec_key(&root_ed[1], role::ROOT),
    ];
    let v2 = signed(
        &with(2, ed_keys.clone(), vec![es, edc]),
        &[&k.roots[0], &k.roots[1]],
    );
    d.update(&es_only(2, b"verifies ed25519", Some(&v2)))
        .unwrap();
    assert_eq!(d.store_version(), 2);
    assert_eq!(
        d.update(&es_only(3, b"es only", None)),
        Err(Error::Auth(AuthError::PolicyNotSatisfied)),
        "one algorithm is no longer enough"
    );
    let dual = |s: u64, img: &[u8], store: Option<&[u8]>| {
        envelope(&update_manifest(s, img, store), &by(&[&k.operator, &op_ed]))
    };
    d.update(&dual(3, b"dual", None)).unwrap();
    assert_eq!(d.firmware(), b"dual");

    // v3: drop ES256 entirely (root keys included): Ed25519 roots take over; the old
    // roots sign this last store with them.
    let mut v3_spec = with(3, ed_keys, vec![edc]);
    v3_spec.keys.retain(|key| key.alg != -9);
    let v3 = signed(
        &v3_spec,
        &[&k.roots[0], &k.roots[1], &root_ed[0], &root_ed[1]],
    );
    d.update(&dual(4, b"ed only next", Some(&v3))).unwrap();
    assert_eq!(d.store_version(), 3);
    let ed_only = |s: u64, img: &[u8], store: Option<&[u8]>| {
        envelope(&update_manifest(s, img, store), &by(&[&op_ed]))
    };
    assert!(d.update(&es_only(5, b"es", None)).is_err(), "ES256 is gone");
    d.update(&ed_only(5, b"ed", None)).unwrap();

    // v4: post-quantum operator key (HSS-LMS), Ed25519 roots keep the store.
    let mut v4_spec = v3_spec.clone();
    v4_spec.version = 4;
    v4_spec.keys.push(KeySpec {
        alg: -46,
        roles: role::OPERATOR,
        public: op_hss_public,
        kid: None,
    });
    v4_spec.manifest = vec![clause_of(role::OPERATOR, 1, Family::HssLms)];
    let v4 = signed(&v4_spec, &[&root_ed[0], &root_ed[1]]);
    d.update(&ed_only(6, b"hss next", Some(&v4))).unwrap();
    assert_eq!(d.store_version(), 4);
    assert!(
        d.update(&ed_only(7, b"ed", None)).is_err(),
        "Ed25519 alone no longer"
    );
    let hss = envelope(&update_manifest(7, b"post-quantum", None), &|p: &[u8]| {
        vec![hss_sign1(&op_hss, p)]
    });
    d.update(&hss).unwrap();
    assert_eq!(d.firmware(), b"post-quantum");
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Store::decode(&bytes);
            let _ = Store::verify_genesis(&bytes);
        }

        /// Every single-bit change to a valid update is refused.
        #[test]
        fn a_changed_update_never_verifies(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = keys();
            let v1 = signed(&store_v(1, &k, &k.author), &[&k.roots[0], &k.roots[1]]);
            let v2 = signed(&store_v(2, &k, &p256(32)), &[&k.roots[1], &k.roots[2]]);
            let current = Store::decode(&v1).unwrap();
            prop_assert!(current.verify_update(&v2).is_ok());
            let mut changed = v2.clone();
            let i = at.index(changed.len());
            changed[i] ^= 1 << bit;
            prop_assert!(current.verify_update(&changed).is_err(), "flip at {} bit {}", i, bit);
        }
    }
}
