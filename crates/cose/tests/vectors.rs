//! Published SUIT test vectors: every signed / MACed envelope must verify with its key,
//! and fail with a flipped bit or the wrong key. Also signing round trips.

use minicbor::Decoder;
use minicbor::data::Type;
use suitcase_cose::{
    Algorithm, CoseError, CoseKind, CoseMessage, MAX_SIG_STRUCTURE_LEN, OwnedVerifyingKey,
    SigningKey, VerifyingKey, ed25519_dalek, encode_to_be_signed, mac0_detached, p256,
    sign1_detached, signing_key_from_pem, to_be_signed_len, verifying_key_from_pem,
};

/// The vectors live next to the repository checkout, never inside it.
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/");

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{VECTORS}{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pem_key(rel: &str) -> OwnedVerifyingKey {
    let text = String::from_utf8(read(rel)).unwrap();
    verifying_key_from_pem(&text).unwrap()
}

/// `.suit` files in one vector folder, sorted, so a missing file is noticed.
fn suit_files(dir: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{VECTORS}{dir}"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".suit"))
        .collect();
    names.sort();
    names
}

/// What the test needs from an envelope: the auth wrapper's payload (the bytes inside
/// `auth[0]`), its COSE blocks, and the text-keyed integrated members.
struct Envelope<'a> {
    payload: &'a [u8],
    cose: Vec<&'a [u8]>,
    integrated: Vec<(&'a str, &'a [u8])>,
}

/// `#6.107({2: bstr .cbor [bstr digest, *bstr cose], ...})`, decoded with minicbor.
fn envelope(bytes: &[u8]) -> Envelope<'_> {
    let mut d = Decoder::new(bytes);
    assert_eq!(d.tag().unwrap().as_u64(), 107);
    let entries = d.map().unwrap().unwrap();
    let mut auth = None;
    let mut integrated = Vec::new();
    for _ in 0..entries {
        match d.datatype().unwrap() {
            Type::String => {
                let name = d.str().unwrap();
                integrated.push((name, d.bytes().unwrap()));
            }
            _ => {
                let key = d.u64().unwrap();
                let value = d.bytes().unwrap();
                if key == 2 {
                    auth = Some(value);
                }
            }
        }
    }
    assert_eq!(d.position(), bytes.len());
    let auth = auth.expect("no authentication wrapper");
    let mut a = Decoder::new(auth);
    let n = a.array().unwrap().unwrap();
    let payload = a.bytes().unwrap();
    let cose = (1..n).map(|_| a.bytes().unwrap()).collect();
    assert_eq!(a.position(), auth.len());
    Envelope {
        payload,
        cose,
        integrated,
    }
}

/// Copy of `cose` with one bit flipped inside the signature / MAC (the trailing bstr).
fn flip_tag_bit(cose: &[u8], tag_len: usize, bit: usize) -> Vec<u8> {
    let mut v = cose.to_vec();
    let at = v.len() - tag_len + bit / 8;
    v[at] ^= 1 << (bit % 8);
    v
}

/// Verify every COSE block of `file` with `key`, and check the negative cases.
fn check_signed(file: &str, key: VerifyingKey<'_>, wrong: VerifyingKey<'_>, alg: Algorithm) {
    let bytes = read(file);
    check_signed_bytes(file, &bytes, key, wrong, alg);
}

fn check_signed_bytes(
    name: &str,
    bytes: &[u8],
    key: VerifyingKey<'_>,
    wrong: VerifyingKey<'_>,
    alg: Algorithm,
) {
    let env = envelope(bytes);
    assert_eq!(env.cose.len(), 1, "{name}: expected one COSE block");
    let cose = env.cose[0];
    let msg = CoseMessage::decode(cose).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(msg.alg, alg, "{name}");
    assert_eq!(msg.payload, None, "{name}: SUIT uses detached payloads");
    assert_eq!(key.verify(&msg, env.payload), Ok(()), "{name}");

    // One flipped bit anywhere in the tag: first, middle and last bit.
    let tag_len = msg.tag.len();
    for bit in [0, tag_len * 4 + 3, tag_len * 8 - 1] {
        let flipped = flip_tag_bit(cose, tag_len, bit);
        let bad = CoseMessage::decode(&flipped).unwrap();
        assert_eq!(
            key.verify(&bad, env.payload),
            Err(CoseError::SignatureInvalid),
            "{name}: bit {bit}"
        );
    }

    // A changed payload (i.e. a different manifest digest).
    let mut payload = env.payload.to_vec();
    *payload.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        key.verify(&msg, &payload),
        Err(CoseError::SignatureInvalid),
        "{name}"
    );

    // The wrong key of the same kind.
    assert_eq!(
        wrong.verify(&msg, env.payload),
        Err(CoseError::SignatureInvalid),
        "{name}"
    );
}

