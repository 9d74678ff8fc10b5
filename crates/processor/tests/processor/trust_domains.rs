//! Trust domains on the device (draft-ietf-suit-trust-domains): dependency manifests
//! fetched or integrated, checked by dependency-integrity under the key store's dependency
//! policy, and run by process-dependency over one parameter table. Published vectors
//! first, then hand-built chains for the rules the vectors do not reach (docs/trust-domains.md
//! §8 lists the plan these tests follow).

use ciborium::Value;
use sha2::{Digest as _, Sha256};
use suitcase_cose::{Algorithm, OwnedVerifyingKey, SigningKey};
use suitcase_processor::platform::{DomainKeys, Policy, Rule, StaticKeys, TrustAnchor};
use suitcase_processor::report::ManifestPath;
use suitcase_processor::suit::{Condition, DecodeErrorKind, Envelope};
use suitcase_processor::{
    AuthError, DependencyError, Error, MAX_DEPENDENCY_DEPTH, UpdateSummary, authenticate,
};
use suitcase_testkit::build::{self, bytes, int, params, seq, text, wrap};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, TD};

use super::common::{p256_key, public, spec_private};

const DEP_ID: &[u8] = b"dependent.suit";

fn td(name: &str) -> Vec<u8> {
    vectors::read(TD, name)
}

/// A root vector (sequence number 0) at sequence number 1, signed again with the same
/// published key, so an update is newer than the empty counter. Its dependency, fetched
/// or integrated, is untouched.
fn td_root(name: &str) -> Vec<u8> {
    Rewrite {
        sequence_number: Some(1),
        signers: vec![Signer::Sign(spec_private(), Algorithm::Es256)],
        ..Rewrite::default()
    }
    .apply(&td(name))
    .unwrap()
}

fn td_key() -> OwnedVerifyingKey {
    public(TD, "public_key.pem")
}

