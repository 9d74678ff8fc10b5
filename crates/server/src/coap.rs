//! The device API over CoAP (RFC 7252, UDP): the same resources as `/device/v1/…` over
//! HTTP, calling the same [`State`] methods, plus an observable offer resource (RFC 7641)
//! and block-wise transfer (RFC 7959). docs/server.md §CoAP has the byte-level contract.
//!
//! coap-lite parses and encodes the messages and options; the message layer (piggybacked
//! answers, duplicate detection), Block1/Block2 and the observer list are here because
//! they must be bounded: coap-lite's `BlockHandler` keeps whole responses per client in a
//! cache with no entry limit, and its `BlockValue` stops at 16-bit block numbers (4 MiB at
//! 1024-byte blocks; RFC 7959 allows 20 bits). What is kept per client:
//!
//! | what | bound |
//! |---|---|
//! | observers | [`MAX_OBSERVERS`] in all, [`MAX_OBSERVERS_PER_DEVICE`] per device (the oldest goes) |
//! | Block1 uploads being reassembled | [`MAX_UPLOADS`], each ≤ [`MAX_BODY`], dropped after [`UPLOAD_TTL`] idle |
//! | answers kept for retransmitted requests | [`MAX_REMEMBERED`], for [`EXCHANGE_LIFETIME`] |
//!
//! Block2 keeps nothing: a payload is content-addressed, so block N of it is read from
//! the file when asked for; a computed answer (check-in, self) is computed again for each
//! block and carries an ETag, so a client sees when it changed between blocks.
//!
//! No DTLS or OSCORE: the device token travels in clear, as an option. Envelopes are
//! signed and reports are signed by the device key, so integrity holds end to end; the
//! token only says which device is asking.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, ContentFormat, MessageClass, MessageType, Packet};
use coap_lite::{RequestType as Method, ResponseType as Code};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use crate::device::{CheckIn, Enrol};
use crate::error::ApiError;
use crate::{MAX_BODY, State};

/// The option that carries the device token (its text, as after HTTP's `Bearer `).
/// From the experimental range (RFC 7252 §12.2); critical and unsafe (bits 0 and 1 set):
/// a server or proxy that does not know it must refuse the request, not drop the option.
pub const AUTH_OPTION: u16 = 65003;
/// Block size when the client asks for none (szx 6).
pub const DEFAULT_BLOCK: usize = 1024;
/// Observers at most, in all.
pub const MAX_OBSERVERS: usize = 1024;
/// Observers of one device at most; a new one replaces its oldest.
pub const MAX_OBSERVERS_PER_DEVICE: usize = 2;
/// Block1 uploads being reassembled at most.
pub const MAX_UPLOADS: usize = 64;
/// An upload with no block for this long is dropped.
pub const UPLOAD_TTL: Duration = Duration::from_secs(60);
/// Answers kept for duplicate detection at most.
pub const MAX_REMEMBERED: usize = 4096;
/// How long an answer is kept for a retransmitted request (RFC 7252 §4.8.2).
pub const EXCHANGE_LIFETIME: Duration = Duration::from_secs(247);
/// Requests handled at once.
const IN_FLIGHT: usize = 32;
/// Largest datagram read; larger ones arrive truncated and fail to parse.
const DATAGRAM: usize = 2048;

const JSON: ContentFormat = ContentFormat::ApplicationJSON;
const OCTETS: ContentFormat = ContentFormat::ApplicationOctetStream;

/// A Block1/Block2 option value (RFC 7959 §2.2): number, more flag, size exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The block number (20 bits).
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Size exponent: the block is `2^(szx+4)` bytes, 16 to 1024.
    pub szx: u8,
}

impl Block {
    /// Decodes an option value; `None` when longer than 3 bytes or szx 7 (BERT, which
    /// exists only over TCP).
    pub fn decode(v: &[u8]) -> Option<Block> {
        if v.len() > 3 {
            return None;
        }
        let n = v.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
        let szx = (n & 7) as u8;
        (szx < 7).then_some(Block {
            num: n >> 4,
            more: n & 8 != 0,
            szx,
        })
    }