#[test]
fn manifest_spec_examples_verify_es256() {
    let key = pem_key("suit-manifest-spec/public_key.pem");
    let wrong = pem_key("suit-firmware-encryption/dependent-manifest-signing-public-key.pem");
    let mut files: Vec<String> = (0..=5).map(|n| format!("example{n}.suit")).collect();
    files.push("example2-severed.suit".into());
    for f in &files {
        check_signed(
            &format!("suit-manifest-spec/{f}"),
            key.as_verifying_key(),
            wrong.as_verifying_key(),
            Algorithm::Es256,
        );
    }
    // The protected header is exactly {1: -7}, as the README says.
    let env_bytes = read("suit-manifest-spec/example0.suit");
    let env = envelope(&env_bytes);
    let msg = CoseMessage::decode(env.cose[0]).unwrap();
    assert_eq!(msg.protected, [0xa1, 0x01, 0x26]);
    assert_eq!(msg.kind, CoseKind::Sign1);
    assert_eq!(msg.kid, None);
}

#[test]
fn manifest_spec_unsigned_examples_have_no_cose() {
    for n in 0..=5 {
        let bytes = read(&format!("suit-manifest-spec/example{n}-unsigned.suit"));
        let env = envelope(&bytes);
        assert!(env.cose.is_empty(), "example{n}-unsigned");
        assert_eq!(env.payload.len(), 36, "bstr-wrapped SHA-256 SUIT_Digest");
    }
}

#[test]
fn trust_domain_examples_verify_esp256() {
    let key = pem_key("suit-trust-domains/public_key.pem");
    let wrong = pem_key("suit-firmware-encryption/dependent-manifest-signing-public-key.pem");
    let files = suit_files("suit-trust-domains", "");
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        check_signed(
            &format!("suit-trust-domains/{f}"),
            key.as_verifying_key(),
            wrong.as_verifying_key(),
            Algorithm::Esp256,
        );
    }
    // The integrated dependency inside example 2 is a signed envelope of its own.
    let outer = read("suit-trust-domains/example2_integrated.suit");
    let env = envelope(&outer);
    let (name, inner) = env.integrated[0];
    assert_eq!(name, "#dependent.suit");
    check_signed_bytes(
        name,
        inner,
        key.as_verifying_key(),
        wrong.as_verifying_key(),
        Algorithm::Esp256,
    );
}

#[test]
fn firmware_encryption_mac0_hmac256() {
    let mac_key = read("suit-firmware-encryption/mac-key-hmac256.bin");
    assert_eq!(mac_key.len(), 32);
    let wrong_key = [b'b'; 32];
    let files = suit_files("suit-firmware-encryption", "suit-manifest-aes-kw");
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        let name = format!("suit-firmware-encryption/{f}");
        check_signed(
            &name,
            VerifyingKey::Hmac256(&mac_key),
            VerifyingKey::Hmac256(&wrong_key),
            Algorithm::Hmac256,
        );
        let bytes = read(&name);
        let env = envelope(&bytes);
        let msg = CoseMessage::decode(env.cose[0]).unwrap();
        assert_eq!(msg.kind, CoseKind::Mac0);
        // A truncated key (a different HMAC key) fails too.
        assert_eq!(
            VerifyingKey::Hmac256(&mac_key[..31]).verify(&msg, env.payload),
            Err(CoseError::SignatureInvalid)
        );
        // A public-key verifier must not accept a MAC at all.
        let p256 = pem_key("suit-firmware-encryption/signing-public-key.pem");
        assert_eq!(
            p256.as_verifying_key().verify(&msg, env.payload),
            Err(CoseError::AlgorithmMismatch)
        );
    }
}

