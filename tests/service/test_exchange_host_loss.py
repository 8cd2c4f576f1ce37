"""The SDK's Exchange stream when the signer host dies under it: every call in flight fails with
UNAVAILABLE, as unary calls do, never grpc core's INTERNAL ("Internal error from Core"), and the
client works again once the node is back."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from grpc_health.v1 import health_pb2

from signer.client.exchange import _error, _stream_status
from tests.service.conftest import status_of

Code = grpc.StatusCode


def test_only_the_signers_own_internal_stays_internal() -> None:
    lost = _stream_status(_error(Code.INTERNAL, "Internal error from Core"))
    assert lost.code() == Code.UNAVAILABLE and "Internal error from Core" in (lost.details() or "")
    rst = _stream_status(_error(Code.INTERNAL, "Received RST_STREAM with error code 2"))
    assert rst.code() == Code.UNAVAILABLE
    ours = _error(Code.INTERNAL, "internal error (ref 0a1b2c3d4e5f)")
    assert _stream_status(ours) is ours
    for code in (Code.UNAVAILABLE, Code.UNAUTHENTICATED, Code.CANCELLED):
        error = _error(code, "x")
        assert _stream_status(error) is error


@pytest.mark.slow
async def test_calls_in_flight_when_the_host_dies_fail_unavailable(start_node, clients) -> None:  # type: ignore[no-untyped-def]
    node = start_node("host-loss")
    client = clients(node)
    codes: list[Code] = []
    for _ in range(4):
        assert await status_of(client.sign_status("x")) == (Code.NOT_FOUND, "unknown session")

        async def keep_calling() -> None:
            while True:
                code, _ = await status_of(client.sign_status("x"))
                if code != Code.NOT_FOUND:
                    codes.append(code)
                    return

        callers = [asyncio.ensure_future(keep_calling()) for _ in range(16)]
        await asyncio.sleep(0.2)
        node.signer.proc.kill()  # kill -9 of the host under an open stream with calls in flight
        await asyncio.to_thread(node.signer.proc.wait, 10)
        _, pending = await asyncio.wait(callers, timeout=30)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not pending, "every call ends when the host dies"
        node.signer.start()
        node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    assert codes and set(codes) == {Code.UNAVAILABLE}, codes
    assert await status_of(client.sign_status("x")) == (Code.NOT_FOUND, "unknown session")
