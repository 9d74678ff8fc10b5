//! Test vectors, embedded from `shared/vectors/` beside the checkout (never
//! copied into the repository), and a minimal envelope splitter for them.

use minicbor::{Decoder, data::Tag};

/// `example0.suit` of draft-ietf-suit-manifest (Appendix B): a signed
/// envelope (tag 107) with a COSE_Sign1 ES256 over a detached payload.
pub static EXAMPLE0: &[u8; 237] =
    include_bytes!("../../../../shared/vectors/suit-manifest-spec/example0.suit");

/// The draft's published P-256 test key (`public_key.pem` beside
/// `example0.suit`) as an uncompressed SEC1 point.
pub const EXAMPLE_KEY_SEC1: [u8; 65] = [
    0x04, 0x84, 0x96, 0x81, 0x1a, 0xae, 0x0b, 0xaa, 0xab, 0xd2, 0x61, 0x57, 0x18, 0x9e, 0xec, 0xda,
    0x26, 0xbe, 0xaa, 0x8b, 0xf1, 0x1b, 0x6f, 0x3f, 0xe6, 0xe2, 0xb5, 0x65, 0x9c, 0x85, 0xdb, 0xc0,
    0xad, 0x3b, 0x1f, 0x2a, 0x4b, 0x6c, 0x09, 0x81, 0x31, 0xc0, 0xa3, 0x6d, 0xac, 0xd1, 0xd7, 0x8b,
    0xd3, 0x81, 0xdc, 0xdf, 0xb0, 0x9c, 0x05, 0x2d, 0xb3, 0x39, 0x91, 0xdb, 0x73, 0x38, 0xb4, 0xa8,
    0x96,
];

/// The pieces of an envelope that the tests check.
pub struct EnvelopeParts<'a> {
    /// The contents of the authentication wrapper's first bstr: the encoded
    /// `SUIT_Digest` that the COSE_Sign1 signs as its detached payload.
    pub auth_payload: &'a [u8],
    /// The contents of the wrapper's second bstr: the COSE_Sign1.
    pub cose_sign1: &'a [u8],
    /// The manifest as it is encoded in the envelope, bstr header included:
    /// what the auth digest is computed over.
    pub manifest_bstr: &'a [u8],
}

/// Splits `SUIT_Envelope = #6.107({2: bstr .cbor [bstr, bstr], 3: bstr, ...})`.
///
/// Deliberately tiny: the real decoder is `suitcase-suit`; this exists so
/// that the COSE tests do not depend on it.
pub fn split_envelope(envelope: &[u8]) -> Result<EnvelopeParts<'_>, &'static str> {
    const ERR: &str = "envelope: malformed CBOR";
    let mut d = Decoder::new(envelope);
    if d.tag().map_err(|_| ERR)? != Tag::new(107) {
        return Err("envelope: not tag 107");
    }
    let entries = d
        .map()
        .map_err(|_| ERR)?
        .ok_or("envelope: indefinite map")?;
    let (mut auth, mut manifest) = (None, None);
    for _ in 0..entries {
        match d.u64().map_err(|_| ERR)? {
            2 => auth = Some(d.bytes().map_err(|_| ERR)?),
            3 => {
                let start = d.position();
                d.bytes().map_err(|_| ERR)?;
                manifest = envelope.get(start..d.position());
            }
            _ => d.skip().map_err(|_| ERR)?,
        }
    }
    let mut a = Decoder::new(auth.ok_or("envelope: no authentication wrapper")?);
    if a.array().map_err(|_| ERR)? != Some(2) {
        return Err("envelope: authentication wrapper is not a 2-element array");
    }
    Ok(EnvelopeParts {
        auth_payload: a.bytes().map_err(|_| ERR)?,
        cose_sign1: a.bytes().map_err(|_| ERR)?,
        manifest_bstr: manifest.ok_or("envelope: no manifest")?,
    })
}

/// Where `part` (a subslice of `whole`) starts within `whole`.
pub fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

/// A copy of `bytes` with bit `bit` of byte `index` inverted.
pub fn flipped<const N: usize>(bytes: &[u8; N], index: usize, bit: u8) -> [u8; N] {
    let mut copy = *bytes;
    if let Some(b) = copy.get_mut(index) {
        *b ^= 1 << (bit & 7);
    }
    copy
}
