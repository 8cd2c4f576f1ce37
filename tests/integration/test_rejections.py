"""The rejection matrix over the real server: real TLS, real JWTs, real HMACs, real enclave.

Every case asserts its exact status, and the module ends by showing that none of them changed
anything: valid calls still succeed and a sequence number used only by rejected messages is
still free.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import compute_mac
from signer.auth.jwt import mint_token
from signer.ops.devcerts import DevCertPaths, Issued, issue, make_ca
from tests.conftest import GRPCURL, SignerProcess

SESSION = "rejection-matrix-session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_token(secret: bytes, header: dict, claims: dict) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _claims(**overrides: object) -> dict:
    now = int(time.time())
    claims = {"iss": "mpc-service", "aud": "mpc-signer", "sub": "mpc-service", "iat": now, "nbf": now, "exp": now + 300}
    claims.update(overrides)
    return claims


class Keys:
    """Extra JWT keys of every supported type and three HMAC keys (active, accepted, retired)."""

    def __init__(self, root: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.hs_secret = secrets.token_bytes(32)
        spki = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.rsa_pub = root / "rsa.pub"
        self.rsa_pub.write_bytes(self.rsa.public_key().public_bytes(*spki))
        self.ed_pub = root / "ed.pub"
        self.ed_pub.write_bytes(self.ed.public_key().public_bytes(*spki))
        self.hs_file = root / "hs.hex"
        self.hs_file.write_text(self.hs_secret.hex())
        self.hmac = {name: secrets.token_bytes(32) for name in ("k-active", "k-old", "k-retired")}
        self.hmac_files = {}
        for name, key in self.hmac.items():
            path = root / f"{name}.hex"
            path.write_text(key.hex())
            self.hmac_files[name] = path


class Certs:
    """Client certificates that must be refused."""

    def __init__(self, root: Path, dev: DevCertPaths) -> None:
        from cryptography import x509

        ca = type("CA", (), {})()
        ca.cert = x509.load_pem_x509_certificate(dev.ca.read_bytes())
        ca.key = serialization.load_pem_private_key(dev.ca_key.read_bytes(), None)
        other_ca = make_ca("some other CA")
        now = dt.datetime.now(dt.UTC)
        cases = {
            "other_ca": issue(other_ca, "mpc-service", dns_names=("mpc-service",)),
            "expired": issue(
                ca,
                "mpc-service",
                dns_names=("mpc-service",),
                not_before=now - dt.timedelta(days=30),
                not_after=now - dt.timedelta(days=1),
            ),
            "intruder": issue(ca, "intruder", dns_names=("intruder",)),
            # the CN is not consulted when SANs are present
            "intruder_with_allowed_cn": issue(ca, "mpc-service", dns_names=("intruder",)),
            "cn_only_allowed": issue(ca, "mpc-service"),
        }
        # Names that grpc core's C strings used to read as the allowed `mpc-service`, and SAN
        # types that used to count as identities (signer.auth.mtls).
        odd = {
            "dns_nul": ("x", [x509.DNSName("mpc-service\0.evil.example")]),
            "cn_nul": ("mpc-service\0evil", None),
            "uri_san": ("mpc-service", [x509.UniformResourceIdentifier("mpc-service")]),
            "email_san": ("mpc-service", [x509.RFC822Name("mpc-service")]),
            "dns_prefix": ("x", [x509.DNSName("mpc-service.evil.example")]),
            "dns_with_space": ("x", [x509.DNSName("mpc-service ")]),
        }
        for name, (cn, sans) in odd.items():
            cases[name] = _odd_certificate(ca, cn, sans)
        self.paths = {}
        for name, issued in cases.items():
            cert, key = root / f"{name}.pem", root / f"{name}.key"
            cert.write_bytes(issued.cert_pem())
            key.write_bytes(issued.key_pem())
            self.paths[name] = (cert, key)


def _odd_certificate(ca, common_name: str, sans) -> Issued:
    """A client certificate from the trusted CA with exactly this CN and these SANs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def bad_certs(tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCertPaths) -> Certs:
    return Certs(tmp_path_factory.mktemp("badcerts"), dev_certs)


@pytest.fixture(scope="module")
def server(start_enclave, start_signer, keys: Keys, dev_certs: DevCertPaths) -> SignerProcess:
    enclave = start_enclave()
    process = start_signer(
        enclave,
        config={
            "jwt": {"keys": {"dev": dev_certs.jwt_pub, "rsa": keys.rsa_pub, "ed": keys.ed_pub, "hs": keys.hs_file}},
            "hmac": {"keys": keys.hmac_files, "active_key_id": "k-active", "retired_key_ids": ["k-retired"]},
        },
    )
    process.wait_health(health_pb2.HealthCheckResponse.SERVING)
    return process


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


