//! SUIT_Encryption_Info (draft-ietf-suit-firmware-encryption): a tagged COSE_Encrypt
//! (tag 96) with a detached ciphertext, decoded strictly ([`EncryptionInfo::decode`]);
//! content-key (CEK) unwrapping per recipient ([`Recipient::unwrap_aes_kw`],
//! [`Recipient::unwrap_ecdh_es`]); and a streaming content decryptor
//! ([`ContentDecryptor`]) that never holds more than one AES block of state beyond the
//! caller's buffer.
//!
//! | what | COSE id | where |
//! |---|---|---|
//! | A128KW, A256KW recipients (RFC 3394 via `aes-kw`) | -3, -5 | [`Recipient::unwrap_aes_kw`] |
//! | ECDH-ES+A128KW recipients: P-256 ECDH, HKDF-SHA-256 over the COSE_KDF_Context, A128KW | -29 | [`Recipient::unwrap_ecdh_es`] (feature `p256`) |
//! | A128GCM, A256GCM content: AAD = `["Encrypt", protected, h'']`, 16-byte tag at the end of the ciphertext | 1, 3 | [`ContentDecryptor`] |
//! | A128CTR, A256CTR content (RFC 9459): protected header empty, IV = initial counter block | -65534, -65532 | [`ContentDecryptor`] |
//!
//! Every cryptographic failure (a key-unwrap integrity check, an unusable ephemeral
//! key, a GCM tag) is the one opaque [`CoseError::DecryptionFailed`].
//!
//! AES-CTR authenticates nothing: a changed ciphertext decrypts to a changed plaintext
//! without any error here. SUIT makes up for it with the image digest of the
//! (authenticated) manifest, which covers the plaintext; GCM's tag is a second check,
//! not the only one.

mod content;
mod decode;
#[cfg(feature = "p256")]
mod kdf;

use core::fmt;

use aes_kw::{KeyInit as _, KwAes128, KwAes256};
use zeroize::Zeroize as _;

use crate::CoseError;

pub use content::ContentDecryptor;
#[cfg(feature = "p256")]
pub use kdf::write_kdf_context;

/// Length of the AES-GCM authentication tag appended to the ciphertext.
pub const GCM_TAG_LEN: usize = 16;

/// The content-encryption algorithm of a COSE_Encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentAlgorithm {
    /// AES-GCM with a 128-bit key, 12-byte IV, 16-byte tag (COSE 1).
    A128Gcm,
    /// AES-GCM with a 256-bit key (COSE 3).
    A256Gcm,
    /// AES-CTR with a 128-bit key and a 16-byte initial counter block (COSE -65534,
    /// RFC 9459).
    A128Ctr,
    /// AES-CTR with a 256-bit key (COSE -65532).
    A256Ctr,
}

impl ContentAlgorithm {
    /// From a COSE algorithm id; `None` for anything this crate does not decrypt.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            1 => Some(Self::A128Gcm),
            3 => Some(Self::A256Gcm),
            -65534 => Some(Self::A128Ctr),
            -65532 => Some(Self::A256Ctr),
            _ => None,
        }
    }

    /// The COSE algorithm id.
    pub fn cose_id(self) -> i64 {
        match self {
            Self::A128Gcm => 1,
            Self::A256Gcm => 3,
            Self::A128Ctr => -65534,
            Self::A256Ctr => -65532,
        }
    }

    /// Content-key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A128Ctr => 16,
            Self::A256Gcm | Self::A256Ctr => 32,
        }
    }

    /// Length of the `IV` header: 12 for GCM (96-bit nonce), 16 for CTR (the whole
    /// initial counter block).
    pub fn iv_len(self) -> usize {
        if self.is_aead() { 12 } else { 16 }
    }

    /// Whether the ciphertext carries an authentication tag (GCM).
    pub fn is_aead(self) -> bool {
        matches!(self, Self::A128Gcm | Self::A256Gcm)
    }
}

/// How a recipient protects the content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// AES key wrap with a 128-bit pre-shared KEK (COSE -3).
    A128Kw,
    /// AES key wrap with a 256-bit pre-shared KEK (COSE -5).
    A256Kw,
    /// Ephemeral-static ECDH on P-256, HKDF-SHA-256, then A128KW (COSE -29).
    EcdhEsA128Kw,
}

