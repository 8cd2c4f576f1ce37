"""Error types of the enclave. Messages never carry secret values."""

from __future__ import annotations


class EnclaveError(Exception):
    """Base class for every error raised by enclave code."""


class InvalidEncoding(EnclaveError, ValueError):
    """Bytes from a peer that do not decode to a valid group element, scalar or structure."""


class InvalidParameters(EnclaveError, ValueError):
    """Locally supplied parameters that make no sense (threshold, party set, sizes)."""


class ProtocolFault(EnclaveError):
    """A peer broke the protocol; the session aborts naming `culprits` (party ids).

    `reason` is a fixed, non-secret description. Raised by a round's `verify`/`finalize` and
    turned into `enclave.protocols.driver.Abort` by the driver.
    """

    def __init__(self, culprits: frozenset[int] | set[int] | int, reason: str) -> None:
        if isinstance(culprits, int):
            culprits = frozenset({culprits})
        self.culprits: frozenset[int] = frozenset(culprits)
        self.reason = reason
        super().__init__(f"protocol fault by {sorted(self.culprits)}: {reason}")


class BadInput(EnclaveError, ValueError):
    """The caller (not a session peer) asked for something invalid; rejected, state unchanged."""


class LocalError(EnclaveError):
    """An internal failure of this party (not a peer's fault); the request may be retried."""


class RequestRejected(EnclaveError):
    """A typed refusal of a request; `code` is an `mpc.v1.enclave.ErrorCode` value and the message
    is shown to the host (so it must never contain secret material)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
