//! Firmware encryption on the device (feature `encryption`): the published encryption
//! manifests process end to end on `MemDevice` and leave the plaintext in place; wrong
//! or missing keys and changed ciphertext fail the way docs/processor.md says; and
//! generated payloads of many chunks (GCM and CTR, 128 and 256, AES-KW and ECDH-ES)
//! stream through write, fetch and copy for any transport chunking.

use ciborium::Value;
use proptest::prelude::*;
use suitcase_cose::encryption::ContentAlgorithm;
use suitcase_cose::p256;
use suitcase_cose::p256::elliptic_curve::sec1::ToSec1Point as _;
use suitcase_cose::p256::pkcs8::DecodePrivateKey as _;
use suitcase_processor::platform::{StaticKeys, TrustAnchor};
use suitcase_processor::suit::Condition;
use suitcase_processor::{Error, UpdateSummary, authenticate};
use suitcase_testkit::build::{bytes, digest_of, envelope, int, params, seq, text};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::encrypt::{Recipient, encrypt};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, ENC};

use super::common::{image, public, with_keys};

const URI: &str = "coaps://example.com/encrypted-firmware";
const PLAIN_ID: &[u8] = b"plaintext-firmware";
const ENC_ID: &[u8] = b"encrypted-firmware";

fn plaintext() -> Vec<u8> {
    vectors::read(ENC, "plaintext.bin")
}

fn kek() -> Vec<u8> {
    vectors::read(ENC, "kek-a128kw-kid-1.bin")
}

/// The published receiver key (kid-2) as the 32-byte scalar the device keeps.
pub fn device_key() -> Vec<u8> {
    p256::SecretKey::from_pkcs8_pem(&vectors::read_string(
        ENC,
        "receiver-kid-2-private-p256.pem",
    ))
    .unwrap()
    .to_bytes()
    .to_vec()
}

