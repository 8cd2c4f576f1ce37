"""Host side of the signing policy: ask the operator's policy service for an approval.

Before a signing session may release a share, the host POSTs the request to the configured HTTPS
callback and relays the answer, untouched, to the enclave, which verifies it (enclave/policy.py).
The host cannot approve anything itself; what this module adds is the transport:

* TLS to the callback trusting only the configured CA file (no system roots), TLS >= 1.2;
* the request body signed with this node's own P-256 key, so the policy service knows which node
  asks (header `X-Mpc-Signer-Signature`: base64 DER ECDSA-SHA256 over REQUEST_DOMAIN || body);
* one overall deadline; answers mapped to typed errors: a refusal is `PolicyRejected`
  (gRPC PERMISSION_DENIED), a missed deadline `PolicyTimeout` (DEADLINE_EXCEEDED), anything else
  `PolicyUnavailable` (UNAVAILABLE).

Wire format (JSON, UTF-8). Request: {"version": 2, "node_id", "request_id" (random hex),
"sent_at" (unix seconds), "key_id", "message_hash" (the hash rule's name: "raw", "sha256",
"double-sha256", "keccak256", "eth-personal-message"; "sha256" for FROST), "message" (hex: what
the enclave will hash by that rule; for "raw" the digest itself), "digest" (hex: the digest the
host computed; a policy service recomputes it from the message rather than trust the host),
"derivation_path" (list of ints), "presignature_id" (empty when presigning and signing run in one
session), "session_id"}. A reshare dealer's request has "message_hash" "reshare" and a repair
helper's "repair": "message" is then the bytes the digest is SHA-256 of (door.digests
`reshare_preimage` / `repair_preimage`: party sets, thresholds and the P-256 keys of the parties
that receive shares), for the service to read and rehash. Answer: {"decision": "approve",
"expires_at": int, "signature": base64 DER over the v2 approval message of docs/nitro.md §7} or
{"decision": "reject", "reason": str}.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.client
import json
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

REQUEST_DOMAIN = b"mpc-signer/policy-request/v1\x00"
SIGNATURE_HEADER = "X-Mpc-Signer-Signature"
NODE_HEADER = "X-Mpc-Signer-Node"
MAX_RESPONSE_BYTES = 64 * 1024
_MAX_REASON = 200


class PolicyError(Exception):
    """Base of policy failures. `status` names the gRPC status code the API maps it to."""

    status = "UNAVAILABLE"


class PolicyRejected(PolicyError):
    status = "PERMISSION_DENIED"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"signing policy rejected the request: {reason}")


class PolicyTimeout(PolicyError):
    status = "DEADLINE_EXCEEDED"


class PolicyUnavailable(PolicyError):
    status = "UNAVAILABLE"


@dataclass(frozen=True)
class PolicyCallbackConfig:
    url: str
    ca_file: Path
    node_id: str
    node_key: ec.EllipticCurvePrivateKey = field(repr=False)
    timeout: float = 5.0
    client_cert: tuple[Path, Path] | None = None  # optional mTLS (certificate, key)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("policy callback URL must be https://host[:port]/path")
        if not isinstance(self.node_key.curve, ec.SECP256R1):
            raise ValueError("node key must be ECDSA P-256")
        if not 0 < self.timeout <= 120:
            raise ValueError("policy timeout must be in (0, 120] seconds")


@dataclass(frozen=True)
class ApprovalRequest:
    """What one signing request signs, as the host asks the policy service about it; the
    enclave rebuilds the same fields from the request it signs (enclave/policy.py)."""

    key_id: str
    message_hash: str
    message: bytes
    digest: bytes
    derivation_path: tuple[int, ...]
    presignature_id: str
    session_id: str


@dataclass(frozen=True)
class ApprovalGrant:
    """What the host relays to the enclave (which rebuilds and checks the signed message)."""

    request: ApprovalRequest
    expires_at: int
    signature: bytes = field(repr=False)


def sign_request_body(body: bytes, node_key: ec.EllipticCurvePrivateKey) -> str:
    return base64.b64encode(node_key.sign(REQUEST_DOMAIN + body, ec.ECDSA(hashes.SHA256()))).decode("ascii")


class PolicyClient:
    def __init__(self, config: PolicyCallbackConfig) -> None:
        self._config = config
        parts = urlsplit(config.url)
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Only the configured CA: a public CA must not be able to impersonate the policy service.
        self._tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(config.ca_file))
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        if config.client_cert is not None:
            self._tls.load_cert_chain(str(config.client_cert[0]), str(config.client_cert[1]))

    def request_approval(self, request: ApprovalRequest) -> ApprovalGrant:
        body = json.dumps(
            {
                "version": 2,
                "node_id": self._config.node_id,
                "request_id": secrets.token_hex(16),
                "sent_at": int(time.time()),
                "key_id": request.key_id,
                "message_hash": request.message_hash,
                "message": request.message.hex(),
                "digest": request.digest.hex(),
                "derivation_path": [int(i) for i in request.derivation_path],
                "presignature_id": request.presignature_id,
                "session_id": request.session_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            NODE_HEADER: self._config.node_id,
            SIGNATURE_HEADER: sign_request_body(body, self._config.node_key),
        }
        status, payload = self._post(body, headers)
        if status in (401, 403):
            raise PolicyRejected(f"policy service refused this node (HTTP {status})")
        if status != 200:
            raise PolicyUnavailable(f"policy service answered HTTP {status}")
        answer = _parse_answer(payload)
        if answer.get("decision") == "reject":
            raise PolicyRejected(_public_reason(answer.get("reason")))
        if answer.get("decision") != "approve":
            raise PolicyUnavailable("policy service answer has no valid decision")
        expires_at, signature = answer.get("expires_at"), answer.get("signature")
        if not isinstance(expires_at, int) or isinstance(expires_at, bool) or not isinstance(signature, str):
            raise PolicyUnavailable("policy service approval lacks expires_at or signature")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise PolicyUnavailable("policy service approval signature is not base64") from None
        return ApprovalGrant(request, expires_at, raw_signature)

    async def request_approval_async(self, request: ApprovalRequest) -> ApprovalGrant:
        """For the aio server: the blocking call in a worker thread."""
        return await asyncio.to_thread(self.request_approval, request)

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        deadline = time.monotonic() + self._config.timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left

        conn = http.client.HTTPSConnection(self._host, self._port, context=self._tls, timeout=remaining())
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            # http.client drops conn.sock once a non-keep-alive response is read; the response
            # still reads from this socket, so its timeout is what bounds each read.
            sock = conn.sock
            if sock is None:
                raise PolicyUnavailable("policy service connection closed")
            sock.settimeout(remaining())
            response = conn.getresponse()
            chunks: list[bytes] = []
            size = 0
            while not response.isclosed():  # a fully read response has released the socket
                sock.settimeout(remaining())
                chunk = response.read(4096)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise PolicyUnavailable("policy service answer too large")
                chunks.append(chunk)
            remaining()
            return response.status, b"".join(chunks)
        except TimeoutError:
            raise PolicyTimeout(f"policy service did not answer within {self._config.timeout:g}s") from None
        except ssl.SSLError as exc:
            raise PolicyUnavailable(f"TLS to the policy service failed: {exc.reason or type(exc).__name__}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PolicyUnavailable(f"policy service unreachable: {type(exc).__name__}") from exc
        finally:
            conn.close()


def _parse_answer(payload: bytes) -> dict[str, object]:
    try:
        answer = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise PolicyUnavailable("policy service answer is not JSON") from None
    if not isinstance(answer, dict):
        raise PolicyUnavailable("policy service answer is not a JSON object")
    return answer


def _public_reason(reason: object) -> str:
    # The reason is relayed to the API caller: keep it short and printable.
    if not isinstance(reason, str) or not reason:
        return "no reason given"
    return "".join(c for c in reason if c.isprintable())[:_MAX_REASON]
