//! Firmware encryption authored by the CLI — `suitcase encrypt` and `build`'s
//! `encrypt = {…}` — decrypted by the device core (`suitcase_processor`, feature
//! `encryption`) on `MemDevice`: fetched, integrated and in-manifest (write) images,
//! AES-GCM and AES-CTR, 128- and 256-bit content keys, A128KW, A256KW and
//! ECDH-ES+A128KW; a wrong or missing key is refused and leaves no image.

use p256::pkcs8::DecodePrivateKey as _;
use suitcase_processor::Error;
use suitcase_testkit::build::{bytes, digest_of, envelope, int, params, seq, text};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::image;
use suitcase_testkit::resign::{Rewrite, Signer};

use super::authoring::Dir;
use super::{code, one_error_line, run, stderr, stdout};

const C0: &[&[u8]] = &[&[0x00]];
const URI: &str = "https://u/app.bin.enc";
const MAC_KEY: [u8; 32] = [0x5a; 32];

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// A P-256 device key pair made by `keygen`: (private scalar, public PEM path).
fn device_key(dir: &Dir, name: &str) -> (Vec<u8>, String) {
    let private = dir.path(&format!("{name}.pem"));
    ok(&["keygen", "--alg", "es256", "--out", &private]);
    let sk = p256::SecretKey::from_pkcs8_pem(&std::fs::read_to_string(&private).unwrap()).unwrap();
    (sk.to_bytes().to_vec(), dir.path(&format!("{name}.pub.pem")))
}

/// Authenticates with the HMAC key (or `pub_pem`) and runs the update.
fn update(
    dev: &mut MemDevice,
    env: &[u8],
    pub_pem: Option<&str>,
) -> Result<suitcase_processor::UpdateSummary, Error> {
    use suitcase_processor::platform::{StaticKeys, TrustAnchor};
    let owned = pub_pem.map(|p| {
        suitcase_cose::verifying_key_from_pem(&std::fs::read_to_string(p).unwrap()).unwrap()
    });
    let key = match &owned {
        Some(k) => k.as_verifying_key(),
        None => suitcase_cose::VerifyingKey::Hmac256(&MAC_KEY),
    };
    let anchors = [TrustAnchor { key, kid: None }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let a = suitcase_processor::authenticate(env, &keys)?;
    dev.with_platform(|p| a.update(p))
}

/// Which key a device holds.
enum Holds<'a> {
    Kek(&'a [u8], &'a [u8]),
    DeviceKey(&'a [u8], &'a [u8]),
    Nothing,
}

fn device(holds: &Holds<'_>) -> MemDevice {
    let d = MemDevice::spec().with_component(C0, None, 16384);
    match holds {
        Holds::Kek(kid, k) => d.with_kek(Some(kid), k),
        Holds::DeviceKey(kid, k) => d.with_device_key(Some(kid), k),
        Holds::Nothing => d,
    }
}

// ---------------------------------------------------------------------------------------
// suitcase encrypt

/// A MAC-authenticated envelope that fetches (or writes) `ct` with `info` into component
/// 0 and checks the plaintext's digest.
fn manifest_for(info: &[u8], ct: &[u8], plain: &[u8], write: bool) -> Vec<u8> {
    let mut p = vec![
        (3, digest_of(plain)),
        (14, int(plain.len() as i64)),
        (19, bytes(info)),
    ];
    let install = if write {
        p.push((18, bytes(ct)));
        seq(&[(20, params(&p)), (18, int(15)), (3, int(15))])
    } else {
        p.push((21, text(URI)));
        seq(&[(20, params(&p)), (21, int(15)), (3, int(15))])
    };
    Rewrite {
        signers: vec![Signer::Mac(MAC_KEY.to_vec())],
        ..Default::default()
    }
    .apply(&envelope(1, &[C0], None, &[(20, install)], &[]))
    .unwrap()
}

