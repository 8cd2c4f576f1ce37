"""`mpc-signer demo`: key generation and a signature for each protocol, end to end, verified.

The caller's party (P1, a `LocalNode` in this process) and one signer node run a 2-of-2 key
generation, then sign, for each protocol: FROST Ed25519, FROST(secp256k1, SHA-256), FROST
Taproot (BIP340) and GG20; GG20 signs in the production shape (a presignature first, then the
one-round online signature), and each FROST key also signs from preprocessed commitments: a
batch of nonces presigned in one round, then one StartSign call on the signer ("preprocessed":
{batch, presignature_id, signer_calls: 1, message, signature, verified}). Each signature is
checked outside mpc-signer's protocol code (signer.client.verify): libsecp256k1 (coincurve)
for ECDSA (the digest is SHA-256 of the message) and BIP340, libsodium (PyNaCl) for Ed25519,
the Schnorr equation on libsecp256k1 points for FROST(secp256k1). Prints a JSON list of
{protocol, key_id, public_key, message, signature, verified, timings}; exits non-zero if any check fails.

Without --target it starts its own enclave process and an in-process signer on free ports in a
temporary directory with development credentials made on the spot; with --target it uses a
running signer (e.g. `make run`'s on 127.0.0.1:9091 with var/certs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.jwt import read_hex_secret
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay, RelayError
from signer.client.spec import SessionSpec, require_ok
from signer.client.verify import verify
from signer.ops.lifecycle_demo import LIFECYCLE_PROTOCOLS, default_local_factory, lifecycle_verified, run_lifecycle

CLIENT_PARTY = "client"
SIGNER_PARTY = "signer"
PRESIGN_BATCH = 4  # FROST nonces the demo preprocesses per key
# The order the demo runs them in (names from door.protocols).
DEMO_PROTOCOLS: tuple[pb.Protocol, ...] = (
    pb.PROTOCOL_FROST_ED25519,
    pb.PROTOCOL_FROST_SECP256K1,
    pb.PROTOCOL_FROST_SECP256K1_TR,
    pb.PROTOCOL_GG20_SECP256K1,
)


@dataclass(frozen=True)
class Target:
    address: str
    ca: Path
    cert: Path
    key: Path
    token_key: Path
    hmac_key: Path
    hmac_key_id: str = "dev"
    server_name: str | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def enclave_command(listen: str, workdir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The enclave process the embedded demo starts: a fresh sealing key in the temp dir."""
    return [
        sys.executable,
        "-m",
        "enclave",
        "--listen",
        listen,
        "--sealing-key-file",
        str(workdir / "sealing.key"),
        "--generate-sealing-key",
        *extra,
    ]


@contextlib.asynccontextmanager
async def embedded_signer(enclave_args: tuple[str, ...] = ()) -> AsyncIterator[Target]:
    """An enclave child process and an in-process signer host, torn down on exit."""
    from signer.config.loader import load_config
    from signer.ops.devcerts import write_dev_certs
    from signer.server import Credentials, SignerServer

    with tempfile.TemporaryDirectory(prefix="mpc-signer-demo-") as tmp:
        work = Path(tmp)
        certs = write_dev_certs(work / "certs")
        socket_path = work / "enclave.sock"
        log = open(work / "enclave.log", "wb")  # noqa: SIM115 - closed below
        enclave = subprocess.Popen(enclave_command(f"unix://{socket_path}", work, enclave_args), stdout=log, stderr=log)
        port = _free_port()
        config_path = work / "signer.toml"
        config_path.write_text(
            "\n".join(
                [
                    "[server]",
                    f'listen = "127.0.0.1:{port}"',
                    'node_id = "demo-signer"',
                    "grace_seconds = 0.5",
                    "[tls]",
                    f'ca_file = "{certs.ca}"',
                    f'cert_file = "{certs.server_cert}"',
                    f'key_file = "{certs.server_key}"',
                    "[jwt]",
                    f'keys = {{ dev = "{certs.jwt_pub}" }}',
                    "[hmac]",
                    f'keys = {{ dev = "{certs.hmac_key}" }}',
                    'active_key_id = "dev"',
                    "[enclave]",
                    'mode = "external"',
                    f'address = "unix://{socket_path}"',
                    "[storage]",
                    f'url = "sqlite:{work}/signer.db"',
                    "",
                ]
            )
        )
        server: SignerServer | None = None
        try:
            deadline = time.monotonic() + 30
            while not socket_path.exists():
                if enclave.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the enclave did not start: {(work / 'enclave.log').read_text()}")
                await asyncio.sleep(0.05)
            config = load_config(config_path, environ={})
            server = await SignerServer.open(config, Credentials.load(config))
            await server.start()
            while not await server.watcher.check_once():
                if time.monotonic() > deadline:
                    raise RuntimeError("the signer never saw its enclave answer")
                await asyncio.sleep(0.1)
            yield Target(
                address=f"127.0.0.1:{port}",
                ca=certs.ca,
                cert=certs.client_cert,
                key=certs.client_key,
                token_key=certs.jwt_key,
                hmac_key=certs.hmac_key,
            )
        finally:
            if server is not None:
                await server.stop()
            enclave.terminate()
            try:
                enclave.wait(10)
            except subprocess.TimeoutExpired:
                enclave.kill()
            log.close()