/// Runs the update of a published AES-KW manifest (HMAC-256 with the published key).
fn update_mac(dev: &mut MemDevice, env: &[u8]) -> Result<UpdateSummary, Error> {
    let mac_key = vectors::read(ENC, "mac-key-hmac256.bin");
    let anchors = [TrustAnchor {
        key: suitcase_cose::VerifyingKey::Hmac256(&mac_key),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let a = authenticate(env, &keys)?;
    dev.with_platform(|p| a.update(p))
}

/// Runs the update of a published ES-DH manifest (ESP256 with `key_file`).
fn update_signed(dev: &mut MemDevice, env: &[u8], key_file: &str) -> Result<UpdateSummary, Error> {
    let key = public(ENC, key_file);
    with_keys(&[&key], &[], |k| {
        let a = authenticate(env, k)?;
        dev.with_platform(|p| a.update(p))
    })
}

fn aes_kw_content_device() -> MemDevice {
    MemDevice::spec()
        .with_component(&[PLAIN_ID], None, 256)
        .with_kek(Some(b"kid-1"), &kek())
}

#[test]
fn aes_kw_content_writes_the_plaintext() {
    let env = vectors::read(ENC, "suit-manifest-aes-kw-content.suit");
    let mut dev = aes_kw_content_device();
    let s = update_mac(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[PLAIN_ID], None), plaintext());
    assert_eq!(
        s.bytes_written, 30,
        "the plaintext, not the 46 ciphertext bytes"
    );
    assert_eq!(dev.rollback.0, 1);
}

#[test]
fn aes_kw_fetches_the_ciphertext_then_copy_decrypts() {
    let env = vectors::read(ENC, "suit-manifest-aes-kw.suit");
    let ct = vectors::read(ENC, "encrypted-payload-aes-kw-aes-gcm.bin");
    for chunk in [1, 5, 16, 17, 300] {
        let mut dev = MemDevice::spec()
            .with_component(&[PLAIN_ID], None, 256)
            .with_component(&[ENC_ID], None, 256)
            .with_kek(Some(b"kid-1"), &kek())
            .serve(URI, ct.clone());
        dev.transport_chunk = chunk;
        let s = update_mac(&mut dev, &env).unwrap();
        assert_eq!(dev.fetched, vec![URI.to_string()]);
        assert_eq!(dev.content(&[ENC_ID], None), ct, "fetched as is");
        assert_eq!(dev.content(&[PLAIN_ID], None), plaintext(), "chunk {chunk}");
        assert_eq!(s.components_written, 0b11);
        assert_eq!(s.bytes_written, 46 + 30);
    }
}

#[test]
fn aes_kw_slot_fetches_the_ciphertext_then_copy_decrypts() {
    let env = vectors::read(ENC, "suit-manifest-aes-kw-slot.suit");
    let ct = vectors::read(ENC, "encrypted-payload-aes-kw-aes-gcm.bin");
    let mut dev = MemDevice::spec()
        .with_component(&[&[0]], None, 256)
        .with_component(&[&[1]], None, 256)
        .with_kek(Some(b"kid-1"), &kek())
        .serve(URI, ct.clone());
    update_mac(&mut dev, &env).unwrap();
    assert_eq!(dev.content(&[&[1]], None), ct);
    assert_eq!(dev.content(&[&[0]], None), plaintext());
}

#[test]
fn es_ecdh_content_writes_the_plaintext() {
    let env = vectors::read(ENC, "suit-manifest-es-ecdh-content.suit");
    let mut dev = MemDevice::spec()
        .with_component(&[b"decrypted-firmware"], None, 256)
        .with_device_key(Some(b"kid-2"), &device_key());
    update_signed(&mut dev, &env, "signing-public-key.pem").unwrap();
    assert_eq!(dev.content(&[b"decrypted-firmware"], None), plaintext());
}

// The fifth manifest (es-ecdh-dependency) decrypts through its dependency: see
// trust_domains.rs, `es_ecdh::the_dependency_decrypts_what_the_dependent_configured`.

#[test]
fn no_key_wrong_key_and_changed_ciphertext() {
    let content = vectors::read(ENC, "suit-manifest-aes-kw-content.suit");
    // No key at all, or only a key for another kid of another kind.
    for mut dev in [
        MemDevice::spec().with_component(&[PLAIN_ID], None, 256),
        MemDevice::spec()
            .with_component(&[PLAIN_ID], None, 256)
            .with_kek(Some(b"kid-1"), &[0x61; 32])
            .with_device_key(Some(b"kid-1"), &device_key()),
    ] {
        assert_eq!(update_mac(&mut dev, &content), Err(Error::NoDecryptionKey));
        assert!(dev.content(&[PLAIN_ID], None).is_empty(), "nothing written");
    }
    // The wrong KEK.
    let mut dev = MemDevice::spec()
        .with_component(&[PLAIN_ID], None, 256)
        .with_kek(Some(b"kid-1"), &[0x62; 16]);
    assert_eq!(update_mac(&mut dev, &content), Err(Error::DecryptionFailed));
    // The wrong device key.
    let ecdh = vectors::read(ENC, "suit-manifest-es-ecdh-content.suit");
    let other = p256::SecretKey::from_slice(&[9; 32]).unwrap().to_bytes();
    let mut dev = MemDevice::spec()
        .with_component(&[b"decrypted-firmware"], None, 256)
        .with_device_key(None, &other);
    assert_eq!(
        update_signed(&mut dev, &ecdh, "signing-public-key.pem"),
        Err(Error::DecryptionFailed)
    );

    // A changed byte of the fetched GCM ciphertext or its tag: the copy fails, nothing
    // is recorded as written, the counter stays.
    let env = vectors::read(ENC, "suit-manifest-aes-kw.suit");
    let ct = vectors::read(ENC, "encrypted-payload-aes-kw-aes-gcm.bin");
    for i in [0, 29, 30, 45] {
        let mut bad = ct.clone();
        bad[i] ^= 0x04;
        let mut dev = MemDevice::spec()
            .with_component(&[PLAIN_ID], None, 256)
            .with_component(&[ENC_ID], None, 256)
            .with_kek(Some(b"kid-1"), &kek())
            .serve(URI, bad);
        assert_eq!(
            update_mac(&mut dev, &env),
            Err(Error::DecryptionFailed),
            "byte {i}"
        );
        assert_eq!(dev.rollback.0, 0);
    }
}

/// A malformed encryption-info parameter is refused before anything is written; so is
/// one whose algorithm the build lacks.
#[test]
fn a_malformed_encryption_info_is_refused() {
    let sign = |install: Value| {
        Rewrite {
            signers: vec![Signer::Mac(vec![0x5a; 32])],
            ..Default::default()
        }
        .apply(&envelope(1, &[&[PLAIN_ID]], None, &[(20, install)], &[]))
        .unwrap()
    };
    let run = |info: &[u8]| {
        let env = sign(seq(&[
            (20, params(&[(18, bytes(b"x")), (19, bytes(info))])),
            (18, int(15)),
        ]));
        let key = [0x5a; 32];
        let anchors = [TrustAnchor {
            key: suitcase_cose::VerifyingKey::Hmac256(&key),
            kid: None,
        }];
        let keys = StaticKeys {
            anchors: &anchors,
            rules: &[],
        };
        let a = authenticate(&env, &keys).unwrap();
        let mut dev = aes_kw_content_device();
        let r = dev.with_platform(|p| a.update(p));
        assert!(dev.content(&[PLAIN_ID], None).is_empty());
        r
    };
    assert_eq!(
        run(&[0xa0]),
        Err(Error::EncryptionInfo(suitcase_cose::CoseError::Untagged))
    );
    let mut chacha = vectors::read(ENC, "suit-encryption-info-aes-kw-aes-gcm.cose");
    // Protected {1: 1} → {1: 24}: ChaCha20/Poly1305, which this build does not have.
    assert_eq!(chacha[3..7], [0x43, 0xa1, 0x01, 0x01]);
    chacha[3] = 0x44;
    chacha[6] = 0x18;
    chacha.insert(7, 24);
    assert_eq!(
        run(&chacha),
        Err(Error::EncryptionInfo(
            suitcase_cose::CoseError::UnsupportedAlgorithm(24)
        ))
    );
}

// ---- generated payloads: many chunks, every algorithm, write / fetch / copy ----

const KEY: [u8; 32] = [0x5a; 32];
const C0: &[u8] = &[0];
const C1: &[u8] = &[1];

fn device_scalar() -> [u8; 32] {
    let mut d = [0u8; 32];
    d[31] = 0x2b;
    d[0] = 0x11;
    d
}

fn device_public() -> Vec<u8> {
    p256::SecretKey::from_slice(&device_scalar())
        .unwrap()
        .public_key()
        .to_sec1_point(false)
        .as_bytes()
        .to_vec()
}

/// How the encrypted payload reaches the component.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// write with the ciphertext as the content parameter.
    Write,
    /// fetch from the transport, decrypting on the way in.
    Fetch,
    /// fetch the ciphertext into component 1, then copy it into component 0, decrypting.
    Copy,
}

