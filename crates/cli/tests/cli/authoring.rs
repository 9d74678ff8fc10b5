//! Authoring with the real binary — keygen, key show, build, sign, verify k-of-n — and
//! the round trip: whatever the CLI builds is authenticated and processed by the device
//! core (`suitcase_processor`) on an in-memory device.

use std::path::{Path, PathBuf};

use suitcase_cose::{OwnedVerifyingKey, verifying_key_from_pem};
use suitcase_processor::platform::{DomainKeys, Policy, Rule, StaticKeys, TrustAnchor};
use suitcase_processor::{Authenticated, Error, authenticate};
use suitcase_suit::{Condition, Envelope};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::image;

use super::{code, one_error_line, run, spec, stderr, stdout};

/// A fresh scratch directory for one test.
pub(crate) struct Dir(pub PathBuf);

impl Dir {
    pub(crate) fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("suitcase-auth-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    pub(crate) fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.0.join(name), bytes).unwrap();
        self.path(name)
    }
    /// Every file name in the directory, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary and insists on exit 0.
pub(crate) fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// `keygen` into `dir`, returning (private, public) paths.
pub(crate) fn keygen(dir: &Dir, name: &str, alg: &str) -> (String, String) {
    let private = dir.path(&format!("{name}.pem"));
    let mut args = vec!["keygen", "--alg", alg, "--out", &private];
    if alg == "hss-lms" {
        args.extend(["--lms-height", "5"]);
    }
    ok(&args);
    (private, dir.path(&format!("{name}.pub.pem")))
}

fn public_key(path: &str) -> OwnedVerifyingKey {
    verifying_key_from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Authenticates `bytes` with `keys` under "k of all" and hands the result to `f`.
fn anchors<'k>(keys: &[&'k OwnedVerifyingKey]) -> Vec<TrustAnchor<'k>> {
    keys.iter()
        .map(|key| TrustAnchor {
            key: key.as_verifying_key(),
            kid: None,
        })
        .collect()
}

fn with_auth<R>(
    bytes: &[u8],
    keys: &[&OwnedVerifyingKey],
    k: u8,
    f: impl FnOnce(Result<Authenticated<'_>, Error>) -> R,
) -> R {
    let anchors = anchors(keys);
    let rules = [Rule::k_of(k, (1u32 << keys.len()) - 1)];
    f(authenticate(
        bytes,
        &StaticKeys {
            anchors: &anchors,
            rules: &rules,
        },
    ))
}

/// [`with_auth`] for manifests with dependencies: one key store in which the same keys
/// (any one of them) sign the root and the dependencies, handed to `f` with the result.
fn with_domain_auth<R>(
    bytes: &[u8],
    keys: &[&OwnedVerifyingKey],
    f: impl FnOnce(Result<Authenticated<'_>, Error>, &DomainKeys<'_>) -> R,
) -> R {
    let anchors = anchors(keys);
    let policy = Policy {
        anchors: u32::MAX,
        rules: &[],
    };
    let store = DomainKeys {
        anchors: &anchors,
        root: policy,
        dependencies: Some(policy),
        by_id: &[],
    };
    f(authenticate(bytes, &store), &store)
}

/// The manifest bstr (header included) and the auth wrapper's digest item of an envelope.
fn manifest_and_digest(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let e = Envelope::decode(bytes).unwrap();
    (e.manifest_bytes.to_vec(), e.auth.digest.bytes.to_vec())
}

// ---------------------------------------------------------------------------------------
// keygen, key show

#[test]
fn keygen_writes_a_private_key_0600_and_its_public_key() {
    let dir = Dir::new("keygen");
    for alg in ["es256", "ed25519", "hss-lms"] {
        let (private, public) = keygen(&dir, alg, alg);
        let pem = std::fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{alg}");
        let pub_pem = std::fs::read_to_string(&public).unwrap();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{alg}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{alg}");
        }
        // key show: the same id from either half.
        let a = ok(&["key", "show", &private]);
        let b = ok(&["key", "show", &public]);
        let id = |s: &str| s.lines().next().unwrap().to_string();
        assert_eq!(id(&a), id(&b), "{alg}");
        assert!(
            id(&a).starts_with("key id: ") && id(&a).len() == 8 + 64,
            "{a}"
        );
        let want = match alg {
            "es256" => "algorithm: ESP256 (-9), P-256 private key",
            "ed25519" => "algorithm: Ed25519 (-19), Ed25519 private key",
            _ => "algorithm: HSS-LMS (-46), HSS-LMS private key",
        };
        assert_eq!(a.lines().nth(1), Some(want), "{a}");
        let j: serde_json::Value =
            serde_json::from_str(ok(&["key", "show", "--json", &public]).trim()).unwrap();
        assert_eq!(j["type"], "key");
        assert_eq!(j["half"], "public");
        assert_eq!(format!("key id: {}", j["key_id"].as_str().unwrap()), id(&a));
    }
    // HSS-LMS: the number of signatures left is shown for the private key.
    let s = ok(&["key", "show", &dir.path("hss-lms.pem")]);
    assert!(s.contains("signatures left: 32"), "{s}");
}

