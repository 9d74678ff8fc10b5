//! Payload decryption inside the install pass (draft-ietf-suit-firmware-encryption).
//!
//! A write, fetch or copy whose component has an encryption-info parameter gets a
//! [`Decryptor`] as the pipeline's [`Transform`]: every ciphertext byte is decrypted,
//! hashed and written once, in the same 512-byte pass as an unencrypted payload.
//!
//! ```text
//!  encryption-info ──EncryptionInfo::decode──▶ recipients ──(kid)──▶ DecryptionKeys
//!                                                  │  A128KW/A256KW: KEK      ECDH-ES+A128KW: device key
//!                                                  ▼
//!                                           content key (CEK) ──▶ ContentDecryptor (GCM / CTR)
//! ```
//!
//! What is trusted when: nothing the decryptor releases is trusted by itself. A GCM tag
//! failure fails the install (the component is left unfinished, its digest is not
//! recorded); with CTR there is no tag at all. In both cases the plaintext becomes
//! trusted only when the manifest's image-match condition finds the image digest.

use suitcase_cose::CoseError;
use suitcase_cose::encryption::{
    Cek, ContentAlgorithm, ContentDecryptor, EncryptionInfo, KeyAlgorithm, Recipient,
};

use crate::error::Error;
use crate::pipeline::Transform;
use crate::platform::DecryptionKeys;

/// Streaming payload decryption, ready for [`crate::pipeline::install`].
#[derive(Debug)]
pub struct Decryptor {
    inner: ContentDecryptor,
}

impl Decryptor {
    /// Decodes `info` (the encryption-info parameter's SUIT_Encryption_Info) and
    /// unwraps the content key with the first recipient whose key `keys` holds and
    /// whose unwrap succeeds.
    ///
    /// # Errors
    /// [`Error::EncryptionInfo`] for a malformed or unsupported info;
    /// [`Error::NoDecryptionKey`] when no recipient names a key the device has (of the
    /// right kind and length); [`Error::DecryptionFailed`] when a key was found but
    /// every unwrap failed.
    pub fn new(info: &[u8], keys: &dyn DecryptionKeys) -> Result<Self, Error> {
        let info = EncryptionInfo::decode(info).map_err(Error::EncryptionInfo)?;
        let mut failed = false;
        for r in info.recipients() {
            let cek = match r.alg {
                KeyAlgorithm::A128Kw | KeyAlgorithm::A256Kw => {
                    keys.kek(r.kid).map(|kek| r.unwrap_aes_kw(kek, info.alg))
                }
                KeyAlgorithm::EcdhEsA128Kw => ecdh_es(&r, keys, info.alg),
            };
            match cek {
                Some(Ok(cek)) => {
                    let inner = ContentDecryptor::new(&info, &cek).map_err(from_cose)?;
                    return Ok(Decryptor { inner });
                }
                // The integrity check said no: a wrong key, or a changed wrapped key.
                Some(Err(CoseError::DecryptionFailed)) => failed = true,
                // A key of the wrong kind or length for this recipient: not its key.
                Some(Err(_)) | None => {}
            }
        }
        Err(if failed {
            Error::DecryptionFailed
        } else {
            Error::NoDecryptionKey
        })
    }
}

#[cfg(feature = "p256")]
fn ecdh_es(
    r: &Recipient<'_>,
    keys: &dyn DecryptionKeys,
    alg: ContentAlgorithm,
) -> Option<Result<Cek, CoseError>> {
    keys.ecdh_private_key(r.kid)
        .map(|d| r.unwrap_ecdh_es(d, alg))
}

/// A build without P-256 cannot do ECDH: such a recipient is never its own.
#[cfg(not(feature = "p256"))]
fn ecdh_es(
    _r: &Recipient<'_>,
    _keys: &dyn DecryptionKeys,
    _alg: ContentAlgorithm,
) -> Option<Result<Cek, CoseError>> {
    None
}

fn from_cose(e: CoseError) -> Error {
    match e {
        CoseError::DecryptionFailed => Error::DecryptionFailed,
        other => Error::EncryptionInfo(other),
    }
}

impl Transform for Decryptor {
    fn apply(&mut self, chunk: &mut [u8]) -> Result<usize, Error> {
        self.inner.update(chunk).map_err(from_cose)
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.inner.finish().map_err(from_cose)
    }
}