    /// The option value, in as few bytes as hold it.
    pub fn encode(self) -> Vec<u8> {
        uint((self.num << 4 | u32::from(self.more) << 3 | u32::from(self.szx & 7)).into())
    }

    /// The block size in bytes.
    pub fn size(self) -> usize {
        1 << (self.szx + 4)
    }

    /// Where this block starts.
    fn offset(self) -> u64 {
        u64::from(self.num) * self.size() as u64
    }
}

/// An unsigned option value: big-endian, no leading zero bytes (RFC 7252 §3.2).
pub fn uint(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b.get(skip..).unwrap_or_default().to_vec()
}

/// Reads an unsigned option value of at most 4 bytes.
fn read_uint(v: &[u8]) -> Option<u32> {
    (v.len() <= 4).then(|| v.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
}

/// An answer before it is framed.
struct Reply {
    code: Code,
    body: Vec<u8>,
    format: Option<ContentFormat>,
    options: Vec<(CoapOption, Vec<u8>)>,
}

impl Reply {
    fn new(code: Code) -> Reply {
        Reply {
            code,
            body: Vec::new(),
            format: None,
            options: Vec::new(),
        }
    }

    fn json(code: Code, v: &Value) -> Reply {
        Reply {
            body: v.to_string().into_bytes(),
            format: Some(JSON),
            ..Reply::new(code)
        }
    }

    /// An error: a 4.xx/5.xx code and a one-line diagnostic payload (RFC 7252 §5.5.2).
    fn error(code: Code, message: &str) -> Reply {
        Reply {
            body: message.as_bytes().to_vec(),
            ..Reply::new(code)
        }
    }

    fn with(mut self, option: CoapOption, value: Vec<u8>) -> Reply {
        self.options.push((option, value));
        self
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        let code = match &e {
            ApiError::Unauthenticated => Code::Unauthorized,
            ApiError::Forbidden { .. } => Code::Forbidden,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::BadRequest(_) => Code::BadRequest,
            ApiError::Rejected(_) => Code::UnprocessableEntity,
            ApiError::TooLarge => Code::RequestEntityTooLarge,
            ApiError::Conflict(_) => Code::Conflict,
            ApiError::RangeNotSatisfiable(_) => Code::BadOption,
            ApiError::Database(_) | ApiError::Storage(_) | ApiError::Internal(_) => {
                Code::InternalServerError
            }
        };
        Reply::error(code, &e.public_message())
    }
}

/// The device resources, by path below `device/v1/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Challenge,
    Enrol,
    Myself,
    CheckIn,
    Payload(String),
    Reports,
    Offer,
}

impl Resource {
    fn of(path: &[String]) -> Option<Resource> {
        let rest = match path {
            [d, v, rest @ ..] if d == "device" && v == "v1" => rest,
            _ => return None,
        };
        Some(match rest {
            [e, c] if e == "enrol" && c == "challenge" => Resource::Challenge,
            [e] if e == "enrol" => Resource::Enrol,
            [s] if s == "self" => Resource::Myself,
            [c] if c == "checkin" => Resource::CheckIn,
            [p, sha] if p == "payloads" => Resource::Payload(sha.clone()),
            [r] if r == "reports" => Resource::Reports,
            [o] if o == "offer" => Resource::Offer,
            _ => return None,
        })
    }

    fn method(&self) -> Method {
        match self {
            Resource::Myself | Resource::Payload(_) | Resource::Offer => Method::Get,
            _ => Method::Post,
        }
    }
}

/// Options a request may carry. Any other critical (odd-numbered) option is refused
/// with 4.02, as RFC 7252 §5.4.1 requires; other elective ones are ignored.
const UNDERSTOOD: &[u16] = &[
    3,
    4,
    6,
    7,
    11,
    12,
    14,
    15,
    17,
    23,
    27,
    28,
    60,
    258,
    AUTH_OPTION,
];

