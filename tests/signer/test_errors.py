"""The error table: typed errors keep their message; unknown ones never leak theirs."""

from __future__ import annotations

import grpc

from mpc.v1 import enclave_pb2
from signer.auth.envelope import MessageAuthError
from signer.errors import STATUS_BY_ERROR, AlreadyExists, NotFound, status_for
from signer.link.client import EnclaveRequestError, EnclaveTimeout, EnclaveUnavailable


def test_typed_errors_map_through_the_table() -> None:
    assert status_for(NotFound("unknown session")) == (grpc.StatusCode.NOT_FOUND, "unknown session")
    assert status_for(MessageAuthError("bad"))[0] == grpc.StatusCode.UNAUTHENTICATED  # via the MRO
    assert status_for(AlreadyExists("x"))[0] == grpc.StatusCode.ALREADY_EXISTS
    assert status_for(EnclaveUnavailable("enclave at x is unavailable"))[0] == grpc.StatusCode.UNAVAILABLE
    assert status_for(EnclaveTimeout("slow"))[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    code, message = status_for(EnclaveRequestError(enclave_pb2.ERROR_CODE_UNIMPLEMENTED, "not in this build"))
    assert (code, message) == (grpc.StatusCode.UNIMPLEMENTED, "not in this build")
    assert grpc.StatusCode.INTERNAL not in STATUS_BY_ERROR.values()


def test_unknown_errors_become_a_generic_internal() -> None:
    code, message = status_for(KeyError("secret-share-bytes"))
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message and message.startswith("internal error (ref ")
    code, message = status_for(EnclaveRequestError(enclave_pb2.ERROR_CODE_INTERNAL, "details"))
    assert code == grpc.StatusCode.INTERNAL and "details" not in message