/// An envelope that installs `ct` (with `info`) into component 0 by `path` and then
/// checks the plaintext's digest and size with image-match.
fn generated(path: Path, info: &[u8], ct: &[u8], plain: &[u8], size: Option<u64>) -> Vec<u8> {
    let mut p0 = vec![(3, digest_of(plain)), (19, bytes(info))];
    if let Some(s) = size {
        p0.push((14, int(s as i64)));
    }
    let install = match path {
        Path::Write => {
            p0.push((18, bytes(ct)));
            seq(&[(12, int(0)), (20, params(&p0)), (18, int(15)), (3, int(15))])
        }
        Path::Fetch => {
            p0.push((21, text("http://example.com/enc")));
            seq(&[(12, int(0)), (20, params(&p0)), (21, int(15)), (3, int(15))])
        }
        Path::Copy => {
            p0.push((22, int(1)));
            seq(&[
                (12, int(1)),
                (
                    20,
                    params(&[
                        (21, text("http://example.com/enc")),
                        (14, int(ct.len() as i64)),
                    ]),
                ),
                (21, int(15)),
                (12, int(0)),
                (20, params(&p0)),
                (22, int(15)),
                (3, int(15)),
            ])
        }
    };
    Rewrite {
        signers: vec![Signer::Mac(KEY.to_vec())],
        ..Default::default()
    }
    .apply(&envelope(1, &[&[C0], &[C1]], None, &[(20, install)], &[]))
    .unwrap()
}

fn generated_device(ct: &[u8], chunk: usize) -> MemDevice {
    let mut d = MemDevice::spec()
        .with_component(&[C0], None, 8192)
        .with_component(&[C1], None, 8192)
        .with_kek(Some(b"fleet-16"), &[0x16; 16])
        .with_kek(Some(b"fleet-32"), &[0x32; 32])
        .with_device_key(Some(b"me"), &device_scalar())
        .serve("http://example.com/enc", ct.to_vec());
    d.transport_chunk = chunk;
    d
}

fn update_generated(dev: &mut MemDevice, env: &[u8]) -> Result<UpdateSummary, Error> {
    super::common::mac_update(dev, env, &KEY)
}

const ALGS: [ContentAlgorithm; 4] = [
    ContentAlgorithm::A128Gcm,
    ContentAlgorithm::A256Gcm,
    ContentAlgorithm::A128Ctr,
    ContentAlgorithm::A256Ctr,
];

