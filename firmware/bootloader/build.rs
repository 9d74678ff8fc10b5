//! Puts this image's memory map (`../memory/bootloader.x`, or `../memory/stage2.x` for the
//! second stage of the chained boot, feature `stage2`) where cortex-m-rt's `link.x` finds
//! it (`INCLUDE memory.x`); see `qemu-tests/build.rs` for why it is not a `memory.x` in
//! this package root.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join(if env::var_os("CARGO_FEATURE_STAGE2").is_some() {
                "../memory/stage2.x"
            } else {
                "../memory/bootloader.x"
            });
    fs::copy(&map, out.join("memory.x")).expect("copy memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=build.rs");
}
