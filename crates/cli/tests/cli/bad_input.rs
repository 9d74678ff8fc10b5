//! Bad input to the authoring commands: one clear stderr line, a non-zero exit, and no
//! output file — not even a half-written one, and an existing one is left as it was.

use super::authoring::Dir;
use super::{code, one_error_line, run, spec, stdout};

/// A P-384 key: well-formed PKCS#8, but not a type a SUIT device here verifies.
const P384_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDB3StBqtCAfq1YXyij5
kD6ArKu5siBQ9a24TU7o/XvbKCoYOH/P3hZv+5dFPVtPuhuhZANiAAQpAcW3qkOj
rVAWyJHPGLAzG1cAgQhDb/aMQJjg1gpyNAgFXOQKqVd3L2a0PShOp0bckJY6An32
OCvsijXqxOi+7df9UCGTHtB5xkE4zGmiua0cwmY9LZlJ4i09hNCFteg=
-----END PRIVATE KEY-----
";

const GOOD: &str = "[manifest]\nsequence-number = 1\nvendor-domain = \"example.com\"\n\
                    [[component]]\nid = [\"0x00\"]\nimage = \"app.bin\"\nmax-size = 100\n";

/// Runs `args`, expects exit `want` and one `suitcase: <what>: …` line containing
/// `needle`, and nothing on stdout; returns the line.
fn fails(args: &[&str], want: i32, what: &str, needle: &str) -> String {
    let o = run(args);
    assert_eq!(code(&o), want, "{args:?}");
    assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
    let line = one_error_line(&o, what);
    assert!(line.contains(needle), "{args:?}: {line}");
    line
}

/// A directory with a key pair, a good description and a 64-byte image.
fn setup(name: &str) -> (Dir, String) {
    let dir = Dir::new(name);
    dir.write("app.bin", &[7u8; 64]);
    dir.write("good.toml", GOOD.as_bytes());
    let key = dir.path("k.pem");
    let o = run(&["keygen", "--alg", "es256", "--out", &key]);
    assert_eq!(code(&o), 0);
    (dir, key)
}

const SETUP_FILES: [&str; 4] = ["app.bin", "good.toml", "k.pem", "k.pub.pem"];

/// Only the setup files and `extra` are in the directory.
fn only(dir: &Dir, extra: &[&str]) {
    let mut want: Vec<String> = SETUP_FILES
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(dir.names(), want);
}

#[test]
fn missing_files() {
    let (dir, key) = setup("missing");
    let out = dir.path("out.suit");
    let line = fails(
        &["build", &dir.path("nope.toml"), "-o", &out],
        2,
        "build",
        "nope.toml",
    );
    assert!(line.contains("No such file"), "{line}");
    let t = dir.write("m.toml", GOOD.replace("app.bin", "gone.bin").as_bytes());
    fails(&["build", &t, "-o", &out], 2, "build", "gone.bin");
    let good = dir.path("good.toml");
    fails(
        &["build", &good, "-o", &out, "--key", &dir.path("nokey.pem")],
        2,
        "build",
        "nokey.pem",
    );
    fails(
        &["sign", "--key", &key, &dir.path("none.suit"), "-o", &out],
        2,
        "sign",
        "none.suit",
    );
    fails(
        &["key", "show", &dir.path("nokey.pem")],
        2,
        "key",
        "nokey.pem",
    );
    fails(
        &["build", &good, "-o", "/nonexistent-dir/out.suit"],
        2,
        "build",
        "/nonexistent-dir/out.suit",
    );
    std::fs::remove_file(&t).unwrap();
    only(&dir, &[]);
}

