//! The device API over CoAP: a real UDP socket on loopback, messages framed by
//! coap-lite, the same server state the HTTP side of the test fleet uses.

use std::net::SocketAddr;
use std::time::Duration;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use serde_json::{Value, json};
use suitcase_server::coap::{AUTH_OPTION, Block, Coap};
use tokio::net::UdpSocket;

use crate::common::*;

/// A CoAP endpoint on the fleet's state, and a client socket speaking to it.
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
    mid: u16,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request being built.
struct Req {
    method: RequestType,
    path: String,
    token: Option<String>,
    options: Vec<(CoapOption, Vec<u8>)>,
    payload: Vec<u8>,
}

fn req(method: RequestType, path: &str) -> Req {
    Req {
        method,
        path: path.to_string(),
        token: None,
        options: Vec::new(),
        payload: Vec::new(),
    }
}

impl Req {
    /// The request as a Confirmable datagram with message id `mid` (also its token).
    fn encode(&self, mid: u16) -> Vec<u8> {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(self.method);
        p.header.message_id = mid;
        p.set_token(mid.to_be_bytes().to_vec());
        for s in self.path.split('/') {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        if let Some(t) = &self.token {
            p.add_option(CoapOption::Unknown(AUTH_OPTION), t.as_bytes().to_vec());
        }
        for (o, v) in &self.options {
            p.add_option(*o, v.clone());
        }
        p.payload.clone_from(&self.payload);
        p.to_bytes().unwrap()
    }

    fn token(mut self, t: &str) -> Req {
        self.token = Some(t.to_string());
        self
    }
    fn option(mut self, o: CoapOption, v: Vec<u8>) -> Req {
        self.options.push((o, v));
        self
    }
    fn body(mut self, b: &[u8]) -> Req {
        self.payload = b.to_vec();
        self
    }
}

fn code(p: &Packet) -> String {
    p.header.code.to_string()
}

fn block2(p: &Packet) -> Option<Block> {
    p.get_first_option(CoapOption::Block2)
        .and_then(|v| Block::decode(v))
}

impl Peer {
    async fn start(f: &Fleet) -> Peer {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let task = tokio::spawn(suitcase_server::serve_coap(
            f.state.clone(),
            server,
            std::future::pending(),
        ));
        Peer {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server: addr,
            mid: 100,
            task,
        }
    }

    /// Sends a raw datagram.
    async fn send_raw(&self, d: &[u8]) {
        self.socket.send_to(d, self.server).await.unwrap();
    }

    /// The next datagram within `wait`, parsed.
    async fn recv(&self, wait: Duration) -> Option<Packet> {
        let mut buf = vec![0u8; 2048];
        let (n, _) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(Packet::from_bytes(&buf[..n]).unwrap())
    }

    /// A Confirmable request (token = its message id) and its piggybacked answer.
    async fn call(&mut self, r: Req) -> Packet {
        self.mid += 1;
        self.send_raw(&r.encode(self.mid)).await;
        loop {
            let a = self.recv(Duration::from_secs(10)).await.expect("an answer");
            if a.header.message_id == self.mid
                && a.header.get_type() == MessageType::Acknowledgement
            {
                assert_eq!(a.get_token(), self.mid.to_be_bytes());
                return a;
            }
        }
    }

    /// GETs `path` block by block at `szx`; returns the bytes and the number of blocks.
    async fn download(&mut self, path: &str, token: &str, szx: u8) -> (Vec<u8>, u32) {
        let mut out = Vec::new();
        let mut num = 0;
        loop {
            let want = Block {
                num,
                more: false,
                szx,
            };
            let a = self
                .call(
                    req(RequestType::Get, path)
                        .token(token)
                        .option(CoapOption::Block2, want.encode()),
                )
                .await;
            assert_eq!(code(&a), "2.05", "{}", String::from_utf8_lossy(&a.payload));
            let b = block2(&a).expect("Block2 in the answer");
            assert_eq!(
                (b.num, b.szx),
                (num, szx),
                "the server honours the block size"
            );
            out.extend_from_slice(&a.payload);
            num += 1;
            if !b.more {
                return (out, num);
            }
            assert_eq!(a.payload.len(), b.size());
        }
    }

