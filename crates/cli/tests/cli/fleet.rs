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
        Self::launch(d, port, false).0
    }

    /// A server with the device API over CoAP too, on a port it picks; returns the
    /// server and its `coap://` URL (read from its `listening` lines).
    fn start_coap(d: &Dir) -> (Server, String) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (srv, coap) = Self::launch(d, port, true);
        (srv, coap.unwrap())
    }

    fn launch(d: &Dir, port: u16, coap: bool) -> (Server, Option<String>) {
        let url = format!("http://127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--data",
                &d.path("srv"),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--trust-anchor", &d.path("author.pub.pem")])
            .args(if coap {
                &["--coap", "127.0.0.1:0", "--json"][..]
            } else {
                &[]
            })
            .stdout(if coap { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let coap_url = child.stdout.take().map(|out| {
            use std::io::BufRead as _;
            std::io::BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
                .find_map(|v| {
                    v["url"]
                        .as_str()
                        .filter(|u| u.starts_with("coap://"))
                        .map(str::to_string)
                })
                .expect("a coap:// listening line")
        });
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
        (
            Server {
                child,
                port,
                url,
                tokens,
                http,
            },
            coap_url,
        )
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
        self.phased(name, release, devices, &[100])
    }
}

/// Leaves in device `dev`'s cache the first `keep` bytes of image `NAME.bin` (digest
/// `sha`), as a download cut last time would.
fn cut_download(d: &Dir, dev: &str, name: &str, sha: &str, keep: usize) {
    let cache = d.0.join(dev).join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let image = std::fs::read(d.0.join(format!("{name}.bin"))).unwrap();
    std::fs::write(cache.join(format!("{sha}.part")), &image[..keep]).unwrap();
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
    cut_download(&d, "dev-7", "v2", &sha2, 1000);
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

impl Server {
    /// A static group of `devices` and a running campaign of `release` over it in
    /// `phases`; returns the campaign's path.
    fn phased<S: serde::Serialize>(
        &self,
        name: &str,
        release: &Value,
        devices: &[S],
        phases: &[u8],
    ) -> String {
        let group = json!({ "name": name, "devices": devices })
            .to_string()
            .into_bytes();
        let (s, group) = self.call("operator", "POST", "/api/v1/groups", Some(group));
        assert_eq!(s, 201, "{group}");
        let campaign = json!({ "name": name, "release_id": release["id"], "group_id": group["id"],
            "phases": phases, "success_percent": 100, "max_failures": 0, "device_timeout_secs": 600 });
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

/// The JSON Lines of a `device sync --fleet` run; the last is the summary.
fn fleet_round(srv: &Server, base: &str, n: &str) -> Vec<Value> {
    let out = ok(&[
        "device", "sync", "--dir", base, "--fleet", n, "--jobs", "3", "--server", &srv.url,
        "--json",
    ]);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_fleet_of_devices_updates_in_phases() {
    let d = Dir::new("fleet-many");
    ok(&["keygen", "--alg", "es256", "--out", &d.path("author.pem")]);
    build(&d, "v1", 1, "author");
    let sha2 = build(&d, "v2", 2, "author");
    let base = device(&d, "line", "author", "v1");
    let srv = Server::start(&d);

    // Five copies of the factory device enrol, each with its own key; nothing to do yet.
    let first = fleet_round(&srv, &base, "5");
    let summary = first.last().unwrap();
    assert_eq!(summary["type"], "fleet", "{summary}");
    assert_eq!(summary["up_to_date"], 5, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    let ids: Vec<String> = (0..5).map(|i| format!("line-{i:03}")).collect();
    let (_, devices) = srv.call("viewer", "GET", "/api/v1/devices", None);
    let listed: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let keys: std::collections::BTreeSet<Vec<u8>> = (0..5)
        .map(|i| std::fs::read(d.0.join(format!("line/device-{i:03}/report-key.pem"))).unwrap())
        .collect();
    assert_eq!(keys.len(), 5, "every device has its own report key");

    let release = srv.release(&d, "v2", &sha2);
    let campaign = srv.phased("line", &release, &ids, &[40, 100]);
    let mut updated = 0;
    for _ in 0..4 {
        let round = fleet_round(&srv, &base, "5");
        updated += round.last().unwrap()["updated"].as_u64().unwrap();
        if srv.call("viewer", "GET", &campaign, None).1["state"] == "completed" {
            break;
        }
    }
    assert_eq!(updated, 5);
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["counts"]["succeeded"], 5, "{c}");
    for i in 0..5 {
        let dev = d.path(&format!("line/device-{i:03}"));
        assert_eq!(
            json(&["device", "state", "--dir", &dev, "--json"])["counter"],
            2
        );
    }
    // The golden device itself was never updated: it is the factory image.
    assert_eq!(
        json(&["device", "state", "--dir", &base, "--json"])["counter"],
        1
    );
}

/// Debian's Chromium, when installed (`cargo xtask setup` installs it).
fn chromium() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// The DOM of `url` after its script ran, from headless Chromium.
fn dump_dom(chromium: &std::path::Path, url: &str, profile: &std::path::Path) -> String {
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_dashboard_shows_the_fleet_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: chromium is not installed (`cargo xtask setup` installs it)");
        return;
    };
    let d = Dir::new("fleet-dashboard");
    ok(&["keygen", "--alg", "es256", "--out", &d.path("author.pem")]);
    build(&d, "v1", 1, "author");
    let sha2 = build(&d, "v2", 2, "author");
    let devs: Vec<String> = ["dash-a", "dash-b", "dash-c", "dash-d"]
        .iter()
        .map(|n| device(&d, n, "author", "v1"))
        .collect();
    let srv = Server::start(&d);
    let sync = |dev: &str| run(&["device", "sync", "--dir", dev, "--server", &srv.url]);
    for dev in &devs {
        assert_eq!(code(&sync(dev)), 0);
    }
    let release = srv.release(&d, "v2", &sha2);
    let ids: Vec<String> = ["dash-a", "dash-b", "dash-c", "dash-d"]
        .map(String::from)
        .to_vec();
    let campaign = srv.phased("dashboard ramp", &release, &ids, &[25, 100]);
    // Phase 1 (one device) finishes, phase 2 starts: the devices after it in this pass
    // update too, those before it got nothing yet.
    for dev in &devs {
        assert_eq!(code(&sync(dev)), 0);
    }

    // The summary the page reads needs a token; the page itself holds no data.
    let r = srv
        .http
        .get(format!("{}/api/v1/dashboard", srv.url))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let profile = d.0.join("chromium-profile");
    let page = dump_dom(&chromium, &format!("{}/dashboard", srv.url), &profile);
    assert!(page.contains("no token"), "{page}");
    assert!(!page.contains("dash-a"), "{page}");

    let viewer = srv.token("viewer");
    let page = dump_dom(
        &chromium,
        &format!("{}/dashboard#token={viewer}", srv.url),
        &profile,
    );
    // Releases: the uploaded one, approved.
    assert!(page.contains(release["id"].as_str().unwrap()), "{page}");
    // The campaign with its phases' progress.
    assert!(page.contains("dashboard ramp"), "{page}");
    assert!(
        page.contains("1 (25 %)") && page.contains("2 (100 %)"),
        "{page}"
    );
    let phase_rows: Vec<&str> = page.split("<tr class=\"phase\">").skip(1).collect();
    assert_eq!(phase_rows.len(), 2, "{page}");
    assert!(phase_rows[0].contains("<td>done</td>"), "{page}");
    // Device rows: every device, its version and its last report.
    let device_rows: Vec<&str> = page.split("<tr class=\"device\">").skip(1).collect();
    assert_eq!(device_rows.len(), 4, "{page}");
    let updated = device_rows
        .iter()
        .filter(|r| r.contains("(sequence 2)") && r.contains("success at"))
        .count();
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(
        updated as u64,
        c["counts"]["succeeded"].as_u64().unwrap(),
        "{page}"
    );
    assert!(updated >= 1, "{page}");
    for id in &ids {
        assert!(page.contains(&format!("<td>{id}</td>")), "{page}");
    }
}

#[test]
fn a_device_and_a_fleet_update_over_coap() {
    let d = Dir::new("fleet-coap");
    ok(&["keygen", "--alg", "es256", "--out", &d.path("author.pem")]);
    build(&d, "v1", 1, "author");
    let sha2 = build(&d, "v2", 2, "author");
    let dev = device(&d, "dev-c", "author", "v1");
    let base = device(&d, "line", "author", "v1");
    let (srv, coap) = Server::start_coap(&d);
    let release = srv.release(&d, "v2", &sha2);
    let sync = |dev: &str| json(&["device", "sync", "--dir", dev, "--server", &coap, "--json"]);

    // Enrols over CoAP; nothing to do yet.
    let first = sync(&dev);
    assert_eq!(first["update"], false, "{first}");
    let (_, row) = srv.call("viewer", "GET", "/api/v1/devices/dev-c", None);
    assert_eq!(row["sequence_number"], 1);

    // A download cut after 1500 bytes: CoAP resumes at the block holding byte 1500 (the
    // second 1024-byte block), so 7000 - 1024 bytes are fetched now.
    let campaign = srv.campaign("v2", &release, &["dev-c"]);
    cut_download(&d, "dev-c", "v2", &sha2, 1500);
    let updated = sync(&dev);
    assert_eq!(updated["update"], true, "{updated}");
    assert_eq!(updated["sequence"], 2);
    assert_eq!(updated["downloaded"], 7000 - 1024);
    assert_eq!(updated["reported"], "success");
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["counts"]["succeeded"], 1);
    let (_, row) = srv.call("viewer", "GET", "/api/v1/devices/dev-c", None);
    assert_eq!(row["sequence_number"], 2);
    assert_eq!(sync(&dev)["update"], false);

    // --fleet over CoAP: two copies enrol, then both update in one round.
    let round = |n: &str| -> Value {
        let out = ok(&[
            "device", "sync", "--dir", &base, "--fleet", n, "--server", &coap, "--json",
        ]);
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    };
    assert_eq!(round("2")["up_to_date"], 2);
    let campaign = srv.campaign("line", &release, &["line-000", "line-001"]);
    let summary = round("2");
    assert_eq!(summary["updated"], 2, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    let (_, c) = srv.call("viewer", "GET", &campaign, None);
    assert_eq!(c["state"], "completed", "{c}");
}
