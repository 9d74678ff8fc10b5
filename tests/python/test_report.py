"""Independent check of the SUIT report `suitcase process` writes: decoded with cbor2,
its COSE_Sign1 (ES256, payload attached) verified with `cryptography`, as a fleet server
that shares no code with the device would.

The binary is $SUITCASE_BIN, else target/release/suitcase, else target/debug/suitcase.
"""

import os
import shutil
import subprocess
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from suitcase_bin import binary

ROOT = Path(__file__).resolve().parents[2]


def spec() -> Path:
    base = Path(os.environ.get("SUITCASE_VECTORS", ROOT.parent / "shared" / "vectors"))
    return base / "suit-manifest-spec"


def test_failing_install_report_names_the_command_and_verifies(tmp_path):
    # The published example 1 carries a placeholder image digest: install's image-match fails.
    shutil.copy(spec() / "example1.suit", tmp_path / "example1.suit")
    (tmp_path / "file.bin").write_bytes(b"\x00" * 100)
    report = tmp_path / "report.cose"
    r = subprocess.run(
        [
            str(binary()), "process", "--key", str(spec() / "public_key.pem"),
            "--device-key", str(spec() / "private_key.pem"), "--dir", str(tmp_path / "dev"),
            "--nonce", "c0ffee", "--report", str(report), str(tmp_path / "example1.suit"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1, r.stderr

    msg = cbor2.loads(report.read_bytes())
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18
    protected, _unprotected, payload, signature = msg.value
    assert cbor2.loads(protected) == {1: -7}
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = serialization.load_pem_public_key((spec() / "public_key.pem").read_bytes())
    public.verify(der, tbs, ec.ECDSA(hashes.SHA256()))

    rep = cbor2.loads(payload)
    assert rep[2] == bytes.fromhex("c0ffee")
    result = rep[4]
    assert result[5] == 3, "image-match"
    assert result[6][1] == 20, "in the install sequence"
    assert result[7] == 10, "condition-failed"
    assert result[6] in rep[3], "the failing record is among the records"
    uri, digest = rep[99]
    assert uri == "" and digest[0] == -16 and len(digest[1]) == 32
