"""The signing policy through the whole stack: a real HTTPS policy callback on 127.0.0.1 started
here (test CA, approvals signed with a test P-256 policy key over the documented encoding), a
real enclave process started with --policy-key, a real signer over mTLS configured with policy.*,
and the caller's local party relaying a FROST 2-of-2 signature.

Approve: the signature verifies (PyNaCl). GG20 with a presignature: the callback is shown the
message, hash rule, derivation path and presignature id, and an approval it signs for another
digest, rule, path or presignature is refused by the enclave; the approved one signs (coincurve,
EVM address). Reject: PERMISSION_DENIED from the host. No answer in
time: DEADLINE_EXCEEDED. A callback that signs with another key (a host forging approvals), signs
another digest, or hands back an approval already used: the host relays it and the enclave
refuses with PERMISSION_DENIED. An approval replayed to a restarted enclave started with
--policy-boot-fence: refused too.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import grpc
import nacl.signing
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2

from door.digests import REPAIR_APPROVAL_TAG, RESHARE_APPROVAL_TAG
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec, repair_spec, reshare_spec
from signer.policy.client import NODE_HEADER, REQUEST_DOMAIN, SIGNATURE_HEADER
from tests.engine.test_gg20 import ckd_pub
from tests.service.conftest import FROST, GG20, KECCAK, all_ok, check_signature, dkg, keccak, presign, sign
from tests.tee.test_policy import Pki, QuietServer, documented_message, pki  # noqa: F401 (pki: fixture)

NODE = "node-1"
PARTIES = ("client", NODE)


@dataclass
class Callback:
    url: str
    node_public: ec.EllipticCurvePublicKey
    policy_key: ec.EllipticCurvePrivateKey
    mode: str = "approve"
    lifetime: int = 120  # seconds an approval is valid for
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)  # session id -> approval answer
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def _handler(cb: Callback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                signature = base64.b64decode(self.headers[SIGNATURE_HEADER], validate=True)
                cb.node_public.verify(signature, REQUEST_DOMAIN + body, ec.ECDSA(hashes.SHA256()))
            except (InvalidSignature, TypeError, ValueError):
                return self._send(401, {"error": "bad node signature"})
            if self.headers[NODE_HEADER] != NODE:
                return self._send(403, {"error": "unknown node"})
            request = json.loads(body)
            cb.requests.append(request)
            if cb.mode == "timeout":
                cb.release.wait(4)
                return self._send(200, {"decision": "reject", "reason": "too late"})
            if cb.mode == "reject":
                return self._send(200, {"decision": "reject", "reason": "amount above the daily limit"})
            if cb.mode == "replay":
                return self._send(200, cb.issued[request["session_id"]])
            # An operator's service decides on the message it is shown and recomputes the digest
            # itself (the host is not trusted to have hashed it honestly).
            rule = request["message_hash"]
            digest = recompute(rule, bytes.fromhex(request["message"]))
            path, presig = tuple(request["derivation_path"]), request["presignature_id"]
            key = cb.policy_key
            if cb.mode == "forged":
                key = ec.generate_private_key(ec.SECP256R1())
            elif cb.mode == "other-digest":
                digest = bytes(32)
            elif cb.mode == "other-rule":
                rule = "sha256" if rule != "sha256" else "keccak256"
            elif cb.mode == "other-path":
                path = (*path, 1)
            elif cb.mode == "other-presignature":
                presig = "ee" * 32
            expires_at = int(time.time()) + cb.lifetime
            message = documented_message(
                request["key_id"], rule, digest, path, presig, request["session_id"], expires_at
            )
            answer = {
                "decision": "approve",
                "expires_at": expires_at,
                "signature": base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode(),
            }
            cb.issued[request["session_id"]] = answer
            self._send(200, answer)

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def recompute(rule: str, message: bytes) -> bytes:
    """The digest rules as an operator's policy service would write them (hashlib, pycryptodome)."""
    if rule == "raw":
        return message
    if rule in ("reshare", "repair"):  # the message is the digest's preimage (door.digests)
        return hashlib.sha256(message).digest()
    if rule == "sha256":
        return hashlib.sha256(message).digest()
    if rule == "double-sha256":
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if rule == "eth-personal-message":
        message = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message
    elif rule != "keccak256":
        raise ValueError(rule)
    return pycryptodome_keccak.new(digest_bits=256, data=message).digest()


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def callback(pki: Pki) -> Iterator[Callback]:  # noqa: F811
    node_key = ec.generate_private_key(ec.SECP256R1())
    cb = Callback("", node_key.public_key(), ec.generate_private_key(ec.SECP256R1()))
    cb.node_key = node_key  # type: ignore[attr-defined]
    server = QuietServer(("127.0.0.1", 0), _handler(cb))
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    cb.url = f"https://127.0.0.1:{server.server_address[1]}/v1/approve"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield cb
    cb.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def node(start_tee_node, callback, pki, tmp_path_factory):  # type: ignore[no-untyped-def]  # noqa: F811
    d: Path = tmp_path_factory.mktemp("policy-keys")
    (d / "policy.pub").write_bytes(
        callback.policy_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (d / "node.key").write_bytes(_pem_private(callback.node_key))
    return start_tee_node(
        NODE,
        ["--policy-key", str(d / "policy.pub")],
        # Remember one finished session only, so a replay meets the approval check rather than
        # the finished-session check (both refuse; this test is about the first).
        {"MPC_TEST_FINISHED_RETENTION": "1"},
        {
            "policy": {
                "callback_url": callback.url,
                "ca_file": pki.ca_file,
                "node_key_file": d / "node.key",
                "timeout_seconds": 1.0,
            },
            "sessions": {"retention_seconds": 3.0, "sweep_interval_seconds": 0.2},
        },
    )


@pytest.fixture
async def key(node, local, connect, callback):  # type: ignore[no-untyped-def]
    callback.mode = "approve"
    relay = Relay({"client": local, NODE: connect(node)})
    return relay, await dkg(relay, FROST, PARTIES, 2)


async def relay_sign(relay: Relay, key_id: str, message: bytes, session_id: str) -> pb.SignResult:
    outcomes = await relay.run(SessionSpec("sign", session_id, FROST, PARTIES, key_id=key_id, message=message))  # type: ignore[arg-type]
    return all_ok(outcomes)[NODE].sign


async def start_at_node(client: Any, key_id: str, message: bytes, session_id: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(
            pb.StartSignRequest(
                session_id=session_id,
                protocol=FROST,
                key_id=key_id,
                message=message,
                party_ids=PARTIES,
                self_party_id=NODE,
            )
        )
    return err.value


async def test_approved_signature_verifies(key, callback) -> None:  # type: ignore[no-untyped-def]
    relay, dkg_result = key
    message = b"pay 1 ETH to bob"
    session_id = f"sign-{secrets.token_hex(6)}"
    result = await relay_sign(relay, dkg_result.key_id, message, session_id)
    nacl.signing.VerifyKey(dkg_result.public_key).verify(message, result.signature)
    asked = callback.requests[-1]
    assert asked["session_id"] == session_id and asked["key_id"] == dkg_result.key_id
    assert asked["node_id"] == NODE and asked["derivation_path"] == []
    assert asked["digest"] == hashlib.sha256(message).hexdigest()  # FROST: SHA-256 of the message
    assert asked["version"] == 2 and asked["message_hash"] == "sha256" and asked["message"] == message.hex()
    assert asked["presignature_id"] == ""


@pytest.mark.parametrize(
    ("mode", "code", "text"),
    [
        ("reject", grpc.StatusCode.PERMISSION_DENIED, "amount above the daily limit"),
        ("timeout", grpc.StatusCode.DEADLINE_EXCEEDED, "did not answer within 1s"),
        ("forged", grpc.StatusCode.PERMISSION_DENIED, "does not verify with the policy key"),
        ("other-digest", grpc.StatusCode.PERMISSION_DENIED, "does not verify with the policy key"),
    ],
)
async def test_refusals(key, node, connect, callback, mode, code, text) -> None:  # type: ignore[no-untyped-def]
    relay, dkg_result = key
    callback.mode = mode
    callback.release.clear()
    try:
        error = await start_at_node(connect(node), dkg_result.key_id, b"pay 9 ETH to mallory", f"s-{mode}")
    finally:
        callback.release.set()
        callback.mode = "approve"
    assert error.code() == code, error.details()
    assert text in (error.details() or "")
    # Nothing started: the same session id is free, and signs once approved.
    result = await relay_sign(relay, dkg_result.key_id, b"pay 9 ETH to mallory", f"s-{mode}")
    nacl.signing.VerifyKey(dkg_result.public_key).verify(b"pay 9 ETH to mallory", result.signature)


async def test_replayed_approval_is_refused_by_the_enclave(key, node, connect, callback) -> None:  # type: ignore[no-untyped-def]
    relay, dkg_result = key
    client = connect(node)
    message = b"pay 2 ETH to carol"
    first = f"sign-{secrets.token_hex(6)}"
    result = await relay_sign(relay, dkg_result.key_id, message, first)
    nacl.signing.VerifyKey(dkg_result.public_key).verify(message, result.signature)
    # Another signature, so the enclave forgets the first session; then the host forgets it too.
    await relay_sign(relay, dkg_result.key_id, b"something else", f"sign-{secrets.token_hex(6)}")
    deadline = time.monotonic() + 15
    while True:
        try:
            await client.sign_status(first)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline, "host kept the finished session"
        await asyncio.sleep(0.2)
    # An honest host refuses the used session id outright (its durable session_ids record) ...
    refused = await start_at_node(client, dkg_result.key_id, message, first)
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS, refused.details()
    # ... so play the compromised host: roll that record back, then start the same session again;
    # the callback (standing in for a host replaying what it relayed) answers with the approval
    # that already released a signature share.
    node.raw_sql("DELETE FROM session_ids WHERE session_id = ?", (first,))
    callback.mode = "replay"
    try:
        error = await start_at_node(client, dkg_result.key_id, message, first)
    finally:
        callback.mode = "approve"
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert "approval already used" in (error.details() or "")


async def test_gg20_approval_binds_rule_digest_path_and_presignature(  # type: ignore[no-untyped-def]
    node, local, connect, callback
) -> None:
    callback.mode = "approve"
    client = connect(node)
    relay = Relay({"client": local, NODE: client})
    key = await dkg(relay, GG20, PARTIES, 2)
    path, text = (44, 60, 0, 0, 1), b"send 7 ETH to 0x00000000000000000000000000000000000000dd"
    for mode in ("other-digest", "other-rule", "other-path", "other-presignature"):
        pid = await presign(relay, PARTIES, key.key_id, path)
        callback.mode = mode
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await client.start_sign(
                    pb.StartSignRequest(
                        session_id=f"g-{mode}",
                        protocol=GG20,
                        key_id=key.key_id,
                        message=text,
                        party_ids=PARTIES,
                        self_party_id=NODE,
                        presignature_id=pid,
                        derivation_path=path,
                        message_hash=KECCAK,
                    )
                )
        finally:
            callback.mode = "approve"
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (mode, err.value.details())
        assert "does not verify with the policy key" in (err.value.details() or ""), mode
        asked = callback.requests[-1]
        assert (asked["message_hash"], asked["message"]) == ("keccak256", text.hex())
        assert asked["digest"] == keccak(text).hex()
        assert (asked["derivation_path"], asked["presignature_id"]) == (list(path), pid)
    pid = await presign(relay, PARTIES, key.key_id, path)
    result = await sign(relay, GG20, PARTIES, key.key_id, text, pid, message_hash=KECCAK, path=path)
    assert result.presignature_id == pid and callback.requests[-1]["presignature_id"] == pid
    check_signature(GG20, ckd_pub(key.public_key, key.chain_code, path), keccak(text), result)

    # A used session id (one that ran before a restart of the host: only the store remembers it)
    # with a fresh presignature: refused before the policy is asked, and the presignature is kept
    # (the id is claimed with the presignature's take, after the approval; issue 17).
    node.raw_sql(
        "INSERT INTO session_ids (session_id, kind, started_at) VALUES (?, 'sign', '2026-01-01T00:00:00.000000Z')",
        ("g-ran-before",),
    )
    pid = await presign(relay, PARTIES, key.key_id, path)
    asked_before = len(callback.requests)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(
            pb.StartSignRequest(
                session_id="g-ran-before",
                protocol=GG20,
                key_id=key.key_id,
                message=text,
                party_ids=PARTIES,
                self_party_id=NODE,
                presignature_id=pid,
                derivation_path=path,
                message_hash=KECCAK,
            )
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "already used" in (err.value.details() or "")
    assert len(callback.requests) == asked_before
    assert node.raw_sql("SELECT state FROM presignatures WHERE presig_id = ?", (pid,)) == [("available",)]


async def test_host_without_a_callback_gets_nothing(start_tee_node, callback, local, connect, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The enclave enforces the policy whatever the host is configured to do."""
    (tmp_path / "policy.pub").write_bytes(
        callback.policy_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    bare = start_tee_node("bare-host", ["--policy-key", str(tmp_path / "policy.pub")])
    client = connect(bare)
    relay = Relay({"client": local, "bare-host": client})
    dkg_result = await dkg(relay, FROST, ("client", "bare-host"), 2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(
            pb.StartSignRequest(
                session_id="unapproved-1",
                protocol=FROST,
                key_id=dkg_result.key_id,
                message=b"no approval",
                party_ids=("client", "bare-host"),
                self_party_id="bare-host",
            )
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "approval required" in (err.value.details() or "")


async def test_approval_replayed_after_an_enclave_restart_is_fenced(  # type: ignore[no-untyped-def]
    start_tee_node,
    callback,
    pki,  # noqa: F811 (the imported fixture)
    local,
    connect,
    tmp_path,
) -> None:
    """The used-approval record is in memory: a host that restarts the enclave could show it an
    approval again. With --policy-boot-fence the restarted enclave refuses any approval an earlier
    boot could have accepted; fresh approvals with the full lifetime sign."""
    (tmp_path / "policy.pub").write_bytes(
        callback.policy_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "node.key").write_bytes(_pem_private(callback.node_key))
    fenced = start_tee_node(
        NODE,
        ["--policy-key", str(tmp_path / "policy.pub"), "--policy-boot-fence"],
        {},
        {
            "policy": {
                "callback_url": callback.url,
                "ca_file": pki.ca_file,
                "node_key_file": tmp_path / "node.key",
                "timeout_seconds": 1.0,
            },
            "sessions": {"retention_seconds": 1.0, "sweep_interval_seconds": 0.2},
        },
    )
    callback.mode, callback.lifetime = "approve", 600
    try:
        relay = Relay({"client": local, NODE: connect(fenced)})
        dkg_result = await dkg(relay, FROST, PARTIES, 2)
        message = b"pay 3 ETH to dave"
        first = f"sign-{secrets.token_hex(6)}"
        result = await relay_sign(relay, dkg_result.key_id, message, first)
        nacl.signing.VerifyKey(dkg_result.public_key).verify(message, result.signature)

        fenced.enclave.kill()  # the host restarts the enclave: its used-approval record is gone
        fenced.enclave.start()
        booted_by = time.time()  # the new boot's fence counts from a moment before this
        fenced.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        client = connect(fenced)
        deadline = time.monotonic() + 15
        while True:  # the host forgets the finished session (its own retention)
            try:
                await client.sign_status(first)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
                break
            assert time.monotonic() < deadline, "host kept the finished session"
            await asyncio.sleep(0.2)
        # An honest host refuses the used id (session_ids); the compromised host rolls that back.
        refused = await start_at_node(client, dkg_result.key_id, message, first)
        assert refused.code() == grpc.StatusCode.ALREADY_EXISTS, refused.details()
        fenced.raw_sql("DELETE FROM session_ids WHERE session_id = ?", (first,))
        callback.mode = "replay"
        error = await start_at_node(client, dkg_result.key_id, message, first)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
        assert "approval may predate this enclave boot" in (error.details() or "")

        # A fresh approval of the full lifetime signs: expiry is in whole seconds, so one made in
        # the second the enclave booted is refused as well; this one is made later.
        await asyncio.sleep(max(0.0, int(booted_by) + 1 - time.time()))
        callback.mode = "approve"
        relay = Relay({"client": local, NODE: client})
        other = b"pay 4 ETH to erin"
        result = await relay_sign(relay, dkg_result.key_id, other, f"sign-{secrets.token_hex(6)}")
        nacl.signing.VerifyKey(dkg_result.public_key).verify(other, result.signature)
    finally:
        callback.mode, callback.lifetime = "approve", 120


async def test_a_repair_helper_and_a_reshare_dealer_ask_the_policy(node, connect, callback, ring: HmacKeyRing) -> None:  # type: ignore[no-untyped-def]
    """With a policy configured, a repair helper's host asks the callback ("repair") before its
    enclave rebuilds a party's share for the key listed for it, and a reshare dealer's host asks
    too ("reshare"): the request's message is the digest's preimage, which names the P-256 key the
    share goes to, so the service can read what it approves. Approved, both finish and the key
    signs (PyNaCl); rejected, the start is PERMISSION_DENIED and nothing runs."""
    parties = ("client", NODE, "backup")
    callback.mode = "approve"
    n = connect(node)
    # the backup is a local party allowed to deal without a policy; the node has one
    backup, client = LocalNode(ring, deal_without_policy=True), LocalNode(ring)
    fresh, spare, recovered = LocalNode(ring), LocalNode(ring), LocalNode(ring)
    try:
        key = await dkg(Relay({"client": client, NODE: n, "backup": backup}), FROST, parties, 2)
        relay = Relay({"client": fresh, NODE: n, "backup": backup})
        spec = repair_spec(f"repair-{secrets.token_hex(6)}", key, (NODE, "backup"), "client")
        results = all_ok(await relay.run(spec))
        assert {r.dkg.key_id for r in results.values()} == {key.key_id}
        asked = callback.requests[-1]
        assert (asked["message_hash"], asked["session_id"], asked["key_id"]) == ("repair", spec.session_id, key.key_id)
        preimage = bytes.fromhex(asked["message"])
        assert hashlib.sha256(preimage).hexdigest() == asked["digest"] and preimage.startswith(REPAIR_APPROVAL_TAG)
        assert preimage.endswith(len(fresh.identity_public_key).to_bytes(4, "big") + fresh.identity_public_key)
        signed = await relay_sign(relay, key.key_id, b"repaired under a policy", f"s-{secrets.token_hex(6)}")
        nacl.signing.VerifyKey(key.public_key).verify(b"repaired under a policy", signed.signature)

        callback.mode = "reject"
        try:
            refused = repair_spec(f"repair-{secrets.token_hex(6)}", key, (NODE, "backup"), "client")
            request = dataclasses.replace(refused, new_party_keys={"client": spare.identity_public_key})
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await n.start_repair(request.repair_request(NODE))
        finally:
            callback.mode = "approve"
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "amount above the daily limit" in (err.value.details() or "")
        assert callback.requests[-1]["message_hash"] == "repair"

        relay = Relay({"client": recovered, NODE: n, "backup": backup})
        spec = reshare_spec(f"reshare-{secrets.token_hex(6)}", key, parties, 2, (NODE, "backup"))
        new = all_ok(await relay.run(spec))[NODE].dkg
        assert new.public_key == key.public_key and new.predecessor_key_id == key.key_id
        asked = callback.requests[-1]
        assert (asked["message_hash"], asked["session_id"]) == ("reshare", spec.session_id)
        preimage = bytes.fromhex(asked["message"])
        assert hashlib.sha256(preimage).hexdigest() == asked["digest"] and preimage.startswith(RESHARE_APPROVAL_TAG)
        assert recovered.identity_public_key in preimage
        signed = await relay_sign(relay, new.key_id, b"reshared under a policy", f"s-{secrets.token_hex(6)}")
        nacl.signing.VerifyKey(key.public_key).verify(b"reshared under a policy", signed.signature)
    finally:
        for local_node in (backup, client, fresh, spare, recovered):
            await local_node.close()
