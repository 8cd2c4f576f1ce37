"""Authentication of every RPC: client identity always, the service JWT except on the explicitly
exempt methods (Ping, health, reflection).

grpc.aio interceptors see only the method name and metadata, not the TLS peer, so the check runs
inside a wrapper around the method's behavior, where the servicer context (and its auth context)
is available. The RPC pipeline (signer/api/pipeline.py) runs `Authenticator.admit` inside its
unary wrapper; `guarded` wraps the other handler shapes (streaming health and reflection, and
SignerService.Exchange, whose token is checked once, when the stream opens).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from signer.auth.jwt import Claims, JwtVerifier
from signer.auth.mtls import ClientAllowlist
from signer.errors import SignerError, Unauthenticated, abort_with_status, status_for

log = logging.getLogger(__name__)

# Methods that need mTLS but no JWT: probes and tooling must stay simple (see README).
JWT_EXEMPT_METHODS = frozenset(
    {
        "/mpc.v1.SignerService/Ping",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the allowed certificate identity and, when required, the token's claims."""

    identity: str
    claims: Claims | None


_current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("mpc_signer_caller", default=None)


def current_caller() -> Caller | None:
    """The authenticated caller of the RPC being handled (for audit records)."""
    return _current_caller.get()


def _bearer_token(metadata: Any) -> str:
    values = [v for k, v in (metadata or ()) if k == "authorization"]
    if not values:
        raise Unauthenticated("missing authorization metadata (Bearer token)")
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header")
    scheme, _, token = str(values[0]).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()


class Authenticator:
    def __init__(self, allowlist: ClientAllowlist, verifier: JwtVerifier) -> None:
        self._allowlist = allowlist
        self._verifier = verifier

    def authenticate(self, method: str, context: grpc.aio.ServicerContext[Any, Any], metadata: Any = None) -> Caller:
        """`metadata`: the call's invocation metadata when the caller has already read it (each
        `invocation_metadata()` builds a fresh tuple); read from `context` otherwise."""
        auth_context = context.auth_context()
        try:
            identity = self._allowlist.check(auth_context)
        except SignerError:
            log.warning(
                "rejected %s from %s: identities %s not allowed",
                method,
                context.peer(),
                list(self._allowlist.identities(auth_context)),
            )
            raise
        claims = None
        if method not in JWT_EXEMPT_METHODS:
            try:
                if metadata is None:
                    metadata = context.invocation_metadata()
                claims = self._verifier.verify(_bearer_token(metadata))
            except SignerError as exc:
                log.warning("rejected %s from %s (%s): %s", method, context.peer(), identity, exc)
                raise
        return Caller(identity, claims)

    async def admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any], metadata: Any = None) -> bool:
        """Authenticate and record the caller; a refusal aborts the call with its status."""
        try:
            _current_caller.set(self.authenticate(method, context, metadata))
        except SignerError as exc:
            await _reject(context, exc)
            return False
        return True


async def _reject(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    code, message = status_for(exc)
    await context.abort(code, message)


_HANDLER_KINDS: tuple[tuple[str, Any], ...] = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler),
    ("unary_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_unary", grpc.stream_unary_rpc_method_handler),
    ("stream_stream", grpc.stream_stream_rpc_method_handler),
)


def _report(
    on_done: Callable[[str, float], None] | None,
    context: grpc.aio.ServicerContext[Any, Any],
    start: float,
    error: BaseException | None,
) -> None:
    """Tell `on_done` how a call ended: its status code name and how long it took."""
    if on_done is None:
        return
    if isinstance(error, asyncio.CancelledError):
        code = "CANCELLED"
    else:
        status = context.code()
        code = status.name if status is not None else ("UNKNOWN" if error is not None else "OK")
    on_done(code, time.perf_counter() - start)


def _guard_streaming(
    behavior: Any, method: str, authenticator: Authenticator, on_done: Callable[[str, float], None] | None
) -> Any:
    async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        start, error = time.perf_counter(), None
        try:
            if await authenticator.admit(method, context):
                try:
                    async for item in behavior(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await abort_with_status(exc, method, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _report(on_done, context, start, error)

    return streaming


def _guard_plain(
    behavior: Any, method: str, authenticator: Authenticator, on_done: Callable[[str, float], None] | None
) -> Any:
    async def plain(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        start, error = time.perf_counter(), None
        try:
            if not await authenticator.admit(method, context):
                return None
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await abort_with_status(exc, method, context)
                return None
        except BaseException as exc:
            error = exc
            raise
        finally:
            _report(on_done, context, start, error)

    return plain


def guarded(
    handler: Any, method: str, authenticator: Authenticator, on_done: Callable[[str, float], None] | None = None
) -> Any:
    """The same handler with the caller authenticated (and recorded) before its behavior, and
    any exception it raises ended with the status the error table gives it (as unary calls get
    from `signer.api.pipeline`), so no internal message reaches the caller. `on_done(code name,
    seconds)` is told how each call ended, refusals included."""
    found = [(getattr(handler, attr), factory) for attr, factory in _HANDLER_KINDS if getattr(handler, attr)]
    if not found:
        return handler
    behavior, factory = found[0]
    guard = _guard_streaming if inspect.isasyncgenfunction(behavior) else _guard_plain
    return factory(
        guard(behavior, method, authenticator, on_done),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
