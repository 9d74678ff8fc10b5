//! Part 3 of the demo: the fleet story on loopback. The fleet server (the
//! `suitcase-server` library, SQLite in a temporary directory) runs in this process on
//! 127.0.0.1:0; 50 simulated devices (each its own flash simulator, report key and
//! token) do the very round of `suitcase device sync --fleet` ([`sync_fleet`]) against
//! it, several at a time: v2 rolled out in phases 10 % → 50 % → 100 % with one device
//! losing power in the middle of its swap and finishing after the restart, then a bad
//! v3 whose self-test fails on the devices, reverted on each, which halts its campaign
//! by itself before it leaves the first phase.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, anyhow, ensure};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use suitcase_testkit::image;

use crate::device::sync::{Outcome, Round};
use crate::device::{Device, SELF_TEST_FAILS, fleet};
use crate::keys::{self, KeyAlg};
use crate::output::{self, Mode};

/// Devices in the fleet.
pub const DEVICES: usize = 50;
/// Devices syncing at once.
const JOBS: usize = 8;
/// Sector size × sectors per slot of the fleet's devices (small: 50 of them).
const GEOMETRY: &str = "1024x8";
/// Rounds before a rollout is given up.
const MAX_ROUNDS: usize = 8;

/// What the fleet steps share.
pub struct Fleet {
    tmp: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server's address.
    pub url: String,
    tokens: Vec<(String, String)>,
    http: ureq::Agent,
    key: Option<keys::PrivateKey>,
    v2: Option<String>,
    /// The device whose power was cut: id, (operation, of).
    pub cut: Option<(String, u64, u64)>,
    /// Draws a bar per round on a terminal.
    pub bars: Option<indicatif::MultiProgress>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn class_ids() -> (String, String) {
    let vendor = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"example.com");
    let class = uuid::Uuid::new_v5(&vendor, b"thermostat-v2");
    (vendor.to_string(), class.to_string())
}

fn fleet_image(v: u64) -> Vec<u8> {
    let mut img = image(0x7000 + v, 3000 + 200 * v as usize);
    if v == 3 {
        // The bad release: it installs and boots, and its own self-test fails.
        img[1000..1000 + SELF_TEST_FAILS.len()].copy_from_slice(SELF_TEST_FAILS);
    }
    img
}

impl Fleet {
    /// A fleet in a new temporary directory (nothing runs yet).
    ///
    /// # Errors
    /// The temporary directory cannot be made.
    pub fn new() -> anyhow::Result<Fleet> {
        Ok(Fleet {
            tmp: tempfile::Builder::new()
                .prefix("suitcase-fleet-")
                .tempdir()
                .context("temporary directory")?,
            runtime: None,
            stop: None,
            url: String::new(),
            tokens: Vec::new(),
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            key: None,
            v2: None,
            cut: None,
            bars: None,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn token(&self, role: &str) -> anyhow::Result<&str> {
        self.tokens
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, t)| t.as_str())
            .ok_or_else(|| anyhow!("needs the server step"))
    }

    /// A request as `role`; the status and the JSON answer.
    fn call(
        &self,
        role: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token(role)?);
        let mut r = match (method, body) {
            ("GET", _) => self.http.get(url).header("Authorization", auth).call(),
            ("PUT", Some(b)) => self.http.put(url).header("Authorization", auth).send(b),
            (_, Some(b)) => self
                .http
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(b),
            (_, None) => self
                .http
                .post(url)
                .header("Authorization", auth)
                .send_empty(),
        }
        .with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        Ok((status, r.body_mut().read_json().unwrap_or(Value::Null)))
    }

