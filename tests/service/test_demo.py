"""`mpc-signer demo --target`: the command a new user runs against `make run`, here against a test
node; its JSON summary is checked, and each signature is checked again here independently."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys

import coincurve
import nacl.signing
from frost_rs import utility_secp256k1

from tests.conftest import REPO


def test_demo_against_a_running_signer(start_node, dev_certs) -> None:  # type: ignore[no-untyped-def]
    node = start_node("demo-signer")
    c = dev_certs
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "signer.cli",
            "demo",
            "--target",
            node.target,
            "--ca",
            str(c.ca),
            "--cert",
            str(c.client_cert),
            "--key",
            str(c.client_key),
            "--token-key",
            str(c.jwt_key),
            "--hmac-key",
            str(c.hmac_key),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert [item["protocol"] for item in summary] == [
        "frost-ed25519",
        "frost-secp256k1",
        "frost-secp256k1-tr",
        "gg20-secp256k1",
    ]
    for item in summary:
        assert item["verified"] is True and len(item["key_id"]) == 64
        public_key, signature = bytes.fromhex(item["public_key"]), bytes.fromhex(item["signature"])
        check(item, public_key, item["message"].encode(), signature)
        assert set(item["timings"]) >= {"dkg_ms", "sign_ms"}
        if item["protocol"] != "gg20-secp256k1":
            # a FROST signature from preprocessed commitments, in one call to the signer
            pre = item["preprocessed"]
            assert pre["verified"] is True and pre["signer_calls"] == 1 and pre["batch"] == 4
            assert len(pre["presignature_id"]) == 64 and pre["message"] != item["message"]
            check(item, public_key, pre["message"].encode(), bytes.fromhex(pre["signature"]))
            assert set(item["timings"]) >= {"presign_batch_ms", "sign_preprocessed_ms"}


def check(item: dict[str, object], public_key: bytes, message: bytes, signature: bytes) -> None:
    if item["protocol"] == "frost-ed25519":
        assert len(public_key) == 32 and len(signature) == 64
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    elif item["protocol"] == "frost-secp256k1-tr":
        assert len(public_key) == 32 and len(signature) == 64
        assert coincurve.PublicKeyXOnly(public_key).verify(signature, message)
    elif item["protocol"] == "frost-secp256k1":
        # ZF frost's verifier, given a public key package holding the group key alone
        assert len(public_key) == 33 and len(signature) == 65
        package = bytes.fromhex("00eed6b1b100") + public_key + b"\x00"
        b64 = base64.urlsafe_b64encode
        assert utility_secp256k1.verify(message, b64(package).decode(), b64(signature).decode())
    else:
        digest = hashlib.sha256(message).digest()
        assert len(public_key) == 33 and len(signature) == 65 and item["digest"] == digest.hex()
        recovered = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        assert recovered.format() == public_key
