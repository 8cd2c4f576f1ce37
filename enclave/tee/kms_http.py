"""The KMS client that runs inside the enclave: HTTPS to AWS KMS, TLS terminated here.

A Nitro enclave has no network. The parent runs `vsock-proxy` (from aws-nitro-enclaves-cli),
which forwards a vsock port to kms.<region>.amazonaws.com:443 at the TCP level. The enclave
opens an AF_VSOCK connection to the parent (CID 3), runs TLS over it with the KMS host name and
the CA roots baked into the image, and signs each request with AWS Signature Version 4. The host
therefore relays only ciphertext: it can drop or delay a KMS call but cannot read or substitute
an answer, which is what makes `CiphertextForRecipient` trustworthy (see enclave/tee/kms.py).

Credentials are not secret from the host (they are the parent instance role's, which the host
fetches from IMDS and passes in); what protects the keys is the KMS key policy on the enclave's
measurements, not these credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from enclave.tee.kms import KEY_ENCRYPTION_ALGORITHM, KmsResponseInvalid, KmsUnavailable

PARENT_CID: Final = 3  # the parent instance, as seen from inside a Nitro enclave
DEFAULT_PROXY_PORT: Final = 8000
_MAX_ANSWER: Final = 64 * 1024
_BINARY_FIELDS: Final = ("CiphertextBlob", "CiphertextForRecipient", "Plaintext")

Connector = Callable[[float], socket.socket]


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sigv4_authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    """The `Authorization` header of AWS Signature Version 4 over exactly `headers` (which must
    include host and x-amz-date). `path` and `query` are already URI-encoded."""
    canonical = {name.lower().strip(): " ".join(value.split()) for name, value in headers.items()}
    signed_headers = ";".join(sorted(canonical))
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical_request = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)),
            signed_headers,
            _sha256_hex(body),
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, _sha256_hex(canonical_request.encode("utf-8"))])
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def vsock_connector(cid: int = PARENT_CID, port: int = DEFAULT_PROXY_PORT) -> Connector:
    """Connect to the parent's vsock-proxy. Only works inside a Nitro enclave (or a vsock host)."""

    def connect(timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((cid, port))
        except OSError:
            sock.close()
            raise
        return sock

    return connect


class _TunnelledHttps(http.client.HTTPSConnection):
    """HTTPS whose transport is whatever `connector` returns (vsock in production)."""

    def __init__(self, host: str, connector: Connector, tls: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, 443, timeout=timeout, context=tls)
        self._connector = connector
        self._tls = tls

    def connect(self) -> None:
        raw = self._connector(self.timeout if isinstance(self.timeout, float | int) else 10.0)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class KmsHttpClient:
    """`KmsClient` speaking the KMS JSON API (TrentService) with SigV4."""

    def __init__(
        self,
        region: str,
        credentials: Callable[[], AwsCredentials],
        connector: Connector | None = None,
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not region or not all(c.isalnum() or c == "-" for c in region):
            raise ValueError("AWS region must be like eu-west-1")
        self._region = region
        self.host = f"kms.{region}.amazonaws.com"
        self._credentials = credentials
        self._connector = connector or vsock_connector()
        self._tls = tls or ssl.create_default_context()  # system CA roots in the image, host name checked
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._timeout = timeout
        self._clock = clock

    def generate_data_key(self, key_id: str, recipient_document: bytes) -> Mapping[str, object]:
        return self._call(
            "GenerateDataKey",
            {"KeyId": key_id, "KeySpec": "AES_256", "Recipient": self._recipient(recipient_document)},
        )

    def decrypt(self, ciphertext_blob: bytes, recipient_document: bytes, key_id: str) -> Mapping[str, object]:
        return self._call(
            "Decrypt",
            {
                "CiphertextBlob": base64.b64encode(ciphertext_blob).decode("ascii"),
                "KeyId": key_id,
                "Recipient": self._recipient(recipient_document),
            },
        )

    @staticmethod
    def _recipient(document: bytes) -> dict[str, str]:
        return {
            "AttestationDocument": base64.b64encode(document).decode("ascii"),
            "KeyEncryptionAlgorithm": KEY_ENCRYPTION_ALGORITHM,
        }

    def _call(self, action: str, payload: Mapping[str, object]) -> Mapping[str, object]:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        credentials = self._credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "Host": self.host,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": f"TrentService.{action}",
        }
        if credentials.session_token:
            headers["X-Amz-Security-Token"] = credentials.session_token
        headers["Authorization"] = sigv4_authorization(
            method="POST",
            path="/",
            query="",
            headers=headers,
            body=body,
            credentials=credentials,
            region=self._region,
            service="kms",
            amz_date=amz_date,
        )
        conn = _TunnelledHttps(self.host, self._connector, self._tls, self._timeout)
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(_MAX_ANSWER + 1)
            status = response.status
        except ssl.SSLError as exc:
            raise KmsUnavailable(f"TLS to {self.host} failed: {exc.reason or type(exc).__name__}") from None
        except TimeoutError:
            raise KmsUnavailable(f"KMS {action} timed out after {self._timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise KmsUnavailable(f"KMS {action} unreachable: {type(exc).__name__}") from None
        finally:
            conn.close()
        if len(raw) > _MAX_ANSWER:
            raise KmsResponseInvalid(f"KMS {action} answer too large")
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise KmsResponseInvalid(f"KMS {action} answer is not JSON (HTTP {status})") from None
        if not isinstance(answer, dict):
            raise KmsResponseInvalid(f"KMS {action} answer is not a JSON object")
        if status != 200:
            kind = str(answer.get("__type", "error")).rsplit("#", 1)[-1][:80]
            message = str(answer.get("message") or answer.get("Message") or "")[:200]
            raise KmsUnavailable(f"KMS {action} refused (HTTP {status}, {kind}): {message}")
        for name in _BINARY_FIELDS:
            value = answer.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise KmsResponseInvalid(f"KMS {action} answer field {name} is not base64 text")
            try:
                answer[name] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KmsResponseInvalid(f"KMS {action} answer field {name} is not base64") from None
        return answer
