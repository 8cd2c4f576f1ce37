"""Prometheus metrics, served on their own port, on a registry owned by the server (no globals).

Label values are always from small fixed sets (gRPC method names of our own service, status code
names, protocol and state enums, round numbers): never a key id, party id, digest or caller name,
so cardinality is bounded and nothing secret or identifying reaches a scrape.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_KNOWN_SERVICES = ("mpc.v1.SignerService", "grpc.health.v1.Health")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_total = Counter(
            "mpc_signer_rpc", "RPCs handled, by method and final status", ["method", "code"], registry=r
        )
        self.rpc_latency = Histogram(
            "mpc_signer_rpc_latency_seconds", "RPC latency by method", ["method"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.sessions = Counter(
            "mpc_signer_sessions", "Protocol sessions that reached a final state",
            ["protocol", "kind", "state"], registry=r,
        )
        self.sessions_active = Gauge(
            "mpc_signer_sessions_active", "Protocol sessions currently running", ["protocol", "kind"], registry=r
        )
        self.round_duration = Histogram(
            "mpc_signer_protocol_round_seconds", "Time from a round's start to its completion",
            ["protocol", "kind", "round"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.enclave_rtt = Histogram(
            "mpc_signer_enclave_roundtrip_seconds", "Host to enclave request round-trip time", ["request"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.enclave_up = Gauge("mpc_signer_enclave_up", "1 while the enclave answers", registry=r)
        self.presignatures_available = Gauge(
            "mpc_signer_presignatures_available", "Unused presignatures in the store (all keys)", registry=r
        )
        self.preparams_pool = Gauge(
            "mpc_signer_preparams_pool_size", "Paillier pre-parameter sets ready in the enclave pool", registry=r
        )

    def serve(self, host: str, port: int) -> Any:
        """Start the scrape endpoint on a background thread; returns the server (has shutdown())."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _MetricsInterceptor(self)


def _method_label(full_method: str) -> str:
    # "/mpc.v1.SignerService/Ping" -> "SignerService/Ping"; anything else collapses to "other"
    # so a client probing random paths cannot grow the label set.
    service, _, method = full_method.lstrip("/").partition("/")
    if service in _KNOWN_SERVICES and method.isidentifier():
        return f"{service.rsplit('.', 1)[-1]}/{method}"
    return "other"


class _MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        label = _method_label(handler_call_details.method)
        inner = handler.unary_unary
        m = self._m

        async def wrapped(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                response = await inner(request, context)
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
                m.rpc_total.labels(label, code).inc()
                m.rpc_latency.labels(label).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