#[test]
fn keygen_refuses_to_overwrite_and_unknown_algorithms() {
    let dir = Dir::new("keygen-refuse");
    let (private, _) = keygen(&dir, "k", "ed25519");
    let before = std::fs::read(&private).unwrap();
    let o = run(&["keygen", "--alg", "ed25519", "--out", &private]);
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "keygen").contains("already exists"));
    assert_eq!(std::fs::read(&private).unwrap(), before);
    ok(&["keygen", "--alg", "es256", "--out", &private, "--force"]);
    assert_ne!(std::fs::read(&private).unwrap(), before);

    let other = dir.path("rsa.pem");
    let o = run(&["keygen", "--alg", "rsa", "--out", &other]);
    assert_eq!(code(&o), 2);
    let line = one_error_line(&o, "usage");
    assert!(line.contains("rsa"), "{line}");
    let o = run(&[
        "keygen",
        "--alg",
        "hss-lms",
        "--lms-height",
        "7",
        "--out",
        &other,
    ]);
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "keygen").contains("height"));
    assert_eq!(dir.names(), ["k.pem", "k.pub.pem"], "nothing else written");
}

// ---------------------------------------------------------------------------------------
// build: the spec's examples, byte for byte

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Where the value of the top-level envelope key 2 ends (envelope: d8 6b a? 02 <bstr>).
fn auth_end(env: &[u8]) -> usize {
    assert_eq!(&env[..2], [0xd8, 0x6b]);
    assert_eq!(env[3], 0x02);
    let (len, head) = match env[4] {
        0x58 => (usize::from(env[5]), 2),
        0x59 => (usize::from(u16::from_be_bytes([env[5], env[6]])), 3),
        b if (0x40..0x58).contains(&b) => (usize::from(b - 0x40), 1),
        b => panic!("auth wrapper head {b:#x}"),
    };
    4 + head + len
}

#[test]
fn spec_examples_are_rebuilt_byte_for_byte() {
    let dir = Dir::new("spec");
    let published_key = spec("public_key.pem");
    for n in 0..=5 {
        let toml = examples_dir().join(format!("spec/example{n}.toml"));
        let out = dir.path(&format!("example{n}.suit"));
        ok(&["build", &toml.display().to_string(), "-o", &out]);
        let built = std::fs::read(&out).unwrap();
        let published = std::fs::read(spec(&format!("example{n}.suit"))).unwrap();
        // The manifest and the digest that signatures cover are the published bytes.
        assert_eq!(
            manifest_and_digest(&built),
            manifest_and_digest(&published),
            "example{n}"
        );
        // So is everything after the authentication wrapper (manifest, severed members),
        // and the unsigned envelope is the published unsigned one.
        let tail = &built[auth_end(&built)..];
        assert!(published.ends_with(tail), "example{n}");
        assert_eq!(published[..4], built[..4], "example{n}");
        if n != 2 {
            // (example2-unsigned.suit is the severed form, without keys 20 and 23.)
            let unsigned = std::fs::read(spec(&format!("example{n}-unsigned.suit"))).unwrap();
            assert_eq!(built, unsigned, "example{n}");
        }
        // The published signature, grafted onto what we built, is the published envelope
        // and verifies.
        let mut grafted = published[..auth_end(&published)].to_vec();
        grafted.extend_from_slice(tail);
        assert_eq!(grafted, published, "example{n}");
        let o = run(&["verify", "--key", &published_key, &out]);
        assert_eq!(code(&o), 1, "unsigned: refused");
    }
}

