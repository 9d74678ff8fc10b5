//! Update management (feature `update-management`): version, minimum-battery,
//! update-authorized, wait, use-before against the platform clock, set-version.

use ciborium::Value;
use suitcase_processor::platform::Version;
use suitcase_processor::report::SequenceKind;
use suitcase_processor::suit::Condition;
use suitcase_processor::{Error, UpdateSummary};
use suitcase_testkit::build::{bytes, envelope, int, params, seq, wrap};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::{Rewrite, Signer};

const KEY: [u8; 32] = [0x3c; 32];
const C0: &[u8] = &[0];

const USE_BEFORE: i64 = 4;
const TRY_EACH: i64 = 15;
const WRITE: i64 = 18;
const OVERRIDE: i64 = 20;
const MIN_BATTERY: i64 = 26;
const AUTHORIZED: i64 = 27;
const VERSION: i64 = 28;
const WAIT: i64 = 29;
const P_USE_BEFORE: i64 = 4;
const P_CONTENT: i64 = 18;
const P_BATTERY: i64 = 26;
const P_PRIORITY: i64 = 27;
const P_VERSION: i64 = 28;
const P_WAIT: i64 = 29;
const INSTALL: i64 = 20;
const SET_VERSION: i64 = 6;

fn envelope_with(members: &[(i64, Value)]) -> Vec<u8> {
    Rewrite {
        signers: vec![Signer::Mac(KEY.to_vec())],
        ..Default::default()
    }
    .apply(&envelope(1, &[&[C0]], None, members, &[]))
    .unwrap()
}

fn install(cmds: &[(i64, Value)]) -> Vec<u8> {
    envelope_with(&[(INSTALL, seq(cmds))])
}

fn device() -> MemDevice {
    MemDevice::spec().with_component(&[C0], None, 256)
}

fn update(dev: &mut MemDevice, env: &[u8]) -> Result<UpdateSummary, Error> {
    super::common::mac_update(dev, env, &KEY)
}

/// `bstr .cbor [cmp, [parts…]]`.
fn version(cmp: i64, parts: &[i64]) -> Value {
    wrap(&Value::Array(vec![
        int(cmp),
        Value::Array(parts.iter().map(|p| int(*p)).collect()),
    ]))
}

fn v(parts: &[i64]) -> Version {
    Version::new(parts).unwrap()
}

/// try-each: "installed ≥ 2.0 → write `new-abi`", else "write `old-abi`".
fn branch_on_version() -> Vec<u8> {
    install(&[(
        TRY_EACH,
        Value::Array(vec![
            seq(&[
                (OVERRIDE, params(&[(P_VERSION, version(2, &[2, 0]))])),
                (VERSION, int(15)),
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"new-abi"))])),
                (WRITE, int(0)),
            ]),
            seq(&[
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"old-abi"))])),
                (WRITE, int(0)),
            ]),
        ]),
    )])
}

#[test]
fn a_version_condition_selects_the_right_branch() {
    for (installed, expect) in [
        (&[1, 9][..], &b"old-abi"[..]),
        (&[2][..], b"new-abi"),
        (&[2, 0, 0][..], b"new-abi"),
        (&[2, 0, 1][..], b"new-abi"),
        (&[1, 99, 99][..], b"old-abi"),
    ] {
        let mut dev = device();
        dev.policy.installed = Some(v(installed));
        update(&mut dev, &branch_on_version()).unwrap();
        assert_eq!(dev.content(&[C0], None), expect, "installed {installed:?}");
    }
}

#[test]
fn every_comparison_type() {
    // installed 1.2 against 1.2 / 1.3 / 1.1: (cmp, holds for each).
    let table = [
        (1, [false, false, true]),
        (2, [true, false, true]),
        (3, [true, false, false]),
        (4, [true, true, false]),
        (5, [false, true, false]),
    ];
    for (cmp, expect) in table {
        for (wanted, ok) in [[1, 2], [1, 3], [1, 1]].iter().zip(expect) {
            let env = install(&[
                (OVERRIDE, params(&[(P_VERSION, version(cmp, wanted))])),
                (VERSION, int(0)),
            ]);
            let mut dev = device();
            dev.policy.installed = Some(v(&[1, 2]));
            let r = update(&mut dev, &env);
            assert_eq!(r.is_ok(), ok, "cmp {cmp} wanted {wanted:?}: {r:?}");
            if !ok {
                assert!(matches!(
                    r,
                    Err(Error::ConditionFailed {
                        condition: Condition::Version,
                        ..
                    })
                ));
            }
        }
    }
}

