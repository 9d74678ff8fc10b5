//! Property tests of the decoder: arbitrary input never panics, and what an encoder
//! writes is exactly what the decoder reads back (parameters and command sequences).

use ciborium::Value;
use proptest::prelude::*;
use suitcase_suit::{Command, CommandSequence, Digest, Envelope, IndexArg, Parameter, VendorId};

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// A parameter as (code, CBOR value, expected decoded form as a comparable string).
fn parameter() -> impl Strategy<Value = (i64, Value)> {
    prop_oneof![
        proptest::array::uniform16(any::<u8>()).prop_map(|u| (1, Value::Bytes(u.to_vec()))),
        proptest::array::uniform16(any::<u8>()).prop_map(|u| (2, Value::Bytes(u.to_vec()))),
        proptest::array::uniform32(any::<u8>()).prop_map(|d| {
            (
                3,
                Value::Bytes(enc(&Value::Array(vec![
                    Value::Integer((-16).into()),
                    Value::Bytes(d.to_vec()),
                ]))),
            )
        }),
        any::<u64>().prop_map(|v| (5, Value::Integer(v.into()))),
        any::<bool>().prop_map(|v| (12, Value::Bool(v))),
        any::<u64>().prop_map(|v| (14, Value::Integer(v.into()))),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|v| (18, Value::Bytes(v))),
        "[a-z:/.#]{0,40}".prop_map(|s| (21, Value::Text(s))),
        any::<u32>().prop_map(|v| (22, Value::Integer(v.into()))),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| (23, Value::Bytes(v))),
        any::<i64>().prop_map(|v| (27, Value::Integer(v.into()))),
        (-1000i64..-257, any::<i64>()).prop_map(|(k, v)| (k, Value::Integer(v.into()))),
    ]
}

fn check(p: &Parameter<'_>, code: i64, v: &Value) {
    assert_eq!(p.code(), code);
    match (p, v) {
        (Parameter::VendorId(VendorId::Uuid(b)), Value::Bytes(e))
        | (Parameter::ClassId(b), Value::Bytes(e))
        | (Parameter::Content(b), Value::Bytes(e))
        | (Parameter::InvokeArgs(b), Value::Bytes(e)) => assert_eq!(*b, &e[..]),
        (Parameter::ImageDigest(d), Value::Bytes(e)) => assert_eq!(*d, Digest::decode(e).unwrap()),
        (Parameter::ComponentSlot(x), Value::Integer(i))
        | (Parameter::ImageSize(x), Value::Integer(i)) => {
            assert_eq!(i128::from(*x), i128::from(*i))
        }
        (Parameter::SourceComponent(x), Value::Integer(i)) => {
            assert_eq!(i128::from(*x), i128::from(*i))
        }
        (Parameter::UpdatePriority(x), Value::Integer(i)) => {
            assert_eq!(i128::from(*x), i128::from(*i))
        }
        (Parameter::StrictOrder(x), Value::Bool(b)) => assert_eq!(x, b),
        (Parameter::Uri(s), Value::Text(t)) => assert_eq!(s, t),
        (
            Parameter::Custom(_, suitcase_suit::parameter::CustomValue::Int(x)),
            Value::Integer(i),
        ) => {
            assert_eq!(i128::from(*x), i128::from(*i))
        }
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(e) = Envelope::decode(&bytes)
            && let Ok(m) = e.manifest()
        {
            for k in suitcase_suit::SeverableKind::ALL {
                let _ = e.sequence(&m, k);
            }
        }
        let _ = CommandSequence::decode(&bytes).map(|s| s.iter().count());
        let _ = Digest::decode(&bytes);
    }

    #[test]
    fn parameters_round_trip(list in proptest::collection::btree_map(any::<u8>(), parameter(), 1..12)) {
        // Distinct codes only: duplicates are (rightly) refused, tested separately.
        let mut seen = std::collections::BTreeMap::new();
        for (_, (code, v)) in list {
            seen.entry(code).or_insert(v);
        }
        let map = Value::Map(seen.iter().map(|(k, v)| (Value::Integer((*k).into()), v.clone())).collect());
        let seq = enc(&Value::Array(vec![Value::Integer(20.into()), map]));
        let s = CommandSequence::decode(&seq).unwrap();
        let cmds: Vec<_> = s.iter().map(|c| c.unwrap().1).collect();
        prop_assert_eq!(cmds.len(), 1);
        let Command::OverrideParameters(p) = cmds[0] else { panic!("{:?}", cmds[0]) };
        let decoded: Vec<_> = p.iter().collect();
        prop_assert_eq!(decoded.len(), seen.len());
        for (d, (code, v)) in decoded.iter().zip(seen.iter()) {
            check(d, *code, v);
        }
    }

    #[test]
    fn duplicate_parameter_keys_are_refused(code in prop_oneof![Just(5i64), Just(14), Just(22)], a in any::<u32>(), b in any::<u32>()) {
        let map = Value::Map(vec![
            (Value::Integer(code.into()), Value::Integer(a.into())),
            (Value::Integer(code.into()), Value::Integer(b.into())),
        ]);
        let seq = enc(&Value::Array(vec![Value::Integer(20.into()), map]));
        let e = CommandSequence::decode(&seq).unwrap_err();
        prop_assert_eq!(e.kind, suitcase_suit::DecodeErrorKind::DuplicateKey);
    }

    #[test]
    fn component_index_lists_round_trip(list in proptest::collection::vec(0u32..8, 1..8)) {
        let arg = Value::Array(list.iter().map(|i| Value::Integer((*i).into())).collect());
        let seq = enc(&Value::Array(vec![Value::Integer(12.into()), arg]));
        let s = CommandSequence::decode(&seq).unwrap();
        let (_, c) = s.iter().next().unwrap().unwrap();
        let Command::SetComponentIndex(IndexArg::List(l)) = c else { panic!("{c:?}") };
        prop_assert_eq!(l.iter().collect::<Vec<_>>(), list);
    }

    #[test]
    fn nesting_past_the_bound_is_refused(depth in 1usize..12) {
        // run-sequence inside run-sequence, `depth` deep.
        let mut inner = enc(&Value::Array(vec![Value::Integer(14.into()), Value::Integer(0.into())]));
        for _ in 0..depth {
            inner = enc(&Value::Array(vec![Value::Integer(32.into()), Value::Bytes(inner)]));
        }
        let r = CommandSequence::decode(&inner);
        if depth < suitcase_suit::command::MAX_SEQUENCE_DEPTH {
            prop_assert!(r.is_ok());
        } else {
            prop_assert_eq!(r.unwrap_err().kind, suitcase_suit::DecodeErrorKind::TooDeep);
        }
    }
}
