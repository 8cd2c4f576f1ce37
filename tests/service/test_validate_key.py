"""ValidateKey and `mpc-signer validate` through real processes: a good share, a tampered sealed
blob, another node's blob (under the same sealing key, and under another one), a share that
unseals but is inconsistent, and a public key the store misrecords; both protocols."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2

from door.protocols import PROTOCOL_NAMES
from enclave.engine import blobs
from enclave.engine.blobs import ShareRecord
from enclave.engine.validation import FROST_SUITES
from enclave.protocols.frost import wire
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.sealing import Binding, LocalSealer
from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.conftest import REPO, SignerProcess
from tests.service.conftest import FROST, GG20, PROTOCOLS, FixtureEnclave, Node, dkg, status_of

PARTIES = ("client", "signer-a", "signer-b")
FROST_SECP = pb.PROTOCOL_FROST_SECP256K1
TAPROOT = pb.PROTOCOL_FROST_SECP256K1_TR
ALL_PROTOCOLS = [*PROTOCOLS, pytest.param(FROST_SECP, id="frost-secp256k1"), pytest.param(TAPROOT, id="taproot")]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, start_signer: Callable[..., SignerProcess]) -> Any:
    """signer-a and signer-b share one sealing key (so their blobs open on each other's enclave);
    signer-d has its own."""
    made: list[Node] = []

    def node(name: str, key_from: Path | None, prime_slice: int) -> Node:
        workdir = tmp_path_factory.mktemp(f"validate-{name}")
        if key_from is not None:
            for f in ("sealing.key", "sealing.key.meta.json"):
                shutil.copy2(key_from / f, workdir / f)
        enclave = FixtureEnclave(f"unix://{workdir}/e.sock", workdir)
        enclave.prime_slice = prime_slice
        enclave.start()
        url = f"sqlite:{workdir}/signer.db"
        signer = start_signer(enclave, {"server": {"node_id": name}, "storage": {"url": url}})
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        made.append(Node(name, enclave, signer, url))
        return made[-1]

    a = node("signer-a", None, 1)
    b = node("signer-b", a.enclave.workdir, 2)
    d = node("signer-d", None, 2)
    yield a, b, d
    for n in made:
        n.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def keys(nodes: Any, ring: Any, dev_certs: Any) -> dict[int, pb.DKGResult]:
    from signer.client.client import SignerClient
    from signer.client.local import LocalNode
    from tests.service.fixture_enclave import prime_slice

    a, b, _ = nodes
    local = LocalNode(ring, prime_source=prime_slice(0))
    clients = [
        SignerClient.connect(
            n.target,
            ca=dev_certs.ca,
            cert=dev_certs.client_cert,
            key=dev_certs.client_key,
            hmac=ring,
            token_key=dev_certs.jwt_key,
        )
        for n in (a, b)
    ]
    try:
        relay = Relay({"client": local, "signer-a": clients[0], "signer-b": clients[1]})
        return {protocol: await dkg(relay, protocol, PARTIES, 2) for protocol in (FROST, GG20, FROST_SECP, TAPROOT)}
    finally:
        for c in clients:
            await c.close()
        await local.close()


def blob_of(node: Node, key_id: str) -> bytes:
    return bytes(node.raw_sql("SELECT sealed_share FROM keys WHERE key_id = ?", (key_id,))[0][0])


def put_blob(node: Node, key_id: str, data: bytes, public_key: bytes | None = None) -> None:
    node.raw_sql("DROP TRIGGER IF EXISTS keys_immutable")
    node.raw_sql("UPDATE keys SET sealed_share = ? WHERE key_id = ?", (data, key_id))
    if public_key is not None:
        node.raw_sql("UPDATE keys SET public_key = ? WHERE key_id = ?", (public_key, key_id))


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
async def test_a_good_share_is_valid_and_names_its_party(nodes, keys, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = nodes
    client = connect(a)
    key = keys[protocol]
    for party in ("", "signer-a"):
        answer = await client.validate_key(key.key_id, party)
        assert answer.validity == pb.KEY_VALIDITY_VALID, answer.reason
        assert (answer.key_id, answer.party_id, answer.protocol) == (key.key_id, "signer-a", protocol)
        assert answer.public_key == key.public_key and answer.reason == ""
    wrong = await client.validate_key(key.key_id, "signer-b")
    assert wrong.validity == pb.KEY_VALIDITY_WRONG_NODE and "'signer-a'" in wrong.reason


async def test_unknown_keys_and_bad_requests_have_precise_statuses(nodes, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(nodes[0])
    code, message = await status_of(client.validate_key("ab" * 32))
    assert code == grpc.StatusCode.NOT_FOUND and "not known on this node" in message
    code, message = await status_of(client.validate_key("not-a-key-id"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "key_id" in message
    code, message = await status_of(client.validate_key("ab" * 32, "bad party!"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "self_party_id" in message


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
async def test_tampered_foreign_and_inconsistent_shares_are_named(nodes, keys, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    a, b, d = nodes
    key = keys[protocol]
    good = blob_of(a, key.key_id)
    client = connect(a)
    try:
        tampered = bytearray(good)
        tampered[len(tampered) // 2] ^= 0x01
        put_blob(a, key.key_id, bytes(tampered))
        answer = await client.validate_key(key.key_id)
        assert answer.validity == pb.KEY_VALIDITY_FAILED_AUTHENTICATION and "authentication" in answer.reason
        assert answer.party_id == ""

        put_blob(a, key.key_id, blob_of(b, key.key_id))  # signer-b's blob, same sealing key: it opens
        answer = await client.validate_key(key.key_id)
        assert answer.validity == pb.KEY_VALIDITY_WRONG_NODE and answer.party_id == "signer-b"

        put_blob(a, key.key_id, _inconsistent(a, key.key_id, protocol, good))
        answer = await client.validate_key(key.key_id)
        assert answer.validity == pb.KEY_VALIDITY_INCONSISTENT_SHARE, answer.reason
        assert "public share" in answer.reason or "verifying share" in answer.reason

        put_blob(a, key.key_id, _inconsistent(a, key.key_id, protocol, good, chain_code=b"\x07" * 31))
        answer = await client.validate_key(key.key_id)
        assert answer.validity == pb.KEY_VALIDITY_INCONSISTENT_SHARE and "chain code is 31 bytes" in answer.reason

        put_blob(a, key.key_id, good, public_key=keys[FROST if protocol == GG20 else GG20].public_key)
        answer = await client.validate_key(key.key_id)
        assert answer.validity == pb.KEY_VALIDITY_INCONSISTENT_SHARE and "records for the key" in answer.reason
    finally:
        put_blob(a, key.key_id, good, public_key=key.public_key)
    assert (await client.validate_key(key.key_id)).validity == pb.KEY_VALIDITY_VALID

    # signer-a's key row in signer-d's store: another node's sealing key, refused as such.
    _copy_key_row(a, d, key.key_id)
    answer = await connect(d).validate_key(key.key_id)
    assert answer.validity == pb.KEY_VALIDITY_FAILED_AUTHENTICATION and "sealed under key" in answer.reason


def _inconsistent(node: Node, key_id: str, protocol: int, good: bytes, chain_code: bytes | None = None) -> bytes:
    """signer-a's share re-sealed with its own sealing key after changing the secret (or, given
    `chain_code`, only the record's chain code): it unseals, and only the consistency checks can tell."""
    workdir = node.enclave.workdir
    sealer = LocalSealer.from_key_file(workdir / "sealing.key")
    name = PROTOCOL_NAMES[protocol]
    index, plaintext = blobs.unseal(sealer, good, key_id=key_id, protocol=name, purpose="share")
    record = ShareRecord.decode(plaintext)
    if chain_code is not None:
        changed = dataclasses.replace(record, chain_code=chain_code)
        binding = Binding(key_id=key_id, protocol=name, party_id=index, purpose="share")
        return blobs.seal(sealer, changed.encode(), binding)
    if protocol in FROST_SUITES:
        cs = FROST_SUITES[protocol]
        key_bytes, public_bytes = blobs.unpack(record.share, 2)
        kp = wire.decode_key_package(cs, key_bytes)
        kp = dataclasses.replace(kp, signing_share=kp.signing_share + 1)
        share = blobs.pack(wire.encode_key_package(cs, kp), public_bytes)
    else:
        ks = KeyShare.from_bytes(record.share)
        share = dataclasses.replace(ks, secret=ks.secret + 1).to_bytes()
    changed = ShareRecord(
        record.protocol,
        record.key_id,
        record.threshold,
        record.parties,
        record.index,
        record.public_key,
        record.chain_code,
        share,
    )
    return blobs.seal(sealer, changed.encode(), Binding(key_id=key_id, protocol=name, party_id=index, purpose="share"))


def _copy_key_row(source: Node, target: Node, key_id: str) -> None:
    src = sqlite3.connect(source.store_url.removeprefix("sqlite:"))
    try:
        cur = src.execute("SELECT * FROM keys WHERE key_id = ?", (key_id,))
        columns = [c[0] for c in cur.description]
        row = cur.fetchone()
    finally:
        src.close()
    marks = ", ".join("?" for _ in columns)
    target.raw_sql(f"INSERT OR REPLACE INTO keys ({', '.join(columns)}) VALUES ({marks})", tuple(row))  # noqa: S608


def test_validate_checks_every_key_of_the_store(nodes, keys) -> None:  # type: ignore[no-untyped-def]
    a = nodes[0]

    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "signer.cli", "validate", *args, "--config", str(a.signer.config_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")},
        )

    done = validate()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {line["key_id"] for line in lines} == {k.key_id for k in keys.values()}
    assert all(line["validity"] == "KEY_VALIDITY_VALID" and line["party_id"] == "signer-a" for line in lines)

    victim = keys[GG20].key_id
    good = blob_of(a, victim)
    put_blob(a, victim, good[:-1] + bytes([good[-1] ^ 1]))
    try:
        done = validate()
        assert done.returncode == 1 and f"1 of {len(keys)} keys are not valid" in done.stderr
        verdicts = {json.loads(line)["key_id"]: json.loads(line)["validity"] for line in done.stdout.splitlines()}
        assert verdicts == {
            k.key_id: "KEY_VALIDITY_FAILED_AUTHENTICATION" if k.key_id == victim else "KEY_VALIDITY_VALID"
            for k in keys.values()
        }
        one = validate("--key-id", keys[FROST].key_id, "--party-id", "signer-b")
        assert one.returncode == 1 and json.loads(one.stdout)["validity"] == "KEY_VALIDITY_WRONG_NODE"
    finally:
        put_blob(a, victim, good)
