//! The abstract machine on hand-built manifests: soft failure, try-each, run-sequence,
//! component selection, the directives and their failure modes, reporting.

use ciborium::Value;
use suitcase_processor::report::{Outcome, SequenceKind};
use suitcase_processor::suit::Condition;
use suitcase_processor::{Error, UpdateSummary};
use suitcase_testkit::build::{bytes, digest_of, envelope, int, params, seq, text};
use suitcase_testkit::device::{MemDevice, SPEC_CLASS, SPEC_VENDOR};
use suitcase_testkit::resign::{Rewrite, Signer};

use super::common::image;

const KEY: [u8; 32] = [0x5a; 32];
const C0: &[u8] = &[0];
const C1: &[u8] = &[1];

// Command and parameter codes, named as in the spec.
const VENDOR: i64 = 1;
const CLASS: i64 = 2;
const IMAGE_MATCH: i64 = 3;
const USE_BEFORE: i64 = 4;
const CHECK_CONTENT: i64 = 6;
const SET_INDEX: i64 = 12;
const ABORT: i64 = 14;
const TRY_EACH: i64 = 15;
const WRITE: i64 = 18;
const OVERRIDE: i64 = 20;
const FETCH: i64 = 21;
const COPY: i64 = 22;
const INVOKE: i64 = 23;
const SWAP: i64 = 31;
const RUN_SEQ: i64 = 32;
const P_DIGEST: i64 = 3;
const P_USE_BEFORE: i64 = 4;
const P_SOFT: i64 = 13;
const P_SIZE: i64 = 14;
const P_CONTENT: i64 = 18;
#[cfg_attr(feature = "encryption", allow(dead_code))]
const P_ENCRYPTION: i64 = 19;
const P_URI: i64 = 21;
const P_SOURCE: i64 = 22;
const INSTALL: i64 = 20;
const VALIDATE: i64 = 7;
const INVOKE_SEQ: i64 = 9;

fn sign(unsigned: Vec<u8>) -> Vec<u8> {
    Rewrite {
        signers: vec![Signer::Mac(KEY.to_vec())],
        ..Default::default()
    }
    .apply(&unsigned)
    .unwrap()
}

fn identity_shared() -> Value {
    seq(&[
        (
            OVERRIDE,
            params(&[(1, bytes(&SPEC_VENDOR)), (2, bytes(&SPEC_CLASS))]),
        ),
        (VENDOR, int(15)),
        (CLASS, int(15)),
    ])
}

fn device(n: usize) -> MemDevice {
    let mut d = MemDevice::spec();
    for c in [C0, C1].iter().take(n) {
        d = d.with_component(&[c], None, 4096);
    }
    d
}

fn update(dev: &mut MemDevice, env: &[u8]) -> Result<UpdateSummary, Error> {
    super::common::mac_update(dev, env, &KEY)
}

fn invoke(dev: &mut MemDevice, env: &[u8]) -> Result<(), Error> {
    super::common::mac_invoke(dev, env, &KEY)
}

fn one(install: Value) -> Vec<u8> {
    sign(envelope(
        1,
        &[&[C0]],
        Some(identity_shared()),
        &[(INSTALL, install)],
        &[],
    ))
}

#[test]
fn write_stores_the_content_parameter_and_image_match_checks_it() {
    let img = b"firmware image bytes".to_vec();
    let env = one(seq(&[
        (
            OVERRIDE,
            params(&[
                (P_CONTENT, bytes(&img)),
                (P_DIGEST, digest_of(&img)),
                (P_SIZE, int(img.len() as i64)),
            ]),
        ),
        (WRITE, int(15)),
        (IMAGE_MATCH, int(15)),
        (CHECK_CONTENT, int(15)),
    ]));
    let mut dev = device(1);
    let s = update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), &img[..]);
    assert_eq!(s.bytes_written, img.len() as u64);
    // Every condition and the write asked for records on success.
    let codes: Vec<_> = dev
        .records
        .iter()
        .filter(|r| r.sequence == SequenceKind::Install)
        .map(|r| r.command)
        .collect();
    assert_eq!(codes, vec![WRITE, IMAGE_MATCH, CHECK_CONTENT]);
}

