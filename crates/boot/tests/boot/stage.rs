//! The updatable bootloader (`suitcase_boot::stage`): the first stage's choice table, a
//! second-stage update carried by a SUIT manifest, a new second stage that never confirms
//! and is abandoned, refused packages, and a power cut (clean and torn, on both erased
//! values) at every flash operation of an update, its trial boot and its confirmation; and
//! the first stage's reading of an envelope ([`read_envelope`]): what it accepts, what it
//! refuses, and that arbitrary bytes and bit flips never make it accept.

use ciborium::Value;
use sha2::{Digest as _, Sha256};
use suitcase_boot::stage::{
    Choice, ENVELOPE, ENVELOPE_MAX, IMAGE, STAGE2_COMPONENT, Signed, Slot, Stages, read_envelope,
    read_manifest, slot_envelope,
};
use suitcase_cose::Algorithm;
use suitcase_cose::ed25519_dalek::{SigningKey, Verifier as _, VerifyingKey};
use suitcase_flash_sim::{Fault, Geometry, Options, SimFlash};
use suitcase_processor::platform::{
    MemoryRollback, NoClock, NoDecryptionKeys, NoInvoke, NoPolicy, StaticIdentity, StaticKeys,
    StorageError, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::MemoryStorage;
use suitcase_processor::{Error, Platform, authenticate};
use suitcase_testkit::build::{digest_of, encode, int, manifest, params, seq, text};
use suitcase_testkit::lean::SliceFetch;
use suitcase_testkit::resign::Signer;

type Flash = SimFlash<4, 4096>;
const SLOT: u32 = 3 * 4096;

/// The first stage's ROM key.
fn rom_key() -> SigningKey {
    SigningKey::from_bytes(&[0x51; 32])
}

fn verifier(key: VerifyingKey) -> impl Fn(&[u8], &[u8]) -> bool {
    move |signed: &[u8], sig: &[u8]| {
        suitcase_cose::ed25519_dalek::Signature::from_slice(sig)
            .is_ok_and(|s| key.verify(signed, &s).is_ok())
    }
}

/// A second stage: its envelope and its image. The manifest (sequence `version`) names the
/// image's digest and size in its shared sequence (what the first stage reads), and its
/// install fetches the image (what the agent runs); it is MACed by the operator (the
/// agent's trust anchor) and signed by `key` (the first stage's ROM key).
fn package(version: u32, image: &[u8], key: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    package_with(version, image, image, key)
}

/// [`package`], the manifest naming `named` while `image` is what is served.
fn package_with(version: u32, named: &[u8], image: &[u8], key: &SigningKey) -> (Vec<u8>, Vec<u8>) {
    let shared = seq(&[
        (12, int(0)),
        (
            20,
            params(&[(3, digest_of(named)), (14, int(named.len() as i64))]),
        ),
    ]);
    let install = seq(&[
        (20, params(&[(21, text("stage2"))])),
        (21, int(15)),
        (3, int(15)),
    ]);
    let id: &[&[u8]] = &[b"suitcase", b"stage2"];
    let m = encode(&manifest(
        u64::from(version),
        &[id],
        &[],
        Some(shared),
        &[(20, install)],
    ));
    let env = suitcase_testkit::build::sign_raw_manifest(
        &m,
        &[
            Signer::Mac(OP_KEY.to_vec()),
            Signer::Sign(
                suitcase_cose::SigningKey::Ed25519(key.clone()),
                Algorithm::EdDsa,
            ),
        ],
    );
    (env, image.to_vec())
}

fn image(version: u32) -> Vec<u8> {
    (0..5000u32).map(|i| (i * 7 + version * 13) as u8).collect()
}

fn stages(erased: u8) -> Stages<Flash> {
    let f = SimFlash::new(Geometry::uniform(4096, 6), Options { erased, log: false });
    Stages::new(f, 0, SLOT, SLOT, erased).unwrap()
}

/// A device whose second stage v1 runs confirmed in slot A.
fn factory(erased: u8) -> Stages<Flash> {
    let v = verifier(rom_key().verifying_key());
    let mut s = stages(erased);
    let (env, img) = package(1, &image(1), &rom_key());
    s.install(Slot::B, 0, &env, &img, &v).unwrap();
    assert!(matches!(
        s.choose(&v).unwrap(),
        Choice::Run {
            slot: Slot::A,
            trial: true,
            ..
        }
    ));
    s.confirm(Slot::A).unwrap();
    s
}

fn running(s: &mut Stages<Flash>) -> (Slot, u32) {
    let v = verifier(rom_key().verifying_key());
    match s.choose(&v).unwrap() {
        Choice::Run { slot, version, .. } => (slot, version),
        Choice::Halt => panic!("halted"),
    }
}

/// The image bytes of the slot the first stage would start.
fn started_image(s: &mut Stages<Flash>, slot: Slot, len: u32) -> Vec<u8> {
    let start = if slot == Slot::A { 0 } else { SLOT };
    let mut out = vec![0u8; len as usize];
    embedded_storage::nor_flash::ReadNorFlash::read(s.flash(), start + IMAGE, &mut out).unwrap();
    out
}

const OP_KEY: [u8; 32] = [0x61; 32];

/// The second stage's update agent: authenticate `pkg`'s envelope, update with
/// `Stage2Storage` (the image served at its URI), install.
fn update(
    s: &mut Stages<Flash>,
    pkg: &(Vec<u8>, Vec<u8>),
    rollback: &mut MemoryRollback,
) -> Result<bool, Error> {
    let (env, img) = pkg;
    let v = verifier(rom_key().verifying_key());
    let run = running(s);
    let anchors = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&OP_KEY),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let a = authenticate(env, &keys)?;
    let mut comps = [];
    let mut inner = MemoryStorage {
        components: &mut comps,
    };
    let mut buf = vec![0u8; 8192];
    let mut storage = s.storage(&mut inner, run.1, env, &v, &mut buf);
    let served = [("stage2", &img[..])];
    let identity = StaticIdentity {
        vendor: [0; 16],
        class: [0; 16],
        device: None,
        running_slot: 0,
    };
    a.update(&mut Platform {
        storage: &mut storage,
        fetch: &mut SliceFetch::new(&served),
        identity: &identity,
        rollback,
        clock: &NoClock,
        invoker: &mut NoInvoke,
        reporter: &mut NoReport,
        decryption: &NoDecryptionKeys,
        policy: &mut NoPolicy,
        dependencies: None,
    })?;
    // The update succeeded: install the second stage it carried, if any.
    let Some(image) = storage.accepted().map(<[u8]>::to_vec) else {
        return Ok(false);
    };
    s.install(run.0, run.1, env, &image, &v).unwrap();
    Ok(true)
}

