//! SUIT reports (feature `report`): records, the failing command, the encoding (decoded
//! independently with ciborium) and the device's signature (verified with suitcase-cose).

use ciborium::Value;
use suitcase_cose::{CoseMessage, VerifyingKey};
use suitcase_processor::platform::{StaticKeys, TrustAnchor};
use suitcase_processor::report::{
    DeviceKey, Reason, Reference, ReportLog, Reporter, SequenceKind, encode_report, sign_report,
};
use suitcase_processor::{Error, authenticate};
use suitcase_testkit::build::{bytes, digest_of, envelope, int, params, seq};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::{Rewrite, Signer};

const KEY: [u8; 32] = [0x77; 32];
const C0: &[u8] = &[0];
const IMAGE_MATCH: i64 = 3;
const WRITE: i64 = 18;
const OVERRIDE: i64 = 20;
const FETCH: i64 = 21;
const RUN_SEQ: i64 = 32;
const INSTALL: i64 = 20;

fn signed(install: Value) -> Vec<u8> {
    Rewrite {
        signers: vec![Signer::Mac(KEY.to_vec())],
        ..Default::default()
    }
    .apply(&envelope(4, &[&[C0]], None, &[(INSTALL, install)], &[]))
    .unwrap()
}

/// Runs the update and returns the device and the signed report (ES256 device key).
fn run(env: &[u8], nonce: &[u8]) -> (MemDevice, Result<(), Error>, Vec<u8>) {
    let anchors = [TrustAnchor {
        key: VerifyingKey::Hmac256(&KEY),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let auth = authenticate(env, &keys).unwrap();
    let mut dev = MemDevice::spec().with_component(&[C0], None, 256);
    let result = dev.with_platform(|p| auth.update(p)).map(|_| ());
    // The device's log, filled from what the platform's reporter saw.
    let mut log = ReportLog::<16>::new();
    for r in &dev.records {
        log.record(r);
    }
    if let Some((r, e)) = &dev.failure {
        log.failed(r, e);
    }
    let mut report = [0u8; 512];
    let n = log
        .encode(
            Some(&Reference::of(&auth)),
            Some(nonce),
            result.as_ref().map(|_| ()),
            &mut report,
        )
        .unwrap();
    let sk = device_key();
    let mut cose = [0u8; 700];
    let m = sign_report(
        DeviceKey::Es256(&sk),
        Some(b"dev-1"),
        &report[..n],
        &mut cose,
    )
    .unwrap();
    (dev, result, cose[..m].to_vec())
}

fn device_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap()
}

/// Verifies the COSE_Sign1 with the device's public key and decodes the report.
fn open(cose: &[u8]) -> Value {
    let msg = CoseMessage::decode(cose).unwrap();
    VerifyingKey::P256(*device_key().verifying_key())
        .verify(&msg, b"")
        .expect("the report's signature verifies");
    ciborium::from_reader(msg.payload.unwrap()).unwrap()
}

fn get(map: &Value, key: i64) -> Option<&Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_integer() == Some(key.into()))
        .map(|(_, v)| v)
}

fn ints(v: &Value) -> Vec<i128> {
    v.as_array()
        .unwrap()
        .iter()
        .skip(1)
        .take(3)
        .map(|x| x.as_integer().unwrap().into())
        .collect()
}

#[test]
fn a_failing_install_report_names_the_failing_command_and_verifies() {
    let img = b"the image".to_vec();
    let env = signed(seq(&[
        (
            OVERRIDE,
            params(&[(18, bytes(&img)), (3, digest_of(b"another image"))]),
        ),
        (WRITE, int(15)),
        (IMAGE_MATCH, int(15)),
    ]));
    let (dev, result, cose) = run(&env, b"server nonce");
    assert!(matches!(result, Err(Error::ConditionFailed { .. })));
    let (failing, _) = dev.failure.unwrap();
    assert_eq!(failing.command, IMAGE_MATCH);

    let report = open(&cose);
    assert_eq!(
        get(&report, 2),
        Some(&Value::Bytes(b"server nonce".to_vec()))
    );
    // Records: write (success), image-match (failure), as the policies (15) ask.
    let records = get(&report, 3).unwrap().as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(ints(&records[1]), vec![20, failing.offset as i128, 0]);
    // The result names the command, the install section, its offset and the reason.
    let res = get(&report, 4).unwrap();
    assert_eq!(get(res, 5), Some(&int(IMAGE_MATCH)));
    let at = get(res, 6).unwrap();
    assert_eq!(at.as_array().unwrap()[0], Value::Array(vec![]));
    assert_eq!(ints(at), vec![INSTALL as i128, failing.offset as i128, 0]);
    assert_eq!(get(res, 7), Some(&int(Reason::ConditionFailed as i64)));
    // suit-reference: no URI, the manifest digest of the envelope.
    let reference = get(&report, 99).unwrap().as_array().unwrap();
    assert_eq!(reference[0], Value::Text(String::new()));
    assert_eq!(reference[1].as_array().unwrap()[0], int(-16));

    // A flipped byte anywhere in the payload breaks the signature.
    let mut bad = cose.clone();
    let at = bad.len() - 70;
    bad[at] ^= 0x01;
    let msg = CoseMessage::decode(&bad).unwrap();
    assert!(
        VerifyingKey::P256(*device_key().verifying_key())
            .verify(&msg, b"")
            .is_err()
    );
}

