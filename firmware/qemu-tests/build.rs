//! Puts the memory map where cortex-m-rt's `link.x` finds it (`INCLUDE memory.x`), and
//! checks that the host-generated vectors are there.
//!
//! The map lives in `../memory/`, not in this package root: GNU ld looks for
//! `memory.x` in the current directory first, so a copy there would shadow
//! the one chosen here.
//!
//! The generated vectors (spec examples re-signed with the digests of real images) are
//! written by `cargo xtask firmware` into `firmware/target/generated/` before it builds
//! this crate; `SUITCASE_GENERATED` overrides the folder. The folder is passed to the
//! code as the `SUITCASE_GENERATED` compile-time variable for `include_bytes!`.

use std::{env, fs, path::PathBuf};

/// What `src/vectors.rs` includes from the generated folder.
const GENERATED: &[&str] = &[
    "image-a.bin",
    "image-b.bin",
    "example3-real.suit",
    "example0-real.suit",
    "boot-b.suit",
    "enc-device-key.bin",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map = manifest_dir.join("../memory/mps2-an38x.x");
    fs::copy(&map, out.join("memory.x")).expect("copy memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=build.rs");

    println!("cargo:rerun-if-env-changed=SUITCASE_GENERATED");
    let generated = env::var_os("SUITCASE_GENERATED").map_or_else(
        || {
            let firmware = manifest_dir.parent().unwrap_or(&manifest_dir);
            firmware.join("target").join("generated")
        },
        PathBuf::from,
    );
    let missing: Vec<&str> = GENERATED
        .iter()
        .copied()
        .filter(|name| !generated.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        // Cargo shows a failed build script's stderr: one clear message, no backtrace.
        eprintln!(
            "qemu-tests: generated vectors missing in {}: {}\n\
             They are spec examples re-signed with real image digests, made on the host.\n\
             Build the firmware with `cargo xtask firmware` (from the repository root), \
             which writes them before building.",
            generated.display(),
            missing.join(", ")
        );
        std::process::exit(1);
    }
    for name in GENERATED {
        println!("cargo:rerun-if-changed={}", generated.join(name).display());
    }
    let generated = generated
        .canonicalize()
        .expect("canonical path of the generated folder");
    println!("cargo:rustc-env=SUITCASE_GENERATED={}", generated.display());
}
