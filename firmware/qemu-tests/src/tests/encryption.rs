//! Firmware encryption on the device (`suitcase-cose/encryption`,
//! `suitcase-processor/encryption`): the published SUIT_Encryption_Info vectors decode,
//! unwrap their content key (A128KW, and ECDH-ES+A128KW with a P-256 scalar multiply)
//! and stream-decrypt to `plaintext.bin` in 7-byte pieces; a flipped GCM tag byte is
//! refused; and `suit-manifest-es-ecdh-content.suit` runs its whole update through the
//! processor, decrypting inside the install pass.

use suitcase_cose::encryption::{Cek, ContentDecryptor, EncryptionInfo, KeyAlgorithm};
use suitcase_cose::p256::ecdsa::VerifyingKey as P256Key;
use suitcase_cose::{CoseError, VerifyingKey};
use suitcase_processor::platform::{
    MemoryRollback, NamedKey, NoClock, NoFetch, NoInvoke, StaticDecryptionKeys, StaticIdentity,
    StaticKeys, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::{Platform, authenticate};

use crate::harness::Outcome;
use crate::vectors::{
    ENC_DEVICE_KEY, ENC_ES_ECDH_CONTENT, ENC_KEK, ENC_PAIRS, ENC_PLAINTEXT, EXAMPLE_KEY_SEC1,
    SPEC_CLASS, SPEC_VENDOR,
};

/// The content key of pair `n`'s only recipient.
fn cek(info: &EncryptionInfo<'_>) -> Result<Cek, CoseError> {
    let r = info.recipients().next().ok_or(CoseError::NoRecipients)?;
    match r.alg {
        KeyAlgorithm::EcdhEsA128Kw => r.unwrap_ecdh_es(ENC_DEVICE_KEY, info.alg),
        _ => r.unwrap_aes_kw(ENC_KEK, info.alg),
    }
}

/// Decrypts pair `n` (its ciphertext copied to a stack buffer, optionally with one
/// byte flipped) in 7-byte pieces; the plaintext collects at the front of the buffer.
fn decrypt(n: usize, flip: Option<usize>) -> Result<bool, &'static str> {
    let (info_bytes, ct) = ENC_PAIRS.get(n).copied().ok_or("no such pair")?;
    let info = EncryptionInfo::decode(info_bytes).map_err(|_| "info does not decode")?;
    let cek = cek(&info).map_err(|_| "content key does not unwrap")?;
    let mut d = ContentDecryptor::new(&info, &cek).map_err(|_| "no decryptor")?;
    let mut buf = [0u8; 64];
    let buf = buf.get_mut(..ct.len()).ok_or("ciphertext too long")?;
    buf.copy_from_slice(ct);
    if let Some(i) = flip {
        *buf.get_mut(i).ok_or("flip out of range")? ^= 1;
    }
    let (mut read, mut out) = (0, 0);
    while read < buf.len() {
        let end = (read + 7).min(buf.len());
        let mut piece = [0u8; 7];
        let piece = piece.get_mut(..end - read).ok_or("piece")?;
        piece.copy_from_slice(buf.get(read..end).ok_or("piece")?);
        let k = d.update(piece).map_err(|_| "update failed")?;
        buf.get_mut(out..out + k)
            .ok_or("output")?
            .copy_from_slice(piece.get(..k).ok_or("output")?);
        out += k;
        read = end;
    }
    if d.finish().is_err() {
        return Ok(false);
    }
    Ok(buf.get(..out) == Some(ENC_PLAINTEXT))
}

fn decrypts(n: usize) -> Outcome {
    match decrypt(n, None)? {
        true => Ok(()),
        false => Err("does not decrypt to plaintext.bin"),
    }
}

/// A128KW + A128GCM.
pub fn aes_kw_gcm_decrypts() -> Outcome {
    decrypts(0)
}
/// ECDH-ES+A128KW + A128GCM: one P-256 scalar multiplication, HKDF, unwrap.
pub fn es_ecdh_gcm_decrypts() -> Outcome {
    decrypts(1)
}
/// A128KW + A128CTR.
pub fn aes_kw_ctr_decrypts() -> Outcome {
    decrypts(2)
}
/// ECDH-ES+A128KW + A128CTR.
pub fn es_ecdh_ctr_decrypts() -> Outcome {
    decrypts(3)
}

/// A flipped tag byte fails `finish`.
pub fn gcm_flipped_tag_refused() -> Outcome {
    match decrypt(0, Some(40))? {
        false => Ok(()),
        true => Err("a flipped tag byte was accepted"),
    }
}

/// `suit-manifest-es-ecdh-content.suit`: authenticate (ESP256), then the update, which
/// writes the content parameter through the decryptor (ES-DH, kid-2, A128GCM).
pub fn es_ecdh_content_update() -> Outcome {
    const ID: &[u8] = b"\x81\x52decrypted-firmware";
    let key = P256Key::from_sec1_bytes(&EXAMPLE_KEY_SEC1).map_err(|_| "signing key invalid")?;
    let anchors = [TrustAnchor {
        key: VerifyingKey::P256(key),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let auth = authenticate(ENC_ES_ECDH_CONTENT, &keys).map_err(|_| "not authentic")?;
    let mut data = [0u8; 64];
    let mut components = [MemoryComponent {
        id: ID,
        slot: None,
        data: &mut data,
        len: 0,
    }];
    let mut storage = MemoryStorage {
        components: &mut components,
    };
    let ecdh = [NamedKey {
        kid: Some(b"kid-2"),
        key: ENC_DEVICE_KEY,
    }];
    let decryption = StaticDecryptionKeys {
        keks: &[],
        ecdh: &ecdh,
    };
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: 0,
    };
    let mut rollback = MemoryRollback(0);
    auth.update(&mut Platform {
        storage: &mut storage,
        fetch: &mut NoFetch,
        identity: &identity,
        rollback: &mut rollback,
        clock: &NoClock,
        invoker: &mut NoInvoke,
        reporter: &mut NoReport,
        decryption: &decryption,
        policy: &mut suitcase_processor::platform::NoPolicy,
        dependencies: None,
    })
    .map_err(|_| "update failed")?;
    let c = components.first().ok_or("no component")?;
    if c.data.get(..c.len) != Some(ENC_PLAINTEXT) || rollback.0 != 1 {
        return Err("the component does not hold plaintext.bin");
    }
    Ok(())
}