/// A two-domain store: anchor 0 may sign the root, anchor 1 may sign dependencies (the
/// same key may stand in both places).
fn with_domains<R>(
    root: &OwnedVerifyingKey,
    dependency: &OwnedVerifyingKey,
    f: impl FnOnce(&DomainKeys<'_>) -> R,
) -> R {
    let anchors = [
        TrustAnchor {
            key: root.as_verifying_key(),
            kid: None,
        },
        TrustAnchor {
            key: dependency.as_verifying_key(),
            kid: None,
        },
    ];
    f(&DomainKeys {
        anchors: &anchors,
        root: Policy {
            anchors: 0b01,
            rules: &[],
        },
        dependencies: Some(Policy {
            anchors: 0b10,
            rules: &[],
        }),
        by_id: &[],
    })
}

fn update(dev: &mut MemDevice, env: &[u8], keys: &DomainKeys<'_>) -> Result<UpdateSummary, Error> {
    let a = authenticate(env, keys)?;
    dev.with_dependencies(keys, |p| a.update(p))
}

fn td_device() -> MemDevice {
    MemDevice::spec()
        .with_component(&[b"00"], None, 64)
        .with_component(&[b"10"], None, 64)
        .with_component(&[DEP_ID], None, 512)
}

/// example1 with example0 served at its URI.
fn example1_device() -> MemDevice {
    td_device().serve(
        "http://example.com/dependent.suit",
        td("example0_dependent.suit"),
    )
}

fn untouched(dev: &MemDevice) {
    assert!(dev.content(&[b"00"], None).is_empty());
    assert!(dev.content(&[b"10"], None).is_empty());
    assert_eq!(
        dev.rollback.0, 0,
        "a failed update never advances the counter"
    );
}

/// example1 (at sequence number 1) on `dev` is refused with `want`; nothing is installed.
fn refuses_example1(
    mut dev: MemDevice,
    root: &OwnedVerifyingKey,
    dependency: &OwnedVerifyingKey,
    want: Error,
) {
    let env = td_root("example1_process.suit");
    let r = with_domains(root, dependency, |keys| update(&mut dev, &env, keys));
    assert_eq!(r, Err(want));
    untouched(&dev);
}

fn dep_err(component: u32, kind: DependencyError) -> Error {
    Error::Dependency { component, kind }
}

// ---------------------------------------------------------------------------------------
// The published vectors.

#[test]
fn example1_fetches_verifies_and_processes_its_dependency() {
    let k = td_key();
    let mut dev = example1_device();
    let s = with_domains(&k, &k, |keys| {
        update(&mut dev, &td_root("example1_process.suit"), keys)
    })
    .unwrap();
    // The dependency's install wrote ['00'], then the root wrote ['10'].
    assert_eq!(dev.content(&[b"00"], None), b"hello world");
    assert_eq!(dev.content(&[b"10"], None), b" in multiple trust domains");
    assert_eq!(dev.content(&[DEP_ID], None), td("example0_dependent.suit"));
    assert_eq!(dev.fetched, ["http://example.com/dependent.suit"]);
    assert_eq!(s.dependency_writes, 1);
    assert_eq!(
        s.components_written, 0b11,
        "the root wrote ['10'] and the dependency slot"
    );
    assert_eq!(dev.rollback.0, 1);
}

#[test]
fn example1_invoke_runs_only_the_roots_invoke() {
    let k = td_key();
    let mut dev = example1_device();
    dev.rollback.0 = 0;
    with_domains(&k, &k, |keys| {
        let env = td("example1_process.suit");
        let a = authenticate(&env, keys).unwrap();
        // Sequence number 0 is not above an empty counter, so install through a copy
        // at sequence 1 is not needed: the invoke procedure accepts the installed number.
        dev.with_dependencies(keys, |p| a.invoke(p)).unwrap();
    });
    // invoke does not process the dependency, so only the root's `cat 00 10` runs.
    assert_eq!(dev.invoked, [(0, Some(b"cat 00 10".to_vec()))]);
}

#[test]
fn example2_integrated_passes_resolution_and_stops_at_process_without_integrity() {
    let k = td_key();
    let mut dev = td_device();
    let env = td_root("example2_integrated.suit");
    let r = with_domains(&k, &k, |keys| update(&mut dev, &env, keys));
    // example2's install runs process-dependency with no dependency-integrity before it;
    // the draft makes that an abort.
    assert_eq!(r, Err(dep_err(1, DependencyError::NotVerified)));
    let a = with_domains(&k, &k, |keys| {
        authenticate(&env, keys)
            .map(|a| a.envelope().integrated("#dependent.suit").unwrap().to_vec())
    })
    .unwrap();
    assert_eq!(
        dev.content(&[DEP_ID], None),
        a,
        "dependency-resolution wrote it"
    );
    untouched(&dev);
}

/// example2 with the dependency-integrity its install lacks inserted before
/// process-dependency (`12 1, 7 15, 11 0, …`), at sequence number 1, re-signed with the
/// published key; the integrated dependency is carried unchanged.
fn example2_with_integrity() -> Vec<u8> {
    let env = td("example2_integrated.suit");
    let Value::Tag(107, outer) = ciborium::from_reader::<Value, _>(env.as_slice()).unwrap() else {
        panic!("not an envelope")
    };
    let Value::Map(entries) = *outer else {
        panic!()
    };
    let manifest = entries
        .iter()
        .find(|(k, _)| *k == int(3))
        .unwrap()
        .1
        .clone();
    let Value::Map(mut m) =
        ciborium::from_reader::<Value, _>(manifest.as_bytes().unwrap().as_slice()).unwrap()
    else {
        panic!()
    };
    for (k, v) in m.iter_mut() {
        if *k == int(2) {
            *v = int(1);
        }
        if *k == int(INSTALL) {
            let Value::Array(mut cmds) =
                ciborium::from_reader::<Value, _>(v.as_bytes().unwrap().as_slice()).unwrap()
            else {
                panic!()
            };
            assert_eq!(cmds[..4], [int(12), int(1), int(11), int(0)]);
            cmds.splice(2..2, [int(INTEGRITY), int(15)]);
            *v = wrap(&Value::Array(cmds));
        }
    }
    let signed = build::sign_raw_manifest(
        &build::encode(&Value::Map(m)),
        &[Signer::Sign(spec_private(), Algorithm::Es256)],
    );
    let integrated: Vec<_> = entries
        .into_iter()
        .filter(|(k, _)| matches!(k, Value::Text(_)))
        .collect();
    with_entries(&signed, integrated)
}

/// `env` with text-keyed entries added (integrated payloads and dependencies sit outside
/// what the signature covers).
fn with_entries(env: &[u8], extra: Vec<(Value, Value)>) -> Vec<u8> {
    let Value::Tag(107, inner) = ciborium::from_reader::<Value, _>(env).unwrap() else {
        panic!("not an envelope")
    };
    let Value::Map(mut entries) = *inner else {
        panic!()
    };
    entries.extend(extra);
    build::encode(&Value::Tag(107, Box::new(Value::Map(entries))))
}

#[test]
fn example2_with_integrity_processes_its_integrated_dependency_in_place() {
    let k = td_key();
    let mut dev = td_device();
    // No buffer at all: the integrated dependency is verified and run where it lies.
    dev.dependency_buffer = 0;
    let s = with_domains(&k, &k, |keys| {
        update(&mut dev, &example2_with_integrity(), keys)
    })
    .unwrap();
    assert_eq!(dev.content(&[b"00"], None), b"hello world");
    assert_eq!(dev.content(&[b"10"], None), b" in multiple trust domains");
    assert_eq!(s.dependency_writes, 1);
    assert!(dev.fetched.is_empty(), "nothing went over the transport");
}

#[test]
fn a_buffer_too_small_for_the_fetched_dependency_aborts_before_reading() {
    let k = td_key();
    let mut dev = example1_device();
    dev.dependency_buffer = 100;
    refuses_example1(dev, &k, &k, dep_err(1, DependencyError::TooLarge));
}

#[test]
fn a_changed_dependency_manifest_fails_image_match_in_resolution() {
    let k = td_key();
    let mut dep = td("example0_dependent.suit");
    let last = dep.len() - 1; // inside the manifest (the last member, install)
    dep[last] ^= 1;
    let mut dev = td_device().serve("http://example.com/dependent.suit", dep);
    let r = with_domains(&k, &k, |keys| {
        update(&mut dev, &td_root("example1_process.suit"), keys)
    });
    assert!(
        matches!(
            r,
            Err(Error::ConditionFailed {
                condition: Condition::ImageMatch,
                component: 1,
                ..
            })
        ),
        "{r:?}"
    );
    untouched(&dev);
}

#[test]
fn a_changed_dependency_signature_fails_dependency_integrity() {
    let k = td_key();
    let good = td("example0_dependent.suit");
    let env = Envelope::decode(&good).unwrap();
    let sig_at = good
        .windows(8)
        .position(|w| w == hex_sig_start())
        .expect("the signature bytes");
    let mut dep = good.clone();
    dep[sig_at + 4] ^= 0x40;
    assert_eq!(
        Envelope::decode(&dep).unwrap().manifest_bytes,
        env.manifest_bytes,
        "the manifest is unchanged, so image-match still passes"
    );
    let dev = td_device().serve("http://example.com/dependent.suit", dep);
    refuses_example1(
        dev,
        &k,
        &k,
        dep_err(1, DependencyError::Auth(AuthError::PolicyNotSatisfied)),
    );
}

/// The first bytes of example0's ESP256 signature.
fn hex_sig_start() -> [u8; 8] {
    [0xa2, 0x5f, 0x33, 0x71, 0x26, 0x36, 0x9d, 0x2e]
}

#[test]
fn a_store_without_a_dependency_policy_refuses_every_dependency() {
    let k = td_key();
    let anchors = [TrustAnchor {
        key: k.as_verifying_key(),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let mut dev = example1_device();
    let env = td_root("example1_process.suit");
    let a = authenticate(&env, &keys).unwrap();
    let r = dev.with_dependencies(&keys, |p| a.update(p));
    assert_eq!(
        r,
        Err(dep_err(1, DependencyError::Auth(AuthError::RoleNotAllowed)))
    );
    // And a platform that lends no dependency support refuses them too.
    let r = dev.with_platform(|p| a.update(p));
    assert_eq!(r, Err(dep_err(1, DependencyError::Unsupported)));
    untouched(&dev);
}

#[test]
fn an_operator_cannot_bring_in_a_dependency_signed_by_an_untrusted_key() {
    // The root's key is trusted for roots only; the dependency is signed by that same
    // key, not by the author key the dependency policy names.
    let operator = td_key();
    let author = verifying(&p256_key(9));
    let dev = example1_device();
    refuses_example1(
        dev,
        &operator,
        &author,
        dep_err(1, DependencyError::Auth(AuthError::PolicyNotSatisfied)),
    );
}

// ---------------------------------------------------------------------------------------
// Encrypted payload through a dependency (draft-ietf-suit-firmware-encryption).

#[cfg(feature = "encryption")]
mod es_ecdh {
    use suitcase_testkit::vectors::ENC;

    use super::super::encryption::device_key;
    use super::*;

    #[test]
    fn the_dependency_decrypts_what_the_dependent_configured() {
        let env = vectors::read(ENC, "suit-manifest-es-ecdh-dependency.suit");
        let dependent = public(ENC, "dependent-manifest-signing-public-key.pem");
        let author = public(ENC, "signing-public-key.pem");
        let mut dev = MemDevice::spec()
            .with_component(&[b"decrypted-firmware"], None, 256)
            .with_component(&[b"dependency-manifest.suit"], None, 512)
            .with_device_key(Some(b"kid-2"), &device_key());
        let s = with_domains(&dependent, &author, |keys| update(&mut dev, &env, keys)).unwrap();
        assert_eq!(
            dev.content(&[b"decrypted-firmware"], None),
            vectors::read(ENC, "plaintext.bin")
        );
        assert_eq!(s.dependency_writes, 1);
        assert_eq!(dev.rollback.0, 1);
    }

    #[test]
    fn with_the_roles_swapped_the_root_is_refused() {
        let env = vectors::read(ENC, "suit-manifest-es-ecdh-dependency.suit");
        let dependent = public(ENC, "dependent-manifest-signing-public-key.pem");
        let author = public(ENC, "signing-public-key.pem");
        with_domains(&author, &dependent, |keys| {
            assert_eq!(
                authenticate(&env, keys).err(),
                Some(Error::Auth(AuthError::PolicyNotSatisfied))
            );
        });
    }
}

// ---------------------------------------------------------------------------------------
// Hand-built chains.

fn verifying(k: &SigningKey) -> OwnedVerifyingKey {
    k.verifying_key()
}

/// A signed envelope (one component per id, dependencies by index → prefix), with
/// text-keyed integrated entries.
fn signed(
    key: &SigningKey,
    sequence_number: u64,
    components: &[&[u8]],
    deps: &[(u32, &[u8])],
    shared: Option<Value>,
    members: &[(i64, Value)],
    integrated: &[(&str, &[u8])],
) -> Vec<u8> {
    let comps: Vec<[&[u8]; 1]> = components.iter().map(|c| [*c]).collect();
    let comps: Vec<&[&[u8]]> = comps.iter().map(|c| &c[..]).collect();
    let dep_ids: Vec<(u32, [&[u8]; 1])> = deps.iter().map(|(i, p)| (*i, [*p])).collect();
    let dep_ids: Vec<(u32, &[&[u8]])> = dep_ids.iter().map(|(i, p)| (*i, &p[..])).collect();
    let manifest = build::encode(&build::manifest(
        sequence_number,
        &comps,
        &dep_ids,
        shared,
        members,
    ));
    let env = build::sign_raw_manifest(&manifest, &[Signer::Sign(key.clone(), Algorithm::Es256)]);
    if integrated.is_empty() {
        return env;
    }
    with_entries(
        &env,
        integrated
            .iter()
            .map(|(k, v)| (text(k), bytes(v)))
            .collect(),
    )
}

/// A signed manifest with the one component `id` and no dependencies.
fn single(key: &SigningKey, id: &[u8], members: &[(i64, Value)]) -> Vec<u8> {
    signed(key, 1, &[id], &[], None, members, &[])
}

/// The image-digest a dependent names a dependency by: its manifest digest.
fn manifest_digest(env: &[u8]) -> Value {
    let m = Envelope::decode(env).unwrap().manifest_bytes;
    wrap(&Value::Array(vec![int(-16), bytes(&Sha256::digest(m))]))
}

const INSTALL: i64 = 20;
const VALIDATE: i64 = 7;
const SET_INDEX: i64 = 12;
const OVERRIDE: i64 = 20;
const SET: i64 = 19;
const WRITE: i64 = 18;
const FETCH: i64 = 21;
const INTEGRITY: i64 = 7;
const IS_DEPENDENCY: i64 = 8;
const PROCESS: i64 = 11;
const TRY_EACH: i64 = 15;
const IMAGE_MATCH: i64 = 3;

/// A leaf dependency that writes `content` into component `id`.
fn leaf(key: &SigningKey, id: &[u8], content: &[u8]) -> Vec<u8> {
    single(
        key,
        id,
        &[(
            INSTALL,
            seq(&[
                (OVERRIDE, params(&[(18, bytes(content))])),
                (WRITE, int(15)),
            ]),
        )],
    )
}

/// Install commands that select dependency index 1, name it by `named`'s manifest digest
/// and fetch the integrated `#dep` into it.
fn fetch_dep(named: &[u8]) -> Vec<(i64, Value)> {
    vec![
        (SET_INDEX, int(1)),
        (
            OVERRIDE,
            params(&[(3, manifest_digest(named)), (21, text("#dep"))]),
        ),
        (FETCH, int(15)),
    ]
}

/// A root with one component `own` and one dependency at index 1 named `dep_id`, carrying
/// `dep` as `#dep`, whose install is `install`.
fn root(
    key: &SigningKey,
    own: &[u8],
    dep_id: &[u8],
    dep: &[u8],
    install: &[Vec<(i64, Value)>],
) -> Vec<u8> {
    signed(
        key,
        1,
        &[own],
        &[(1, dep_id)],
        None,
        &[(INSTALL, seq(&install.concat()))],
        &[("#dep", dep)],
    )
}

/// [`root`] whose install fetches `dep`, matches it, then runs `tail`.
fn with_dependency(
    key: &SigningKey,
    own: &[u8],
    dep_id: &[u8],
    dep: &[u8],
    tail: &[(i64, Value)],
) -> Vec<u8> {
    root(
        key,
        own,
        dep_id,
        dep,
        &[fetch_dep(dep), vec![(IMAGE_MATCH, int(15))], tail.to_vec()],
    )
}

fn with_one_key<R>(key: &SigningKey, f: impl FnOnce(&DomainKeys<'_>) -> R) -> R {
    let v = verifying(key);
    with_domains(&v, &v, f)
}

fn chain_device() -> MemDevice {
    let mut d = MemDevice::spec();
    for id in [&b"a"[..], b"b", b"c", b"d", b"x", b"y"] {
        d = d.with_component(&[id], None, 4096);
    }
    d.rollback.0 = 0;
    d
}

#[test]
fn process_dependency_needs_integrity_first_and_again_after_a_write() {
    let key = p256_key(3);
    let dep = leaf(&key, b"x", b"leaf");
    // No dependency-integrity at all.
    let root = with_dependency(&key, b"y", b"a", &dep, &[(PROCESS, int(0))]);
    let mut dev = chain_device();
    let r = with_one_key(&key, |k| update(&mut dev, &root, k));
    assert_eq!(r, Err(dep_err(1, DependencyError::NotVerified)));
    // Integrity, then a fetch into the component, then process: the cache is gone.
    let root = with_dependency(
        &key,
        b"y",
        b"a",
        &dep,
        &[(INTEGRITY, int(15)), (FETCH, int(15)), (PROCESS, int(0))],
    );
    let r = with_one_key(&key, |k| update(&mut dev, &root, k));
    assert_eq!(r, Err(dep_err(1, DependencyError::NotVerified)));
    assert!(dev.content(&[b"x"], None).is_empty());
    // Integrity right before process: the leaf runs.
    let root = with_dependency(
        &key,
        b"y",
        b"a",
        &dep,
        &[(INTEGRITY, int(15)), (PROCESS, int(0))],
    );
    with_one_key(&key, |k| update(&mut dev, &root, k)).unwrap();
    assert_eq!(dev.content(&[b"x"], None), b"leaf");
}

#[test]
fn a_dependency_whose_manifest_digest_differs_is_refused() {
    let key = p256_key(3);
    let dep = leaf(&key, b"x", b"leaf");
    let other = leaf(&key, b"x", b"other");
    // The root names `other`'s digest but carries `dep` (image-match skipped).
    let root = root(
        &key,
        b"y",
        b"a",
        &dep,
        &[
            fetch_dep(&other),
            vec![(INTEGRITY, int(15)), (PROCESS, int(0))],
        ],
    );
    let mut dev = chain_device();
    let r = with_one_key(&key, |k| update(&mut dev, &root, k));
    assert_eq!(r, Err(dep_err(1, DependencyError::DigestMismatch)));
    assert!(dev.content(&[b"x"], None).is_empty());
}

#[test]
fn is_dependency_selects_a_try_each_branch() {
    let key = p256_key(3);
    let branch = |idx: i64, marker: &[u8]| {
        seq(&[
            (SET_INDEX, int(idx)),
            (IS_DEPENDENCY, int(15)),
            (SET_INDEX, int(0)),
            (OVERRIDE, params(&[(18, bytes(marker))])),
            (WRITE, int(15)),
        ])
    };
    let root = signed(
        &key,
        1,
        &[b"y"],
        &[(1, b"a")],
        None,
        &[(
            INSTALL,
            seq(&[
                (SET_INDEX, int(0)),
                (
                    TRY_EACH,
                    Value::Array(vec![branch(0, b"zero"), branch(1, b"one")]),
                ),
            ]),
        )],
        &[],
    );
    let mut dev = chain_device();
    with_one_key(&key, |k| update(&mut dev, &root, k)).unwrap();
    assert_eq!(
        dev.content(&[b"y"], None),
        b"one",
        "index 0 is no dependency"
    );
}

/// root → d1 → d2 → … : each level integrates the next and processes it in install.
fn chain(key: &SigningKey, levels: usize) -> Vec<u8> {
    let ids: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
    let mut env = leaf(key, b"x", b"bottom");
    for level in (0..levels).rev() {
        env = with_dependency(
            key,
            b"y",
            ids[level],
            &env,
            &[(INTEGRITY, int(15)), (PROCESS, int(0))],
        );
    }
    env
}

#[test]
fn dependencies_nest_to_the_bound_and_no_further() {
    let key = p256_key(3);
    assert_eq!(MAX_DEPENDENCY_DEPTH, 2);
    let mut dev = chain_device();
    with_one_key(&key, |k| update(&mut dev, &chain(&key, 2), k)).unwrap();
    assert_eq!(dev.content(&[b"x"], None), b"bottom");

    let mut dev = chain_device();
    let r = with_one_key(&key, |k| update(&mut dev, &chain(&key, 3), k));
    assert_eq!(r, Err(dep_err(1, DependencyError::TooDeep)));
    assert!(dev.content(&[b"x"], None).is_empty());
}

#[test]
fn process_dependency_in_the_shared_sequence_aborts() {
    let key = p256_key(3);
    let dep = leaf(&key, b"x", b"leaf");
    let root = signed(
        &key,
        1,
        &[b"y"],
        &[(1, b"a")],
        Some(seq(&[(SET_INDEX, int(1)), (PROCESS, int(0))])),
        &[(INSTALL, seq(&[(SET_INDEX, int(0))]))],
        &[("#dep", &dep)],
    );
    let mut dev = chain_device();
    // The decoder refuses it before anything runs (the interpreter would abort with
    // `InCommonSequence` too, should a shared sequence ever reach it).
    let r = with_one_key(&key, |k| update(&mut dev, &root, k));
    assert!(
        matches!(
            r,
            Err(Error::Decode(e)) if e.kind == DecodeErrorKind::CommandNotAllowedInSharedSequence(11)
        ),
        "{r:?}"
    );
}

#[test]
fn set_parameters_steers_a_dependency_and_override_wins_over_it() {
    let key = p256_key(3);
    // The dependency writes its `content`: one dependency sets it (does not overwrite),
    // the other overrides it.
    let dep = |cmd: i64| {
        single(
            &key,
            b"x",
            &[(
                INSTALL,
                seq(&[
                    (cmd, params(&[(18, bytes(b"dependency's"))])),
                    (WRITE, int(15)),
                ]),
            )],
        )
    };
    for (cmd, want) in [(SET, &b"root's"[..]), (OVERRIDE, b"dependency's")] {
        let d = dep(cmd);
        // The root sets content for ['x'], which it does not list: it reaches ['x']
        // through the shared table only once the dependency runs. So it declares ['x']
        // itself as component 0.
        let root = root(
            &key,
            b"x",
            b"a",
            &d,
            &[
                vec![
                    (SET_INDEX, int(0)),
                    (SET, params(&[(18, bytes(b"root's"))])),
                ],
                fetch_dep(&d),
                vec![(INTEGRITY, int(15)), (PROCESS, int(0))],
            ],
        );
        let mut dev = chain_device();
        with_one_key(&key, |k| update(&mut dev, &root, k)).unwrap();
        assert_eq!(dev.content(&[b"x"], None), want, "dependency used {cmd}");
    }
}

#[test]
fn a_condition_failing_in_a_dependency_is_soft_in_the_dependents_try_each() {
    let key = p256_key(3);
    // The dependency's install fails an image-match (digest of something else).
    let failing = single(
        &key,
        b"x",
        &[(
            INSTALL,
            seq(&[
                (
                    OVERRIDE,
                    params(&[(3, manifest_digest(&leaf(&key, b"x", b"?")))]),
                ),
                (IMAGE_MATCH, int(15)),
            ]),
        )],
    );
    let fallback = seq(&[
        (SET_INDEX, int(0)),
        (OVERRIDE, params(&[(18, bytes(b"fallback"))])),
        (WRITE, int(15)),
    ]);
    let root = root(
        &key,
        b"y",
        b"a",
        &failing,
        &[
            fetch_dep(&failing),
            vec![
                (INTEGRITY, int(15)),
                (
                    TRY_EACH,
                    Value::Array(vec![seq(&[(PROCESS, int(0))]), fallback]),
                ),
            ],
        ],
    );
    let mut dev = chain_device();
    with_one_key(&key, |k| update(&mut dev, &root, k)).unwrap();
    assert_eq!(dev.content(&[b"y"], None), b"fallback");
}

#[test]
fn validate_at_boot_verifies_the_stored_dependency_again() {
    let key = p256_key(3);
    let dep = single(
        &key,
        b"x",
        &[
            (
                INSTALL,
                seq(&[
                    (OVERRIDE, params(&[(18, bytes(b"leaf"))])),
                    (WRITE, int(15)),
                ]),
            ),
            (
                VALIDATE,
                seq(&[
                    (
                        OVERRIDE,
                        params(&[(3, suitcase_testkit::build::digest_of(b"leaf"))]),
                    ),
                    (IMAGE_MATCH, int(15)),
                ]),
            ),
        ],
    );
    let shared = seq(&[
        (SET_INDEX, int(1)),
        (
            OVERRIDE,
            params(&[(3, manifest_digest(&dep)), (14, int(dep.len() as i64))]),
        ),
    ]);
    let validate = seq(&[(SET_INDEX, int(1)), (INTEGRITY, int(15)), (PROCESS, int(0))]);
    let root = signed(
        &key,
        1,
        &[b"y"],
        &[(1, b"a")],
        Some(shared),
        &[
            (
                INSTALL,
                seq(&[
                    (SET_INDEX, int(1)),
                    (OVERRIDE, params(&[(21, text("#dep"))])),
                    (FETCH, int(15)),
                    (INTEGRITY, int(15)),
                    (PROCESS, int(0)),
                ]),
            ),
            (VALIDATE, validate),
        ],
        &[("#dep", &dep)],
    );
    let mut dev = chain_device();
    with_one_key(&key, |k| {
        let a = authenticate(&root, k).unwrap();
        dev.with_dependencies(k, |p| a.update(p)).unwrap();
        // At boot the dependency is read back from its component (no integrated copy in
        // this procedure) into the buffer, verified, and its validate runs.
        dev.with_dependencies(k, |p| a.invoke(p)).unwrap();
        // A corrupted stored image fails the dependency's validate.
        dev.preload(&[b"x"], None, b"leaf!");
        assert!(matches!(
            dev.with_dependencies(k, |p| a.invoke(p)),
            Err(Error::ConditionFailed {
                condition: Condition::ImageMatch,
                ..
            })
        ));
        // A corrupted stored dependency envelope fails dependency-integrity.
        let mut bad = dep.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        dev.preload(&[b"a"], None, &bad);
        assert!(matches!(
            dev.with_dependencies(k, |p| a.invoke(p)),
            Err(Error::Dependency { component: 1, .. })
        ));
    });
    assert_eq!(dev.content(&[b"a"], None).len(), dep.len());
}

#[cfg(all(feature = "report", feature = "p256", feature = "hmac"))]
#[test]
fn records_from_a_dependency_carry_its_manifest_path() {
    use suitcase_processor::report::{Reference, encode_report};
    let key = td_key();
    let mut dev = example1_device();
    let env = td_root("example1_process.suit");
    with_domains(&key, &key, |keys| update(&mut dev, &env, keys)).unwrap();
    let from_dep: Vec<_> = dev
        .records
        .iter()
        .filter(|r| r.manifest != ManifestPath::ROOT)
        .collect();
    assert!(!from_dep.is_empty(), "example0's write reports (policy 15)");
    assert!(from_dep.iter().all(|r| r.manifest.indices() == [1]));
    // Encoded, SUIT_Record's manifest-id is [1] for them.
    let a = with_domains(&key, &key, |keys| {
        authenticate(&env, keys).map(|a| Reference::of(&a))
    })
    .unwrap();
    let mut out = vec![0u8; 4096];
    let n = encode_report(Some(&a), None, &dev.records, Ok(()), &mut out).unwrap();
    let v: Value = ciborium::from_reader(&out[..n]).unwrap();
    let Value::Map(m) = v else { panic!() };
    let records = m
        .iter()
        .find(|(k, _)| *k == int(3))
        .map(|(_, v)| v.as_array().unwrap().clone())
        .unwrap();
    let ids: Vec<Value> = records
        .iter()
        .map(|r| r.as_array().unwrap()[0].clone())
        .collect();
    assert!(ids.contains(&Value::Array(vec![int(1)])));
    assert!(ids.contains(&Value::Array(vec![])));
}

#[test]
fn rule_masks_are_applied_before_the_rules() {
    // A dependency policy that names anchor 1 only, with a rule over anchor 0 (which
    // signed): masked away, the rule cannot be met.
    let key = p256_key(3);
    let v = verifying(&key);
    let anchors = [
        TrustAnchor {
            key: v.as_verifying_key(),
            kid: None,
        },
        TrustAnchor {
            key: v.as_verifying_key(),
            kid: None,
        },
    ];
    let rules = [Rule::required(0)];
    let keys = DomainKeys {
        anchors: &anchors,
        root: Policy {
            anchors: 0b01,
            rules: &rules,
        },
        dependencies: Some(Policy {
            anchors: 0b10,
            rules: &rules,
        }),
        by_id: &[],
    };
    let dep = leaf(&key, b"x", b"leaf");
    let root = with_dependency(
        &key,
        b"y",
        b"a",
        &dep,
        &[(INTEGRITY, int(15)), (PROCESS, int(0))],
    );
    let mut dev = chain_device();
    let r = update(&mut dev, &root, &keys);
    assert_eq!(
        r,
        Err(dep_err(
            1,
            DependencyError::Auth(AuthError::PolicyNotSatisfied)
        ))
    );
}
