//! `cargo xtask fuzz`: run every cargo-fuzz target in `fuzz/` for a fixed
//! time, each seeded from the vectors in `../shared/vectors`.
//!
//! cargo-fuzz passes `-Z` flags (ASan, coverage), so it needs nightly or
//! `RUSTC_BOOTSTRAP=1` on the stable toolchain; we use the latter.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, Failure, command};
use crate::root;

/// Vector files used as seeds: CBOR, whatever their name says.
const SEED_EXTENSIONS: &[&str] = &["suit", "cose", "cbor"];
/// Nesting depth the seed extractor follows into byte strings.
const MAX_DEPTH: u32 = 16;
/// libFuzzer kills an input that runs longer than this (seconds).
const INPUT_TIMEOUT: u64 = 10;

/// Fuzzes `targets` (every target when empty) for `seconds` each.
pub fn run(seconds: u64, targets: &[String]) -> Result<(), Failure> {
    let targets = if targets.is_empty() {
        list()?
    } else {
        targets.to_vec()
    };
    if targets.is_empty() {
        return Err(Failure("`cargo fuzz list` found no fuzz targets".into()));
    }
    let seeds = seeds();
    println!(
        "fuzz: {} targets, {} s each, {} seeds",
        targets.len(),
        seconds,
        seeds.len()
    );

    process::run(fuzz_command().args(["build", "--fuzz-dir", "fuzz"]))?;
    for target in &targets {
        let corpus = root().join("fuzz").join("corpus").join(target);
        write_seeds(&corpus, &seeds)?;
        process::run(
            fuzz_command()
                .args(["run", "--fuzz-dir", "fuzz", target])
                .arg("--")
                .arg(budget(seconds))
                .arg(format!("-timeout={INPUT_TIMEOUT}"))
                .arg("-print_final_stats=1"),
        )?;
    }
    Ok(())
}

/// libFuzzer's time limit; 0 seconds means "run the corpus once and stop"
/// (libFuzzer would read `-max_total_time=0` as "no limit").
fn budget(seconds: u64) -> String {
    if seconds == 0 {
        "-runs=0".to_owned()
    } else {
        format!("-max_total_time={seconds}")
    }
}

/// `cargo fuzz …` in the workspace root, with `-Z` flags allowed on stable.
fn fuzz_command() -> Command {
    let mut cmd = command("cargo");
    cmd.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// The targets `cargo fuzz list` reports.
fn list() -> Result<Vec<String>, Failure> {
    let out = process::output(fuzz_command().args(["list", "--fuzz-dir", "fuzz"]))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Seeds: every CBOR vector file, plus every byte string nested in one that
/// is itself CBOR (manifests, COSE structures, command sequences), named by
/// where they came from.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let vectors = root().join("..").join("shared").join("vectors");
    let mut files = Vec::new();
    collect_files(&vectors, &mut files);
    files.sort();
    if files.is_empty() {
        println!(
            "fuzz: no vectors under {}; fuzzing unseeded",
            vectors.display()
        );
    }

    let mut seen = HashSet::new();
    let mut seeds = Vec::new();
    for file in files {
        let Ok(bytes) = fs::read(&file) else { continue };
        let rel = file.strip_prefix(&vectors).unwrap_or(&file);
        let stem: String = rel
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let mut nested = Vec::new();
        // Files that are not one clean CBOR sequence still make good seeds.
        let _ = cbor_sequence(&bytes, 0, &mut nested);
        for (i, seed) in std::iter::once(bytes).chain(nested).enumerate() {
            if seen.insert(seed.clone()) {
                seeds.push((format!("seed-{stem}-{i}"), seed));
            }
        }
    }
    seeds
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| SEED_EXTENSIONS.iter().any(|s| e == *s))
        {
            out.push(path);
        }
    }
}

fn write_seeds(corpus: &Path, seeds: &[(String, Vec<u8>)]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure(format!("writing seeds to {}: {e}", corpus.display()));
    fs::create_dir_all(corpus).map_err(fail)?;
    for (name, bytes) in seeds {
        fs::write(corpus.join(name), bytes).map_err(fail)?;
    }
    Ok(())
}

/// Walks a CBOR sequence, pushing the contents of every byte string that is
/// itself a well-formed CBOR sequence. `None` if `data` is not well formed.
fn cbor_sequence(data: &[u8], depth: u32, out: &mut Vec<Vec<u8>>) -> Option<()> {
    let mut pos = 0;
    while pos < data.len() {
        pos = cbor_item(data, pos, depth, out)?;
    }
    Some(())
}

/// Walks one data item at `pos`; returns the position after it.
/// Indefinite lengths are not followed (SUIT forbids them).
fn cbor_item(data: &[u8], pos: usize, depth: u32, out: &mut Vec<Vec<u8>>) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let initial = *data.get(pos)?;
    let (major, info) = (initial >> 5, initial & 0x1f);
    let (arg, mut pos) = match info {
        0..=23 => (u64::from(info), pos + 1),
        24..=27 => {
            let n = 1usize << (info - 24);
            let bytes = data.get(pos + 1..pos + 1 + n)?;
            (
                bytes.iter().fold(0u64, |a, &b| a << 8 | u64::from(b)),
                pos + 1 + n,
            )
        }
        _ => return None,
    };
    match major {
        0 | 1 | 7 => Some(pos),
        2 | 3 => {
            let end = pos.checked_add(usize::try_from(arg).ok()?)?;
            let content = data.get(pos..end)?;
            if major == 2 && !content.is_empty() {
                let mut nested = Vec::new();
                if cbor_sequence(content, depth + 1, &mut nested).is_some() {
                    out.push(content.to_vec());
                    out.append(&mut nested);
                }
            }
            Some(end)
        }
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                pos = cbor_item(data, pos, depth + 1, out)?;
            }
            Some(pos)
        }
        _ => cbor_item(data, pos, depth + 1, out), // 6: a tag and its item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_holding_cbor_are_extracted() {
        // [h'820102', h'ffff']: the first bstr is CBOR ([1, 2]), the second is not.
        let data = [0x82, 0x43, 0x82, 0x01, 0x02, 0x42, 0xff, 0xff];
        let mut out = Vec::new();
        assert!(cbor_sequence(&data, 0, &mut out).is_some());
        assert_eq!(out, vec![vec![0x82, 0x01, 0x02]]);
    }

    #[test]
    fn truncated_input_is_not_well_formed() {
        let mut out = Vec::new();
        assert!(cbor_sequence(&[0x43, 0x01], 0, &mut out).is_none());
        assert!(cbor_sequence(&[0x1b, 0x00], 0, &mut out).is_none());
    }

    #[test]
    fn example0_yields_its_cose_sign1() {
        let path = root().join("../shared/vectors/suit-manifest-spec/example0.suit");
        let envelope = fs::read(&path).expect("shared/ beside the checkout");
        let mut out = Vec::new();
        assert!(cbor_sequence(&envelope, 0, &mut out).is_some());
        // COSE_Sign1: tag 18, a 4-element array.
        assert!(out.iter().any(|seed| seed.starts_with(&[0xd2, 0x84])));
    }
}