    /// POSTs a check-in body.
    async fn check_in(&mut self, token: &str, body: &str) -> Packet {
        self.call(
            req(RequestType::Post, "device/v1/checkin")
                .token(token)
                .body(body.as_bytes()),
        )
        .await
    }

    /// POSTs `body` in Block1 blocks of `szx`; returns the final answer.
    async fn upload(&mut self, path: &str, token: &str, body: &[u8], szx: u8) -> Packet {
        let size = 1 << (szx + 4);
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        for (i, c) in chunks.iter().enumerate() {
            let more = i + 1 < chunks.len();
            let b = Block {
                num: i as u32,
                more,
                szx,
            };
            let a = self
                .call(
                    req(RequestType::Post, path)
                        .token(token)
                        .option(CoapOption::Block1, b.encode())
                        .body(c),
                )
                .await;
            if more {
                assert_eq!(code(&a), "2.31", "{}", String::from_utf8_lossy(&a.payload));
                let echo = a
                    .get_first_option(CoapOption::Block1)
                    .and_then(|v| Block::decode(v));
                assert_eq!(echo, Some(b));
            } else {
                return a;
            }
        }
        unreachable!()
    }
}

/// A release whose payload is uploaded, device `dev-c` enrolled, and a one-phase
/// campaign of the release over it; returns the envelope, the campaign id, the device.
async fn campaign_over_one(f: &Fleet) -> (Vec<u8>, String, FleetDevice) {
    let (release, env) = f.release(3).await;
    let image = image();
    f.put_payload(&f.author, &sha256(&image), image).await;
    let d = f.enrol("dev-c", 1, json!({})).await;
    let group = f.group("one", &[&d]).await;
    let c = f
        .campaign(
            json!({ "name": "c", "release_id": release, "group_id": group,
            "phases": [100], "success_percent": 100, "device_timeout_secs": 600 }),
        )
        .await;
    (env, c["id"].as_str().unwrap().to_string(), d)
}

#[tokio::test]
async fn payloads_download_block_wise_at_the_block_size_asked_for() {
    let f = Fleet::start().await;
    let image = image();
    let sha = sha256(&image);
    f.put_payload(&f.author, &sha, image.clone()).await;
    let d = f.enrol("dev-1", 1, json!({})).await;
    let mut c = Peer::start(&f).await;
    let path = format!("device/v1/payloads/{sha}");
    for (szx, size) in [(0u8, 16usize), (2, 64), (6, 1024)] {
        let (bytes, blocks) = c.download(&path, &d.token, szx).await;
        assert_eq!(sha256(&bytes), sha, "szx {szx}");
        assert_eq!(blocks as usize, image.len().div_ceil(size));
    }
    // No Block2 asked: the first 1024 bytes, Block2 0/more/1024 and the size.
    let a = c.call(req(RequestType::Get, &path).token(&d.token)).await;
    assert_eq!(a.payload, image[..1024]);
    assert_eq!(
        block2(&a),
        Some(Block {
            num: 0,
            more: true,
            szx: 6
        })
    );
    let size2 = a.get_first_option(CoapOption::Size2).unwrap();
    assert_eq!(size2, &3000u16.to_be_bytes());
    // Past the end: 4.02; szx 7 (BERT, TCP only): 4.02; an unknown blob: 4.04.
    let past = Block {
        num: 3,
        more: false,
        szx: 6,
    }
    .encode();
    let a = c
        .call(
            req(RequestType::Get, &path)
                .token(&d.token)
                .option(CoapOption::Block2, past),
        )
        .await;
    assert_eq!(code(&a), "4.02");
    let a = c
        .call(
            req(RequestType::Get, &path)
                .token(&d.token)
                .option(CoapOption::Block2, vec![0x07]),
        )
        .await;
    assert_eq!(code(&a), "4.02");
    let a = c
        .call(
            req(
                RequestType::Get,
                &format!("device/v1/payloads/{}", sha256(b"x")),
            )
            .token(&d.token),
        )
        .await;
    assert_eq!(code(&a), "4.04");
}

#[tokio::test]
async fn check_in_and_report_over_coap_move_the_campaign_as_http_does() {
    let f = Fleet::start().await;
    let (env, cid, d) = campaign_over_one(&f).await;
    let mut c = Peer::start(&f).await;
    let body = json!({ "sequence_number": 1 }).to_string();
    let a = c.check_in(&d.token, &body).await;
    assert_eq!(code(&a), "2.04");
    let offer: Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(offer["campaign"], cid.as_str());
    assert_eq!(offer["payloads"], json!([sha256(&image())]));
    assert_eq!(offer["envelope"], sha256(&env).as_str());
    assert_eq!(offer["envelope_size"], env.len());
    // A second check-in is the same offer (same nonce), as over HTTP.
    let again = c.check_in(&d.token, &body).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&again.payload).unwrap(),
        offer
    );
    let (envelope, _) = c
        .download(&format!("device/v1/payloads/{}", sha256(&env)), &d.token, 4)
        .await;
    assert_eq!(envelope, env);
    let (_, counts) = campaign_counts(&f, &cid).await;
    assert_eq!(counts["offered"], 1);

    // The signed report in 64-byte Block1 blocks.
    let http_offer = Offer {
        envelope: envelope.clone(),
        nonce: hex::decode(offer["nonce"].as_str().unwrap()).unwrap(),
        campaign: cid.clone(),
        payloads: String::new(),
    };
    let report = d.report(&f, &http_offer, true);
    assert!(report.len() > 64);
    let a = c.upload("device/v1/reports", &d.token, &report, 2).await;
    assert_eq!(code(&a), "2.04", "{}", String::from_utf8_lossy(&a.payload));
    let v: Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(v, json!({ "recorded": true, "success": true }));
    let (state, counts) = campaign_counts(&f, &cid).await;
    assert_eq!(state, "completed");
    assert_eq!(counts["succeeded"], 1);
    assert_eq!(f.view("/api/v1/devices/dev-c").await["sequence_number"], 3);
    // The same report again: 4.09, as HTTP's 409.
    let a = c.upload("device/v1/reports", &d.token, &report, 6).await;
    assert_eq!(code(&a), "4.09");
    // A check-in now offers nothing: 2.04, empty.
    let body3 = json!({ "sequence_number": 3 }).to_string();
    let a = c.check_in(&d.token, &body3).await;
    assert_eq!((code(&a).as_str(), a.payload.len()), ("2.04", 0));
}

