//! Strict, zero-copy decoding of COSE_Sign1 (tag 18) and COSE_Mac0 (tag 17).

use minicbor::Decoder;
use minicbor::data::Type;

use crate::{Algorithm, CoseError};

/// Header labels (protected and unprotected together) that one message may carry.
///
/// Duplicate detection without allocation needs a fixed table; SUIT messages carry one
/// or two headers (`alg`, maybe `kid`), so 16 is generous while keeping the table small.
pub const MAX_HEADER_LABELS: usize = 16;

/// How many containers (arrays, maps, tags) an unknown header value may nest.
///
/// Unknown values are skipped recursively; the limit bounds the recursion, so hostile
/// input cannot exhaust a bootloader's stack.
pub const MAX_SKIP_DEPTH: usize = 8;

/// COSE tag of COSE_Sign1 (RFC 9052 §2).
const TAG_SIGN1: u64 = 18;
/// COSE tag of COSE_Mac0.
const TAG_MAC0: u64 = 17;
/// COSE tag of COSE_Sign (multi-signer).
const TAG_SIGN: u64 = 98;
/// COSE tag of COSE_Mac (with recipients).
const TAG_MAC: u64 = 97;

/// Header label `alg`.
const LABEL_ALG: i128 = 1;
/// Header label `crit`.
const LABEL_CRIT: i128 = 2;
/// Header label `kid`.
const LABEL_KID: i128 = 4;

/// Which single-signer COSE structure a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoseKind {
    /// COSE_Sign1 (tag 18): one signature.
    Sign1,
    /// COSE_Mac0 (tag 17): one MAC with an implicit key.
    Mac0,
}

/// A parsed COSE_Sign1 (tag 18) or COSE_Mac0 (tag 17), borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoseMessage<'a> {
    /// Sign1 or Mac0, from the CBOR tag.
    pub kind: CoseKind,
    /// Contents of the protected bstr (the serialized header map, or empty). Kept
    /// verbatim because the signature covers these exact bytes.
    pub protected: &'a [u8],
    /// The algorithm from the protected `alg` header.
    pub alg: Algorithm,
    /// Key identifier (label 4) from either header bucket, if present.
    pub kid: Option<&'a [u8]>,
    /// The attached payload; `None` when it is `nil` (detached, as SUIT uses it).
    pub payload: Option<&'a [u8]>,
    /// The signature (Sign1) or MAC tag (Mac0).
    pub tag: &'a [u8],
}

impl<'a> CoseMessage<'a> {
    /// Decode a tagged COSE_Sign1 or COSE_Mac0, strictly.
    ///
    /// Refused: untagged input, other tags (COSE_Sign / COSE_Mac get
    /// [`CoseError::UnsupportedMessage`]), arrays that are not exactly 4 long,
    /// indefinite lengths anywhere we look, `alg` missing from the protected header or
    /// present in the unprotected one, duplicate labels (also across buckets), `crit`,
    /// unknown header values nesting deeper than [`MAX_SKIP_DEPTH`], and trailing bytes.
    ///
    /// # Errors
    /// A [`CoseError`] naming the first problem, with its byte offset where there is one.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CoseError> {
        let mut d = Decoder::new(bytes);

        if peek(&d, 0)? != Type::Tag {
            return Err(CoseError::Untagged);
        }
        let tag = d.tag().map_err(cbor_err(0, 0))?.as_u64();
        let kind = match tag {
            TAG_SIGN1 => CoseKind::Sign1,
            TAG_MAC0 => CoseKind::Mac0,
            TAG_SIGN | TAG_MAC => return Err(CoseError::UnsupportedMessage(tag)),
            other => return Err(CoseError::UnknownTag(other)),
        };

        let array_at = d.position();
        if array_len(&mut d, 0)? != 4 {
            return Err(CoseError::WrongArrayLength { offset: array_at });
        }

        let mut headers = Headers::default();