impl KeyAlgorithm {
    /// From a COSE algorithm id; `None` for anything this crate does not unwrap.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            -3 => Some(Self::A128Kw),
            -5 => Some(Self::A256Kw),
            -29 => Some(Self::EcdhEsA128Kw),
            _ => None,
        }
    }

    /// The COSE algorithm id.
    pub fn cose_id(self) -> i64 {
        match self {
            Self::A128Kw => -3,
            Self::A256Kw => -5,
            Self::EcdhEsA128Kw => -29,
        }
    }
}

/// The y coordinate of an EC2 COSE_Key: the full coordinate, or only its sign bit
/// (point compression, RFC 9053 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinate<'a> {
    /// 32 bytes, big-endian.
    Bytes(&'a [u8]),
    /// The sign bit of y.
    Sign(bool),
}

/// The sender's ephemeral P-256 public key of an ECDH-ES recipient (header -1, a
/// COSE_Key with kty EC2 (2) and crv P-256 (1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphemeralKey<'a> {
    /// x, 32 bytes, big-endian.
    pub x: &'a [u8],
    /// y, or its sign.
    pub y: Coordinate<'a>,
}

/// One COSE_recipient of a SUIT_Encryption_Info, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient<'a> {
    /// The key-distribution algorithm.
    pub alg: KeyAlgorithm,
    /// Contents of the recipient's protected bstr, verbatim (the KDF context covers it).
    pub protected: &'a [u8],
    /// Key identifier (label 4), if any: which KEK or device key the sender used.
    pub kid: Option<&'a [u8]>,
    /// The ephemeral key (ECDH-ES only).
    pub ephemeral: Option<EphemeralKey<'a>>,
    /// HKDF salt (label -20), if any (ECDH-ES only).
    pub salt: Option<&'a [u8]>,
    /// The wrapped content key: 8 bytes longer than the content key (RFC 3394).
    pub encrypted_key: &'a [u8],
}

/// A SUIT_Encryption_Info, decoded and validated (every recipient included), borrowing
/// from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncryptionInfo<'a> {
    /// Contents of the protected bstr, verbatim (the GCM AAD covers it).
    pub protected: &'a [u8],
    /// The content algorithm.
    pub alg: ContentAlgorithm,
    /// The IV: 12 bytes (GCM) or 16 (CTR).
    pub iv: &'a [u8],
    /// The whole encoded SUIT_Encryption_Info.
    bytes: &'a [u8],
    /// Offset of the first recipient in `bytes`.
    first_recipient: usize,
    /// How many recipients.
    recipients: u64,
}

impl fmt::Debug for EncryptionInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionInfo")
            .field("protected", &self.protected)
            .field("alg", &self.alg)
            .field("iv", &self.iv)
            .field("recipients", &self.recipients)
            .finish()
    }
}

impl<'a> EncryptionInfo<'a> {
    /// Decodes a SUIT_Encryption_Info (the bytes inside the encryption-info parameter's
    /// bstr), strictly; see the crate README for every rule.
    ///
    /// # Errors
    /// A [`CoseError`] naming the first problem, with its byte offset where there is one.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CoseError> {
        decode::encryption_info(bytes)
    }

    /// How many recipients there are (at least one).
    pub fn recipient_count(&self) -> u64 {
        self.recipients
    }

    /// The recipients, in order. They were all validated by [`decode`](Self::decode).
    pub fn recipients(&self) -> Recipients<'a> {
        Recipients {
            bytes: self.bytes,
            at: self.first_recipient,
            left: self.recipients,
            key_len: self.alg.key_len(),
        }
    }
}

/// Iterator over the recipients of an [`EncryptionInfo`].
#[derive(Debug, Clone)]
pub struct Recipients<'a> {
    bytes: &'a [u8],
    at: usize,
    left: u64,
    key_len: usize,
}

impl<'a> Iterator for Recipients<'a> {
    type Item = Recipient<'a>;

