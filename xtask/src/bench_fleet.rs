//! `cargo xtask bench-fleet`: the fleet server under load on loopback, in one run.
//!
//! - check-ins: `crates/server/examples/fleet_load.rs` (release build) enrols N devices
//!   over HTTP, then `wrk` (a separate process, one thread) sends check-ins from C
//!   connections, each request with the next device's token, for D seconds; check-ins/s
//!   and p50/p99 latency from wrk's latency distribution. Once on SQLite (a file in a
//!   temporary directory, WAL, `synchronous = FULL`), once on PostgreSQL (a throwaway
//!   cluster with PostgreSQL's durable defaults, see [`postgres::Durability::Durable`]).
//! - payloads: the same `wrk` downloads one 16 MiB payload over C/4 connections from the
//!   server and from nginx serving the server's very blob file statically (sendfile), on
//!   loopback; MB/s of each and the ratio.
//!
//! Not a test: the figures depend on the machine and on what else runs; it fails only
//! when something could not run or a response was an error.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::{self, Cluster, Durability};
use crate::process::{self, Failure, TempDir, command};
use crate::setup;

/// The payload every download fetches.
const PAYLOAD_BYTES: usize = 16 << 20;

/// wrk script: every request is the next device's check-in (tokens from the file given
/// after `--`), so the server sees N distinct devices, not one device N times.
const CHECKIN_LUA: &str = r#"
local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
end
function request()
  i = i + 1
  local token = tokens[(i % #tokens) + 1]
  return wrk.format("POST", "/device/v1/checkin",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" },
    '{"sequence_number":1}')
end
"#;

/// How hard to push.
pub struct Load {
    /// Devices enrolled before the check-ins.
    pub devices: usize,
    /// Seconds each wrk run lasts.
    pub seconds: u64,
    /// Concurrent check-in connections (payloads use a quarter of them, at least 2).
    pub connections: usize,
}

/// What wrk measured.
struct Wrk {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

/// `cargo xtask bench-fleet`.
pub fn run(load: &Load) -> Result<(), Failure> {
    setup::apt_ensure(&["postgresql", "nginx", "wrk"])?;
    process::cargo(&[
        "build",
        "--release",
        "-p",
        "suitcase-server",
        "--example",
        "fleet_load",
    ])?;
    let example = crate::root().join("target/release/examples/fleet_load");
    let work = TempDir::new("bench")?;
    let script = work.path().join("checkin.lua");
    write(&script, CHECKIN_LUA)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let wrk_version = wrk_version();
    println!("bench-fleet: {cores} cores, {wrk_version}");

    println!("\n==> SQLite: {} devices", load.devices);
    let sqlite = Server::start(&example, &work.path().join("sqlite"), load.devices, None)?;
    let sqlite_checkin = checkins(&sqlite, &script, load)?;
    println!(
        "\n==> payload: server vs nginx, {} MiB",
        PAYLOAD_BYTES >> 20
    );
    let downloads = (load.connections / 4).max(2);
    let server_dl = wrk(
        &format!("{}/device/v1/payloads/{}", sqlite.url, sqlite.sha),
        &[
            "-H",
            &format!("Authorization: Bearer {}", sqlite.first_token()?),
        ],
        downloads,
        load.seconds,
    )?;
    let nginx = Nginx::start(&work.path().join("nginx"), &sqlite.blob)?;
    let nginx_dl = wrk(
        &format!("{}/{}", nginx.url, sqlite.sha),
        &[],
        downloads,
        load.seconds,
    )?;
    drop(nginx);
    drop(sqlite);

    println!("\n==> PostgreSQL: {} devices", load.devices);
    let cluster = Cluster::start(Durability::Durable)?;
    println!("bench-fleet: {}", cluster.version);
    let pg = Server::start(
        &example,
        &work.path().join("postgres"),
        load.devices,
        Some(format!("{}/postgres", cluster.url)),
    )?;
    let pg_checkin = checkins(&pg, &script, load)?;
    drop(pg);
    drop(cluster);

    let mb = |w: &Wrk| w.requests_per_s * PAYLOAD_BYTES as f64 / 1e6;
    println!(
        "\n==> summary ({} devices, {} connections, {} s each, {cores} cores shared with wrk)",
        load.devices, load.connections, load.seconds
    );
    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>10}",
        "check-ins", "per second", "p50 ms", "p99 ms", "requests"
    );
    for (name, w) in [("SQLite", &sqlite_checkin), ("PostgreSQL", &pg_checkin)] {
        println!(
            "{name:<34} {:>12.0} {:>10.2} {:>10.2} {:>10}",
            w.requests_per_s, w.p50_ms, w.p99_ms, w.requests
        );
    }
    println!(
        "PostgreSQL / SQLite check-ins/s: {:.2}",
        pg_checkin.requests_per_s / sqlite_checkin.requests_per_s
    );
    println!(
        "{:<34} {:>12} {:>10}",
        format!("payload ({} MiB, {downloads} conns)", PAYLOAD_BYTES >> 20),
        "MB/s",
        "p99 ms"
    );
    for (name, w) in [("server", &server_dl), ("nginx (sendfile)", &nginx_dl)] {
        println!("{name:<34} {:>12.0} {:>10.1}", mb(w), w.p99_ms);
    }
    println!("server / nginx: {:.2}", mb(&server_dl) / mb(&nginx_dl));
    println!(
        "goal (issue #7): >= 20000 check-ins/s with p99 < 20 ms: SQLite {}, PostgreSQL {}",
        verdict(&sqlite_checkin),
        verdict(&pg_checkin)
    );
    Ok(())
}

fn verdict(w: &Wrk) -> &'static str {
    if w.requests_per_s >= 20_000.0 && w.p99_ms < 20.0 {
        "met"
    } else {
        "not met"
    }
}