async def run_protocol(protocol: pb.Protocol, relay: Relay, message: bytes) -> dict[str, Any]:
    parties = (CLIENT_PARTY, SIGNER_PARTY)
    tag = secrets.token_hex(6)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dkg = require_ok(await relay.run(SessionSpec("dkg", f"demo-dkg-{tag}", protocol, parties, threshold=2)), "DKG")
    timings["dkg_ms"] = (time.perf_counter() - t0) * 1000
    results = [o.result.dkg for o in dkg.values() if o.result is not None]
    key = results[0]
    if any(r.key_id != key.key_id or r.public_key != key.public_key for r in results):
        raise RuntimeError("the parties disagree on the key id or public key")
    signed = hashlib.sha256(message).digest() if protocol == pb.PROTOCOL_GG20_SECP256K1 else message
    presignature_id = ""
    if protocol == pb.PROTOCOL_GG20_SECP256K1:
        t0 = time.perf_counter()
        pre = require_ok(
            await relay.run(SessionSpec("presign", f"demo-pre-{tag}", protocol, parties, key_id=key.key_id)),
            "presigning",
        )
        timings["presign_ms"] = (time.perf_counter() - t0) * 1000
        presignature_id = next(iter(pre.values())).result.presign.presignature_id  # type: ignore[union-attr]
    t0 = time.perf_counter()
    # GG20: the message goes to the enclaves with its hash rule (a presignature never signs a bare
    # digest), and each returns the digest it made.
    rule = pb.MESSAGE_HASH_SHA256 if protocol == pb.PROTOCOL_GG20_SECP256K1 else pb.MESSAGE_HASH_UNSPECIFIED
    sign = require_ok(
        await relay.run(
            SessionSpec(
                "sign",
                f"demo-sign-{tag}",
                protocol,
                parties,
                key_id=key.key_id,
                message=message,
                presignature_id=presignature_id,
                message_hash=rule,
            )
        ),
        "signing",
    )
    timings["sign_ms"] = (time.perf_counter() - t0) * 1000
    signatures = {o.result.sign.signature for o in sign.values() if o.result is not None}
    signature = sign[SIGNER_PARTY].result.sign.signature  # type: ignore[union-attr]
    digests = {o.result.sign.digest for o in sign.values() if o.result is not None}
    verified = (
        len(signatures) == 1
        and verify(protocol, key.public_key, signed, signature)
        and digests == ({signed} if protocol == pb.PROTOCOL_GG20_SECP256K1 else {b""})
    )
    item: dict[str, Any] = {
        "protocol": PROTOCOL_NAMES[protocol],
        "key_id": key.key_id,
        "public_key": key.public_key.hex(),
        "message": message.decode(),
        "digest": signed.hex() if signed != message else None,
        "signature": signature.hex(),
        "verified": verified,
    }
    if protocol != pb.PROTOCOL_GG20_SECP256K1:
        item["preprocessed"] = await preprocessed_sign(protocol, relay, key, message + b" (preprocessed)", timings)
        item["verified"] = verified and item["preprocessed"]["verified"]
    item["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return item


async def preprocessed_sign(
    protocol: pb.Protocol, relay: Relay, key: pb.DKGResult, message: bytes, timings: dict[str, float]
) -> dict[str, Any]:
    """FROST from preprocessed commitments: a batch of PRESIGN_BATCH nonces in one presigning
    round, then a signature with the first in one StartSign call on the signer (its answer
    carries its share and the signature), the caller's party taking the signer's share."""
    parties = (CLIENT_PARTY, SIGNER_PARTY)
    tag = secrets.token_hex(6)
    t0 = time.perf_counter()
    batch = SessionSpec("presign", f"demo-nonces-{tag}", protocol, parties, key_id=key.key_id, count=PRESIGN_BATCH)
    pre = require_ok(await relay.run(batch), "FROST presigning")
    timings["presign_batch_ms"] = (time.perf_counter() - t0) * 1000
    ids = list(pre[SIGNER_PARTY].result.presign.presignature_ids)  # type: ignore[union-attr]
    if len(ids) != PRESIGN_BATCH or any(list(o.result.presign.presignature_ids) != ids for o in pre.values()):  # type: ignore[union-attr]
        raise RuntimeError("the parties disagree on the batch of presignature ids")
    spec = SessionSpec(
        "sign", f"demo-sign1-{tag}", protocol, parties, key_id=key.key_id, message=message, presignature_id=ids[0]
    )
    t0 = time.perf_counter()
    mine = relay.nodes[CLIENT_PARTY].party(CLIENT_PARTY)
    signer = relay.nodes[SIGNER_PARTY].party(SIGNER_PARTY)
    share = await mine.start(spec)
    answer = await signer.start(spec, share)  # the one call to the signer node
    if not signer.outcome.ok or signer.outcome.result is None:
        raise RuntimeError(f"the signer did not finish in one call: {signer.outcome.failure}")
    await mine.deliver(answer)
    timings["sign_preprocessed_ms"] = (time.perf_counter() - t0) * 1000
    if not mine.outcome.ok or mine.outcome.result is None:
        raise RuntimeError(f"the caller's party did not finish: {mine.outcome.failure}")
    signature = signer.outcome.result.sign.signature
    return {
        "batch": len(ids),
        "presignature_id": ids[0],
        "signer_calls": 1,
        "message": message.decode(),
        "signature": signature.hex(),
        "verified": mine.outcome.result.sign.signature == signature
        and verify(protocol, key.public_key, message, signature),
    }


async def demo(target: Target | None, lifecycle: bool = False) -> list[dict[str, Any]]:
    async with contextlib.AsyncExitStack() as stack:
        if target is None:
            # the lifecycle's signer deals a reshare with no policy service (a development setup)
            extra = ("--allow-reshare-without-policy",) if lifecycle else ()
            target = await stack.enter_async_context(embedded_signer(extra))
        ring = HmacKeyRing({target.hmac_key_id: read_hex_secret(target.hmac_key)}, target.hmac_key_id)
        client = SignerClient.connect(
            target.address,
            ca=target.ca,
            cert=target.cert,
            key=target.key,
            hmac=ring,
            token_key=target.token_key,
            server_name=target.server_name,
            exchange=True,  # one stream for all the session calls
        )
        stack.push_async_callback(client.close)
        if lifecycle:
            make_local = default_local_factory(ring)
            return [await run_lifecycle(protocol, client, make_local) for protocol in LIFECYCLE_PROTOCOLS]
        local = LocalNode(ring)
        stack.push_async_callback(local.close)
        summary = []
        for protocol in DEMO_PROTOCOLS:
            relay = Relay({CLIENT_PARTY: local, SIGNER_PARTY: client})
            message = f"mpc-signer demo {PROTOCOL_NAMES[protocol]} {time.time():.0f}".encode()
            summary.append(await run_protocol(protocol, relay, message))
        return summary


def main(target: Target | None, lifecycle: bool = False) -> int:
    try:
        summary = asyncio.run(demo(target, lifecycle))
    except grpc.aio.AioRpcError as exc:
        print(f"mpc-signer demo: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (RuntimeError, RelayError, OSError, ValueError) as exc:
        print(f"mpc-signer demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    if lifecycle:
        return 0 if lifecycle_verified(summary) else 1
    return 0 if summary and all(item["verified"] for item in summary) else 1