#[test]
fn encrypt_command_round_trips_through_the_device_for_every_option() {
    let dir = Dir::new("enc-cmd");
    let plain = image(11, 5000);
    let img = dir.write("app.bin", &plain);
    let kek16 = [0x11u8; 16];
    let kek32 = [0x22u8; 32];
    let k16 = dir.write("kek16.bin", &kek16);
    let k32 = dir.write("kek32.bin", &kek32);
    let (scalar, public) = device_key(&dir, "device");
    let (other_scalar, _) = device_key(&dir, "other");
    let mut n = 0;
    for content in ["aes-gcm", "aes-ctr"] {
        for bits in ["128", "256"] {
            for (flag, file, holds, wrong) in [
                (
                    "--kek",
                    &k16,
                    Holds::Kek(b"kid-1", &kek16),
                    Holds::Kek(b"kid-1", &[0x12; 16]),
                ),
                (
                    "--kek",
                    &k32,
                    Holds::Kek(b"kid-1", &kek32),
                    Holds::Kek(b"kid-1", &[0x23; 32]),
                ),
                (
                    "--recipient",
                    &public,
                    Holds::DeviceKey(b"kid-1", &scalar),
                    Holds::DeviceKey(b"kid-1", &other_scalar),
                ),
            ] {
                n += 1;
                let out = dir.path(&format!("app{n}.enc"));
                let info = dir.path(&format!("app{n}.cose"));
                let line = ok(&[
                    "encrypt",
                    "--payload",
                    &img,
                    flag,
                    file,
                    "--kid",
                    "kid-1",
                    "--content",
                    content,
                    "--key-size",
                    bits,
                    "-o",
                    &out,
                    "--info-out",
                    &info,
                ]);
                assert!(line.starts_with("encrypted: "), "{line}");
                let (ct, info) = (std::fs::read(&out).unwrap(), std::fs::read(&info).unwrap());
                let tag = if content == "aes-gcm" { 16 } else { 0 };
                assert_eq!(ct.len(), plain.len() + tag);
                let what = format!("{content} {bits} {flag} {file}");
                for write in [false, true] {
                    let env = manifest_for(&info, &ct, &plain, write);
                    let mut dev = device(&holds).serve(URI, ct.clone());
                    let s =
                        update(&mut dev, &env, None).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    assert_eq!(s.bytes_written, plain.len() as u64, "{what}");
                    assert_eq!(dev.content(C0, None), &plain[..], "{what}");
                    // The wrong key: refused, and the rollback counter does not move.
                    let mut dev = device(&wrong).serve(URI, ct.clone());
                    let r = update(&mut dev, &env, None);
                    assert_eq!(r.unwrap_err(), Error::DecryptionFailed, "{what}");
                    assert_eq!(dev.rollback.0, 0, "{what}");
                    let mut dev = device(&Holds::Nothing).serve(URI, ct.clone());
                    let r = update(&mut dev, &env, None);
                    assert_eq!(r.unwrap_err(), Error::NoDecryptionKey, "{what}");
                }
            }
        }
    }
}

