"""The parent instance role's AWS credentials, fetched from IMDSv2 and pushed into the enclave.

A Nitro enclave has no network and so cannot reach the instance metadata service; its KMS client
(enclave/tee/kms_http.py) signs with whatever credentials the host last pushed (`SetAwsCredentials`).
These are the host's own credentials, not a secret from it: the KMS key policy on the enclave's
measurements is what keeps data keys to the enclave. They are still kept out of logs and reprs.

IMDSv2 only (session-oriented; IMDSv1 GETs without a token are refused by instances configured
with `HttpTokens=required`, as docs/nitro.md asks):

    PUT  /latest/api/token                                   X-aws-ec2-metadata-token-ttl-seconds
    GET  /latest/meta-data/iam/security-credentials/         X-aws-ec2-metadata-token -> role name
    GET  /latest/meta-data/iam/security-credentials/ROLE     -> {"Code": "Success", "AccessKeyId",
                                                                "SecretAccessKey", "Token", "Expiration"}

`CredentialsPusher` fetches when the held credentials come within `refresh_margin` of expiry
(IMDS offers new ones at least five minutes before the old ones expire), and pushes the current
ones every `push_interval` seconds either way, so a restarted enclave has credentials again
within that interval. Failures are logged and retried; KMS calls in the enclave fail
(retryably) while it has none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from mpc.v1 import enclave_pb2 as epb
from signer.link.client import EnclaveClient, TransportError
from signer.tasks import cancel_quietly

log = logging.getLogger(__name__)

DEFAULT_IMDS_URL: Final = "http://169.254.169.254"
# Names of IMDS endpoints and headers, not secrets.
TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105
CREDENTIALS_PATH: Final = "/latest/meta-data/iam/security-credentials/"
TOKEN_TTL_HEADER: Final = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105
TOKEN_HEADER: Final = "X-aws-ec2-metadata-token"  # noqa: S105
_MAX_ANSWER: Final = 64 * 1024


class ImdsError(Exception):
    """IMDS could not give credentials; the message says why (never a credential)."""


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: int  # unix seconds

    def message(self) -> epb.SetAwsCredentials:
        return epb.SetAwsCredentials(
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            expiration_unix=self.expiration,
        )


class ImdsClient:
    """Blocking IMDSv2 client (stdlib urllib, never through a proxy)."""

    def __init__(
        self,
        base_url: str = DEFAULT_IMDS_URL,
        *,
        timeout: float = 2.0,
        token_ttl: int = 21600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("IMDS URL must be http://HOST[:PORT] (the instance metadata service is plain HTTP)")
        if not 1 <= token_ttl <= 21600:
            raise ValueError("IMDS token TTL must be 1..21600 seconds")
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._token_ttl = token_ttl
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (token, expires at)
        # No proxy, ever: credentials must not cross a proxy taken from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"ImdsClient({self._base!r})"

    def fetch(self) -> RoleCredentials:
        try:
            return self._fetch(self._session_token())
        except _TokenRefused:
            # The token expired or IMDS restarted: one fresh token, then give up.
            self._token = None
            try:
                return self._fetch(self._session_token())
            except _TokenRefused:
                raise ImdsError("IMDS refuses our session token (HTTP 401)") from None

    def _fetch(self, token: str) -> RoleCredentials:
        roles = self._get(CREDENTIALS_PATH, token).decode("utf-8", "replace").split()
        if not roles:
            raise ImdsError("the instance has no IAM role (attach an instance profile)")
        role = roles[0]
        if not all(c.isalnum() or c in "+=,.@_-" for c in role):
            raise ImdsError("IMDS returned an invalid role name")
        try:
            doc = json.loads(self._get(CREDENTIALS_PATH + role, token))
        except (ValueError, UnicodeDecodeError):
            raise ImdsError(f"IMDS credentials for role {role} are not JSON") from None
        if not isinstance(doc, dict) or doc.get("Code") != "Success":
            code = doc.get("Code") if isinstance(doc, dict) else None
            raise ImdsError(f"IMDS has no usable credentials for role {role} (Code {str(code)[:40]!r})")
        key_id, secret, session_token = doc.get("AccessKeyId"), doc.get("SecretAccessKey"), doc.get("Token")
        expiration = doc.get("Expiration")
        if not all(isinstance(v, str) and v for v in (key_id, secret, session_token, expiration)):
            raise ImdsError(f"IMDS credentials for role {role} lack a field")
        assert isinstance(key_id, str) and isinstance(secret, str) and isinstance(session_token, str)
        try:
            expires = int(datetime.fromisoformat(str(expiration).replace("Z", "+00:00")).timestamp())
        except ValueError:
            raise ImdsError(f"IMDS credentials for role {role} have an unreadable Expiration") from None
        return RoleCredentials(key_id, secret, session_token, expires)

    def _session_token(self) -> str:
        now = self._clock()
        if self._token is not None and now < self._token[1]:
            return self._token[0]
        # The scheme was checked to be http:// at construction (S310).
        request = urllib.request.Request(  # noqa: S310
            self._base + TOKEN_PATH, method="PUT", headers={TOKEN_TTL_HEADER: str(self._token_ttl)}
        )
        token = self._open(request).decode("ascii", "replace").strip()
        if not token:
            raise ImdsError("IMDS returned an empty session token")
        # Renewed well before IMDS would refuse it.
        self._token = (token, now + self._token_ttl * 0.8)
        return token

    def _get(self, path: str, token: str) -> bytes:
        return self._open(urllib.request.Request(self._base + path, headers={TOKEN_HEADER: token}))  # noqa: S310

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                body: bytes = response.read(_MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise _TokenRefused from None
            path = urlsplit(request.full_url).path
            raise ImdsError(f"IMDS answered HTTP {exc.code} to {request.get_method()} {path}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ImdsError(f"IMDS unreachable at {self._base}: {type(reason).__name__}") from None
        if len(body) > _MAX_ANSWER:
            raise ImdsError("IMDS answer too large")
        return body


class _TokenRefused(Exception):
    pass


class CredentialsPusher:
    """Keeps the enclave supplied with unexpired credentials (see the module docstring)."""

    def __init__(
        self,
        imds: ImdsClient,
        enclave: EnclaveClient,
        *,
        refresh_margin: float = 300.0,
        push_interval: float = 5.0,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._imds = imds
        self._enclave = enclave
        self._margin = refresh_margin
        self._push_interval = push_interval
        self._retry_interval = retry_interval
        self._clock = clock
        self._current: RoleCredentials | None = None
        self._task: asyncio.Task[None] | None = None
        self.pushes = 0  # accepted by the enclave (for tests and the log)

    @property
    def current(self) -> RoleCredentials | None:
        return self._current

    def _refresh_due(self) -> bool:
        return self._current is None or self._clock() >= self._current.expiration - self._margin

    async def refresh_once(self) -> RoleCredentials:
        """Fetch if due, then push; raises ImdsError or the enclave transport's errors."""
        if self._refresh_due():
            fetched = await asyncio.to_thread(self._imds.fetch)
            if self._current is None or fetched.access_key_id != self._current.access_key_id:
                log.info("AWS credentials %s from IMDS, expiring at %d", fetched.access_key_id, fetched.expiration)
            self._current = fetched
        current = self._current
        assert current is not None
        if current.expiration <= self._clock():
            raise ImdsError(f"IMDS still serves credentials that expired at {current.expiration}")
        await self._enclave.set_aws_credentials(current.message())
        self.pushes += 1
        return current

    def _next_wait(self) -> float:
        assert self._current is not None
        until_refresh = self._current.expiration - self._margin - self._clock()
        if until_refresh <= 0:
            # IMDS still serves the old credentials (it rotates them in the last minutes): ask
            # again at the push cadence, not in a tight loop.
            return self._push_interval
        return max(0.5, min(self._push_interval, until_refresh))

    async def run(self) -> None:
        while True:
            try:
                await self.refresh_once()
                wait = self._next_wait()
            except (ImdsError, TransportError) as exc:
                log.warning("AWS credentials not delivered to the enclave: %s", exc)
                wait = self._retry_interval
            await asyncio.sleep(wait)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        await cancel_quietly(self._task)