// ---------------------------------------------------------------------------------------
// sign and verify k-of-n

#[test]
fn sign_adds_signatures_without_touching_the_manifest() {
    let dir = Dir::new("sign");
    let (author, author_pub) = keygen(&dir, "author", "es256");
    let (operator, operator_pub) = keygen(&dir, "operator", "ed25519");
    let (third, third_pub) = keygen(&dir, "third", "hss-lms");
    let toml = examples_dir().join("hello.toml");
    let unsigned = dir.path("hello.suit");
    let by_author = dir.path("hello-author.suit");
    let both = dir.path("hello-both.suit");
    ok(&[
        "build",
        &toml.display().to_string(),
        "-o",
        &unsigned,
        "--sequence-number",
        "7",
    ]);
    ok(&["sign", "--key", &author, &unsigned, "-o", &by_author]);
    ok(&["sign", "--key", &operator, &by_author, "-o", &both]);
    let m0 = manifest_and_digest(&std::fs::read(&unsigned).unwrap());
    for f in [&by_author, &both] {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(manifest_and_digest(&bytes), m0, "{f}");
        let unsigned_bytes = std::fs::read(&unsigned).unwrap();
        assert!(bytes.ends_with(&unsigned_bytes[auth_end(&unsigned_bytes)..]));
    }
    // The author's block is kept verbatim: `both` begins with it.
    let a = std::fs::read(&by_author).unwrap();
    let b = std::fs::read(&both).unwrap();
    let first_block = &a[auth_end(&a) - 0x20..auth_end(&a)];
    assert!(b.windows(first_block.len()).any(|w| w == first_block));

    // Default policy: every key given must have signed.
    let verify = |args: &[&str], file: &str| {
        let mut v = vec!["verify"];
        v.extend_from_slice(args);
        v.push(file);
        run(&v)
    };
    let two = ["--key", &author_pub, "--key", &operator_pub];
    assert_eq!(code(&verify(&two, &both)), 0);
    let o = verify(&two, &by_author);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "verify").contains("signing policy"));
    let o = verify(&[&two[..], &["--require", "1"]].concat(), &by_author);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("signed by author.pub.pem"));
    assert_eq!(
        code(&verify(
            &[&two[..], &["--require-all"]].concat(),
            &by_author
        )),
        1
    );
    // 2 of 3, with an HSS-LMS key in the set.
    let three = [
        "--key",
        &author_pub,
        "--key",
        &operator_pub,
        "--key",
        &third_pub,
    ];
    let o = verify(&[&three[..], &["--require", "2", "--json"]].concat(), &both);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["policy"], "2 of 3");
    assert_eq!(
        j["signers"],
        serde_json::json!(["author.pub.pem", "operator.pub.pem"])
    );
    assert_eq!(
        code(&verify(&three, &both)),
        1,
        "3 of 3: the third did not sign"
    );
    let all = dir.path("hello-all.suit");
    ok(&["sign", "--key", &third, &both, "-o", &all]);
    assert_eq!(code(&verify(&three, &all)), 0);
    let o = verify(&[&three[..], &["--require", "4"]].concat(), &all);
    assert_eq!(code(&o), 2, "more than given is a usage error");

    // The same key twice is refused, and nothing is written.
    let again = dir.path("again.suit");
    let o = run(&["sign", "--key", &author, &both, "-o", &again]);
    assert_eq!(code(&o), 2);
    assert!(one_error_line(&o, "sign").contains("already signed"));
    assert!(!Path::new(&again).exists());

    // The device core agrees with `verify`.
    let (ka, ko) = (public_key(&author_pub), public_key(&operator_pub));
    with_auth(&b, &[&ka, &ko], 2, |r| {
        assert_eq!(r.unwrap().signers(), 0b11)
    });
    with_auth(&a, &[&ka, &ko], 2, |r| assert!(r.is_err()));
    with_auth(&a, &[&ka, &ko], 1, |r| assert!(r.is_ok()));
}

