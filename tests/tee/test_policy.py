"""Signing policy end to end: a real HTTPS policy callback on 127.0.0.1 (test CA), the host's
PolicyClient asking it, and the enclave's PolicyVerifier deciding.

The callback server is written the way an operator would write one: it verifies the node's
request signature with `cryptography`, and signs approvals over the documented encoding, which it
builds itself (not with enclave.policy), so the encoding is checked against its description.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from enclave.engine.approval import decode_approval
from enclave.policy import (
    Approval,
    ApprovalRejected,
    ApprovalSubject,
    PolicyVerifier,
    approval_message,
    load_policy_key,
)
from mpc.v1 import enclave_pb2 as epb
from signer.policy.client import (
    NODE_HEADER,
    REQUEST_DOMAIN,
    SIGNATURE_HEADER,
    ApprovalRequest,
    PolicyCallbackConfig,
    PolicyClient,
    PolicyRejected,
    PolicyTimeout,
    PolicyUnavailable,
)

KEY_ID = "key-7f3a"
DIGEST = bytes.fromhex("11" * 32)
OTHER_DIGEST = bytes.fromhex("22" * 32)
PATH = (44, 60, 0, 0, 7)
SESSION = "sess-0001"
RULE = "keccak256"
PRESIG = "ab" * 32
MESSAGE = b"the message the policy service sees"
NOW = 1_795_000_000


def documented_message(
    key_id: str, rule: str, digest: bytes, path: tuple[int, ...], presig: str, session: str, expires_at: int
) -> bytes:
    """The approval encoding (v2) as docs/nitro.md describes it, written out independently."""

    def lp(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    return (
        lp(b"mpc-signer/policy-approval/v2")
        + lp(key_id.encode())
        + lp(rule.encode())
        + lp(digest)
        + lp(b"".join(i.to_bytes(4, "big") for i in path))
        + lp(presig.encode())
        + lp(session.encode())
        + struct.pack(">Q", expires_at)
    )


def subject(digest: bytes = DIGEST, session: str = SESSION, **change: Any) -> ApprovalSubject:
    fields: dict[str, Any] = {
        "key_id": KEY_ID,
        "message_hash": RULE,
        "digest": digest,
        "derivation_path": PATH,
        "presignature_id": PRESIG,
        "session_id": session,
        **change,
    }
    return ApprovalSubject(**fields)


# --- TLS material ---------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    other_ca_file: Path
    server_cert: Path
    server_key: Path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("policy-test-ca", ca_key, None, ca_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("some-other-ca", other_key, None, other_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("policy.local", server_key, ca, ca_key, ca=False)
    (d / "ca.pem").write_bytes(_pem(ca))
    (d / "other-ca.pem").write_bytes(_pem(other))
    (d / "server.pem").write_bytes(_pem(server))
    (d / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(d / "ca.pem", d / "other-ca.pem", d / "server.pem", d / "server.key")


# --- the policy callback server -------------------------------------------------------------


@dataclass
class Callback:
    url: str
    node_public: ec.EllipticCurvePublicKey
    policy_key: ec.EllipticCurvePrivateKey
    mode: str = "approve"
    lifetime: int = 60
    clock: float = NOW
    seen: list[dict[str, Any]] = field(default_factory=list)
    signature_ok: list[bool] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def _handler(cb: Callback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                sig = base64.b64decode(self.headers[SIGNATURE_HEADER], validate=True)
                cb.node_public.verify(sig, REQUEST_DOMAIN + body, ec.ECDSA(hashes.SHA256()))
                ok = self.headers[NODE_HEADER] == "node-1"
            except (InvalidSignature, TypeError, ValueError):
                ok = False
            cb.signature_ok.append(ok)
            if not ok:
                return self._send(401, {"error": "unknown node or bad signature"})
            request = json.loads(body)
            cb.seen.append(request)
            if cb.mode == "timeout":
                cb.release.wait(5)
                return self._send(200, {"decision": "reject", "reason": "too late"})
            if cb.mode == "reject":
                return self._send(200, {"decision": "reject", "reason": "amount above the daily limit\x07"})
            digest = bytes.fromhex(request["digest"])
            signing_key = cb.policy_key
            expires_at = int(cb.clock) + cb.lifetime
            if cb.mode == "forged":
                signing_key = ec.generate_private_key(ec.SECP256R1())
            elif cb.mode == "other-digest":
                digest = OTHER_DIGEST
            elif cb.mode == "expired":
                expires_at = int(cb.clock) - 1
            message = documented_message(
                request["key_id"],
                request["message_hash"],
                digest,
                tuple(request["derivation_path"]),
                request["presignature_id"],
                request["session_id"],
                expires_at,
            )
            signature = signing_key.sign(message, ec.ECDSA(hashes.SHA256()))
            self._send(
                200,
                {"decision": "approve", "expires_at": expires_at, "signature": base64.b64encode(signature).decode()},
            )

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that abort the TLS handshake on purpose (CA pinning test) are expected


@pytest.fixture
def node_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def callback(pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> Iterator[Callback]:
    cb = Callback(url="", node_public=node_key.public_key(), policy_key=ec.generate_private_key(ec.SECP256R1()))
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
    thread.join(5)


def client_for(cb: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey, **kw: Any) -> PolicyClient:
    cfg: dict[str, Any] = {
        "url": cb.url,
        "ca_file": pki.ca_file,
        "node_id": "node-1",
        "node_key": node_key,
        "timeout": 3.0,
    }
    cfg.update(kw)
    return PolicyClient(PolicyCallbackConfig(**cfg))


def verifier_for(cb: Callback) -> PolicyVerifier:
    pem = cb.policy_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PolicyVerifier(load_policy_key(pem), clock=lambda: cb.clock)


def approval_request(digest: bytes = DIGEST, session: str = SESSION) -> ApprovalRequest:
    return ApprovalRequest(KEY_ID, RULE, MESSAGE, digest, PATH, PRESIG, session)


def fetch(client: PolicyClient, digest: bytes = DIGEST, session: str = SESSION) -> Approval:
    grant = client.request_approval(approval_request(digest, session))
    r = grant.request
    return Approval(
        ApprovalSubject(r.key_id, r.message_hash, r.digest, r.derivation_path, r.presignature_id, r.session_id),
        grant.expires_at,
        grant.signature,
    )


def check(
    verifier: PolicyVerifier, approval: Approval, digest: bytes = DIGEST, session: str = SESSION, **change: Any
) -> None:
    verifier.verify_approval(approval, subject(digest, session, **change))


# --- tests ----------------------------------------------------------------------------------


def test_encoding_matches_documentation() -> None:
    expected = documented_message(KEY_ID, RULE, DIGEST, PATH, PRESIG, SESSION, NOW)
    assert approval_message(subject(), NOW) == expected


def test_v1_approvals_are_refused_by_name() -> None:
    signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"
    v1 = epb.PolicyApproval(version=1, expires_at=NOW, signature=signature)
    with pytest.raises(ApprovalRejected, match="v1 is no longer accepted"):
        decode_approval(v1, subject())
    with pytest.raises(ApprovalRejected, match="malformed"):
        decode_approval(epb.PolicyApproval(version=3, expires_at=NOW, signature=signature), subject())


def test_approve(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    approval = fetch(client_for(callback, pki, node_key))
    check(verifier_for(callback), approval)
    assert callback.signature_ok == [True]
    sent = callback.seen[0]
    assert sent["digest"] == DIGEST.hex() and sent["derivation_path"] == list(PATH)
    assert sent["key_id"] == KEY_ID and sent["session_id"] == SESSION and sent["node_id"] == "node-1"
    assert sent["version"] == 2 and sent["message_hash"] == RULE and sent["presignature_id"] == PRESIG
    assert sent["message"] == MESSAGE.hex()


async def test_approve_async(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    grant = await client_for(callback, pki, node_key).request_approval_async(approval_request())
    assert grant.expires_at == NOW + 60


def test_reject(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.mode = "reject"
    with pytest.raises(PolicyRejected) as info:
        fetch(client_for(callback, pki, node_key))
    assert info.value.status == "PERMISSION_DENIED"
    assert info.value.reason == "amount above the daily limit"  # control character dropped


def test_timeout(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.mode = "timeout"
    started = time.monotonic()
    with pytest.raises(PolicyTimeout) as info:
        fetch(client_for(callback, pki, node_key, timeout=0.5))
    assert info.value.status == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 2.5


def test_forged_approval(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.mode = "forged"
    approval = fetch(client_for(callback, pki, node_key))
    with pytest.raises(ApprovalRejected, match="does not verify with the policy key"):
        check(verifier_for(callback), approval)


def test_approval_signed_for_another_digest(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.mode = "other-digest"
    approval = fetch(client_for(callback, pki, node_key))
    with pytest.raises(ApprovalRejected, match="does not verify"):
        check(verifier_for(callback), approval)


def test_valid_approval_presented_for_another_digest(
    callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey
) -> None:
    verifier = verifier_for(callback)
    approval = fetch(client_for(callback, pki, node_key))
    with pytest.raises(ApprovalRejected, match="another digest"):
        check(verifier, approval, digest=OTHER_DIGEST)
    # a host that rewrites the carried fields to match gets a signature failure instead
    rewritten = Approval(subject(OTHER_DIGEST), approval.expires_at, approval.signature)
    with pytest.raises(ApprovalRejected, match="does not verify"):
        check(verifier, rewritten, digest=OTHER_DIGEST)
    with pytest.raises(ApprovalRejected, match="another session"):
        check(verifier, approval, session="sess-0002")
    with pytest.raises(ApprovalRejected, match="another message hash rule"):
        check(verifier, approval, message_hash="sha256")
    with pytest.raises(ApprovalRejected, match="another presignature"):
        check(verifier, approval, presignature_id="cd" * 32)
    with pytest.raises(ApprovalRejected, match="another derivation path"):
        check(verifier, approval, derivation_path=(44, 60, 0, 0, 8))
    for change in ({"message_hash": "sha256"}, {"presignature_id": ""}, {"derivation_path": ()}):
        moved = Approval(subject(**change), approval.expires_at, approval.signature)
        with pytest.raises(ApprovalRejected, match="does not verify"):
            check(verifier, moved, **change)
    check(verifier, approval)  # the failures did not consume it


def test_replayed_approval(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    verifier = verifier_for(callback)
    approval = fetch(client_for(callback, pki, node_key))
    check(verifier, approval)
    with pytest.raises(ApprovalRejected, match="already used"):
        check(verifier, approval)
    # the malleated twin (r, n - s) is the same approval, still refused
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    r, s = decode_dss_signature(approval.signature)
    twin = Approval(subject(), approval.expires_at, encode_dss_signature(r, n - s))
    with pytest.raises(ApprovalRejected, match="already used"):
        check(verifier, twin)


def test_expired_approval(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.mode = "expired"
    with pytest.raises(ApprovalRejected, match="expired"):
        check(verifier_for(callback), fetch(client_for(callback, pki, node_key)))


def test_approval_expires_by_the_enclave_clock(
    callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey
) -> None:
    approval = fetch(client_for(callback, pki, node_key))
    late = PolicyVerifier(verifier_for(callback)._key, clock=lambda: NOW + 61)
    with pytest.raises(ApprovalRejected, match="expired"):
        check(late, approval)


def test_overlong_lifetime_refused(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    callback.lifetime = 3600
    with pytest.raises(ApprovalRejected, match="lifetime"):
        check(verifier_for(callback), fetch(client_for(callback, pki, node_key)))


def test_server_verifies_the_node_signature(callback: Callback, pki: Pki) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(PolicyRejected, match="HTTP 401"):
        fetch(client_for(callback, pki, impostor))
    assert callback.signature_ok == [False]
    assert callback.seen == []


def test_callback_ca_is_pinned(callback: Callback, pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(PolicyUnavailable, match="TLS"):
        fetch(client_for(callback, pki, node_key, ca_file=pki.other_ca_file))
    assert callback.seen == []


def test_unreachable_callback(pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = PolicyCallbackConfig(
        url=f"https://127.0.0.1:{port}/", ca_file=pki.ca_file, node_id="node-1", node_key=node_key, timeout=2.0
    )
    with pytest.raises(PolicyUnavailable):
        PolicyClient(cfg).request_approval(approval_request())


def test_config_requires_https(pki: Pki, node_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError, match="https"):
        PolicyCallbackConfig(url="http://127.0.0.1/", ca_file=pki.ca_file, node_id="n", node_key=node_key)


def test_boot_fence_refuses_approvals_an_earlier_boot_could_have_accepted() -> None:
    """An approval accepted by one enclave process can be shown again to the next one (the used
    set is in memory); with the boot fence the next one refuses everything the first could have
    accepted, and accepts approvals made after it started (from the next whole second: expiry is
    in whole seconds) with the full lifetime."""
    key = ec.generate_private_key(ec.SECP256R1())

    def approval(expires_at: int) -> Approval:
        message = approval_message(subject(), expires_at)
        return Approval(subject(), expires_at, key.sign(message, ec.ECDSA(hashes.SHA256())))

    now = [1_000_000.0]
    first = PolicyVerifier(key.public_key(), clock=lambda: now[0], boot_fence=True)
    with pytest.raises(ApprovalRejected, match="predate this enclave boot"):
        check(first, approval(int(now[0]) + 600))  # within the boot's own second: refused too
    now[0] += 1
    used = approval(int(now[0]) + 600)
    check(first, used)
    now[0] += 30  # the enclave restarts 30 s later, within the approval's lifetime
    unfenced = PolicyVerifier(key.public_key(), clock=lambda: now[0])
    check(unfenced, used)  # the replay that remains without the fence
    fenced = PolicyVerifier(key.public_key(), clock=lambda: now[0], boot_fence=True)
    with pytest.raises(ApprovalRejected, match="predate this enclave boot"):
        check(fenced, used)
    with pytest.raises(ApprovalRejected, match="predate this enclave boot"):
        check(fenced, approval(int(now[0]) + 60))  # a short one: refused for a while after a start
    now[0] += 1
    check(fenced, approval(int(now[0]) + 600))  # made after the start with the full lifetime
    now[0] += 600
    check(fenced, approval(int(now[0]) + 60))  # later, short lifetimes are fine again


def test_boot_fence_holds_within_the_second_of_a_restart() -> None:
    """Expiry and lifetime are whole seconds: an approval accepted at 0.2 s into a second and an
    enclave restarted 0.5 s later, in the same second, must still meet the fence (the flaky
    e2e test of the fence restarted this fast once its module's imports were warm)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = [1_999_995.0]
    earlier_boot = PolicyVerifier(key.public_key(), clock=lambda: now[0], boot_fence=True)
    now[0] = 2_000_000.2
    expires = int(now[0]) + 600  # the full lifetime, as the fence asks of the policy service
    message = approval_message(subject(), expires)
    used = Approval(subject(), expires, key.sign(message, ec.ECDSA(hashes.SHA256())))
    check(earlier_boot, used)
    now[0] = 2_000_000.7  # restarted within the same second
    with pytest.raises(ApprovalRejected, match="predate this enclave boot"):
        check(PolicyVerifier(key.public_key(), clock=lambda: now[0], boot_fence=True), used)
