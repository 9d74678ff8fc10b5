//! Hand-built envelopes for tests of the abstract machine: terse constructors over
//! ciborium values. Sign the result with [`crate::resign::Rewrite`].

use ciborium::Value;
use sha2::{Digest as _, Sha256};

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// An integer value.
pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// A byte-string value.
pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

/// A text value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// `value` encoded and wrapped in a bstr.
pub fn wrap(value: &Value) -> Value {
    Value::Bytes(enc(value))
}

/// A command sequence as its bstr (`bstr .cbor [code, arg, …]`).
pub fn seq(cmds: &[(i64, Value)]) -> Value {
    let mut items = Vec::new();
    for (c, a) in cmds {
        items.push(int(*c));
        items.push(a.clone());
    }
    wrap(&Value::Array(items))
}

/// A parameter map.
pub fn params(p: &[(i64, Value)]) -> Value {
    Value::Map(p.iter().map(|(k, v)| (int(*k), v.clone())).collect())
}

/// The image-digest parameter value for `image` (`bstr .cbor [-16, sha256]`).
pub fn digest_of(image: &[u8]) -> Value {
    wrap(&Value::Array(vec![int(-16), bytes(&Sha256::digest(image))]))
}

/// A component identifier value.
pub fn component(segments: &[&[u8]]) -> Value {
    Value::Array(segments.iter().map(|s| bytes(s)).collect())
}

/// A SUIT_Manifest value: `components`, `dependencies` (trust domains: component index →
/// dependency-prefix), the shared sequence, and further members by key.
pub fn manifest(
    sequence_number: u64,
    components: &[&[&[u8]]],
    dependencies: &[(u32, &[&[u8]])],
    shared: Option<Value>,
    members: &[(i64, Value)],
) -> Value {
    let mut common = Vec::new();
    if !dependencies.is_empty() {
        let deps = dependencies
            .iter()
            .map(|(i, p)| {
                let prefix = Value::Map(vec![(int(1), component(p))]);
                (int(i64::from(*i)), prefix)
            })
            .collect();
        common.push((int(1), Value::Map(deps)));
    }
    let comps = components.iter().map(|c| component(c)).collect();
    common.push((int(2), Value::Array(comps)));
    if let Some(s) = shared {
        common.push((int(4), s));
    }
    let mut m = vec![
        (int(1), int(1)),
        (int(2), Value::Integer(sequence_number.into())),
        (int(3), wrap(&Value::Map(common))),
    ];
    m.extend(members.iter().map(|(k, v)| (int(*k), v.clone())));
    Value::Map(m)
}

/// `manifest`'s encoding.
pub fn encode(v: &Value) -> Vec<u8> {
    enc(v)
}

/// An unsigned envelope (auth wrapper with a dummy digest: [`crate::resign::Rewrite`]
/// recomputes it). `members` are extra manifest entries (sequences by key);
/// `integrated` are text-keyed envelope entries.
pub fn envelope(
    sequence_number: u64,
    components: &[&[&[u8]]],
    shared: Option<Value>,
    members: &[(i64, Value)],
    integrated: &[(&str, &[u8])],
) -> Vec<u8> {
    let m = manifest(sequence_number, components, &[], shared, members);
    let auth = wrap(&Value::Array(vec![wrap(&Value::Array(vec![
        int(-16),
        bytes(&[0; 32]),
    ]))]));
    let mut env = vec![(int(2), auth), (int(3), wrap(&m))];
    env.extend(integrated.iter().map(|(k, v)| (text(k), bytes(v))));
    enc(&Value::Tag(107, Box::new(Value::Map(env))))
}

/// An envelope around raw manifest bytes (which need not be valid), with the auth digest
/// computed and signed by `signers`: lets property tests and fuzzers reach the manifest
/// decoder and the processor with inputs that pass authentication.
pub fn sign_raw_manifest(manifest: &[u8], signers: &[crate::resign::Signer]) -> Vec<u8> {
    use crate::resign::{Signer, bstr_encoding};
    let whole = bstr_encoding(manifest);
    let digest = enc(&Value::Array(vec![
        int(-16),
        bytes(&Sha256::digest(&whole)),
    ]));
    let mut auth = vec![Value::Bytes(digest.clone())];
    for s in signers {
        let cose = match s {
            Signer::Sign(k, alg) => suitcase_cose::sign1_detached(k, *alg, None, &digest),
            Signer::Mac(k) => suitcase_cose::mac0_detached(k, None, &digest),
        }
        .expect("signing with a valid key");
        auth.push(Value::Bytes(cose));
    }
    let env = Value::Tag(
        107,
        Box::new(Value::Map(vec![
            (int(2), wrap(&Value::Array(auth))),
            (int(3), Value::Bytes(manifest.to_vec())),
        ])),
    );
    enc(&env)
}