#[test]
fn encrypt_command_json_and_bad_input() {
    let dir = Dir::new("enc-bad");
    let img = dir.write("app.bin", &image(12, 100));
    let kek = dir.write("kek.bin", &[1u8; 16]);
    let out = dir.path("app.enc");
    let info = dir.path("app.cose");
    let o = ok(&[
        "encrypt",
        "--payload",
        &img,
        "--kek",
        &kek,
        "--content",
        "aes-ctr",
        "-o",
        &out,
        "--info-out",
        &info,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(v["type"], "encrypt");
    assert_eq!(v["content"], "A128CTR");
    assert_eq!(v["key"], "A128KW");
    assert_eq!(v["ciphertext_size"], 100);

    let bad_kek = dir.write("bad.bin", &[1u8; 20]);
    let ed = dir.path("ed.pem");
    ok(&["keygen", "--alg", "ed25519", "--out", &ed]);
    let ed_pub = dir.path("ed.pub.pem");
    let fresh_out = dir.path("x.enc");
    let fresh_info = dir.path("x.cose");
    let base = ["encrypt", "--payload"];
    for (args, why) in [
        (
            vec![&img, "--kek", &bad_kek],
            "16 (A128KW) or 32 (A256KW) raw bytes, not 20",
        ),
        (
            vec![&img, "--recipient", &ed_pub],
            "needs a P-256 public key",
        ),
        (vec!["/nonexistent/app.bin", "--kek", &kek], "nonexistent"),
        (vec![&img, "--kek", &kek, "--kid", "0xzz"], "not hex"),
    ] {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(args.iter().copied());
        a.extend(["-o", &fresh_out, "--info-out", &fresh_info]);
        let o = run(&a);
        assert_eq!(code(&o), 2, "{a:?}");
        let line = one_error_line(&o, "encrypt");
        assert!(line.contains(why), "{line}");
        assert!(!std::path::Path::new(&fresh_out).exists(), "{a:?}");
        assert!(!std::path::Path::new(&fresh_info).exists(), "{a:?}");
    }
    // The plaintext is never overwritten.
    let before = std::fs::read(&img).unwrap();
    let o = run(&[
        "encrypt",
        "--payload",
        &img,
        "--kek",
        &kek,
        "-o",
        &img,
        "--info-out",
        &fresh_info,
    ]);
    assert_eq!(code(&o), 2);
    let line = one_error_line(&o, "encrypt");
    assert!(
        line.contains("would overwrite the plaintext payload"),
        "{line}"
    );
    assert_eq!(std::fs::read(&img).unwrap(), before);
    // Both or neither key: a usage error.
    let o = run(&[
        "encrypt",
        "--payload",
        &img,
        "--kek",
        &kek,
        "--recipient",
        &ed_pub,
        "-o",
        &fresh_out,
        "--info-out",
        &fresh_info,
    ]);
    assert_eq!(code(&o), 2);
    one_error_line(&o, "usage");
    let o = run(&[
        "encrypt",
        "--payload",
        &img,
        "-o",
        &fresh_out,
        "--info-out",
        &fresh_info,
    ]);
    assert_eq!(code(&o), 2);
    one_error_line(&o, "usage");
    assert!(
        !dir.names()
            .iter()
            .any(|n| n.starts_with('.') || n.starts_with("x."))
    );
}

// ---------------------------------------------------------------------------------------
// build with encrypt = {…}

const IDENTITY: &str =
    "[manifest]\nsequence-number = 3\nvendor-domain = \"example.com\"\nclass = \"thermostat-v2\"\n";

fn identified(holds: &Holds<'_>) -> MemDevice {
    let vendor = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"example.com");
    let class = uuid::Uuid::new_v5(&vendor, b"thermostat-v2");
    let mut d = device(holds);
    d.identity.vendor = *vendor.as_bytes();
    d.identity.class = *class.as_bytes();
    d
}

#[test]
fn build_encrypts_fetched_integrated_and_in_manifest_images() {
    let dir = Dir::new("enc-build");
    let signer = dir.path("author.pem");
    ok(&["keygen", "--alg", "es256", "--out", &signer]);
    let signer_pub = dir.path("author.pub.pem");
    let plain = image(13, 7000);
    dir.write("app.bin", &plain);
    let kek16 = [0x31u8; 16];
    let kek32 = [0x32u8; 32];
    dir.write("kek16.bin", &kek16);
    dir.write("kek32.bin", &kek32);
    let (scalar, _) = device_key(&dir, "device");
    let (other, _) = device_key(&dir, "other");

    let deliveries = [
        ("fetched", "uri = \"https://u/app.bin.enc\"\n"),
        ("integrated", "integrated = true\n"),
        ("in-manifest", "in-manifest = true\n"),
    ];
    let recipients: [(&str, Holds<'_>, Holds<'_>); 3] = [
        (
            "kek = \"kek16.bin\", kid = \"kid-1\"",
            Holds::Kek(b"kid-1", &kek16),
            Holds::Kek(b"kid-1", &[0; 16]),
        ),
        (
            "kek = \"kek32.bin\", kid = \"0x6b31\"",
            Holds::Kek(b"k1", &kek32),
            Holds::Kek(b"k1", &[0; 32]),
        ),
        (
            "recipient = \"device.pub.pem\", kid = \"kid-2\"",
            Holds::DeviceKey(b"kid-2", &scalar),
            Holds::DeviceKey(b"kid-2", &other),
        ),
    ];
    let mut n = 0;
    for (delivery, how) in deliveries {
        for (content, bits) in [
            ("aes-gcm", 128),
            ("aes-ctr", 256),
            ("aes-gcm", 256),
            ("aes-ctr", 128),
        ] {
            for (to, holds, wrong) in &recipients {
                n += 1;
                let what = format!("{delivery} {content} {bits} {to}");
                let toml = format!(
                    "{IDENTITY}[[component]]\nid = [\"0x00\"]\nimage = \"app.bin\"\n{how}invoke = true\nencrypt = {{ {to}, content = \"{content}\", key-size = {bits} }}\n"
                );
                let t = dir.write(&format!("m{n}.toml"), toml.as_bytes());
                let out = dir.path(&format!("m{n}.suit"));
                let report = ok(&["build", &t, "-o", &out, "--key", &signer]);
                let env = std::fs::read(&out).unwrap();
                let enc_path = dir.0.join("app.bin.enc");
                let served = if delivery == "fetched" {
                    assert!(report.contains("ciphertext: "), "{what}: {report}");
                    let ct = std::fs::read(&enc_path).unwrap();
                    std::fs::remove_file(&enc_path).unwrap();
                    ct
                } else {
                    assert!(!enc_path.exists(), "{what}");
                    Vec::new()
                };
                // The plaintext is nowhere in the envelope.
                assert!(!env.windows(64).any(|w| w == &plain[..64]), "{what}");
                let inspect = ok(&["inspect", &out]);
                assert!(inspect.contains("encryption-info"), "{what}: {inspect}");
                let mut dev = identified(holds).serve("https://u/app.bin.enc", served.clone());
                let s = update(&mut dev, &env, Some(&signer_pub))
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(s.bytes_written, plain.len() as u64, "{what}");
                assert_eq!(dev.content(C0, None), &plain[..], "{what}");
                // Validate's image-match and invoke pass on the decrypted image.
                {
                    use suitcase_processor::platform::{StaticKeys, TrustAnchor};
                    let k = suitcase_cose::verifying_key_from_pem(
                        &std::fs::read_to_string(&signer_pub).unwrap(),
                    )
                    .unwrap();
                    let anchors = [TrustAnchor {
                        key: k.as_verifying_key(),
                        kid: None,
                    }];
                    let keys = StaticKeys {
                        anchors: &anchors,
                        rules: &[],
                    };
                    let a = suitcase_processor::authenticate(&env, &keys).unwrap();
                    dev.with_platform(|p| a.invoke(p)).unwrap();
                }
                assert_eq!(dev.invoked.len(), 1, "{what}");
                let mut dev = identified(wrong).serve("https://u/app.bin.enc", served);
                let r = update(&mut dev, &env, Some(&signer_pub));
                assert_eq!(r.unwrap_err(), Error::DecryptionFailed, "{what}");
                assert_eq!(dev.rollback.0, 0, "{what}");
            }
        }
    }
}

#[test]
fn build_encrypt_bad_input_is_one_line_and_writes_nothing() {
    let dir = Dir::new("enc-build-bad");
    dir.write("app.bin", &image(14, 300));
    dir.write("kek.bin", &[1u8; 16]);
    dir.write("short.bin", &[1u8; 8]);
    let head = "[manifest]\nsequence-number = 1\n[[component]]\nid = [\"0x00\"]\n";
    for (body, why) in [
        (
            "image = \"app.bin\"\nencrypt = { kek = \"kek.bin\" }\n",
            "give the component a uri, integrated = true or in-manifest = true",
        ),
        (
            "image = \"app.bin\"\nuri = \"https://u/a\"\nencrypt = { kek = \"short.bin\" }\n",
            "not 8",
        ),
        (
            "image = \"app.bin\"\nuri = \"https://u/a\"\nencrypt = { kek = \"kek.bin\", recipient = \"x.pem\" }\n",
            "give kek or recipient",
        ),
        (
            "image = \"app.bin\"\nuri = \"https://u/a\"\nencrypt = { kek = \"kek.bin\", content = \"aes-cbc\" }\n",
            "aes-cbc",
        ),
        (
            "image = \"app.bin\"\nuri = \"https://u/a\"\nencrypt = { kek = \"kek.bin\", key-size = 192 }\n",
            "128 or 256",
        ),
        (
            "digest = \"00000000000000000000000000000000000000000000000000000000000000aa\"\nsize = 3\nuri = \"https://u/a\"\nencrypt = { kek = \"kek.bin\" }\n",
            "needs an image file",
        ),
        (
            "image = \"app.bin\"\nuri = \"https://u/a\"\nencrypt = { kek = \"kek.bin\", out = \"./app.bin\" }\n",
            "would overwrite the plaintext image",
        ),
        (
            "image = \"app.bin\"\nin-manifest = true\nuri = \"https://u/a\"\n",
            "no uri or integrated",
        ),
        (
            "image = \"app.bin\"\nintegrated = true\nencrypt = { kek = \"kek.bin\", out = \"x.enc\" }\n",
            "only for a fetched image",
        ),
    ] {
        let t = dir.write("m.toml", format!("{head}{body}").as_bytes());
        let out = dir.path("m.suit");
        let o = run(&["build", &t, "-o", &out]);
        assert_eq!(code(&o), 2, "{body}");
        let line = one_error_line(&o, "build");
        assert!(line.contains(why), "{body}: {line}");
        assert_eq!(
            dir.names(),
            ["app.bin", "kek.bin", "m.toml", "short.bin"],
            "{body}"
        );
    }
}

#[test]
fn the_encrypted_example_builds_and_decrypts_on_the_device() {
    let dir = Dir::new("enc-example");
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for sub in ["images", "keys"] {
        std::fs::create_dir_all(dir.0.join(sub)).unwrap();
    }
    for f in ["encrypted.toml", "images/app-v2.bin", "keys/demo-kek.bin"] {
        std::fs::copy(ex.join(f), dir.0.join(f)).unwrap();
    }
    let signer = dir.path("author.pem");
    ok(&["keygen", "--alg", "es256", "--out", &signer]);
    let out = dir.path("enc.suit");
    ok(&[
        "build",
        &dir.path("encrypted.toml"),
        "-o",
        &out,
        "--key",
        &signer,
    ]);
    let env = std::fs::read(&out).unwrap();
    let ct = std::fs::read(dir.0.join("app-v2.bin.enc")).unwrap();
    let plain = std::fs::read(ex.join("images/app-v2.bin")).unwrap();
    let kek = std::fs::read(ex.join("keys/demo-kek.bin")).unwrap();
    let mut dev = identified(&Holds::Kek(b"fleet-kek-1", &kek))
        .serve("https://updates.example.com/thermostat/app-v2.bin.enc", ct);
    update(&mut dev, &env, Some(&dir.path("author.pub.pem"))).unwrap();
    assert_eq!(dev.content(C0, None), &plain[..]);
}
