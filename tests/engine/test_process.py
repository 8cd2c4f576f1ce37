"""The engine inside the real enclave process, over its unix socket: one party is `python -m
enclave` (with the sealing options), the other an in-process engine. Key generation, signing,
a restart that signs from the sealed shares and refuses the earlier boot's presignature, a
tampered blob, and a wrong sealing key."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine
from enclave.sealing import generate_key_file
from mpc.v1 import enclave_pb2 as pb
from signer.cli import build_parser
from signer.link.client import EnclaveClient, EnclaveRequestError, parse_address
from tests.conftest import REPO, EnclaveProcess
from tests.engine import relay
from tests.engine.conftest import FROST, GG20

PAIR = ("remote", "local")


class Remote:
    """The enclave process seen through the host-side transport client (duck-types Engine)."""

    def __init__(self, address: str) -> None:
        self.client = EnclaveClient(parse_address(address), call_timeout=60.0)

    async def start(self, request: pb.SessionStart) -> pb.SessionUpdate:
        return await self.client.session_start(request)

    async def deliver(self, request: pb.SessionDeliver) -> pb.SessionUpdate:
        return await self.client.session_deliver(request)


@pytest.fixture
def local(tmp_path: Path, prime_source: FixtureSource) -> Iterator[Engine]:
    engine = relay.make_engines(["local"], tmp_path, prime_source)["local"]
    yield engine
    engine.close()


def enclave_args(key: Path) -> list[str]:
    return [
        "--sealing-key-file",
        str(key),
        "--generate-sealing-key",
        "--preparams-pool-size",
        "1",
        # The process searches fresh safe primes (no fixtures): under a full suite on two cores
        # one pair can take longer than the 5 s default wait. Stay below the 60 s call timeout.
        "--preparams-wait-seconds",
        "50",
        "--max-sessions",
        "16",
    ]


async def test_sessions_through_the_enclave_process(
    tmp_path: Path, start_enclave: Callable[..., EnclaveProcess], local: Engine
) -> None:
    key_file = tmp_path / "remote.key"
    proc = start_enclave(extra_args=enclave_args(key_file))
    assert key_file.exists(), "--generate-sealing-key created the key file"
    remote = Remote(proc.address)
    parties = {"remote": remote, "local": local}
    try:
        info = await remote.client.info()
        assert set(info.protocols) == {GG20, FROST, pb.PROTOCOL_FROST_SECP256K1, pb.PROTOCOL_FROST_SECP256K1_TR}

        frost = relay.results(await relay.run(parties, {p: relay.dkg("p-frost", FROST, PAIR, 2, p) for p in PAIR}))
        gg20 = relay.results(await relay.run(parties, {p: relay.dkg("p-gg20", GG20, PAIR, 2, p) for p in PAIR}))
        assert frost["remote"].key_id == frost["local"].key_id and gg20["remote"].key_id == gg20["local"].key_id

        async def sign_both(tag: str) -> None:
            message = f"signed through the socket ({tag})".encode()
            out = relay.results(
                await relay.run(
                    parties, {p: relay.sign(f"f-{tag}", FROST, PAIR, p, frost[p].sealed_share, message) for p in PAIR}
                )
            )
            VerifyKey(frost["local"].public_key).verify(message, out["remote"].signature)
            digest = hashlib.sha256(message).digest()
            out = relay.results(
                await relay.run(
                    parties,
                    {p: relay.sign(f"g-{tag}", GG20, PAIR, p, gg20[p].sealed_share, digest, path=(3,)) for p in PAIR},
                )
            )
            sig = out["remote"].signature
            recovered = PublicKey.from_signature_and_message(sig, digest, hasher=None)
            assert recovered.format(compressed=True) == out["remote"].public_key

        await sign_both("before")
        # presign with the remote, then a restart: the sealed shares still work, the sealed
        # presignature does not (its per-boot key is gone with the old process)
        pre = relay.results(
            await relay.run(parties, {p: relay.presign("p-pre", PAIR, p, gg20[p].sealed_share) for p in PAIR})
        )
        await remote.client.close()
        proc.stop()
        proc.start()
        remote = Remote(proc.address)
        parties["remote"] = remote
        await sign_both("after-restart")
        digest = hashlib.sha256(b"with the presignature").digest()

        def with_presig(sid: str, p: str, blobs: dict[str, pb.SessionResult]) -> pb.SessionStart:
            return relay.sign(
                sid,
                GG20,
                PAIR,
                p,
                gg20[p].sealed_share,
                b"with the presignature",
                presignature=blobs[p].sealed_presignatures[0],
                message_hash=pb.MESSAGE_HASH_SHA256,
            )

        with pytest.raises(EnclaveRequestError) as exc:
            await remote.start(with_presig("g-old", "remote", pre))
        assert exc.value.code == pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT
        assert "sealed in an earlier enclave boot" in exc.value.message

        # a presignature of this boot signs once, and only once
        pre = relay.results(
            await relay.run(parties, {p: relay.presign("p-pre-2", PAIR, p, gg20[p].sealed_share) for p in PAIR})
        )
        out = relay.results(await relay.run(parties, {p: with_presig("g-pre", p, pre) for p in PAIR}))
        sig = out["remote"].signature
        assert out["remote"].presignature_id == pre["remote"].sealed_presignatures[0].id
        assert PublicKey(gg20["local"].public_key).verify(_der(sig), digest, hasher=None)
        assert PublicKey.from_signature_and_message(sig, digest, hasher=None).format() == gg20["local"].public_key
        with pytest.raises(EnclaveRequestError) as exc:
            await remote.start(with_presig("g-pre-again", "remote", pre))
        assert (exc.value.code, exc.value.message) == (pb.ERROR_CODE_FAILED_PRECONDITION, "presignature already used")

        # a tampered share: typed error over the wire, and the enclave keeps serving
        share = frost["remote"].sealed_share
        bad = pb.SealedBlob(kind=share.kind, id=share.id, data=share.data[:-1] + bytes([share.data[-1] ^ 1]))
        with pytest.raises(EnclaveRequestError) as exc:
            await remote.start(relay.sign("tampered", FROST, PAIR, "remote", bad, b"m"))
        assert exc.value.code == pb.ERROR_CODE_SEALED_BLOB_INVALID
        with pytest.raises(EnclaveRequestError) as exc:
            await remote.deliver(pb.SessionDeliver(session_id="never-started"))
        assert exc.value.code == pb.ERROR_CODE_NOT_FOUND
        await remote.client.ping()
    finally:
        await remote.client.close()


def _der(sig65: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(sig65[:32], "big"), int.from_bytes(sig65[32:64], "big"))


def test_wrong_sealing_key_refuses_to_start(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a.key")
    generate_key_file(tmp_path / "b.key")
    sock = f"unix://{tmp_path}/e.sock"
    cases = [
        # b's key against a's key check
        ["--sealing-key-file", str(tmp_path / "b.key"), "--sealing-meta", str(tmp_path / "a.key.meta.json")],
        ["--sealing-key-file", str(tmp_path / "missing.key")],
        ["--sealing-passphrase-file", str(tmp_path / "pass")],  # no --sealing-meta
    ]
    (tmp_path / "pass").write_text("correct horse\n")
    for extra in cases:
        run = subprocess.run(
            [sys.executable, "-m", "enclave", "--listen", sock, *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, run.stderr
        assert "cannot start" in run.stderr
    assert (
        "does not match"
        in subprocess.run(
            [sys.executable, "-m", "enclave", "--listen", sock, *cases[0]],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        ).stderr
    )


def test_passphrase_sealer_and_cli_pass_through(tmp_path: Path) -> None:
    from enclave.options import SetupError, open_parts

    meta = tmp_path / "sealer.json"
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    (tmp_path / "wrong").write_text("incorrect horse\n")
    parser = build_parser()
    base = ["enclave", "--listen", f"unix://{tmp_path}/e.sock", "--max-sessions", "7", "--preparams-pool-size", "3"]
    args = parser.parse_args(
        [
            *base,
            "--sealing-passphrase-file",
            str(tmp_path / "pass"),
            "--sealing-meta",
            str(meta),
            "--generate-sealing-key",
        ]
    )
    parts = open_parts(args)
    assert parts.config.max_sessions == 7 and parts.config.preparams_pool_size == 3 and parts.policy is None
    again = open_parts(
        parser.parse_args([*base, "--sealing-passphrase-file", str(tmp_path / "pass"), "--sealing-meta", str(meta)])
    )
    assert again.sealer.kind == "local"
    with pytest.raises(SetupError, match="does not match"):
        open_parts(
            parser.parse_args(
                [*base, "--sealing-passphrase-file", str(tmp_path / "wrong"), "--sealing-meta", str(meta)]
            )
        )
    vsock = parser.parse_args(["enclave", "--listen", "vsock://any:5000"])
    with pytest.raises(SetupError, match="no sealing key"):
        open_parts(vsock)


async def test_the_enclave_process_joins_a_reshare_under_its_attested_identity(
    tmp_path: Path, prime_source: FixtureSource, start_enclave: Callable[..., EnclaveProcess]
) -> None:
    """Two in-process parties move their FROST key to {a, b, remote}; the enclave process is new
    to the key and listed with InfoResponse.enclave_public_key (the key attestation binds), so its
    round-one signature is made by the key its boot created; then it signs with a (libsodium
    verifies). Listed with any other key, it refuses the start."""
    proc = start_enclave(extra_args=enclave_args(tmp_path / "remote.key"))
    remote = Remote(proc.address)
    local = relay.make_engines(["a", "b"], tmp_path, prime_source)
    parties: dict[str, Any] = {**local, "remote": remote}
    try:
        info = await remote.client.info()
        old = relay.results(await relay.run(local, {p: relay.dkg("r-dkg", FROST, ("a", "b"), 2, p) for p in local}))
        src = (old["a"].key_id, old["a"].public_key, old["a"].chain_code)
        source, new = (("a", "b"), 2, ("a", "b")), (("a", "b", "remote"), 2)

        def starts(sid: str, key: bytes) -> dict[str, pb.SessionStart]:
            shares = {p: old[p].sealed_share for p in local}
            return {p: relay.reshare(sid, FROST, source, new, p, shares.get(p), src, {"remote": key}) for p in new[0]}

        with pytest.raises(EnclaveRequestError) as exc:
            await remote.start(starts("r-wrong", relay.listed(local, ("a",), ())["a"])["remote"])
        assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION and "identity key" in exc.value.message
        moved = relay.results(await relay.run(parties, starts("r-move", info.enclave_public_key)))
        assert moved["remote"].public_key == old["a"].public_key and moved["remote"].HasField("sealed_share")
        shares = {p: r.sealed_share for p, r in moved.items()}
        signers = ("remote", "a")
        out = relay.results(
            await relay.run(
                parties, {p: relay.sign("r-sign", FROST, signers, p, shares[p], b"joined") for p in signers}
            )
        )
        VerifyKey(old["a"].public_key).verify(b"joined", out["remote"].signature)
    finally:
        await remote.client.close()
        for e in local.values():
            e.close()
