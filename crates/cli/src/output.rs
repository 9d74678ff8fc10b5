//! Writing output files all-or-nothing: the bytes go to a temporary file in the target's
//! directory, are synced, and the temporary file is renamed over the target. A failure at
//! any point (bad input found late, disk full, Ctrl-C) leaves the old file or no file,
//! never a half-written envelope or key.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Who may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0644 (before the umask): envelopes, public keys.
    Public,
    /// 0600: private keys.
    Secret,
}

/// A temporary file that is removed unless committed.
struct Temp {
    path: PathBuf,
    committed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the temporary name is ours alone.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically with `mode`.
///
/// # Errors
/// The target's directory is missing or not writable, or the write fails.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> anyhow::Result<()> {
    let ctx = || path.display().to_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut temp = None;
    for attempt in 0..100u32 {
        let candidate = dir.join(format!(
            ".{}.{}.{attempt}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        match open_new(&candidate, mode) {
            Ok(f) => {
                temp = Some((
                    Temp {
                        path: candidate,
                        committed: false,
                    },
                    f,
                ));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(ctx),
        }
    }
    let (mut temp, mut file) =
        temp.with_context(|| format!("{}: no free temporary name", path.display()))?;
    file.write_all(bytes).with_context(ctx)?;
    file.sync_all().with_context(ctx)?;
    drop(file);
    fs::rename(&temp.path, path).with_context(ctx)?;
    temp.committed = true;
    Ok(())
}

#[cfg(unix)]
fn open_new(path: &Path, mode: Mode) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(match mode {
            Mode::Public => 0o644,
            Mode::Secret => 0o600,
        })
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: Mode) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("suitcase-out-{}-{name}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let d = dir("replace");
        let p = d.join("f.suit");
        write_atomic(&p, b"one", Mode::Public).unwrap();
        write_atomic(&p, b"two", Mode::Public).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.suit"]);
        fs::remove_dir_all(d).ok();
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = dir("mode");
        let p = d.join("k.pem");
        write_atomic(&p, b"secret", Mode::Secret).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::remove_dir_all(d).ok();
    }

    #[test]
    fn missing_directory_is_an_error() {
        let p = Path::new("/nonexistent-suitcase-dir/f.suit");
        assert!(write_atomic(p, b"x", Mode::Public).is_err());
    }
}
