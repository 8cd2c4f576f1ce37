"""Protocols through the service: real enclave processes, real signers over mTLS, real stores.

Fixtures
--------
start_node (module)
    Factory: `start_node(name, store="sqlite"|"postgresql", sessions=None, config=None)` starts an enclave
    process (`tests.service.fixture_enclave`: `python -m enclave` with fixture safe primes, its
    own sealing key file) and a signer in front of it (node id `name`, its own store: a SQLite
    file, or a fresh PostgreSQL schema dropped at the end; `config`: more signer config sections,
    e.g. {"metrics": {...}}). Returns a `Node`.
ring (session)
    The HMAC key ring of the dev credentials (the caller's and the signers' shared key "dev").
local (function)
    A `LocalNode` (the caller's party, engine in process) using fixture primes.
connect (function)
    `connect(node) -> SignerClient` over mTLS with the dev client certificate and minted JWTs;
    closed after the test.

Helpers: `dkg`, `sign`, `presign` run one relayed session and assert every party succeeded;
`keccak`, `verify_signature` check results independently.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from eth_hash.auto import keccak as _keccak
from eth_keys import keys as eth_keys
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.jwt import load_signing_key, mint_token, read_hex_secret
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import Outcome, SessionSpec
from signer.client.verify import verify
from signer.ops.devcerts import DevCertPaths
from tests.conftest import REPO, EnclaveProcess, SignerProcess
from tests.service.fixture_enclave import prime_slice

PG_BASE = os.environ.get("MPC_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
GG20 = pb.PROTOCOL_GG20_SECP256K1
FROST = pb.PROTOCOL_FROST_ED25519
PROTOCOLS = [pytest.param(FROST, id="frost"), pytest.param(GG20, id="gg20")]


class FixtureEnclave(EnclaveProcess):
    """The enclave process with fixture primes (its own slice) and its own sealing key file."""

    prime_slice = 1

    def start(self, timeout: float = 15.0) -> FixtureEnclave:
        import subprocess

        from tests.conftest import wait_for

        args = [
            sys.executable,
            "-m",
            "tests.service.fixture_enclave",
            "--listen",
            self.address,
            "--sealing-key-file",
            str(self.workdir / "sealing.key"),
            "--generate-sealing-key",
            *self.extra_args,
        ]
        env = {**os.environ, "MPC_TEST_PRIME_SLICE": str(self.prime_slice)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env=env)
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, f"enclave on {self.address}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"enclave exited with {self.proc.returncode}: {self.log()}")
        return self


@dataclass
class Node:
    name: str
    enclave: FixtureEnclave
    signer: SignerProcess
    store_url: str

    @property
    def target(self) -> str:
        return self.signer.target

    def stop(self, crash: bool = False) -> None:
        if crash:
            if self.signer.proc is not None and self.signer.proc.poll() is None:
                self.signer.proc.kill()
                self.signer.proc.wait(10)
            self.enclave.kill()
        else:
            self.signer.stop()
            self.enclave.stop()

    def start(self) -> None:
        self.enclave.start()
        self.signer.start()
        self.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)

    def raw_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on the node's store, bypassing the signer (for tampering)."""
        if self.store_url.startswith("sqlite:"):
            import sqlite3

            conn = sqlite3.connect(self.store_url.removeprefix("sqlite:"), isolation_level=None)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.store_url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s").encode(), params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def ring(dev_certs: DevCertPaths) -> HmacKeyRing:
    return HmacKeyRing({"dev": read_hex_secret(dev_certs.hmac_key)}, "dev")


@pytest.fixture(scope="module")
def start_node(
    tmp_path_factory: pytest.TempPathFactory, start_signer: Callable[..., SignerProcess]
) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []
    schemas: list[str] = []
    slices = itertools.cycle([1, 2])  # slice 0 is the local party's

    def start(
        name: str,
        store: str = "sqlite",
        sessions: Mapping[str, Any] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        enclave_args: Sequence[str] = (),
    ) -> Node:
        workdir = tmp_path_factory.mktemp(f"node-{name}")
        enclave = FixtureEnclave(f"unix://{workdir}/e.sock", workdir, extra_args=enclave_args)
        enclave.prime_slice = next(slices)
        enclave.start()
        if store == "postgresql":
            schema = f"test_service_{secrets.token_hex(6)}"
            with psycopg.connect(PG_BASE, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}".encode())
            schemas.append(schema)
            url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:{workdir}/signer.db"
        signer = start_signer(
            enclave,
            {
                "server": {"node_id": name},
                "storage": {"url": url},
                "sessions": dict(sessions or {}),
                **dict(config or {}),
            },
        )
        node = Node(name, enclave, signer, url)
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()
    if schemas:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


@pytest.fixture
async def local(ring: HmacKeyRing) -> AsyncIterator[LocalNode]:
    node = LocalNode(ring, prime_source=prime_slice(0))
    yield node
    await node.close()


def _client_factory(dev_certs: DevCertPaths, ring: HmacKeyRing, made: list[SignerClient], exchange: bool) -> Any:
    def make(node: Node, exchange: bool = exchange, **kw: Any) -> SignerClient:
        if "token" not in kw:
            kw["token_key"] = dev_certs.jwt_key
        client = SignerClient.connect(
            node.target,
            ca=dev_certs.ca,
            cert=dev_certs.client_cert,
            key=dev_certs.client_key,
            hmac=ring,
            exchange=exchange,
            **kw,
        )
        made.append(client)
        return client

    return make


