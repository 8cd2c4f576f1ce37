"""The AWS credentials the in-enclave KMS client signs with, as last pushed by the host.

The enclave has no network and so no IMDS: the host fetches the parent instance role's temporary
credentials and sends them in a `SetAwsCredentials` request (signer/link/credentials.py). They are
the host's own credentials and not secret from it; the KMS key policy on the enclave's
measurements is what keeps the data keys to this enclave. They are still kept out of logs and
reprs, since anyone else holding them could call KMS as the instance role.

Until the first push, and after the pushed credentials expire, every KMS call is refused with
`KmsUnavailable` (retryable): a restarted enclave waits for the host's next push.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from typing import Final

from enclave.errors import BadInput
from enclave.tee.kms import KmsUnavailable
from enclave.tee.kms_http import AwsCredentials

_MAX_FIELD: Final = 4096  # session tokens are long (about 1-2 KiB); anything far above is not one


class CredentialsHolder:
    """Thread-safe slot for the current credentials; `current` is the `KmsHttpClient` callback."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: AwsCredentials | None = None
        self._expires_at = 0

    def __repr__(self) -> str:
        with self._lock:
            if self._credentials is None:
                return "CredentialsHolder(empty)"
            key_id = self._credentials.access_key_id
            return f"CredentialsHolder(access_key_id={key_id!r}, expires_at={self._expires_at})"

    def set(self, access_key_id: str, secret_access_key: str, session_token: str, expires_at: int) -> bool:
        """Store the credentials; True if they differ from the ones held (the host re-pushes the
        same ones every few seconds)."""
        if not 16 <= len(access_key_id) <= 128 or not access_key_id.isalnum():
            raise BadInput("access_key_id must be 16-128 letters and digits")
        if not secret_access_key or len(secret_access_key) > _MAX_FIELD or len(session_token) > _MAX_FIELD:
            raise BadInput("secret_access_key missing, or a credential field too long")
        if not (secret_access_key + session_token).isprintable():
            raise BadInput("credential fields must be printable text")
        if expires_at <= self._clock():
            raise BadInput("the credentials have already expired")
        credentials = AwsCredentials(access_key_id, secret_access_key, session_token or None)
        with self._lock:
            previous = self._credentials
            # The secret and token are compared in constant time; only "changed or not" is used.
            changed = (
                previous is None
                or previous.access_key_id != access_key_id
                or not hmac.compare_digest(_secret_bytes(previous), _secret_bytes(credentials))
                or expires_at != self._expires_at
            )
            self._credentials = credentials
            self._expires_at = expires_at
        return changed

    @property
    def expires_at(self) -> int:
        with self._lock:
            return self._expires_at

    def current(self) -> AwsCredentials:
        with self._lock:
            credentials, expires_at = self._credentials, self._expires_at
        if credentials is None:
            raise KmsUnavailable("no AWS credentials yet: the host has not pushed the instance role's credentials")
        if expires_at <= self._clock():
            raise KmsUnavailable("the AWS credentials pushed by the host have expired; waiting for fresh ones")
        return credentials


def _secret_bytes(c: AwsCredentials) -> bytes:
    secret, token = c.secret_access_key.encode(), (c.session_token or "").encode()
    return len(secret).to_bytes(4, "big") + secret + token