        let protected = bstr(&mut d, 0)?;
        let protected_at = d.position().saturating_sub(protected.len());
        if !protected.is_empty() {
            let mut pd = Decoder::new(protected);
            parse_header_map(&mut pd, protected_at, Bucket::Protected, &mut headers)?;
            if pd.position() != protected.len() {
                return Err(CoseError::TrailingBytes {
                    offset: protected_at.saturating_add(pd.position()),
                });
            }
        }

        parse_header_map(&mut d, 0, Bucket::Unprotected, &mut headers)?;

        let payload = if peek(&d, 0)? == Type::Null {
            d.null().map_err(cbor_err(0, d.position()))?;
            None
        } else {
            Some(bstr(&mut d, 0)?)
        };

        let tag = bstr(&mut d, 0)?;

        if d.position() != bytes.len() {
            return Err(CoseError::TrailingBytes {
                offset: d.position(),
            });
        }

        let alg_id = headers.alg.ok_or(CoseError::MissingAlgorithm)?;
        let alg = Algorithm::from_cose(alg_id).ok_or(CoseError::UnsupportedAlgorithm(alg_id))?;

        Ok(Self {
            kind,
            protected,
            alg,
            kid: headers.kid,
            payload,
            tag,
        })
    }
}

/// Which header bucket is being parsed; `alg` is only legal in the protected one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Protected,
    Unprotected,
}

/// A header label: RFC 9052 allows `int / tstr`. Ints are kept as `i128` so that
/// every CBOR integer (-2^64 ..= 2^64-1) compares correctly for duplicates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label<'a> {
    Int(i128),
    Text(&'a str),
}

/// Every header label seen in one COSE layer (both buckets), for duplicate detection
/// without allocation. Shared by the Sign1/Mac0 decoder and the COSE_Encrypt decoder.
#[derive(Default)]
pub(crate) struct LabelSet<'a> {
    labels: [Option<Label<'a>>; MAX_HEADER_LABELS],
}

impl<'a> LabelSet<'a> {
    /// Record `label`, refusing a repeat or a label beyond the table.
    pub(crate) fn note(&mut self, label: Label<'a>, offset: usize) -> Result<(), CoseError> {
        if self.labels.iter().flatten().any(|l| *l == label) {
            return Err(CoseError::DuplicateHeader { offset });
        }
        let slot = self
            .labels
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(CoseError::TooManyHeaders { offset })?;
        *slot = Some(label);
        Ok(())
    }
}

/// What the header maps told us, plus every label seen so far (for duplicates).
#[derive(Default)]
struct Headers<'a> {
    alg: Option<i64>,
    kid: Option<&'a [u8]>,
    seen: LabelSet<'a>,
}

/// Parse one header map (definite length) from `d`, whose offsets are relative to `base`.
fn parse_header_map<'a>(
    d: &mut Decoder<'a>,
    base: usize,
    bucket: Bucket,
    headers: &mut Headers<'a>,
) -> Result<(), CoseError> {
    let entries = map_len(d, base)?;
    for _ in 0..entries {
        let label_at = base.saturating_add(d.position());
        let label = match peek(d, base)? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
                Label::Int(i128::from(d.u64().map_err(cbor_err(base, label_at))?))
            }
            Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
                Label::Int(i128::from(d.int().map_err(cbor_err(base, label_at))?))
            }
            Type::String => Label::Text(d.str().map_err(cbor_err(base, label_at))?),
            Type::StringIndef => return Err(CoseError::IndefiniteLength { offset: label_at }),
            _ => return Err(CoseError::InvalidHeader { offset: label_at }),
        };

        if bucket == Bucket::Unprotected && label == Label::Int(LABEL_ALG) {
            return Err(CoseError::UnprotectedAlgorithm { offset: label_at });
        }
        headers.seen.note(label, label_at)?;

        let value_at = base.saturating_add(d.position());
        match label {
            Label::Int(LABEL_ALG) => {
                // Text algorithm names exist in COSE but no SUIT profile uses them.
                let id = match peek(d, base)? {
                    Type::U8
                    | Type::U16
                    | Type::U32
                    | Type::U64
                    | Type::I8
                    | Type::I16
                    | Type::I32
                    | Type::I64 => d
                        .i64()
                        .map_err(|_| CoseError::InvalidHeader { offset: value_at })?,
                    _ => return Err(CoseError::InvalidHeader { offset: value_at }),
                };
                headers.alg = Some(id);
            }
            Label::Int(LABEL_CRIT) => return Err(CoseError::CriticalHeader { offset: label_at }),
            Label::Int(LABEL_KID) => match peek(d, base)? {
                Type::Bytes => headers.kid = Some(bstr(d, base)?),
                Type::BytesIndef => return Err(CoseError::IndefiniteLength { offset: value_at }),
                _ => return Err(CoseError::InvalidHeader { offset: value_at }),
            },
            _ => skip(d, base, MAX_SKIP_DEPTH)?,
        }
    }
    Ok(())
}