# ---- mTLS -------------------------------------------------------------------------------------


def test_valid_client_pings_without_a_token(server: SignerProcess) -> None:
    with server.channel() as ch:
        response = server.stub(ch).Ping(pb.PingRequest(), timeout=5)
    assert response.node_id == "signer-test"
    assert response.enclave_state == pb.ENCLAVE_STATE_READY
    assert response.attestation_mode == "none"
    with server.channel() as ch:
        stub = server.stub(ch)
        # Off Nitro a nonce gets no document: mode "none" says plainly that nothing attests.
        attested = stub.Ping(pb.PingRequest(attestation_nonce=b"n" * 32), timeout=5)
        assert attested.attestation_mode == "none" and attested.attestation_document == b""
        assert _code(lambda: stub.Ping(pb.PingRequest(attestation_nonce=b"n" * 513), timeout=5)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


def test_no_client_certificate_fails_the_handshake(server: SignerProcess) -> None:
    with server.channel(client_cert=False) as ch:
        assert _code(lambda: server.stub(ch).Ping(pb.PingRequest(), timeout=5)) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", ["other_ca", "expired"])
def test_untrusted_client_certificate_fails_the_handshake(server: SignerProcess, bad_certs: Certs, case: str) -> None:
    cert, key = bad_certs.paths[case]
    with server.channel(cert, key) as ch:
        assert _code(lambda: server.stub(ch).Ping(pb.PingRequest(), timeout=5)) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", ["intruder", "intruder_with_allowed_cn"])
def test_disallowed_identity_is_denied_even_with_a_valid_token(
    server: SignerProcess, bad_certs: Certs, case: str
) -> None:
    cert, key = bad_certs.paths[case]
    with server.channel(cert, key) as ch:
        stub = server.stub(ch)
        assert _code(lambda: stub.Ping(pb.PingRequest(), timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
        assert (
            _code(lambda: stub.GetDKGStatus(pb.GetDKGStatusRequest(session_id="x"), metadata=server.auth(), timeout=5))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    assert "not allowed" in server.log()


def test_disallowed_identity_gets_no_health_or_reflection(server: SignerProcess, bad_certs: Certs) -> None:
    cert, key = bad_certs.paths["intruder"]
    with server.channel(cert, key) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert _code(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        assert _code(lambda: next(iter(watch))) == grpc.StatusCode.PERMISSION_DENIED
    listing = subprocess.run(
        [
            str(GRPCURL),
            "-connect-timeout",
            "5",
            "-max-time",
            "10",
            "-cacert",
            str(server.certs.ca),
            "-cert",
            str(cert),
            "-key",
            str(key),
            server.target,
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listing.returncode != 0 and "PermissionDenied" in listing.stderr


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("dns_nul", grpc.StatusCode.UNAUTHENTICATED),
        ("cn_nul", grpc.StatusCode.UNAUTHENTICATED),
        ("uri_san", grpc.StatusCode.UNAUTHENTICATED),
        ("email_san", grpc.StatusCode.UNAUTHENTICATED),
        ("dns_with_space", grpc.StatusCode.UNAUTHENTICATED),
        ("dns_prefix", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_identity_is_matched_exactly(
    server: SignerProcess, bad_certs: Certs, case: str, status: grpc.StatusCode
) -> None:
    """A trusted CA's certificate whose name only looks like an allowed one (a NUL or a space
    after it, a longer name), or names it in a SAN type other than DNS, is refused; no CN
    fallback when a SAN extension is present."""
    cert, key = bad_certs.paths[case]
    with server.channel(cert, key) as ch:
        stub = server.stub(ch)
        assert _code(lambda: stub.Ping(pb.PingRequest(), timeout=5)) == status
        assert (
            _code(lambda: stub.GetDKGStatus(pb.GetDKGStatusRequest(session_id="x"), metadata=server.auth(), timeout=5))
            == status
        )
    assert "\x00" not in server.log() and "\0" not in server.log()


def test_identity_falls_back_to_the_common_name_without_sans(server: SignerProcess, bad_certs: Certs) -> None:
    cert, key = bad_certs.paths["cn_only_allowed"]
    with server.channel(cert, key) as ch:
        assert server.stub(ch).Ping(pb.PingRequest(), timeout=5).node_id == "signer-test"


# ---- JWT --------------------------------------------------------------------------------------


def _status_call(server: SignerProcess, metadata) -> grpc.StatusCode:
    """GetDKGStatus of an unknown session: NOT_FOUND proves the token was accepted."""
    with server.channel() as ch:
        try:
            server.stub(ch).GetDKGStatus(pb.GetDKGStatusRequest(session_id="nope"), metadata=metadata, timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_valid_tokens_of_every_key_type_are_accepted(server: SignerProcess, keys: Keys) -> None:
    assert _status_call(server, server.auth()) == grpc.StatusCode.NOT_FOUND
    for kid, key, alg in (("rsa", keys.rsa, "RS256"), ("ed", keys.ed, "EdDSA"), ("hs", keys.hs_secret, "HS256")):
        token = mint_token(key, alg, kid=kid, issuer="mpc-service", audience="mpc-signer", subject="mpc-service")
        assert _status_call(server, server.auth(token)) == grpc.StatusCode.NOT_FOUND, kid


def _none_token() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "dev"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


JWT_CASES = {
    "expired": lambda s, k: s.token(now=int(time.time()) - 600, lifetime_seconds=300),
    "not_yet_valid": lambda s, k: _es256(
        s, _claims(nbf=int(time.time()) + 600, iat=int(time.time()) + 600, exp=int(time.time()) + 700)
    ),
    "wrong_issuer": lambda s, k: s.token(issuer="someone-else"),
    "wrong_audience": lambda s, k: s.token(audience="another-service"),
    "alg_none": lambda s, k: _none_token(),
    "hs256_with_es256_public_key": lambda s, k: _hs256_token(
        s.certs.jwt_pub.read_bytes(), {"alg": "HS256", "typ": "JWT", "kid": "dev"}, _claims()
    ),
    "hs256_with_rsa_public_key": lambda s, k: _hs256_token(
        k.rsa_pub.read_bytes(), {"alg": "HS256", "typ": "JWT", "kid": "rsa"}, _claims()
    ),
    "unknown_kid": lambda s, k: s.token(kid="who"),
    "bad_signature": lambda s, k: _flip_signature(s.token()),
    "lifetime_too_long": lambda s, k: s.token(lifetime_seconds=3600),
    "garbage": lambda s, k: "not.a.token",
}


def _es256(server: SignerProcess, claims: dict) -> str:
    import jwt

    from signer.auth.jwt import load_signing_key

    _alg, key = load_signing_key(server.certs.jwt_key)
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "dev"})


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{payload}.{_b64(bytes(raw))}"


def test_missing_token_is_unauthenticated(server: SignerProcess) -> None:
    assert _status_call(server, None) == grpc.StatusCode.UNAUTHENTICATED
    assert _status_call(server, [("authorization", "Basic abc")]) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("case", sorted(JWT_CASES))
def test_bad_token_is_unauthenticated(server: SignerProcess, keys: Keys, case: str) -> None:
    token = JWT_CASES[case](server, keys)
    assert _status_call(server, server.auth(token)) == grpc.StatusCode.UNAUTHENTICATED


# ---- protocol message HMAC and replay ---------------------------------------------------------


def _frame(kind: int) -> bytes:
    """A well-formed frame of the engine's round-2 traffic (enclave/protocols/driver.py): version 1,
    round 2, kind (0 broadcast, 1 direct), no echoes, an opaque body. The session is in round 1,
    so the enclave holds it unexamined (one round ahead, within its size bound) and the session
    goes on; the envelope names the same round."""
    return b"\x01\x00\x02" + bytes([kind]) + b"\x00\x00" + b"opaque payload"


def _message(keys: Keys, seq: int, key_id: str = "k-active", **fields: object) -> pb.ProtocolMessage:
    message = pb.ProtocolMessage(
        session_id=SESSION,
        sender="client",
        recipient="signer-test",
        round=2,
        seq=seq,
        payload=_frame(1),
        hmac_key_id=key_id,
    )
    for name, value in fields.items():
        setattr(message, name, value)
    message.hmac = compute_mac(keys.hmac[key_id], message)
    return message


def _submit(server: SignerProcess, *messages: pb.ProtocolMessage) -> grpc.StatusCode:
    with server.channel() as ch:
        try:
            server.stub(ch).SubmitProtocolMessage(
                pb.SubmitProtocolMessageRequest(messages=list(messages)), metadata=server.auth(), timeout=5
            )
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


TAMPER = {
    "session_id": "another-session",
    "sender": "mallory",
    "recipient": "",
    "round": 3,
    "seq": 99,
    "payload": _frame(0),
    "hmac_key_id": "k-old",
}


def _session_state(server: SignerProcess) -> int:
    with server.channel() as ch:
        return (
            server.stub(ch)
            .GetDKGStatus(pb.GetDKGStatusRequest(session_id=SESSION), metadata=server.auth(), timeout=5)
            .state
        )


def test_hmac_matrix_and_replay(server: SignerProcess, keys: Keys) -> None:
    # A valid message for a session the node does not hold is refused before anything is
    # recorded: the same message again is not a replay.
    for _ in range(2):
        assert _submit(server, _message(keys, 1)) == grpc.StatusCode.NOT_FOUND
    with server.channel() as ch:
        started = server.stub(ch).StartDKG(
            pb.StartDKGRequest(
                session_id=SESSION,
                protocol=pb.PROTOCOL_FROST_ED25519,
                threshold=2,
                party_ids=["client", "peer", "signer-test"],
                self_party_id="signer-test",
            ),
            metadata=server.auth(),
            timeout=10,
        )
    assert started.state == pb.SESSION_STATE_RUNNING
    # In the running session: authenticated, routed, delivered (and held by the enclave).
    assert _submit(server, _message(keys, 1)) == grpc.StatusCode.OK
    # The same sequence number again is a replay, even though the HMAC is valid.
    assert _submit(server, _message(keys, 1)) == grpc.StatusCode.ALREADY_EXISTS

    missing = _message(keys, 2)
    missing.ClearField("hmac")
    assert _submit(server, missing) == grpc.StatusCode.UNAUTHENTICATED
    wrong = _message(keys, 2)
    wrong.hmac = bytes(32)
    assert _submit(server, wrong) == grpc.StatusCode.UNAUTHENTICATED
    assert _submit(server, _message(keys, 2, key_id="k-retired")) == grpc.StatusCode.UNAUTHENTICATED
    unknown = _message(keys, 2)
    unknown.hmac_key_id = "k-unknown"
    assert _submit(server, unknown) == grpc.StatusCode.UNAUTHENTICATED
    for field, value in TAMPER.items():
        tampered = _message(keys, 2)
        setattr(tampered, field, value)
        assert _submit(server, tampered) == grpc.StatusCode.UNAUTHENTICATED, field
    # One bad message rejects the whole batch.
    assert _submit(server, _message(keys, 2), wrong) == grpc.StatusCode.UNAUTHENTICATED

    # None of them reached the enclave (which would have ended the session). The accepted (not
    # retired) old key works too, and numbers are per sender.
    assert _submit(server, _message(keys, 2, key_id="k-old", sender="peer")) == grpc.StatusCode.OK
    assert _submit(server, _message(keys, 2, key_id="k-old", sender="peer")) == grpc.StatusCode.ALREADY_EXISTS
    assert _session_state(server) == pb.SESSION_STATE_RUNNING
    # None of the rejected messages consumed the client's seq 2: the host accepts it (the enclave
    # then ends the session, since it is a second round-2 message from the client).
    assert _submit(server, _message(keys, 2)) == grpc.StatusCode.OK


def test_malformed_submissions_are_invalid(server: SignerProcess, keys: Keys) -> None:
    assert _submit(server) == grpc.StatusCode.INVALID_ARGUMENT
    bad_session = _message(keys, 1, session_id="has spaces")
    assert _submit(server, bad_session) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("method", ["StartDKG", "StartSign", "SubmitProtocolMessage", "Ping"])
@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11])
def test_a_body_that_does_not_parse_is_invalid_argument(server: SignerProcess, method: str, body: bytes) -> None:
    """Not UNKNOWN with the parser's text: the error table's INVALID_ARGUMENT, after auth."""
    with server.channel() as ch:
        raw = ch.unary_unary(f"/mpc.v1.SignerService/{method}")
        with pytest.raises(grpc.RpcError) as info:
            raw(body, metadata=server.auth(), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert info.value.details().startswith("malformed request")
    assert "DecodeError" not in info.value.details() and "parsing" not in info.value.details()


def test_nothing_changed(server: SignerProcess) -> None:
    assert server.health() == health_pb2.HealthCheckResponse.SERVING
    assert _status_call(server, server.auth()) == grpc.StatusCode.NOT_FOUND
    assert "Traceback" not in server.log()