    /// A call that must answer `want`.
    fn expect(
        &self,
        want: u16,
        role: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Value> {
        let (s, v) = self.call(role, method, path, body)?;
        ensure!(
            s == want,
            "{method} {path}: {s} {}",
            v["error"].as_str().unwrap_or_default()
        );
        Ok(v)
    }

    /// Blocks until Ctrl-C while the server keeps serving (`demo --serve`).
    ///
    /// # Errors
    /// No server, or the signal cannot be awaited.
    pub fn serve_until_ctrl_c(&self) -> anyhow::Result<()> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| anyhow!("no fleet server"))?;
        rt.block_on(tokio::signal::ctrl_c()).context("Ctrl-C")
    }

    /// The dashboard's address (with the viewer token in the fragment, never sent).
    pub fn dashboard(&self) -> String {
        let token = self.token("viewer").unwrap_or_default();
        format!("{}/dashboard#token={token}", self.url)
    }

    /// One round of every device, with a bar on a terminal.
    fn round(
        &self,
        label: &str,
        cut: &(dyn Fn(usize) -> bool + Sync),
    ) -> anyhow::Result<Vec<anyhow::Result<Outcome>>> {
        let bar = self.bars.as_ref().map(|m| {
            let b = m.add(indicatif::ProgressBar::new(DEVICES as u64));
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "  {prefix:>12} {bar:30} {pos}/{len} devices",
            ) {
                b.set_style(style);
            }
            b.set_prefix(label.to_string());
            b
        });
        let results = fleet::sync_fleet(
            &self.path("fleet"),
            &self.url,
            DEVICES,
            JOBS,
            cut,
            &|_, _| {
                if let Some(b) = &bar {
                    b.inc(1);
                }
            },
        );
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let results = results?;
        if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
            return Err(anyhow!(
                "a device failed its round: {}",
                crate::one_line(&format!("{e:#}"))
            ));
        }
        Ok(results)
    }

    /// Uploads release `v` (envelope and payload), approves it, and starts a campaign of
    /// it over every device in phases 10/50/100 %; returns the campaign's path.
    fn roll_out(&mut self, v: u64, max_failures: u32) -> anyhow::Result<(String, String)> {
        let img = fleet_image(v);
        let sha = hex::encode(Sha256::digest(&img));
        let dir = self.path("releases");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("app-v{v}.bin")), &img)?;
        let key = self
            .key
            .as_mut()
            .ok_or_else(|| anyhow!("needs the server step"))?;
        let signed = super::story::signed_release(
            &dir,
            v,
            &format!("app-v{v}.bin"),
            &format!("https://fleet.invalid/device/v1/payloads/{sha}"),
            key,
        )?;
        if v == 1 {
            std::fs::write(dir.join("v1.suit"), &signed)?;
            return Ok((String::new(), String::new()));
        }
        let (vendor, class) = class_ids();
        let release = self.expect(
            201,
            "author",
            "POST",
            &format!("/api/v1/releases?name=v{v}&vendor_id={vendor}&class_id={class}"),
            Some(&signed),
        )?;
        self.expect(
            201,
            "author",
            "PUT",
            &format!("/api/v1/payloads/{sha}"),
            Some(&img),
        )?;
        let id = release["id"].as_str().unwrap_or_default().to_string();
        self.expect(
            200,
            "operator",
            "POST",
            &format!("/api/v1/releases/{id}/approve"),
            None,
        )?;
        let group = match self.call("operator", "GET", "/api/v1/groups", None)?.1 {
            Value::Array(g) if !g.is_empty() => g[0]["id"].clone(),
            _ => {
                let base = self.path("fleet");
                let ids: Vec<String> = (0..DEVICES)
                    .map(|i| fleet::member(&base, "fleet", i).1)
                    .collect();
                let body = json!({"name": "thermostats", "devices": ids}).to_string();
                self.expect(
                    201,
                    "operator",
                    "POST",
                    "/api/v1/groups",
                    Some(body.as_bytes()),
                )?["id"]
                    .clone()
            }
        };
        let body = json!({"name": format!("v{v} rollout"), "release_id": id, "group_id": group,
            "phases": [10, 50, 100], "success_percent": 100, "max_failures": max_failures,
            "device_timeout_secs": 600});
        let c = self.expect(
            201,
            "operator",
            "POST",
            "/api/v1/campaigns",
            Some(body.to_string().as_bytes()),
        )?;
        Ok((
            format!("/api/v1/campaigns/{}", c["id"].as_str().unwrap_or_default()),
            id,
        ))
    }

    /// The devices as the dashboard's summary shows them.
    fn summary(&self) -> anyhow::Result<Value> {
        self.expect(200, "viewer", "GET", "/api/v1/dashboard", None)
    }

    /// The device table: id, version, last report.
    ///
    /// # Errors
    /// The server does not answer.
    pub fn table(&self) -> anyhow::Result<Vec<String>> {
        let d = self.summary()?;
        let mut lines = vec![format!(
            "  {:<10} {:<16} {}",
            "device", "version", "last report"
        )];
        for v in d["devices"].as_array().into_iter().flatten() {
            let r = &v["last_report"];
            let report = if r.is_null() {
                "none".to_string()
            } else if r["success"] == true {
                "success".to_string()
            } else {
                format!("failure (SUIT reason {})", r["reason_code"])
            };
            lines.push(format!(
                "  {:<10} {:<16} {report}",
                v["id"].as_str().unwrap_or("?"),
                format!(
                    "{} (seq {})",
                    v["release"].as_str().unwrap_or("v1"),
                    v["sequence_number"]
                ),
            ));
        }
        Ok(lines)
    }
}