#[test]
fn the_component_id_is_the_encoded_identifier() {
    let v = Value::Array(vec![
        Value::Bytes(b"suitcase".to_vec()),
        Value::Bytes(b"stage2".to_vec()),
    ]);
    assert_eq!(encode(&v), STAGE2_COMPONENT);
}

#[test]
fn a_manifest_updates_the_second_stage_which_is_tried_then_confirmed() {
    let v = verifier(rom_key().verifying_key());
    let mut s = factory(0xFF);
    let mut rb = MemoryRollback(0);
    let pkg = package(2, &image(2), &rom_key());
    assert!(update(&mut s, &pkg, &mut rb).unwrap());
    // Next boot: v2 in slot B, as a trial.
    let c = s.choose(&v).unwrap();
    assert_eq!(
        c,
        Choice::Run {
            slot: Slot::B,
            version: 2,
            trial: true,
            len: 5000,
            digest: Sha256::digest(image(2)).into(),
        }
    );
    assert!(suitcase_boot::stage::digest_matches(
        &started_image(&mut s, Slot::B, 5000),
        &Sha256::digest(image(2)).into()
    ));
    assert_eq!(started_image(&mut s, Slot::B, 5000), image(2));
    s.confirm(Slot::B).unwrap();
    assert!(matches!(
        s.choose(&v).unwrap(),
        Choice::Run {
            slot: Slot::B,
            version: 2,
            trial: false,
            ..
        }
    ));
}

#[test]
fn a_second_stage_that_does_not_confirm_is_abandoned_for_the_previous_one() {
    let v = verifier(rom_key().verifying_key());
    let mut s = factory(0x00);
    let mut rb = MemoryRollback(0);
    update(&mut s, &package(2, &image(2), &rom_key()), &mut rb).unwrap();
    // The trial boot of v2 (tried is set) … and it never confirms (hangs, crashes).
    assert!(matches!(
        s.choose(&v).unwrap(),
        Choice::Run {
            slot: Slot::B,
            trial: true,
            ..
        }
    ));
    // The next boot goes back to v1, confirmed.
    assert_eq!(
        s.choose(&v).unwrap(),
        Choice::Run {
            slot: Slot::A,
            version: 1,
            trial: false,
            len: 5000,
            digest: Sha256::digest(image(1)).into(),
        }
    );
}