/// Skip one CBOR item, allowing at most `depth` further levels of containers.
///
/// Recursion is bounded by `depth`, so stack use is bounded; indefinite lengths are
/// refused rather than supported, which keeps this simple and alloc-free.
pub(crate) fn skip(d: &mut Decoder<'_>, base: usize, depth: usize) -> Result<(), CoseError> {
    let at = base.saturating_add(d.position());
    let err = cbor_err(base, at);
    match peek(d, base)? {
        Type::BytesIndef | Type::StringIndef | Type::ArrayIndef | Type::MapIndef => {
            Err(CoseError::IndefiniteLength { offset: at })
        }
        Type::Bytes => d.bytes().map(drop).map_err(err),
        Type::String => d.str().map(drop).map_err(err),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map(drop).map_err(err),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => d.int().map(drop).map_err(err),
        Type::Array => {
            let depth = depth
                .checked_sub(1)
                .ok_or(CoseError::NestingTooDeep { offset: at })?;
            let n = array_len(d, base)?;
            for _ in 0..n {
                skip(d, base, depth)?;
            }
            Ok(())
        }
        Type::Map => {
            let depth = depth
                .checked_sub(1)
                .ok_or(CoseError::NestingTooDeep { offset: at })?;
            let n = map_len(d, base)?;
            for _ in 0..n {
                skip(d, base, depth)?;
                skip(d, base, depth)?;
            }
            Ok(())
        }
        Type::Tag => {
            let depth = depth
                .checked_sub(1)
                .ok_or(CoseError::NestingTooDeep { offset: at })?;
            d.tag().map_err(err)?;
            skip(d, base, depth)
        }
        Type::Bool
        | Type::Null
        | Type::Undefined
        | Type::Simple
        | Type::F16
        | Type::F32
        | Type::F64 => skip_major7(d, base),
        Type::Break | Type::Unknown(_) => Err(CoseError::Malformed { offset: at }),
    }
}

/// Skip a major-type-7 item (simple value or float) by its head alone, so no float
/// decoding support (minicbor's `half` feature) is needed.
fn skip_major7(d: &mut Decoder<'_>, base: usize) -> Result<(), CoseError> {
    let pos = d.position();
    let at = base.saturating_add(pos);
    let initial = *d
        .input()
        .get(pos)
        .ok_or(CoseError::Truncated { offset: at })?;
    let extra = match initial & 0x1f {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return Err(CoseError::Malformed { offset: at }),
    };
    let end = pos.saturating_add(1).saturating_add(extra);
    if end > d.input().len() {
        return Err(CoseError::Truncated { offset: at });
    }
    d.set_position(end);
    Ok(())
}

/// Type of the next item; end of input becomes [`CoseError::Truncated`].
pub(crate) fn peek(d: &Decoder<'_>, base: usize) -> Result<Type, CoseError> {
    d.datatype()
        .map_err(cbor_err(base, base.saturating_add(d.position())))
}

/// Read a definite-length bstr, zero-copy.
pub(crate) fn bstr<'a>(d: &mut Decoder<'a>, base: usize) -> Result<&'a [u8], CoseError> {
    let at = base.saturating_add(d.position());
    match peek(d, base)? {
        Type::Bytes => d.bytes().map_err(cbor_err(base, at)),
        Type::BytesIndef => Err(CoseError::IndefiniteLength { offset: at }),
        _ => Err(CoseError::Malformed { offset: at }),
    }
}