fn count(results: &[anyhow::Result<Outcome>], f: impl Fn(&Round) -> bool) -> usize {
    results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|o| f(&o.round)))
        .count()
}

/// Devices the dashboard summary `d` lists on v2.
fn on_v2(d: &Value) -> usize {
    d["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["sequence_number"] == 2)
        .count()
}

/// (r) The fleet server in this process: SQLite in a temporary directory, 127.0.0.1:0.
pub fn server_step(f: &mut Fleet) -> anyhow::Result<String> {
    let key = keys::generate(KeyAlg::Es256, 0)?;
    let public = key.public();
    output::write_atomic(
        &f.path("author.pub.pem"),
        public.to_pem()?.as_bytes(),
        Mode::Public,
    )?;
    let anchor =
        suitcase_cose::verifying_key_from_pem(&public.to_pem()?).map_err(|e| anyhow!("{e}"))?;
    f.key = Some(key);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let config = suitcase_server::Config {
        data: f.path("server"),
        database: None,
        trust_anchors: vec![anchor],
        require: None,
        trust_store: None,
        max_upload: suitcase_server::DEFAULT_MAX_UPLOAD,
    };
    let (state, listener, tokens) = runtime.block_on(async {
        let state = suitcase_server::State::open(config).await?;
        let tokens = state.bootstrap_tokens().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        anyhow::Ok((state, listener, tokens))
    })?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(suitcase_server::serve_on(
        state,
        listener,
        std::time::Duration::from_secs(1),
        async move {
            let _ = stopped.await;
        },
    ));
    f.url = format!("http://{addr}");
    f.tokens = tokens
        .into_iter()
        .map(|(r, t)| (r.name().to_string(), t))
        .collect();
    f.runtime = Some(runtime);
    f.stop = Some(stop);
    Ok(format!(
        "suitcase-server on {} (SQLite in {}), tokens for author, operator, viewer",
        f.url,
        f.path("server").display()
    ))
}

/// (s) 50 devices made from one factory device on v1, each enrolled with its own key.
pub fn enrol_step(f: &mut Fleet) -> anyhow::Result<String> {
    f.roll_out(1, 0)?;
    let base = f.path("fleet");
    let args = super::story::thermostat(&base, f.path("author.pub.pem"), GEOMETRY);
    let mut golden = Device::init(&base, &args)?;
    let rel = f.path("releases");
    golden.provision(
        &std::fs::read(rel.join("v1.suit"))?,
        &std::fs::read(rel.join("app-v1.bin"))?,
    )?;
    let results = f.round("enrol", &|_| false)?;
    let up = count(&results, |r| matches!(r, Round::UpToDate { sequence: 1 }));
    ensure!(up == DEVICES, "{up} of {DEVICES} devices enrolled on v1");
    let listed = f.summary()?["devices"].as_array().map_or(0, Vec::len);
    ensure!(listed == DEVICES, "the server lists {listed} devices");
    Ok(format!(
        "{DEVICES} devices ({GEOMETRY} flash simulators in {}) enrolled, each with its own P-256 report key; all on v1, nothing offered",
        Path::new(&base).display()
    ))
}

/// (t) v2 in phases 10 → 50 → 100 %, one device's power cut in the middle of its swap.
pub fn rollout_step(f: &mut Fleet) -> anyhow::Result<String> {
    let (campaign, release) = f.roll_out(2, 2)?;
    f.v2 = Some(release);
    let cut_done = AtomicBool::new(false);
    let mut per_round = Vec::new();
    for r in 1..=MAX_ROUNDS {
        let phase_before = f.expect(200, "viewer", "GET", &campaign, None)?["phase"]
            .as_i64()
            .unwrap_or(-1)
            + 1;
        // The first device to install v2 once phase 2 runs loses power mid-swap, once.
        let cut = |_| phase_before >= 2 && !cut_done.swap(true, Ordering::Relaxed);
        let results = f.round(&format!("v2 round {r}"), &cut)?;
        for o in results.iter().flatten() {
            if let Round::PowerCut { at, of } = o.round {
                f.cut = Some((o.id.clone(), at, of));
            }
        }
        let updated = count(&results, |r| matches!(r, Round::Updated { .. }));
        // Phase 1 is 5 devices: the first round cannot reach the whole fleet.
        ensure!(
            r > 1 || updated < DEVICES,
            "round 1 updated all {DEVICES} devices"
        );
        let recovered = results
            .iter()
            .flatten()
            .filter(|o| o.recovered.is_some())
            .count();
        per_round.push(format!(
            "round {r} (phase {phase_before}): {updated} updated{}",
            if recovered > 0 {
                format!(", {recovered} recovered")
            } else {
                String::new()
            }
        ));
        let c = f.expect(200, "viewer", "GET", &campaign, None)?;
        if c["state"] == "completed" {
            break;
        }
        ensure!(
            c["state"] == "running",
            "campaign {}: {}",
            c["state"],
            c["reason"]
        );
    }
    let c = f.expect(200, "viewer", "GET", &campaign, None)?;
    ensure!(
        c["state"] == "completed",
        "the campaign is {} after {MAX_ROUNDS} rounds",
        c["state"]
    );
    ensure!(f.cut.is_some(), "no device lost power");
    Ok(format!("campaign completed: {}", per_round.join("; ")))
}

/// (u) The device whose power was cut finished the update after the restart.
pub fn recovered_step(f: &mut Fleet) -> anyhow::Result<String> {
    let (id, at, of) = f
        .cut
        .clone()
        .ok_or_else(|| anyhow!("needs the rollout step"))?;
    let d = f.summary()?;
    let dev = d["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == id.as_str()))
        .ok_or_else(|| anyhow!("{id} is not listed"))?;
    ensure!(
        dev["sequence_number"] == 2,
        "{id} runs sequence {}",
        dev["sequence_number"]
    );
    let on_v2 = on_v2(&d);
    ensure!(on_v2 == DEVICES, "{on_v2} of {DEVICES} devices on v2");
    Ok(format!(
        "{id}: power cut at flash operation {at} of {of} of its swap; at power-on the bootloader finished the swap, the trial passed its self-test, was confirmed and its success reported with the offer's nonce (kept across the cut); {on_v2} of {DEVICES} devices on v2"
    ))
}

/// (v) A bad v3 (its self-test fails on the devices) halts its campaign by itself.
pub fn halt_step(f: &mut Fleet) -> anyhow::Result<String> {
    let (campaign, _) = f.roll_out(3, 1)?;
    let first = f.round("v3 round 1", &|_| false)?;
    let second = f.round("v3 round 2", &|_| false)?;
    let failed = count(&first, |r| {
        matches!(
            r,
            Round::SelfTestFailed {
                running: Some(2),
                ..
            }
        )
    });
    let offered_later = count(&second, |r| !matches!(r, Round::UpToDate { sequence: 2 }));
    let c = f.expect(200, "viewer", "GET", &campaign, None)?;
    ensure!(c["state"] == "paused", "the campaign is {}", c["state"]);
    let reason = c["reason"].as_str().unwrap_or_default().to_string();
    ensure!(reason.starts_with("halted"), "paused: {reason}");
    ensure!(failed >= 2, "{failed} devices failed v3's self-test");
    ensure!(
        offered_later == 0,
        "{offered_later} devices were offered v3 after the halt"
    );
    let d = f.summary()?;
    let cmp = d["campaigns"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| campaign.ends_with(x["id"].as_str().unwrap_or("-")))
        })
        .ok_or_else(|| anyhow!("the campaign is not on the dashboard"))?;
    let beyond: i64 = cmp["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .map(|p| {
            p["offered"].as_i64().unwrap_or(0)
                + p["succeeded"].as_i64().unwrap_or(0)
                + p["failed"].as_i64().unwrap_or(0)
        })
        .sum();
    ensure!(beyond == 0, "{beyond} devices beyond phase 1 received v3");
    let on_v2 = on_v2(&d);
    ensure!(on_v2 == DEVICES, "{on_v2} of {DEVICES} devices on v2");
    Ok(format!(
        "{failed} of {} phase-1 devices failed v3's self-test, reverted to v2 and reported; campaign paused itself (\"{reason}\"); round 2: nothing offered, 0 devices beyond phase 1 received v3; {on_v2} of {DEVICES} on v2",
        cmp["phases"][0]["devices"]
    ))
}
