//! Authentication: every published signed vector authenticates with its published key,
//! unsigned and wrongly signed envelopes are refused, and signing policies hold.

use suitcase_cose::Algorithm;
use suitcase_processor::platform::{Rule, StaticKeys, TrustAnchor};
use suitcase_processor::suit::{DecodeErrorKind, SeverableKind};
use suitcase_processor::{AuthError, Error, authenticate};
use suitcase_testkit::resign::Signer;
use suitcase_testkit::vectors::{self, ENC, SPEC, TD};

use super::common::*;

#[test]
fn every_signed_spec_example_authenticates() {
    with_spec_key(|k| {
        for (name, expected) in vectors::SIGNED_SPEC_EXAMPLES {
            let bytes = vectors::read(SPEC, name);
            let a = authenticate(&bytes, k).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.manifest().sequence_number, expected, "{name}");
            assert_eq!(a.signers(), 1);
        }
    });
}

#[test]
fn unsigned_spec_examples_are_refused_as_unsigned() {
    with_spec_key(|k| {
        for n in 0..=5 {
            let bytes = vectors::read(SPEC, &format!("example{n}-unsigned.suit"));
            assert_eq!(
                authenticate(&bytes, k).err(),
                Some(Error::Auth(AuthError::NoSignature)),
                "example{n}-unsigned"
            );
        }
    });
}

#[test]
fn a_key_that_did_not_sign_is_refused() {
    let other = public(ENC, "dependent-manifest-signing-public-key.pem");
    with_keys(&[&other], &[], |k| {
        for (name, _) in vectors::SIGNED_SPEC_EXAMPLES {
            let bytes = vectors::read(SPEC, name);
            assert_eq!(
                authenticate(&bytes, k).err(),
                Some(Error::Auth(AuthError::PolicyNotSatisfied)),
                "{name}"
            );
        }
    });
}

#[test]
fn trust_domain_vectors_authenticate_with_esp256() {
    let key = public(TD, "public_key.pem");
    with_keys(&[&key], &[], |k| {
        for name in [
            "example0_dependent.suit",
            "example1_process.suit",
            "example2_integrated.suit",
        ] {
            let bytes = vectors::read(TD, name);
            authenticate(&bytes, k).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The integrated dependency inside example 2 is itself signed with the same key.
        let outer = vectors::read(TD, "example2_integrated.suit");
        let a = authenticate(&outer, k).unwrap();
        let dep = a.envelope().integrated("#dependent.suit").unwrap();
        authenticate(dep, k).unwrap();
    });
}

#[test]
fn firmware_encryption_manifests_authenticate() {
    let mac_key = vectors::read(ENC, "mac-key-hmac256.bin");
    let mac = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&mac_key),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &mac,
        rules: &[],
    };
    for name in [
        "suit-manifest-aes-kw-content.suit",
        "suit-manifest-aes-kw.suit",
        "suit-manifest-aes-kw-slot.suit",
    ] {
        let bytes = vectors::read(ENC, name);
        authenticate(&bytes, &keys).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = [0x62u8; 32];
    let bad = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&wrong),
        kid: None,
    }];
    let bytes = vectors::read(ENC, "suit-manifest-aes-kw.suit");
    assert_eq!(
        authenticate(
            &bytes,
            &StaticKeys {
                anchors: &bad,
                rules: &[]
            }
        )
        .err(),
        Some(Error::Auth(AuthError::PolicyNotSatisfied))
    );

    let signing = public(ENC, "signing-public-key.pem");
    let dependent = public(ENC, "dependent-manifest-signing-public-key.pem");
    with_keys(&[&signing], &[], |k| {
        for name in [
            "suit-manifest-es-ecdh-content.suit",
            "suit-manifest-es-ecdh-dependency.integrated-dependency.suit",
        ] {
            authenticate(&vectors::read(ENC, name), k).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    });
    with_keys(&[&dependent], &[], |k| {
        authenticate(
            &vectors::read(ENC, "suit-manifest-es-ecdh-dependency.suit"),
            k,
        )
        .unwrap();
    });
}

