//! The trust store on the device, host side: the stores xtask provisions into the flash
//! files (docs/trust-store.md), the keys that sign them, and the envelopes of the
//! migration build (a manifest that may carry a store, signed by any mix of ES256,
//! Ed25519 and HSS-LMS keys, each signature with its key's kid).
//!
//! The copies in a flash file are written by `suitcase_trust::Area::provision` over a RAM
//! flash, so they are byte for byte what the device code writes.

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use sha2::{Digest as _, Sha256};
use suitcase_cose::{CoseKind, SigningKey, encode_to_be_signed, sign1_detached};
use suitcase_testkit::build::{bytes, digest_of, encode, int, params, seq, text};
use suitcase_testkit::resign::bstr_encoding;
use suitcase_trust::build::{KeySpec, StoreSpec, assemble, encode_body};
use suitcase_trust::{Area, Clause, Family, Store, role};

use crate::process::Failure;

/// Sector and write unit of `board::flash::HostFlash`.
const SECTOR: usize = 4096;
const WRITE: usize = 4;

/// A RAM NOR flash over a flash file's bytes, for `Area::provision`.
struct RamFlash<'a>(&'a mut [u8]);

impl ErrorType for RamFlash<'_> {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RamFlash<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        let src = self
            .0
            .get(at..at + out.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        out.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for RamFlash<'_> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = SECTOR;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0
            .get_mut(from as usize..to as usize)
            .ok_or(NorFlashErrorKind::OutOfBounds)?
            .fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        self.0
            .get_mut(at..at + data.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?
            .copy_from_slice(data);
        Ok(())
    }
}

fn area<'a>(flash: &'a mut [u8], at: usize) -> Result<Area<RamFlash<'a>>, Failure> {
    let (a, b) = (at as u32, (at + SECTOR) as u32);
    Area::new(RamFlash(flash), a, b, SECTOR as u32)
        .map_err(|e| Failure(format!("firmware trust store: area at {at:#x}: {e}")))
}

/// Writes `signed` into both copies of the trust-store area at `at` of `flash` (one
/// sector each, `board::TRUST_AT`), as the factory does; it must verify as a first store.
pub fn provision(flash: &mut [u8], at: usize, signed: &[u8]) -> Result<(), Failure> {
    Store::verify_genesis(signed)
        .map_err(|e| Failure(format!("firmware trust store: factory store refused: {e}")))?;
    area(flash, at)?
        .provision(signed)
        .map_err(|e| Failure(format!("firmware trust store: provisioning: {e}")))
}

/// The version of the store in the area at `at` of a flash file, if both copies are
/// valid and byte-identical (a whole store, nothing left to repair); why not, otherwise.
pub fn whole_store(flash: &[u8], at: usize) -> Result<u64, String> {
    let (a, b) = (
        &flash[at..at + SECTOR],
        &flash[at + SECTOR..at + 2 * SECTOR],
    );
    if a != b {
        return Err("the two copies differ".into());
    }
    let mut copy = flash.to_vec();
    let mut buf = vec![0u8; SECTOR];
    area(&mut copy, at)
        .map_err(|f| f.0)?
        .load(&mut buf)
        .map(|s| s.version())
        .map_err(|e| format!("no valid store: {e}"))
}

/// A key the stores name and the envelopes are signed with.
#[derive(Clone)]
pub enum Key {
    /// ES256 or Ed25519.
    Cose(SigningKey, &'static [u8]),
    /// HSS-LMS (SHA-256/M32 N32, one level of LMS H5 with LM-OTS W4: 32 signatures),
    /// stateful: each signature takes the next leaf.
    Hss(
        Box<hbs_lms::SigningKey<hbs_lms::Sha256_256>>,
        Vec<u8>,
        &'static [u8],
    ),
}

impl Key {
    /// A P-256 key from a fixed scalar (test keys: the seeds are public).
    pub fn p256(seed: u8, kid: &'static [u8]) -> Key {
        let mut b = [0u8; 32];
        b[0] = 1;
        b[31] = seed;
        let k = suitcase_cose::p256::ecdsa::SigningKey::from_bytes(&b.into())
            .expect("a fixed, valid scalar");
        Key::Cose(SigningKey::P256(k), kid)
    }

    /// An Ed25519 key from a fixed seed.
    pub fn ed25519(seed: u8, kid: &'static [u8]) -> Key {
        Key::Cose(
            SigningKey::Ed25519(suitcase_cose::ed25519_dalek::SigningKey::from_bytes(
                &[seed; 32],
            )),
            kid,
        )
    }

