"""Host error types and the one table that maps errors to gRPC status codes.

A `SignerError`'s message is written for the caller and must never carry secret material.
Enclave channel errors map by type (unavailable, timeout) and typed enclave refusals by their
`ErrorCode`. Anything else reaches the caller as INTERNAL with a generic message and a reference
that points to the full traceback in the server log; `str(exc)` of an unknown exception is never
sent.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import grpc

from door.errors import EnclaveRequestError, EnclaveTimeout, EnclaveUnavailable
from mpc.v1 import enclave_pb2

log = logging.getLogger(__name__)


class SignerError(Exception):
    """Base of errors whose message may be shown to the caller."""


class InvalidArgument(SignerError):
    pass


class Unauthenticated(SignerError):
    """Missing or invalid service token or message HMAC."""


class PermissionDenied(SignerError):
    """Authenticated, but not allowed (client identity not on the allowlist, policy refusal)."""


class NotFound(SignerError):
    pass


class AlreadyExists(SignerError):
    """Session id reused with a different request; replayed message sequence number."""


class FailedPrecondition(SignerError):
    pass


class ResourceExhausted(SignerError):
    pass


class Unimplemented(SignerError):
    pass


class DeadlineExceeded(SignerError):
    pass


class Unavailable(SignerError):
    pass


# The table. Looked up along the exception's MRO, so subclasses inherit their parent's code.
STATUS_BY_ERROR: dict[type[BaseException], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    EnclaveUnavailable: grpc.StatusCode.UNAVAILABLE,
    EnclaveTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Typed refusals from the enclave (EnclaveRequestError.code).
STATUS_BY_ENCLAVE_CODE: dict[int, grpc.StatusCode] = {
    enclave_pb2.ERROR_CODE_INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    enclave_pb2.ERROR_CODE_UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    enclave_pb2.ERROR_CODE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    enclave_pb2.ERROR_CODE_ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    enclave_pb2.ERROR_CODE_FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    enclave_pb2.ERROR_CODE_RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    enclave_pb2.ERROR_CODE_PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    enclave_pb2.ERROR_CODE_SEALED_BLOB_INVALID: grpc.StatusCode.FAILED_PRECONDITION,
    enclave_pb2.ERROR_CODE_SEALED_IN_EARLIER_BOOT: grpc.StatusCode.FAILED_PRECONDITION,
    enclave_pb2.ERROR_CODE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


_SECURITY_CODES = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS}
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and caller-safe message for an exception."""
    if isinstance(exc, EnclaveRequestError):
        code = STATUS_BY_ENCLAVE_CODE.get(exc.code)
        if code is not None:
            return code, exc.message  # enclave messages are written for callers (no secrets)
    else:
        for cls in type(exc).__mro__:
            code = STATUS_BY_ERROR.get(cls)
            if code is not None:
                return code, str(exc)
    ref = secrets.token_hex(6)
    log.error("internal error (ref %s)", ref, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref})"


def refusal_status(exc: BaseException, method: str, peer: str) -> tuple[grpc.StatusCode, str]:
    """`status_for(exc)`, with refusals on security grounds logged with the peer."""
    code, message = status_for(exc)
    if code in _SECURITY_CODES:
        log.warning("%s from %s refused: %s: %s", method, peer, code.name, message)
    return code, message


async def abort_with_status(exc: Exception, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """End the call with the status the table gives `exc` (raises grpc's AbortError)."""
    code, message = refusal_status(exc, method, context.peer())
    await context.abort(code, message)
