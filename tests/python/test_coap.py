"""The device API over CoAP, checked with a CoAP client that shares no code with the
server: aiocoap. `suitcase serve --coap` runs as a process; an author and an operator use
the HTTP API; a simulated device enrols over CoAP (`suitcase device sync --server
coap://…`); then aiocoap downloads the payload block-wise (64-byte blocks) with the
device's token, and observes the device's offer resource until a campaign offers it
the release.

The binary is $SUITCASE_BIN, else target/release/suitcase, else target/debug/suitcase.
"""

import asyncio
import hashlib
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import aiocoap
from aiocoap.numbers.codes import GET
from aiocoap.optiontypes import BlockOption, OpaqueOption
from suitcase_bin import binary

# The option that carries the device token (suitcase_server::coap::AUTH_OPTION).
AUTH_OPTION = 65003


def run(*args: str) -> str:
    r = subprocess.run([str(binary()), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def build(d: Path, name: str, n: int, size: int) -> str:
    """NAME.suit (sequence n) over a size-byte image; returns the image's SHA-256."""
    image = bytes((i * 7 + n) % 251 for i in range(size))
    sha = hashlib.sha256(image).hexdigest()
    (d / f"{name}.bin").write_bytes(image)
    (d / f"{name}.toml").write_text(
        f'[manifest]\nsequence-number = {n}\nvendor-domain = "example.com"\n'
        f'class = "thermostat-v2"\n[[component]]\nid = ["0x00"]\nimage = "{name}.bin"\n'
        f'uri = "https://fleet.invalid/device/v1/payloads/{sha}"\ninvoke = true\n'
    )
    run("build", str(d / f"{name}.toml"), "-o", str(d / f"{name}.suit"), "--key", str(d / "author.pem"))
    return sha


class Server:
    def __init__(self, d: Path):
        self.proc = subprocess.Popen(
            [
                str(binary()), "serve", "--data", str(d / "srv"),
                "--trust-anchor", str(d / "author.pub.pem"),
                "--listen", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.tokens = {}
        urls = []
        while len(urls) < 2:
            line = self.proc.stdout.readline()
            assert line, "the server stopped"
            msg = json.loads(line)
            if msg["type"] == "token":
                self.tokens[msg["role"]] = msg["token"]
            elif msg["type"] == "listening":
                urls.append(msg["url"])
        self.http = next(u for u in urls if u.startswith("http://"))
        self.coap = next(u for u in urls if u.startswith("coap://"))

    def call(self, role: str, method: str, path: str, body: bytes | None = None):
        req = urllib.request.Request(self.http + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens[role]}")
        if body is not None and method == "POST" and not path.startswith("/api/v1/releases?"):
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def offer_request(coap: str, token: str) -> aiocoap.Message:
    msg = aiocoap.Message(code=GET, uri=f"{coap}/device/v1/offer", observe=0)
    msg.opt.add_option(OpaqueOption(AUTH_OPTION, token.encode()))
    return msg


def test_aiocoap_downloads_block_wise_and_observes_the_offer(tmp_path):
    d = tmp_path
    run("keygen", "--alg", "es256", "--out", str(d / "author.pem"))
    build(d, "v1", 1, 3000)
    sha2 = build(d, "v2", 2, 5000)
    dev = d / "dev-py"
    run("device", "init", "--dir", str(dev), "--geometry", "4096x8", "--key", str(d / "author.pub.pem"))
    run("device", "provision", "--dir", str(dev), str(d / "v1.suit"), str(d / "v1.bin"))
    run("device", "reboot", "--dir", str(dev))
    srv = Server(d)
    try:
        vendor = uuid.uuid5(uuid.NAMESPACE_DNS, "example.com")
        klass = uuid.uuid5(vendor, "thermostat-v2")
        release = srv.call(
            "author", "POST", f"/api/v1/releases?name=r&vendor_id={vendor}&class_id={klass}",
            (d / "v2.suit").read_bytes(),
        )
        srv.call("author", "PUT", f"/api/v1/payloads/{sha2}", (d / "v2.bin").read_bytes())
        srv.call("operator", "POST", f"/api/v1/releases/{release['id']}/approve", b"")

        # The device enrols over CoAP (nothing offered yet); its token is in server.json.
        out = json.loads(run("device", "sync", "--dir", str(dev), "--server", srv.coap, "--json"))
        assert out["update"] is False, out
        token = json.loads((dev / "server.json").read_text())["token"]

        asyncio.run(coap_session(srv, token, sha2, (d / "v2.bin").read_bytes(), release["id"]))
    finally:
        srv.stop()


async def coap_session(srv: Server, token: str, sha: str, image: bytes, release_id: str):
    ctx = await aiocoap.Context.create_client_context()
    try:
        payload_uri = f"{srv.coap}/device/v1/payloads/{sha}"

        # Block by block, 64 bytes each (szx 2): every answer carries Block2 as asked.
        body, blocks, num = b"", 0, 0
        while True:
            msg = aiocoap.Message(code=GET, uri=payload_uri)
            msg.opt.add_option(OpaqueOption(AUTH_OPTION, token.encode()))
            msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, 2)
            r = await ctx.request(msg, handle_blockwise=False).response
            assert r.code.is_successful(), r
            assert r.opt.block2.block_number == num and r.opt.block2.size_exponent == 2
            body += r.payload
            blocks += 1
            if not r.opt.block2.more:
                break
            num += 1
        assert blocks == -(-len(image) // 64) > 1
        assert hashlib.sha256(body).hexdigest() == sha

        # aiocoap's own block-wise reassembly, starting from 256-byte blocks.
        msg = aiocoap.Message(code=GET, uri=payload_uri)
        msg.opt.add_option(OpaqueOption(AUTH_OPTION, token.encode()))
        msg.opt.block2 = BlockOption.BlockwiseTuple(0, False, 4)
        r = await ctx.request(msg).response
        assert r.code.is_successful(), r
        assert hashlib.sha256(r.payload).hexdigest() == sha

        # Without the token: 4.01.
        r = await ctx.request(aiocoap.Message(code=GET, uri=payload_uri)).response
        assert str(r.code) == "4.01 Unauthorized", r

        # Observe the offer; a campaign for the device is notified.
        obs = ctx.request(offer_request(srv.coap, token))
        first = await obs.response
        assert first.code.is_successful(), first
        assert json.loads(first.payload) == {"campaign": None, "release": None}
        assert first.opt.observe is not None, "registered"
        group = srv.call("operator", "POST", "/api/v1/groups",
                         json.dumps({"name": "py", "devices": ["dev-py"]}).encode())
        campaign = srv.call("operator", "POST", "/api/v1/campaigns", json.dumps({
            "name": "py", "release_id": release_id, "group_id": group["id"], "phases": [100],
            "success_percent": 100, "device_timeout_secs": 600,
        }).encode())

        async def next_notification():
            async for n in obs.observation:
                return n

        n = await asyncio.wait_for(next_notification(), timeout=10)
        offer = json.loads(n.payload)
        assert offer == {"campaign": campaign["id"], "release": release_id}
        obs.observation.cancel()
    finally:
        await ctx.shutdown()