fn recipients(which: u8, device_public: &[u8]) -> Vec<Recipient<'_>> {
    let ecdh = Recipient::EcdhEs {
        kid: Some(b"me"),
        device_public,
        ephemeral: [0x77; 32],
    };
    let kw16 = Recipient::Kw {
        kid: Some(b"fleet-16"),
        kek: &[0x16; 16],
    };
    let kw32 = Recipient::Kw {
        kid: Some(b"fleet-32"),
        kek: &[0x32; 32],
    };
    // A recipient for someone else comes first: the device must pass over it.
    let other = Recipient::Kw {
        kid: Some(b"someone-else"),
        kek: &[0x01; 16],
    };
    match which % 3 {
        0 => vec![other, kw16],
        1 => vec![other, kw32],
        _ => vec![other, ecdh],
    }
}

fn encrypted(alg: ContentAlgorithm, which: u8, plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let cek: Vec<u8> = (0..alg.key_len() as u8)
        .map(|i| i.wrapping_mul(13))
        .collect();
    let iv: Vec<u8> = (0..alg.iv_len() as u8).map(|i| 0xa0 ^ i).collect();
    encrypt(alg, &cek, &iv, &recipients(which, &device_public()), plain)
}

#[test]
fn generated_payloads_stream_through_every_path() {
    let plain = image(7, 3000);
    for (n, alg) in ALGS.into_iter().enumerate() {
        for which in 0..3u8 {
            let (info, ct) = encrypted(alg, which, &plain);
            for path in [Path::Write, Path::Fetch, Path::Copy] {
                for chunk in [1usize, 16, 300, 513] {
                    if chunk == 1 && (n + which as usize) % 2 == 1 {
                        continue; // byte-by-byte is slow in debug builds: half the cases
                    }
                    let env = generated(path, &info, &ct, &plain, Some(plain.len() as u64));
                    let mut dev = generated_device(&ct, chunk);
                    let s = update_generated(&mut dev, &env)
                        .unwrap_or_else(|e| panic!("{alg:?} {which} {path:?} {chunk}: {e}"));
                    assert_eq!(dev.content(&[C0], None), plain, "{alg:?} {path:?}");
                    let extra = if matches!(path, Path::Copy) {
                        ct.len() as u64
                    } else {
                        0
                    };
                    assert_eq!(s.bytes_written, plain.len() as u64 + extra);
                }
            }
        }
    }
}

#[test]
fn image_size_bounds_the_plaintext() {
    let plain = image(3, 1500);
    for alg in ALGS {
        let (info, ct) = encrypted(alg, 0, &plain);
        for path in [Path::Write, Path::Fetch, Path::Copy] {
            // Exactly the plaintext: fits, even though GCM's ciphertext is 16 longer.
            let env = generated(path, &info, &ct, &plain, Some(1500));
            update_generated(&mut generated_device(&ct, 300), &env).unwrap();
            let env = generated(path, &info, &ct, &plain, Some(1499));
            assert_eq!(
                update_generated(&mut generated_device(&ct, 300), &env),
                Err(Error::ImageSizeExceeded),
                "{alg:?} {path:?}"
            );
        }
    }
}

/// GCM refuses a changed byte anywhere (ciphertext or tag) with DecryptionFailed; CTR
/// installs the changed plaintext and the manifest's image-match refuses it.
#[test]
fn a_changed_ciphertext_byte_never_installs() {
    let plain = image(5, 1200);
    for alg in ALGS {
        let (info, ct) = encrypted(alg, 2, &plain);
        for i in [0, 511, 512, 1199, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x10;
            for path in [Path::Write, Path::Fetch, Path::Copy] {
                let env = generated(path, &info, &bad, &plain, None);
                let r = update_generated(&mut generated_device(&bad, 300), &env);
                if alg.is_aead() {
                    assert_eq!(r, Err(Error::DecryptionFailed), "{alg:?} {i} {path:?}");
                } else {
                    assert!(
                        matches!(
                            r,
                            Err(Error::ConditionFailed {
                                condition: Condition::ImageMatch,
                                component: 0,
                                ..
                            })
                        ),
                        "{alg:?} {i} {path:?}: {r:?}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any size and transport chunking: the component holds the plaintext.
    #[test]
    fn any_size_and_chunking(
        alg in 0usize..4,
        which in 0u8..3,
        len in 0usize..2100,
        chunk in 1usize..700,
        path in 0usize..3,
    ) {
        let plain = image(len as u64 + 1, len);
        let (info, ct) = encrypted(ALGS[alg], which, &plain);
        let path = [Path::Write, Path::Fetch, Path::Copy][path];
        let env = generated(path, &info, &ct, &plain, None);
        let mut dev = generated_device(&ct, chunk);
        update_generated(&mut dev, &env).unwrap();
        prop_assert_eq!(dev.content(&[C0], None), &plain[..]);
    }
}