#[test]
fn firmware_encryption_sign1_esp256() {
    let common = pem_key("suit-firmware-encryption/signing-public-key.pem");
    let dependent = pem_key("suit-firmware-encryption/dependent-manifest-signing-public-key.pem");
    check_signed(
        "suit-firmware-encryption/suit-manifest-es-ecdh-content.suit",
        common.as_verifying_key(),
        dependent.as_verifying_key(),
        Algorithm::Esp256,
    );
    check_signed(
        "suit-firmware-encryption/suit-manifest-es-ecdh-dependency.suit",
        dependent.as_verifying_key(),
        common.as_verifying_key(),
        Algorithm::Esp256,
    );
    let standalone = read(
        "suit-firmware-encryption/suit-manifest-es-ecdh-dependency.integrated-dependency.suit",
    );
    check_signed_bytes(
        "integrated-dependency",
        &standalone,
        common.as_verifying_key(),
        dependent.as_verifying_key(),
        Algorithm::Esp256,
    );
    // The standalone file is the envelope embedded in the dependent manifest.
    let outer = read("suit-firmware-encryption/suit-manifest-es-ecdh-dependency.suit");
    let env = envelope(&outer);
    let (name, inner) = env.integrated[0];
    assert_eq!(name, "#dependency-manifest");
    assert_eq!(inner, standalone.as_slice());
}

#[test]
fn published_private_keys_match_public_keys() {
    let pairs = [
        // PKCS#8 "PRIVATE KEY"
        (
            "suit-manifest-spec/private_key.pem",
            "suit-manifest-spec/public_key.pem",
        ),
        // SEC1 "EC PRIVATE KEY"
        (
            "suit-firmware-encryption/dependent-manifest-signing-private-key.pem",
            "suit-firmware-encryption/dependent-manifest-signing-public-key.pem",
        ),
        (
            "suit-firmware-encryption/receiver-kid-2-private-p256.pem",
            "suit-firmware-encryption/receiver-kid-2-public-p256.pem",
        ),
    ];
    for (private, public) in pairs {
        let sk = signing_key_from_pem(&String::from_utf8(read(private)).unwrap()).unwrap();
        assert_eq!(sk.verifying_key(), pem_key(public), "{private}");
        assert_eq!(sk.default_algorithm(), Algorithm::Esp256);
    }
}

#[test]
fn resign_example0_with_published_key() {
    let sk = signing_key_from_pem(
        &String::from_utf8(read("suit-manifest-spec/private_key.pem")).unwrap(),
    )
    .unwrap();
    let vk = pem_key("suit-manifest-spec/public_key.pem");
    let bytes = read("suit-manifest-spec/example0.suit");
    let env = envelope(&bytes);
    let ours = sign1_detached(&sk, Algorithm::Es256, None, env.payload).unwrap();
    let theirs = env.cose[0];
    // Same framing and protected header as the published example (the signature
    // differs: ours is RFC 6979 deterministic).
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours[..10], theirs[..10]);
    let msg = CoseMessage::decode(&ours).unwrap();
    assert_eq!(vk.as_verifying_key().verify(&msg, env.payload), Ok(()));
    // Deterministic: signing again gives the same bytes.
    assert_eq!(
        sign1_detached(&sk, Algorithm::Es256, None, env.payload).unwrap(),
        ours
    );
}

fn round_trip(sk: &SigningKey, alg: Algorithm) {
    let vk = sk.verifying_key();
    let payload = b"\x82\x2f\x58\x20 a bstr-wrapped digest stand-in.";
    for kid in [None, Some(&b"kid-1"[..])] {
        let cose = sign1_detached(sk, alg, kid, payload).unwrap();
        let msg = CoseMessage::decode(&cose).unwrap();
        assert_eq!(
            (msg.kind, msg.alg, msg.kid, msg.payload),
            (CoseKind::Sign1, alg, kid, None)
        );
        assert_eq!(
            vk.as_verifying_key().verify(&msg, payload),
            Ok(()),
            "{alg:?}"
        );
        assert_eq!(
            vk.as_verifying_key().verify(&msg, b"other payload"),
            Err(CoseError::SignatureInvalid)
        );
        let flipped = flip_tag_bit(&cose, msg.tag.len(), 17);
        assert_eq!(
            vk.as_verifying_key()
                .verify(&CoseMessage::decode(&flipped).unwrap(), payload),
            Err(CoseError::SignatureInvalid)
        );
    }
}

#[test]
fn p256_round_trip() {
    let sk = SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap());
    round_trip(&sk, Algorithm::Es256);
    round_trip(&sk, Algorithm::Esp256);
    // A P-256 key from a different seed must not verify.
    let other = SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[0x43; 32]).unwrap());
    let cose = sign1_detached(&sk, Algorithm::Esp256, None, b"p").unwrap();
    let msg = CoseMessage::decode(&cose).unwrap();
    assert_eq!(
        other.verifying_key().as_verifying_key().verify(&msg, b"p"),
        Err(CoseError::SignatureInvalid)
    );
}

