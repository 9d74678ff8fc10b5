//! `suitcase encrypt`: encrypt a payload for a device (draft-ietf-suit-firmware-encryption)
//! and write the ciphertext and its SUIT_Encryption_Info; also the host-side encryption
//! `build` uses for a component's `encrypt = {…}`.
//!
//! A fresh random content-encryption key (CEK) and IV come from the operating system for
//! every call. The CEK reaches the device wrapped for one recipient:
//!
//! - a pre-shared key-encryption key (KEK): AES key wrap (RFC 3394), A128KW for a 16-byte
//!   KEK, A256KW for a 32-byte one;
//! - the device's P-256 public key: ECDH-ES+A128KW with a fresh ephemeral key; the KEK is
//!   HKDF-SHA-256 (no salt) of the shared secret's x coordinate over the COSE_KDF_Context
//!   exactly as the device rebuilds it (`suitcase_cose::encryption::write_kdf_context`).
//!
//! The SUIT_Encryption_Info is a detached COSE_Encrypt (tag 96) in the shapes
//! `suitcase_cose` decodes (its README, "SUIT_Encryption_Info, byte by byte"): GCM with
//! protected `{1: alg}` and the 12-byte IV unprotected; CTR with an empty protected
//! header, alg and the 16-byte initial counter block unprotected. GCM's AAD is the
//! Enc_structure `["Encrypt", protected, h'']` and the 16-byte tag follows the ciphertext.
//! Before anything is returned, the info is decoded with the device decoder and, for a
//! KEK, the wrapped key is unwrapped again and compared.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::{Aes128, Aes256};
use anyhow::{Context as _, anyhow, bail};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use suitcase_cose::OwnedVerifyingKey;
use suitcase_cose::encryption::{
    Cek, ContentAlgorithm, EncryptionInfo, KeyAlgorithm, write_kdf_context,
};

use crate::cbor::Item;
use crate::keys::{self, PublicKey};
use crate::output::{self, Mode};

/// Arguments of `encrypt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plaintext image.
    #[arg(long, value_name = "IMG")]
    pub payload: PathBuf,
    /// Wrap the content key with this pre-shared key-encryption key (raw 16 or 32 bytes:
    /// A128KW or A256KW).
    #[arg(
        long,
        value_name = "KEK.bin",
        conflicts_with = "recipient",
        required_unless_present = "recipient"
    )]
    pub kek: Option<PathBuf>,
    /// Wrap the content key for this device public key (P-256 SPKI PEM): ECDH-ES+A128KW.
    #[arg(long, value_name = "PUB.pem")]
    pub recipient: Option<PathBuf>,
    /// The key id the device looks its key up by ("0x…" is hex, anything else UTF-8).
    #[arg(long, value_name = "ID")]
    pub kid: Option<String>,
    /// Content encryption.
    #[arg(long, value_enum, default_value = "aes-gcm")]
    pub content: ContentMode,
    /// Content key size in bits (A128GCM / A256GCM, A128CTR / A256CTR).
    #[arg(long, value_name = "BITS", default_value = "128", value_parser = ["128", "256"])]
    pub key_size: String,
    /// Where the ciphertext goes.
    #[arg(long, short = 'o', value_name = "IMG.enc")]
    pub out: PathBuf,
    /// Where the SUIT_Encryption_Info (COSE_Encrypt, tag 96) goes.
    #[arg(long, value_name = "INFO.cose")]
    pub info_out: PathBuf,
    /// Print one JSON object of type "encrypt".
    #[arg(long)]
    pub json: bool,
}

/// Content encryption mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentMode {
    /// AES-GCM: authenticated (a 16-byte tag follows the ciphertext).
    AesGcm,
    /// AES-CTR: unauthenticated; only the manifest's image digest protects the plaintext.
    AesCtr,
}