@pytest.fixture
async def connect(dev_certs: DevCertPaths, ring: HmacKeyRing) -> AsyncIterator[Callable[..., SignerClient]]:
    """`connect(node)`: a SignerClient making unary calls, closed after the test."""
    clients: list[SignerClient] = []
    yield _client_factory(dev_certs, ring, clients, exchange=False)
    for client in clients:
        await client.close()


@pytest.fixture
async def clients(dev_certs: DevCertPaths, ring: HmacKeyRing) -> AsyncIterator[Callable[..., SignerClient]]:
    """`clients(node, exchange=True, **connect_kwargs)`: SignerClients (on an Exchange stream
    unless exchange=False), closed after the test."""
    made: list[SignerClient] = []
    yield _client_factory(dev_certs, ring, made, exchange=True)
    for client in made:
        await client.close()


def jwt_for(
    dev_certs: DevCertPaths, lifetime: int = 300, now: float | None = None, key_file: Path | None = None, **claims: Any
) -> str:
    """A service token from the dev JWT key (or `key_file`), claims overridable."""
    algorithm, key = load_signing_key(key_file or dev_certs.jwt_key)
    args: dict[str, Any] = dict(kid="dev", issuer="mpc-service", audience="mpc-signer", subject="relay")
    args.update(claims)
    return mint_token(key, algorithm, lifetime_seconds=lifetime, now=int(time.time() if now is None else now), **args)


async def status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and message a call fails with (it must fail)."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


def sid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def all_ok(outcomes: Mapping[str, Outcome]) -> dict[str, pb.SessionResult]:
    failures = {p: (o.state, o.failure) for p, o in outcomes.items() if not o.ok or o.result is None}
    assert not failures, failures
    return {p: o.result for p, o in outcomes.items() if o.result is not None}


async def dkg(relay: Relay, protocol: int, parties: tuple[str, ...], threshold: int) -> pb.DKGResult:
    results = all_ok(await relay.run(SessionSpec("dkg", sid("dkg"), protocol, parties, threshold=threshold)))  # type: ignore[arg-type]
    first = next(iter(results.values())).dkg
    assert all(r.dkg.key_id == first.key_id and r.dkg.public_key == first.public_key for r in results.values())
    assert len(first.key_id) == 64 and int(first.key_id, 16) >= 0
    assert len(first.public_key) == (33 if protocol in (GG20, pb.PROTOCOL_FROST_SECP256K1) else 32)
    return first


async def sign(
    relay: Relay,
    protocol: int,
    signers: tuple[str, ...],
    key_id: str,
    message: bytes,
    presignature_id: str = "",
    *,
    message_hash: int = pb.MESSAGE_HASH_UNSPECIFIED,
    path: tuple[int, ...] = (),
) -> pb.SignResult:
    """GG20: `message` is the 32-byte digest (message_hash unspecified) or the message the enclave
    hashes by `message_hash` (which a presignature needs)."""
    spec = SessionSpec(
        "sign",
        sid("sign"),
        protocol,
        signers,
        key_id=key_id,
        message=message,  # type: ignore[arg-type]
        presignature_id=presignature_id,
        message_hash=message_hash,  # type: ignore[arg-type]
        derivation_path=path,
    )
    results = all_ok(await relay.run(spec))
    signatures = {r.sign.signature for r in results.values()}
    assert len(signatures) == 1, "every signer must output the same signature"
    return next(iter(results.values())).sign


async def presign(relay: Relay, signers: tuple[str, ...], key_id: str, path: tuple[int, ...] = ()) -> str:
    spec = SessionSpec("presign", sid("pre"), GG20, signers, key_id=key_id, derivation_path=path)
    results = all_ok(await relay.run(spec))
    assert all(tuple(r.presign.derivation_path) == path for r in results.values())
    ids = {r.presign.presignature_id for r in results.values()}
    assert len(ids) == 1 and len(next(iter(ids))) > 0
    return ids.pop()


def keccak(data: bytes) -> bytes:
    return bytes(_keccak(data))


def message_for(protocol: int, text: bytes) -> bytes:
    """What StartSign takes without a hash rule: a Keccak-256 digest for GG20 (Ethereum style), the
    message for FROST. With a presignature, GG20 takes `text` with KECCAK instead (the enclave
    hashes it to this same digest)."""
    return keccak(text) if protocol == GG20 else text


KECCAK = pb.MESSAGE_HASH_KECCAK256


def check_signature(protocol: int, public_key: bytes, message: bytes, result: pb.SignResult) -> None:
    """Independent checks: libsecp256k1 / libsodium, and for ECDSA eth_keys address recovery."""
    assert verify(protocol, public_key, message, result.signature)
    if protocol == GG20:
        assert result.digest == message, "SignResult.digest is the digest the enclave signed"
        assert len(result.signature) == 65 and result.recovery_id == result.signature[64]
        recovered = eth_keys.Signature(result.signature).recover_public_key_from_msg_hash(message)
        expected = eth_keys.PublicKey.from_compressed_bytes(public_key)
        assert recovered.to_checksum_address() == expected.to_checksum_address()
    else:
        assert len(result.signature) == 64
