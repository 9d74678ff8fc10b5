//! The real `suitcase` binary against the published vectors (`../shared/vectors`):
//! exit codes, the one-line error contract, JSON Lines, and the demo.

use std::path::PathBuf;
use std::process::{Command, Output};

use suitcase_testkit::vectors;

// One test binary for the crate; the authoring tests live beside it in `cli/`.
#[path = "cli/authoring.rs"]
mod authoring;
#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/device.rs"]
mod device;
#[path = "cli/encryption.rs"]
mod encryption;
#[path = "cli/fleet.rs"]
mod fleet;
#[path = "cli/pkcs11.rs"]
mod pkcs11;
#[path = "cli/trust.rs"]
mod trust;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_suitcase");

pub(crate) fn spec(name: &str) -> String {
    vectors::dir()
        .join(vectors::SPEC)
        .join(name)
        .display()
        .to_string()
}

fn enc(name: &str) -> String {
    vectors::dir()
        .join(vectors::ENC)
        .join(name)
        .display()
        .to_string()
}

pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the suitcase binary runs")
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// The error contract: exactly one stderr line, `suitcase: <what>: <why>`.
pub(crate) fn one_error_line(o: &Output, what: &str) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line: {err:?}");
    let line = lines[0];
    assert!(line.starts_with(&format!("suitcase: {what}: ")), "{line}");
    line.to_string()
}

/// A scratch file under the system temp dir, unique per test process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("suitcase-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `(file, sequence number)` of every spec example, signed and unsigned.
fn spec_examples() -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for n in 0..=5u64 {
        v.push((format!("example{n}.suit"), n));
        v.push((format!("example{n}-unsigned.suit"), n));
    }
    v.push(("example2-severed.suit".into(), 2));
    v
}

