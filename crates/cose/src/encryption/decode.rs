//! Strict, zero-copy decoding of SUIT_Encryption_Info and its recipients.
//!
//! ```cddl
//! SUIT_Encryption_Info = #6.96([
//!     protected:   bstr .cbor header_map / bstr .size 0,
//!     unprotected: header_map,
//!     ciphertext:  nil,                 ; detached: the payload travels apart
//!     recipients:  [+ COSE_recipient],
//! ])
//! COSE_recipient = [protected, unprotected, ciphertext: bstr]   ; no nested recipients
//! ```

use minicbor::Decoder;
use minicbor::data::Type;

use super::{ContentAlgorithm, Coordinate, EncryptionInfo, EphemeralKey, KeyAlgorithm, Recipient};
use crate::CoseError;
use crate::decode::{
    Label, LabelSet, MAX_SKIP_DEPTH, array_len, bstr, cbor_err, map_len, peek, skip,
};

/// COSE tag of COSE_Encrypt.
const TAG_ENCRYPT: u64 = 96;
/// COSE tag of COSE_Encrypt0: legal COSE, but SUIT_Encryption_Info always names its
/// recipients.
const TAG_ENCRYPT0: u64 = 16;

/// Common header labels (RFC 9052 §3.1).
const LABEL_ALG: i128 = 1;
const LABEL_CRIT: i128 = 2;
const LABEL_KID: i128 = 4;
const LABEL_IV: i128 = 5;
const LABEL_PARTIAL_IV: i128 = 6;
/// ECDH header labels (RFC 9053 §6.4.1): ephemeral key, salt, and the party
/// identities / nonces / other info (-21 ..= -26) that would enter the KDF context.
const LABEL_EPHEMERAL_KEY: i128 = -1;
const LABEL_SALT: i128 = -20;
const PARTY_INFO: core::ops::RangeInclusive<i128> = -26..=-21;

/// COSE_Key labels and values for an EC2 P-256 key (RFC 9053 §7.1).
const KEY_KTY: i128 = 1;
const KEY_CRV: i128 = -1;
const KEY_X: i128 = -2;
const KEY_Y: i128 = -3;
const KTY_EC2: i64 = 2;
const CRV_P256: i64 = 1;
/// Length of a P-256 coordinate.
const COORD_LEN: usize = 32;

/// Reads a header label (`int / tstr`).
fn label<'a>(d: &mut Decoder<'a>) -> Result<Label<'a>, CoseError> {
    let at = d.position();
    Ok(match peek(d, 0)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            Label::Int(i128::from(d.u64().map_err(cbor_err(0, at))?))
        }
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            Label::Int(i128::from(d.int().map_err(cbor_err(0, at))?))
        }
        Type::String => Label::Text(d.str().map_err(cbor_err(0, at))?),
        Type::StringIndef => return Err(CoseError::IndefiniteLength { offset: at }),
        _ => return Err(CoseError::InvalidHeader { offset: at }),
    })
}

/// Reads an integer that fits an `i64` (an algorithm id, a key type).
fn small_int(d: &mut Decoder<'_>) -> Result<i64, CoseError> {
    let at = d.position();
    match peek(d, 0)? {
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64 => d.i64().map_err(|_| CoseError::InvalidHeader { offset: at }),
        _ => Err(CoseError::InvalidHeader { offset: at }),
    }
}

/// Reads a bstr header value (kid, IV, salt), refusing other types.
fn bstr_value<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], CoseError> {
    let at = d.position();
    match peek(d, 0)? {
        Type::Bytes => bstr(d, 0),
        Type::BytesIndef => Err(CoseError::IndefiniteLength { offset: at }),
        _ => Err(CoseError::InvalidHeader { offset: at }),
    }
}

/// Walks one header map: notes each label (duplicates, `crit`), hands it to `known`,
/// which returns `true` when it consumed the value; anything else is skipped.
fn walk<'a>(
    d: &mut Decoder<'a>,
    seen: &mut LabelSet<'a>,
    mut known: impl FnMut(&mut Decoder<'a>, Label<'a>, usize) -> Result<bool, CoseError>,
) -> Result<(), CoseError> {
    let entries = map_len(d, 0)?;
    for _ in 0..entries {
        let at = d.position();
        let l = label(d)?;
        seen.note(l, at)?;
        if l == Label::Int(LABEL_CRIT) {
            // We understand no optional header, so a critical one must be refused.
            return Err(CoseError::CriticalHeader { offset: at });
        }
        if !known(d, l, at)? {
            skip(d, 0, MAX_SKIP_DEPTH)?;
        }
    }
    Ok(())
}

