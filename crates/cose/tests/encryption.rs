//! SUIT_Encryption_Info against the published firmware-encryption vectors: strict
//! decoding, CEK unwrapping (AES-KW and ECDH-ES+A128KW), streaming decryption for every
//! chunking, the opaque failure on a wrong key or a changed byte; the streaming GCM
//! against the `aes-gcm` crate; and hostile bytes never panic.

use aes_gcm::aead::{AeadInOut, KeyInit as _};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use suitcase_cose::CoseError;
use suitcase_cose::encryption::{
    Cek, ContentAlgorithm, ContentDecryptor, Coordinate, EncryptionInfo, KeyAlgorithm,
    write_kdf_context,
};
use suitcase_cose::p256::pkcs8::DecodePrivateKey as _;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/suit-firmware-encryption/"
);

fn read(name: &str) -> Vec<u8> {
    let path = format!("{VECTORS}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex_file(name: &str) -> Vec<u8> {
    hex::decode(String::from_utf8(read(name)).unwrap().trim()).unwrap()
}

/// The published receiver key (kid-2) as the raw 32-byte scalar the device keeps.
fn device_key() -> Vec<u8> {
    let pem = String::from_utf8(read("receiver-kid-2-private-p256.pem")).unwrap();
    suitcase_cose::p256::SecretKey::from_pkcs8_pem(&pem)
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn kek() -> Vec<u8> {
    read("kek-a128kw-kid-1.bin")
}

/// The four (encryption info, ciphertext, key distribution, content algorithm) pairs.
const PAIRS: [(&str, &str, KeyAlgorithm, ContentAlgorithm); 4] = [
    (
        "suit-encryption-info-aes-kw-aes-gcm.cose",
        "encrypted-payload-aes-kw-aes-gcm.bin",
        KeyAlgorithm::A128Kw,
        ContentAlgorithm::A128Gcm,
    ),
    (
        "suit-encryption-info-es-ecdh-aes-gcm.cose",
        "encrypted-payload-es-ecdh-aes-gcm.bin",
        KeyAlgorithm::EcdhEsA128Kw,
        ContentAlgorithm::A128Gcm,
    ),
    (
        "suit-encryption-info-aes-kw-aes-ctr.cose",
        "encrypted-payload-aes-kw-aes-ctr.bin",
        KeyAlgorithm::A128Kw,
        ContentAlgorithm::A128Ctr,
    ),
    (
        "suit-encryption-info-es-ecdh-aes-ctr.cose",
        "encrypted-payload-es-ecdh-aes-ctr.bin",
        KeyAlgorithm::EcdhEsA128Kw,
        ContentAlgorithm::A128Ctr,
    ),
];

/// The CEK of the only recipient, with the published KEK or device key.
fn unwrap(info: &EncryptionInfo<'_>, kek: &[u8], device: &[u8]) -> Result<Cek, CoseError> {
    let r = info.recipients().next().unwrap();
    match r.alg {
        KeyAlgorithm::EcdhEsA128Kw => r.unwrap_ecdh_es(device, info.alg),
        _ => r.unwrap_aes_kw(kek, info.alg),
    }
}

/// Decrypts `ct` fed in pieces of the given sizes (cycled), as a pipeline would.
fn decrypt_chunked(
    info: &EncryptionInfo<'_>,
    cek: &Cek,
    ct: &[u8],
    sizes: &[usize],
) -> Result<Vec<u8>, CoseError> {
    let mut d = ContentDecryptor::new(info, cek)?;
    let mut out = Vec::new();
    let mut rest = ct;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let mut chunk = rest[..n].to_vec();
        rest = &rest[n..];
        let k = d.update(&mut chunk)?;
        assert!(k <= n);
        out.extend_from_slice(&chunk[..k]);
    }
    d.finish()?;
    Ok(out)
}

#[test]
fn every_info_decodes_as_published() {
    for (name, _, key_alg, alg) in PAIRS {
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.alg, alg, "{name}");
        assert_eq!(info.recipient_count(), 1);
        let r = info.recipients().next().unwrap();
        assert_eq!(r.alg, key_alg, "{name}");
        assert_eq!(r.encrypted_key.len(), 24);
        match alg {
            ContentAlgorithm::A128Gcm => {
                assert_eq!(info.protected, [0xa1, 0x01, 0x01]);
                assert_eq!(info.iv, hex::decode("F14AAB9D81D51F7AD943FE87").unwrap());
            }
            _ => {
                assert!(info.protected.is_empty());
                assert_eq!(
                    info.iv,
                    hex::decode("DAE613B2E0DC55F4322BE38BDBA9DC68").unwrap()
                );
            }
        }
        match key_alg {
            KeyAlgorithm::A128Kw => {
                assert_eq!(r.kid, Some(&b"kid-1"[..]));
                assert!(r.protected.is_empty() && r.ephemeral.is_none());
            }
            _ => {
                // The standalone infos name no kid (the manifests do: kid-2).
                assert_eq!(r.kid, None);
                assert_eq!(r.protected, [0xa1, 0x01, 0x38, 0x1c]);
                let e = r.ephemeral.unwrap();
                assert_eq!(e.x.len(), 32);
                assert!(matches!(e.y, Coordinate::Bytes(y) if y.len() == 32));
            }
        }
    }
}