#[test]
fn wrong_vendor_stops_at_the_shared_sequence() {
    let shared = seq(&[
        (OVERRIDE, params(&[(1, bytes(&[9; 16]))])),
        (VENDOR, int(15)),
    ]);
    let env = sign(envelope(
        1,
        &[&[C0]],
        Some(shared),
        &[(INSTALL, seq(&[(ABORT, int(0))]))],
        &[],
    ));
    let mut dev = device(1);
    assert_eq!(
        update(&mut dev, &env),
        Err(Error::ConditionFailed {
            condition: Condition::VendorIdentifier,
            component: 0,
            sequence: SequenceKind::Shared
        })
    );
    let failures: Vec<_> = dev
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Failure)
        .collect();
    assert_eq!(failures.len(), 1, "policy 15 records the failure");
}

#[test]
fn unset_parameters_fail_their_condition() {
    // image-match with no digest, vendor check with no vendor: conditions fail, they do
    // not pass by default.
    for cond in [IMAGE_MATCH, VENDOR] {
        let env = sign(envelope(
            1,
            &[&[C0]],
            None,
            &[(INSTALL, seq(&[(cond, int(0))]))],
            &[],
        ));
        assert!(
            matches!(
                update(&mut device(1), &env),
                Err(Error::ConditionFailed { .. })
            ),
            "{cond}"
        );
    }
}

#[test]
fn try_each_takes_the_first_branch_that_passes() {
    let img = b"abc".to_vec();
    let env = one(seq(&[
        (
            TRY_EACH,
            Value::Array(vec![
                seq(&[
                    (ABORT, int(0)),
                    (OVERRIDE, params(&[(P_CONTENT, bytes(b"never"))])),
                ]),
                seq(&[(OVERRIDE, params(&[(P_CONTENT, bytes(&img))]))]),
                seq(&[(OVERRIDE, params(&[(P_CONTENT, bytes(b"too late"))]))]),
            ]),
        ),
        (WRITE, int(0)),
    ]));
    let mut dev = device(1);
    update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), &img[..]);
}

#[test]
fn exhausted_try_each_fails_unless_it_ends_with_nil() {
    let branches = vec![seq(&[(ABORT, int(0))]), seq(&[(ABORT, int(0))])];
    let env = one(seq(&[(TRY_EACH, Value::Array(branches.clone()))]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::TryEachExhausted {
            sequence: SequenceKind::Install
        })
    );
    let mut with_nil = branches;
    with_nil.push(Value::Null);
    let env = one(seq(&[(TRY_EACH, Value::Array(with_nil))]));
    assert!(update(&mut device(1), &env).is_ok());
}

#[test]
fn a_branch_that_clears_soft_failure_fails_the_whole_try_each() {
    let env = one(seq(&[(
        TRY_EACH,
        Value::Array(vec![
            seq(&[
                (OVERRIDE, params(&[(P_SOFT, Value::Bool(false))])),
                (ABORT, int(0)),
            ]),
            seq(&[(OVERRIDE, params(&[(P_CONTENT, bytes(b"x"))]))]),
        ]),
    )]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::ConditionFailed {
            condition: Condition::Abort,
            component: 0,
            sequence: SequenceKind::Install
        })
    );
}

#[test]
fn soft_failure_at_top_level_aborts() {
    let env = one(seq(&[(OVERRIDE, params(&[(P_SOFT, Value::Bool(true))]))]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::SoftFailureNotAllowed)
    );
}

