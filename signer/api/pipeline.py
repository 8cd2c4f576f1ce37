"""The server's one interceptor: metrics, log context, error mapping and authentication composed
into a single wrapper per method.

Each concern keeps its logic in its own module (metrics.py, logs.py, errors.py,
auth/interceptor.py); this module only fixes their order, which is that of the nesting:
- metrics outermost, so refused calls are counted too;
- then the log context, so every line logged for a call (refusals included) has its request id;
- then error mapping, so no exception escapes as anything but a status from the table;
- then authentication (mTLS identity, JWT), before the servicer runs;
- a request body that does not parse is INVALID_ARGUMENT "malformed request" (after
  authentication, so a stranger learns nothing), never grpc's UNKNOWN with the parser's text: a
  unary body is handed over as `MALFORMED`, and a frame on a request stream (Exchange) makes the
  handler's `read()` raise `InvalidArgument`, which the handler ends the stream with.
One wrapper instead of four nested interceptors saves, per call, three interceptor coroutines,
three handler objects and three extra awaits; the wrapped handler is built once per method.
Streaming handlers (health Watch, reflection, Exchange) get authentication, error mapping and
one count per stream (its lifetime as the latency); the calls on an Exchange stream are counted
one by one under their own methods' labels by signer.api.exchange.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc

from signer.auth.interceptor import Authenticator, guarded
from signer.errors import InvalidArgument, abort_with_status
from signer.logs import _request_session_id, bind, request_id_for
from signer.metrics import Metrics, method_label


class RpcPipeline(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics, authenticator: Authenticator) -> None:
        self._metrics = metrics
        self._auth = authenticator
        # method -> (the handler grpc resolved, our wrapper of it); only registered methods get here
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        if handler.unary_unary is not None:
            wrapped = self._unary(method, handler)
        else:
            label, rpc_done = method_label(method), self._metrics.rpc_done
            wrapped = guarded(
                _refusing_malformed(handler), method, self._auth, lambda code, seconds: rpc_done(label, code, seconds)
            )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _unary(self, method: str, handler: Any) -> Any:
        behavior = handler.unary_unary
        label = method_label(method)
        rpc_done = self._metrics.rpc_done
        admit = self._auth.admit

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                # Read once: each invocation_metadata() builds a fresh tuple from the call.
                metadata = context.invocation_metadata()
                with bind(request=request_id_for(metadata), session=_request_session_id(request)):
                    try:
                        if not await admit(method, context, metadata):
                            return None
                        if request is MALFORMED:
                            raise InvalidArgument(MALFORMED_BODY)
                        result = behavior(request, context)
                        response = await result if inspect.isawaitable(result) else result
                    except grpc.aio.AbortError:
                        raise
                    except Exception as exc:
                        await abort_with_status(exc, method, context)
                        response = None
                status = context.code()
                if status is not None and status != grpc.StatusCode.OK:
                    code = status.name
                return response
            except grpc.aio.AbortError:
                status = context.code()
                code = status.name if status is not None else "UNKNOWN"
                raise
            except BaseException:
                code = "UNKNOWN"
                raise
            finally:
                rpc_done(label, code, time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


class _Malformed:
    """A request body that did not parse, handed to the wrapper so that it answers in the table's
    terms (after authentication, counted) instead of grpc's UNKNOWN with the parser's text."""

    __slots__ = ()


MALFORMED: Final = _Malformed()
MALFORMED_BODY: Final = "malformed request: the body is not a valid message of this method"
MALFORMED_FRAME: Final = "malformed request: a frame on the stream is not a valid message of this method"


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or anything else a parser raises on hostile bytes
            return MALFORMED

    return parse


def _refusing(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:
            raise InvalidArgument(MALFORMED_FRAME) from None

    return parse


def _refusing_malformed(handler: Any) -> Any:
    """A streaming handler whose bodies that do not parse become InvalidArgument: on a request
    stream, raised by the handler's `read()` (grpc calls the deserializer there); for the one
    request of a unary-stream method (health Watch), raised when the behavior starts."""
    if handler.request_deserializer is None:
        return handler
    if handler.request_streaming:
        factory = (
            grpc.stream_stream_rpc_method_handler
            if handler.response_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        behavior = handler.stream_stream or handler.stream_unary
        return factory(
            behavior,
            request_deserializer=_refusing(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    streaming = handler.unary_stream
    checked: Any
    if inspect.isasyncgenfunction(streaming):

        async def checked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request is MALFORMED:
                raise InvalidArgument(MALFORMED_BODY)
            async for item in streaming(request, context):
                yield item

    else:  # writes with context.write (grpc's health Watch)

        async def checked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request is MALFORMED:
                raise InvalidArgument(MALFORMED_BODY)
            result = streaming(request, context)
            return await result if inspect.isawaitable(result) else result

    return grpc.unary_stream_rpc_method_handler(
        checked,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )
