//! `suitcase serve` and `suitcase device sync` as processes on loopback: an author
//! uploads a release, an operator starts a campaign, and a simulated device enrols,
//! checks in, downloads, installs through its bootloader, confirms and reports; a
//! release its bootloader refuses is reported as a failure and halts the campaign.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use suitcase_testkit::image;

use super::authoring::Dir;
use super::device::{json, ok};
use super::{BIN, code, run, stderr};

/// A `suitcase serve` child, killed (by its own pid) when dropped.
struct Server {
    child: Child,
    port: u16,
    url: String,
    tokens: Vec<(String, String)>,
    http: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(d: &Dir) -> Server {
        // A free port: bound, read, released (the server binds it a moment later).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(d, port)
    }

    fn start_on(d: &Dir, port: u16) -> Server {
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args([
                "serve",
                "--data",
                &d.path("srv"),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--trust-anchor", &d.path("author.pub.pem")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.get(format!("{url}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let tokens = std::fs::read_to_string(d.0.join("srv/tokens.txt"))
            .unwrap()
            .lines()
            .map(|l| {
                let (role, token) = l.split_once(' ').unwrap();
                (role.to_string(), token.to_string())
            })
            .collect();
        Server {
            child,
            port,
            url,
            tokens,
            http,
        }
    }

    fn token(&self, role: &str) -> String {
        self.tokens
            .iter()
            .find(|(r, _)| r == role)
            .unwrap()
            .1
            .clone()
    }

    /// A request as `role`; returns the status and the JSON answer.
    fn call(&self, role: &str, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token(role));
        let mut r = match (method, body) {
            ("GET", _) => self.http.get(url).header("Authorization", auth).call(),
            ("PUT", Some(b)) => self
                .http
                .put(url)
                .header("Authorization", auth)
                .send(&b[..]),
            // JSON for groups and campaigns; the envelope upload ignores the type.
            (_, Some(b)) => self
                .http
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(&b[..]),
            (_, None) => self
                .http
                .post(url)
                .header("Authorization", auth)
                .send_empty(),
        }
        .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }
}

/// Builds `NAME.suit` (sequence `n`, signed with `KEY.pem`) whose payload URI ends in the
/// image's SHA-256, as a fleet release names it (the device looks payloads up by digest).
fn build(d: &Dir, name: &str, n: u64, key: &str) -> String {
    let img = image(n, 5000 + 1000 * n as usize);
    let sha = hex::encode(Sha256::digest(&img));
    d.write(&format!("{name}.bin"), &img);
    d.write(
        &format!("{name}.toml"),
        format!(
            "[manifest]\nsequence-number = {n}\nvendor-domain = \"example.com\"\nclass = \"thermostat-v2\"\n\
             [[component]]\nid = [\"0x00\"]\nimage = \"{name}.bin\"\n\
             uri = \"https://fleet.invalid/device/v1/payloads/{sha}\"\ninvoke = true\n"
        )
        .as_bytes(),
    );
    let (toml, suit, pem) = (
        d.path(&format!("{name}.toml")),
        d.path(&format!("{name}.suit")),
        d.path(&format!("{key}.pem")),
    );
    ok(&["build", &toml, "-o", &suit, "--key", &pem]);
    sha
}

/// A device in `d/NAME` trusting `KEY.pub.pem`, running `ENVELOPE` (sequence 1).
fn device(d: &Dir, name: &str, key: &str, envelope: &str) -> String {
    let dev = d.path(name);
    let trust = d.path(&format!("{key}.pub.pem"));
    ok(&[
        "device",
        "init",
        "--dir",
        &dev,
        "--geometry",
        "4096x8",
        "--key",
        &trust,
    ]);
    let (suit, bin) = (
        d.path(&format!("{envelope}.suit")),
        d.path(&format!("{envelope}.bin")),
    );
    ok(&["device", "provision", "--dir", &dev, &suit, &bin]);
    ok(&["device", "reboot", "--dir", &dev]);
    dev
}

impl Server {
    /// Uploads release `NAME` and its payload, approves it; returns the release.
    fn release(&self, d: &Dir, name: &str, sha: &str) -> Value {
        let query = "/api/v1/releases?name=r&vendor_id={v}&class_id={c}"
            .replace("{v}", &uuid_of("example.com", None))
            .replace("{c}", &uuid_of("example.com", Some("thermostat-v2")));
        let (s, release) = self.call(
            "author",
            "POST",
            &query,
            Some(std::fs::read(d.0.join(format!("{name}.suit"))).unwrap()),
        );
        assert_eq!(s, 201, "{release}");
        let payload = std::fs::read(d.0.join(format!("{name}.bin"))).unwrap();
        let (s, _) = self.call(
            "author",
            "PUT",
            &format!("/api/v1/payloads/{sha}"),
            Some(payload),
        );
        assert_eq!(s, 201);
        let approve = format!(
            "/api/v1/releases/{}/approve",
            release["id"].as_str().unwrap()
        );
        let (s, release) = self.call("operator", "POST", &approve, None);
        assert_eq!(s, 200, "{release}");
        release
    }