#[test]
fn run_sequence_is_hard_by_default_and_soft_when_asked() {
    let hard = one(seq(&[(RUN_SEQ, seq(&[(ABORT, int(0))]))]));
    assert!(matches!(
        update(&mut device(1), &hard),
        Err(Error::ConditionFailed {
            condition: Condition::Abort,
            ..
        })
    ));
    let soft = one(seq(&[
        (
            RUN_SEQ,
            seq(&[
                (OVERRIDE, params(&[(P_SOFT, Value::Bool(true))])),
                (ABORT, int(0)),
            ]),
        ),
        (OVERRIDE, params(&[(P_CONTENT, bytes(b"after"))])),
        (WRITE, int(0)),
    ]));
    let mut dev = device(1);
    update(&mut dev, &soft).unwrap();
    assert_eq!(dev.content(&[C0], None), b"after");
}

#[test]
fn a_directive_failure_aborts_even_when_soft() {
    // fetch with no URI inside a soft branch: a directive failure is never soft.
    let env = one(seq(&[(
        TRY_EACH,
        Value::Array(vec![seq(&[(FETCH, int(0))]), seq(&[(WRITE, int(0))])]),
    )]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::MissingParameter {
            parameter: P_URI,
            component: 0
        })
    );
}

#[test]
fn component_index_true_and_lists_apply_to_each_component() {
    let env = sign(envelope(
        1,
        &[&[C0], &[C1]],
        None,
        &[(
            INSTALL,
            seq(&[
                (SET_INDEX, Value::Bool(true)),
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"both"))])),
                (WRITE, int(0)),
                (SET_INDEX, Value::Array(vec![int(1)])),
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"one"))])),
                (WRITE, int(0)),
            ]),
        )],
        &[],
    ));
    let mut dev = device(2);
    let s = update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), b"both");
    assert_eq!(dev.content(&[C1], None), b"one");
    assert_eq!(s.components_written, 0b11);
}

#[test]
fn several_components_need_an_explicit_index() {
    let env = sign(envelope(
        1,
        &[&[C0], &[C1]],
        None,
        &[(INSTALL, seq(&[(WRITE, int(0))]))],
        &[],
    ));
    assert_eq!(
        update(&mut device(2), &env),
        Err(Error::NoComponentSelected)
    );
    let env = sign(envelope(
        1,
        &[&[C0], &[C1]],
        None,
        &[(INSTALL, seq(&[(SET_INDEX, int(2))]))],
        &[],
    ));
    assert_eq!(
        update(&mut device(2), &env),
        Err(Error::ComponentIndexOutOfRange(2))
    );
}

#[test]
fn copy_and_swap_move_images_between_components() {
    let img = image(21, 1500);
    let env = sign(envelope(
        1,
        &[&[C0], &[C1]],
        None,
        &[(
            INSTALL,
            seq(&[
                (SET_INDEX, int(1)),
                (OVERRIDE, params(&[(P_CONTENT, bytes(&img))])),
                (WRITE, int(0)),
                (SET_INDEX, int(0)),
                (
                    OVERRIDE,
                    params(&[(P_SOURCE, int(1)), (P_DIGEST, digest_of(&img))]),
                ),
                (COPY, int(0)),
                (IMAGE_MATCH, int(0)),
            ]),
        )],
        &[],
    ));
    let mut dev = device(2);
    update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), &img[..]);

    let env = sign(envelope(
        2,
        &[&[C0], &[C1]],
        None,
        &[(
            INSTALL,
            seq(&[
                (SET_INDEX, int(1)),
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"new"))])),
                (WRITE, int(0)),
                (SET_INDEX, int(0)),
                (OVERRIDE, params(&[(P_SOURCE, int(1))])),
                (SWAP, int(0)),
            ]),
        )],
        &[],
    ));
    update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), b"new");
    assert_eq!(dev.content(&[C1], None), &img[..]);

    let self_copy = sign(envelope(
        3,
        &[&[C0]],
        None,
        &[(
            INSTALL,
            seq(&[(OVERRIDE, params(&[(P_SOURCE, int(0))])), (COPY, int(0))]),
        )],
        &[],
    ));
    assert_eq!(
        update(&mut dev, &self_copy),
        Err(Error::SourceIsDestination)
    );
}