#[test]
fn kdf_context_matches_the_published_encoding() {
    let mut out = Vec::new();
    write_kdf_context(
        KeyAlgorithm::EcdhEsA128Kw,
        &[0xa1, 0x01, 0x38, 0x1c],
        &mut |p| out.extend_from_slice(p),
    );
    assert_eq!(out, read("a128kw-kdf-context.cbor"));
    let mut none = Vec::new();
    write_kdf_context(KeyAlgorithm::A128Kw, &[], &mut |p| {
        none.extend_from_slice(p)
    });
    assert!(none.is_empty());
}

#[test]
fn every_recipient_unwraps_the_published_cek() {
    for (name, _, _, alg) in PAIRS {
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        let cek = unwrap(&info, &kek(), &device_key()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = match alg {
            ContentAlgorithm::A128Gcm => hex_file("cek-a128gcm.hex"),
            _ => hex_file("cek-a128ctr.hex"),
        };
        assert_eq!(cek.as_bytes(), want, "{name}");
        assert_eq!(format!("{cek:?}"), "Cek(<16 secret bytes>)");
    }
}

#[test]
fn every_pair_decrypts_to_the_plaintext_in_one_piece_and_byte_by_byte() {
    let plaintext = read("plaintext.bin");
    assert_eq!(
        hex::encode(Sha256::digest(&plaintext)),
        "36921488fe6680712f734e11f58d87eeb66d4b21a8a1ad3441060814da16d50f"
    );
    for (name, ct, _, _) in PAIRS {
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        let cek = unwrap(&info, &kek(), &device_key()).unwrap();
        let ct = read(ct);
        for sizes in [&[usize::MAX][..], &[1], &[16], &[17], &[15, 1, 30]] {
            assert_eq!(
                decrypt_chunked(&info, &cek, &ct, sizes).unwrap(),
                plaintext,
                "{name} {sizes:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any chunking of the published ciphertexts decrypts to the plaintext.
    #[test]
    fn every_chunking_decrypts(pair in 0usize..4, sizes in prop::collection::vec(1usize..48, 1..12)) {
        let (name, ct, _, _) = PAIRS[pair];
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        let cek = unwrap(&info, &kek(), &device_key()).unwrap();
        prop_assert_eq!(decrypt_chunked(&info, &cek, &read(ct), &sizes).unwrap(), read("plaintext.bin"));
    }
}

#[test]
fn a_wrong_kek_or_device_key_is_decryption_failed() {
    let mut other_kek = kek();
    other_kek[0] ^= 1;
    let other_device = suitcase_cose::p256::SecretKey::from_slice(&[7; 32])
        .unwrap()
        .to_bytes()
        .to_vec();
    for (name, _, _, _) in PAIRS {
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        assert_eq!(
            unwrap(&info, &other_kek, &other_device).err(),
            Some(CoseError::DecryptionFailed),
            "{name}"
        );
    }
    // Keys that cannot be used at all are told apart from a failed unwrap.
    let bytes = read(PAIRS[0].0);
    let info = EncryptionInfo::decode(&bytes).unwrap();
    let r = info.recipients().next().unwrap();
    assert_eq!(
        r.unwrap_aes_kw(&[0; 32], info.alg).err(),
        Some(CoseError::AlgorithmMismatch)
    );
    assert_eq!(
        r.unwrap_ecdh_es(&device_key(), info.alg).err(),
        Some(CoseError::AlgorithmMismatch)
    );
    let bytes = read(PAIRS[1].0);
    let info = EncryptionInfo::decode(&bytes).unwrap();
    let r = info.recipients().next().unwrap();
    assert_eq!(
        r.unwrap_ecdh_es(&[0; 32], info.alg).err(),
        Some(CoseError::InvalidKey)
    );
    assert_eq!(
        r.unwrap_ecdh_es(&[0xff; 32], info.alg).err(),
        Some(CoseError::InvalidKey)
    );
    assert_eq!(
        r.unwrap_aes_kw(&kek(), info.alg).err(),
        Some(CoseError::AlgorithmMismatch)
    );
}

#[test]
fn a_changed_wrapped_key_or_ephemeral_key_is_decryption_failed() {
    for (name, _, _, _) in PAIRS {
        let bytes = read(name);
        // Flip each byte of the wrapped key (the last 24 bytes of every info).
        for i in bytes.len() - 24..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let info = EncryptionInfo::decode(&b).unwrap();
            assert_eq!(
                unwrap(&info, &kek(), &device_key()).err(),
                Some(CoseError::DecryptionFailed),
                "{name} byte {i}"
            );
        }
    }
    // An ephemeral x that is not on the curve (or another point): never the CEK.
    let bytes = read(PAIRS[1].0);
    let x_at = bytes
        .windows(3)
        .position(|w| w == [0x21, 0x58, 0x20])
        .unwrap()
        + 3;
    for i in [x_at, x_at + 31] {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let info = EncryptionInfo::decode(&b).unwrap();
        assert_eq!(
            unwrap(&info, &kek(), &device_key()).err(),
            Some(CoseError::DecryptionFailed)
        );
    }
}

#[test]
fn gcm_refuses_any_changed_byte_and_short_input() {
    for (name, ct, _, alg) in PAIRS {
        if !alg.is_aead() {
            continue;
        }
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        let cek = unwrap(&info, &kek(), &device_key()).unwrap();
        let ct = read(ct);
        // Every byte: the 30 ciphertext bytes and the 16 tag bytes.
        for i in 0..ct.len() {
            for bit in [0x01, 0x80] {
                let mut c = ct.clone();
                c[i] ^= bit;
                assert_eq!(
                    decrypt_chunked(&info, &cek, &c, &[7]).err(),
                    Some(CoseError::DecryptionFailed),
                    "{name} byte {i}"
                );
            }
        }
        // Truncated, extended, or shorter than the tag.
        for c in [&ct[..ct.len() - 1], &ct[..16], &ct[..15], &[][..]] {
            assert_eq!(
                decrypt_chunked(&info, &cek, c, &[5]).err(),
                Some(CoseError::DecryptionFailed)
            );
        }
        let mut longer = ct.clone();
        longer.push(0);
        assert_eq!(
            decrypt_chunked(&info, &cek, &longer, &[5]).err(),
            Some(CoseError::DecryptionFailed)
        );
        // A second finish, or an update after finish, never passes.
        let mut d = ContentDecryptor::new(&info, &cek).unwrap();
        let mut all = ct.clone();
        d.update(&mut all).unwrap();
        d.finish().unwrap();
        assert_eq!(d.finish(), Err(CoseError::DecryptionFailed));
        assert_eq!(d.update(&mut [0; 4]), Err(CoseError::DecryptionFailed));
        // The protected bytes are authenticated as received: `{1: 1}` with the 1 in a
        // longer (legal) encoding is the same header but another AAD.
        let at = bytes
            .windows(4)
            .position(|w| w == [0x43, 0xa1, 0x01, 0x01])
            .unwrap();
        let b = [
            &bytes[..at],
            &[0x44, 0xa1, 0x01, 0x18, 0x01],
            &bytes[at + 4..],
        ]
        .concat();
        let info2 = EncryptionInfo::decode(&b).unwrap();
        assert_eq!(info2.alg, ContentAlgorithm::A128Gcm);
        assert_eq!(
            decrypt_chunked(&info2, &cek, &ct, &[64]).err(),
            Some(CoseError::DecryptionFailed)
        );
        // So is the IV.
        let mut b = bytes.clone();
        let iv_at = b.windows(2).position(|w| w == [0x05, 0x4c]).unwrap() + 2;
        b[iv_at] ^= 1;
        let info3 = EncryptionInfo::decode(&b).unwrap();
        assert_eq!(
            decrypt_chunked(&info3, &cek, &ct, &[64]).err(),
            Some(CoseError::DecryptionFailed)
        );
    }
}

#[test]
fn ctr_with_a_changed_byte_decrypts_to_a_plaintext_whose_digest_differs() {
    let digest = Sha256::digest(read("plaintext.bin"));
    for (name, ct, _, alg) in PAIRS {
        if alg.is_aead() {
            continue;
        }
        let bytes = read(name);
        let info = EncryptionInfo::decode(&bytes).unwrap();
        let cek = unwrap(&info, &kek(), &device_key()).unwrap();
        let ct = read(ct);
        for i in 0..ct.len() {
            let mut c = ct.clone();
            c[i] ^= 0x01;
            // CTR has no tag: it "succeeds", and only the image digest can tell.
            let p = decrypt_chunked(&info, &cek, &c, &[3]).unwrap();
            assert_ne!(Sha256::digest(&p), digest, "{name} byte {i}");
        }
    }
}

/// Builds a SUIT_Encryption_Info by hand: tag 96, `[protected, unprotected, nil,
/// [recipient]]`, with every piece given as raw CBOR.
fn info(protected: &[u8], unprotected: &[u8], ct: &[u8], recipients: &[u8]) -> Vec<u8> {
    let mut v = vec![0xd8, 0x60, 0x84];
    assert!(protected.len() < 24);
    v.push(0x40 | protected.len() as u8);
    v.extend_from_slice(protected);
    v.extend_from_slice(unprotected);
    v.extend_from_slice(ct);
    v.extend_from_slice(recipients);
    v
}

/// `[[h'', {1: -3, 4: 'kid-1'}, wrapped(24)]]`, the AES-KW recipient of the vectors.
fn kw_recipients() -> Vec<u8> {
    let mut v = hex::decode("818340a2012204456b69642d315818").unwrap();
    v.extend_from_slice(&[0x11; 24]);
    v
}

/// `{5: iv(12)}`.
fn iv12() -> Vec<u8> {
    let mut v = vec![0xa1, 0x05, 0x4c];
    v.extend_from_slice(&[7; 12]);
    v
}

#[test]
fn strict_decoding() {
    let gcm = [0xa1, 0x01, 0x01];
    let ok = info(&gcm, &iv12(), &[0xf6], &kw_recipients());
    assert!(EncryptionInfo::decode(&ok).is_ok());

    let cases: Vec<(Vec<u8>, CoseError)> = vec![
        (ok[2..].to_vec(), CoseError::Untagged),
        (
            [&[0xd0][..], &ok[2..]].concat(),
            CoseError::UnsupportedMessage(16),
        ),
        ([&[0xd2][..], &ok[2..]].concat(), CoseError::UnknownTag(18)),
        (
            [&ok[..2], &[0x83][..], &ok[3..]].concat(),
            CoseError::WrongArrayLength { offset: 2 },
        ),
        (
            info(&gcm, &iv12(), &[0x41, 0x00], &kw_recipients()),
            CoseError::AttachedCiphertext,
        ),
        (
            info(&gcm, &iv12(), &[0xf6], &[0x80]),
            CoseError::NoRecipients,
        ),
        (
            info(&gcm, &[0xa0], &[0xf6], &kw_recipients()),
            CoseError::MissingIv,
        ),
        (
            info(&[], &iv12(), &[0xf6], &kw_recipients()),
            CoseError::MissingAlgorithm,
        ),
        (
            info(&[0xa1, 0x01, 0x02], &iv12(), &[0xf6], &kw_recipients()),
            CoseError::UnsupportedAlgorithm(2),
        ),
        // CTR (alg -65534 = 0x39 0xfffd) with a protected header.
        (
            info(
                &[0xa1, 0x01, 0x39, 0xff, 0xfd],
                &iv12(),
                &[0xf6],
                &kw_recipients(),
            ),
            CoseError::NonEmptyProtected { offset: 3 },
        ),
        // GCM with a 16-byte IV.
        (
            info(
                &gcm,
                &[&[0xa1, 0x05, 0x50][..], &[0; 16]].concat(),
                &[0xf6],
                &kw_recipients(),
            ),
            CoseError::InvalidHeader { offset: 9 },
        ),
        // alg in both buckets.
        (
            info(&gcm, &[0xa1, 0x01, 0x01], &[0xf6], &kw_recipients()),
            CoseError::DuplicateHeader { offset: 8 },
        ),
        // crit, and a Partial IV.
        (
            info(&gcm, &[0xa1, 0x02, 0x81, 0x01], &[0xf6], &kw_recipients()),
            CoseError::CriticalHeader { offset: 8 },
        ),
        (
            info(&gcm, &[0xa1, 0x06, 0x41, 0x00], &[0xf6], &kw_recipients()),
            CoseError::UnsupportedHeader { offset: 8 },
        ),
        // Trailing bytes after the message and inside the protected bstr.
        (
            [&ok[..], &[0x00][..]].concat(),
            CoseError::TrailingBytes { offset: ok.len() },
        ),
        (
            info(
                &[0xa1, 0x01, 0x01, 0x00],
                &iv12(),
                &[0xf6],
                &kw_recipients(),
            ),
            CoseError::TrailingBytes { offset: 7 },
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            EncryptionInfo::decode(&bytes).err(),
            Some(want),
            "{}",
            hex::encode(&bytes)
        );
    }
}

#[test]
fn strict_recipients() {
    let gcm = [0xa1, 0x01, 0x01];
    let with = |r: &str| {
        let mut rec = hex::decode(r).unwrap();
        rec.extend_from_slice(&[0x11; 24]);
        info(&gcm, &iv12(), &[0xf6], &rec)
    };
    let base = 3 + 1 + 3 + 15 + 1 + 1; // offset of the recipient array
    let cases = [
        // Nested recipients (4 elements).
        (
            "818440a2012204456b69642d315818",
            CoseError::WrongArrayLength { offset: base },
        ),
        // AES-KW with a protected header.
        (
            "818343a10122a104456b69642d315818",
            CoseError::NonEmptyProtected { offset: base + 1 },
        ),
        // No alg.
        ("818340a104456b69642d315818", CoseError::MissingAlgorithm),
        // ECDH-ES+A256KW (-31): not supported.
        (
            "818344a101381ea104456b69642d315818",
            CoseError::UnsupportedAlgorithm(-31),
        ),
        // ECDH-ES without the ephemeral key.
        (
            "818344a101381ca104456b69642d315818",
            CoseError::MissingEphemeralKey,
        ),
        // A PartyU identity (-21 = 0x34) would change the KDF context.
        (
            "818344a101381ca2344100", /* -21: h'00' */
            CoseError::UnsupportedHeader { offset: base + 7 },
        ),
        // kid that is a tstr.
        (
            "818340a2012204656b69642d315818",
            CoseError::InvalidHeader { offset: base + 6 },
        ),
    ];
    for (r, want) in cases {
        // Cases that stop early still get their wrapped key appended.
        let bytes = if r.ends_with("5818") {
            with(r)
        } else {
            with(&format!("{r}5818"))
        };
        assert_eq!(EncryptionInfo::decode(&bytes).err(), Some(want), "{r}");
    }
    // A wrapped key whose length does not fit the content key.
    let mut rec = hex::decode("818340a2012204456b69642d315820").unwrap();
    rec.extend_from_slice(&[0x11; 32]);
    assert!(matches!(
        EncryptionInfo::decode(&info(&gcm, &iv12(), &[0xf6], &rec)),
        Err(CoseError::Malformed { .. })
    ));
    // Two recipients: both are validated and both are listed.
    let mut two = vec![0x82];
    two.extend_from_slice(&kw_recipients()[1..]);
    two.extend_from_slice(&kw_recipients()[1..]);
    let bytes = info(&gcm, &iv12(), &[0xf6], &two);
    let i = EncryptionInfo::decode(&bytes).unwrap();
    assert_eq!(i.recipients().count(), 2);
}

#[test]
fn ephemeral_key_rules() {
    let bytes = read(PAIRS[1].0);
    // kty 2 → 3 (OKP would be 1; 3 is RSA): not an EC2 key.
    let at = bytes
        .windows(4)
        .position(|w| w == [0xa4, 0x01, 0x02, 0x20])
        .unwrap();
    let mut b = bytes.clone();
    b[at + 2] = 0x03;
    assert!(matches!(
        EncryptionInfo::decode(&b),
        Err(CoseError::InvalidHeader { .. })
    ));
    // crv 1 → 2 (P-384).
    let mut b = bytes.clone();
    b[at + 4] = 0x02;
    assert!(matches!(
        EncryptionInfo::decode(&b),
        Err(CoseError::InvalidHeader { .. })
    ));
    // A compressed point (y as its sign bit) decodes and gives the CEK. ECDH-ES uses
    // only the x coordinate of the shared point, and x(d·P) = x(d·(-P)), so either
    // sign derives the same KEK.
    let y_at = bytes
        .windows(3)
        .position(|w| w == [0x22, 0x58, 0x20])
        .unwrap();
    for sign in [0xf4, 0xf5] {
        let mut b = bytes[..y_at + 1].to_vec();
        b.push(sign);
        b.extend_from_slice(&bytes[y_at + 3 + 32..]);
        let info = EncryptionInfo::decode(&b).unwrap();
        let e = info.recipients().next().unwrap().ephemeral.unwrap();
        assert_eq!(e.y, Coordinate::Sign(sign == 0xf5));
        assert_eq!(
            unwrap(&info, &kek(), &device_key()).unwrap().as_bytes(),
            hex_file("cek-a128gcm.hex")
        );
    }
}

#[test]
fn cek_from_slice_and_new_refuse_wrong_lengths() {
    assert_eq!(Cek::from_slice(&[0; 15]).err(), Some(CoseError::InvalidKey));
    assert_eq!(Cek::from_slice(&[0; 24]).err(), Some(CoseError::InvalidKey));
    let bytes = read(PAIRS[0].0);
    let info = EncryptionInfo::decode(&bytes).unwrap();
    let k256 = Cek::from_slice(&[0; 32]).unwrap();
    assert_eq!(
        ContentDecryptor::new(&info, &k256).err(),
        Some(CoseError::InvalidKey)
    );
}

/// The streaming GCM against `aes-gcm` (one shot), and CTR against `ctr`, on random
/// data, keys, IVs and protected headers, for 128- and 256-bit keys.
mod differential {
    use super::*;

    fn gcm_info(alg: i64, protected_extra: &[u8], iv: &[u8; 12], key_len: usize) -> Vec<u8> {
        // protected = {1: alg, -70000: extra} so the AAD length varies.
        let mut p = vec![0xa2, 0x01, alg as u8, 0x3a, 0x00, 0x01, 0x11, 0x6f];
        p.push(0x58);
        p.push(protected_extra.len() as u8);
        p.extend_from_slice(protected_extra);
        let mut v = vec![0xd8, 0x60, 0x84, 0x58, p.len() as u8];
        v.extend_from_slice(&p);
        v.extend_from_slice(&[0xa1, 0x05, 0x4c]);
        v.extend_from_slice(iv);
        v.push(0xf6);
        v.extend_from_slice(&hex::decode("818340a2012204456b69642d3158").unwrap());
        v.push((key_len + 8) as u8);
        v.extend(std::iter::repeat_n(0x11, key_len + 8));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn streaming_gcm_equals_aes_gcm(
            wide in any::<bool>(),
            key in prop::array::uniform32(any::<u8>()),
            iv in prop::array::uniform12(any::<u8>()),
            extra in prop::collection::vec(any::<u8>(), 0..40),
            plaintext in prop::collection::vec(any::<u8>(), 0..700),
            sizes in prop::collection::vec(1usize..90, 1..6),
            flip in any::<Option<prop::sample::Index>>(),
        ) {
            let key_len = if wide { 32 } else { 16 };
            let bytes = gcm_info(if wide { 3 } else { 1 }, &extra, &iv, key_len);
            let info = EncryptionInfo::decode(&bytes).unwrap();
            let mut aad = vec![0x83, 0x67];
            aad.extend_from_slice(b"Encrypt");
            if info.protected.len() < 24 {
                aad.push(0x40 | info.protected.len() as u8);
            } else {
                aad.push(0x58);
                aad.push(info.protected.len() as u8);
            }
            aad.extend_from_slice(info.protected);
            aad.push(0x40);
            let mut ct = plaintext.clone();
            let tag = if wide {
                aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap()
                    .encrypt_inout_detached(&iv.into(), &aad, ct.as_mut_slice().into()).unwrap()
            } else {
                aes_gcm::Aes128Gcm::new_from_slice(&key[..16]).unwrap()
                    .encrypt_inout_detached(&iv.into(), &aad, ct.as_mut_slice().into()).unwrap()
            };
            ct.extend_from_slice(&tag);
            let cek = Cek::from_slice(&key[..key_len]).unwrap();
            match flip {
                None => prop_assert_eq!(decrypt_chunked(&info, &cek, &ct, &sizes).unwrap(), plaintext),
                Some(i) => {
                    let i = i.index(ct.len());
                    ct[i] ^= 0x40;
                    prop_assert_eq!(decrypt_chunked(&info, &cek, &ct, &sizes).err(), Some(CoseError::DecryptionFailed));
                }
            }
        }

        #[test]
        fn streaming_ctr_equals_ctr(
            wide in any::<bool>(),
            key in prop::array::uniform32(any::<u8>()),
            iv in prop::array::uniform16(any::<u8>()),
            plaintext in prop::collection::vec(any::<u8>(), 0..700),
            sizes in prop::collection::vec(1usize..90, 1..6),
        ) {
            use ctr::cipher::{KeyIvInit, StreamCipher};
            let key_len = if wide { 32 } else { 16 };
            // {1: -65532 / -65534, 5: iv(16)} unprotected, protected h''.
            let mut bytes = vec![0xd8, 0x60, 0x84, 0x40, 0xa2, 0x01, 0x39, 0xff, if wide { 0xfb } else { 0xfd }, 0x05, 0x50];
            bytes.extend_from_slice(&iv);
            bytes.push(0xf6);
            bytes.extend_from_slice(&hex::decode("818340a2012204456b69642d3158").unwrap());
            bytes.push((key_len + 8) as u8);
            bytes.extend(std::iter::repeat_n(0x11, key_len + 8));
            let info = EncryptionInfo::decode(&bytes).unwrap();
            prop_assert_eq!(info.alg, if wide { ContentAlgorithm::A256Ctr } else { ContentAlgorithm::A128Ctr });
            let mut ct = plaintext.clone();
            if wide {
                ctr::Ctr128BE::<aes_gcm::aes::Aes256>::new_from_slices(&key, &iv).unwrap().apply_keystream(&mut ct);
            } else {
                ctr::Ctr128BE::<aes_gcm::aes::Aes128>::new_from_slices(&key[..16], &iv).unwrap().apply_keystream(&mut ct);
            }
            let cek = Cek::from_slice(&key[..key_len]).unwrap();
            prop_assert_eq!(decrypt_chunked(&info, &cek, &ct, &sizes).unwrap(), plaintext);
        }

        /// A256KW round trip through `aes-kw`'s wrap.
        #[test]
        fn a256kw_unwraps_what_aes_kw_wraps(kek in prop::array::uniform32(any::<u8>()), cek in prop::array::uniform16(any::<u8>())) {
            use aes_kw::KeyInit as _;
            let mut wrapped = [0u8; 24];
            aes_kw::KwAes256::new_from_slice(&kek).unwrap().wrap_key(&cek, &mut wrapped).unwrap();
            let mut bytes = info(&[0xa1, 0x01, 0x01], &iv12(), &[0xf6], &[]);
            bytes.extend_from_slice(&hex::decode("818340a2012404456b69642d315818").unwrap());
            bytes.extend_from_slice(&wrapped);
            let i = EncryptionInfo::decode(&bytes).unwrap();
            let r = i.recipients().next().unwrap();
            prop_assert_eq!(r.alg, KeyAlgorithm::A256Kw);
            let got = r.unwrap_aes_kw(&kek, i.alg).unwrap();
            prop_assert_eq!(got.as_bytes(), &cek[..]);
            prop_assert_eq!(r.unwrap_aes_kw(&kek[..16], i.alg).err(), Some(CoseError::AlgorithmMismatch));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes as SUIT_Encryption_Info never panic decoding, unwrapping or
    /// decrypting.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&bytes);
    }

    /// Nor do mutations of the real infos (which reach much deeper).
    #[test]
    fn mutated_vectors_never_panic(
        pair in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = read(PAIRS[pair].0);
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        exercise(&bytes);
    }
}

fn exercise(bytes: &[u8]) {
    let Ok(info) = EncryptionInfo::decode(bytes) else {
        return;
    };
    for r in info.recipients() {
        let cek = match r.alg {
            KeyAlgorithm::EcdhEsA128Kw => r.unwrap_ecdh_es(&device_key(), info.alg),
            KeyAlgorithm::A128Kw => r.unwrap_aes_kw(&kek(), info.alg),
            KeyAlgorithm::A256Kw => r.unwrap_aes_kw(&[0x61; 32], info.alg),
        };
        if let Ok(cek) = cek {
            let mut d = ContentDecryptor::new(&info, &cek).unwrap();
            let mut ct = read(PAIRS[0].1);
            let _ = d.update(&mut ct);
            let _ = d.finish();
        }
    }
}