#[test]
fn build_with_keys_signs_and_hss_lms_state_advances() {
    let dir = Dir::new("build-sign");
    let (hss, hss_pub) = keygen(&dir, "hss", "hss-lms");
    let (ed, ed_pub) = keygen(&dir, "ed", "ed25519");
    let toml = examples_dir().join("hello.toml");
    let out = dir.path("h.suit");
    let before = std::fs::read(&hss).unwrap();
    let j = ok(&[
        "build",
        &toml.display().to_string(),
        "-o",
        &out,
        "--key",
        &hss,
        "--key",
        &ed,
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(j["type"], "build");
    assert_eq!(j["signed_by"].as_array().unwrap().len(), 2);
    assert_ne!(
        std::fs::read(&hss).unwrap(),
        before,
        "the used leaf is recorded"
    );
    assert!(ok(&["key", "show", &hss]).contains("signatures left: 31"));
    ok(&["verify", "--key", &hss_pub, "--key", &ed_pub, &out]);
    // The next signature uses the next leaf, so two envelopes differ in their signature.
    let out2 = dir.path("h2.suit");
    ok(&[
        "build",
        &toml.display().to_string(),
        "-o",
        &out2,
        "--key",
        &hss,
        "--sequence-number",
        "9",
    ]);
    assert!(ok(&["key", "show", &hss]).contains("signatures left: 30"));
    // An output that cannot be written is found before a leaf is spent.
    let o = run(&[
        "build",
        &toml.display().to_string(),
        "-o",
        "/nonexistent-dir/h.suit",
        "--key",
        &hss,
    ]);
    assert_eq!(code(&o), 2);
    one_error_line(&o, "build");
    assert!(ok(&["key", "show", &hss]).contains("signatures left: 30"));
}

#[test]
fn inspect_diag_opens_every_wrapped_layer() {
    let out = ok(&["inspect", "--diag", &spec("example0.suit")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"107({"), "{out}");
    assert_eq!(lines.last(), Some(&"})"), "{out}");
    for want in [
        "<<{1: -7}>>",
        "2: [[h'00']],",
        "7: <<[3, 15]>>,",
        "9: <<[23, 2]>>",
        "3: <<[-16, h'00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210']>>,",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------
// Round trip through the device core

/// A built-and-signed envelope for a description written into `dir`.
fn build_signed(dir: &Dir, name: &str, toml: &str, key: &str) -> Vec<u8> {
    let t = dir.write(&format!("{name}.toml"), toml.as_bytes());
    let out = dir.path(&format!("{name}.suit"));
    ok(&["build", &t, "-o", &out, "--key", key]);
    std::fs::read(out).unwrap()
}

/// A device answering to vendor "example.com", class "thermostat-v2".
fn device() -> MemDevice {
    let vendor = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"example.com");
    let class = uuid::Uuid::new_v5(&vendor, b"thermostat-v2");
    let mut d = MemDevice::spec();
    d.identity.vendor = *vendor.as_bytes();
    d.identity.class = *class.as_bytes();
    d
}

const C0: &[&[u8]] = &[&[0x00]];
const C1: &[&[u8]] = &[&[0x01]];
const C2: &[&[u8]] = &[&[0x02]];
const IDENTITY: &str = "[manifest]\nsequence-number = 10\nvendor-domain = \"example.com\"\nclass = \"thermostat-v2\"\n";

#[test]
fn round_trip_fetch_install_validate_invoke() {
    let dir = Dir::new("rt-simple");
    let (key, key_pub) = keygen(&dir, "k", "es256");
    let img = image(1, 5000);
    dir.write("app.bin", &img);
    let bytes = build_signed(
        &dir,
        "m",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x00\"]\nimage = \"app.bin\"\nuri = \"https://u/app.bin\"\nmax-size = 8192\ninvoke = true\n"
        ),
        &key,
    );
    let k = public_key(&key_pub);
    let mut dev = device()
        .with_component(C0, None, 8192)
        .serve("https://u/app.bin", img.clone());
    with_auth(&bytes, &[&k], 1, |a| {
        let a = a.unwrap();
        let s = dev.with_platform(|p| a.update(p)).unwrap();
        assert_eq!((s.sequence_number, s.bytes_written), (10, 5000));
        dev.with_platform(|p| a.invoke(p)).unwrap();
    });
    assert_eq!(dev.content(C0, None), &img[..]);
    assert_eq!(dev.invoked, [(0, None)]);
    // A device of another class refuses it in the shared sequence.
    let mut other = device()
        .with_component(C0, None, 8192)
        .serve("https://u/app.bin", img);
    other.identity.class = [0; 16];
    with_auth(&bytes, &[&k], 1, |a| {
        let r = other.with_platform(|p| a.unwrap().update(p));
        assert!(matches!(r, Err(Error::ConditionFailed { .. })), "{r:?}");
    });
}

#[test]
fn round_trip_ab_slots() {
    let dir = Dir::new("rt-ab");
    let (key, key_pub) = keygen(&dir, "k", "ed25519");
    let (a, b) = (image(2, 3000), image(3, 3100));
    dir.write("a.bin", &a);
    dir.write("b.bin", &b);
    let bytes = build_signed(
        &dir,
        "m",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x00\"]\ninvoke = true\nmax-size = 4096\n\
             [[component.slot]]\nslot = 0\nimage = \"a.bin\"\nuri = \"https://u/a\"\n\
             [[component.slot]]\nslot = 1\nimage = \"b.bin\"\nuri = \"https://u/b\"\n"
        ),
        &key,
    );
    let k = public_key(&key_pub);
    for running in [0u64, 1] {
        let mut dev = device()
            .with_component(C0, Some(0), 4096)
            .with_component(C0, Some(1), 4096)
            .serve("https://u/a", a.clone())
            .serve("https://u/b", b.clone());
        dev.identity.running_slot = running;
        let (target, img) = if running == 0 { (1, &b) } else { (0, &a) };
        with_auth(&bytes, &[&k], 1, |auth| {
            let auth = auth.unwrap();
            dev.with_platform(|p| auth.update(p)).unwrap();
            assert_eq!(dev.content(C0, Some(target)), &img[..]);
            assert!(dev.content(C0, Some(running)).is_empty());
            // Reboot into the new slot: validate picks that slot's digest, then invoke.
            dev.identity.running_slot = target;
            dev.with_platform(|p| auth.invoke(p)).unwrap();
        });
        assert_eq!(dev.invoked, [(0, None)]);
    }
}

#[test]
fn round_trip_integrated_payload_with_severed_install_and_text() {
    let dir = Dir::new("rt-integrated");
    let (key, key_pub) = keygen(&dir, "k", "es256");
    let img = image(4, 2500);
    dir.write("app.bin", &img);
    let bytes = build_signed(
        &dir,
        "m",
        &format!(
            "{IDENTITY}sever = [\"install\", \"text\"]\n[text]\nmanifest-description = \"d\"\n\
             [[component]]\nid = [\"0x00\"]\nname = \"app\"\nimage = \"app.bin\"\nintegrated = true\ninvoke = true\n\
             [component.text]\nversion = \"1.0\"\n"
        ),
        &key,
    );
    let env = Envelope::decode(&bytes).unwrap();
    assert_eq!(
        env.integrated_names()
            .map(|(n, b)| (n, b.len()))
            .collect::<Vec<_>>(),
        [("#app", 2500)]
    );
    let k = public_key(&key_pub);
    let mut dev = device().with_component(C0, None, 4096);
    with_auth(&bytes, &[&k], 1, |a| {
        let a = a.unwrap();
        dev.with_platform(|p| a.update(p)).unwrap();
        dev.with_platform(|p| a.invoke(p)).unwrap();
    });
    assert!(
        dev.fetched.is_empty() || dev.fetched == ["#app"],
        "{:?}",
        dev.fetched
    );
    assert_eq!(dev.content(C0, None), &img[..]);
    assert_eq!(dev.invoked, [(0, None)]);
    // `inspect` shows the severed members as carried.
    let out = ok(&["inspect", &dir.path("m.suit")]);
    assert!(out.contains("  install: severed (sha-256:"), "{out}");
    assert!(out.contains("  text: severed (sha-256:"), "{out}");
    assert!(out.contains("\"#app\": 2500 bytes"), "{out}");
}

#[test]
fn round_trip_two_components_with_their_own_identities() {
    let dir = Dir::new("rt-two");
    let (key, key_pub) = keygen(&dir, "k", "es256");
    let (a, b) = (image(5, 1000), image(6, 1200));
    dir.write("a.bin", &a);
    dir.write("b.bin", &b);
    // Component 1 carries its own identity (here the device's, since MemDevice has one).
    let bytes = build_signed(
        &dir,
        "m",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x00\"]\nimage = \"a.bin\"\nuri = \"https://u/a\"\ninvoke = true\n\
             [[component]]\nid = [\"0x01\"]\nimage = \"b.bin\"\nuri = \"https://u/b\"\n\
             vendor-domain = \"example.com\"\nclass = \"thermostat-v2\"\n"
        ),
        &key,
    );
    let k = public_key(&key_pub);
    let mut dev = device()
        .with_component(C0, None, 2048)
        .with_component(C1, None, 2048)
        .serve("https://u/a", a.clone())
        .serve("https://u/b", b.clone());
    with_auth(&bytes, &[&k], 1, |auth| {
        let auth = auth.unwrap();
        let s = dev.with_platform(|p| auth.update(p)).unwrap();
        assert_eq!(s.components_written, 0b11);
        dev.with_platform(|p| auth.invoke(p)).unwrap();
    });
    assert_eq!(
        (dev.content(C0, None), dev.content(C1, None)),
        (&a[..], &b[..])
    );
    assert_eq!(dev.fetched, ["https://u/a", "https://u/b"]);
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn round_trip_staging_and_load() {
    let dir = Dir::new("rt-staged");
    let (key, key_pub) = keygen(&dir, "k", "ed25519");
    let img = image(7, 3000);
    dir.write("app.bin", &img);
    let bytes = build_signed(
        &dir,
        "m",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x00\"]\nname = \"flash\"\nimage = \"app.bin\"\nuri = \"https://u/app\"\nfetch-into = \"staging\"\n\
             [[component]]\nid = [\"0x01\"]\nname = \"staging\"\n\
             [[component]]\nid = [\"0x02\"]\nname = \"ram\"\nimage = \"app.bin\"\nload-from = \"flash\"\ninvoke = true\n"
        ),
        &key,
    );
    let k = public_key(&key_pub);
    let mut dev = device()
        .with_component(C0, None, 4096)
        .with_component(C1, None, 4096)
        .with_component(C2, None, 4096)
        .serve("https://u/app", img.clone());
    with_auth(&bytes, &[&k], 1, |auth| {
        let auth = auth.unwrap();
        dev.with_platform(|p| auth.update(p)).unwrap();
        dev.with_platform(|p| auth.invoke(p)).unwrap();
    });
    for c in [C0, C1, C2] {
        assert_eq!(dev.content(c, None), &img[..]);
    }
    assert_eq!(dev.invoked, [(2, None)]);
}

