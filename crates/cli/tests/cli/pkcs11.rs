//! Signing through PKCS#11 with SoftHSM2 (Debian package `softhsm2`, installed by
//! `cargo xtask setup`): `keygen` makes the P-256 key pair inside a fresh token, `build`
//! and `sign` sign with it, `suitcase verify` and the device core accept the signatures,
//! and no private key is ever written by the tool (the token marks it sensitive and not
//! extractable; the only file we write is the public key).
//!
//! Without SoftHSM2 the tests fail when `CI=true` and are skipped (with the reason
//! printed) otherwise.

use std::path::Path;
use std::process::{Command, Output};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use super::authoring::Dir;
use super::{BIN, code, one_error_line, spec, stderr, stdout};

const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

/// A SoftHSM2 token "T" in a fresh config under `dir/hsm`, or `None` (skip) locally
/// when SoftHSM2 is not installed.
struct Hsm {
    module: String,
    conf: String,
}

fn softhsm(dir: &Dir) -> Option<Hsm> {
    let module =
        std::env::var("SUITCASE_PKCS11_MODULE").unwrap_or_else(|_| DEFAULT_MODULE.to_string());
    let util = Command::new("softhsm2-util").arg("--version").output();
    let missing = if !Path::new(&module).is_file() {
        Some(format!("no PKCS#11 module at {module}"))
    } else if util.is_err() {
        Some("softhsm2-util is not on PATH".into())
    } else {
        None
    };
    if let Some(why) = missing {
        let why = format!("SoftHSM2 unavailable ({why}): apt-get install -y softhsm2");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    let tokens = dir.0.join("hsm/tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.write(
        "hsm/softhsm2.conf",
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        )
        .as_bytes(),
    );
    let o = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "T",
            "--pin",
            PIN,
            "--so-pin",
            "5678",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(Hsm { module, conf })
}

impl Hsm {
    /// Runs the binary against this token, with the PIN in `HSM_PIN` (when `pin`).
    fn run(&self, args: &[&str], pin: Option<&str>) -> Output {
        let mut c = Command::new(BIN);
        c.env("SOFTHSM2_CONF", &self.conf).env_remove("HSM_PIN");
        if let Some(p) = pin {
            c.env("HSM_PIN", p);
        }
        c.args(args).output().unwrap()
    }

    /// The PKCS#11 flags for key `label`.
    fn flags<'a>(&'a self, label: &'a str) -> Vec<&'a str> {
        vec![
            "--pkcs11-module",
            &self.module,
            "--pkcs11-token",
            "T",
            "--pkcs11-key",
            label,
            "--pkcs11-pin-env",
            "HSM_PIN",
        ]
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, Some(PIN));
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    }
}

/// Every file under `root`, recursively.
fn files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn keygen_build_and_sign_in_a_token_verify() {
    let dir = Dir::new("pkcs11");
    let Some(hsm) = softhsm(&dir) else { return };
    let public = dir.path("hsm.pub.pem");
    let mut a = vec!["keygen", "--alg", "es256", "--out", &public];
    a.extend(hsm.flags("author"));
    let line = hsm.ok(&a);
    assert!(line.contains("in PKCS#11 token \"T\""), "{line}");
    // Only the public key was written; nothing we wrote holds a private key.
    let ours: Vec<String> = dir.names().into_iter().filter(|n| n != "hsm").collect();
    assert_eq!(ours, ["hsm.pub.pem"]);
    // The same label again is refused.
    let o = hsm.run(&a, Some(PIN));
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "keygen").contains("already exists"));

    // The token keeps the private key sensitive and not extractable. SoftHSM reads
    // SOFTHSM2_CONF from its process's environment (and setting it here would need
    // `unsafe`), so this test binary checks in a child process.
    let o = Command::new(std::env::current_exe().unwrap())
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env(CHECK_ENV, &hsm.module)
        .args([
            "--exact",
            "pkcs11::token_attributes_check",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("checked: sensitive, not extractable"),
        "{text}"
    );

    // sign: a published unsigned example, verified with the token's public key.
    let signed = dir.path("ex0.suit");
    let example = spec("example0-unsigned.suit");
    let mut a = vec!["sign", &example[..], "-o", &signed];
    a.extend(hsm.flags("author"));
    let line = hsm.ok(&a);
    assert!(line.starts_with("signed: "), "{line}");
    let o = hsm.run(&["verify", "--key", &public, &signed], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // build: a file key and the token key both sign; both must verify.
    let file_key = dir.path("operator.pem");
    hsm.ok(&["keygen", "--alg", "ed25519", "--out", &file_key]);
    let img = dir.write("app.bin", &suitcase_testkit::image(3, 2000));
    let toml = dir.write(
        "m.toml",
        format!(
            "[manifest]\nsequence-number = 5\n[[component]]\nid = [\"0x00\"]\nimage = \"{}\"\nuri = \"https://u/app.bin\"\n",
            Path::new(&img).file_name().unwrap().to_string_lossy()
        )
        .as_bytes(),
    );
    let built = dir.path("m.suit");
    let mut a = vec!["build", &toml[..], "-o", &built, "--key", &file_key];
    a.extend(hsm.flags("author"));
    hsm.ok(&a);
    let o = hsm.run(
        &[
            "verify",
            "--key",
            &public,
            "--key",
            &dir.path("operator.pub.pem"),
            &built,
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Wrong PIN, no PIN, unknown token, unknown key: one line, exit 2, no output file.
    let out = dir.path("never.suit");
    for (label, token_flag, pin, why) in [
        ("author", "T", Some("0000"), "PinIncorrect"),
        ("author", "T", None, "$HSM_PIN, which is not set"),
        ("author", "Q", Some(PIN), "no token labelled \"Q\""),
        ("nobody", "T", Some(PIN), "no EC public key with this label"),
    ] {
        let a = [
            "sign",
            &built[..],
            "-o",
            &out,
            "--pkcs11-module",
            &hsm.module,
            "--pkcs11-token",
            token_flag,
            "--pkcs11-key",
            label,
            "--pkcs11-pin-env",
            "HSM_PIN",
        ];
        let o = hsm.run(&a, pin);
        assert_eq!(code(&o), 2, "{a:?}");
        let line = one_error_line(&o, "sign");
        assert!(line.contains(why), "{line}");
        assert!(!Path::new(&out).exists());
    }

    // No file anywhere in the scratch directory (token store aside) holds a private key.
    for f in files(&dir.0) {
        if f.starts_with(dir.0.join("hsm")) || f.ends_with("operator.pem") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!text.contains("PRIVATE KEY"), "{}", f.display());
    }
}

/// Set (to the module path) when the child process should check the token.
const CHECK_ENV: &str = "SUITCASE_TEST_PKCS11_CHECK";

/// Run by [`keygen_build_and_sign_in_a_token_verify`] in a child process with
/// SOFTHSM2_CONF set: the private key "author" is sensitive and not extractable, and
/// reading its value is refused.
#[test]
#[ignore = "run by keygen_build_and_sign_in_a_token_verify in a child process"]
fn token_attributes_check() {
    let Ok(module) = std::env::var(CHECK_ENV) else {
        return;
    };
    let ctx = Pkcs11::new(&module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "T")
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"author".to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let attrs = session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Token,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
    // The secret value itself cannot be read out.
    let value = session.get_attributes(keys[0], &[AttributeType::Value]);
    assert!(
        !matches!(&value, Ok(v) if v.iter().any(|a| matches!(a, Attribute::Value(_)))),
        "{value:?}"
    );
    println!("checked: sensitive, not extractable");
}