#[test]
fn a_platform_that_cannot_answer_aborts_even_inside_try_each() {
    // NoPolicy-like default: no installed version. The try-each must not quietly take
    // the fallback branch.
    let mut dev = device();
    assert_eq!(
        update(&mut dev, &branch_on_version()),
        Err(Error::CannotAnswer {
            command: VERSION,
            component: 0
        })
    );
    assert_eq!(dev.content(&[C0], None), b"");
    for (cmd, p) in [
        (MIN_BATTERY, (P_BATTERY, int(100))),
        (AUTHORIZED, (P_PRIORITY, int(1))),
    ] {
        let env = install(&[(OVERRIDE, params(&[p])), (cmd, int(0))]);
        assert_eq!(
            update(&mut device(), &env),
            Err(Error::CannotAnswer {
                command: cmd,
                component: 0
            })
        );
    }
    let env = install(&[
        (
            OVERRIDE,
            params(&[(P_WAIT, wrap(&Value::Map(vec![(int(1), int(1))])))]),
        ),
        (WAIT, int(0)),
    ]);
    assert_eq!(
        update(&mut device(), &env),
        Err(Error::CannotAnswer {
            command: WAIT,
            component: 0
        })
    );
    let mut dev = device();
    dev.policy.events_occur = true;
    update(&mut dev, &env).unwrap();
    // The abort is recorded as the condition's failure when its policy asks, and named
    // as the failing command.
    let env = install(&[
        (OVERRIDE, params(&[(P_BATTERY, int(1))])),
        (MIN_BATTERY, int(2)),
    ]);
    let mut dev = device();
    assert!(update(&mut dev, &env).is_err());
    assert_eq!(dev.records.len(), 1);
    assert_eq!(dev.records[0].command, MIN_BATTERY);
    assert_eq!(
        dev.records[0].outcome,
        suitcase_processor::report::Outcome::Failure
    );
    assert_eq!(dev.failure.unwrap().0.command, MIN_BATTERY);
    // A malformed version parameter cannot be compared either.
    let env = install(&[
        (OVERRIDE, params(&[(P_VERSION, version(9, &[1]))])),
        (VERSION, int(0)),
    ]);
    let mut dev = device();
    dev.policy.installed = Some(v(&[1]));
    assert!(matches!(
        update(&mut dev, &env),
        Err(Error::CannotAnswer { command: 28, .. })
    ));
}

#[test]
fn minimum_battery_and_update_authorized() {
    let battery = install(&[
        (OVERRIDE, params(&[(P_BATTERY, int(500))])),
        (MIN_BATTERY, int(0)),
    ]);
    for (level, ok) in [(499, false), (500, true), (4000, true)] {
        let mut dev = device();
        dev.policy.battery = Some(level);
        assert_eq!(update(&mut dev, &battery).is_ok(), ok, "level {level}");
    }
    let auth = install(&[
        (OVERRIDE, params(&[(P_PRIORITY, int(-1))])),
        (AUTHORIZED, int(0)),
    ]);
    for answer in [true, false] {
        let mut dev = device();
        dev.policy.authorized = Some(answer);
        assert_eq!(update(&mut dev, &auth).is_ok(), answer);
    }
    // Unset parameters fail the condition, as for every condition.
    let unset = install(&[(MIN_BATTERY, int(0))]);
    let mut dev = device();
    dev.policy.battery = Some(1);
    assert!(matches!(
        update(&mut dev, &unset),
        Err(Error::ConditionFailed {
            condition: Condition::MinimumBattery,
            sequence: SequenceKind::Install,
            ..
        })
    ));
}

#[test]
fn an_expired_manifest_is_refused() {
    // A frozen (replayed, stale) manifest: its use-before is in the past.
    let env = install(&[
        (OVERRIDE, params(&[(P_USE_BEFORE, int(1_700_000_000))])),
        (USE_BEFORE, int(0)),
        (OVERRIDE, params(&[(P_CONTENT, bytes(b"stale"))])),
        (WRITE, int(0)),
    ]);
    let mut dev = device();
    dev.now = Some(1_800_000_000);
    assert_eq!(
        update(&mut dev, &env),
        Err(Error::ConditionFailed {
            condition: Condition::UseBefore,
            component: 0,
            sequence: SequenceKind::Install
        })
    );
    assert_eq!(dev.content(&[C0], None), b"");
    assert_eq!(dev.rollback.0, 0, "the counter does not move");
    // Without a clock it is refused too; before the deadline it installs.
    dev.now = None;
    assert!(update(&mut dev, &env).is_err());
    dev.now = Some(1_600_000_000);
    update(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[C0], None), b"stale");
}

#[test]
fn set_version_is_recorded_only_after_a_successful_update() {
    let set = wrap(&Value::Array(vec![int(3), int(1)]));
    let ok = envelope_with(&[
        (SET_VERSION, set.clone()),
        (
            INSTALL,
            seq(&[
                (OVERRIDE, params(&[(P_CONTENT, bytes(b"x"))])),
                (WRITE, int(0)),
            ]),
        ),
    ]);
    let mut dev = device();
    update(&mut dev, &ok).unwrap();
    assert_eq!(dev.policy.installed, Some(v(&[3, 1])));

    let failing = envelope_with(&[(SET_VERSION, set), (INSTALL, seq(&[(14, int(0))]))]);
    let mut dev = device();
    assert!(update(&mut dev, &failing).is_err());
    assert_eq!(dev.policy.installed, None);
}