/// wrk 4.1 prints its version (then its usage) with `-v` and exits 1.
fn wrk_version() -> String {
    Command::new("wrk")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?;
            Some(
                first
                    .split(" Copyright")
                    .next()
                    .unwrap_or(first)
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_default()
}

fn checkins(server: &Server, script: &Path, load: &Load) -> Result<Wrk, Failure> {
    let script = script.display().to_string();
    let tokens = server.tokens.display().to_string();
    let w = wrk_with(
        &format!("{}/device/v1/checkin", server.url),
        &["-s", &script],
        &["--", &tokens],
        load.connections,
        load.seconds,
    )?;
    Ok(w)
}

fn wrk(url: &str, extra: &[&str], connections: usize, seconds: u64) -> Result<Wrk, Failure> {
    wrk_with(url, extra, &[], connections, seconds)
}

/// Runs wrk (one thread: the other core is the server's) and reads its report.
fn wrk_with(
    url: &str,
    extra: &[&str],
    script_args: &[&str],
    connections: usize,
    seconds: u64,
) -> Result<Wrk, Failure> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
    ])
    .args(extra)
    .arg(url)
    .args(script_args);
    let out = process::run_tee(&mut cmd, None)?;
    let w = parse_wrk(&out).ok_or_else(|| Failure(format!("cannot read wrk's report:\n{out}")))?;
    if w.errors > 0 {
        return Err(Failure(format!(
            "{} of {} responses were errors or sockets failed",
            w.errors, w.requests
        )));
    }
    Ok(w)
}

/// Reads wrk's `--latency` report (see `parse_wrk_report` in the tests for its shape).
fn parse_wrk(out: &str) -> Option<Wrk> {
    let mut w = Wrk {
        requests_per_s: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        requests: 0,
        errors: 0,
    };
    let mut seen = (false, false, false);
    for line in out.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => {
                w.requests_per_s = v.parse().ok()?;
                seen.0 = true;
            }
            (Some("50%"), Some(v)) => {
                w.p50_ms = millis(v)?;
                seen.1 = true;
            }
            (Some("99%"), Some(v)) => {
                w.p99_ms = millis(v)?;
                seen.2 = true;
            }
            (Some(n), Some("requests")) => w.requests = n.parse().ok()?,
            (Some("Non-2xx"), _) => w.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            (Some("Socket"), Some("errors:")) => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                w.errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (seen == (true, true, true)).then_some(w)
}

