//! The first stage of the updatable bootloader on the Cortex-M4 (docs/boot.md §11): the
//! host writes two second-stage slots signed with the first stage's ROM key
//! (`generated/stage1-slots.bin`, `generated/stage1-rom.pub`), then the image is built,
//! sized and run in QEMU, where it plays the first stage's table and exits 0 only when
//! every choice is right.

use std::fs;
use std::path::Path;

use sha2::{Digest as _, Sha256};
use suitcase_boot::stage::signed_part;
use suitcase_cose::ed25519_dalek::{Signer as _, SigningKey};

use super::{QEMU_TIMEOUT, Sizes, debian_cargo, elf_path, section, sizes};
use crate::process::{self, Failure, command, require};

const PACKAGE: &str = "stage1";
/// Slot size (three 4 KiB sectors), as in `firmware/stage1/src/main.rs`.
const SLOT: usize = 3 * 4096;
const IMAGE: usize = 256;
const CONFIRMED: usize = 192;
/// The ROM key's seed: a test key, public in this repository.
const ROM_SEED: [u8; 32] = [0x5a; 32];

/// A slot holding the package (`version`, `image`) signed with `key`.
fn slot(version: u32, image: &[u8], key: &SigningKey, confirmed: bool) -> Vec<u8> {
    let mut s = vec![0xFF; SLOT];
    let mut h = signed_part(version, image.len() as u32, &Sha256::digest(image).into()).to_vec();
    let sig = key.sign(&h);
    h.extend_from_slice(&sig.to_bytes());
    s[..h.len()].copy_from_slice(&h);
    if confirmed {
        s[CONFIRMED..CONFIRMED + 64].fill(0x5A);
    }
    s[IMAGE..IMAGE + image.len()].copy_from_slice(image);
    s
}

/// Writes the slots and the ROM public key (unchanged bytes are not rewritten: cargo
/// would rebuild).
pub fn generate(generated: &Path) -> Result<(), Failure> {
    let key = SigningKey::from_bytes(&ROM_SEED);
    let image = |v: u32| -> Vec<u8> { (0..6000u32).map(|i| (i * 31 + v * 7) as u8).collect() };
    let mut flash = slot(1, &image(1), &key, true);
    flash.extend(slot(2, &image(2), &key, false));
    for (name, bytes) in [
        ("stage1-slots.bin", flash),
        ("stage1-rom.pub", key.verifying_key().to_bytes().to_vec()),
    ] {
        let path = generated.join(name);
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        fs::write(&path, &bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// Builds, sizes and runs the first stage; its sizes.
pub fn run(dir: &Path) -> Result<Sizes, Failure> {
    generate(&dir.join("target").join("generated"))?;
    // SHA-2's compact backend: 7 KB less code for SHA-256 (about 1.7x its instructions);
    // a first stage hashes one small image. `--config` merges with the config's
    // rustflags (RUSTFLAGS would replace them and drop the linker script).
    process::run(&mut debian_cargo(
        dir,
        &[
            "build",
            "--release",
            "--package",
            PACKAGE,
            "--config",
            r#"target.thumbv7em-none-eabihf.rustflags=["--cfg", "sha2_backend_soft=\"compact\""]"#,
        ],
    ))?;
    let elf = elf_path(dir, PACKAGE);
    require(&elf, "first-stage image")?;
    let out = process::run_tee(
        command("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
            .args(["-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(&elf),
        Some(QEMU_TIMEOUT),
    )?;
    if !out.contains("stage1: passed") {
        return Err(Failure("the first stage's table failed in QEMU".into()));
    }
    let mut s = sizes(&elf)?;
    // Code is .text plus the vector table (as shared/research/cortex-m-sizes.md counts it);
    // .rodata without the slots the test image carries.
    s.text += section(&elf, ".vector_table")?;
    s.rodata = s.rodata.saturating_sub(2 * SLOT as u64);
    Ok(s)
}
