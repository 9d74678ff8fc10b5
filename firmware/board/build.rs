//! Passes the folder of host-generated files (`firmware/target/generated/`, written by
//! `cargo xtask firmware`; `SUITCASE_GENERATED` overrides it) to the code, for the
//! Ed25519 trust anchor's `include_bytes!`.

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=SUITCASE_GENERATED");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let generated = env::var_os("SUITCASE_GENERATED")
        .map_or_else(|| manifest_dir.join("../target/generated"), PathBuf::from);
    if env::var_os("CARGO_FEATURE_ED25519").is_some() {
        let key = generated.join("fw-ed25519.pub");
        if !key.is_file() {
            eprintln!(
                "board: {} missing: run `cargo xtask firmware`, which writes it",
                key.display()
            );
            std::process::exit(1);
        }
        println!("cargo:rerun-if-changed={}", key.display());
    }
    println!("cargo:rustc-env=SUITCASE_GENERATED={}", generated.display());
}
