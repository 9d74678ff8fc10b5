//! ECDH-ES+A128KW key derivation (RFC 9053 §6.3.1, §5.2; SUIT firmware encryption's
//! fixed COSE_KDF_Context).
//!
//! ```text
//! KEK = HKDF-SHA-256(salt = the recipient's salt header or none,
//!                    IKM  = x coordinate of d_device · P_ephemeral,
//!                    info = COSE_KDF_Context, L = 16)
//! COSE_KDF_Context = [AlgorithmID: -3 (A128KW),
//!                     PartyUInfo: [nil, nil, nil], PartyVInfo: [nil, nil, nil],
//!                     SuppPubInfo: [keyDataLength: 128, protected: the recipient's
//!                                   protected bstr, other: 'SUIT Payload Encryption']]
//! ```

use hkdf::Hkdf;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use super::{Coordinate, KeyAlgorithm, Recipient};
use crate::CoseError;
use crate::tbs::write_head;

/// CBOR major type 2 (byte string).
const MAJOR_BYTES: u8 = 2;
/// `SuppPubInfo.other` of every SUIT payload-encryption KDF context (a bstr).
const SUIT_OTHER: &[u8] = b"SUIT Payload Encryption";
/// Its head: bstr(23).
const SUIT_OTHER_HEAD: [u8; 1] = [0x40 | 23];
const _: () = assert!(SUIT_OTHER.len() == 23);
/// Length of the derived KEK (A128KW).
const KEK_LEN: usize = 16;

/// Everything in front of the recipient's protected bstr.
const PREFIX: [u8; 13] = [
    0x84, // array(4)
    0x22, // AlgorithmID: -3, A128KW (the key-wrap algorithm the KEK is for)
    0x83, 0xf6, 0xf6, 0xf6, // PartyUInfo: [nil, nil, nil]
    0x83, 0xf6, 0xf6, 0xf6, // PartyVInfo: [nil, nil, nil]
    0x83, // SuppPubInfo: array(3)
    0x18, 0x80, // keyDataLength: 128
];

/// The shortest CBOR head of a bstr of `len` bytes (at most 9 bytes).
struct Head {
    buf: [u8; 9],
    len: usize,
}

impl Head {
    fn bstr(len: usize) -> Self {
        let mut h = Head {
            buf: [0; 9],
            len: 0,
        };
        write_head(MAJOR_BYTES, len as u64, &mut |b: &[u8]| {
            if let Some(dst) = h.buf.get_mut(..b.len()) {
                dst.copy_from_slice(b);
                h.len = b.len();
            }
        });
        h
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The context in pieces: HKDF takes its info that way, so no buffer bounds the
/// recipient's protected header.
fn pieces<'a>(protected: &'a [u8], head: &'a Head) -> [&'a [u8]; 5] {
    [
        &PREFIX,
        head.bytes(),
        protected,
        &SUIT_OTHER_HEAD,
        SUIT_OTHER,
    ]
}

/// Feeds the CBOR encoding of the COSE_KDF_Context for a recipient of `alg` with
/// protected header `recipient_protected` (the bstr's content) into `sink`.
///
/// Only [`KeyAlgorithm::EcdhEsA128Kw`] derives a key; for the others nothing is written.
pub fn write_kdf_context(
    alg: KeyAlgorithm,
    recipient_protected: &[u8],
    sink: &mut impl FnMut(&[u8]),
) {
    if alg != KeyAlgorithm::EcdhEsA128Kw {
        return;
    }
    let head = Head::bstr(recipient_protected.len());
    for piece in pieces(recipient_protected, &head) {
        sink(piece);
    }
}

/// The KEK of an ECDH-ES+A128KW recipient for the device key `private_key`.
pub(super) fn derive_kek(
    r: &Recipient<'_>,
    private_key: &[u8],
) -> Result<[u8; KEK_LEN], CoseError> {
    let secret = SecretKey::from_slice(private_key).map_err(|_| CoseError::InvalidKey)?;
    let eph = r.ephemeral.ok_or(CoseError::MissingEphemeralKey)?;
    // SEC1: 04 ‖ x ‖ y, or 02/03 ‖ x for a compressed point.
    let mut sec1 = [0u8; 65];
    let (tag, rest) = sec1.split_at_mut(1);
    let (x, y) = rest.split_at_mut(32);
    x.copy_from_slice(eph.x);
    let used = match eph.y {
        Coordinate::Bytes(b) => {
            tag.copy_from_slice(&[0x04]);
            y.copy_from_slice(b);
            65
        }
        Coordinate::Sign(odd) => {
            tag.copy_from_slice(&[if odd { 0x03 } else { 0x02 }]);
            33
        }
    };
    let point = sec1.get(..used).ok_or(CoseError::DecryptionFailed)?;
    let public = PublicKey::from_sec1_bytes(point).map_err(|_| CoseError::DecryptionFailed)?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    let hk = Hkdf::<Sha256>::new(r.salt, shared.raw_secret_bytes().as_slice());
    let head = Head::bstr(r.protected.len());
    let mut kek = [0u8; KEK_LEN];
    hk.expand_multi_info(&pieces(r.protected, &head), &mut kek)
        .map_err(|_| CoseError::DecryptionFailed)?;
    Ok(kek)
}