    /// An HSS-LMS key from a fixed seed. hbs-lms recurses deeply: it runs on a thread
    /// with a big stack.
    pub fn hss(seed: u8, kid: &'static [u8]) -> Result<Key, Failure> {
        let (sk, public) = big_stack(move || {
            let mut s = hbs_lms::Seed::<hbs_lms::Sha256_256>::default();
            s.as_mut_slice().fill(seed);
            let params = [hbs_lms::HssParameter::<hbs_lms::Sha256_256>::new(
                hbs_lms::LmotsAlgorithm::LmotsW4,
                hbs_lms::LmsAlgorithm::LmsH5,
            )];
            hbs_lms::keygen::<hbs_lms::Sha256_256>(&params, &s, None)
                .map(|(sk, vk)| (sk, vk.as_slice().to_vec()))
                .map_err(|_| "HSS-LMS key generation failed".to_owned())
        })?;
        Ok(Key::Hss(Box::new(sk), public, kid))
    }

    /// This key in a store, with `roles`.
    pub fn spec(&self, roles: u32) -> KeySpec {
        match self {
            Key::Cose(k, kid) => KeySpec {
                kid: Some(kid.to_vec()),
                ..KeySpec::of(&k.verifying_key(), roles)
            },
            Key::Hss(_, public, kid) => KeySpec {
                alg: -46,
                roles,
                public: public.clone(),
                kid: Some(kid.to_vec()),
            },
        }
    }

    /// A detached COSE_Sign1 over `payload`, with the kid in the unprotected header.
    pub fn sign(&mut self, payload: &[u8]) -> Result<Vec<u8>, Failure> {
        match self {
            Key::Cose(k, kid) => sign1_detached(k, k.default_algorithm(), Some(kid), payload)
                .map_err(|e| Failure(format!("firmware trust store: signing: {e}"))),
            Key::Hss(sk, _, kid) => {
                let protected = [0xa1, 0x01, 0x38, 0x2d]; // {1: -46}
                let mut buf = vec![0u8; suitcase_cose::MAX_SIG_STRUCTURE_LEN];
                let tbs = encode_to_be_signed(CoseKind::Sign1, &protected, payload, &mut buf)
                    .map_err(|e| Failure(format!("firmware trust store: HSS tbs: {e:?}")))?
                    .to_vec();
                let mut key = (**sk).clone();
                let (sig, key) = big_stack(move || {
                    use hbs_lms::signature::SignerMut as _;
                    let sig = key
                        .try_sign(&tbs)
                        .map_err(|_| "HSS-LMS key exhausted".to_owned())?;
                    Ok((sig.as_ref().to_vec(), key))
                })?;
                **sk = key;
                // 18([protected, {4: kid}, nil, signature])
                let mut out = head(6, 18);
                out.extend(head(4, 4));
                out.extend(bstr(&protected));
                out.extend(head(5, 1));
                out.extend(head(0, 4));
                out.extend(bstr(kid));
                out.push(0xf6);
                out.extend(bstr(&sig));
                Ok(out)
            }
        }
    }

    /// The COSE algorithm family.
    pub fn family(&self) -> Family {
        match self {
            Key::Cose(SigningKey::P256(_), _) => Family::P256,
            Key::Cose(SigningKey::Ed25519(_), _) => Family::Ed25519,
            Key::Hss(..) => Family::HssLms,
        }
    }
}

fn big_stack<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Failure> {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .map_err(|e| Failure(format!("firmware trust store: thread: {e}")))?
        .join()
        .map_err(|_| Failure("firmware trust store: HSS-LMS thread panicked".into()))?
        .map_err(Failure)
}

/// A CBOR head.
fn head(major: u8, n: usize) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [&[m | 25][..], &(n as u16).to_be_bytes()].concat(),
        _ => [&[m | 26][..], &(n as u32).to_be_bytes()].concat(),
    }
}

fn bstr(b: &[u8]) -> Vec<u8> {
    [head(2, b.len()), b.to_vec()].concat()
}

/// One policy clause: `k` operator keys of `family`.
pub fn operators(k: u8, family: Family) -> Clause {
    Clause {
        role: role::OPERATOR,
        k,
        family: Some(family),
    }
}