/// Read a definite-length array head.
pub(crate) fn array_len(d: &mut Decoder<'_>, base: usize) -> Result<u64, CoseError> {
    let at = base.saturating_add(d.position());
    match peek(d, base)? {
        Type::Array => d
            .array()
            .map_err(cbor_err(base, at))?
            .ok_or(CoseError::IndefiniteLength { offset: at }),
        Type::ArrayIndef => Err(CoseError::IndefiniteLength { offset: at }),
        _ => Err(CoseError::Malformed { offset: at }),
    }
}

/// Read a definite-length map head.
pub(crate) fn map_len(d: &mut Decoder<'_>, base: usize) -> Result<u64, CoseError> {
    let at = base.saturating_add(d.position());
    match peek(d, base)? {
        Type::Map => d
            .map()
            .map_err(cbor_err(base, at))?
            .ok_or(CoseError::IndefiniteLength { offset: at }),
        Type::MapIndef => Err(CoseError::IndefiniteLength { offset: at }),
        _ => Err(CoseError::Malformed { offset: at }),
    }
}

/// Translate a minicbor error into ours, preferring minicbor's own position (which is
/// relative to the decoder's slice, hence `base`) and falling back to `at`.
pub(crate) fn cbor_err(base: usize, at: usize) -> impl Fn(minicbor::decode::Error) -> CoseError {
    move |e| {
        let offset = e.position().map_or(at, |p| base.saturating_add(p));
        if e.is_end_of_input() {
            CoseError::Truncated { offset }
        } else {
            CoseError::Malformed { offset }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Protected header `{1: -7}`.
    const PROT_ES256: [u8; 3] = [0xa1, 0x01, 0x26];

    /// Build `tag(array(4)[bstr(protected), unprotected..., payload..., bstr(sig)])`
    /// from raw pieces so malformed variants are easy to write.
    fn msg(tag: u8, protected: &[u8], unprotected: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = std::vec![tag, 0x84];
        v.push(0x40 | u8::try_from(protected.len()).unwrap());
        v.extend_from_slice(protected);
        v.extend_from_slice(unprotected);
        v.extend_from_slice(payload);
        v.push(0x44);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn decodes_minimal_sign1() {
        let bytes = msg(0xd2, &PROT_ES256, &[0xa1, 0x04, 0x42, 0xaa, 0xbb], &[0xf6]);
        let m = CoseMessage::decode(&bytes).unwrap();
        assert_eq!(m.kind, CoseKind::Sign1);
        assert_eq!(m.alg, Algorithm::Es256);
        assert_eq!(m.protected, &PROT_ES256);
        assert_eq!(m.kid, Some(&[0xaa, 0xbb][..]));
        assert_eq!(m.payload, None);
        assert_eq!(m.tag, &[1, 2, 3, 4]);
    }

    #[test]
    fn decodes_mac0_with_attached_payload_and_protected_kid() {
        let bytes = msg(
            0xd1,
            &[0xa2, 0x01, 0x05, 0x04, 0x41, 0x07],
            &[0xa0],
            &[0x43, 9, 9, 9],
        );
        let m = CoseMessage::decode(&bytes).unwrap();
        assert_eq!(m.kind, CoseKind::Mac0);
        assert_eq!(m.alg, Algorithm::Hmac256);
        assert_eq!(m.kid, Some(&[7][..]));
        assert_eq!(m.payload, Some(&[9, 9, 9][..]));
    }

    #[test]
    fn untagged() {
        let bytes = msg(0xd2, &PROT_ES256, &[0xa0], &[0xf6]);
        assert_eq!(CoseMessage::decode(&bytes[1..]), Err(CoseError::Untagged));
        assert_eq!(
            CoseMessage::decode(&[]),
            Err(CoseError::Truncated { offset: 0 })
        );
    }

    #[test]
    fn wrong_tag() {
        let bytes = msg(0xd0, &PROT_ES256, &[0xa0], &[0xf6]); // tag 16 = COSE_Encrypt0
        assert_eq!(CoseMessage::decode(&bytes), Err(CoseError::UnknownTag(16)));
    }

    #[test]
    fn cose_sign_and_cose_mac_are_unsupported() {
        let mut bytes = msg(0xd8, &PROT_ES256, &[0xa0], &[0xf6]);
        bytes.insert(1, 98);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::UnsupportedMessage(98))
        );
        bytes[1] = 97;
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::UnsupportedMessage(97))
        );
    }

    #[test]
    fn three_element_array() {
        let mut bytes = msg(0xd2, &PROT_ES256, &[0xa0], &[]);
        bytes[1] = 0x83;
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::WrongArrayLength { offset: 1 })
        );
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = msg(0xd2, &PROT_ES256, &[0xa0], &[0xf6]);
        let len = bytes.len();
        bytes.push(0x00);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::TrailingBytes { offset: len })
        );
    }

    #[test]
    fn trailing_bytes_inside_protected() {
        let bytes = msg(0xd2, &[0xa1, 0x01, 0x26, 0x00], &[0xa0], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::TrailingBytes { offset: 6 })
        );
    }

    #[test]
    fn alg_only_in_unprotected() {
        let bytes = msg(0xd2, &[], &[0xa1, 0x01, 0x26], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::UnprotectedAlgorithm { offset: 4 })
        );
    }

    #[test]
    fn alg_missing() {
        let bytes = msg(0xd2, &[0xa1, 0x04, 0x40], &[0xa0], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::MissingAlgorithm)
        );
        let bytes = msg(0xd2, &[], &[0xa0], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::MissingAlgorithm)
        );
    }

    #[test]
    fn duplicate_label_in_one_map() {
        let bytes = msg(0xd2, &[0xa2, 0x01, 0x26, 0x01, 0x26], &[0xa0], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::DuplicateHeader { offset: 6 })
        );
        // Same label with a non-preferred integer encoding is still a duplicate.
        let bytes = msg(
            0xd2,
            &PROT_ES256,
            &[0xa2, 0x10, 0x00, 0x18, 0x10, 0x00],
            &[0xf6],
        );
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::DuplicateHeader { offset: 9 })
        );
        // Text labels too.
        let bytes = msg(
            0xd2,
            &PROT_ES256,
            &[0xa2, 0x61, b'x', 0x00, 0x61, b'x', 0x00],
            &[0xf6],
        );
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::DuplicateHeader { offset: 10 })
        );
    }

    #[test]
    fn duplicate_label_across_buckets() {
        let bytes = msg(
            0xd2,
            &[0xa2, 0x01, 0x26, 0x04, 0x40],
            &[0xa1, 0x04, 0x40],
            &[0xf6],
        );
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::DuplicateHeader { offset: 9 })
        );
    }

    #[test]
    fn unknown_alg() {
        let bytes = msg(0xd2, &[0xa1, 0x01, 0x38, 0x22], &[0xa0], &[0xf6]); // -35 ES384
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::UnsupportedAlgorithm(-35))
        );
        let bytes = msg(
            0xd2,
            &[0xa1, 0x01, 0x63, b'E', b'S', b'2'],
            &[0xa0],
            &[0xf6],
        );
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::InvalidHeader { offset: 5 })
        );
    }

    #[test]
    fn indefinite_lengths() {
        // Indefinite outer array.
        let bytes = [0xd2, 0x9f, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x40, 0xff];
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::IndefiniteLength { offset: 1 })
        );
        // Indefinite unprotected map.
        let bytes = msg(0xd2, &PROT_ES256, &[0xbf, 0xff], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::IndefiniteLength { offset: 6 })
        );
        // Indefinite bstr as payload.
        let bytes = msg(0xd2, &PROT_ES256, &[0xa0], &[0x5f, 0x41, 0x00, 0xff]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::IndefiniteLength { offset: 7 })
        );
        // Indefinite item inside an unknown header value.
        let bytes = msg(0xd2, &PROT_ES256, &[0xa1, 0x20, 0x81, 0x9f, 0xff], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::IndefiniteLength { offset: 9 })
        );
    }

    #[test]
    fn deep_nesting_in_unknown_header() {
        let nested = |levels: usize| {
            let mut u = std::vec![0xa1, 0x20];
            u.extend(core::iter::repeat_n(0x81, levels));
            u.push(0x00);
            msg(0xd2, &PROT_ES256, &u, &[0xf6])
        };
        assert!(CoseMessage::decode(&nested(MAX_SKIP_DEPTH)).is_ok());
        assert_eq!(
            CoseMessage::decode(&nested(MAX_SKIP_DEPTH + 1)),
            Err(CoseError::NestingTooDeep {
                offset: 8 + MAX_SKIP_DEPTH
            })
        );
        // Tags count as nesting as well: a long tag chain must not recurse unboundedly.
        let mut u = std::vec![0xa1, 0x20];
        u.extend(core::iter::repeat_n(0xc1, 1000));
        u.push(0x00);
        let bytes = msg(0xd2, &PROT_ES256, &u, &[0xf6]);
        assert!(matches!(
            CoseMessage::decode(&bytes),
            Err(CoseError::NestingTooDeep { .. })
        ));
    }

    #[test]
    fn unknown_headers_of_every_kind_are_skipped() {
        // {-1: 1.5 (f16), "t": {1: [h'00', "s", true, null, simple(16), 1.0f32, 1.0f64]}, 33: 55799(0)}
        let u = [
            0xa3, 0x20, 0xf9, 0x3e, 0x00, 0x61, b't', 0xa1, 0x01, 0x87, 0x41, 0x00, 0x61, b's',
            0xf5, 0xf6, 0xf0, 0xfa, 0x3f, 0x80, 0, 0, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x18,
            0x21, 0xd9, 0xd9, 0xf7, 0x00,
        ];
        let bytes = msg(0xd2, &PROT_ES256, &u, &[0xf6]);
        let m = CoseMessage::decode(&bytes).unwrap();
        assert_eq!(m.alg, Algorithm::Es256);
    }

    #[test]
    fn crit_is_refused() {
        let bytes = msg(
            0xd2,
            &[0xa2, 0x01, 0x26, 0x02, 0x81, 0x04],
            &[0xa0],
            &[0xf6],
        );
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::CriticalHeader { offset: 6 })
        );
    }

    #[test]
    fn wrong_value_types() {
        // kid not a bstr.
        let bytes = msg(0xd2, &PROT_ES256, &[0xa1, 0x04, 0x61, b'k'], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::InvalidHeader { offset: 8 })
        );
        // Label that is neither int nor tstr.
        let bytes = msg(0xd2, &PROT_ES256, &[0xa1, 0x40, 0x00], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::InvalidHeader { offset: 7 })
        );
        // Protected header that is not a map.
        let bytes = msg(0xd2, &[0x81, 0x00], &[0xa0], &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::Malformed { offset: 3 })
        );
        // Payload that is a tstr.
        let bytes = msg(0xd2, &PROT_ES256, &[0xa0], &[0x60]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::Malformed { offset: 7 })
        );
    }

    #[test]
    fn truncation_everywhere_is_an_error() {
        let bytes = msg(0xd2, &PROT_ES256, &[0xa1, 0x04, 0x42, 0xaa, 0xbb], &[0xf6]);
        for cut in 0..bytes.len() {
            let e = CoseMessage::decode(&bytes[..cut]).unwrap_err();
            assert!(matches!(e, CoseError::Truncated { .. }), "cut {cut}: {e:?}");
        }
    }

    #[test]
    fn too_many_headers() {
        // alg in the protected header + 16 unprotected labels (5..=20) = 17 > 16.
        let mut u = std::vec![0xb0]; // map(16)
        for label in 5u8..=20 {
            u.extend_from_slice(&[label, 0x00]);
        }
        let last_label_at = 7 + 15 * 2;
        let bytes = msg(0xd2, &PROT_ES256, &u, &[0xf6]);
        assert_eq!(
            CoseMessage::decode(&bytes),
            Err(CoseError::TooManyHeaders {
                offset: last_label_at
            })
        );
    }
}