#[test]
fn integrated_payloads_are_fetched_from_the_envelope() {
    let img = image(22, 2000);
    let env = sign(envelope(
        1,
        &[&[C0]],
        None,
        &[(
            INSTALL,
            seq(&[
                (
                    OVERRIDE,
                    params(&[(P_URI, text("#fw")), (P_DIGEST, digest_of(&img))]),
                ),
                (FETCH, int(0)),
                (IMAGE_MATCH, int(0)),
            ]),
        )],
        &[("#fw", &img)],
    ));
    let mut dev = device(1);
    update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), &img[..]);
    assert!(dev.fetched.is_empty(), "no transport used");
}

#[test]
fn a_payload_larger_than_image_size_is_refused() {
    let env = one(seq(&[
        (
            OVERRIDE,
            params(&[(P_CONTENT, bytes(&[7; 600])), (P_SIZE, int(599))]),
        ),
        (WRITE, int(0)),
    ]));
    assert_eq!(update(&mut device(1), &env), Err(Error::ImageSizeExceeded));
}

/// Without the `encryption` feature; with it, see `encryption.rs`.
#[cfg(not(feature = "encryption"))]
#[test]
fn encrypted_payloads_are_refused_without_the_encryption_feature() {
    let env = one(seq(&[
        (
            OVERRIDE,
            params(&[(P_CONTENT, bytes(b"x")), (P_ENCRYPTION, bytes(&[0xa0]))]),
        ),
        (WRITE, int(0)),
    ]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::UnsupportedParameter(P_ENCRYPTION))
    );
}

#[test]
fn custom_commands_fail_clearly() {
    let env = one(seq(&[(-300, Value::Null)]));
    assert_eq!(
        update(&mut device(1), &env),
        Err(Error::UnsupportedCommand(-300))
    );
}

#[test]
fn use_before_needs_a_clock_and_a_future_deadline() {
    let env = one(seq(&[
        (OVERRIDE, params(&[(P_USE_BEFORE, int(1_000))])),
        (USE_BEFORE, int(0)),
    ]));
    for (now, ok) in [
        (None, false),
        (Some(999), true),
        (Some(1_000), true),
        (Some(1_001), false),
    ] {
        let mut dev = device(1);
        dev.now = now;
        assert_eq!(update(&mut dev, &env).is_ok(), ok, "now = {now:?}");
    }
}

#[test]
fn reporting_policy_decides_what_is_recorded() {
    for (policy, expect) in [(0, 0), (1, 1), (2, 0), (4, 1), (15, 1)] {
        let env = one(seq(&[
            (OVERRIDE, params(&[(P_CONTENT, bytes(b"r"))])),
            (WRITE, int(policy)),
        ]));
        let mut dev = device(1);
        update(&mut dev, &env).unwrap();
        let n = dev.records.iter().filter(|r| r.command == WRITE).count();
        assert_eq!(n, expect, "policy {policy}");
        if let Some(r) = dev.records.iter().find(|r| r.command == WRITE) {
            assert_eq!(r.sysinfo, policy & 4 != 0);
        }
    }
}

#[test]
fn the_shared_sequence_runs_before_every_sequence() {
    // Validate and invoke each see the parameters the shared sequence sets.
    let img = b"boot me".to_vec();
    let shared = seq(&[(OVERRIDE, params(&[(P_DIGEST, digest_of(&img))]))]);
    let env = sign(envelope(
        1,
        &[&[C0]],
        Some(shared),
        &[
            (VALIDATE, seq(&[(IMAGE_MATCH, int(0))])),
            (INVOKE_SEQ, seq(&[(INVOKE, int(0))])),
        ],
        &[],
    ));
    let mut dev = device(1);
    dev.preload(&[C0], None, &img);
    invoke(&mut dev, &env).unwrap();
    assert_eq!(dev.invoked, vec![(0, None)]);
}