/// Walks the map inside a protected bstr: its offsets are made absolute by decoding
/// the whole input from the map's position, and it must fill the bstr exactly.
fn walk_protected<'a>(
    input: &'a [u8],
    protected: &'a [u8],
    at: usize,
    seen: &mut LabelSet<'a>,
    known: impl FnMut(&mut Decoder<'a>, Label<'a>, usize) -> Result<bool, CoseError>,
) -> Result<(), CoseError> {
    if protected.is_empty() {
        return Ok(());
    }
    let end = at.saturating_add(protected.len());
    let inner = input
        .get(..end)
        .ok_or(CoseError::Truncated { offset: at })?;
    let mut d = Decoder::new(inner);
    d.set_position(at);
    walk(&mut d, seen, known)?;
    if d.position() != end {
        return Err(CoseError::TrailingBytes {
            offset: d.position(),
        });
    }
    Ok(())
}

/// Reads a protected bstr and returns it with the offset of its content.
fn protected_bstr<'a>(d: &mut Decoder<'a>) -> Result<(&'a [u8], usize, usize), CoseError> {
    let head_at = d.position();
    let p = bstr(d, 0)?;
    Ok((p, head_at, d.position().saturating_sub(p.len())))
}

/// The body's headers that matter.
#[derive(Default)]
struct BodyHeaders<'a> {
    alg: Option<i64>,
    iv: Option<(&'a [u8], usize)>,
}

fn body_header<'a>(
    h: &mut BodyHeaders<'a>,
    d: &mut Decoder<'a>,
    l: Label<'a>,
    at: usize,
) -> Result<bool, CoseError> {
    match l {
        Label::Int(LABEL_ALG) => h.alg = Some(small_int(d)?),
        Label::Int(LABEL_IV) => {
            let v = d.position();
            h.iv = Some((bstr_value(d)?, v));
        }
        Label::Int(LABEL_KID) => {
            bstr_value(d)?;
        }
        Label::Int(LABEL_PARTIAL_IV) => return Err(CoseError::UnsupportedHeader { offset: at }),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Decodes a SUIT_Encryption_Info; see [`EncryptionInfo::decode`].
pub(super) fn encryption_info(bytes: &[u8]) -> Result<EncryptionInfo<'_>, CoseError> {
    let mut d = Decoder::new(bytes);
    if peek(&d, 0)? != Type::Tag {
        return Err(CoseError::Untagged);
    }
    match d.tag().map_err(cbor_err(0, 0))?.as_u64() {
        TAG_ENCRYPT => {}
        TAG_ENCRYPT0 => return Err(CoseError::UnsupportedMessage(TAG_ENCRYPT0)),
        other => return Err(CoseError::UnknownTag(other)),
    }
    let array_at = d.position();
    if array_len(&mut d, 0)? != 4 {
        return Err(CoseError::WrongArrayLength { offset: array_at });
    }

    let mut seen = LabelSet::default();
    let mut h = BodyHeaders::default();
    let (protected, protected_head, protected_at) = protected_bstr(&mut d)?;
    walk_protected(bytes, protected, protected_at, &mut seen, |d, l, at| {
        body_header(&mut h, d, l, at)
    })?;
    walk(&mut d, &mut seen, |d, l, at| body_header(&mut h, d, l, at))?;

    let ct_at = d.position();
    match peek(&d, 0)? {
        Type::Null => d.null().map_err(cbor_err(0, ct_at))?,
        Type::Bytes | Type::BytesIndef => return Err(CoseError::AttachedCiphertext),
        _ => return Err(CoseError::Malformed { offset: ct_at }),
    }

    let id = h.alg.ok_or(CoseError::MissingAlgorithm)?;
    let alg = ContentAlgorithm::from_cose(id).ok_or(CoseError::UnsupportedAlgorithm(id))?;
    // RFC 9459: AES-CTR is not an AEAD, so there is nothing a protected header could be
    // bound to; it must be empty.
    if !alg.is_aead() && !protected.is_empty() {
        return Err(CoseError::NonEmptyProtected {
            offset: protected_head,
        });
    }
    let (iv, iv_at) = h.iv.ok_or(CoseError::MissingIv)?;
    if iv.len() != alg.iv_len() {
        return Err(CoseError::InvalidHeader { offset: iv_at });
    }

    let recipients = array_len(&mut d, 0)?;
    if recipients == 0 {
        return Err(CoseError::NoRecipients);
    }
    let first_recipient = d.position();
    for _ in 0..recipients {
        recipient(&mut d, alg.key_len())?;
    }
    if d.position() != bytes.len() {
        return Err(CoseError::TrailingBytes {
            offset: d.position(),
        });
    }
    Ok(EncryptionInfo {
        protected,
        alg,
        iv,
        bytes,
        first_recipient,
        recipients,
    })
}

/// The recipient's headers that matter.
#[derive(Default)]
struct RecipientHeaders<'a> {
    alg: Option<i64>,
    kid: Option<&'a [u8]>,
    ephemeral: Option<EphemeralKey<'a>>,
    salt: Option<&'a [u8]>,
}