#[test]
fn inspect_shows_every_spec_example() {
    for (name, seq) in spec_examples() {
        let o = run(&["inspect", &spec(&name)]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{name}");
        let out = stdout(&o);
        assert!(
            out.lines().next().unwrap().contains("NOT AUTHENTICATED"),
            "{name}"
        );
        assert!(
            out.contains(&format!("sequence-number: {seq}\n")),
            "{name}:\n{out}"
        );
        assert!(
            out.contains("condition-image-match (policy 15)"),
            "{name}:\n{out}"
        );
        assert!(out.contains("condition-vendor-identifier"), "{name}");
    }
}

#[test]
fn inspect_renders_example3_try_each_and_example5_indices() {
    let out = stdout(&run(&["inspect", &spec("example3.suit")]));
    assert!(
        out.contains("    try-each\n      branch 1 of 2:\n"),
        "{out}"
    );
    assert!(
        out.contains("override-parameters {component-slot: 1}"),
        "{out}"
    );
    assert!(
        out.contains("vendor-id: fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"),
        "{out}"
    );
    assert!(out.contains("image-size: 76834"), "{out}");
    let out = stdout(&run(&["inspect", &spec("example5.suit")]));
    assert!(out.contains("set-component-index 1\n"), "{out}");
    let out = stdout(&run(&["inspect", &spec("example2-severed.suit")]));
    assert!(out.contains("  install: severed (sha-256:"), "{out}");
    assert!(out.contains("; absent)"), "{out}");
}

#[test]
fn inspect_json_is_json_lines_tagged_by_type() {
    for (name, seq) in spec_examples() {
        let o = run(&["inspect", "--json", &spec(&name)]);
        assert_eq!(code(&o), 0, "{name}");
        let out = stdout(&o);
        let objects: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect();
        let types: Vec<&str> = objects
            .iter()
            .map(|o| o["type"].as_str().expect("every object has a string type"))
            .collect();
        assert_eq!(types[..3], ["envelope", "auth", "manifest"], "{name}");
        assert!(types.contains(&"sequence"), "{name}");
        assert_eq!(types.last(), Some(&"payloads"), "{name}");
        assert_eq!(objects[0]["authenticated"], false);
        assert_eq!(objects[2]["sequence_number"], seq, "{name}");
        let validate = objects
            .iter()
            .find(|o| o["type"] == "sequence" && o["name"] == "validate")
            .expect("every example has validate");
        assert_eq!(
            validate["commands"].as_array().unwrap().last().unwrap()["name"],
            "condition-image-match"
        );
    }
}

#[test]
fn inspect_truncated_file_is_an_error_with_an_offset() {
    let bytes = std::fs::read(spec("example1.suit")).unwrap();
    let p = scratch("truncated.suit", &bytes[..bytes.len() / 2]);
    let name = p.display().to_string();
    let o = run(&["inspect", &name]);
    assert_eq!(code(&o), 2);
    assert!(o.stdout.is_empty());
    let line = one_error_line(&o, "inspect");
    assert!(
        line.starts_with(&format!("suitcase: inspect: {name}: ")),
        "{line}"
    );
    assert!(line.contains(" at byte "), "{line}");
    std::fs::remove_file(p).ok();
}

#[test]
fn inspect_missing_file_is_an_error() {
    let o = run(&["inspect", "/nonexistent/e.suit"]);
    assert_eq!(code(&o), 2);
    one_error_line(&o, "inspect");
}

#[test]
fn verify_accepts_the_signed_examples() {
    for n in 0..=5 {
        let o = run(&[
            "verify",
            "--key",
            &spec("public_key.pem"),
            &spec(&format!("example{n}.suit")),
        ]);
        assert_eq!(code(&o), 0, "example{n}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.starts_with("ok: "), "{out}");
        assert!(
            out.ends_with(&format!(": sequence {n}, signed by public_key.pem\n")),
            "{out}"
        );
        assert!(o.stderr.is_empty());
    }
}

#[test]
fn verify_rejects_the_unsigned_examples() {
    for n in 0..=5 {
        let f = spec(&format!("example{n}-unsigned.suit"));
        let o = run(&["verify", "--key", &spec("public_key.pem"), &f]);
        assert_eq!(code(&o), 1, "example{n}-unsigned");
        assert!(o.stdout.is_empty());
        let line = one_error_line(&o, "verify");
        assert!(line.contains("not signed"), "{line}");
        assert!(line.contains(&f), "{line}");
    }
}

#[test]
fn verify_rejects_the_wrong_key() {
    let o = run(&[
        "verify",
        "--key",
        &enc("receiver-kid-2-public-p256.pem"),
        &spec("example0.suit"),
    ]);
    assert_eq!(code(&o), 1);
    let line = one_error_line(&o, "verify");
    assert!(line.contains("signing policy"), "{line}");
}

#[test]
fn verify_needs_every_key_unless_told_k() {
    let other = enc("dependent-manifest-signing-public-key.pem");
    let published = spec("public_key.pem");
    let file = spec("example0.suit");
    let both = ["verify", "--key", &published, "--key", &other];
    // Default: every key given must have signed; only the published one did.
    let o = run(&[&both[..], &[&file[..]]].concat());
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "verify").contains("signing policy"));
    // --require-all says the same.
    let o = run(&[&both[..], &["--require-all", &file]].concat());
    assert_eq!(code(&o), 1);
    // 1 of 2 suffices.
    let o = run(&[&both[..], &["--require", "1", &file]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("signed by public_key.pem"));
}

#[test]
fn verify_json_is_one_line() {
    let o = run(&[
        "verify",
        "--json",
        "--key",
        &spec("public_key.pem"),
        &spec("example3.suit"),
    ]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["type"], "verify");
    assert_eq!(v["ok"], true);
    assert_eq!(v["sequence_number"], 3);
    assert_eq!(v["signers"][0], "public_key.pem");

    let o = run(&[
        "verify",
        "--json",
        "--key",
        &spec("public_key.pem"),
        &spec("example3-unsigned.suit"),
    ]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["reason"].as_str().unwrap().contains("not signed"));
}

#[test]
fn verify_mac_key_and_second_signer_vectors() {
    let o = run(&[
        "verify",
        "--mac-key",
        &enc("mac-key-hmac256.bin"),
        &enc("suit-manifest-aes-kw.suit"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("signed by mac-key-hmac256.bin"));
    let o = run(&[
        "verify",
        "--key",
        &enc("dependent-manifest-signing-public-key.pem"),
        &enc("suit-manifest-es-ecdh-dependency.suit"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn verify_operational_errors_exit_2() {
    let e0 = spec("example0.suit");
    let published = spec("public_key.pem");
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "missing key file",
            vec!["verify", "--key", "/nonexistent/k.pem", &e0],
        ),
        ("not a PEM", vec!["verify", "--key", &e0, &e0]),
        (
            "an empty key file",
            vec!["verify", "--key", "/dev/null", &e0],
        ),
        (
            "missing envelope",
            vec!["verify", "--key", &published, "/nonexistent/e.suit"],
        ),
    ];
    for (what, args) in cases {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
        one_error_line(&o, "verify");
    }
    let o = run(&["verify", "--key", &spec("private_key.pem"), &e0]);
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "verify").contains("PUBLIC KEY"));
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for args in [
        vec![],
        vec!["verify", "e.suit"],
        vec!["inspect", "--bogus", "e.suit"],
        vec!["nope"],
    ] {
        let o = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(code(&o), 2, "{args:?}");
        one_error_line(&o, "usage");
    }
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("inspect"));
}

#[test]
fn demo_passes_every_step() {
    let o = Command::new(BIN).arg("demo").output().unwrap();
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(o.stderr.is_empty());
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.ends_with(" 0 failed"), "{last}");
    assert_eq!(*last, "demo: 22 steps passed, 0 failed");
    let steps: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with('✔') || l.starts_with('✘'))
        .collect();
    assert_eq!(steps.len(), 22, "{out}");
    assert!(steps.iter().all(|l| l.starts_with('✔')), "{out}");
    // Not a terminal: plain lines, no progress bar (no escape sequences anywhere).
    assert!(!out.contains('\u{1b}'), "{out}");
    // The device story, told by the real bootloader over the flash simulator.
    for needle in [
        "(m) power cut mid-swap: power lost during flash operation",
        "half-steps done",
        "(n) recovery, trial boot:",
        "booted on trial",
        "(p) bad v3 reverted:",
        "reverted",
        "(q) downgrade refused:",
        "rollback",
        "summary:",
        "device now: running sequence 2 (permanent), counter 2",
        // The fleet story: the real server in-process, 50 devices over loopback.
        "(r) fleet server: suitcase-server on http://127.0.0.1:",
        "(s) 50 devices enrol: 50 devices",
        "(t) phased rollout of v2: campaign completed: round 1 (phase 1): ",
        "(u) power cut, recovered: fleet-",
        "50 of 50 devices on v2",
        "(v) bad v3 halts itself:",
        "campaign paused itself (\"halted:",
        "0 devices beyond phase 1 received v3",
        "fleet devices:",
        "failure (SUIT reason 11)",
        "/dashboard#token=",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
}

#[test]
fn demo_without_vectors_says_so() {
    let o = Command::new(BIN)
        .arg("demo")
        .env("SUITCASE_VECTORS", "/nonexistent/vectors")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    let line = one_error_line(&o, "demo");
    assert!(line.contains("SUITCASE_VECTORS"), "{line}");
}

#[test]
fn demo_reports_failed_steps_and_exits_1() {
    // Keys but no envelopes: every step of part 1 fails, and says why on its own line;
    // part 2 (the device story) makes its own keys and releases and still passes.
    let dir = std::env::temp_dir().join(format!("suitcase-cli-{}-keys-only", std::process::id()));
    let spec_dir = dir.join(vectors::SPEC);
    std::fs::create_dir_all(&spec_dir).unwrap();
    for key in ["public_key.pem", "private_key.pem"] {
        std::fs::copy(spec(key), spec_dir.join(key)).unwrap();
    }
    let o = Command::new(BIN)
        .arg("demo")
        .env("SUITCASE_VECTORS", &dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(
        out.lines().filter(|l| l.starts_with('✘')).count() == 8,
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("demo: 14 steps passed, 8 failed"));
    assert!(one_error_line(&o, "demo").contains("8 of 22 steps failed"));
}