/// A store: `keys` (see [`Key::spec`]), the root threshold, the manifest policy; signed by
/// `signers`.
pub fn store(
    version: u64,
    keys: Vec<KeySpec>,
    root_threshold: u8,
    manifest: Vec<Clause>,
    signers: &mut [&mut Key],
) -> Result<Vec<u8>, Failure> {
    let spec = StoreSpec {
        version,
        keys,
        root_threshold,
        manifest,
        dependency: None,
    };
    let body = encode_body(&spec).map_err(|e| Failure(format!("firmware trust store: {e}")))?;
    let sigs = signers
        .iter_mut()
        .map(|k| k.sign(&body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(assemble(&body, &sigs))
}

/// The spec examples' vendor and class UUIDs (`board::IDENTITY`).
pub(super) const VENDOR: [u8; 16] = [
    0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f, 0xfe,
];
pub(super) const CLASS: [u8; 16] = [
    0x14, 0x92, 0xaf, 0x14, 0x25, 0x69, 0x5e, 0x48, 0xbf, 0x42, 0x9b, 0x2d, 0x51, 0xf2, 0xab, 0x45,
];

/// An envelope for `image` (component `[h'00']`) with sequence number `seq_no`, shaped
/// like the spec's example 2 (shared: vendor and class checks; install: fetch +
/// image-match; validate: image-match; invoke), and, given `store`, a second component
/// `["suitcase", "trust-store"]` that the install writes with the store's bytes.
/// Signed by each of `signers` over the auth digest.
pub fn envelope(
    image: &[u8],
    seq_no: u64,
    store: Option<&[u8]>,
    signers: &mut [&mut Key],
) -> Result<Vec<u8>, Failure> {
    // Commands and parameters (draft-ietf-suit-manifest): 1 vendor, 2 class, 3
    // image-match / image-digest, 12 set-component-index, 14 image-size, 18 write /
    // content, 20 override-parameters, 21 fetch / uri, 23 invoke; 15 = report policy.
    let image_id: &[&[u8]] = &[&[0]];
    let store_id: &[&[u8]] = &[b"suitcase", b"trust-store"];
    let shared = seq(&[
        (12, int(0)),
        (
            20,
            params(&[
                (1, bytes(&VENDOR)),
                (2, bytes(&CLASS)),
                (3, digest_of(image)),
                (14, int(image.len() as i64)),
            ]),
        ),
        (1, int(15)),
        (2, int(15)),
    ]);
    let mut install = vec![
        (12, int(0)),
        (20, params(&[(21, text("http://example.com/file.bin"))])),
        (21, int(15)),
        (3, int(15)),
    ];
    let mut components = vec![image_id];
    if let Some(s) = store {
        components.push(store_id);
        install.extend([(12, int(1)), (20, params(&[(18, bytes(s))])), (18, int(15))]);
    }
    let manifest = encode(&suitcase_testkit::build::manifest(
        seq_no,
        &components,
        &[],
        Some(shared),
        &[
            (7, seq(&[(12, int(0)), (3, int(15))])),
            (9, seq(&[(12, int(0)), (23, int(15))])),
            (20, seq(&install)),
        ],
    ));
    // The auth wrapper's digest: [-16, SHA-256 of the manifest's bstr encoding].
    let mut digest = vec![0x82, 0x2f];
    digest.extend(bstr(&Sha256::digest(bstr_encoding(&manifest))));
    let mut auth = vec![bstr(&digest)];
    for k in signers.iter_mut() {
        auth.push(bstr(&k.sign(&digest)?));
    }
    let mut auth_array = head(4, auth.len());
    auth_array.extend(auth.concat());
    // 107({2: bstr .cbor auth, 3: bstr .cbor manifest})
    let mut out = head(6, 107);
    out.extend(head(5, 2));
    out.extend(head(0, 2));
    out.extend(bstr(&auth_array));
    out.extend(head(0, 3));
    out.extend(bstr(&manifest));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_heads() {
        assert_eq!(head(0, 3), [0x03]);
        assert_eq!(head(2, 24), [0x58, 24]);
        assert_eq!(head(2, 300), [0x59, 0x01, 0x2c]);
        assert_eq!(head(6, 107), [0xd8, 107]);
    }

    #[test]
    fn a_provisioned_area_loads_and_is_whole() {
        let mut root = Key::p256(1, b"r");
        let op = Key::p256(2, b"o");
        let signed = store(
            1,
            vec![root.spec(role::ROOT), op.spec(role::OPERATOR)],
            1,
            vec![operators(1, Family::P256)],
            &mut [&mut root],
        )
        .expect("store");
        let mut flash = vec![0xFF; 4 * SECTOR];
        provision(&mut flash, SECTOR, &signed).expect("provision");
        assert_eq!(whole_store(&flash, SECTOR), Ok(1));
        flash[SECTOR + 100] ^= 1;
        assert!(whole_store(&flash, SECTOR).is_err());
    }

    #[test]
    fn envelopes_carry_one_signature_per_key() {
        let mut es = Key::p256(3, b"es");
        let mut ed = Key::ed25519(4, b"ed");
        let one = envelope(b"image", 2, None, &mut [&mut es]).expect("envelope");
        let two = envelope(b"image", 2, Some(b"store"), &mut [&mut es, &mut ed]).expect("envelope");
        assert_eq!(&one[..2], [0xd8, 107]);
        assert!(
            two.len() > one.len() + 64,
            "a second signature and the store"
        );
    }
}
