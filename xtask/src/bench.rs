//! `cargo xtask bench`: the host benchmarks of the processor (criterion) and the
//! firmware's device counts, then one table that puts them side by side.
//!
//! - host: `cargo bench -p suitcase-processor --bench processor` (example 3's verify,
//!   authenticate, authenticate + update; a 4 MiB payload through SHA-256 alone and
//!   through the install pipeline); the ratios use criterion's point estimates;
//! - device: `cargo xtask firmware` (QEMU instruction counts, exact and repeatable):
//!   example 3's whole update against its COSE verification alone, and the size probe.

use crate::firmware::{self, EXAMPLE3_AUTHENTICATE, EXAMPLE3_FULL, EXAMPLE3_VERIFY};
use crate::process::{self, Failure, command};

/// The criterion benchmarks the table needs, as they are named in `benches/processor.rs`.
const VERIFY: &str = "example3/verify";
const AUTHENTICATE: &str = "example3/authenticate";
const UPDATE: &str = "example3/authenticate+update";
const SHA256: &str = "pipeline/sha256-only";
const INSTALL: &str = "pipeline/install-4MiB";
const ALL: [&str; 5] = [VERIFY, AUTHENTICATE, UPDATE, SHA256, INSTALL];
/// Bytes each pipeline iteration streams.
const PIPELINE_BYTES: f64 = (4 << 20) as f64;

/// `cargo xtask bench [-- criterion args]`.
pub fn run(criterion_args: &[String]) -> Result<(), Failure> {
    println!("==> host: criterion");
    let out = process::run_tee(
        command("cargo")
            .args([
                "bench",
                "-p",
                "suitcase-processor",
                "--bench",
                "processor",
                "--features",
                "encryption",
                "--",
            ])
            .args(criterion_args),
        None,
    )?;
    let host = parse_criterion(&out);

    println!("\n==> device: firmware in QEMU");
    let device = firmware::build_and_measure()?;

    println!("\n==> summary");
    let time = |id: &str| host.iter().find(|(n, _)| n == id).map(|(_, ns)| *ns);
    let instr = |name: &str| device.test(name).map(|t| t.instructions as f64);
    let cell = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let row = |what: &str, h: Option<String>, d: Option<String>| {
        println!("{what:<40} {:>22} {:>22}", cell(h), cell(d));
    };
    row(
        "",
        Some("host (criterion)".into()),
        Some("device (QEMU instr)".into()),
    );
    row(
        "example 3: COSE verify only",
        time(VERIFY).map(human),
        instr(EXAMPLE3_VERIFY).map(count),
    );
    row(
        "example 3: authenticate",
        time(AUTHENTICATE).map(human),
        instr(EXAMPLE3_AUTHENTICATE).map(count),
    );
    row(
        "example 3: authenticate + update",
        time(UPDATE).map(human),
        instr(EXAMPLE3_FULL).map(count),
    );
    let overhead = |v: Option<f64>, f: Option<f64>| Some((f? - v?) / v?);
    let (host_over, device_over) = (
        overhead(time(VERIFY), time(UPDATE)),
        overhead(instr(EXAMPLE3_VERIFY), instr(EXAMPLE3_FULL)),
    );
    row(
        "  (full - verify) / verify",
        host_over.map(|r| format!("{r:.4} ({:+.1} %)", 100.0 * r)),
        device_over.map(|r| format!("{r:.4} ({:+.1} %)", 100.0 * r)),
    );
    row(
        "  full / verify",
        host_over.map(|r| format!("{:.3}", 1.0 + r)),
        device_over.map(|r| format!("{:.3}", 1.0 + r)),
    );
    let gib = |ns: f64| PIPELINE_BYTES / ns * 1e9 / f64::from(1u32 << 30);
    row(
        "pipeline: SHA-256 alone, 4 MiB",
        time(SHA256).map(|ns| format!("{} {:.2} GiB/s", human(ns), gib(ns))),
        None,
    );
    row(
        "pipeline: install (hash + write), 4 MiB",
        time(INSTALL).map(|ns| format!("{} {:.2} GiB/s", human(ns), gib(ns))),
        None,
    );
    row(
        "  install / sha256 throughput",
        time(SHA256)
            .zip(time(INSTALL))
            .map(|(s, i)| format!("{:.3}", s / i)),
        None,
    );
    row(
        "size-probe .text, P-256 only",
        None,
        Some(format!("{} B", count(device.probe_p256.text as f64))),
    );
    row(
        "size-probe .text, all algorithms",
        None,
        Some(format!("{} B", count(device.probe_all.text as f64))),
    );
    if let Some(w) = device.worst_processor_stack() {
        row(
            "worst-case stack, processor tests",
            None,
            Some(format!("{} B", count(w.stack as f64))),
        );
        println!("{:<40} {:>45}", "", format!("({})", w.name));
    }
    Ok(())
}

/// An integer with spaces between thousands: `7 526 520`.
fn count(v: f64) -> String {
    let digits = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `(benchmark id, point estimate in ns)` for every `time:` line of criterion's output.
/// The id is on the same line, or alone on the line before when it is long.
fn parse_criterion(out: &str) -> Vec<(String, f64)> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(id) = ALL.iter().find(|id| {
            line.strip_prefix(**id)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        }) {
            current = Some((*id).to_owned());
        }
        let Some((_, values)) = line.split_once("time:") else {
            continue;
        };
        let inner = values
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .collect::<Vec<_>>();
        // [low unit estimate unit high unit]
        if let (Some(id), [_, _, value, unit, _, _]) = (current.take(), inner.as_slice())
            && let (Ok(v), Some(scale)) = (value.parse::<f64>(), unit_ns(unit))
        {
            found.push((id, v * scale));
        }
    }
    found
}

fn unit_ns(unit: &str) -> Option<f64> {
    Some(match unit {
        "ps" => 1e-3,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    })
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_criterion;

    #[test]
    fn criterion_lines() {
        let out = "\
example3/verify         time:   [41.000 µs 41.500 µs 42.000 µs]
example3/authenticate+update
                        time:   [50.0 µs 52.25 µs 53.0 µs]
                        change: [-1.0% +0.5% +2.0%] (p = 0.50 > 0.05)
pipeline/install-4MiB   time:   [2.0000 ms 2.5000 ms 3.0000 ms]
                        thrpt:  [1.3 GiB/s 1.5 GiB/s 1.9 GiB/s]
";
        let got = parse_criterion(out);
        assert_eq!(
            got,
            vec![
                ("example3/verify".to_owned(), 41_500.0),
                ("example3/authenticate+update".to_owned(), 52_250.0),
                ("pipeline/install-4MiB".to_owned(), 2_500_000.0),
            ]
        );
    }
}
