"""SignerService.Exchange: the session methods over one bidirectional stream.

A unary gRPC call costs each side a whole call's set-up and tear-down; a message on an open
stream costs much less (measured on loopback: about half). A relay that makes thousands of calls
per second keeps one stream per signer open and sends each call as an `ExchangeRequest`.

Each call runs the servicer's unary method itself, so validation, sessions, the store, audit
records and the error table are exactly those of the unary call; only the envelope differs:
- authentication (mTLS identity and JWT) happened when the stream opened (`guarded` in the RPC
  pipeline); the token's expiry bounds the stream's life, since no call is accepted after it;
- a failure is written back in the call's response (code and message from the error table)
  instead of ending the stream;
- metrics and log lines are per call, under the unary method's label and with a request id of
  `<stream request id>:<call_id>`.

A frame that is not a valid `ExchangeRequest` has no call id to answer under: nothing more is
read, the calls in flight answer, and the stream ends with INVALID_ARGUMENT "malformed request"
(the RPC pipeline makes `read()` raise it), as an unparsable unary body is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from mpc.v1 import signer_pb2 as pb
from signer.auth.interceptor import current_caller
from signer.errors import InvalidArgument, refusal_status
from signer.logs import _request_session_id, bind, request_id_for

log = logging.getLogger(__name__)

MAX_CALLS_IN_FLIGHT = 64

# ExchangeRequest.call field -> the servicer method it runs (the response field has the same name).
METHODS: dict[str, str] = {
    "start_dkg": "StartDKG",
    "get_dkg_status": "GetDKGStatus",
    "start_sign": "StartSign",
    "get_sign_status": "GetSignStatus",
    "start_presign": "StartPresign",
    "get_presign_status": "GetPresignStatus",
    "submit_protocol_message": "SubmitProtocolMessage",
    "start_refresh": "StartRefresh",
    "get_refresh_status": "GetRefreshStatus",
    "start_reshare": "StartReshare",
    "get_reshare_status": "GetReshareStatus",
    "start_repair": "StartRepair",
    "get_repair_status": "GetRepairStatus",
    "get_key": "GetKey",
    "list_keys": "ListKeys",
    "retire_key": "RetireKey",
}

EXPIRED = "the stream's token has expired; open a new stream with a fresh token"

CallDone = Callable[[str, str, float], None]  # (method label, status code name, seconds)


class ExchangeHandler:
    """Serves Exchange streams for `servicer` (whose unary methods each call runs)."""

    def __init__(
        self,
        servicer: Any,
        *,
        call_done: CallDone | None = None,
        leeway_seconds: float = 0.0,
        max_in_flight: int = MAX_CALLS_IN_FLIGHT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._methods: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
            field: getattr(servicer, name) for field, name in METHODS.items()
        }
        self._call_done = call_done
        self._leeway = leeway_seconds
        self._max = max_in_flight
        self._now = wall_clock

    async def serve(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        caller = current_caller()
        if caller is None or caller.claims is None:
            # `guarded` admits this method only with a verified token; refuse rather than assume.
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the stream was opened without a token")
            return
        # Accepted: say so before reading anything. The SDK waits for these headers before its
        # first write, so a refused stream (bad token, at open) ends with its own status instead of
        # racing a write that grpc core may then report as INTERNAL (an RST_STREAM).
        await context.send_initial_metadata(())
        stream = _Stream(self, context, caller.claims.expires_at + self._leeway)
        await stream.run()


class _Stream:
    """One open Exchange stream: reads calls while its token is valid, runs each as a task, and
    writes each response when its call finishes."""

    def __init__(
        self, handler: ExchangeHandler, context: grpc.aio.ServicerContext[Any, Any], expires_at: float
    ) -> None:
        self.h = handler
        self.context = context
        self.expires_at = expires_at
        self.request_id = request_id_for(context.invocation_metadata())
        self.peer = context.peer()
        self.calls: dict[int, asyncio.Task[None]] = {}  # by call_id, while it runs
        self.tasks: set[asyncio.Task[None]] = set()  # the calls and any refusals being written
        self.slots = asyncio.Semaphore(handler._max)
        self.writing = asyncio.Lock()  # grpc allows one write at a time on a call

    async def run(self) -> None:
        expired = False
        malformed: InvalidArgument | None = None
        try:
            while True:
                # At most `max_in_flight` calls run; the next request is read only when one ends,
                # so a fast writer is held back by HTTP/2 flow control rather than by memory.
                await self.slots.acquire()
                remaining = self.expires_at - self.h._now()
                if remaining <= 0:
                    expired = True
                    break
                try:
                    async with asyncio.timeout(remaining):
                        request = await self.context.read()
                except TimeoutError:
                    expired = True
                    break
                except InvalidArgument as exc:  # a frame that did not parse (signer.api.pipeline)
                    malformed = exc
                    break
                if request is grpc.aio.EOF:
                    break
                if self.h._now() >= self.expires_at:
                    # Arrived after the token expired (the wait above is on the loop's clock):
                    # not run; the client fails it with the stream's UNAUTHENTICATED.
                    expired = True
                    break
                self._accept(request)
            # Half-closed by the client, expired or malformed: the calls in flight answer first.
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
        except BaseException:
            # Cancelled (the client cancelled the stream or went away): so are its calls, as a
            # cancelled unary call's handler would be.
            for task in self.tasks:
                task.cancel()
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            raise
        if malformed is not None:
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(malformed))
        if expired:
            await self.context.abort(grpc.StatusCode.UNAUTHENTICATED, EXPIRED)

    def _accept(self, request: pb.ExchangeRequest) -> None:
        call_id = request.call_id
        if call_id in self.calls:
            # Answered at once, under the same id: the running call keeps its own answer.
            duplicate = InvalidArgument(f"call_id {call_id} is already in flight")
            task = asyncio.create_task(self._refuse(call_id, duplicate))
        else:
            task = self.calls[call_id] = asyncio.create_task(self._call(request))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.slots.release()

    async def _refuse(self, call_id: int, exc: Exception) -> None:
        code, message = refusal_status(exc, "/mpc.v1.SignerService/Exchange", self.peer)
        try:
            await self._write(pb.ExchangeResponse(call_id=call_id, code=code.value[0], message=message))
        except Exception:
            log.debug("exchange refusal of call %s not written", call_id, exc_info=True)

    async def _call(self, request: pb.ExchangeRequest) -> None:
        call_id = request.call_id
        field = request.WhichOneof("call")
        method = METHODS.get(field or "", "Exchange")
        label = f"SignerService/{method}"
        start = time.perf_counter()
        status = grpc.StatusCode.OK
        response = pb.ExchangeResponse(call_id=call_id)
        try:
            inner = getattr(request, field) if field else None
            with bind(request=f"{self.request_id}:{call_id}", session=_request_session_id(inner)):
                try:
                    if field is None:
                        raise InvalidArgument("the request sets no call")
                    result = await self.h._methods[field](inner, self.context)
                    getattr(response, field).CopyFrom(result)
                except Exception as exc:
                    status, message = refusal_status(exc, f"/mpc.v1.SignerService/{method}", self.peer)
                    response.ClearField("response")
                    response.code = status.value[0]
                    response.message = message
                await self._write(response)
        except asyncio.CancelledError:
            status = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            # The response could not be written: the stream is ending; its own status says why.
            log.debug("exchange call %s: response not written", call_id, exc_info=True)
        finally:
            del self.calls[call_id]
            if self.h._call_done is not None:
                self.h._call_done(label, status.name, time.perf_counter() - start)

    async def _write(self, response: pb.ExchangeResponse) -> None:
        async with self.writing:
            await self.context.write(response)