#[test]
fn packages_not_signed_for_this_device_or_not_newer_fail_the_update() {
    let mut s = factory(0xFF);
    let mut rb = MemoryRollback(0);
    let other_key = SigningKey::from_bytes(&[0x52; 32]);
    // The manifest names image 3; the image served (and checked by the agent's
    // image-match only after the write) differs in one byte.
    let mut tampered = image(3);
    tampered[4999] ^= 1;
    for (i, pkg) in [
        package(2, &image(2), &other_key),
        package(1, &image(1), &rom_key()),
        package_with(3, &image(3), &tampered, &rom_key()),
        // The manifest names 5000 bytes; 4999 are served.
        package_with(4, &image(4), &image(4)[..4999], &rom_key()),
    ]
    .into_iter()
    .enumerate()
    {
        let r = update(&mut s, &pkg, &mut rb);
        assert_eq!(
            r,
            Err(Error::Storage(StorageError::Rejected)),
            "package {i}"
        );
        assert_eq!(rb.0, 0, "package {i}: the counter did not move");
        assert_eq!(running(&mut s), (Slot::A, 1), "package {i}");
    }
}

#[test]
fn nothing_valid_halts_in_the_first_stage() {
    let v = verifier(rom_key().verifying_key());
    let mut s = stages(0xFF);
    assert_eq!(s.choose(&v).unwrap(), Choice::Halt);
}

/// A power cut (or a torn operation) at every flash operation of: installing v2, the
/// trial boot's "tried" mark, and v2's confirmation. After each cut the device reboots
/// (the first stage chooses again, possibly cut again once) and must start a second stage
/// that verifies — v1 or v2, never nothing — and the image it starts is that version's.
#[test]
fn a_power_cut_at_every_operation_of_a_second_stage_update_leaves_a_bootable_stage() {
    let v = verifier(rom_key().verifying_key());
    let (env, img) = package(2, &image(2), &rom_key());
    let mut points = 0;
    let mut ended = [0u32; 2];
    for erased in [0xFF, 0x00] {
        // The clean run, to count operations: install, trial mark, confirm.
        let mut s = factory(erased);
        let base = s.flash().ops();
        s.install(Slot::A, 1, &env, &img, &v).unwrap();
        let _ = s.choose(&v).unwrap();
        s.confirm(Slot::B).unwrap();
        let total = s.flash().ops() - base;
        for i in 0..total {
            for fault in [Fault::Cut, Fault::Tear { seed: i + 99 }] {
                points += 1;
                let mut s = factory(erased);
                let at = s.flash().ops() + i;
                s.flash().schedule(at, fault);
                // The scenario, stopping at the first failure (the cut).
                let _ = s
                    .install(Slot::A, 1, &env, &img, &v)
                    .and_then(|()| s.choose(&v))
                    .and_then(|c| match c {
                        Choice::Run { slot, .. } => s.confirm(slot),
                        Choice::Halt => Ok(()),
                    });
                s.flash().restore_power();
                s.flash().clear_faults();
                // Reboot, with one more cut at the first operation of the boot.
                let at = s.flash().ops();
                s.flash().schedule(at, Fault::Cut);
                let _ = s.choose(&v);
                s.flash().restore_power();
                s.flash().clear_faults();
                match s.choose(&v).unwrap() {
                    Choice::Run {
                        slot, version, len, ..
                    } => {
                        assert!(version == 1 || version == 2, "op {i}");
                        assert_eq!(started_image(&mut s, slot, len), image(version), "op {i}");
                        ended[version as usize - 1] += 1;
                    }
                    Choice::Halt => panic!("op {i} ({fault:?}, erased {erased:#x}): halted"),
                }
            }
        }
    }
    assert!(ended[0] > 0 && ended[1] > 0, "{ended:?}");
    eprintln!(
        "second stage: {points} cut points: {} started v1, {} started v2, none halted",
        ended[0], ended[1]
    );
}

fn rom_verifier() -> impl Fn(&[u8], &[u8]) -> bool {
    verifier(rom_key().verifying_key())
}

#[test]
fn the_first_stage_reads_version_size_and_digest_from_the_envelope() {
    let (env, img) = package(7, &image(7), &rom_key());
    assert!(env.len() <= ENVELOPE_MAX, "{} B", env.len());
    let v = rom_verifier();
    assert_eq!(
        read_envelope(&env, &v),
        Some(Signed {
            version: 7,
            len: 5000,
            digest: Sha256::digest(&img).into(),
        })
    );
    // The slot's envelope area is read whole: what follows the envelope is ignored.
    let mut area = env.clone();
    area.resize(ENVELOPE_MAX, 0xFF);
    assert_eq!(read_envelope(&area, &v).map(|s| s.version), Some(7));
}