struct Observer {
    device: String,
    /// SHA-256 (hex) of the device token it registered with: checked before every
    /// notification, so a revoked or re-enrolled device stops being told anything.
    token_hash: String,
    /// The representation last sent.
    last: Vec<u8>,
    /// The message id of the last notification (a Reset naming it cancels).
    mid: u16,
    since: Instant,
}

struct Upload {
    body: Vec<u8>,
    touched: Instant,
}

/// A request's peer and message id: what a retransmission repeats.
type Exchange = (SocketAddr, u16);

#[derive(Default)]
struct Tables {
    observers: HashMap<(SocketAddr, Vec<u8>), Observer>,
    uploads: HashMap<(SocketAddr, String), Upload>,
    /// Answers by (peer, message id); `None` while the request is being handled.
    remembered: HashMap<Exchange, (Instant, Option<Vec<u8>>)>,
    remembered_order: VecDeque<Exchange>,
    next_mid: u16,
    observe_seq: u32,
}

impl Tables {
    fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    /// The next Observe sequence number (24 bits, RFC 7641 §4.4).
    fn observe_seq(&mut self) -> u32 {
        self.observe_seq = (self.observe_seq + 1) & 0xff_ffff;
        self.observe_seq
    }

    fn remember(&mut self, key: Exchange, answer: Option<Vec<u8>>) {
        let now = Instant::now();
        while let Some(old) = self.remembered_order.front().copied() {
            let expired = self
                .remembered
                .get(&old)
                .is_none_or(|(t, _)| now.duration_since(*t) > EXCHANGE_LIFETIME);
            if !expired && self.remembered_order.len() < MAX_REMEMBERED {
                break;
            }
            self.remembered_order.pop_front();
            self.remembered.remove(&old);
        }
        if self.remembered.insert(key, (now, answer)).is_none() {
            self.remembered_order.push_back(key);
        }
    }
}

/// The CoAP endpoint: turns one datagram into at most one answer, and observers'
/// changed offers into notifications.
pub struct Coap {
    state: State,
    tables: Mutex<Tables>,
}

