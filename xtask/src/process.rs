//! Running commands: echo them, stream their output, turn a non-zero exit
//! into a one-line [`Failure`].

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::root;

/// Why a command or step failed, in one line.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command run in the workspace root.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// `cmd` as a shell-like line, for echoing and error messages.
pub fn display(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with inherited output; a non-zero exit is a [`Failure`].
pub fn run(cmd: &mut Command) -> Result<(), Failure> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!("`{line}` failed ({status})")))
    }
}

/// Runs `cargo <args>` in the workspace root.
pub fn cargo(args: &[&str]) -> Result<(), Failure> {
    run(command("cargo").args(args))
}

/// Runs `cmd` quietly and returns its output, or a [`Failure`] if it could
/// not start or exited non-zero.
pub fn output(cmd: &mut Command) -> Result<Output, Failure> {
    let line = display(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?;
    if out.status.success() {
        Ok(out)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        Err(Failure(format!("`{line}` failed ({}): {last}", out.status)))
    }
}

/// Whether `cmd` starts and exits 0 (its output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line `cmd` prints on stdout, if it runs and exits 0.
pub fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Runs `cmd`, echoing its stdout line by line as it comes (stderr is inherited), and
/// returns that stdout; kills it after `limit` if one is given. A non-zero exit or a
/// timeout is a [`Failure`] (the output has been echoed by then).
pub fn run_tee(cmd: &mut Command, limit: Option<Duration>) -> Result<String, Failure> {
    let line = display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("cannot start `{line}`: {e}")))?;
    let stdout = child.stdout.take();
    let reader = thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(stdout?).lines() {
            let l = l.ok()?;
            println!("{l}");
            all.push_str(&l);
            all.push('\n');
        }
        Some(all)
    });
    let started = Instant::now();
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break Ok(()),
            Ok(Some(status)) => break Err(Failure(format!("`{line}` failed ({status})"))),
            Ok(None) if limit.is_some_and(|l| started.elapsed() > l) => {
                // Best effort: the process may exit between the check and the kill.
                let _ = child.kill();
                let _ = child.wait();
                break Err(Failure(format!(
                    "`{line}` timed out after {} s",
                    limit.unwrap_or_default().as_secs()
                )));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(Failure(format!("waiting for `{line}`: {e}"))),
        }
    };
    let output = reader.join().ok().flatten().unwrap_or_default();
    outcome.map(|()| output)
}

/// Whether `path` exists, as a [`Failure`] naming what it is for if not.
pub fn require(path: &Path, what: &str) -> Result<(), Failure> {
    if path.exists() {
        Ok(())
    } else {
        Err(Failure(format!("{what} not found at {}", path.display())))
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `suitcase-WHAT-PID` under the system temp dir, empty.
    pub fn new(what: &str) -> Result<TempDir, Failure> {
        let dir = std::env::temp_dir().join(format!("suitcase-{what}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Failure(format!("removing {}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure(format!("creating {}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
