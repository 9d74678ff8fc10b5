//! The first stage of the updatable bootloader on the Cortex-M4 (docs/boot.md §11): the
//! host writes the first stage's ROM public key (`generated/stage1-rom.pub`, which the
//! first stage and the chained application embed) and signs second-stage packages with
//! the matching test key; the image is built and sized here, and run by
//! `firmware/chain.rs`, which chains it to the real second stage.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use suitcase_boot::stage::signed_part;
use suitcase_cose::ed25519_dalek::{Signer as _, SigningKey};

use super::{Sizes, debian_cargo, elf_path, section, sizes};
use crate::process::{self, Failure, require};

const PACKAGE: &str = "stage1";
/// The ROM key's seed: a test key, public in this repository.
const ROM_SEED: [u8; 32] = [0x5a; 32];

/// The first stage's ROM key (its private half signs second-stage packages).
pub fn rom_key() -> SigningKey {
    SigningKey::from_bytes(&ROM_SEED)
}

/// A second-stage package (`S2HD` header signed by `key`, then `image`).
pub fn package(version: u32, image: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut p = signed_part(version, image.len() as u32, &Sha256::digest(image).into()).to_vec();
    p.extend_from_slice(&key.sign(&p).to_bytes());
    p.extend_from_slice(image);
    p
}

/// Writes the ROM public key (unchanged bytes are not rewritten: cargo would rebuild).
pub fn generate(generated: &Path) -> Result<(), Failure> {
    let path = generated.join("stage1-rom.pub");
    let bytes = rom_key().verifying_key().to_bytes();
    if fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(&path, bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// Builds and sizes the first stage; its sizes and its ELF, kept as `work/stage1`.
pub fn run(dir: &Path, work: &Path) -> Result<(Sizes, PathBuf), Failure> {
    generate(&dir.join("target").join("generated"))?;
    // SHA-2's compact backend: 7 KB less code for SHA-256 (about 1.7x its instructions);
    // a first stage hashes one second stage. `--config` merges with the config's
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
    let kept = work.join(PACKAGE);
    fs::copy(&elf, &kept).map_err(|e| Failure(format!("{}: {e}", kept.display())))?;
    let mut s = sizes(&kept)?;
    // Code is .text plus the vector table (as shared/research/cortex-m-sizes.md counts it).
    s.text += section(&kept, ".vector_table")?;
    Ok((s, kept))
}
