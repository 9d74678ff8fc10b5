//! `suitcase trust`: a store built from a description, signed by root key holders one at
//! a time, checked as a device would check it (docs/trust-store.md).

use super::authoring::{Dir, keygen, ok};
use super::{code, one_error_line, run, stdout};

fn description(version: u64, keys: &[(&str, &str)]) -> String {
    let mut t = format!(
        "version = {version}\nroot-threshold = 2\n\
         manifest-policy = [{{ role = \"operator\", k = 1 }}, {{ role = \"author\", k = 1, alg = \"es256\" }}]\n\
         dependency-policy = [{{ role = \"author\", k = 1 }}]\n"
    );
    for (file, roles) in keys {
        t.push_str(&format!(
            "[[key]]\npublic = \"{file}\"\nroles = [{roles}]\n"
        ));
    }
    t
}

#[test]
fn build_sign_one_holder_at_a_time_and_check() {
    let dir = Dir::new("trust");
    let roots: Vec<(String, String)> = (1..=3)
        .map(|i| keygen(&dir, &format!("root{i}"), "es256"))
        .collect();
    keygen(&dir, "operator", "ed25519");
    keygen(&dir, "author", "es256");
    keygen(&dir, "author2", "es256");
    let common = [
        ("root1.pub.pem", "\"root\""),
        ("root2.pub.pem", "\"root\""),
        ("root3.pub.pem", "\"root\""),
        ("operator.pub.pem", "\"operator\""),
    ];
    let mut v1_keys = common.to_vec();
    v1_keys.push(("author.pub.pem", "\"author\""));
    let d1 = dir.write("v1.toml", description(1, &v1_keys).as_bytes());
    let v1 = dir.path("v1.cbor");
    ok(&["trust", "new", &d1, "-o", &v1]);

    // Unsigned, then one of two: a device refuses it (exit 1, one line saying why).
    let o = run(&["trust", "check", &v1]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "trust").contains("signed by 0 of its own root keys, 2 required"));
    ok(&["trust", "sign", &v1, "--key", &roots[0].0]);
    let o = run(&["trust", "check", &v1]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "trust").contains("signed by 1 of its own root keys"));
    ok(&["trust", "sign", &v1, "--key", &roots[1].0]);
    let out = ok(&["trust", "check", &v1, "--json"]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["accepted"], true);
    assert_eq!(j["version"], 1);
    assert_eq!(j["signatures"], 2);
    assert_eq!(j["keys"].as_array().unwrap().len(), 5);
    assert_eq!(j["keys"][3]["alg"], "ed25519");
    assert_eq!(j["keys"][3]["roles"], serde_json::json!(["operator"]));

    // v2 revokes the author key. One current root key is not enough; two are.
    let mut v2_keys = common.to_vec();
    v2_keys.push(("author2.pub.pem", "\"author\""));
    let d2 = dir.write("v2.toml", description(2, &v2_keys).as_bytes());
    let v2 = dir.path("v2.cbor");
    ok(&["trust", "new", &d2, "-o", &v2]);
    ok(&["trust", "sign", &v2, "--key", &roots[2].0]);
    let o = run(&["trust", "check", &v2, "--current", &v1]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "trust").contains("signed by 1 current root keys, 2 required"));
    ok(&["trust", "sign", &v2, "--key", &roots[0].0]);
    let out = ok(&["trust", "check", &v2, "--current", &v1]);
    assert!(
        out.contains("trust store version 2") && out.contains("accepted"),
        "{out}"
    );
    // And v1 cannot come back over v2.
    let o = run(&["trust", "check", &v1, "--current", &v2]);
    assert_eq!(code(&o), 1);
    assert!(one_error_line(&o, "trust").contains("not above the current version 2"));
    assert!(stdout(&o).contains("trust store version 1"));
}

#[test]
fn bad_descriptions_are_refused_before_anyone_signs() {
    let dir = Dir::new("trust-bad");
    keygen(&dir, "root", "es256");
    for (bad, why) in [
        (
            description(1, &[("root.pub.pem", "\"root\", \"operator\"")]),
            "a device would refuse this store",
        ),
        (
            description(1, &[("root.pub.pem", "\"king\"")]),
            "unknown role \"king\"",
        ),
        (
            description(1, &[("missing.pub.pem", "\"root\"")]),
            "missing.pub.pem",
        ),
        ("version = 1\n".to_string(), "missing field"),
    ] {
        let d = dir.write("bad.toml", bad.as_bytes());
        let o = run(&["trust", "new", &d, "-o", &dir.path("out.cbor")]);
        assert_eq!(code(&o), 2, "{bad}");
        let line = one_error_line(&o, "trust");
        assert!(line.contains(why), "{line}");
    }
    assert!(
        !std::path::Path::new(&dir.path("out.cbor")).exists(),
        "nothing half-written"
    );
}
