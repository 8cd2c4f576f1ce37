"""Errors of the host <-> enclave channel. Messages name what failed, never secret bytes."""

from __future__ import annotations


class TransportError(Exception):
    """Base class for channel errors."""


class FrameError(TransportError):
    """A frame that is oversized, truncated or does not parse: the connection is closed."""


class HandshakeError(TransportError):
    """The pre-shared-key handshake failed (wrong key, wrong magic, timeout, closed early)."""


class EnclaveUnavailable(TransportError):
    """No working connection to the enclave (not running, restarting, or the channel dropped)."""


class EnclaveNotReached(EnclaveUnavailable):
    """No connection could be made: the request was certainly not sent."""


class EnclaveTimeout(TransportError):
    """The enclave did not answer a request in time; the request's effect is unknown."""


class EnclaveRequestError(TransportError):
    """The enclave answered a request with a typed error (an `mpc.v1.enclave.ErrorCode`)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