/// A manifest for the second stage with `shared` as its shared sequence and `components`,
/// signed by the ROM key with `alg`.
fn custom(shared: Value, components: &[&[&[u8]]], seq_no: u64, alg: Algorithm) -> Vec<u8> {
    let m = encode(&manifest(seq_no, components, &[], Some(shared), &[]));
    suitcase_testkit::build::sign_raw_manifest(
        &m,
        &[Signer::Sign(
            suitcase_cose::SigningKey::Ed25519(rom_key()),
            alg,
        )],
    )
}

#[test]
fn the_first_stage_refuses_what_it_cannot_pin_down() {
    let v = rom_verifier();
    let img = image(1);
    let size = int(img.len() as i64);
    let stage2: &[&[u8]] = &[b"suitcase", b"stage2"];
    let good = || {
        seq(&[
            (12, int(0)),
            (20, params(&[(3, digest_of(&img)), (14, size.clone())])),
        ])
    };
    // Both Ed25519 identifiers are accepted.
    for alg in [Algorithm::EdDsa, Algorithm::Ed25519] {
        assert!(read_envelope(&custom(good(), &[stage2], 1, alg), &v).is_some());
    }
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "another component",
            custom(good(), &[&[b"suitcase", b"app"]], 1, Algorithm::EdDsa),
        ),
        (
            "two components",
            custom(good(), &[stage2, stage2], 1, Algorithm::EdDsa),
        ),
        (
            "a sequence number above u32",
            custom(good(), &[stage2], 1 << 32, Algorithm::EdDsa),
        ),
        (
            "no image size",
            custom(
                seq(&[(20, params(&[(3, digest_of(&img))]))]),
                &[stage2],
                1,
                Algorithm::EdDsa,
            ),
        ),
        (
            "the digest set twice",
            custom(
                seq(&[
                    (20, params(&[(3, digest_of(&img)), (14, size.clone())])),
                    (20, params(&[(3, digest_of(b"other"))])),
                ]),
                &[stage2],
                1,
                Algorithm::EdDsa,
            ),
        ),
        (
            "a try-each",
            custom(
                seq(&[
                    (20, params(&[(3, digest_of(&img)), (14, size.clone())])),
                    (15, Value::Array(vec![])),
                ]),
                &[stage2],
                1,
                Algorithm::EdDsa,
            ),
        ),
        (
            "another component index",
            custom(
                seq(&[
                    (12, int(1)),
                    (20, params(&[(3, digest_of(&img)), (14, size.clone())])),
                ]),
                &[stage2],
                1,
                Algorithm::EdDsa,
            ),
        ),
        (
            "only the operator's MAC",
            suitcase_testkit::build::sign_raw_manifest(
                &encode(&manifest(1, &[stage2], &[], Some(good()), &[])),
                &[Signer::Mac(OP_KEY.to_vec())],
            ),
        ),
    ];
    for (what, env) in refused {
        assert_eq!(read_envelope(&env, &v), None, "{what}");
    }
    // Signed by another Ed25519 key.
    let other = suitcase_testkit::build::sign_raw_manifest(
        &encode(&manifest(1, &[stage2], &[], Some(good()), &[])),
        &[Signer::Sign(
            suitcase_cose::SigningKey::Ed25519(SigningKey::from_bytes(&[0x52; 32])),
            Algorithm::EdDsa,
        )],
    );
    assert_eq!(read_envelope(&other, &v), None, "another key");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary bytes are never accepted (and never panic).
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let v = rom_verifier();
        proptest::prop_assert_eq!(read_envelope(&bytes, &v), None);
    }

    /// A byte changed anywhere in a valid envelope either makes it refused or leaves what
    /// the first stage reads unchanged (it changed a part nobody signs: the operator's MAC
    /// block, an unprotected header).
    #[test]
    fn a_changed_byte_never_changes_what_is_read(at in 0usize..2000, xor in 1u8..=255) {
        let (env, _) = package(3, &image(3), &rom_key());
        let v = rom_verifier();
        let want = read_envelope(&env, &v);
        let mut bad = env.clone();
        let i = at % bad.len();
        bad[i] ^= xor;
        let got = read_envelope(&bad, &v);
        proptest::prop_assert!(got.is_none() || got == want, "byte {}: {:?}", i, got);
    }
}