impl ContentMode {
    /// The COSE algorithm for a key of `bits`.
    pub fn algorithm(self, bits: u16) -> anyhow::Result<ContentAlgorithm> {
        Ok(match (self, bits) {
            (ContentMode::AesGcm, 128) => ContentAlgorithm::A128Gcm,
            (ContentMode::AesGcm, 256) => ContentAlgorithm::A256Gcm,
            (ContentMode::AesCtr, 128) => ContentAlgorithm::A128Ctr,
            (ContentMode::AesCtr, 256) => ContentAlgorithm::A256Ctr,
            (_, b) => bail!("key size must be 128 or 256 bits, not {b}"),
        })
    }
}

/// Who can unwrap the content key.
pub enum RecipientKey {
    /// A pre-shared KEK (16 or 32 bytes).
    Kek(Vec<u8>),
    /// The device's P-256 public key.
    Device(p256::PublicKey),
}

impl RecipientKey {
    /// A KEK from a raw key file.
    pub fn kek_file(path: &Path) -> anyhow::Result<RecipientKey> {
        let ctx = || path.display().to_string();
        let kek = std::fs::read(path).with_context(ctx)?;
        if kek.len() != 16 && kek.len() != 32 {
            return Err(anyhow!(
                "a key-encryption key is 16 (A128KW) or 32 (A256KW) raw bytes, not {}",
                kek.len()
            ))
            .with_context(ctx);
        }
        Ok(RecipientKey::Kek(kek))
    }

    /// A device public key from a PEM file (P-256 only).
    pub fn device_file(path: &Path) -> anyhow::Result<RecipientKey> {
        let ctx = || path.display().to_string();
        match keys::load_public(path)? {
            PublicKey::Classic(OwnedVerifyingKey::P256(vk)) => {
                Ok(RecipientKey::Device(p256::PublicKey::from(vk)))
            }
            other => Err(anyhow!(
                "ECDH-ES needs a P-256 public key, not {}",
                other.kind()
            ))
            .with_context(ctx),
        }
    }

    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            RecipientKey::Kek(k) if k.len() == 32 => KeyAlgorithm::A256Kw,
            RecipientKey::Kek(_) => KeyAlgorithm::A128Kw,
            RecipientKey::Device(_) => KeyAlgorithm::EcdhEsA128Kw,
        }
    }
}

/// A key id from the command line or a description: "0x…" is hex, anything else UTF-8.
pub fn parse_kid(s: &str) -> anyhow::Result<Vec<u8>> {
    let kid = match s.strip_prefix("0x") {
        Some(h) => hex::decode(h).map_err(|_| anyhow!("kid {s:?} is not hex"))?,
        None => s.as_bytes().to_vec(),
    };
    if kid.is_empty() {
        bail!("an empty kid names no key");
    }
    Ok(kid)
}

/// The result of [`encrypt`].
pub struct Encrypted {
    /// The SUIT_Encryption_Info (tag 96 COSE_Encrypt, detached).
    pub info: Vec<u8>,
    /// The ciphertext (GCM: with the 16-byte tag appended).
    pub ciphertext: Vec<u8>,
    /// The content algorithm.
    pub content: ContentAlgorithm,
    /// The key distribution algorithm.
    pub key: KeyAlgorithm,
}

/// Random bytes from the operating system.
fn random(buf: &mut [u8]) -> anyhow::Result<()> {
    getrandom::fill(buf).map_err(|e| anyhow!("no randomness from the OS: {e}"))
}

fn encode(item: &Item) -> Vec<u8> {
    // Every map here has distinct integer keys.
    item.encode()
        .unwrap_or_else(|_| unreachable!("distinct literal keys"))
}

fn aes_kw(kek: &[u8], cek: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0u8; cek.len() + 8];
    let wrapped = match kek.len() {
        16 => aes_kw::KwAes128::new_from_slice(kek)
            .map_err(|_| anyhow!("bad KEK"))?
            .wrap_key(cek, &mut out)
            .map(<[u8]>::len),
        32 => aes_kw::KwAes256::new_from_slice(kek)
            .map_err(|_| anyhow!("bad KEK"))?
            .wrap_key(cek, &mut out)
            .map(<[u8]>::len),
        n => bail!("no AES key wrap with a {n}-byte KEK"),
    }
    .map_err(|_| anyhow!("AES key wrap failed"))?;
    out.truncate(wrapped);
    Ok(out)
}