    /// A one-phase campaign of `release` over `devices` that halts at the first failure.
    fn campaign(&self, name: &str, release: &Value, devices: &[&str]) -> String {
        let group = json!({ "name": name, "devices": devices })
            .to_string()
            .into_bytes();
        let (s, group) = self.call("operator", "POST", "/api/v1/groups", Some(group));
        assert_eq!(s, 201);
        let campaign = json!({ "name": name, "release_id": release["id"], "group_id": group["id"],
            "phases": [100], "success_percent": 100, "max_failures": 0, "device_timeout_secs": 600 });
        let (s, c) = self.call(
            "operator",
            "POST",
            "/api/v1/campaigns",
            Some(campaign.to_string().into_bytes()),
        );
        assert_eq!(s, 201, "{c}");
        format!("/api/v1/campaigns/{}", c["id"].as_str().unwrap())
    }
}

/// Vendor / class UUIDs as `build` and `device init` derive them (UUIDv5).
fn uuid_of(domain: &str, class: Option<&str>) -> String {
    let vendor = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, domain.as_bytes());
    match class {
        Some(c) => uuid::Uuid::new_v5(&vendor, c.as_bytes()).to_string(),
        None => vendor.to_string(),
    }
}

#[test]
fn a_device_updates_from_the_fleet_server() {
    let d = Dir::new("fleet-sync");
    ok(&["keygen", "--alg", "es256", "--out", &d.path("author.pem")]);
    ok(&["keygen", "--alg", "es256", "--out", &d.path("other.pem")]);
    build(&d, "v1", 1, "author");
    let sha2 = build(&d, "v2", 2, "author");
    let dev = device(&d, "dev-7", "author", "v1");
    let srv = Server::start(&d);
    // One more token, made beside the running server (its SQLite file is shared).
    let serve = |spec: &str| {
        let (data, anchor) = (d.path("srv"), d.path("author.pub.pem"));
        run(&[
            "serve",
            "--data",
            &data,
            "--trust-anchor",
            &anchor,
            "--create-token",
            spec,
            "--json",
        ])
    };
    let made: Value = serde_json::from_str(&super::stdout(&serve("viewer:ci"))).unwrap();
    assert_eq!(made["type"], "token");
    assert_eq!(made["role"], "viewer");
    let r = srv
        .http
        .get(format!("{}/api/v1/releases", srv.url))
        .header(
            "Authorization",
            format!("Bearer {}", made["token"].as_str().unwrap()),
        )
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(code(&serve("root:x")), 2);
    let release = srv.release(&d, "v2", &sha2);
    assert_eq!(release["images"][0]["sha256"], sha2);

    // Enrols; no campaign yet: nothing to do.
    let sync = |dev: &str| {
        json(&[
            "device", "sync", "--dir", dev, "--server", &srv.url, "--json",
        ])
    };
    let first = sync(&dev);
    assert_eq!(first["update"], false);
    assert_eq!(first["id"], "dev-7");
    let (_, device_row) = srv.call("viewer", "GET", "/api/v1/devices/dev-7", None);
    assert_eq!(device_row["sequence_number"], 1);

    let campaign = srv.campaign("v2", &release, &["dev-7"]);
    // A download cut after 1000 bytes last time: only the rest is fetched (Range).
    let cache = d.0.join("dev-7/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let v2 = std::fs::read(d.0.join("v2.bin")).unwrap();
    std::fs::write(cache.join(format!("{sha2}.part")), &v2[..1000]).unwrap();
    let updated = sync(&dev);
    assert_eq!(updated["update"], true, "{updated}");
    assert_eq!(updated["sequence"], 2);
    assert_eq!(updated["downloaded"], 6000);
    assert_eq!(updated["reported"], "success");
    let state = json(&["device", "state", "--dir", &dev, "--json"]);
    assert_eq!(state["counter"], 2, "{state}");
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["counts"]["succeeded"], 1);
    let (_, device_row) = srv.call("viewer", "GET", "/api/v1/devices/dev-7", None);
    assert_eq!(device_row["sequence_number"], 2);

    // kill -9 (Child::kill is SIGKILL) and a restart on the same data: the acknowledged
    // report, the campaign and the device's enrolment are all still there.
    let mut srv = srv;
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let srv = Server::start_on(&d, srv.port);
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "completed", "{c}");
    let sync = |dev: &str| {
        json(&[
            "device", "sync", "--dir", dev, "--server", &srv.url, "--json",
        ])
    };
    let again = sync(&dev);
    assert_eq!(again["update"], false);
    assert_eq!(again["sequence"], 2);

    // A misprovisioned device that trusts another key: the server accepts the release
    // (the fleet's anchor signed it), the device's bootloader refuses it, the signed
    // failure report halts the campaign.
    build(&d, "o1", 1, "other");
    let sha4 = build(&d, "v4", 4, "author");
    let stray = device(&d, "dev-8", "other", "o1");
    let release = srv.release(&d, "v4", &sha4);
    assert_eq!(sync(&stray)["update"], false, "enrolled, nothing yet");
    let campaign = srv.campaign("v4", &release, &["dev-8"]);
    let o = run(&["device", "sync", "--dir", &stray, "--server", &srv.url]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("failure reported"), "{}", stderr(&o));
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "paused", "{c}");
    assert_eq!(c["counts"]["failed"], 1);
    assert_eq!(
        json(&["device", "state", "--dir", &stray, "--json"])["counter"],
        1
    );
}
