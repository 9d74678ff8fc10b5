//! The simulated device's CoAP client (RFC 7252 over UDP) for `device sync --server
//! coap://HOST:PORT`: Confirmable requests retransmitted with exponential back-off,
//! Block2 downloads, Block1 uploads (RFC 7959), the device token in the server's token
//! option. Blocking, like the HTTP client: one device, one exchange at a time.
//!
//! coap-lite frames the messages; the block option values are the server crate's (20-bit
//! block numbers), so both ends agree on the bytes.

use std::io::Read;
use std::net::{ToSocketAddrs as _, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use coap_lite::{CoapOption, ContentFormat, MessageClass, MessageType, Packet, RequestType};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use suitcase_server::coap::{AUTH_OPTION, Block};

use super::sync::{Offer, Transport};

/// RFC 7252 §4.8 defaults: the first wait, and how often a request is sent again.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_RETRANSMIT: u32 = 4;
/// Block size exponent asked for: 1024-byte blocks.
const SZX: u8 = 6;

/// A CoAP client of one server.
pub struct CoapClient {
    socket: UdpSocket,
    mid: std::cell::Cell<u16>,
    token: std::cell::Cell<u32>,
}

impl CoapClient {
    /// A client of `authority` (`HOST:PORT`, what follows `coap://`).
    ///
    /// # Errors
    /// The name does not resolve, or no socket can be bound.
    pub fn connect(authority: &str) -> anyhow::Result<CoapClient> {
        let authority = authority.trim_end_matches('/');
        let addr = authority
            .to_socket_addrs()
            .with_context(|| format!("coap://{authority}"))?
            .next()
            .ok_or_else(|| anyhow!("coap://{authority}: no address"))?;
        let socket = UdpSocket::bind(if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })?;
        socket.connect(addr)?;
        // Random first message id and token: a restarted device does not reuse ids the
        // server still remembers as answered (RFC 7252 §4.4).
        let mut seed = [0u8; 6];
        getrandom::fill(&mut seed).map_err(|e| anyhow!("random: {e}"))?;
        Ok(CoapClient {
            socket,
            mid: u16::from_be_bytes([seed[0], seed[1]]).into(),
            token: u32::from_be_bytes([seed[2], seed[3], seed[4], seed[5]]).into(),
        })
    }

    fn next_mid(&self) -> u16 {
        self.mid.set(self.mid.get().wrapping_add(1));
        self.mid.get()
    }

    fn next_token(&self) -> Vec<u8> {
        self.token.set(self.token.get().wrapping_add(1));
        self.token.get().to_be_bytes().to_vec()
    }

    /// One Confirmable request and its answer (piggybacked, or separate after an empty
    /// ACK).
    fn exchange(
        &self,
        method: RequestType,
        path: &str,
        token: Option<&str>,
        options: &[(CoapOption, Vec<u8>)],
        payload: &[u8],
    ) -> anyhow::Result<Packet> {
        let mut req = Packet::new();
        req.header.set_type(MessageType::Confirmable);
        req.header.code = MessageClass::Request(method);
        let mid = self.next_mid();
        req.header.message_id = mid;
        let tk = self.next_token();
        req.set_token(tk.clone());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            req.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
        }
        if let Some(t) = token {
            req.add_option(CoapOption::Unknown(AUTH_OPTION), t.as_bytes().to_vec());
        }
        for (o, v) in options {
            req.add_option(*o, v.clone());
        }
        req.payload = payload.to_vec();
        let bytes = req.to_bytes().map_err(|e| anyhow!("{path}: {e:?}"))?;
        let mut wait = ACK_TIMEOUT;
        let mut acked = false;
        let mut buf = vec![0u8; 2048];
        for _ in 0..=MAX_RETRANSMIT {
            if !acked {
                self.socket.send(&bytes).with_context(|| path.to_string())?;
            }
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                self.socket
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
                let n = match self.socket.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e) => return Err(e).with_context(|| path.to_string()),
                };
                let Ok(p) = Packet::from_bytes(buf.get(..n).unwrap_or_default()) else {
                    continue;
                };
                let kind = p.header.get_type();
                if kind == MessageType::Reset && p.header.message_id == mid {
                    bail!("{path}: the server reset the request");
                }
                if kind == MessageType::Acknowledgement && p.header.message_id == mid {
                    if p.header.code == MessageClass::Empty {
                        // A separate answer follows: wait for it, do not resend.
                        acked = true;
                        continue;
                    }
                    if p.get_token() == tk.as_slice() {
                        return Ok(p);
                    }
                }
                if matches!(kind, MessageType::Confirmable | MessageType::NonConfirmable)
                    && p.get_token() == tk.as_slice()
                    && matches!(p.header.code, MessageClass::Response(_))
                {
                    if kind == MessageType::Confirmable {
                        let mut ack = Packet::new();
                        ack.header.set_type(MessageType::Acknowledgement);
                        ack.header.code = MessageClass::Empty;
                        ack.header.message_id = p.header.message_id;
                        if let Ok(b) = ack.to_bytes() {
                            let _ = self.socket.send(&b);
                        }
                    }
                    return Ok(p);
                }
            }
            wait *= 2;
        }
        bail!("{path}: no answer from the server")
    }

    /// POSTs `body`, in Block1 blocks when it does not fit one.
    fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> anyhow::Result<Packet> {
        let size = 1usize << (SZX + 4);
        let json = vec![(CoapOption::ContentFormat, content_format(path))];
        if body.len() <= size {
            return self.exchange(RequestType::Post, path, token, &json, body);
        }
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let more = i + 1 < chunks.len();
            let block = Block {
                num: u32::try_from(i)?,
                more,
                szx: SZX,
            };
            let mut options = json.clone();
            options.push((CoapOption::Block1, block.encode()));
            let r = self.exchange(RequestType::Post, path, token, &options, chunk)?;
            let go_on = r.header.code == MessageClass::Response(coap_lite::ResponseType::Continue);
            if !more || !go_on {
                return Ok(r);
            }
        }
        bail!("{path}: empty upload")
    }

    /// The whole representation at `path`, in Block2 blocks, at most `limit` bytes.
    fn get_all(&self, path: &str, token: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        BlockReader::new(self, path, token, 0)
            .take(limit + 1)
            .read_to_end(&mut out)
            .with_context(|| path.to_string())?;
        if out.len() as u64 > limit {
            bail!("{path}: larger than {limit} bytes");
        }
        Ok(out)
    }
}