#[test]
fn ed25519_round_trip_and_pem() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]);
    let sk = SigningKey::Ed25519(dalek.clone());
    round_trip(&sk, Algorithm::EdDsa);
    round_trip(&sk, Algorithm::Ed25519);
    assert_eq!(sk.default_algorithm(), Algorithm::Ed25519);

    // PKCS#8 / SPKI PEM of an Ed25519 key load through our helpers.
    let private_pem = dalek.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = dalek
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let loaded = signing_key_from_pem(&private_pem).unwrap();
    assert!(matches!(loaded, SigningKey::Ed25519(_)));
    let vk = verifying_key_from_pem(&public_pem).unwrap();
    assert_eq!(vk, OwnedVerifyingKey::Ed25519(dalek.verifying_key()));
    let cose = sign1_detached(&loaded, Algorithm::Ed25519, None, b"payload").unwrap();
    assert_eq!(
        VerifyingKey::from(&vk).verify(&CoseMessage::decode(&cose).unwrap(), b"payload"),
        Ok(())
    );
    // An Ed25519 key never checks an ECDSA message, and vice versa.
    let p256 = SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap());
    let ecdsa = sign1_detached(&p256, Algorithm::Esp256, None, b"payload").unwrap();
    assert_eq!(
        vk.as_verifying_key()
            .verify(&CoseMessage::decode(&ecdsa).unwrap(), b"payload"),
        Err(CoseError::AlgorithmMismatch)
    );
}

#[test]
fn mac0_round_trip() {
    let key = [0x5c; 32];
    let payload = b"manifest digest";
    let cose = mac0_detached(&key, Some(b"kid-1"), payload).unwrap();
    let msg = CoseMessage::decode(&cose).unwrap();
    assert_eq!(msg.kind, CoseKind::Mac0);
    assert_eq!(msg.alg, Algorithm::Hmac256);
    assert_eq!(msg.kid, Some(&b"kid-1"[..]));
    assert_eq!(msg.protected, [0xa1, 0x01, 0x05]);
    assert_eq!(msg.tag.len(), 32);
    assert_eq!(VerifyingKey::Hmac256(&key).verify(&msg, payload), Ok(()));
    assert_eq!(
        VerifyingKey::Hmac256(&[0x5d; 32]).verify(&msg, payload),
        Err(CoseError::SignatureInvalid)
    );
    assert_eq!(
        VerifyingKey::Hmac256(&key).verify(&msg, b"manifest digesT"),
        Err(CoseError::SignatureInvalid)
    );
    let flipped = flip_tag_bit(&cose, 32, 255);
    assert_eq!(
        VerifyingKey::Hmac256(&key).verify(&CoseMessage::decode(&flipped).unwrap(), payload),
        Err(CoseError::SignatureInvalid)
    );

    // The published HMAC vector's MAC is reproduced byte for byte by our encoder.
    let mac_key = read("suit-firmware-encryption/mac-key-hmac256.bin");
    let bytes = read("suit-firmware-encryption/suit-manifest-aes-kw.suit");
    let env = envelope(&bytes);
    let published = CoseMessage::decode(env.cose[0]).unwrap();
    let ours = mac0_detached(&mac_key, published.kid, env.payload).unwrap();
    let ours = CoseMessage::decode(&ours).unwrap();
    assert_eq!(ours.protected, published.protected);
    assert_eq!(ours.tag, published.tag);
}

#[test]
fn example0_sig_structure_matches_readme_table() {
    let bytes = read("suit-manifest-spec/example0.suit");
    let env = envelope(&bytes);
    let msg = CoseMessage::decode(env.cose[0]).unwrap();
    let mut buf = [0u8; MAX_SIG_STRUCTURE_LEN];
    let tbs = encode_to_be_signed(msg.kind, msg.protected, env.payload, &mut buf).unwrap();
    let expected = hex::decode(
        "846a5369676e61747572653143a10126405824822f5820\
         6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af",
    )
    .unwrap();
    assert_eq!(tbs, expected.as_slice());
    assert_eq!(to_be_signed_len(CoseKind::Sign1, 3, 36), 55);

    // The MAC_structure of the AES-KW example: same layout with "MAC0" and {1: 5}.
    let bytes = read("suit-firmware-encryption/suit-manifest-aes-kw.suit");
    let env = envelope(&bytes);
    let msg = CoseMessage::decode(env.cose[0]).unwrap();
    let tbm = encode_to_be_signed(msg.kind, msg.protected, env.payload, &mut buf).unwrap();
    assert_eq!(
        tbm[..11],
        hex::decode("84644d41433043a1010540").unwrap()[..]
    );
    assert_eq!(tbm.len(), 49);
}
