"""The in-enclave KMS client: SigV4 against AWS's published test-suite vectors, and the whole KMS
sealing path over real TLS to a local stand-in for kms.<region>.amazonaws.com.

The connector replaces only the vsock hop (AF_VSOCK to the parent's vsock-proxy) with TCP to
127.0.0.1; TLS, host-name checking, SigV4 and the JSON API are the production code.
"""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from enclave.tee.kms import KmsSealer, KmsUnavailable
from enclave.tee.kms_http import AwsCredentials, KmsHttpClient, sigv4_authorization
from tests.tee.test_kms import BINDING, KEY_ARN, DocAttestor, FakeKms, make_chain

EXAMPLE_CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
REGION = "eu-west-1"
KMS_HOST = f"kms.{REGION}.amazonaws.com"


def test_sigv4_get_vanilla_vector() -> None:
    auth = sigv4_authorization(
        method="GET",
        path="/",
        query="",
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body=b"",
        credentials=EXAMPLE_CREDENTIALS,
        region="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_sigv4_post_form_vector() -> None:
    auth = sigv4_authorization(
        method="POST",
        path="/",
        query="",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Host": "example.amazonaws.com",
            "X-Amz-Date": "20150830T123600Z",
        },
        body=b"Param1=value1",
        credentials=EXAMPLE_CREDENTIALS,
        region="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert auth.endswith("Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    assert "SignedHeaders=content-type;host;x-amz-date," in auth


# --- a local KMS endpoint -----------------------------------------------------------------


@dataclass
class Endpoint:
    port: int
    ca_file: Path
    kms: FakeKms
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False


def _tls_material(d: Path, host: str) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root for kms")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


def _handler(ep: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = {
                name: self.headers[name]
                for name in ("Content-Type", "Host", "X-Amz-Date", "X-Amz-Target", "X-Amz-Security-Token")
                if self.headers[name]
            }
            expected = sigv4_authorization(
                method="POST",
                path="/",
                query="",
                headers=signed,
                body=body,
                credentials=EXAMPLE_CREDENTIALS,
                region=REGION,
                service="kms",
                amz_date=self.headers["X-Amz-Date"],
            )
            request = json.loads(body)
            ep.requests.append(
                {
                    "target": self.headers["X-Amz-Target"],
                    "body": request,
                    "auth_ok": self.headers["Authorization"] == expected,
                }
            )
            if ep.refuse or self.headers["Authorization"] != expected:
                return self._send(400, {"__type": "AccessDeniedException", "message": "not authorized"})
            recipient = request["Recipient"]
            assert recipient["KeyEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
            doc = base64.b64decode(recipient["AttestationDocument"])
            if self.headers["X-Amz-Target"] == "TrentService.GenerateDataKey":
                assert request["KeySpec"] == "AES_256"
                answer = ep.kms.generate_data_key(request["KeyId"], doc)
            else:
                answer = ep.kms.decrypt(base64.b64decode(request["CiphertextBlob"]), doc, request["KeyId"])
            self._send(200, {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in answer.items()})

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    ca_file, cert, key = _tls_material(tmp_path, KMS_HOST)
    now = datetime.datetime.now(datetime.UTC)
    hour = datetime.timedelta(hours=1)
    chain = make_chain(leaf_not_before=now - hour, leaf_not_after=now + hour)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    ep = Endpoint(server.server_address[1], ca_file, FakeKms(chain))
    server.RequestHandlerClass = _handler(ep)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield ep
    server.shutdown()
    server.server_close()


def client_for(ep: Endpoint, **kw: Any) -> KmsHttpClient:
    def tcp(timeout: float) -> socket.socket:  # stands in for the vsock hop only
        return socket.create_connection(("127.0.0.1", ep.port), timeout=timeout)

    tls = ssl.create_default_context(cafile=str(ep.ca_file))
    args: dict[str, Any] = {
        "region": REGION,
        "credentials": lambda: EXAMPLE_CREDENTIALS,
        "connector": tcp,
        "tls": tls,
        "timeout": 5.0,
    }
    args.update(kw)
    return KmsHttpClient(**args)


def test_sealing_through_https_kms(endpoint: Endpoint) -> None:
    client = client_for(endpoint)
    sealer = KmsSealer(client, KEY_ARN, DocAttestor(endpoint.kms.chain))
    blob = sealer.seal(b"share over https", BINDING)
    restarted = KmsSealer(client_for(endpoint), KEY_ARN, DocAttestor(endpoint.kms.chain))
    assert restarted.unseal(blob, BINDING) == b"share over https"
    assert [r["target"] for r in endpoint.requests] == ["TrentService.GenerateDataKey", "TrentService.Decrypt"]
    assert all(r["auth_ok"] for r in endpoint.requests)
    assert endpoint.requests[1]["body"]["KeyId"] == KEY_ARN


def test_kms_refusal_is_reported(endpoint: Endpoint) -> None:
    endpoint.refuse = True
    sealer = KmsSealer(client_for(endpoint), KEY_ARN, DocAttestor(endpoint.kms.chain))
    with pytest.raises(KmsUnavailable, match="AccessDeniedException"):
        sealer.seal(b"x", BINDING)


def test_wrong_credentials_are_refused_by_the_endpoint(endpoint: Endpoint) -> None:
    bad = AwsCredentials("AKIDEXAMPLE", "not-the-secret", session_token="tok")
    sealer = KmsSealer(client_for(endpoint, credentials=lambda: bad), KEY_ARN, DocAttestor(endpoint.kms.chain))
    with pytest.raises(KmsUnavailable, match="HTTP 400"):
        sealer.seal(b"x", BINDING)
    assert endpoint.requests[0]["auth_ok"] is False


def test_tls_must_match_the_kms_host(endpoint: Endpoint) -> None:
    # a certificate for kms.eu-west-1 does not serve a client configured for another region
    client = client_for(endpoint, region="us-east-1")
    with pytest.raises(KmsUnavailable, match="TLS"):
        client.generate_data_key(KEY_ARN, b"doc")
    # nor is a server trusted whose CA is not in the client's store
    with pytest.raises(KmsUnavailable, match="TLS"):
        client_for(endpoint, tls=ssl.create_default_context()).generate_data_key(KEY_ARN, b"doc")
    assert endpoint.requests == []
