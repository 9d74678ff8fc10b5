//! The first stage of the updatable bootloader on the Cortex-M4 (docs/boot.md §11): the
//! host writes the first stage's ROM public key (`generated/stage1-rom.pub`, which the
//! first stage and the chained application embed) and signs second-stage manifests with
//! the matching test key; the image is built and sized here, and run by
//! `firmware/chain.rs`, which chains it to the real second stage.

use std::fs;
use std::path::{Path, PathBuf};

use suitcase_cose::ed25519_dalek::SigningKey;

use super::{Sizes, debian_cargo, elf_path, section, sizes};
use crate::process::{self, Failure, require};

const PACKAGE: &str = "stage1";
/// The ROM key's seed: a test key, public in this repository.
const ROM_SEED: [u8; 32] = [0x5a; 32];

/// The first stage's ROM key (its private half signs second-stage manifests).
pub fn rom_key() -> SigningKey {
    SigningKey::from_bytes(&ROM_SEED)
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

/// The budget of the first stage without diagnostics, `.text` + vector table: MCUboot's
/// minimal bare-metal figure (issue 6's goal for a verifying bootloader).
pub const BUDGET: u64 = 16 * 1024;

/// The first stage, built twice.
pub struct Stage1 {
    /// Without diagnostics (`--no-default-features`): the build that ships, and the size
    /// compared with MCUboot's minimal (logging off) build.
    pub quiet: Sizes,
    /// Its ELF, kept as `work/stage1-quiet`.
    pub quiet_elf: PathBuf,
    /// With the `stage1:` lines the tests read (feature `log`).
    pub logged: Sizes,
    /// Its ELF, kept as `work/stage1`.
    pub logged_elf: PathBuf,
}

/// Builds and sizes the first stage, without and with diagnostics; fails when the build
/// without them exceeds [`BUDGET`].
pub fn run(dir: &Path, work: &Path) -> Result<Stage1, Failure> {
    generate(&dir.join("target").join("generated"))?;
    let (quiet, quiet_elf) = build(dir, work, "stage1-quiet", &["--no-default-features"])?;
    let (logged, logged_elf) = build(dir, work, PACKAGE, &[])?;
    if quiet.text > BUDGET {
        return Err(Failure(format!(
            "firmware: the first stage is {} B of .text + vectors, over its {BUDGET} B budget",
            quiet.text
        )));
    }
    Ok(Stage1 {
        quiet,
        quiet_elf,
        logged,
        logged_elf,
    })
}

/// One build of the first stage with `extra` arguments, kept as `work/<name>`.
fn build(dir: &Path, work: &Path, name: &str, extra: &[&str]) -> Result<(Sizes, PathBuf), Failure> {
    // SHA-2's compact backend: 7 KB less code for SHA-256 (about 1.7x its instructions);
    // a first stage hashes one second stage. `--config` merges with the config's
    // rustflags (RUSTFLAGS would replace them and drop the linker script).
    let mut args = vec![
        "build",
        "--release",
        "--package",
        PACKAGE,
        "--config",
        r#"target.thumbv7em-none-eabihf.rustflags=["--cfg", "sha2_backend_soft=\"compact\""]"#,
    ];
    args.extend_from_slice(extra);
    process::run(&mut debian_cargo(dir, &args))?;
    let elf = elf_path(dir, PACKAGE);
    require(&elf, "first-stage image")?;
    let kept = work.join(name);
    fs::copy(&elf, &kept).map_err(|e| Failure(format!("{}: {e}", kept.display())))?;
    let mut s = sizes(&kept)?;
    // Code is .text plus the vector table (as shared/research/cortex-m-sizes.md counts it).
    s.text += section(&kept, ".vector_table")?;
    Ok((s, kept))
}