#[test]
fn the_innermost_failing_command_is_named() {
    // A fetch that cannot be served, inside a run-sequence: the report names the fetch
    // (policy 0: no record asked for), not the run-sequence around it.
    let env = signed(seq(&[(
        RUN_SEQ,
        seq(&[
            (
                OVERRIDE,
                params(&[(21, Value::Text("coap://nowhere/fw".into()))]),
            ),
            (FETCH, int(0)),
        ]),
    )]));
    let (dev, result, cose) = run(&env, b"n");
    assert!(matches!(result, Err(Error::Fetch(_))));
    assert!(dev.records.is_empty());
    let report = open(&cose);
    let res = get(&report, 4).unwrap();
    assert_eq!(get(res, 5), Some(&int(FETCH)));
    assert_eq!(get(res, 7), Some(&int(Reason::OperationFailed as i64)));
    assert_eq!(dev.failure.unwrap().0.sequence, SequenceKind::Install);
}

#[test]
fn success_is_true_and_a_mac0_report_verifies() {
    let env = signed(seq(&[
        (OVERRIDE, params(&[(18, bytes(b"x"))])),
        (WRITE, int(1)),
    ]));
    let (_, result, cose) = run(&env, b"n");
    result.unwrap();
    let report = open(&cose);
    assert_eq!(get(&report, 4), Some(&Value::Bool(true)));
    assert_eq!(get(&report, 3).unwrap().as_array().unwrap().len(), 1);

    // The same report under an HMAC device key.
    let msg = CoseMessage::decode(&cose).unwrap();
    let payload = msg.payload.unwrap();
    let mut out = [0u8; 400];
    let n = sign_report(
        DeviceKey::Hmac256(b"device mac key"),
        None,
        payload,
        &mut out,
    )
    .unwrap();
    let mac = CoseMessage::decode(&out[..n]).unwrap();
    VerifyingKey::Hmac256(b"device mac key")
        .verify(&mac, b"")
        .unwrap();
    assert!(
        VerifyingKey::Hmac256(b"other key")
            .verify(&mac, b"")
            .is_err()
    );
}

#[test]
fn failures_outside_commands_and_small_buffers() {
    // A rollback refusal: no command, section 2 (sequence number), reason unauthorised.
    let e = Error::Rollback {
        installed: 5,
        offered: 4,
    };
    let mut out = [0u8; 64];
    let n = encode_report(None, None, &[], Err((&e, None)), &mut out).unwrap();
    let v: Value = ciborium::from_reader(&out[..n]).unwrap();
    let res = get(&v, 4).unwrap();
    assert_eq!(get(res, 5), Some(&int(0)));
    assert_eq!(ints(get(res, 6).unwrap()), vec![2, 0, 0]);
    assert_eq!(get(res, 7), Some(&int(Reason::Unauthorised as i64)));
    assert!(get(&v, 99).is_none() && get(&v, 2).is_none());
    // Every buffer shorter than the report is refused, never overrun.
    for len in 0..n {
        assert!(encode_report(None, None, &[], Err((&e, None)), &mut out[..len]).is_err());
    }
    // A log holds N records and counts the rest.
    let mut log = ReportLog::<1>::new();
    let r = suitcase_processor::report::Record {
        manifest: suitcase_processor::report::ManifestPath::ROOT,
        sequence: SequenceKind::Install,
        offset: 1,
        command: 18,
        component: 0,
        outcome: suitcase_processor::report::Outcome::Success,
        sysinfo: false,
        observed: None,
    };
    log.record(&r);
    log.record(&r);
    assert_eq!((log.records().len(), log.dropped), (1, 1));
}

#[test]
fn sysinfo_carries_the_measured_digest_and_size_only_when_asked() {
    use sha2::{Digest as _, Sha256};
    // write with policy 5 (record + sysinfo on success), image-match with policy 1 (record
    // only), both succeeding.
    let env = signed(seq(&[
        (
            OVERRIDE,
            params(&[(18, bytes(b"hello")), (3, digest_of(b"hello"))]),
        ),
        (WRITE, int(5)),
        (IMAGE_MATCH, int(1)),
    ]));
    let (_, result, cose) = run(&env, b"n");
    result.unwrap();
    let report = open(&cose);
    let records = get(&report, 3).unwrap().as_array().unwrap();
    assert_eq!(records.len(), 2);
    let properties = |r: &Value| r.as_array().unwrap()[4].clone();
    // The write's record: {3: << [-16, sha256("hello")] >>, 14: 5}.
    let mut digest = Vec::new();
    ciborium::into_writer(
        &Value::Array(vec![int(-16), bytes(&Sha256::digest(b"hello"))]),
        &mut digest,
    )
    .unwrap();
    assert_eq!(
        properties(&records[0]),
        Value::Map(vec![(int(3), Value::Bytes(digest)), (int(14), int(5))])
    );
    // The image-match's policy did not ask for sysinfo.
    assert_eq!(properties(&records[1]), Value::Map(vec![]));
}
