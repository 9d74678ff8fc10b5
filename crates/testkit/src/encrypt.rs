//! Host-side SUIT payload encryption, for tests: a SUIT_Encryption_Info and the detached
//! ciphertext, made with RustCrypto's one-shot reference code (`aes-gcm`, `aes-kw`,
//! `ctr`, P-256 ECDH + `hkdf`), so the device's streaming decryptor is checked against
//! independent code. Keys and IVs are the caller's: deterministic, never for real use.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::{Aes128, Aes256};
use ciborium::Value;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use sha2::Sha256;
use suitcase_cose::encryption::{ContentAlgorithm, KeyAlgorithm, write_kdf_context};
use suitcase_cose::p256;
use suitcase_cose::p256::elliptic_curve::sec1::ToSec1Point as _;

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// How one recipient gets the content key.
#[derive(Clone, Debug)]
pub enum Recipient<'k> {
    /// AES key wrap with a pre-shared KEK: 16 bytes → A128KW, 32 → A256KW.
    Kw {
        /// The kid to name, if any.
        kid: Option<&'k [u8]>,
        /// The KEK.
        kek: &'k [u8],
    },
    /// ECDH-ES+A128KW to the device's P-256 public key (SEC1 bytes).
    EcdhEs {
        /// The kid to name, if any.
        kid: Option<&'k [u8]>,
        /// The device's public key, SEC1 encoded.
        device_public: &'k [u8],
        /// The sender's ephemeral private scalar (fixed, so runs repeat).
        ephemeral: [u8; 32],
    },
}

fn aes_kw(kek: &[u8], cek: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; cek.len() + 8];
    match kek.len() {
        16 => aes_kw::KwAes128::new_from_slice(kek)
            .unwrap()
            .wrap_key(cek, &mut out)
            .unwrap(),
        32 => aes_kw::KwAes256::new_from_slice(kek)
            .unwrap()
            .wrap_key(cek, &mut out)
            .unwrap(),
        n => panic!("no AES-KW with a {n}-byte KEK"),
    };
    out
}

fn recipient(r: &Recipient<'_>, cek: &[u8]) -> Value {
    match r {
        Recipient::Kw { kid, kek } => {
            let alg = if kek.len() == 16 { -3 } else { -5 };
            let mut u = vec![(int(1), int(alg))];
            if let Some(k) = kid {
                u.push((int(4), Value::Bytes(k.to_vec())));
            }
            Value::Array(vec![
                Value::Bytes(Vec::new()),
                Value::Map(u),
                Value::Bytes(aes_kw(kek, cek)),
            ])
        }
        Recipient::EcdhEs {
            kid,
            device_public,
            ephemeral,
        } => {
            let protected = enc(&Value::Map(vec![(
                int(1),
                int(KeyAlgorithm::EcdhEsA128Kw.cose_id()),
            )]));
            let eph = p256::SecretKey::from_slice(ephemeral).unwrap();
            let device = p256::PublicKey::from_sec1_bytes(device_public).unwrap();
            let shared = p256::ecdh::diffie_hellman(eph.to_nonzero_scalar(), device.as_affine());
            let mut context = Vec::new();
            write_kdf_context(KeyAlgorithm::EcdhEsA128Kw, &protected, &mut |p| {
                context.extend_from_slice(p)
            });
            let mut kek = [0u8; 16];
            Hkdf::<Sha256>::new(None, shared.raw_secret_bytes().as_slice())
                .expand(&context, &mut kek)
                .unwrap();
            let point = eph.public_key().to_sec1_point(false);
            let mut u = vec![(
                int(-1),
                Value::Map(vec![
                    (int(1), int(2)),
                    (int(-1), int(1)),
                    (int(-2), Value::Bytes(point.x().unwrap().to_vec())),
                    (int(-3), Value::Bytes(point.y().unwrap().to_vec())),
                ]),
            )];
            if let Some(k) = kid {
                u.push((int(4), Value::Bytes(k.to_vec())));
            }
            Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(u),
                Value::Bytes(aes_kw(&kek, cek)),
            ])
        }
    }
}

/// Encrypts `plaintext` with `alg` under `cek` and `iv` (12 bytes for GCM, 16 for CTR),
/// and returns the SUIT_Encryption_Info (tag 96, detached) for `recipients` and the
/// ciphertext (for GCM with its 16-byte tag appended).
pub fn encrypt(
    alg: ContentAlgorithm,
    cek: &[u8],
    iv: &[u8],
    recipients: &[Recipient<'_>],
    plaintext: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(cek.len(), alg.key_len());
    assert_eq!(iv.len(), alg.iv_len());
    let (protected, unprotected) = if alg.is_aead() {
        (
            enc(&Value::Map(vec![(int(1), int(alg.cose_id()))])),
            vec![(int(5), Value::Bytes(iv.to_vec()))],
        )
    } else {
        (
            Vec::new(),
            vec![
                (int(1), int(alg.cose_id())),
                (int(5), Value::Bytes(iv.to_vec())),
            ],
        )
    };
    let mut ct = plaintext.to_vec();
    match alg {
        ContentAlgorithm::A128Gcm | ContentAlgorithm::A256Gcm => {
            let aad = enc(&Value::Array(vec![
                Value::Text("Encrypt".into()),
                Value::Bytes(protected.clone()),
                Value::Bytes(Vec::new()),
            ]));
            let nonce = <[u8; 12]>::try_from(iv).unwrap().into();
            let tag = if alg == ContentAlgorithm::A128Gcm {
                aes_gcm::Aes128Gcm::new_from_slice(cek)
                    .unwrap()
                    .encrypt_inout_detached(&nonce, &aad, ct.as_mut_slice().into())
                    .unwrap()
            } else {
                aes_gcm::Aes256Gcm::new_from_slice(cek)
                    .unwrap()
                    .encrypt_inout_detached(&nonce, &aad, ct.as_mut_slice().into())
                    .unwrap()
            };
            ct.extend_from_slice(&tag);
        }
        ContentAlgorithm::A128Ctr => ctr::Ctr128BE::<Aes128>::new_from_slices(cek, iv)
            .unwrap()
            .apply_keystream(&mut ct),
        ContentAlgorithm::A256Ctr => ctr::Ctr128BE::<Aes256>::new_from_slices(cek, iv)
            .unwrap()
            .apply_keystream(&mut ct),
    }
    let info = Value::Tag(
        96,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(unprotected),
            Value::Null,
            Value::Array(recipients.iter().map(|r| recipient(r, cek)).collect()),
        ])),
    );
    (enc(&info), ct)
}