fn recipient_header<'a>(
    h: &mut RecipientHeaders<'a>,
    d: &mut Decoder<'a>,
    l: Label<'a>,
    at: usize,
) -> Result<bool, CoseError> {
    match l {
        Label::Int(LABEL_ALG) => h.alg = Some(small_int(d)?),
        Label::Int(LABEL_KID) => h.kid = Some(bstr_value(d)?),
        Label::Int(LABEL_EPHEMERAL_KEY) => h.ephemeral = Some(ec2_key(d)?),
        Label::Int(LABEL_SALT) => h.salt = Some(bstr_value(d)?),
        Label::Int(LABEL_IV | LABEL_PARTIAL_IV) => {
            return Err(CoseError::UnsupportedHeader { offset: at });
        }
        // The SUIT KDF context fixes every party field to nil (suit-codes §9): a
        // recipient that sets one would derive a KEK we cannot reproduce.
        Label::Int(n) if PARTY_INFO.contains(&n) => {
            return Err(CoseError::UnsupportedHeader { offset: at });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Decodes one COSE_recipient at `d`'s position; `key_len` is the content key length,
/// which fixes the wrapped key's length.
pub(super) fn recipient<'a>(
    d: &mut Decoder<'a>,
    key_len: usize,
) -> Result<Recipient<'a>, CoseError> {
    let input = d.input();
    let at = d.position();
    if array_len(d, 0)? != 3 {
        // Four elements would be nested recipients, which no SUIT profile uses.
        return Err(CoseError::WrongArrayLength { offset: at });
    }
    let mut seen = LabelSet::default();
    let mut h = RecipientHeaders::default();
    let (protected, protected_head, protected_at) = protected_bstr(d)?;
    walk_protected(input, protected, protected_at, &mut seen, |d, l, at| {
        recipient_header(&mut h, d, l, at)
    })?;
    walk(d, &mut seen, |d, l, at| recipient_header(&mut h, d, l, at))?;
    let ct_at = d.position();
    let encrypted_key = match peek(d, 0)? {
        Type::Bytes => bstr(d, 0)?,
        Type::BytesIndef => return Err(CoseError::IndefiniteLength { offset: ct_at }),
        _ => return Err(CoseError::Malformed { offset: ct_at }),
    };

    let id = h.alg.ok_or(CoseError::MissingAlgorithm)?;
    let alg = KeyAlgorithm::from_cose(id).ok_or(CoseError::UnsupportedAlgorithm(id))?;
    match alg {
        // RFC 9053 §6.2.1: a key-wrap recipient has nothing to protect.
        KeyAlgorithm::A128Kw | KeyAlgorithm::A256Kw => {
            if !protected.is_empty() {
                return Err(CoseError::NonEmptyProtected {
                    offset: protected_head,
                });
            }
            if h.ephemeral.is_some() || h.salt.is_some() {
                return Err(CoseError::InvalidHeader { offset: at });
            }
        }
        KeyAlgorithm::EcdhEsA128Kw => {
            if h.ephemeral.is_none() {
                return Err(CoseError::MissingEphemeralKey);
            }
        }
    }
    if encrypted_key.len() != key_len.saturating_add(aes_kw::IV_LEN) {
        return Err(CoseError::Malformed { offset: ct_at });
    }
    Ok(Recipient {
        alg,
        protected,
        kid: h.kid,
        ephemeral: h.ephemeral,
        salt: h.salt,
        encrypted_key,
    })
}

/// Decodes an EC2 P-256 COSE_Key `{1: 2, -1: 1, -2: x, -3: y / bool}`; other labels
/// (kid, alg, key_ops) are skipped, repeats refused.
fn ec2_key<'a>(d: &mut Decoder<'a>) -> Result<EphemeralKey<'a>, CoseError> {
    let map_at = d.position();
    let mut seen = LabelSet::default();
    let (mut kty, mut crv, mut x, mut y) = (None, None, None, None);
    let entries = map_len(d, 0)?;
    for _ in 0..entries {
        let at = d.position();
        let l = label(d)?;
        seen.note(l, at)?;
        let v = d.position();
        match l {
            Label::Int(KEY_KTY) => kty = Some(small_int(d)?),
            Label::Int(KEY_CRV) => crv = Some(small_int(d)?),
            Label::Int(KEY_X) => {
                let b = bstr_value(d)?;
                if b.len() != COORD_LEN {
                    return Err(CoseError::InvalidHeader { offset: v });
                }
                x = Some(b);
            }
            Label::Int(KEY_Y) => {
                y = Some(match peek(d, 0)? {
                    Type::Bool => Coordinate::Sign(d.bool().map_err(cbor_err(0, v))?),
                    _ => {
                        let b = bstr_value(d)?;
                        if b.len() != COORD_LEN {
                            return Err(CoseError::InvalidHeader { offset: v });
                        }
                        Coordinate::Bytes(b)
                    }
                });
            }
            _ => skip(d, 0, MAX_SKIP_DEPTH)?,
        }
    }
    match (kty, crv, x, y) {
        (Some(KTY_EC2), Some(CRV_P256), Some(x), Some(y)) => Ok(EphemeralKey { x, y }),
        _ => Err(CoseError::InvalidHeader { offset: map_at }),
    }
}
