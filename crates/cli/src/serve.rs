//! `suitcase serve --data DIR --trust-anchor PEM … [--listen ADDR] [--coap ADDR]
//! [--database URL]`: the fleet update server (crate `suitcase-server`, see
//! docs/server.md); `--coap` adds the device API over CoAP (UDP) beside HTTP.
//!
//! At the first start (no tokens in the database) one bearer token per role (author,
//! operator, viewer) is made, printed once, and written to `DIR/tokens.txt` (mode 0600);
//! only their hashes are stored. `--create-token ROLE:NAME` adds one more and exits.
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use suitcase_server::{Config, Role, State};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory: the SQLite database (by default), blobs, the first tokens.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also serve the device API over CoAP (UDP) on this address, e.g. 127.0.0.1:5683
    /// (port 0: any free port, printed). Plain CoAP: no DTLS or OSCORE.
    #[arg(long, value_name = "ADDR")]
    pub coap: Option<SocketAddr>,
    /// Database URL instead of DIR/suitcase.db (`sqlite://…` or `postgres://…`).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// A fleet trust anchor: PEM public key, P-256 or Ed25519 (repeatable). Releases
    /// must authenticate against these exactly as on a device.
    #[arg(
        long = "trust-anchor",
        value_name = "PEM",
        required_unless_present = "trust_store"
    )]
    pub trust_anchors: Vec<PathBuf>,
    /// The fleet's signed trust store (`suitcase trust`): releases are checked with it
    /// as the devices holding it check them (roles, thresholds, algorithms), and a
    /// release carrying a newer store adopts it when an operator approves it. Needed
    /// only on the first start: the database keeps the adopted stores.
    #[arg(long, value_name = "FILE")]
    pub trust_store: Option<PathBuf>,
    /// How many trust anchors must have signed a release; default: every one.
    #[arg(long, value_name = "K")]
    pub require: Option<u8>,
    /// Largest envelope or payload upload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = suitcase_server::DEFAULT_MAX_UPLOAD)]
    pub max_upload: usize,
    /// Create a token `ROLE:NAME` (role author, operator or viewer), print it, and exit.
    #[arg(long, value_name = "ROLE:NAME")]
    pub create_token: Option<String>,
    /// Print JSON Lines (`token`, `listening`) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let mut trust_anchors = Vec::new();
    for path in &args.trust_anchors {
        let pem = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let key = suitcase_cose::verifying_key_from_pem(&pem)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        trust_anchors.push(key);
    }
    Ok(Config {
        data: args.data.clone(),
        database: args.database.clone(),
        trust_anchors,
        require: args.require,
        trust_store: match &args.trust_store {
            Some(p) => Some(std::fs::read(p).with_context(|| p.display().to_string())?),
            None => None,
        },
        max_upload: args.max_upload,
    })
}

fn parse_token_spec(spec: &str) -> anyhow::Result<(Role, &str)> {
    let (role, name) = spec
        .split_once(':')
        .ok_or_else(|| anyhow!("--create-token: expected ROLE:NAME"))?;
    let role = Role::parse(role)
        .ok_or_else(|| anyhow!("--create-token: unknown role {role} (author, operator, viewer)"))?;
    if name.is_empty() {
        bail!("--create-token: the name is empty");
    }
    Ok((role, name))
}

/// Writes the first tokens where only the owner can read them.
fn write_tokens(dir: &Path, tokens: &[(Role, String)]) -> anyhow::Result<PathBuf> {
    let path = dir.join("tokens.txt");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&path)
        .with_context(|| path.display().to_string())?;
    for (role, token) in tokens {
        writeln!(f, "{} {token}", role.name())?;
    }
    f.sync_all()?;
    Ok(path)
}

/// Runs the command.
///
/// # Errors
/// Bad arguments, an unusable data directory or database, a port in use.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let token_spec = args
        .create_token
        .as_deref()
        .map(parse_token_spec)
        .transpose()?;
    let config = config(args)?;
    // RUST_LOG filters; the default shows requests and campaign transitions.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let state = State::open(config).await?;
        if let Some((role, name)) = token_spec {
            let token = state.create_token(role, name).await?;
            let line = json!({"type": "token", "role": role.name(), "name": name, "token": token});
            writeln!(out, "{}", if args.json { line.to_string() } else { format!("{} {token}", role.name()) })?;
            return Ok(());
        }
        let tokens = state.bootstrap_tokens().await?;
        if !tokens.is_empty() {
            let path = write_tokens(&args.data, &tokens)?;
            if !args.json {
                writeln!(out, "serve: first start; tokens (shown once, also in {}):", path.display())?;
            }
            for (role, token) in &tokens {
                if args.json {
                    writeln!(out, "{}", json!({"type": "token", "role": role.name(), "name": role.name(), "token": token}))?;
                } else {
                    writeln!(out, "  {:<8} {token}", role.name())?;
                }
            }
        }
        // Bound before printing, so that port 0 prints the port taken.
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let mut urls = vec![format!("http://{}", listener.local_addr()?)];
        if let Some(addr) = args.coap {
            let socket = tokio::net::UdpSocket::bind(addr)
                .await
                .with_context(|| format!("CoAP on {addr}"))?;
            urls.push(format!("coap://{}", socket.local_addr()?));
            let coap_state = state.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    suitcase_server::serve_coap(coap_state, socket, std::future::pending()).await
                {
                    eprintln!("serve: CoAP endpoint stopped: {e}");
                }
            });
        }
        for url in &urls {
            if args.json {
                writeln!(out, "{}", json!({"type": "listening", "url": url}))?;
            } else {
                writeln!(out, "serve: listening on {url}")?;
            }
        }
        out.flush()?;
        suitcase_server::serve_on(state, listener, std::time::Duration::from_secs(5), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .with_context(|| format!("serve on {}", args.listen))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_specs_parse() {
        assert_eq!(parse_token_spec("viewer:ci").unwrap(), (Role::Viewer, "ci"));
        assert!(parse_token_spec("root:ci").is_err());
        assert!(parse_token_spec("viewer").is_err());
        assert!(parse_token_spec("viewer:").is_err());
    }
}