/// The content format a POST carries: reports are COSE_Sign1, the rest JSON.
fn content_format(path: &str) -> Vec<u8> {
    let f = if path.ends_with("reports") {
        ContentFormat::ApplicationCoseSign1
    } else {
        ContentFormat::ApplicationJSON
    };
    suitcase_server::coap::uint(usize::from(f) as u64)
}

/// The server's answer when it is a success (2.xx), its code and reason otherwise.
fn success(what: &str, p: Packet) -> anyhow::Result<Packet> {
    match p.header.code {
        MessageClass::Response(r) if !r.is_error() => Ok(p),
        code => bail!(
            "{what}: server answered {code} {}",
            String::from_utf8_lossy(&p.payload)
        ),
    }
}

fn json_of(what: &str, p: &Packet) -> anyhow::Result<Value> {
    serde_json::from_slice(&p.payload).with_context(|| format!("{what}: answer"))
}

/// Reads a representation block by block (Block2), from the block holding `from` on.
struct BlockReader<'a> {
    client: &'a CoapClient,
    path: String,
    token: String,
    /// Offset of the next block to ask for.
    next: u64,
    szx: u8,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    etag: Option<Vec<u8>>,
}

impl<'a> BlockReader<'a> {
    fn new(client: &'a CoapClient, path: &str, token: &str, from: u64) -> BlockReader<'a> {
        let size = 1u64 << (SZX + 4);
        BlockReader {
            client,
            path: path.to_string(),
            token: token.to_string(),
            next: from / size * size,
            szx: SZX,
            buf: Vec::new(),
            pos: 0,
            done: false,
            etag: None,
        }
    }

    /// Where the bytes this reader yields start.
    fn start(&self) -> u64 {
        self.next
    }

    fn fetch(&mut self) -> anyhow::Result<()> {
        let size = 1u64 << (self.szx + 4);
        let want = Block {
            num: u32::try_from(self.next / size)?,
            more: false,
            szx: self.szx,
        };
        let r = self.client.exchange(
            RequestType::Get,
            &self.path,
            Some(&self.token),
            &[(CoapOption::Block2, want.encode())],
            &[],
        )?;
        let r = success(&self.path, r)?;
        let etag = r.get_first_option(CoapOption::ETag).cloned();
        if self.etag.is_some() && etag != self.etag {
            bail!(
                "{}: the representation changed during the download",
                self.path
            );
        }
        self.etag = etag;
        match r
            .get_first_option(CoapOption::Block2)
            .and_then(|v| Block::decode(v))
        {
            // The server may answer with smaller blocks than asked (RFC 7959 §2.3).
            Some(b) => {
                if b.num != want.num && b.szx >= want.szx {
                    bail!(
                        "{}: the server sent block {} for {}",
                        self.path,
                        b.num,
                        want.num
                    );
                }
                self.szx = b.szx;
                self.next = u64::from(b.num) * b.size() as u64 + r.payload.len() as u64;
                self.done = !b.more;
            }
            None if want.num == 0 => self.done = true,
            None => bail!("{}: the server ignored Block2", self.path),
        }
        self.buf = r.payload;
        self.pos = 0;
        Ok(())
    }
}

impl Read for BlockReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.fetch()
                .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        }
        let chunk = self.buf.get(self.pos..).unwrap_or_default();
        let n = chunk.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(chunk.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

impl Transport for CoapClient {
    fn challenge(&self) -> anyhow::Result<String> {
        let r = success("enrol", self.post("device/v1/enrol/challenge", None, &[])?)?;
        Ok(json_of("enrol", &r)?["nonce"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    fn enrol(&self, body: &Value) -> anyhow::Result<Value> {
        let r = self.post("device/v1/enrol", None, body.to_string().as_bytes())?;
        json_of("enrol", &success("enrol", r)?)
    }

    fn check_in(&self, token: &str, sequence: u64) -> anyhow::Result<Option<Offer>> {
        let body = json!({ "sequence_number": sequence }).to_string();
        let r = success(
            "check-in",
            self.post("device/v1/checkin", Some(token), body.as_bytes())?,
        )?;
        if r.payload.is_empty() {
            return Ok(None);
        }
        let v = json_of("check-in", &r)?;
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let sha = text("envelope");
        // The envelope is fetched like a payload: block-wise, by its digest.
        let envelope = self.get_all(
            &format!("device/v1/payloads/{sha}"),
            token,
            super::sync::MAX_ENVELOPE,
        )?;
        if hex::encode(Sha256::digest(&envelope)) != sha {
            bail!("check-in: the envelope does not hash to its name");
        }
        Ok(Some(Offer {
            nonce: hex::decode(text("nonce")).context("check-in: nonce")?,
            payloads: v["payloads"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect(),
            envelope,
        }))
    }

    fn fetch<'a>(
        &'a self,
        token: &'a str,
        sha: &str,
        from: u64,
    ) -> anyhow::Result<(u64, Box<dyn Read + 'a>)> {
        let reader = BlockReader::new(self, &format!("device/v1/payloads/{sha}"), token, from);
        Ok((reader.start(), Box::new(reader)))
    }

    fn report(&self, token: &str, signed: &[u8]) -> anyhow::Result<()> {
        success(
            "report",
            self.post("device/v1/reports", Some(token), signed)?,
        )?;
        Ok(())
    }
}
