//! Test vectors, embedded from `shared/vectors/` beside the checkout (never
//! copied into the repository) and from the host-generated folder
//! (`firmware/target/generated/`, see `build.rs`), and a minimal envelope
//! splitter for them.

use minicbor::{Decoder, data::Tag};

/// A published spec envelope, by file name.
macro_rules! spec {
    ($name:literal) => {
        include_bytes!(concat!(
            "../../../../shared/vectors/suit-manifest-spec/",
            $name
        ))
    };
}

/// A published firmware-encryption file, by name.
macro_rules! enc {
    ($name:literal) => {
        include_bytes!(concat!(
            "../../../../shared/vectors/suit-firmware-encryption/",
            $name
        ))
    };
}

/// `plaintext.bin`: what every firmware-encryption vector decrypts to (30 bytes).
pub static ENC_PLAINTEXT: &[u8] = enc!("plaintext.bin");
/// The A128KW key-encryption key, kid `kid-1`.
pub static ENC_KEK: &[u8] = enc!("kek-a128kw-kid-1.bin");
/// The four `(SUIT_Encryption_Info, ciphertext)` pairs: AES-KW + GCM, ES-DH + GCM,
/// AES-KW + CTR, ES-DH + CTR.
pub static ENC_PAIRS: [(&[u8], &[u8]); 4] = [
    (
        enc!("suit-encryption-info-aes-kw-aes-gcm.cose"),
        enc!("encrypted-payload-aes-kw-aes-gcm.bin"),
    ),
    (
        enc!("suit-encryption-info-es-ecdh-aes-gcm.cose"),
        enc!("encrypted-payload-es-ecdh-aes-gcm.bin"),
    ),
    (
        enc!("suit-encryption-info-aes-kw-aes-ctr.cose"),
        enc!("encrypted-payload-aes-kw-aes-ctr.bin"),
    ),
    (
        enc!("suit-encryption-info-es-ecdh-aes-ctr.cose"),
        enc!("encrypted-payload-es-ecdh-aes-ctr.bin"),
    ),
];
/// `suit-manifest-es-ecdh-content.suit`: ESP256-signed (the spec key), writes and
/// decrypts an ES-DH + A128GCM payload into `['decrypted-firmware']`.
pub static ENC_ES_ECDH_CONTENT: &[u8] = enc!("suit-manifest-es-ecdh-content.suit");

/// A host-generated file (`cargo xtask firmware` writes them; see `build.rs`).
macro_rules! generated {
    ($name:literal) => {
        include_bytes!(concat!(env!("SUITCASE_GENERATED"), "/", $name))
    };
}

/// `example0.suit` of draft-ietf-suit-manifest (Appendix B): a signed
/// envelope (tag 107) with a COSE_Sign1 ES256 over a detached payload.
pub static EXAMPLE0: &[u8; 237] = spec!("example0.suit");

/// Every signed envelope of the draft's Appendix B: `(file name, bytes, sequence number)`.
pub static SIGNED: [(&str, &[u8], u64); 7] = [
    ("example0.suit", spec!("example0.suit"), 0),
    ("example1.suit", spec!("example1.suit"), 1),
    ("example2.suit", spec!("example2.suit"), 2),
    ("example2-severed.suit", spec!("example2-severed.suit"), 2),
    ("example3.suit", spec!("example3.suit"), 3),
    ("example4.suit", spec!("example4.suit"), 4),
    ("example5.suit", spec!("example5.suit"), 5),
];

/// The same examples with no COSE block in the authentication wrapper.
pub static UNSIGNED: [&[u8]; 6] = [
    spec!("example0-unsigned.suit"),
    spec!("example1-unsigned.suit"),
    spec!("example2-unsigned.suit"),
    spec!("example3-unsigned.suit"),
    spec!("example4-unsigned.suit"),
    spec!("example5-unsigned.suit"),
];

/// Image A (1 KiB, generated): example 3 installs it into slot 0, example 0 boots it.
pub static IMAGE_A: &[u8] = generated!("image-a.bin");
/// Image B (2 KiB, generated): example 3 installs it into slot 1.
pub static IMAGE_B: &[u8] = generated!("image-b.bin");
/// Example 3 (A/B slots) re-signed with the published key, its placeholder digests
/// replaced by those of [`IMAGE_A`] (slot 0) and [`IMAGE_B`] (slot 1).
pub static EXAMPLE3_REAL: &[u8] = generated!("example3-real.suit");
/// Example 0 (secure boot) re-signed, validating [`IMAGE_A`].
pub static EXAMPLE0_REAL: &[u8] = generated!("example0-real.suit");
/// Example 0 re-signed for [`IMAGE_B`] with sequence number 1: the update the
/// bootloader test stages over [`EXAMPLE0_REAL`].
pub static BOOT_B: &[u8] = generated!("boot-b.suit");
/// The firmware-encryption receiver key (kid-2) as its 32-byte P-256 scalar, taken
/// from the published PKCS#8 PEM on the host.
pub static ENC_DEVICE_KEY: &[u8] = generated!("enc-device-key.bin");

/// Vendor UUID of every spec example (fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe).
pub const SPEC_VENDOR: [u8; 16] = [
    0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f, 0xfe,
];
/// Class UUID of every spec example (1492af14-2569-5e48-bf42-9b2d51f2ab45).
pub const SPEC_CLASS: [u8; 16] = [
    0x14, 0x92, 0xaf, 0x14, 0x25, 0x69, 0x5e, 0x48, 0xbf, 0x42, 0x9b, 0x2d, 0x51, 0xf2, 0xab, 0x45,
];

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
