"""AWS credentials from IMDSv2 into the enclave, and the enclave's KMS calls signed with them.

A local HTTP server on 127.0.0.1 implements the IMDSv2 endpoints the host uses (session token by
PUT with a TTL header; GETs refused without it). The host's fetcher gets and refreshes
credentials and pushes them to a real enclave process. The enclave's KMS client signs with
whatever was pushed (Authorization captured by a local TLS server standing in for KMS and checked
against SigV4 recomputed here), refuses before anything was pushed and after expiry. Last, the
whole path: a signer with enclave.aws_credentials = "imds" and an enclave sealing with KMS, whose
TLS calls reach a local KMS stand-in that accepts only SigV4 by the IMDS-issued credentials.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import socket
import sqlite3
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import nacl.signing
import pytest

from enclave.tee.credentials import CredentialsHolder
from enclave.tee.kms import KmsUnavailable
from enclave.tee.kms_http import AwsCredentials, KmsHttpClient, sigv4_authorization
from mpc.v1 import enclave_pb2 as epb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.link.client import EnclaveClient, EnclaveRequestError, parse_address
from signer.link.credentials import CredentialsPusher, ImdsClient, ImdsError
from tests.service.conftest import FROST, dkg, sign
from tests.tee.fixture_enclave import write_chain
from tests.tee.nitro_docs import CaChain, make_chain
from tests.tee.test_kms import KEY_ARN, FakeKms
from tests.tee.test_kms_http import _tls_material

ROLE = "mpc-signer-instance"
REGION = "eu-west-1"
KMS_HOST = f"kms.{REGION}.amazonaws.com"


# --- a local IMDSv2 -------------------------------------------------------------------------


@dataclass
class Imds:
    url: str = ""
    tokens: set[str] = field(default_factory=set)
    issued: dict[str, AwsCredentials] = field(default_factory=dict)  # every access key id handed out
    current: AwsCredentials | None = None
    lifetime: int = 3600
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def rotate(self) -> AwsCredentials:
        n = next(self.counter)
        self.current = AwsCredentials(f"ASIATESTKEY{n:09d}", secrets.token_urlsafe(30), f"token-{n}-" + "x" * 600)
        self.issued[self.current.access_key_id] = self.current
        return self.current


def _imds_handler(imds: Imds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes) -> None:
            imds.log.append((self.command, self.path, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if self.path != "/latest/api/token" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self._reply(400, b"")
            token = secrets.token_urlsafe(24)
            imds.tokens.add(token)
            self._reply(200, token.encode())

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                return self._reply(401, b"")  # IMDSv2 only: no session token, no answer
            base = "/latest/meta-data/iam/security-credentials/"
            if self.path == base:
                return self._reply(200, f"{ROLE}\n".encode())
            if self.path == base + ROLE and imds.current is not None:
                c = imds.current
                expiration = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=imds.lifetime)
                return self._reply(
                    200,
                    json.dumps(
                        {
                            "Code": "Success",
                            "LastUpdated": "2026-11-22T00:00:00Z",
                            "Type": "AWS-HMAC",
                            "AccessKeyId": c.access_key_id,
                            "SecretAccessKey": c.secret_access_key,
                            "Token": c.session_token,
                            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        }
                    ).encode(),
                )
            self._reply(404, b"")

    return Handler


@pytest.fixture
def imds() -> Iterator[Imds]:
    state = Imds()
    state.rotate()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _imds_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_fetch_uses_a_session_token(imds: Imds) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:  # the stand-in enforces IMDSv2, like the instance
        urllib.request.urlopen(imds.url + "/latest/meta-data/iam/security-credentials/", timeout=2)  # noqa: S310
    assert err.value.code == 401
    got = ImdsClient(imds.url).fetch()
    assert imds.current is not None
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        imds.current.access_key_id,
        imds.current.secret_access_key,
        imds.current.session_token,
    )
    assert abs(got.expiration - (time.time() + imds.lifetime)) < 5
    assert [m for m, _, s in imds.log if s == 200] == ["PUT", "GET", "GET"]
    assert imds.current.secret_access_key not in repr(got) and imds.current.session_token not in repr(got)


def test_token_is_reused_then_renewed_when_refused(imds: Imds) -> None:
    client = ImdsClient(imds.url)
    client.fetch()
    client.fetch()
    assert [m for m, _, _ in imds.log].count("PUT") == 1
    imds.tokens.clear()  # IMDS forgot our token (expired, instance restarted)
    rotated = imds.rotate()
    assert client.fetch().access_key_id == rotated.access_key_id
    assert [m for m, _, _ in imds.log].count("PUT") == 2


def test_imds_failures_are_clear(imds: Imds) -> None:
    imds.current = None  # no role credentials
    with pytest.raises(ImdsError, match="HTTP 404"):
        ImdsClient(imds.url).fetch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ImdsError, match="unreachable"):
        ImdsClient(f"http://127.0.0.1:{port}", timeout=0.5).fetch()
    with pytest.raises(ValueError, match="http://"):
        ImdsClient("https://169.254.169.254")


# --- pushed into a real enclave process --------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> CaChain:
    now = datetime.now(UTC)
    return make_chain(leaf_not_before=now - timedelta(hours=1), leaf_not_after=now + timedelta(hours=3))


@pytest.fixture(scope="module")
def kms_enclave(start_enclave, chain, tmp_path_factory):  # type: ignore[no-untyped-def]
    from tests.tee.conftest import TeeEnclave

    workdir = tmp_path_factory.mktemp("kms-enclave")
    directory = write_chain(chain, workdir / "chain")
    process = TeeEnclave(
        f"unix://{workdir}/e.sock",
        workdir,
        ["--attestation", "nitro", "--kms-key-id", KEY_ARN],
        {"MPC_TEST_ATTESTATION_DIR": str(directory)},
    )
    process.start()
    yield process
    process.stop()


async def test_pusher_fetches_refreshes_and_pushes_to_the_enclave(imds: Imds, kms_enclave, enclave) -> None:  # type: ignore[no-untyped-def]
    client = EnclaveClient(parse_address(kms_enclave.address))
    now = [time.time()]
    pusher = CredentialsPusher(ImdsClient(imds.url), client, refresh_margin=300, clock=lambda: now[0])
    try:
        first = await pusher.refresh_once()
        assert first.access_key_id == imds.issued[first.access_key_id].access_key_id
        await pusher.refresh_once()  # not due: pushed again (a restarted enclave gets them), not fetched
        assert sum(1 for _, p, _ in imds.log if p.endswith(ROLE)) == 1
        second_issue = imds.rotate()
        now[0] += imds.lifetime - 200  # within the refresh margin of expiry
        second = await pusher.refresh_once()
        assert second.access_key_id == second_issue.access_key_id != first.access_key_id
        assert pusher.pushes == 3
        # What the enclave says it now holds (it never echoes the secret parts).
        answer = await client.set_aws_credentials(second.message())
        assert answer.access_key_id == second.access_key_id and answer.expiration_unix == second.expiration
        assert second.secret_access_key not in kms_enclave.log() and second.session_token not in kms_enclave.log()
        # Expired credentials are refused, as are credentials for an enclave that does not use KMS.
        with pytest.raises(EnclaveRequestError) as err:
            await client.set_aws_credentials(
                epb.SetAwsCredentials(
                    access_key_id=second.access_key_id, secret_access_key="s", expiration_unix=int(time.time()) - 1
                )
            )
        assert err.value.code == epb.ERROR_CODE_INVALID_ARGUMENT and "expired" in err.value.message
    finally:
        await client.close()
    plain = EnclaveClient(parse_address(enclave.address))
    try:
        with pytest.raises(EnclaveRequestError) as err:
            await plain.set_aws_credentials(second.message())
        assert err.value.code == epb.ERROR_CODE_FAILED_PRECONDITION
    finally:
        await plain.close()


# --- the enclave's KMS client signs with what was pushed -----------------------------------------


@dataclass
class Captured:
    port: int
    ca_file: Path
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[Captured]:
    ca_file, cert, key = _tls_material(tmp_path, KMS_HOST)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            data = b'{"__type": "AccessDeniedException", "message": "captured"}'
            self.send_response(400)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    state = Captured(server.server_address[1], ca_file)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_kms_client_signs_with_the_pushed_credentials(capture: Captured) -> None:
    now = [time.time()]
    holder = CredentialsHolder(clock=lambda: now[0])
    client = KmsHttpClient(
        REGION,
        holder.current,
        connector=lambda timeout: socket.create_connection(("127.0.0.1", capture.port), timeout=timeout),
        tls=ssl.create_default_context(cafile=str(capture.ca_file)),
        timeout=5.0,
    )
    with pytest.raises(KmsUnavailable, match="no AWS credentials yet"):
        client.generate_data_key(KEY_ARN, b"document")
    assert capture.requests == []  # refused before anything left the enclave
    secret, token = secrets.token_urlsafe(30), "session-token-" + secrets.token_hex(40)
    holder.set("ASIAPUSHEDKEY0000001", secret, token, int(now[0]) + 900)
    assert secret not in repr(holder) and token not in repr(holder)
    with pytest.raises(KmsUnavailable, match="captured"):
        client.generate_data_key(KEY_ARN, b"document")
    ((headers, body),) = capture.requests
    signed = {
        name: headers[name] for name in ("Content-Type", "Host", "X-Amz-Date", "X-Amz-Target", "X-Amz-Security-Token")
    }
    assert signed["X-Amz-Security-Token"] == token
    expected = sigv4_authorization(
        method="POST",
        path="/",
        query="",
        headers=signed,
        body=body,
        credentials=AwsCredentials("ASIAPUSHEDKEY0000001", secret, token),
        region=REGION,
        service="kms",
        amz_date=headers["X-Amz-Date"],
    )
    assert headers["Authorization"] == expected
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIAPUSHEDKEY0000001/")
    now[0] += 901
    with pytest.raises(KmsUnavailable, match="expired"):
        client.generate_data_key(KEY_ARN, b"document")
    assert len(capture.requests) == 1


# --- the whole path: IMDS -> host -> enclave -> KMS over TLS, sealing a real key share -------------


@dataclass
class KmsEndpoint:
    port: int
    ca_file: Path
    kms: FakeKms
    calls: list[tuple[str, str, bool]] = field(default_factory=list)  # (action, access key id, SigV4 ok)


def _kms_handler(ep: KmsEndpoint, imds: Imds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            auth = self.headers["Authorization"] or ""
            key_id = auth.partition("Credential=")[2].partition("/")[0]
            credentials = imds.issued.get(key_id)
            signed = {
                n: self.headers[n]
                for n in ("Content-Type", "Host", "X-Amz-Date", "X-Amz-Target", "X-Amz-Security-Token")
                if self.headers[n]
            }
            ok = credentials is not None and auth == sigv4_authorization(
                method="POST",
                path="/",
                query="",
                headers=signed,
                body=body,
                credentials=credentials,
                region=REGION,
                service="kms",
                amz_date=self.headers["X-Amz-Date"],
            )
            action = self.headers["X-Amz-Target"].rpartition(".")[2]
            ep.calls.append((action, key_id, ok))
            if not ok:
                return self._send(400, {"__type": "InvalidSignatureException", "message": "bad signature"})
            request = json.loads(body)
            document = base64.b64decode(request["Recipient"]["AttestationDocument"])
            if action == "GenerateDataKey":
                answer = ep.kms.generate_data_key(request["KeyId"], document)
            else:
                answer = ep.kms.decrypt(base64.b64decode(request["CiphertextBlob"]), document, request["KeyId"])
            self._send(200, {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in answer.items()})

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


async def test_keys_sealed_with_kms_using_imds_credentials(  # type: ignore[no-untyped-def]
    imds: Imds, chain, start_tee_node, local, connect, tmp_path: Path
) -> None:
    ca_file, cert, key = _tls_material(tmp_path, KMS_HOST)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    endpoint = KmsEndpoint(server.server_address[1], ca_file, FakeKms(chain))
    server.RequestHandlerClass = _kms_handler(endpoint, imds)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        node = start_tee_node(
            "kms-node",
            ["--attestation", "nitro", "--kms-key-id", KEY_ARN],
            {
                "MPC_TEST_ATTESTATION_DIR": str(write_chain(chain, tmp_path / "chain")),
                "MPC_TEST_KMS_PORT": str(endpoint.port),
                "SSL_CERT_FILE": str(ca_file),
            },
            {"enclave": {"aws_credentials": "imds", "imds_url": imds.url}},
        )
        relay = Relay({"client": local, "kms-node": connect(node)})
        deadline = time.monotonic() + 10
        while not any(path.endswith(ROLE) for _, path, _ in imds.log):  # the host's first push
            assert time.monotonic() < deadline, "the host never asked IMDS"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the push follows the fetch
        parties = ("client", "kms-node")
        key_result = await dkg(relay, FROST, parties, 2)
        assert imds.current is not None
        assert endpoint.calls == [("GenerateDataKey", imds.current.access_key_id, True)]
        store = node.store_url.removeprefix("sqlite:")
        with sqlite3.connect(store) as db:
            (kind,) = db.execute("SELECT sealer_kind FROM keys WHERE key_id = ?", (key_result.key_id,)).fetchone()
        assert kind == "kms"
        result = await sign(relay, FROST, parties, key_result.key_id, b"sealed under KMS")
        nacl.signing.VerifyKey(key_result.public_key).verify(b"sealed under KMS", result.signature)

        # A restarted enclave has new RSA recipient keys and no credentials until the host's next
        # push; then it recovers the data key from the share's CiphertextBlob (Decrypt) and signs.
        node.enclave.stop()
        node.enclave.start()
        deadline = time.monotonic() + 20
        while not any(call[0] == "Decrypt" and call[2] for call in endpoint.calls):
            try:
                result = await sign(relay, FROST, parties, key_result.key_id, b"after restart")
            except (AssertionError, grpc.aio.AioRpcError) as exc:  # enclave not back yet, or no credentials yet
                assert time.monotonic() < deadline, f"never signed after the restart: {exc}"
                await asyncio.sleep(0.5)
        nacl.signing.VerifyKey(key_result.public_key).verify(b"after restart", result.signature)
        assert all(ok for _, _, ok in endpoint.calls)

        # A host that pushes no credentials: the enclave says why it cannot seal.
        bare = start_tee_node(
            "kms-no-credentials",
            ["--attestation", "nitro", "--kms-key-id", KEY_ARN],
            {
                "MPC_TEST_ATTESTATION_DIR": str(tmp_path / "chain"),
                "MPC_TEST_KMS_PORT": str(endpoint.port),
                "SSL_CERT_FILE": str(ca_file),
            },
        )
        outcomes = await Relay({"client": local, "kms-no-credentials": connect(bare)}).run(
            SessionSpec("dkg", f"dkg-{secrets.token_hex(4)}", FROST, ("client", "kms-no-credentials"), threshold=2)  # type: ignore[arg-type]
        )
        failure = outcomes["kms-no-credentials"].failure
        assert failure is not None and "sealing unavailable: no AWS credentials yet" in failure.reason
    finally:
        server.shutdown()
        server.server_close()


async def test_pusher_loop_keeps_pushing_without_hammering_imds(imds: Imds, kms_enclave) -> None:  # type: ignore[no-untyped-def]
    client = EnclaveClient(parse_address(kms_enclave.address))
    log_before = len(kms_enclave.log())
    pusher = CredentialsPusher(ImdsClient(imds.url), client, push_interval=0.1)
    pusher.start()
    try:
        deadline = time.monotonic() + 10
        while pusher.pushes < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        await pusher.stop()
        await client.close()
    assert sum(1 for _, p, _ in imds.log if p.endswith(ROLE)) == 1  # fetched once, pushed repeatedly
    assert imds.current is not None
    # The enclave notes new credentials once, not every push.
    assert kms_enclave.log()[log_before:].count(f"AWS credentials {imds.current.access_key_id} set") == 1

    # IMDS gone: the loop logs and retries; it does not die.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = EnclaveClient(parse_address(kms_enclave.address))
    broken = CredentialsPusher(ImdsClient(f"http://127.0.0.1:{port}", timeout=0.2), client, retry_interval=0.05)
    broken.start()
    try:
        await asyncio.sleep(0.5)
        assert broken._task is not None and not broken._task.done() and broken.pushes == 0
    finally:
        await broken.stop()
        await client.close()


def test_refresh_cadence_near_expiry() -> None:
    now = [1000.0]
    pusher = CredentialsPusher(
        ImdsClient("http://127.0.0.1:1"),
        None,
        refresh_margin=300,
        push_interval=5,  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    from signer.link.credentials import RoleCredentials

    pusher._current = RoleCredentials("ASIA0000000000000001", "s", "t", expiration=1000 + 302)
    assert pusher._next_wait() == 2  # refresh due in 2 s
    pusher._current = RoleCredentials("ASIA0000000000000001", "s", "t", expiration=1000 + 3600)
    assert pusher._next_wait() == 5  # push cadence
    pusher._current = RoleCredentials("ASIA0000000000000001", "s", "t", expiration=1000 + 100)
    assert pusher._next_wait() == 5  # IMDS still serves old ones: no tight loop