async fn campaign_counts(f: &Fleet, cid: &str) -> (String, Value) {
    let v = f.view(&format!("/api/v1/campaigns/{cid}")).await;
    (
        v["state"].as_str().unwrap().to_string(),
        v["counts"].clone(),
    )
}

#[tokio::test]
async fn observing_the_offer_notifies_when_a_campaign_starts() {
    let f = Fleet::start().await;
    let (release, _) = f.release(3).await;
    let d = f.enrol("dev-o", 1, json!({})).await;
    let mut c = Peer::start(&f).await;
    let a = c
        .call(
            req(RequestType::Get, "device/v1/offer")
                .token(&d.token)
                .option(CoapOption::Observe, vec![]),
        )
        .await;
    assert_eq!(code(&a), "2.05");
    assert!(
        a.get_first_option(CoapOption::Observe).is_some(),
        "registered"
    );
    let token = a.get_token().to_vec();
    let now: Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(now, json!({ "campaign": null, "release": null }));

    let group = f.group("g", &[&d]).await;
    let camp = f
        .campaign(
            json!({ "name": "c", "release_id": release, "group_id": group,
            "phases": [100], "success_percent": 100, "device_timeout_secs": 600 }),
        )
        .await;
    let n = c
        .recv(Duration::from_secs(10))
        .await
        .expect("a notification");
    assert_eq!(n.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(n.get_token(), token.as_slice());
    assert_eq!(code(&n), "2.05");
    let seq = |p: &Packet| {
        p.get_first_option(CoapOption::Observe)
            .map(|v| v.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
            .unwrap()
    };
    assert!(seq(&n) > seq(&a), "Observe numbers increase");
    let v: Value = serde_json::from_slice(&n.payload).unwrap();
    assert_eq!(v["campaign"], camp["id"]);
    assert_eq!(v["release"], release.as_str());

    // A pause withdraws the offer: notified again. Then a Reset cancels the observation:
    // the resume is not notified.
    let path = format!("/api/v1/campaigns/{}/pause", camp["id"].as_str().unwrap());
    assert_eq!(
        f.post(&path, &f.operator).send().await.unwrap().status(),
        200
    );
    let n = c
        .recv(Duration::from_secs(10))
        .await
        .expect("a notification");
    let v: Value = serde_json::from_slice(&n.payload).unwrap();
    assert_eq!(v["campaign"], Value::Null);
    let mid = n.header.message_id.to_be_bytes();
    c.send_raw(&[0x70, 0x00, mid[0], mid[1]]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = format!("/api/v1/campaigns/{}/resume", camp["id"].as_str().unwrap());
    assert_eq!(
        f.post(&path, &f.operator).send().await.unwrap().status(),
        200
    );
    assert!(
        c.recv(Duration::from_millis(800)).await.is_none(),
        "cancelled by Reset"
    );

    // Observe 1 deregisters; a plain GET is just the state.
    let a = c
        .call(
            req(RequestType::Get, "device/v1/offer")
                .token(&d.token)
                .option(CoapOption::Observe, vec![1]),
        )
        .await;
    assert!(a.get_first_option(CoapOption::Observe).is_none());
    let v: Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(v["campaign"], camp["id"]);
}

#[tokio::test]
async fn a_revoked_device_is_no_longer_notified_and_its_observation_ends() {
    let f = Fleet::start().await;
    let (release, _) = f.release(3).await;
    let d = f.enrol("dev-r", 1, json!({})).await;
    let kept = f.enrol("dev-k", 1, json!({})).await;
    let coap = Coap::new(f.state.clone());
    for (mid, dev) in [(1, &d), (2, &kept)] {
        let a = answer(
            &coap,
            req(RequestType::Get, "device/v1/offer")
                .token(&dev.token)
                .option(CoapOption::Observe, vec![])
                .encode(mid),
        )
        .await
        .unwrap();
        assert!(a.get_first_option(CoapOption::Observe).is_some());
    }
    assert_eq!(coap.observers().await, 2);
    assert_eq!(
        f.post("/api/v1/devices/dev-r/revoke", &f.operator)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // Both devices' offers change; only the device still enrolled is told.
    let group = f.group("g", &[&d, &kept]).await;
    f.campaign(
        json!({ "name": "c", "release_id": release, "group_id": group,
        "phases": [100], "success_percent": 100, "device_timeout_secs": 600 }),
    )
    .await;
    let sent = coap.notifications().await;
    assert_eq!(sent.len(), 1, "one notification");
    let n = Packet::from_bytes(&sent[0].1).unwrap();
    let v: Value = serde_json::from_slice(&n.payload).unwrap();
    assert_eq!(v["release"], release.as_str());
    assert_eq!(
        coap.observers().await,
        1,
        "the revoked device's observation ended"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_device_token_is_refused_and_changes_nothing() {
    let f = Fleet::start().await;
    let (env, cid, d) = campaign_over_one(&f).await;
    let mut c = Peer::start(&f).await;
    let body = json!({ "sequence_number": 1 }).to_string();
    let report = report_by(&d.key, &f, &env, Some(b"nonce"), true);
    let bad = "0".repeat(64);
    for token in [None, Some(bad.as_str()), Some(f.operator.as_str())] {
        let with = |r: Req| match token {
            Some(t) => r.token(t),
            None => r,
        };
        let sha = sha256(&image());
        for r in [
            with(req(RequestType::Post, "device/v1/checkin").body(body.as_bytes())),
            with(req(RequestType::Get, "device/v1/self")),
            with(req(RequestType::Get, &format!("device/v1/payloads/{sha}"))),
            with(req(RequestType::Post, "device/v1/reports").body(&report)),
            with(req(RequestType::Get, "device/v1/offer").option(CoapOption::Observe, vec![])),
        ] {
            let path = r.path.clone();
            let a = c.call(r).await;
            assert_eq!(code(&a), "4.01", "{path} with {token:?}");
            assert_eq!(
                String::from_utf8_lossy(&a.payload),
                "missing or unknown bearer token"
            );
        }
    }
    let (state, counts) = campaign_counts(&f, &cid).await;
    assert_eq!(state, "running");
    assert_eq!(counts["pending"], 1, "{counts}");
    assert_eq!(
        f.view("/api/v1/devices/dev-c").await["last_seen"],
        Value::Null
    );
    // The right token works.
    let a = c
        .call(req(RequestType::Get, "device/v1/self").token(&d.token))
        .await;
    assert_eq!(code(&a), "2.05");
}

#[tokio::test]
async fn malformed_datagrams_get_an_error_and_the_server_keeps_serving() {
    let f = Fleet::start().await;
    let d = f.enrol("dev-m", 1, json!({})).await;
    let mut c = Peer::start(&f).await;
    // A Confirmable header with an option of length nibble 15 (reserved): Reset.
    c.send_raw(&[0x40, 0x01, 0x00, 0x07, 0x0f]).await;
    let r = c.recv(Duration::from_secs(5)).await.expect("a Reset");
    assert_eq!(r.header.get_type(), MessageType::Reset);
    assert_eq!(r.header.message_id, 7);
    // A Non-confirmable with a token length of 9 (invalid), garbage, an empty datagram,
    // version 2: dropped.
    for d in [
        &[0x59, 0x01, 0, 8][..],
        b"\xff\xff\xff",
        b"",
        &[0x80, 0x01, 0, 9],
    ] {
        c.send_raw(d).await;
    }
    assert!(c.recv(Duration::from_millis(500)).await.is_none());
    // An empty Confirmable (a ping): Reset.
    c.send_raw(&[0x40, 0x00, 0x00, 0x0a]).await;
    assert_eq!(
        c.recv(Duration::from_secs(5))
            .await
            .unwrap()
            .header
            .get_type(),
        MessageType::Reset
    );
    // Well-formed but wrong: unknown critical option 4.02, unknown path 4.04, wrong
    // method 4.05, bad JSON 4.00, a Block1 upload that skips a block 4.08.
    let a = c
        .call(
            req(RequestType::Get, "device/v1/self")
                .token(&d.token)
                .option(CoapOption::Unknown(65001), vec![1]),
        )
        .await;
    assert_eq!(code(&a), "4.02");
    let a = c
        .call(req(RequestType::Get, "device/v1/nothing").token(&d.token))
        .await;
    assert_eq!(code(&a), "4.04");
    let a = c
        .call(req(RequestType::Delete, "device/v1/self").token(&d.token))
        .await;
    assert_eq!(code(&a), "4.05");
    // An undefined method code (0.09): 4.05 too.
    let mut p = Packet::new();
    p.header.code = MessageClass::Reserved(0x09);
    p.header.message_id = 999;
    p.add_option(CoapOption::UriPath, b"device".to_vec());
    p.add_option(CoapOption::UriPath, b"v1".to_vec());
    p.add_option(CoapOption::UriPath, b"self".to_vec());
    c.send_raw(&p.to_bytes().unwrap()).await;
    let a = c.recv(Duration::from_secs(5)).await.unwrap();
    assert_eq!((a.header.message_id, code(&a).as_str()), (999, "4.05"));
    let a = c
        .call(
            req(RequestType::Post, "device/v1/checkin")
                .token(&d.token)
                .body(b"{not json"),
        )
        .await;
    assert_eq!(code(&a), "4.00");
    assert!(String::from_utf8_lossy(&a.payload).starts_with("bad request: JSON"));
    let skip = Block {
        num: 2,
        more: true,
        szx: 0,
    }
    .encode();
    let a = c
        .call(
            req(RequestType::Post, "device/v1/reports")
                .token(&d.token)
                .option(CoapOption::Block1, skip)
                .body(&[0; 16]),
        )
        .await;
    assert_eq!(code(&a), "4.08");
    // A retransmitted request (same message id) gets the same answer, not a second run.
    let mut p = Packet::new();
    p.header.code = MessageClass::Request(RequestType::Post);
    p.header.message_id = 4242;
    for s in ["device", "v1", "enrol", "challenge"] {
        p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
    }
    c.send_raw(&p.to_bytes().unwrap()).await;
    let first = c.recv(Duration::from_secs(5)).await.unwrap();
    c.send_raw(&p.to_bytes().unwrap()).await;
    let second = c.recv(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.payload, second.payload, "the same nonce");
    // Still serving.
    let a = c
        .call(req(RequestType::Post, "device/v1/enrol/challenge"))
        .await;
    assert_eq!(code(&a), "2.04");
    let v: Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(v["nonce"].as_str().unwrap().len(), 64);
}

#[test]
fn any_datagram_is_answered_with_a_valid_message_or_dropped() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, d) = rt.block_on(async {
        let f = Fleet::start().await;
        let d = f.enrol("dev-p", 1, json!({})).await;
        (f, d)
    });
    let coap = Coap::new(f.state.clone());
    // Raw bytes, and bytes behind a valid request header with a real path and token (so
    // the dispatcher, not only the parser, sees them). Each case from its own port, so
    // that none is answered from the duplicate cache.
    let checkin = req(RequestType::Post, "device/v1/checkin").token(&d.token);
    let case = std::cell::Cell::new(0u16);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(any::<bool>(), proptest::collection::vec(any::<u8>(), 0..80)),
            |(behind_header, tail)| {
                case.set(case.get() + 1);
                let peer = SocketAddr::from(([127, 0, 0, 1], 20_000 + case.get()));
                let mut bytes = if behind_header {
                    checkin.encode(case.get())
                } else {
                    Vec::new()
                };
                bytes.extend_from_slice(&tail);
                if let Some(answer) = rt.block_on(coap.handle(peer, &bytes)) {
                    let p = Packet::from_bytes(&answer).expect("an answer parses");
                    prop_assert!(matches!(
                        p.header.code,
                        MessageClass::Response(_) | MessageClass::Empty
                    ));
                }
                Ok(())
            },
        )
        .unwrap();
    // And it still answers properly.
    let me = req(RequestType::Get, "device/v1/self").token(&d.token);
    let a = rt.block_on(answer(&coap, me.encode(1))).unwrap();
    assert_eq!(a.header.code, MessageClass::Response(ResponseType::Content));
    drop(f);
}

/// `coap`'s answer to `datagram` from 127.0.0.1:7.
async fn answer(coap: &Coap, datagram: Vec<u8>) -> Option<Packet> {
    let peer = SocketAddr::from(([127, 0, 0, 1], 7));
    answer_from(coap, peer, datagram).await
}

async fn answer_from(coap: &Coap, peer: SocketAddr, datagram: Vec<u8>) -> Option<Packet> {
    let a = coap.handle(peer, &datagram).await?;
    Some(Packet::from_bytes(&a).unwrap())
}

#[tokio::test]
async fn observers_and_block_wise_uploads_are_bounded() {
    use suitcase_server::coap::{MAX_OBSERVERS_PER_DEVICE, MAX_UPLOADS};
    let f = Fleet::start().await;
    let d = f.enrol("dev-b", 1, json!({})).await;
    let coap = Coap::new(f.state.clone());
    // A third observation of one device replaces its oldest.
    let offer = req(RequestType::Get, "device/v1/offer")
        .token(&d.token)
        .option(CoapOption::Observe, vec![]);
    for mid in 1..=3 {
        let a = answer(&coap, offer.encode(mid)).await.unwrap();
        assert!(a.get_first_option(CoapOption::Observe).is_some());
    }
    assert_eq!(coap.observers().await, MAX_OBSERVERS_PER_DEVICE);
    // Uploads: MAX_UPLOADS at once (one per peer here), the next one is 5.03.
    let first = Block {
        num: 0,
        more: true,
        szx: 0,
    }
    .encode();
    let upload = req(RequestType::Post, "device/v1/reports")
        .token(&d.token)
        .option(CoapOption::Block1, first)
        .body(&[0; 16]);
    for i in 0..=MAX_UPLOADS {
        let peer = SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16));
        let a = answer_from(&coap, peer, upload.encode(100)).await.unwrap();
        let want = if i < MAX_UPLOADS { "2.31" } else { "5.03" };
        assert_eq!(code(&a), want, "upload {i}");
    }
    // Over 64 KiB in total: 4.13 with Size1.
    let far = Block {
        num: 64,
        more: true,
        szx: 6,
    }
    .encode();
    let big = req(RequestType::Post, "device/v1/reports")
        .token(&d.token)
        .option(CoapOption::Block1, far)
        .body(&[0; 1024]);
    let a = answer(&coap, big.encode(200)).await.unwrap();
    assert_eq!(code(&a), "4.13");
    assert!(a.get_first_option(CoapOption::Size1).is_some());
}