impl Coap {
    /// An endpoint over `state`.
    pub fn new(state: State) -> Coap {
        Coap {
            state,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// How many observers are registered.
    pub async fn observers(&self) -> usize {
        self.tables.lock().await.observers.len()
    }

    /// Handles one datagram from `peer`; returns the datagram to send back, if any.
    /// Never panics on any input: a message that does not parse gets a Reset when it is
    /// a readable Confirmable header (RFC 7252 §4.2), and is dropped otherwise.
    pub async fn handle(&self, peer: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
        let Ok(req) = Packet::from_bytes(datagram) else {
            return reset_for(datagram);
        };
        if req.header.get_version() != 1 {
            return None;
        }
        let mid = req.header.message_id;
        let kind = req.header.get_type();
        match (kind, req.header.code) {
            (MessageType::Reset, _) => {
                self.tables
                    .lock()
                    .await
                    .observers
                    .retain(|(p, _), o| !(*p == peer && o.mid == mid));
                return None;
            }
            (MessageType::Acknowledgement, _) => return None,
            // Request codes 0.08–0.31 are methods nobody defined yet: 4.05 below.
            (_, MessageClass::Request(_) | MessageClass::Reserved(0x08..=0x1f)) => {}
            // An empty Confirmable is a ping (§4.3); a Confirmable response is not ours.
            (MessageType::Confirmable, _) => return reset_for(datagram),
            _ => return None,
        }
        let key = (peer, mid);
        // Only POSTs are remembered: they change state (an enrolment uses its nonce, a
        // report is recorded), so a retransmission must get the first answer, not run
        // again. A GET is safe to run again (RFC 7252 §4.5), and remembering the many
        // Block2 GETs of a download would push other devices' POST answers out of the
        // bounded table within their retransmission window.
        let remembered = req.header.code == MessageClass::Request(Method::Post);
        if remembered {
            let mut t = self.tables.lock().await;
            if let Some((_, answer)) = t.remembered.get(&key) {
                // The same answer again; none while the first copy is still being handled
                // (the client sends again later and gets it then).
                return answer.clone();
            }
            t.remember(key, None);
        }
        let reply = self.respond(peer, &req).await;
        let answer = {
            let mut t = self.tables.lock().await;
            let answer_mid = match kind {
                MessageType::Confirmable => mid,
                _ => t.mid(),
            };
            let answer = frame(&req, answer_mid, reply);
            if remembered {
                t.remember(key, Some(answer.clone()));
            }
            answer
        };
        Some(answer)
    }

    async fn respond(&self, peer: SocketAddr, req: &Packet) -> Reply {
        match self.respond_or_fail(peer, req).await {
            Ok(r) | Err(r) => r,
        }
    }

    async fn respond_or_fail(&self, peer: SocketAddr, req: &Packet) -> Result<Reply, Reply> {
        for (&number, _) in req.options() {
            if number % 2 == 1 && !UNDERSTOOD.contains(&number) {
                return Err(Reply::error(
                    Code::BadOption,
                    &format!("option {number} is not understood"),
                ));
            }
        }
        let path = path_of(req)?;
        let resource =
            Resource::of(&path).ok_or_else(|| Reply::error(Code::NotFound, "no such resource"))?;
        let method = match req.header.code {
            MessageClass::Request(m) => Some(m),
            _ => None,
        };
        if method != Some(resource.method()) {
            return Err(Reply::error(Code::MethodNotAllowed, "method not allowed"));
        }
        let block2 = match req.get_first_option(CoapOption::Block2) {
            None => None,
            Some(v) => Some(Block::decode(v).ok_or_else(|| {
                Reply::error(Code::BadOption, "Block2: szx 0 to 6, at most 3 bytes")
            })?),
        };
        let device = match resource {
            Resource::Challenge | Resource::Enrol => None,
            _ => {
                let token = req
                    .get_first_option(CoapOption::Unknown(AUTH_OPTION))
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .unwrap_or_default();
                Some(self.state.device_for_token(token).await?.id)
            }
        };
        let body = if resource.method() == Method::Post {
            match self.assemble(peer, req, &path.join("/")).await? {
                Assembled::Whole(b) => b,
                Assembled::More(b) => {
                    return Ok(Reply::new(Code::Continue).with(CoapOption::Block1, b.encode()));
                }
            }
        } else {
            Vec::new()
        };
        let echo = req.get_first_option(CoapOption::Block1).cloned();
        let mut reply = match (resource, device) {
            (Resource::Challenge, _) => {
                let nonce = self.state.challenge().await?;
                Reply::json(Code::Changed, &json!({ "nonce": nonce }))
            }
            (Resource::Enrol, _) => {
                let e: Enrol = parse_json(&body)?;
                let id = e.id.clone();
                let token = self.state.enrol(e).await?;
                Reply::json(Code::Created, &json!({ "id": id, "token": token }))
            }
            (Resource::Myself, Some(d)) => {
                Reply::json(Code::Content, &self.state.device(&d).await?.json())
            }
            (Resource::CheckIn, Some(d)) => {
                let c: CheckIn = parse_json(&body)?;
                match self.state.check_in(&d, c).await? {
                    None => Reply::new(Code::Changed),
                    Some(o) => Reply::json(
                        Code::Changed,
                        &json!({
                            "campaign": o.campaign_id,
                            "release": o.release_id,
                            "nonce": o.nonce,
                            "envelope": crate::sha256_hex(&o.envelope),
                            "envelope_size": o.envelope.len(),
                            "payloads": o.payloads.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                        }),
                    ),
                }
            }
            (Resource::Payload(sha), Some(_)) => return self.payload(&sha, block2).await,
            (Resource::Reports, Some(d)) => {
                let success = self.state.report(&d, &body).await?;
                Reply::json(
                    Code::Changed,
                    &json!({ "recorded": true, "success": success }),
                )
            }
            (Resource::Offer, Some(d)) => return self.observe(peer, req, &d).await,
            (_, None) => return Err(ApiError::Unauthenticated.into()),
        };
        if let Some(b1) = echo {
            reply.options.push((CoapOption::Block1, b1));
        }
        slice(reply, block2)
    }

    /// The request body, reassembled from Block1 blocks (RFC 7959 §2.5) when it came
    /// in several: blocks must arrive in order; block 0 starts over.
    async fn assemble(
        &self,
        peer: SocketAddr,
        req: &Packet,
        path: &str,
    ) -> Result<Assembled, Reply> {
        let too_large = || {
            Reply::error(Code::RequestEntityTooLarge, "request body too large")
                .with(CoapOption::Size1, uint(MAX_BODY as u64))
        };
        let Some(v) = req.get_first_option(CoapOption::Block1) else {
            if req.payload.len() > MAX_BODY {
                return Err(too_large());
            }
            return Ok(Assembled::Whole(req.payload.clone()));
        };
        let b = Block::decode(v)
            .ok_or_else(|| Reply::error(Code::BadOption, "Block1: szx 0 to 6, at most 3 bytes"))?;
        if b.more && req.payload.len() != b.size() {
            return Err(Reply::error(
                Code::BadRequest,
                "Block1: every block but the last carries exactly its size",
            ));
        }
        let offset = b.offset();
        if offset + req.payload.len() as u64 > MAX_BODY as u64 {
            return Err(too_large());
        }
        let key = (peer, path.to_string());
        let mut t = self.tables.lock().await;
        let now = Instant::now();
        t.uploads
            .retain(|_, u| now.duration_since(u.touched) < UPLOAD_TTL);
        if b.num == 0 {
            if !t.uploads.contains_key(&key) && t.uploads.len() >= MAX_UPLOADS {
                return Err(Reply::error(
                    Code::ServiceUnavailable,
                    "too many block-wise uploads under way",
                )
                .with(CoapOption::MaxAge, uint(UPLOAD_TTL.as_secs())));
            }
            t.uploads.insert(
                key.clone(),
                Upload {
                    body: Vec::new(),
                    touched: now,
                },
            );
        }
        let incomplete =
            || Reply::error(Code::RequestEntityIncomplete, "Block1: a block is missing");
        let upload = t.uploads.get_mut(&key).ok_or_else(incomplete)?;
        if upload.body.len() as u64 != offset {
            t.uploads.remove(&key);
            return Err(incomplete());
        }
        upload.body.extend_from_slice(&req.payload);
        upload.touched = now;
        if b.more {
            return Ok(Assembled::More(b));
        }
        Ok(Assembled::Whole(
            t.uploads.remove(&key).map(|u| u.body).unwrap_or_default(),
        ))
    }

    /// Block `want` of payload `sha` (the first 1024 bytes when no Block2 was asked
    /// for), read from its file.
    async fn payload(&self, sha: &str, want: Option<Block>) -> Result<Reply, Reply> {
        let b = want.unwrap_or(Block {
            num: 0,
            more: false,
            szx: 6,
        });
        let (bytes, len) = self
            .state
            .inner
            .blobs
            .range(sha, b.offset(), b.size())
            .await?;
        // Strong validator: the digest names the bytes, so its first 8 bytes will do.
        let etag = hex::decode(sha.get(..16).unwrap_or_default()).unwrap_or_default();
        let reply = Reply {
            body: bytes,
            format: Some(OCTETS),
            ..Reply::new(Code::Content)
        }
        .with(CoapOption::ETag, etag);
        window(reply, b, len, want.is_some())
    }

    /// `device/v1/offer`: the device's current offer; Observe 0 registers for
    /// notifications when it changes, Observe 1 cancels (RFC 7641 §3.1, §3.6).
    async fn observe(&self, peer: SocketAddr, req: &Packet, device: &str) -> Result<Reply, Reply> {
        let body = self.offer_body(device).await?;
        // The token `handle` authenticated, read as `State::device_for_token` reads it.
        let token = req
            .get_first_option(CoapOption::Unknown(AUTH_OPTION))
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or_default()
            .trim();
        let token_hash = crate::sha256_hex(token.as_bytes());
        let observe = req
            .get_first_option(CoapOption::Observe)
            .and_then(|v| read_uint(v));
        let key = (peer, req.get_token().to_vec());
        let mut t = self.tables.lock().await;
        let mut reply = Reply {
            body: body.clone(),
            format: Some(JSON),
            ..Reply::new(Code::Content)
        };
        match observe {
            Some(0) => {
                let mine: Vec<_> = t
                    .observers
                    .iter()
                    .filter(|(k, o)| o.device == device && **k != key)
                    .map(|(k, o)| (o.since, k.clone()))
                    .collect();
                if mine.len() >= MAX_OBSERVERS_PER_DEVICE
                    && let Some((_, oldest)) = mine.into_iter().min_by_key(|(s, _)| *s)
                {
                    t.observers.remove(&oldest);
                }
                // Full: answered without Observe, which tells the client it is not
                // registered (RFC 7641 §4.1).
                if t.observers.contains_key(&key) || t.observers.len() < MAX_OBSERVERS {
                    let seq = t.observe_seq();
                    t.observers.insert(
                        key,
                        Observer {
                            device: device.to_string(),
                            token_hash: token_hash.clone(),
                            last: body,
                            mid: 0,
                            since: Instant::now(),
                        },
                    );
                    reply = reply.with(CoapOption::Observe, uint(seq.into()));
                }
            }
            Some(1) => {
                t.observers.remove(&key);
            }
            _ => {}
        }
        Ok(reply)
    }

    async fn offer_body(&self, device: &str) -> Result<Vec<u8>, ApiError> {
        let v = match self.state.offer_view(device).await? {
            Some((campaign, release)) => json!({ "campaign": campaign, "release": release }),
            None => json!({ "campaign": null, "release": null }),
        };
        Ok(v.to_string().into_bytes())
    }

    /// Notifications for the observers whose offer changed since they were last told
    /// (Non-confirmable; a Reset to one cancels the observation). An observer whose
    /// device token no longer holds (revoked, or replaced by a re-enrolment) is dropped
    /// without a word, as its requests would be refused.
    pub async fn notifications(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let watched: Vec<((SocketAddr, Vec<u8>), String, String)> = {
            let t = self.tables.lock().await;
            t.observers
                .iter()
                .map(|(k, o)| (k.clone(), o.device.clone(), o.token_hash.clone()))
                .collect()
        };
        let mut out = Vec::new();
        for (key, device, token_hash) in watched {
            match self.state.device_for_token_hash(token_hash.clone()).await {
                Ok(d) if d.id == device => {}
                Ok(_) | Err(ApiError::Unauthenticated) => {
                    // Only the observation that was checked: the same peer and token may
                    // have registered again meanwhile, with a token that holds.
                    let mut t = self.tables.lock().await;
                    if t.observers
                        .get(&key)
                        .is_some_and(|o| o.token_hash == token_hash)
                    {
                        t.observers.remove(&key);
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, device, "token check for a notification");
                    continue;
                }
            }
            let body = match self.offer_body(&device).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, device, "offer for a notification");
                    continue;
                }
            };
            let mut t = self.tables.lock().await;
            let (mid, seq) = (t.mid(), t.observe_seq());
            let Some(o) = t.observers.get_mut(&key) else {
                continue;
            };
            if o.last == body {
                continue;
            }
            o.last.clone_from(&body);
            o.mid = mid;
            let mut p = Packet::new();
            p.header.set_version(1);
            p.header.set_type(MessageType::NonConfirmable);
            p.header.code = MessageClass::Response(Code::Content);
            p.header.message_id = mid;
            p.set_token(key.1.clone());
            p.add_option(CoapOption::Observe, uint(seq.into()));
            p.set_content_format(JSON);
            p.payload = body;
            if let Ok(d) = p.to_bytes() {
                out.push((key.0, d));
            }
        }
        out
    }
}

