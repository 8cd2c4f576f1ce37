"""Client side of SignerService.Exchange: session calls as messages on one open stream.

`ExchangeChannel.call(field, request)` sends one `ExchangeRequest` and returns the unary
method's response, or raises `grpc.aio.AioRpcError` with the status the unary call would have
ended with, so callers handle both transports alike. The stream is opened on first use with the
current token and replaced by a new one as soon as the token source mints a new token (before
the old one expires; the old stream is half-closed and finishes its calls). If the stream ends,
its calls in flight fail with the stream's status and the next call opens a new stream.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import grpc

from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc

_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


def _error(code: grpc.StatusCode, message: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=message)


# The only INTERNAL a signer sends is the error table's generic one (signer.errors).
_SIGNER_INTERNAL = "internal error (ref "


def _stream_status(exc: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
    """How the stream ended, as a unary call would have said it. When the node dies under an
    open stream, grpc core sometimes ends it INTERNAL ("Internal error from Core", an RST_STREAM)
    where a unary call gets UNAVAILABLE; an INTERNAL that the signer did not send is a lost
    connection, so the caller sees UNAVAILABLE (retryable) as on the unary path."""
    details = exc.details() or ""
    if exc.code() == grpc.StatusCode.INTERNAL and not details.startswith(_SIGNER_INTERNAL):
        return _error(grpc.StatusCode.UNAVAILABLE, f"the exchange stream was lost: {details}")
    return exc


class _Stream:
    def __init__(self, rpc: Any, token: str) -> None:
        self.rpc = rpc
        self.token = token
        self.pending: dict[int, asyncio.Future[pb.ExchangeResponse]] = {}
        self.ids = itertools.count(1)
        self.writing = asyncio.Lock()  # grpc allows one write at a time on a call
        self.ended: grpc.aio.AioRpcError | None = None
        self.half_closed = False
        self.opened = False  # the signer's headers arrived: the stream was accepted
        # Writes under way: a write on a call that is cancelled meanwhile never returns, so the
        # end of the stream cancels them (their callers then get the stream's status).
        self.writes: set[asyncio.Task[None]] = set()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        error: grpc.aio.AioRpcError | None = None
        try:
            async for response in self.rpc:
                future = self.pending.pop(response.call_id, None)
                if future is not None and not future.done():
                    future.set_result(response)
        except grpc.aio.AioRpcError as exc:
            error = _stream_status(exc)
        except asyncio.CancelledError:
            error = _error(grpc.StatusCode.CANCELLED, "the exchange stream was closed")
        self.ended = error or _error(grpc.StatusCode.UNAVAILABLE, "the exchange stream ended")
        for future in self.pending.values():
            if not future.done():
                future.set_exception(self.ended)
        self.pending.clear()
        for write in self.writes:
            write.cancel()

    async def call(self, request: pb.ExchangeRequest, timeout: float) -> pb.ExchangeResponse:
        if self.ended is not None:
            raise self.ended
        call_id = next(self.ids)
        request.call_id = call_id
        future: asyncio.Future[pb.ExchangeResponse] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        try:
            async with asyncio.timeout(timeout):
                await self._send(request)
                return await future
        except TimeoutError:
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {timeout}s") from None
        finally:
            self.pending.pop(call_id, None)
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # the caller got the stream's status another way: no "never retrieved" log

    async def _send(self, request: pb.ExchangeRequest) -> None:
        write = asyncio.ensure_future(self._write(request))
        self.writes.add(write)
        try:
            await write
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.ended is None or (task is not None and task.cancelling()):
                raise  # this caller was cancelled (or timed out), not the stream
            raise self.ended from None
        except (grpc.aio.UsageError, grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The stream ended under the write (grpc says so in any of these ways, sometimes as
            # INTERNAL when the node refused the stream at open): the reader reports how it ended.
            await asyncio.wait({self.reader})
            raise self.ended or _error(grpc.StatusCode.UNAVAILABLE, "the exchange stream ended") from None
        finally:
            self.writes.discard(write)

    async def _write(self, request: pb.ExchangeRequest) -> None:
        async with self.writing:
            if not self.opened:
                # The signer sends its headers once it has accepted the stream (or the call ends
                # with the refusal): writing before that can race a refusal at open, which grpc
                # core then reports as INTERNAL instead of the signer's UNAUTHENTICATED.
                await self.rpc.initial_metadata()
                self.opened = True
            await self.rpc.write(request)

    async def half_close(self) -> None:
        if self.half_closed or self.ended is not None:
            return
        self.half_closed = True
        try:
            async with self.writing:
                await self.rpc.done_writing()
        except (grpc.aio.UsageError, grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # already ended

    async def close(self, graceful: bool) -> None:
        """Graceful: let the calls in flight finish first. Otherwise they fail with CANCELLED, as
        unary calls in flight do when their channel closes."""
        if graceful:
            await self.half_close()
            if self.pending:
                await asyncio.gather(*self.pending.values(), return_exceptions=True)
        self.rpc.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


class ExchangeChannel:
    """The session calls of `SignerClient` over Exchange streams on `channel`."""

    def __init__(
        self, channel: grpc.aio.Channel, metadata: Callable[[], grpc.aio.Metadata], token: Callable[[], str]
    ) -> None:
        self._stub = signer_pb2_grpc.SignerServiceStub(channel)
        self._metadata = metadata
        self._token = token
        self._stream: _Stream | None = None
        self._retired: set[asyncio.Task[None]] = set()

    def _current(self) -> _Stream:
        metadata = self._metadata()  # mints a new token when the current one nears expiry
        token = self._token()
        stream = self._stream
        if stream is not None and stream.ended is None and stream.token == token:
            return stream
        if stream is not None:
            # Its token is about to expire (or it ended): new calls go to a new stream, and this
            # one finishes the calls it has.
            task = asyncio.ensure_future(stream.close(graceful=True))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        self._stream = _Stream(self._stub.Exchange(metadata=metadata), token)
        return self._stream

    async def call(self, field: str, request: Any, timeout: float) -> Any:
        """Run the unary method whose ExchangeRequest field is `field` with `request`."""
        response = await self._current().call(pb.ExchangeRequest(**{field: request}), timeout)
        if response.code != grpc.StatusCode.OK.value[0]:
            code = _STATUS_BY_NUMBER.get(response.code, grpc.StatusCode.UNKNOWN)
            raise _error(code, response.message)
        if response.WhichOneof("response") != field:
            raise _error(grpc.StatusCode.INTERNAL, f"the signer answered a {field} call with another response")
        return getattr(response, field)

    async def close(self) -> None:
        """Cancel the open stream (its calls in flight fail with CANCELLED) and wait for the
        retired ones to finish theirs."""
        if self._stream is not None:
            await self._stream.close(graceful=False)
            self._stream = None
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
