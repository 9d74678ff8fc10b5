//! The real `curl` against the server: a download cut part-way (curl killed mid-transfer)
//! is resumed with `curl -C -`, which sends `Range: bytes=N-`; the server answers 206 and
//! the joined file hashes to the payload's name. A stale `If-Range` gets the whole file.
//!
//! `curl` is a Debian package `cargo xtask setup` installs; a machine without it fails
//! here rather than skipping, so the demonstration cannot silently not happen.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// Large enough that a rate-limited curl is certainly killed mid-transfer.
const PAYLOAD: usize = 8 << 20;
/// curl's `--limit-rate` for the download that is cut: the whole would take 4 s.
const SLOW: &str = "2M";
/// Bytes on disk after which the first curl is killed.
const CUT_AFTER: u64 = 256 * 1024;

/// Runs curl off the runtime's threads (the server shares them) and returns its output.
async fn curl(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("curl runs (Debian package `curl`, installed by `cargo xtask setup`)")
    })
    .await
    .unwrap()
}

fn file_sha(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap())
}

/// A server holding an 8 MiB payload and a device allowed to fetch it; returns the
/// fleet, the payload's URL, the device's `Authorization` header and the digest.
async fn served_payload() -> (Fleet, String, String, String) {
    let f = Fleet::start_with(Arc::new(tempfile::tempdir().unwrap()), 2 * PAYLOAD).await;
    let payload = suitcase_testkit::image(5, PAYLOAD);
    let sha = sha256(&payload);
    assert!(f.put_payload(&f.author, &sha, payload).await.is_success());
    let d = f.enrol("dev-curl", 1, json!({})).await;
    let url = format!("{}/device/v1/payloads/{sha}", f.url);
    let auth = format!("Authorization: Bearer {}", d.token);
    (f, url, auth, sha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_resumes_a_cut_download_with_range() {
    let (_f, url, auth, sha) = served_payload().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("payload.bin");

    // 1. A slow download, killed (SIGKILL, by its own pid) once some bytes are on disk.
    let mut first = Command::new("curl")
        .args(["-sS", "--limit-rate", SLOW, "-H", &auth, "-o"])
        .arg(&out)
        .arg(&url)
        .stdin(Stdio::null())
        .spawn()
        .expect("curl runs (Debian package `curl`, installed by `cargo xtask setup`)");
    let started = Instant::now();
    loop {
        let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        if len >= CUT_AFTER {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "curl wrote {len} bytes in 30 s"
        );
        assert!(first.try_wait().unwrap().is_none(), "curl ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let partial = std::fs::metadata(&out).unwrap().len();
    assert!(
        partial >= CUT_AFTER && partial < PAYLOAD as u64,
        "the first download must be cut: {partial} of {PAYLOAD} bytes"
    );

    // 2. `curl -C -` continues from the file's length: a Range request, answered 206.
    let resumed = curl(vec![
        "-sS".into(),
        "-v".into(),
        "-C".into(),
        "-".into(),
        "-H".into(),
        auth.clone(),
        "-o".into(),
        out.display().to_string(),
        "-w".into(),
        "%{http_code}".into(),
        url.clone(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&resumed.stdout), "206");
    assert!(
        stderr.contains(&format!("> Range: bytes={partial}-")),
        "curl sent no Range from {partial}: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "< Content-Range: bytes {partial}-{}/{PAYLOAD}",
            PAYLOAD - 1
        )) || stderr.contains(&format!(
            "< content-range: bytes {partial}-{}/{PAYLOAD}",
            PAYLOAD - 1
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), PAYLOAD as u64);
    assert_eq!(file_sha(&out), sha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_if_range_stale_etag_gets_the_whole_file() {
    let (_f, url, auth, sha) = served_payload().await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = |if_range: String, name: &str| {
        let path = dir.path().join(name);
        let args = vec![
            "-sS".into(),
            "-H".into(),
            auth.clone(),
            "-H".into(),
            "Range: bytes=1000-".into(),
            "-H".into(),
            format!("If-Range: {if_range}"),
            "-o".into(),
            path.display().to_string(),
            "-w".into(),
            "%{http_code}".into(),
            url.clone(),
        ];
        (path, curl(args))
    };

    // An ETag from before the payload changed: resuming would splice two files, so the
    // server sends the whole current one.
    let (stale, out) = fetch("\"0000\"".into(), "stale.bin");
    let out = out.await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(file_sha(&stale), sha);

    // The current ETag (the digest): the range is honoured.
    let (tail, out) = fetch(format!("\"{sha}\""), "tail.bin");
    let out = out.await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    assert_eq!(
        std::fs::metadata(&tail).unwrap().len(),
        PAYLOAD as u64 - 1000
    );
}