enum Assembled {
    Whole(Vec<u8>),
    More(Block),
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("JSON: {e}")))
}

fn path_of(req: &Packet) -> Result<Vec<String>, Reply> {
    req.get_option(CoapOption::UriPath)
        .into_iter()
        .flatten()
        .map(|s| {
            String::from_utf8(s.clone())
                .map_err(|_| Reply::error(Code::BadRequest, "Uri-Path: not UTF-8"))
        })
        .collect()
}

/// Serves block `want` of a computed answer (whole when it fits in one default block
/// and no block was asked for); the ETag names the whole answer, so a client sees a
/// change between blocks.
fn slice(reply: Reply, want: Option<Block>) -> Result<Reply, Reply> {
    if want.is_none() && reply.body.len() <= DEFAULT_BLOCK {
        return Ok(reply);
    }
    let b = want.unwrap_or(Block {
        num: 0,
        more: false,
        szx: 6,
    });
    let len = reply.body.len() as u64;
    let etag = <sha2::Sha256 as sha2::Digest>::digest(&reply.body)
        .get(..8)
        .unwrap_or_default()
        .to_vec();
    let start = usize::try_from(b.offset()).unwrap_or(usize::MAX);
    let body = reply
        .body
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take(b.size())
        .copied()
        .collect();
    window(
        Reply { body, ..reply }.with(CoapOption::ETag, etag),
        b,
        len,
        true,
    )
}