#[test]
fn author_and_operator_must_both_sign() {
    let author = spec_private();
    let operator = p256_key(7);
    let (a_pub, o_pub) = (author.verifying_key(), operator.verifying_key());
    let both = [Rule::required(0), Rule::required(1)];
    let ex = vectors::spec_example(1);
    let sign = |signers| rewrite(&[], signers).apply(&ex).unwrap();
    let two = sign(vec![
        Signer::Sign(author.clone(), Algorithm::Esp256),
        Signer::Sign(operator.clone(), Algorithm::Esp256),
    ]);
    let only_author = sign(vec![Signer::Sign(author.clone(), Algorithm::Esp256)]);
    let only_operator = sign(vec![Signer::Sign(operator.clone(), Algorithm::Esp256)]);
    // The same signer twice is still one signer.
    let author_twice = sign(vec![
        Signer::Sign(author.clone(), Algorithm::Esp256),
        Signer::Sign(author.clone(), Algorithm::Es256),
    ]);
    with_keys(&[&a_pub, &o_pub], &both, |k| {
        assert_eq!(authenticate(&two, k).unwrap().signers(), 0b11);
        for (name, env) in [
            ("author", &only_author),
            ("operator", &only_operator),
            ("author twice", &author_twice),
        ] {
            assert_eq!(
                authenticate(env, k).err(),
                Some(Error::Auth(AuthError::PolicyNotSatisfied)),
                "{name}"
            );
        }
    });
    // Without a policy either one suffices.
    with_keys(&[&a_pub, &o_pub], &[], |k| {
        authenticate(&only_operator, k).unwrap();
    });
}

#[test]
fn two_of_three_threshold() {
    let keys: Vec<_> = (1..=3).map(p256_key).collect();
    let pubs: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let ex = vectors::spec_example(0);
    let signed_by = |idx: &[usize]| {
        rewrite(
            &[],
            idx.iter()
                .map(|&i| Signer::Sign(keys[i].clone(), Algorithm::Esp256))
                .collect(),
        )
        .apply(&ex)
        .unwrap()
    };
    let refs: Vec<_> = pubs.iter().collect();
    with_keys(&refs, &[Rule::k_of(2, 0b111)], |k| {
        assert!(authenticate(&signed_by(&[0, 2]), k).is_ok());
        assert!(authenticate(&signed_by(&[1, 2]), k).is_ok());
        assert!(authenticate(&signed_by(&[1]), k).is_err());
    });
}

#[test]
fn ed25519_and_hmac_signers_authenticate() {
    let ed = ed25519_key(9);
    let ed_pub = ed.verifying_key();
    let ex = vectors::spec_example(0);
    for alg in [Algorithm::Ed25519, Algorithm::EdDsa] {
        let env = rewrite(&[], vec![Signer::Sign(ed.clone(), alg)])
            .apply(&ex)
            .unwrap();
        with_keys(&[&ed_pub], &[], |k| {
            assert!(authenticate(&env, k).is_ok(), "{alg:?}")
        });
        // The P-256 anchor must not accept an Ed25519 block.
        with_spec_key(|k| assert!(authenticate(&env, k).is_err()));
    }
    let secret = [0x42u8; 32];
    let env = rewrite(&[], vec![Signer::Mac(secret.to_vec())])
        .apply(&ex)
        .unwrap();
    let anchors = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&secret),
        kid: None,
    }];
    assert!(
        authenticate(
            &env,
            &StaticKeys {
                anchors: &anchors,
                rules: &[]
            }
        )
        .is_ok()
    );
}

#[test]
fn a_tampered_severed_member_is_refused() {
    let mut bytes = vectors::read(SPEC, "example2.suit");
    // Change one character of the text member's content (a URL in the text map) without
    // breaking its CBOR: the severed digest no longer matches.
    let pos = bytes.windows(7).rposition(|w| w == b"example").unwrap();
    bytes[pos] = b'E';
    with_spec_key(|k| {
        let e = authenticate(&bytes, k).err();
        assert!(
            matches!(
                e,
                Some(Error::Auth(AuthError::SeveredDigestMismatch(
                    SeverableKind::Install | SeverableKind::Text
                )))
            ),
            "{e:?}"
        );
    });
}

#[test]
fn an_envelope_member_the_manifest_does_not_sever_is_refused() {
    // Example 1's manifest holds install inline; an extra envelope key 20 is covered by
    // no signature.
    let ex = vectors::spec_example(1);
    let mut v: ciborium::Value = ciborium::from_reader(&ex[..]).unwrap();
    let ciborium::Value::Tag(_, inner) = &mut v else {
        panic!()
    };
    let ciborium::Value::Map(m) = &mut **inner else {
        panic!()
    };
    let seq = suitcase_testkit::build::seq(&[(14, suitcase_testkit::build::int(15))]);
    m.push((ciborium::Value::Integer(20.into()), seq));
    let mut bytes = Vec::new();
    ciborium::into_writer(&v, &mut bytes).unwrap();
    with_spec_key(|k| {
        let e = authenticate(&bytes, k).err();
        assert!(
            matches!(e, Some(Error::Decode(d)) if d.kind == DecodeErrorKind::UnauthenticatedMember(20)),
            "{e:?}"
        );
    });
}