/// wrk's durations (`812.00us`, `3.21ms`, `1.02s`, `2.00m`) in milliseconds.
fn millis(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// A child process killed (by its own pid) and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `fleet_load` example, ready: devices enrolled, payload uploaded.
struct Server {
    _child: Killed,
    url: String,
    tokens: PathBuf,
    sha: String,
    blob: PathBuf,
}

impl Server {
    fn start(
        example: &Path,
        dir: &Path,
        devices: usize,
        database: Option<String>,
    ) -> Result<Server, Failure> {
        let mut cmd = Command::new(example);
        cmd.arg(dir)
            .arg(devices.to_string())
            .arg(PAYLOAD_BYTES.to_string())
            .args(database)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let line = process::display(&cmd);
        println!("$ {line}");
        let started = Instant::now();
        let mut child = Killed(
            cmd.spawn()
                .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?,
        );
        let stdout = child
            .0
            .stdout
            .take()
            .ok_or_else(|| Failure("no stdout".into()))?;
        let mut ready = String::new();
        BufReader::new(stdout)
            .read_line(&mut ready)
            .map_err(|e| Failure(format!("reading `{line}`: {e}")))?;
        let words: Vec<&str> = ready.split_whitespace().collect();
        let ["ready", url, tokens, sha, blob] = words.as_slice() else {
            return Err(Failure(format!("`{line}` did not get ready: {ready:?}")));
        };
        println!(
            "bench-fleet: server ready in {:.1} s at {url}",
            started.elapsed().as_secs_f64()
        );
        Ok(Server {
            url: (*url).to_owned(),
            tokens: PathBuf::from(tokens),
            sha: (*sha).to_owned(),
            blob: PathBuf::from(blob),
            _child: child,
        })
    }

    fn first_token(&self) -> Result<String, Failure> {
        std::fs::read_to_string(&self.tokens)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
            .ok_or_else(|| Failure(format!("no token in {}", self.tokens.display())))
    }
}

/// nginx serving one directory statically on a free loopback port, in the foreground
/// (`daemon off`), with every path of its own in `dir`.
struct Nginx {
    child: Child,
    url: String,
}

impl Drop for Nginx {
    /// SIGTERM (nginx's fast shutdown), by the master's own pid: the master stops its
    /// workers. A SIGKILL would leave the workers running and listening, orphaned.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let started = Instant::now();
        while termed && started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(dir: &Path, blob: &Path) -> Result<Nginx, Failure> {
        std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
        let root = blob
            .parent()
            .ok_or_else(|| Failure(format!("{} has no directory", blob.display())))?;
        let port = postgres::free_port()?;
        let d = dir.display();
        // Workers: one per core (as the server's tokio runtime); sendfile as nginx is
        // usually deployed for static files; no access log (the server keeps none either).
        let conf = format!(
            "daemon off;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            root = root.display()
        );
        let conf_path = dir.join("nginx.conf");
        write(&conf_path, &conf)?;
        let mut cmd = command("nginx");
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null());
        let line = process::display(&cmd);
        println!("$ {line}");
        let child = cmd
            .spawn()
            .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?;
        // From here on, Drop stops it whatever happens.
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let version = nginx_version();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(Failure(format!("nginx did not listen on {port}: {log}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("bench-fleet: {version} on 127.0.0.1:{port}");
        Ok(nginx)
    }
}

/// `nginx -v` prints on stderr.
fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_wrk_report() {
        let out = "Running 10s test @ http://127.0.0.1:1/device/v1/checkin
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    1.02ms  20.11ms   80.00%
    Req/Sec    20.0k     1.2k    22.1k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.50ms
     90%    4.10ms
     99%    1.20s
  200000 requests in 10.00s, 20.00MB read
  Non-2xx or 3xx responses: 5
Requests/sec:  19999.00
Transfer/sec:      2.00MB
";
        let w = parse_wrk(out).unwrap();
        assert_eq!(w.requests_per_s, 19999.0);
        assert_eq!(w.p50_ms, 0.812);
        assert_eq!(w.p99_ms, 1200.0);
        assert_eq!(w.requests, 200_000);
        assert_eq!(w.errors, 5);
        assert!(parse_wrk("garbage").is_none());
    }
}
