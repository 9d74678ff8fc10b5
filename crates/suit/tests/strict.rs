//! Strictness: each malformation of an otherwise valid envelope gets its own typed error.

use ciborium::Value;
use suitcase_suit::{CommandSequence, DecodeErrorKind as K, Element, Envelope};

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}
fn int(i: i64) -> Value {
    Value::Integer(i.into())
}
fn wrap(v: &Value) -> Value {
    Value::Bytes(enc(v))
}

fn manifest(extra: Vec<(Value, Value)>) -> Value {
    let common = wrap(&Value::Map(vec![(
        int(2),
        Value::Array(vec![Value::Array(vec![Value::Bytes(vec![0])])]),
    )]));
    let mut m = vec![(int(1), int(1)), (int(2), int(7)), (int(3), common)];
    m.extend(extra);
    Value::Map(m)
}

fn auth() -> Value {
    wrap(&Value::Array(vec![wrap(&Value::Array(vec![
        int(-16),
        Value::Bytes(vec![0; 32]),
    ]))]))
}

fn envelope(entries: Vec<(Value, Value)>) -> Vec<u8> {
    enc(&Value::Tag(107, Box::new(Value::Map(entries))))
}

fn kind(bytes: &[u8]) -> K {
    match Envelope::decode(bytes).and_then(|e| e.manifest()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.kind,
    }
}

#[test]
fn a_minimal_envelope_decodes() {
    let b = envelope(vec![(int(2), auth()), (int(3), wrap(&manifest(vec![])))]);
    let e = Envelope::decode(&b).unwrap();
    assert_eq!(e.manifest().unwrap().sequence_number, 7);
}

#[test]
fn each_malformation_has_its_own_error() {
    let good_m = wrap(&manifest(vec![]));
    // Trailing bytes after the envelope.
    let mut b = envelope(vec![(int(2), auth()), (int(3), good_m.clone())]);
    b.push(0);
    assert_eq!(kind(&b), K::TrailingBytes);
    // Wrong tag.
    let b = enc(&Value::Tag(
        108,
        Box::new(Value::Map(vec![(int(2), auth()), (int(3), good_m.clone())])),
    ));
    assert_eq!(kind(&b), K::UnexpectedTag(108));
    // Duplicate envelope key.
    let b = envelope(vec![
        (int(2), auth()),
        (int(3), good_m.clone()),
        (int(3), good_m.clone()),
    ]);
    assert_eq!(kind(&b), K::DuplicateKey);
    // Manifest before the auth wrapper.
    let b = envelope(vec![(int(3), good_m.clone()), (int(2), auth())]);
    assert_eq!(kind(&b), K::AuthAfterManifest);
    // Unknown envelope element.
    let b = envelope(vec![
        (int(2), auth()),
        (int(3), good_m.clone()),
        (int(99), Value::Bytes(vec![])),
    ]);
    assert_eq!(kind(&b), K::UnknownEnvelopeElement(99));
    // Missing manifest.
    let b = envelope(vec![(int(2), auth())]);
    assert_eq!(kind(&b), K::Missing(Element::Manifest));
    // Unknown manifest element.
    let b = envelope(vec![
        (int(2), auth()),
        (int(3), wrap(&manifest(vec![(int(77), int(0))]))),
    ]);
    assert_eq!(kind(&b), K::UnknownManifestElement(77));
    // Manifest version 2.
    let mut m = manifest(vec![]);
    if let Value::Map(ref mut e) = m {
        e[0].1 = int(2);
    }
    let b = envelope(vec![(int(2), auth()), (int(3), wrap(&m))]);
    assert_eq!(kind(&b), K::UnsupportedManifestVersion);
    // A manifest bstr holding two items.
    let mut two = enc(&manifest(vec![]));
    two.push(0);
    let b = envelope(vec![(int(2), auth()), (int(3), Value::Bytes(two))]);
    assert_eq!(kind(&b), K::TrailingBytes);
    // An unknown command inside install.
    let install = wrap(&Value::Array(vec![int(99), int(0)]));
    let b = envelope(vec![
        (int(2), auth()),
        (int(3), wrap(&manifest(vec![(int(20), install)]))),
    ]);
    assert_eq!(kind(&b), K::UnknownCommand(99));
    // A directive in the shared sequence.
    let shared = wrap(&Value::Array(vec![int(21), int(0)]));
    let common = wrap(&Value::Map(vec![
        (
            int(2),
            Value::Array(vec![Value::Array(vec![Value::Bytes(vec![0])])]),
        ),
        (int(4), shared),
    ]));
    let m = Value::Map(vec![(int(1), int(1)), (int(2), int(7)), (int(3), common)]);
    let b = envelope(vec![(int(2), auth()), (int(3), wrap(&m))]);
    assert_eq!(kind(&b), K::CommandNotAllowedInSharedSequence(21));
}