/// Adds Block2 (and Size2 on block 0) to `reply`, which holds the bytes of block `b` of
/// a representation of `len` bytes; a block past the end is 4.02 (RFC 7959 §2.2).
fn window(reply: Reply, b: Block, len: u64, asked: bool) -> Result<Reply, Reply> {
    if b.offset() >= len && !(b.num == 0 && len == 0) {
        return Err(Reply::error(Code::BadOption, "Block2: past the end"));
    }
    let more = b.offset() + (b.size() as u64) < len;
    if !asked && !more {
        return Ok(reply);
    }
    let mut reply = reply.with(CoapOption::Block2, Block { more, ..b }.encode());
    if b.num == 0 {
        reply = reply.with(CoapOption::Size2, uint(len));
    }
    Ok(reply)
}

/// The datagram answering `req`: piggybacked on the ACK of a Confirmable request (same
/// message id), a Non-confirmable answer otherwise; the request's token echoed.
fn frame(req: &Packet, mid: u16, reply: Reply) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.set_type(match req.header.get_type() {
        MessageType::Confirmable => MessageType::Acknowledgement,
        _ => MessageType::NonConfirmable,
    });
    p.header.code = MessageClass::Response(reply.code);
    p.header.message_id = mid;
    p.set_token(req.get_token().to_vec());
    if let Some(f) = reply.format {
        p.set_content_format(f);
    }
    for (o, v) in reply.options {
        p.add_option(o, v);
    }
    p.payload = reply.body;
    match p.to_bytes() {
        Ok(b) => b,
        Err(e) => {
            // Only a body larger than a datagram can fail here, and bodies are sliced.
            tracing::error!(error = ?e, "CoAP answer does not encode");
            p.clear_all_options();
            p.payload = b"internal error".to_vec();
            p.header.code = MessageClass::Response(Code::InternalServerError);
            p.to_bytes().unwrap_or_default()
        }
    }
}