#[test]
fn wrong_key_types() {
    let (dir, key) = setup("wrong-key");
    let out = dir.path("out.suit");
    let good = dir.path("good.toml");
    let p384 = dir.write("p384.pem", P384_PRIVATE.as_bytes());
    let public = dir.path("k.pub.pem");
    fails(
        &["build", &good, "-o", &out, "--key", &p384],
        2,
        "build",
        "not a P-256, Ed25519 or HSS-LMS key",
    );
    fails(
        &["build", &good, "-o", &out, "--key", &public],
        2,
        "build",
        "this is a public key",
    );
    fails(
        &["build", &good, "-o", &out, "--key", &good],
        2,
        "build",
        "not a PEM key",
    );
    // An unsigned envelope to sign.
    let unsigned = dir.path("u.suit");
    assert_eq!(code(&run(&["build", &good, "-o", &unsigned])), 0);
    fails(
        &["sign", "--key", &p384, &unsigned, "-o", &out],
        2,
        "sign",
        "p384.pem",
    );
    fails(
        &["verify", "--key", &key, &unsigned],
        2,
        "verify",
        "want a PUBLIC KEY",
    );
    fails(
        &["verify", "--key", &p384, &unsigned],
        2,
        "verify",
        "want a PUBLIC KEY",
    );
    // Not an envelope.
    fails(
        &["sign", "--key", &key, &good, "-o", &out],
        2,
        "sign",
        "not a SUIT envelope",
    );
    std::fs::remove_file(&p384).unwrap();
    only(&dir, &["u.suit"]);
}

#[test]
fn malformed_descriptions() {
    let (dir, _) = setup("malformed");
    let out = dir.path("out.suit");
    for (name, text, needle) in [
        ("syntax.toml", "[manifest\n", "line 1, column "),
        (
            "type.toml",
            "[manifest]\nsequence-number = \"soon\"\n",
            "line 2, column 19: ",
        ),
        (
            "unknown.toml",
            "[manifest]\nvendor = \"x\"\n",
            "unknown field `vendor`",
        ),
        (
            "uuid.toml",
            "[manifest]\nvendor-id = \"acme\"\n[[component]]\nid = [\"0x00\"]\nimage = \"app.bin\"\n",
            "is not a UUID",
        ),
        ("empty.toml", "", "no [[component]]"),
        (
            "digest.toml",
            "[[component]]\nid = [\"0x00\"]\ndigest = \"abcd\"\nsize = 1\n",
            "32 bytes",
        ),
    ] {
        let t = dir.write(name, text.as_bytes());
        let line = fails(&["build", &t, "-o", &out], 2, "build", needle);
        assert!(line.contains(name), "{line}");
        std::fs::remove_file(t).unwrap();
    }
    only(&dir, &[]);
}

#[test]
fn image_larger_than_its_slot_and_an_existing_output_is_kept() {
    let (dir, key) = setup("too-big");
    let out = dir.write("out.suit", b"the previous envelope");
    let big = dir.write("big.bin", &[1u8; 101]);
    let t = dir.write("m.toml", GOOD.replace("app.bin", "big.bin").as_bytes());
    let line = fails(
        &["build", &t, "-o", &out, "--key", &key],
        2,
        "build",
        "image larger than its slot: 101 bytes, max-size 100",
    );
    assert!(line.contains("m.toml"), "{line}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous envelope");
    // Per slot, too.
    let ab = "[[component]]\nid = [\"0x00\"]\nmax-size = 100\n\
              [[component.slot]]\nslot = 0\nimage = \"app.bin\"\n\
              [[component.slot]]\nslot = 1\nimage = \"big.bin\"\n";
    let t2 = dir.write("ab.toml", ab.as_bytes());
    fails(
        &["build", &t2, "-o", &out],
        2,
        "build",
        "slot 1: image larger than its slot",
    );
    for f in [&big, &t, &t2] {
        std::fs::remove_file(f).unwrap();
    }
    only(&dir, &["out.suit"]);
}

#[test]
fn unknown_algorithms() {
    let (dir, _) = setup("alg");
    fails(
        &["keygen", "--alg", "rsa", "--out", &dir.path("r.pem")],
        2,
        "usage",
        "rsa",
    );
    fails(
        &["keygen", "--alg", "es384", "--out", &dir.path("r.pem")],
        2,
        "usage",
        "es384",
    );
    only(&dir, &[]);
    // A published envelope signs fine; its auth wrapper with a foreign digest would not.
    let o = run(&["inspect", &spec("example0.suit")]);
    assert_eq!(code(&o), 0);
}
