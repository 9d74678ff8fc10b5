//! Puts the first stage's memory map (`../memory/stage1.x`) where cortex-m-rt's `link.x`
//! finds it (`INCLUDE memory.x`); see `qemu-tests/build.rs` for why it is not a
//! `memory.x` in this package root.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../memory/stage1.x");
    fs::copy(&map, out.join("memory.x")).expect("copy memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", map.display());
    println!("cargo:rerun-if-changed=build.rs");
}