#[test]
fn indefinite_lengths_and_oversized_integers_are_refused() {
    // [_ 14, 0] (indefinite array)
    assert_eq!(
        CommandSequence::decode(&[0x9f, 0x0e, 0x00, 0xff])
            .unwrap_err()
            .kind,
        K::IndefiniteLength
    );
    // set-component-index 2^40: does not fit a component index.
    let s = enc(&Value::Array(vec![
        int(12),
        Value::Integer((1u64 << 40).into()),
    ]));
    assert_eq!(
        CommandSequence::decode(&s).unwrap_err().kind,
        K::IntegerOverflow
    );
    // A command code beyond i64.
    let s = [
        0x82, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
    ];
    assert_eq!(
        CommandSequence::decode(&s).unwrap_err().kind,
        K::IntegerOverflow
    );
    // An array claiming more elements than there are bytes.
    assert_eq!(
        CommandSequence::decode(&[0x9a, 0xff, 0xff, 0xff, 0xff])
            .unwrap_err()
            .kind,
        K::Malformed
    );
    // Odd-length sequence.
    assert_eq!(
        CommandSequence::decode(&[0x81, 0x0e]).unwrap_err().kind,
        K::InvalidValue
    );
    // Image digest of the wrong length.
    let p = Value::Map(vec![(
        int(3),
        wrap(&Value::Array(vec![int(-16), Value::Bytes(vec![0; 31])])),
    )]);
    let s = enc(&Value::Array(vec![int(20), p]));
    assert_eq!(
        CommandSequence::decode(&s).unwrap_err().kind,
        K::InvalidValue
    );
}

/// A manifest whose common holds `deps` (SUIT_Dependencies) and one component.
fn with_dependencies(deps: Value) -> Vec<u8> {
    let common = wrap(&Value::Map(vec![
        (int(1), deps),
        (
            int(2),
            Value::Array(vec![Value::Array(vec![Value::Bytes(vec![0])])]),
        ),
    ]));
    let m = Value::Map(vec![(int(1), int(1)), (int(2), int(7)), (int(3), common)]);
    envelope(vec![(int(2), auth()), (int(3), wrap(&m))])
}

fn prefix(p: &[u8]) -> Value {
    Value::Map(vec![(int(1), Value::Array(vec![Value::Bytes(p.to_vec())]))])
}

#[test]
fn dependencies_extend_the_index_space_and_name_their_components() {
    let b = with_dependencies(Value::Map(vec![(int(2), prefix(b"dep"))]));
    let e = Envelope::decode(&b).unwrap();
    let m = e.manifest().unwrap();
    assert_eq!(m.index_count(), 3, "component 0, a gap at 1, dependency 2");
    let d = m.common.dependencies.unwrap();
    assert!(d.contains(2) && !d.contains(0) && !d.contains(1));
    let id = m.component_id(2).unwrap();
    assert_eq!(id.segments().collect::<Vec<_>>(), [b"dep"]);
    assert!(m.component_id(1).is_none());
    assert_eq!(
        m.component_id(0).unwrap().segments().next(),
        Some(&[0u8][..])
    );
}

#[test]
fn malformed_dependency_maps_are_refused() {
    // The index of a listed component: one index, two identifiers.
    let b = with_dependencies(Value::Map(vec![(int(0), prefix(b"dep"))]));
    assert_eq!(kind(&b), K::InvalidValue);
    // Past the component table.
    let b = with_dependencies(Value::Map(vec![(int(8), prefix(b"dep"))]));
    assert_eq!(kind(&b), K::TooManyComponents);
    // Empty map; unknown metadata key; duplicate index.
    assert_eq!(
        kind(&with_dependencies(Value::Map(vec![]))),
        K::InvalidValue
    );
    let b = with_dependencies(Value::Map(vec![(
        int(1),
        Value::Map(vec![(int(2), Value::Array(vec![]))]),
    )]));
    assert_eq!(kind(&b), K::InvalidValue);
    let b = with_dependencies(Value::Map(vec![
        (int(1), prefix(b"a")),
        (int(1), prefix(b"b")),
    ]));
    assert_eq!(kind(&b), K::DuplicateKey);
}
