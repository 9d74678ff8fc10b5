"""Independent verification of what the `suitcase` CLI writes.

Nothing here uses suitcase code: the envelopes are decoded with cbor2 and the COSE_Sign1
signatures checked with `cryptography`, the way another SUIT implementation would.

The binary is $SUITCASE_BIN, else target/release/suitcase, else target/debug/suitcase.
The spec vectors are $SUITCASE_VECTORS, else ../shared/vectors beside the checkout.
"""

import hashlib
import os
import subprocess
from pathlib import Path

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from suitcase_bin import binary

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def vectors() -> Path:
    return Path(os.environ.get("SUITCASE_VECTORS", ROOT.parent / "shared" / "vectors"))


def suitcase(*args) -> str:
    r = subprocess.run([str(binary()), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"suitcase {args}: {r.stderr}"
    return r.stdout


def decode_envelope(path: Path) -> dict:
    item = cbor2.loads(path.read_bytes())
    assert isinstance(item, cbor2.CBORTag) and item.tag == 107
    env = item.value
    assert list(env)[:2] == [2, 3], "the auth wrapper comes first, then the manifest"
    return env


def thumbprint(public_key) -> bytes:
    """RFC 9679 COSE key thumbprint, computed here from the key itself."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        n = public_key.public_numbers()
        key = {1: 2, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
    else:
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key = {1: 1, -1: 6, -2: raw}
    return hashlib.sha256(cbor2.dumps(key, canonical=True)).digest()


def verify_sign1(block: bytes, payload: bytes, public_key) -> None:
    """Raises InvalidSignature unless `block` is a valid COSE_Sign1 over `payload`."""
    msg = cbor2.loads(block)
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18
    protected, unprotected, detached, signature = msg.value
    assert detached is None, "the payload is detached"
    alg = cbor2.loads(protected)[1]
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        assert alg in (-7, -9), alg  # ES256 / ESP256
        assert len(signature) == 64
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public_key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
    else:
        assert alg in (-8, -19), alg  # EdDSA / Ed25519
        public_key.verify(signature, tbs)
    assert unprotected[4] == thumbprint(public_key), "kid is the key's thumbprint"


@pytest.fixture
def keys(tmp_path):
    out = {}
    for name, alg in (("author", "es256"), ("operator", "ed25519")):
        suitcase("keygen", "--alg", alg, "--out", tmp_path / f"{name}.pem")
        pem = (tmp_path / f"{name}.pub.pem").read_bytes()
        out[name] = (tmp_path / f"{name}.pem", serialization.load_pem_public_key(pem))
        # The private key is standard PKCS#8 that another tool can read.
        private = serialization.load_pem_private_key(
            (tmp_path / f"{name}.pem").read_bytes(), password=None
        )
        assert thumbprint(private.public_key()) == thumbprint(out[name][1])
        assert (tmp_path / f"{name}.pem").stat().st_mode & 0o777 == 0o600
    assert isinstance(out["author"][1], ec.EllipticCurvePublicKey)
    assert isinstance(out["operator"][1], ed25519.Ed25519PublicKey)
    return out


def test_build_and_cosign_verify_independently(tmp_path, keys):
    author, operator = keys["author"], keys["operator"]
    built = tmp_path / "hello.suit"
    suitcase("build", EXAMPLES / "hello.toml", "-o", built, "--key", author[0])
    cosigned = tmp_path / "hello-cosigned.suit"
    suitcase("sign", "--key", operator[0], built, "-o", cosigned)

    before, after = decode_envelope(built), decode_envelope(cosigned)
    assert after[3] == before[3], "signing does not re-encode the manifest"

    auth = cbor2.loads(after[2])
    assert len(auth) == 3  # digest, author, operator
    digest_bytes = auth[0]
    alg, digest = cbor2.loads(digest_bytes)
    assert alg == -16
    # The digest covers the manifest bstr with its CBOR header.
    assert digest == hashlib.sha256(cbor2.dumps(after[3])).digest()
    assert digest != hashlib.sha256(after[3]).digest()

    verify_sign1(auth[1], digest_bytes, author[1])
    verify_sign1(auth[2], digest_bytes, operator[1])
    with pytest.raises(InvalidSignature):
        verify_sign1(auth[1], digest_bytes[:-1] + bytes([digest_bytes[-1] ^ 1]), author[1])
    with pytest.raises(InvalidSignature):
        verify_sign1(auth[2], digest_bytes, ed25519.Ed25519PrivateKey.generate().public_key())

    manifest = cbor2.loads(after[3])
    assert manifest[1] == 1
    common = cbor2.loads(manifest[3])
    assert common[2] == [[b"\x00"]]
    image = (EXAMPLES / "images" / "app-v2.bin").read_bytes()
    shared = cbor2.loads(common[4])
    params = shared[1]
    assert cbor2.loads(params[3]) == [-16, hashlib.sha256(image).digest()]
    assert params[14] == len(image)


def test_integrated_payload_and_severed_members(tmp_path, keys):
    out = tmp_path / "integrated.suit"
    suitcase("build", EXAMPLES / "integrated.toml", "-o", out, "--key", keys["operator"][0])
    env = decode_envelope(out)
    manifest = cbor2.loads(env[3])
    for key in (20, 23):
        alg, digest = manifest[key]
        assert alg == -16
        assert digest == hashlib.sha256(cbor2.dumps(env[key])).digest()
    assert env["#app"] == (EXAMPLES / "images" / "app-v2.bin").read_bytes()
    text = cbor2.loads(env[23])
    assert text["en-US"][1] == "Thermostat firmware 2.0"
    auth = cbor2.loads(env[2])
    verify_sign1(auth[1], auth[0], keys["operator"][1])


@pytest.mark.parametrize("n", range(6))
def test_spec_examples_rebuilt_byte_for_byte(tmp_path, n):
    published = vectors() / "suit-manifest-spec" / f"example{n}.suit"
    if not published.exists():
        pytest.fail(f"vectors not found at {published} (set SUITCASE_VECTORS)")
    out = tmp_path / f"example{n}.suit"
    suitcase("build", EXAMPLES / "spec" / f"example{n}.toml", "-o", out)
    ours, theirs = decode_envelope(out), decode_envelope(published)
    assert ours[3] == theirs[3]
    assert cbor2.loads(ours[2])[0] == cbor2.loads(theirs[2])[0]
    for key in theirs:
        if key != 2:
            assert ours[key] == theirs[key], key


# `suitcase encrypt`: the ciphertext and SUIT_Encryption_Info decrypt with `cryptography`
# alone (RFC 3394 unwrap, or ECDH + HKDF-SHA-256 over the COSE_KDF_Context; AES-GCM with
# the Enc_structure as AAD, or AES-CTR).


def kdf_context(protected: bytes) -> bytes:
    return cbor2.dumps(
        [-3, [None, None, None], [None, None, None], [128, protected, b"SUIT Payload Encryption"]]
    )


@pytest.mark.parametrize("content", ["aes-gcm", "aes-ctr"])
@pytest.mark.parametrize("bits", ["128", "256"])
@pytest.mark.parametrize("to", ["kek16", "kek32", "device"])
def test_encrypt_decrypts_independently(tmp_path, content, bits, to):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

    plain = os.urandom(3000)
    (tmp_path / "app.bin").write_bytes(plain)
    args = []
    device = None
    if to == "device":
        device = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "device.pub.pem").write_bytes(
            device.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        args = ["--recipient", tmp_path / "device.pub.pem"]
    else:
        kek = os.urandom(16 if to == "kek16" else 32)
        (tmp_path / "kek.bin").write_bytes(kek)
        args = ["--kek", tmp_path / "kek.bin"]
    suitcase(
        "encrypt", "--payload", tmp_path / "app.bin", *args, "--kid", "kid-1",
        "--content", content, "--key-size", bits,
        "-o", tmp_path / "app.enc", "--info-out", tmp_path / "app.cose",
    )
    info = cbor2.loads((tmp_path / "app.cose").read_bytes())
    assert isinstance(info, cbor2.CBORTag) and info.tag == 96
    protected, unprotected, detached, recipients = info.value
    assert detached is None and len(recipients) == 1
    r_protected, r_unprotected, wrapped = recipients[0]
    assert r_unprotected[4] == b"kid-1"
    if device is None:
        assert r_protected == b""
        assert r_unprotected[1] == (-3 if to == "kek16" else -5)
        cek = aes_key_unwrap(kek, wrapped)
    else:
        assert cbor2.loads(r_protected) == {1: -29}
        eph = r_unprotected[-1]
        assert (eph[1], eph[-1]) == (2, 1)
        eph_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(eph[-2], "big"), int.from_bytes(eph[-3], "big"), ec.SECP256R1()
        ).public_key()
        shared = device.exchange(ec.ECDH(), eph_key)
        kek = HKDF(hashes.SHA256(), 16, None, kdf_context(r_protected)).derive(shared)
        cek = aes_key_unwrap(kek, wrapped)
    assert len(cek) == int(bits) // 8
    ct = (tmp_path / "app.enc").read_bytes()
    iv = unprotected[5]
    if content == "aes-gcm":
        assert cbor2.loads(protected) == {1: 1 if bits == "128" else 3}
        aad = cbor2.dumps(["Encrypt", protected, b""])
        assert AESGCM(cek).decrypt(iv, ct, aad) == plain
    else:
        assert protected == b""
        assert unprotected[1] == (-65534 if bits == "128" else -65532)
        d = Cipher(algorithms.AES(cek), modes.CTR(iv)).decryptor()
        assert d.update(ct) + d.finalize() == plain