    fn next(&mut self) -> Option<Recipient<'a>> {
        self.left = self.left.checked_sub(1)?;
        let mut d = minicbor::Decoder::new(self.bytes);
        d.set_position(self.at);
        // Validated during decode, so this cannot fail; if it somehow did, the
        // iteration ends rather than panicking.
        match decode::recipient(&mut d, self.key_len) {
            Ok(r) => {
                self.at = d.position();
                Some(r)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
}

/// A content-encryption key (16 or 32 bytes), wiped when dropped.
pub struct Cek {
    bytes: [u8; 32],
    len: usize,
}

impl Cek {
    /// A CEK from raw bytes (16 or 32), for callers that obtained it some other way.
    ///
    /// # Errors
    /// [`CoseError::InvalidKey`] for any other length.
    pub fn from_slice(key: &[u8]) -> Result<Self, CoseError> {
        let mut bytes = [0u8; 32];
        bytes
            .get_mut(..key.len())
            .filter(|_| key.len() == 16 || key.len() == 32)
            .ok_or(CoseError::InvalidKey)?
            .copy_from_slice(key);
        Ok(Cek {
            bytes,
            len: key.len(),
        })
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Cek {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// Never prints the key.
impl fmt::Debug for Cek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cek(<{} secret bytes>)", self.len)
    }
}

/// RFC 3394 unwrap of `wrapped` with `kek` (16 or 32 bytes) into a CEK of `cek_len`.
fn aes_kw_unwrap(kek: &[u8], wrapped: &[u8], cek_len: usize) -> Result<Cek, CoseError> {
    let mut out = Cek {
        bytes: [0u8; 32],
        len: cek_len,
    };
    if wrapped.len() != cek_len.saturating_add(aes_kw::IV_LEN) {
        return Err(CoseError::DecryptionFailed);
    }
    let buf = out
        .bytes
        .get_mut(..cek_len)
        .ok_or(CoseError::DecryptionFailed)?;
    let unwrapped = match kek.len() {
        16 => KwAes128::new_from_slice(kek)
            .map_err(|_| CoseError::InvalidKey)?
            .unwrap_key(wrapped, buf),
        32 => KwAes256::new_from_slice(kek)
            .map_err(|_| CoseError::InvalidKey)?
            .unwrap_key(wrapped, buf),
        _ => return Err(CoseError::InvalidKey),
    };
    match unwrapped {
        Ok(k) if k.len() == cek_len => Ok(out),
        _ => Err(CoseError::DecryptionFailed),
    }
}

impl Recipient<'_> {
    /// Unwraps the content key of an A128KW / A256KW recipient with the pre-shared `kek`
    /// (16 or 32 bytes, matching the recipient's algorithm); `content` is the
    /// [`EncryptionInfo::alg`] it will decrypt.
    ///
    /// # Errors
    /// [`CoseError::AlgorithmMismatch`] for an ECDH-ES recipient or a KEK of the wrong
    /// length for the recipient's algorithm; [`CoseError::DecryptionFailed`] when the
    /// unwrap integrity check fails (wrong KEK, changed wrapped key).
    pub fn unwrap_aes_kw(&self, kek: &[u8], content: ContentAlgorithm) -> Result<Cek, CoseError> {
        let want = match self.alg {
            KeyAlgorithm::A128Kw => 16,
            KeyAlgorithm::A256Kw => 32,
            KeyAlgorithm::EcdhEsA128Kw => return Err(CoseError::AlgorithmMismatch),
        };
        if kek.len() != want {
            return Err(CoseError::AlgorithmMismatch);
        }
        aes_kw_unwrap(kek, self.encrypted_key, content.key_len())
    }

    /// Unwraps the content key of an ECDH-ES+A128KW recipient with the device's P-256
    /// private key (`private_key`: the 32-byte big-endian scalar): ECDH with the
    /// ephemeral key, HKDF-SHA-256 (salt: the recipient's salt header, else none) over
    /// the COSE_KDF_Context of [`write_kdf_context`], then A128KW.
    ///
    /// # Errors
    /// [`CoseError::AlgorithmMismatch`] for an AES-KW recipient; [`CoseError::InvalidKey`]
    /// for a private key that is not a valid P-256 scalar;
    /// [`CoseError::DecryptionFailed`] for an ephemeral key off the curve or a failed
    /// unwrap (wrong device key, changed wrapped key).
    #[cfg(feature = "p256")]
    pub fn unwrap_ecdh_es(
        &self,
        private_key: &[u8],
        content: ContentAlgorithm,
    ) -> Result<Cek, CoseError> {
        if self.alg != KeyAlgorithm::EcdhEsA128Kw {
            return Err(CoseError::AlgorithmMismatch);
        }
        let mut kek = kdf::derive_kek(self, private_key)?;
        let cek = aes_kw_unwrap(&kek, self.encrypted_key, content.key_len());
        kek.zeroize();
        cek
    }
}