/// A Reset for a Confirmable message whose 4-byte header is readable (RFC 7252 §4.2:
/// a Confirmable message that cannot be processed is rejected); nothing otherwise.
fn reset_for(datagram: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = datagram.split_first()?;
    let mid = rest.get(1..3)?;
    // Version 1 (bits 7-6 = 01), type Confirmable (bits 5-4 = 00).
    (first >> 4 == 0b0100).then(|| vec![0x70, 0x00, mid[0], mid[1]])
}

/// Serves the device API over CoAP on `socket` until `shutdown` completes: requests are
/// handled (at most a few at once), and observers are notified whenever campaigns change.
///
/// # Errors
/// When the socket's address cannot be read.
pub async fn serve_coap(
    state: State,
    socket: UdpSocket,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    tracing::info!(addr = %socket.local_addr()?, "CoAP listening");
    let mut offers = state.watch_offers();
    let coap = Arc::new(Coap::new(state));
    let socket = Arc::new(socket);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut buf = vec![0u8; DATAGRAM];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = socket.recv_from(&mut buf) => {
                let (n, peer) = match r {
                    Ok(x) => x,
                    // E.g. an ICMP port unreachable from an earlier send: keep serving.
                    Err(e) => {
                        tracing::debug!(error = %e, "CoAP receive");
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return Ok(());
                };
                let datagram = buf.get(..n).unwrap_or_default().to_vec();
                let (coap, socket) = (coap.clone(), socket.clone());
                tokio::spawn(async move {
                    if let Some(answer) = coap.handle(peer, &datagram).await
                        && let Err(e) = socket.send_to(&answer, peer).await
                    {
                        tracing::debug!(error = %e, %peer, "CoAP send");
                    }
                    drop(slot);
                });
            }
            r = offers.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                for (peer, d) in coap.notifications().await {
                    if let Err(e) = socket.send_to(&d, peer).await {
                        tracing::debug!(error = %e, %peer, "CoAP notification");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_values_round_trip_with_20_bit_numbers() {
        for b in [
            Block {
                num: 0,
                more: false,
                szx: 0,
            },
            Block {
                num: 1,
                more: true,
                szx: 6,
            },
            Block {
                num: 4095,
                more: true,
                szx: 2,
            },
            Block {
                num: 0xf_ffff,
                more: false,
                szx: 6,
            },
        ] {
            assert_eq!(Block::decode(&b.encode()), Some(b));
        }
        assert_eq!(Block::decode(&[]).unwrap().size(), 16);
        assert_eq!(Block::decode(&[0x0e]).map(Block::size), Some(1024));
        assert_eq!(Block::decode(&[0x07]), None, "szx 7 is BERT, TCP only");
        assert_eq!(Block::decode(&[1, 2, 3, 4]), None);
    }

    #[test]
    fn resources_by_path() {
        let p = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(Resource::of(&p("device/v1/offer")), Some(Resource::Offer));
        assert_eq!(
            Resource::of(&p("device/v1/payloads/ab")),
            Some(Resource::Payload("ab".into()))
        );
        assert_eq!(Resource::of(&p("device/v2/offer")), None);
        assert_eq!(Resource::of(&[]), None);
    }

    #[test]
    fn a_confirmable_garbage_message_is_reset() {
        assert_eq!(
            reset_for(&[0x40, 0x01, 0x12, 0x34]),
            Some(vec![0x70, 0, 0x12, 0x34])
        );
        assert_eq!(
            reset_for(&[0x50, 0x01, 0x12, 0x34]),
            None,
            "non-confirmable"
        );
        assert_eq!(reset_for(&[0x40, 0x01]), None);
    }

    #[test]
    fn slices_carry_block2_size2_and_an_etag() {
        let r = Reply {
            body: (0..=255u8).cycle().take(3000).collect(),
            ..Reply::new(Code::Content)
        };
        let want = Block {
            num: 2,
            more: false,
            szx: 6,
        };
        let Ok(s) = slice(r, Some(want)) else {
            panic!()
        };
        assert_eq!(s.body.len(), 3000 - 2048);
        let b2 = s
            .options
            .iter()
            .find(|(o, _)| *o == CoapOption::Block2)
            .unwrap();
        assert_eq!(Block::decode(&b2.1), Some(want));
        let past = Reply {
            body: vec![0; 10],
            ..Reply::new(Code::Content)
        };
        assert!(
            slice(
                past,
                Some(Block {
                    num: 1,
                    more: false,
                    szx: 0
                })
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_option_value_decodes_as_a_block_or_none(v in proptest::collection::vec(proptest::num::u8::ANY, 0..5)) {
            if let Some(b) = Block::decode(&v) {
                proptest::prop_assert!(b.size() >= 16 && b.size() <= 1024);
                proptest::prop_assert_eq!(Block::decode(&b.encode()), Some(b));
            }
        }
    }
}