/// One COSE_recipient for `to`, wrapping `cek`.
fn recipient(to: &RecipientKey, kid: Option<&[u8]>, cek: &[u8]) -> anyhow::Result<Item> {
    let kid_entry = kid.map(|k| (4, Item::Bytes(k.to_vec())));
    match to {
        RecipientKey::Kek(kek) => {
            let mut u = vec![(1, Item::int(to.algorithm().cose_id()))];
            u.extend(kid_entry);
            Ok(Item::Array(vec![
                Item::Bytes(Vec::new()),
                Item::int_map(u),
                Item::Bytes(aes_kw(kek, cek)?),
            ]))
        }
        RecipientKey::Device(device) => {
            let alg = KeyAlgorithm::EcdhEsA128Kw;
            let protected = encode(&Item::int_map([(1, Item::int(alg.cose_id()))]));
            let eph = loop {
                let mut d = [0u8; 32];
                random(&mut d)?;
                if let Ok(k) = p256::SecretKey::from_slice(&d) {
                    break k;
                }
            };
            let shared = p256::ecdh::diffie_hellman(eph.to_nonzero_scalar(), device.as_affine());
            let mut context = Vec::new();
            write_kdf_context(alg, &protected, &mut |p| context.extend_from_slice(p));
            let mut derived = [0u8; 16];
            Hkdf::<Sha256>::new(None, shared.raw_secret_bytes().as_slice())
                .expand(&context, &mut derived)
                .map_err(|_| anyhow!("HKDF output length"))?;
            // Held in a zeroize-on-drop key from here on.
            let kek = Cek::from_slice(&derived).map_err(|e| anyhow!("{e}"))?;
            derived.fill(0);
            let point = eph.public_key().to_sec1_point(false);
            let (x, y) = point
                .x()
                .zip(point.y())
                .ok_or_else(|| anyhow!("the ephemeral key is the identity"))?;
            let mut u = vec![(
                -1,
                Item::int_map([
                    (1, Item::int(2)),
                    (-1, Item::int(1)),
                    (-2, Item::Bytes(x.to_vec())),
                    (-3, Item::Bytes(y.to_vec())),
                ]),
            )];
            u.extend(kid_entry);
            Ok(Item::Array(vec![
                Item::Bytes(protected),
                Item::int_map(u),
                Item::Bytes(aes_kw(kek.as_bytes(), cek)?),
            ]))
        }
    }
}

