//! Property tests: no input, however mangled, makes the decoder, the authenticator or
//! the processor panic; and authentication never accepts a mutated envelope.

use proptest::prelude::*;
use suitcase_processor::authenticate;
use suitcase_processor::platform::{StaticKeys, TrustAnchor};
use suitcase_processor::suit::Envelope;
use suitcase_testkit::build::sign_raw_manifest;
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::Signer;
use suitcase_testkit::vectors;

use super::common::*;

const KEY: [u8; 32] = [0x33; 32];

fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<_> = (0..=5).map(vectors::spec_example).collect();
    v.push(vectors::read(vectors::SPEC, "example2-severed.suit"));
    v.push(vectors::read(vectors::TD, "example2_integrated.suit"));
    v.push(vectors::read(vectors::ENC, "suit-manifest-aes-kw.suit"));
    v
}

/// The manifest bytes (inside envelope key 3) of each corpus entry.
fn manifests() -> Vec<Vec<u8>> {
    corpus()
        .iter()
        .map(|e| {
            let env = Envelope::decode(e).unwrap();
            let m = env.manifest_bytes;
            // Strip the bstr header: 0x58 len / 0x59 len len.
            let skip = match m[0] {
                0x40..=0x57 => 1,
                0x58 => 2,
                0x59 => 3,
                _ => 5,
            };
            m[skip..].to_vec()
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match *m {
            Mutation::Flip(i, x) => b[i % n] ^= x,
            Mutation::Set(i, x) => b[i % n] = x,
            Mutation::Insert(i, x) => b.insert(i % (n + 1), x),
            Mutation::Delete(i) => {
                b.remove(i % n);
            }
            Mutation::Truncate(i) => b.truncate(i % n),
        }
    }
    b
}

fn run_everything(env: &[u8], keys: &StaticKeys<'_>) {
    if let Ok(e) = Envelope::decode(env) {
        let _ = e.manifest();
    }
    if let Ok(a) = authenticate(env, keys) {
        let mut dev = MemDevice::spec()
            .with_component(&[&[0]], None, 4096)
            .with_component(&[&[1]], None, 4096)
            .with_component(&[&[2]], None, 4096)
            .with_component(&[&[0]], Some(0), 4096)
            .with_component(&[&[0]], Some(1), 4096);
        dev.payloads
            .insert("http://example.com/file.bin".into(), vec![1; 100]);
        let _ = dev.with_platform(|p| a.update(p));
        let _ = dev.with_platform(|p| a.invoke(p));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let k = spec_public();
        with_keys(&[&k], &[], |keys| run_everything(&bytes, keys));
    }

    #[test]
    fn mutated_envelopes_are_never_accepted(which in 0usize..9, muts in proptest::collection::vec(mutation(), 1..4)) {
        let corpus = corpus();
        let original = &corpus[which % corpus.len()];
        let bytes = mutate(original.clone(), &muts);
        prop_assume!(&bytes != original);
        let spec = spec_public();
        let td = public(vectors::TD, "public_key.pem");
        with_keys(&[&spec, &td], &[], |keys| {
            run_everything(&bytes, keys);
            if let Ok(a) = authenticate(&bytes, keys) {
                // Only a change confined to an unsigned integrated payload can pass.
                let orig = Envelope::decode(original).unwrap();
                assert_eq!(a.envelope().manifest_bytes, orig.manifest_bytes);
            }
        });
    }

    /// Mutated manifests, re-signed so they pass authentication: the manifest decoder and
    /// the abstract machine see them in full.
    #[test]
    fn mutated_authentic_manifests_never_panic(which in 0usize..9, muts in proptest::collection::vec(mutation(), 1..6)) {
        let ms = manifests();
        let m = mutate(ms[which % ms.len()].clone(), &muts);
        let env = sign_raw_manifest(&m, &[Signer::Mac(KEY.to_vec())]);
        let anchors = [TrustAnchor { key: suitcase_cose::VerifyingKey::Hmac256(&KEY), kid: None }];
        run_everything(&env, &StaticKeys { anchors: &anchors, rules: &[] });
    }
}
