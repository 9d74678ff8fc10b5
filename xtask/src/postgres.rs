//! A throwaway PostgreSQL cluster owned by xtask: `initdb` into a fresh directory under the
//! system temp dir, `pg_ctl start` on a free loopback port with its unix socket in that
//! directory, stopped and removed when the [`Cluster`] is dropped (also when a step fails
//! or panics). Debian's `postgresql` package provides the binaries under
//! `/usr/lib/postgresql/<major>/bin`; its own cluster (port 5432) is never touched.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then every server command runs
//! as the `postgres` user through `runuser`, and the directory is handed to that user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, Failure, TempDir, command, first_line};

/// Where Debian installs each major version's server binaries.
const DEBIAN_BINARIES: &str = "/usr/lib/postgresql";
/// The superuser `initdb` creates; the only role the tests and the benchmark use.
const SUPERUSER: &str = "postgres";

/// How the cluster trades durability for speed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`: test databases die with the run, so their commits need not reach the
    /// disk (saves seconds on a suite that creates a database per test).
    Throwaway,
    /// PostgreSQL's defaults (fsync, synchronous_commit on): what a benchmark must compare
    /// against SQLite's `synchronous = FULL`.
    Durable,
}

/// A running cluster; stopped and deleted on drop.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// `postgres://postgres@127.0.0.1:PORT` (append `/dbname`).
    pub url: String,
    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
}

impl Cluster {
    /// Creates and starts a cluster; a few seconds.
    pub fn start(durability: Durability) -> Result<Cluster, Failure> {
        let bin = binaries()?;
        let as_postgres = first_line(command("id").arg("-u")).as_deref() == Some("0");
        // Removed after the server stops (fields drop after `Drop::drop`), whatever happens.
        let dir = TempDir::new("pg")?;
        let mut cluster = Cluster {
            dir,
            bin,
            as_postgres,
            url: String::new(),
            version: String::new(),
        };
        if as_postgres {
            process::output(
                Command::new("chown")
                    .arg(format!("{SUPERUSER}:"))
                    .arg(cluster.dir.path()),
            )?;
        }
        cluster.version = first_line(&mut cluster.server_command("postgres", &["--version"]))
            .ok_or_else(|| Failure("`postgres --version` failed".into()))?;
        let data = cluster.dir.path().join("data");
        let log = cluster.dir.path().join("log");
        let data_arg = data.display().to_string();
        process::output(&mut cluster.server_command(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ))?;
        let port = free_port()?;
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            cluster.dir.path().display()
        );
        if durability == Durability::Throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        process::output(&mut cluster.server_command(
            "pg_ctl",
            &[
                "-D",
                &data_arg,
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        ))
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            Failure(format!("{e}\n{log}"))
        })?;
        cluster.url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}");
        Ok(cluster)
    }

    /// `program` from the cluster's version, as the user that owns the cluster.
    fn server_command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // runuser keeps the working directory; postgres must be able to enter it.
        cmd.current_dir(self.dir.path()).args(args);
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let data = self.data().display().to_string();
            // Immediate: the databases are thrown away, no checkpoint is worth waiting for.
            let stopped = process::output(
                &mut self.server_command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]),
            );
            if let Err(e) = stopped {
                eprintln!(
                    "xtask: stopping PostgreSQL in {}: {e}",
                    self.dir.path().display()
                );
            }
        }
    }
}

/// The `bin` directory of the newest PostgreSQL major version Debian installed.
fn binaries() -> Result<PathBuf, Failure> {
    let root = Path::new(DEBIAN_BINARIES);
    let entries = std::fs::read_dir(root).map_err(|e| {
        Failure(format!(
            "{DEBIAN_BINARIES}: {e} (`cargo xtask setup` installs Debian's postgresql)"
        ))
    })?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or_else(|| Failure(format!("no PostgreSQL with initdb under {DEBIAN_BINARIES}")))
}

/// A loopback port nobody listens on now (the kernel's pick; freed at once for the server).
pub fn free_port() -> Result<u16, Failure> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure(format!("no free loopback port: {e}")))
}
