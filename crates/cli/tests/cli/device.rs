//! `suitcase device` with the real binary: a whole device story in a temp dir — keys,
//! three signed versions, provision v1, update to v2 with a power cut in the middle of
//! the swap, trial and confirm, a v3 whose self-test fails and is reverted, a downgrade
//! refused — and the exit codes and JSON of each step.

use serde_json::Value;
use suitcase_testkit::image;

use super::authoring::Dir;
use super::{code, one_error_line, run, stderr, stdout};

/// Runs the binary and insists on exit 0.
pub(crate) fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// One JSON object from a `--json` run.
pub(crate) fn json(args: &[&str]) -> Value {
    let out = ok(args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    serde_json::from_str(lines[0]).unwrap()
}

/// Keys and v1…v3 (images and signed envelopes, payloads by relative URI) in `d`.
fn release(d: &Dir) {
    ok(&["keygen", "--alg", "es256", "--out", &d.path("author.pem")]);
    std::fs::create_dir_all(d.0.join("payloads")).unwrap();
    for v in 1..=3u64 {
        std::fs::write(
            d.0.join("payloads").join(format!("app-v{v}.bin")),
            image(v, 9000 + 3000 * v as usize),
        )
        .unwrap();
        d.write(
            &format!("v{v}.toml"),
            format!(
                "[manifest]\nsequence-number = {v}\nvendor-domain = \"example.com\"\n\
                 class = \"thermostat-v2\"\n[[component]]\nid = [\"0x00\"]\n\
                 image = \"payloads/app-v{v}.bin\"\nuri = \"app-v{v}.bin\"\ninvoke = true\n"
            )
            .as_bytes(),
        );
        ok(&[
            "build",
            &d.path(&format!("v{v}.toml")),
            "-o",
            &d.path(&format!("v{v}.suit")),
            "--key",
            &d.path("author.pem"),
        ]);
    }
}

#[test]
fn device_story_end_to_end() {
    let d = Dir::new("device-story");
    release(&d);
    let dev = d.path("dev");
    let dev = dev.as_str();
    let init = json(&[
        "device",
        "init",
        "--dir",
        dev,
        "--geometry",
        "4096x8",
        "--key",
        &d.path("author.pub.pem"),
        "--json",
    ]);
    assert_eq!(init["type"], "init");
    ok(&[
        "device",
        "provision",
        "--dir",
        dev,
        &d.path("v1.suit"),
        &d.path("payloads/app-v1.bin"),
    ]);
    let boot = json(&["device", "reboot", "--dir", dev, "--json"]);
    assert_eq!(boot["booted"]["sequence"], 1);
    assert_eq!(boot["booted"]["trial"], false);

    // The update to v2: the payload is found beside the envelope with --payload-dir.
    let payloads = d.path("payloads");
    let apply = json(&[
        "device",
        "apply",
        "--dir",
        dev,
        &d.path("v2.suit"),
        "--payload-dir",
        &payloads,
        "--json",
    ]);
    assert_eq!(apply["sequence"], 2);
    assert_eq!(apply["fetched"], 15000);
    // Power cut in the middle of the swap: the journal says how far it got.
    let cut = json(&["device", "reboot", "--dir", dev, "--cut-at", "12", "--json"]);
    assert_eq!(cut["power_cut"], true, "{cut}");
    assert!(cut["booted"].is_null());
    assert!(
        cut["after"].as_str().unwrap().starts_with("swapping"),
        "{cut}"
    );
    let state = json(&["device", "state", "--dir", dev, "--json"]);
    assert!(state["running"].is_null(), "{state}");
    // Recovery: the next boot finishes the swap and boots v2 on trial.
    let boot = json(&["device", "reboot", "--dir", dev, "--json"]);
    assert_eq!(boot["booted"]["sequence"], 2, "{boot}");
    assert_eq!(boot["booted"]["trial"], true);
    let st = json(&["device", "self-test", "--dir", dev, "--json"]);
    assert_eq!(st["confirmed"], true);
    let state = json(&["device", "state", "--dir", dev, "--json"]);
    assert_eq!(state["counter"], 2);
    assert_eq!(state["running"]["trial"], false);
    assert_eq!(state["slots"][0]["image"]["sequence"], 2);

    // A bad v3: its self-test fails (exit 1), the next reboot reverts to v2.
    ok(&[
        "device",
        "apply",
        "--dir",
        dev,
        &d.path("v3.suit"),
        "--payload-dir",
        &payloads,
    ]);
    let boot = json(&["device", "reboot", "--dir", dev, "--json"]);
    assert_eq!(boot["booted"]["sequence"], 3);
    assert_eq!(boot["booted"]["trial"], true);
    let o = run(&["device", "self-test", "--dir", dev, "--fail"]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "device").contains("failed"));
    let boot = json(&["device", "reboot", "--dir", dev, "--json"]);
    assert_eq!(boot["booted"]["sequence"], 2, "{boot}");
    assert_eq!(boot["booted"]["trial"], false);
    assert!(
        boot["after"].as_str().unwrap().contains("reverted"),
        "{boot}"
    );

    // A downgrade to v1 is refused before anything is staged.
    let o = run(&[
        "device",
        "apply",
        "--dir",
        dev,
        &d.path("v1.suit"),
        "--payload-dir",
        &payloads,
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(one_error_line(&o, "device").contains("rollback"));
    let text = ok(&["device", "state", "--dir", dev]);
    assert!(text.contains("counter:  2"), "{text}");
    assert!(text.contains("primary:  sequence 2"), "{text}");
}

#[test]
fn device_errors_and_refusals() {
    let d = Dir::new("device-errors");
    release(&d);
    let dev = d.path("dev");
    let dev = dev.as_str();
    // No device yet: operational error.
    let o = run(&["device", "state", "--dir", dev]);
    assert_eq!(code(&o), 2);
    one_error_line(&o, "device");
    // A geometry that is not one.
    let o = run(&[
        "device",
        "init",
        "--dir",
        dev,
        "--geometry",
        "1000x4",
        "--key",
        &d.path("author.pub.pem"),
    ]);
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "device").contains("1024"));
    ok(&[
        "device",
        "init",
        "--dir",
        dev,
        "--key",
        &d.path("author.pub.pem"),
    ]);
    let o = run(&[
        "device",
        "init",
        "--dir",
        dev,
        "--key",
        &d.path("author.pub.pem"),
    ]);
    assert_eq!(code(&o), 2, "init twice without --force");
    // Nothing provisioned: no bootable image (a check said no).
    let o = run(&["device", "reboot", "--dir", dev]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "device").contains("no bootable image"));
    // An envelope signed by another key is refused.
    ok(&["keygen", "--alg", "es256", "--out", &d.path("other.pem")]);
    let o = run(&[
        "device",
        "init",
        "--dir",
        &d.path("dev2"),
        "--key",
        &d.path("other.pub.pem"),
    ]);
    assert_eq!(code(&o), 0);
    // Only other.pem's block is trusted on dev2; the original needs author's key.
    let o = run(&[
        "device",
        "provision",
        "--dir",
        &d.path("dev2"),
        &d.path("v2.suit"),
        &d.path("payloads/app-v2.bin"),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(one_error_line(&o, "device").contains("authentication"));
    // An image that is not the envelope's: refused, nothing written.
    let o = run(&[
        "device",
        "provision",
        "--dir",
        dev,
        &d.path("v1.suit"),
        &d.path("payloads/app-v2.bin"),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(one_error_line(&o, "device").contains("image-match"));
    let state = json(&["device", "state", "--dir", dev, "--json"]);
    assert!(state["slots"][0]["image"].is_null(), "{state}");
    assert_eq!(state["counter"], 0);
    // A payload that is nowhere: operational error naming the URI.
    ok(&[
        "device",
        "provision",
        "--dir",
        dev,
        &d.path("v1.suit"),
        &d.path("payloads/app-v1.bin"),
    ]);
    let o = run(&["device", "apply", "--dir", dev, &d.path("v2.suit")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(one_error_line(&o, "device").contains("app-v2.bin"));
    // Self-test with nothing running.
    let o = run(&["device", "self-test", "--dir", dev]);
    assert_eq!(code(&o), 1);
    // A cut before anything was written leaves the journal as it was.
    ok(&[
        "device",
        "apply",
        "--dir",
        dev,
        &d.path("v2.suit"),
        "--payload-dir",
        &d.path("payloads"),
    ]);
    let cut = json(&[
        "device",
        "reboot",
        "--dir",
        dev,
        "--cut-after-ops",
        "0",
        "--json",
    ]);
    assert_eq!(cut["power_cut"], true);
    assert_eq!(cut["after"], "update requested (test)");
    let text = ok(&["device", "reboot", "--dir", dev]);
    assert!(text.contains("booted sequence 2 (trial)"), "{text}");
}