#[test]
fn round_trip_dependency() {
    let dir = Dir::new("rt-dep");
    let (key, key_pub) = keygen(&dir, "k", "es256");
    let img = image(8, 900);
    dir.write("radio.bin", &img);
    dir.write("app.bin", &img);
    let radio = build_signed(
        &dir,
        "radio",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x01\"]\nimage = \"radio.bin\"\nuri = \"https://u/radio\"\n"
        ),
        &key,
    );
    let bytes = build_signed(
        &dir,
        "system",
        &format!(
            "{IDENTITY}[[component]]\nid = [\"0x00\"]\nimage = \"app.bin\"\nuri = \"https://u/app\"\ninvoke = true\n\
             [[dependency]]\nname = \"radio\"\nenvelope = \"radio.suit\"\nprefix = [\"0x52\"]\n"
        ),
        &key,
    );
    let k = public_key(&key_pub);
    // The prefix names the dependency's component.
    let dep: &[&[u8]] = &[&[0x52]];
    let mut dev = device()
        .with_component(C0, None, 2048)
        .with_component(&[&[0x01]], None, 2048)
        .with_component(dep, None, 2048)
        .serve("https://u/app", img.clone())
        .serve("https://u/radio", img.clone());
    with_domain_auth(&bytes, &[&k], |auth, keys| {
        let auth = auth.unwrap();
        let m = auth.manifest();
        assert_eq!(m.common.components.len(), 1, "the dependency is not listed");
        let d = m.common.dependencies.unwrap().get(1).unwrap();
        assert_eq!(d.prefix.unwrap().segments().collect::<Vec<_>>(), [[0x52]]);
        // dependency-resolution fetched the integrated dependency and matched its
        // manifest digest; install verified it and ran the radio's install.
        let s = dev.with_dependencies(keys, |p| auth.update(p)).unwrap();
        assert_eq!(s.dependency_writes, 1);
        assert_eq!(dev.content(dep, None), &radio[..]);
        assert_eq!(dev.content(&[&[0x01]], None), &img[..]);
        assert_eq!(dev.content(C0, None), &img[..]);
        // validate at boot verifies the stored dependency again and runs its validate.
        dev.with_dependencies(keys, |p| auth.invoke(p)).unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// The examples a new user copies all build, sign and process.

#[test]
fn examples_build_sign_and_process() {
    let dir = Dir::new("examples");
    let (key, key_pub) = keygen(&dir, "k", "es256");
    let k = public_key(&key_pub);
    let ex = examples_dir();
    let copy = |name: &str| {
        std::fs::copy(ex.join(name), dir.0.join(name)).unwrap();
    };
    std::fs::create_dir_all(dir.0.join("images")).unwrap();
    for f in ["app-v2.bin", "app-v2-slot-b.bin", "radio-v7.bin"] {
        copy(&format!("images/{f}"));
    }
    let app = std::fs::read(ex.join("images/app-v2.bin")).unwrap();
    let app_b = std::fs::read(ex.join("images/app-v2-slot-b.bin")).unwrap();
    let radio_img = std::fs::read(ex.join("images/radio-v7.bin")).unwrap();
    let serve = |d: MemDevice| {
        d.serve(
            "https://updates.example.com/thermostat/app-v2.bin",
            app.clone(),
        )
        .serve(
            "https://updates.example.com/thermostat/app-v2-a.bin",
            app.clone(),
        )
        .serve(
            "https://updates.example.com/thermostat/app-v2-b.bin",
            app_b.clone(),
        )
        .serve(
            "https://updates.example.com/thermostat/radio-v7.bin",
            radio_img.clone(),
        )
    };
    let radio_id: &[&[u8]] = &[b"radio", &[0]];
    for name in [
        "hello",
        "ab-slots",
        "integrated",
        "two-images",
        "staged",
        "radio",
        "system",
    ] {
        copy(&format!("{name}.toml"));
        let out = dir.path(&format!("{name}.suit"));
        ok(&[
            "build",
            &dir.path(&format!("{name}.toml")),
            "-o",
            &out,
            "--key",
            &key,
        ]);
        let bytes = std::fs::read(&out).unwrap();
        let mut dev = match name {
            "ab-slots" => {
                device()
                    .with_component(C0, Some(0), 65536)
                    .with_component(C0, Some(1), 65536)
            }
            "two-images" => device()
                .with_component(C0, None, 4096)
                .with_component(radio_id, None, 4096),
            "staged" => device()
                .with_component(C0, None, 4096)
                .with_component(C1, None, 4096)
                .with_component(C2, None, 4096),
            "radio" => {
                let mut d = device().with_component(radio_id, None, 4096);
                d.identity.class = *uuid::Uuid::new_v5(
                    &uuid::Uuid::from_bytes(d.identity.vendor),
                    b"thermostat-v2-radio",
                )
                .as_bytes();
                d
            }
            "system" => device()
                .with_component(C0, None, 4096)
                .with_component(&[b"radio"], None, 4096)
                .with_component(radio_id, None, 4096),
            _ => device().with_component(C0, None, 65536),
        };
        dev = serve(dev);
        with_domain_auth(&bytes, &[&k], |auth, keys| {
            let auth = auth.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            match (name, dev.with_dependencies(keys, |p| auth.update(p))) {
                // The radio's manifest (the dependency) has its own class, and MemDevice
                // answers to one class for every component.
                (
                    "system",
                    Err(Error::ConditionFailed {
                        condition: Condition::ClassIdentifier,
                        ..
                    }),
                ) => return,
                // The radio component has its own class, and MemDevice answers to one
                // class for every component: the radio's identity check is what stops it.
                (
                    "two-images",
                    Err(Error::ConditionFailed {
                        condition: Condition::ClassIdentifier,
                        component: 1,
                        ..
                    }),
                ) => return,
                (_, r) => {
                    r.unwrap_or_else(|e| panic!("{name}: update: {e:?}"));
                }
            }
            if name != "radio" {
                // A/B: reboot into the slot just written.
                dev.identity.running_slot = 1;
                dev.with_dependencies(keys, |p| auth.invoke(p))
                    .unwrap_or_else(|e| panic!("{name}: invoke: {e:?}"));
                assert_eq!(dev.invoked.len(), 1, "{name}");
            }
        });
    }
}
