"""The Exchange stream handler on its own (a scripted stream context and servicer): each call's
answer, status and metrics; failures in-band with the error table's caller-safe messages; the
token's expiry ending the stream only after the calls in flight have answered."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.api.exchange import EXPIRED, ExchangeHandler
from signer.auth.interceptor import Caller, _current_caller
from signer.auth.jwt import Claims
from signer.errors import NotFound

NOW = 1_000_000.0


class Servicer:
    """Answers GetSignStatus; StartSign waits for `release`; GetDKGStatus fails as asked."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.failure: Exception = NotFound("unknown session")

    async def GetSignStatus(self, request: Any, context: Any) -> pb.GetSignStatusResponse:
        return pb.GetSignStatusResponse(session_id=request.session_id, state=pb.SESSION_STATE_RUNNING)

    async def StartSign(self, request: Any, context: Any) -> pb.StartSignResponse:
        await self.release.wait()
        return pb.StartSignResponse(session_id=request.session_id)

    async def GetDKGStatus(self, request: Any, context: Any) -> pb.GetDKGStatusResponse:
        raise self.failure

    async def _unused(self, request: Any, context: Any) -> Any:
        raise AssertionError("not called")

    StartDKG = StartPresign = GetPresignStatus = SubmitProtocolMessage = _unused
    StartRefresh = GetRefreshStatus = StartReshare = GetReshareStatus = StartRepair = GetRepairStatus = _unused
    GetKey = ListKeys = RetireKey = _unused


class Stream:
    """A stream context: requests come from a queue (None = the client half-closes)."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[pb.ExchangeRequest | None] = asyncio.Queue()
        self.written: list[pb.ExchangeResponse] = []
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self.headers_sent = False

    async def read(self) -> Any:
        request = await self.incoming.get()
        return grpc.aio.EOF if request is None else request

    async def write(self, response: pb.ExchangeResponse) -> None:
        self.written.append(response)

    async def send_initial_metadata(self, metadata: Any) -> None:
        self.headers_sent = True

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self.aborted = (code, message)
        raise grpc.aio.AbortError()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", "req-1"),)

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"


def _handler(servicer: Servicer, clock: list[float], done: list[tuple[str, str]]) -> ExchangeHandler:
    return ExchangeHandler(
        servicer,
        call_done=lambda label, code, _s: done.append((label, code)),
        leeway_seconds=5,
        wall_clock=lambda: clock[0],
    )


async def _serve(handler: ExchangeHandler, stream: Stream, expires_at: int) -> None:
    _current_caller.set(Caller("mpc-service", Claims("svc", "mpc-service", int(NOW) - 10, expires_at)))
    await handler.serve(stream)  # type: ignore[arg-type]


def test_calls_answer_in_band_and_are_counted_as_their_methods() -> None:
    async def run() -> tuple[Stream, list[tuple[str, str]]]:
        servicer, stream, done = Servicer(), Stream(), []
        servicer.failure = KeyError("secret-share-bytes")
        server = asyncio.create_task(_serve(_handler(servicer, [NOW], done), stream, int(NOW) + 60))
        stream.incoming.put_nowait(pb.ExchangeRequest(call_id=1, start_sign=pb.StartSignRequest(session_id="slow")))
        stream.incoming.put_nowait(
            pb.ExchangeRequest(call_id=2, get_sign_status=pb.GetSignStatusRequest(session_id="s-2"))
        )
        stream.incoming.put_nowait(
            pb.ExchangeRequest(call_id=3, get_dkg_status=pb.GetDKGStatusRequest(session_id="s-3"))
        )
        stream.incoming.put_nowait(pb.ExchangeRequest(call_id=4))
        stream.incoming.put_nowait(pb.ExchangeRequest(call_id=1, get_sign_status=pb.GetSignStatusRequest()))
        while len(stream.written) < 4:
            await asyncio.sleep(0.01)
        servicer.release.set()  # the slow call answers last, after the others
        stream.incoming.put_nowait(None)
        await server
        return stream, done

    stream, done = asyncio.run(run())
    by_order = [(r.call_id, r.code, r.WhichOneof("response")) for r in stream.written]
    assert by_order[-1] == (1, 0, "start_sign")
    answers = {(r.call_id, r.WhichOneof("response")): r for r in stream.written}
    assert answers[(2, "get_sign_status")].get_sign_status.session_id == "s-2"
    internal = answers[(3, None)]
    assert internal.code == grpc.StatusCode.INTERNAL.value[0]
    assert internal.message.startswith("internal error (ref ") and "secret" not in internal.message
    assert answers[(4, None)].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    duplicate = [r for r in stream.written if r.call_id == 1 and r.code]
    assert len(duplicate) == 1 and "already in flight" in duplicate[0].message
    assert stream.aborted is None  # half-closed: the stream ended normally
    assert sorted(done) == sorted(
        [
            ("SignerService/StartSign", "OK"),
            ("SignerService/GetSignStatus", "OK"),
            ("SignerService/GetDKGStatus", "INTERNAL"),
            ("SignerService/Exchange", "INVALID_ARGUMENT"),
        ]
    )


def test_expiry_stops_reading_and_answers_the_calls_in_flight_first() -> None:
    async def run() -> Stream:
        servicer, stream, clock, done = Servicer(), Stream(), [NOW], []
        expires = int(NOW) + 60
        server = asyncio.create_task(_serve(_handler(servicer, clock, done), stream, expires))
        stream.incoming.put_nowait(pb.ExchangeRequest(call_id=1, start_sign=pb.StartSignRequest(session_id="slow")))
        await asyncio.sleep(0.05)
        clock[0] = expires + 5 + 0.01  # past exp and the leeway
        stream.incoming.put_nowait(pb.ExchangeRequest(call_id=2, get_sign_status=pb.GetSignStatusRequest()))
        await asyncio.sleep(0.05)
        assert not server.done(), "the call in flight is still running"
        servicer.release.set()
        with pytest.raises(grpc.aio.AbortError):
            await server
        return stream

    stream = asyncio.run(run())
    assert [(r.call_id, r.WhichOneof("response")) for r in stream.written] == [(1, "start_sign")]
    assert stream.aborted == (grpc.StatusCode.UNAUTHENTICATED, EXPIRED)


def test_a_stream_without_token_claims_is_refused() -> None:
    async def run() -> Stream:
        stream = Stream()
        _current_caller.set(Caller("mpc-service", None))
        with pytest.raises(grpc.aio.AbortError):
            await _handler(Servicer(), [NOW], []).serve(stream)  # type: ignore[arg-type]
        return stream

    stream = asyncio.run(run())
    assert stream.aborted is not None and stream.aborted[0] == grpc.StatusCode.UNAUTHENTICATED