#[test]
fn the_slot_keeps_the_envelope_reduced_to_what_the_first_stage_reads() {
    let v = rom_verifier();
    let img = image(5);
    // An operator signature far larger than the slot's envelope area (an HSS-LMS one is
    // about 2.4 KB): a block the first stage passes over, dropped from the slot's copy.
    let (env, _) = package(5, &img, &rom_key());
    let big = {
        let mut auth_blocks = Vec::new();
        let Value::Tag(_, m) = ciborium::from_reader::<Value, _>(&env[..]).unwrap() else {
            panic!("tagged envelope")
        };
        let Value::Map(members) = *m else {
            panic!("map")
        };
        let mut out = Vec::new();
        for (k, val) in members {
            if k == Value::Integer(2.into()) {
                let Value::Bytes(b) = val else {
                    panic!("auth bstr")
                };
                let Value::Array(items) = ciborium::from_reader::<Value, _>(&b[..]).unwrap() else {
                    panic!("auth array")
                };
                auth_blocks.extend(items);
                auth_blocks.insert(1, Value::Bytes(vec![0xA5; 3000]));
                out.push((k, Value::Bytes(encode(&Value::Array(auth_blocks.clone())))));
            } else {
                out.push((k, val));
            }
        }
        encode(&Value::Tag(107, Box::new(Value::Map(out))))
    };
    assert!(big.len() > ENVELOPE_MAX);
    assert_eq!(read_envelope(&big, &v), read_envelope(&env, &v));
    let mut buf = [0u8; ENVELOPE_MAX];
    let kept = slot_envelope(&big, &v, &mut buf).expect("reduced").to_vec();
    assert!(kept.len() < 600, "{} B", kept.len());
    assert_eq!(read_envelope(&kept, &v), read_envelope(&env, &v));
    // Only the ROM key's block is left, so every byte is signed: any cut-short copy
    // (a torn write) is refused.
    for n in 0..kept.len() {
        assert_eq!(read_envelope(&kept[..n], &v), None, "prefix {n}");
    }
    // Installed from the big envelope, the slot holds the reduced one and starts.
    let mut s = factory(0xFF);
    s.install(Slot::A, 1, &big, &img, &v).unwrap();
    let mut area = vec![0u8; kept.len()];
    embedded_storage::nor_flash::ReadNorFlash::read(s.flash(), SLOT + ENVELOPE, &mut area).unwrap();
    assert_eq!(area, kept);
    assert!(matches!(
        s.choose(&v).unwrap(),
        Choice::Run {
            slot: Slot::B,
            version: 5,
            trial: true,
            ..
        }
    ));
}

/// A shared sequence with the given digest and size parameters, as a manifest's bytes.
fn manifest_bytes(seq_no: u64, digest: &[u8], size: u64) -> Vec<u8> {
    let stage2: &[&[u8]] = &[b"suitcase", b"stage2"];
    let shared = seq(&[
        (12, int(0)),
        (
            20,
            params(&[(3, digest_of_raw(digest)), (14, int(size as i64))]),
        ),
        (1, int(15)),
    ]);
    encode(&manifest(seq_no, &[stage2], &[], Some(shared), &[]))
}

/// `bstr .cbor [-16, digest]`.
fn digest_of_raw(digest: &[u8]) -> Value {
    Value::Bytes(encode(&Value::Array(vec![
        int(-16),
        Value::Bytes(digest.to_vec()),
    ])))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// The first stage takes from a manifest exactly its sequence number, digest and size.
    #[test]
    fn the_manifest_reading_returns_what_the_manifest_says(
        seq_no in 0u64..=u64::from(u32::MAX),
        digest in proptest::array::uniform32(proptest::prelude::any::<u8>()),
        size in 0u64..=u64::from(u32::MAX),
    ) {
        let got = read_manifest(&manifest_bytes(seq_no, &digest, size));
        proptest::prop_assert_eq!(got, Some(Signed {
            version: seq_no as u32,
            len: size as u32,
            digest,
        }));
    }

    /// A byte changed anywhere in a manifest never panics the reading.
    #[test]
    fn a_changed_manifest_byte_never_panics(at in 0usize..400, xor in 1u8..=255) {
        let mut m = manifest_bytes(9, &[7; 32], 5000);
        let i = at % m.len();
        m[i] ^= xor;
        let _ = read_manifest(&m);
    }

    /// Arbitrary bytes as a manifest never panic the reading.
    #[test]
    fn arbitrary_manifests_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = read_manifest(&bytes);
    }
}