/// Encrypts `plaintext` with a fresh CEK and IV under `content`, for `to` (named by
/// `kid`); checks the result with the device decoder.
///
/// # Errors
/// No randomness from the OS, or (an internal error) the result does not decode.
pub fn encrypt(
    plaintext: &[u8],
    content: ContentAlgorithm,
    to: &RecipientKey,
    kid: Option<&[u8]>,
) -> anyhow::Result<Encrypted> {
    let mut cek_bytes = vec![0u8; content.key_len()];
    random(&mut cek_bytes)?;
    let cek = Cek::from_slice(&cek_bytes).map_err(|e| anyhow!("{e}"))?;
    cek_bytes.fill(0);
    let mut iv = vec![0u8; content.iv_len()];
    random(&mut iv)?;

    let (protected, unprotected) = if content.is_aead() {
        (
            encode(&Item::int_map([(1, Item::int(content.cose_id()))])),
            Item::int_map([(5, Item::Bytes(iv.clone()))]),
        )
    } else {
        (
            Vec::new(),
            Item::int_map([
                (1, Item::int(content.cose_id())),
                (5, Item::Bytes(iv.clone())),
            ]),
        )
    };
    let key = cek.as_bytes();
    let mut ct = plaintext.to_vec();
    let bad_key = |_| anyhow!("content key of the wrong length");
    match content {
        ContentAlgorithm::A128Gcm | ContentAlgorithm::A256Gcm => {
            let aad = encode(&Item::Array(vec![
                Item::Text("Encrypt".into()),
                Item::Bytes(protected.clone()),
                Item::Bytes(Vec::new()),
            ]));
            let nonce = <[u8; 12]>::try_from(iv.as_slice())
                .map_err(|_| anyhow!("GCM IV length"))?
                .into();
            let tag = if content == ContentAlgorithm::A128Gcm {
                aes_gcm::Aes128Gcm::new_from_slice(key)
                    .map_err(bad_key)?
                    .encrypt_inout_detached(&nonce, &aad, ct.as_mut_slice().into())
            } else {
                aes_gcm::Aes256Gcm::new_from_slice(key)
                    .map_err(bad_key)?
                    .encrypt_inout_detached(&nonce, &aad, ct.as_mut_slice().into())
            }
            .map_err(|_| anyhow!("payload too large for AES-GCM"))?;
            ct.extend_from_slice(&tag);
        }
        ContentAlgorithm::A128Ctr => ctr::Ctr128BE::<Aes128>::new_from_slices(key, &iv)
            .map_err(|_| anyhow!("content key or IV of the wrong length"))?
            .apply_keystream(&mut ct),
        ContentAlgorithm::A256Ctr => ctr::Ctr128BE::<Aes256>::new_from_slices(key, &iv)
            .map_err(|_| anyhow!("content key or IV of the wrong length"))?
            .apply_keystream(&mut ct),
    }
    let info = encode(&Item::Tag(
        96,
        Box::new(Item::Array(vec![
            Item::Bytes(protected),
            unprotected,
            Item::Raw(vec![0xf6]),
            Item::Array(vec![recipient(to, kid, key)?]),
        ])),
    ));
    // What we wrote must be what a device reads.
    let decoded = EncryptionInfo::decode(&info)
        .map_err(|e| anyhow!("internal error: the encryption info does not decode: {e}"))?;
    if let RecipientKey::Kek(kek) = to {
        let r = decoded
            .recipients()
            .next()
            .ok_or_else(|| anyhow!("internal error: no recipient"))?;
        let back = r
            .unwrap_aes_kw(kek, content)
            .map_err(|e| anyhow!("internal error: the wrapped key does not unwrap: {e}"))?;
        if back.as_bytes() != key {
            bail!("internal error: the wrapped key unwraps to another key");
        }
    }
    Ok(Encrypted {
        info,
        ciphertext: ct,
        content,
        key: to.algorithm(),
    })
}

/// The human name of a content algorithm.
pub fn content_name(a: ContentAlgorithm) -> &'static str {
    match a {
        ContentAlgorithm::A128Gcm => "A128GCM",
        ContentAlgorithm::A256Gcm => "A256GCM",
        ContentAlgorithm::A128Ctr => "A128CTR",
        ContentAlgorithm::A256Ctr => "A256CTR",
    }
}

/// The human name of a key distribution algorithm.
pub fn key_name(a: KeyAlgorithm) -> &'static str {
    match a {
        KeyAlgorithm::A128Kw => "A128KW",
        KeyAlgorithm::A256Kw => "A256KW",
        KeyAlgorithm::EcdhEsA128Kw => "ECDH-ES+A128KW",
    }
}

