//! Host-generated vectors for the firmware: spec examples re-signed with the digests of
//! real images, so the device can run an update to completion.
//!
//! The published examples carry placeholder digests (`0011…3210`, `0123…eeff`) that
//! match no image. The firmware cannot sign (it holds no private key, and the spec key
//! is a test key anyway), so `cargo xtask firmware` writes, before the firmware build,
//! into `firmware/target/generated/`:
//!
//! | file | what |
//! |---|---|
//! | `image-a.bin` | 1 KiB, deterministic pseudo-random |
//! | `image-b.bin` | 2 KiB, likewise |
//! | `example3-real.suit` | example 3 (A/B slots) with P0 → image A, P1 → image B |
//! | `example0-real.suit` | example 0 (secure boot) with P0 → image A |
//! | `boot-b.suit` | example 0 with P0 → image B and sequence number 1: the update the bootloader test stages over `example0-real.suit` |
//! | `enc-device-key.bin` | the firmware-encryption receiver key (kid-2) as the 32-byte P-256 scalar a device keeps (the published file is PKCS#8 PEM, which the firmware does not parse) |
//!
//! Both envelopes are signed ES256 with the published `private_key.pem`; the image-size
//! parameters follow the images. ECDSA signing is deterministic (RFC 6979), so the
//! bytes are the same on every run, and a file is only rewritten when its bytes change:
//! an unchanged vector does not make cargo rebuild the firmware.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use suitcase_cose::p256::pkcs8::DecodePrivateKey as _;
use suitcase_cose::{Algorithm, p256, signing_key_from_pem};
use suitcase_testkit::image;
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, PLACEHOLDER_0, PLACEHOLDER_1};

use crate::process::Failure;

/// Image A: installed by example 3 into slot 0, validated by example 0.
const IMAGE_A_LEN: usize = 1024;
/// Image B: installed by example 3 into slot 1.
const IMAGE_B_LEN: usize = 2048;

/// Writes the generated vectors into `dir` (created if missing).
pub fn generate(dir: &Path) -> Result<(), Failure> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Failure(format!("vectors: {what}: {e}"));
    fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), &e))?;

    let private = String::from_utf8(read_spec("private_key.pem")?)
        .map_err(|e| fail("private_key.pem", &e))?;
    let key = signing_key_from_pem(&private).map_err(|e| fail("private_key.pem", &e))?;
    let (a, b) = (image(0xa, IMAGE_A_LEN), image(0xb, IMAGE_B_LEN));
    let (p0, p1) = (PLACEHOLDER_0, PLACEHOLDER_1);
    let resign = |n: u32,
                  images: &[(&[u8], &[u8])],
                  sequence_number: Option<u64>|
     -> Result<Vec<u8>, Failure> {
        let example = read_spec(&format!("example{n}.suit"))?;
        Rewrite {
            images: images
                .iter()
                .map(|(d, i)| (d.to_vec(), i.to_vec()))
                .collect::<HashMap<_, _>>(),
            sequence_number,
            signers: vec![Signer::Sign(key.clone(), Algorithm::Es256)],
        }
        .apply(&example)
        .map_err(|e| fail(&format!("re-signing example{n}"), &e))
    };
    let example3 = resign(3, &[(&p0, &a), (&p1, &b)], None)?;
    let example0 = resign(0, &[(&p0, &a)], None)?;
    // Newer than example 0 (sequence number 0), so the bootloader accepts it as an update.
    let boot_b = resign(0, &[(&p0, &b)], Some(1))?;
    let receiver = read_set(vectors::ENC, "receiver-kid-2-private-p256.pem")?;
    let device_key = String::from_utf8(receiver)
        .ok()
        .and_then(|pem| p256::SecretKey::from_pkcs8_pem(&pem).ok())
        .ok_or_else(|| fail("receiver-kid-2-private-p256.pem", &"not a PKCS#8 P-256 key"))?
        .to_bytes()
        .to_vec();

    let mut wrote = Vec::new();
    for (name, bytes) in [
        ("image-a.bin", &a),
        ("image-b.bin", &b),
        ("example3-real.suit", &example3),
        ("example0-real.suit", &example0),
        ("boot-b.suit", &boot_b),
        ("enc-device-key.bin", &device_key),
    ] {
        if write_if_changed(&dir.join(name), bytes).map_err(|e| fail(name, &e))? {
            wrote.push(name);
        }
    }
    println!(
        "firmware: vectors in {} ({}; example3-real.suit {} B, example0-real.suit {} B)",
        dir.display(),
        if wrote.is_empty() {
            "unchanged".to_owned()
        } else {
            format!("wrote {}", wrote.join(", "))
        },
        example3.len(),
        example0.len(),
    );
    Ok(())
}

/// A published manifest-spec file, or a [`Failure`] naming the path.
fn read_spec(name: &str) -> Result<Vec<u8>, Failure> {
    read_set(vectors::SPEC, name)
}

/// A published file of vector set `set`, or a [`Failure`] naming the path.
fn read_set(set: &str, name: &str) -> Result<Vec<u8>, Failure> {
    let path = vectors::dir().join(set).join(name);
    fs::read(&path).map_err(|e| {
        Failure(format!(
            "vectors: {}: {e} (the published vectors live in shared/vectors beside the \
             checkout, or $SUITCASE_VECTORS)",
            path.display()
        ))
    })
}

/// Writes `bytes` to `path` unless it already holds exactly them; whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    fs::write(path, bytes)?;
    Ok(true)
}