/// Runs `encrypt`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let to = match (&args.kek, &args.recipient) {
        (Some(k), None) => RecipientKey::kek_file(k)?,
        (None, Some(r)) => RecipientKey::device_file(r)?,
        _ => bail!("give --kek or --recipient"),
    };
    let kid = args.kid.as_deref().map(parse_kid).transpose()?;
    let bits: u16 = args.key_size.parse().map_err(|_| anyhow!("--key-size"))?;
    let alg = args.content.algorithm(bits)?;
    let name = args.payload.display().to_string();
    let plaintext = std::fs::read(&args.payload).with_context(|| name.clone())?;
    if args.out == args.info_out {
        bail!("-o and --info-out name the same file");
    }
    let canonical = |p: &Path| p.canonicalize().ok();
    for p in [&args.out, &args.info_out] {
        if canonical(p).is_some() && canonical(p) == canonical(&args.payload) {
            bail!("{}: would overwrite the plaintext payload", p.display());
        }
    }
    for p in [&args.out, &args.info_out] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            bail!("{}: {}: no such directory", p.display(), dir.display());
        }
    }
    let e = encrypt(&plaintext, alg, &to, kid.as_deref())?;
    output::write_atomic(&args.out, &e.ciphertext, Mode::Public)?;
    if let Err(err) = output::write_atomic(&args.info_out, &e.info, Mode::Public) {
        // All or nothing: a ciphertext without its info is useless.
        let _ = std::fs::remove_file(&args.out);
        return Err(err);
    }
    let digest = hex::encode(Sha256::digest(&plaintext));
    if args.json {
        let line = json!({
            "type": "encrypt",
            "payload": name,
            "out": args.out.display().to_string(),
            "info_out": args.info_out.display().to_string(),
            "content": content_name(e.content),
            "key": key_name(e.key),
            "kid": args.kid,
            "plaintext_size": plaintext.len(),
            "plaintext_digest": digest,
            "ciphertext_size": e.ciphertext.len(),
            "info_size": e.info.len(),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "encrypted: {} ({} bytes, {}; key {} {}) and {} ({} bytes); plaintext {} bytes, sha-256:{digest}",
            args.out.display(),
            e.ciphertext.len(),
            content_name(e.content),
            key_name(e.key),
            args.kid
                .as_deref()
                .map(|k| format!("kid {k:?}"))
                .unwrap_or_else(|| "without kid".into()),
            args.info_out.display(),
            e.info.len(),
            plaintext.len(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use suitcase_cose::encryption::ContentDecryptor;

    fn decrypt(info: &[u8], cek: &Cek, ct: &[u8]) -> Result<Vec<u8>, suitcase_cose::CoseError> {
        let info = EncryptionInfo::decode(info)?;
        let mut d = ContentDecryptor::new(&info, cek)?;
        let mut buf = ct.to_vec();
        let n = d.update(&mut buf)?;
        d.finish()?;
        buf.truncate(n);
        Ok(buf)
    }

    #[test]
    fn every_mode_decrypts_with_the_device_code() {
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let device = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        for mode in [ContentMode::AesGcm, ContentMode::AesCtr] {
            for bits in [128, 256] {
                let alg = mode.algorithm(bits).unwrap();
                for to in [
                    RecipientKey::Kek(vec![1; 16]),
                    RecipientKey::Kek(vec![2; 32]),
                    RecipientKey::Device(device.public_key()),
                ] {
                    let e = encrypt(&plain, alg, &to, Some(b"k")).unwrap();
                    let info = EncryptionInfo::decode(&e.info).unwrap();
                    let r = info.recipients().next().unwrap();
                    let cek = match &to {
                        RecipientKey::Kek(k) => r.unwrap_aes_kw(k, alg).unwrap(),
                        RecipientKey::Device(_) => {
                            r.unwrap_ecdh_es(&device.to_bytes(), alg).unwrap()
                        }
                    };
                    let tag = if alg.is_aead() { 16 } else { 0 };
                    assert_eq!(e.ciphertext.len(), plain.len() + tag);
                    assert_ne!(&e.ciphertext[..plain.len()], &plain[..]);
                    assert_eq!(decrypt(&e.info, &cek, &e.ciphertext).unwrap(), plain);
                }
            }
        }
    }

    #[test]
    fn fresh_key_and_iv_every_time() {
        let to = RecipientKey::Kek(vec![1; 16]);
        let a = encrypt(b"same", ContentAlgorithm::A128Gcm, &to, None).unwrap();
        let b = encrypt(b"same", ContentAlgorithm::A128Gcm, &to, None).unwrap();
        assert_ne!(a.info, b.info);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn kids_and_sizes() {
        assert_eq!(parse_kid("kid-1").unwrap(), b"kid-1");
        assert_eq!(parse_kid("0x0102").unwrap(), [1, 2]);
        assert!(parse_kid("0xzz").is_err());
        assert!(parse_kid("").is_err());
        assert!(ContentMode::AesGcm.algorithm(192).is_err());
    }
}
