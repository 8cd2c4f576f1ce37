"""Prometheus metrics, served on their own port, on a registry owned by the server (no globals).

Label values are always from small fixed sets (gRPC method names of our own service, status code
names, protocol and state enums, round numbers): never a key id, party id, digest or caller name,
so cardinality is bounded and nothing secret or identifying reaches a scrape.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from mpc.v1 import enclave_pb2 as epb

log = logging.getLogger(__name__)


class InfoSource(Protocol):
    """What the pool gauges read from the enclave (the link's client)."""

    async def info(self) -> epb.InfoResponse: ...


_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_KNOWN_SERVICES = ("mpc.v1.SignerService", "grpc.health.v1.Health")
_GAUGE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_MAX_ENCLAVE_GAUGES = 64
QUOTAS = (
    "sessions.max_concurrent",
    "sessions.per_client_max",
    "sessions.per_caller_max",
    "sessions.gg20_starts_per_second",
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_total = Counter(
            "mpc_signer_rpc", "RPCs handled, by method and final status", ["method", "code"], registry=r
        )
        self.rpc_latency = Histogram(
            "mpc_signer_rpc_latency_seconds",
            "RPC latency by method and final status",
            ["method", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sessions = Counter(
            "mpc_signer_sessions",
            "Protocol sessions that reached a final state (done or failed)",
            ["protocol", "kind", "state"],
            registry=r,
        )
        self.sessions_active = Gauge(
            "mpc_signer_sessions_active", "Protocol sessions currently running", ["protocol", "kind"], registry=r
        )
        self.round_duration = Histogram(
            "mpc_signer_protocol_round_seconds",
            "Time from a round's start to its completion",
            ["protocol", "kind", "round"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.enclave_rtt = Histogram(
            "mpc_signer_enclave_roundtrip_seconds",
            "Host to enclave request round-trip time",
            ["request"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.enclave_up = Gauge("mpc_signer_enclave_up", "1 while the enclave answers and is not sealed", registry=r)
        self.presignatures_available = Gauge(
            "mpc_signer_presignatures_available", "Unused presignatures in the store (all keys)", registry=r
        )
        self.single_use_burned = Counter(
            "mpc_signer_single_use_burned",
            "Single-use items (presignatures, pre-parameter sets) dropped because they were sealed in an"
            " earlier enclave boot (a restart burns them; the pools refill)",
            ["item"],
            registry=r,
        )
        for item in ("presignature", "preparams"):
            self.single_use_burned.labels(item)
        self.quota_refusals = Counter(
            "mpc_signer_quota_refusals",
            "Session starts refused by a bound (RESOURCE_EXHAUSTED), by its config key",
            ["quota"],
            registry=r,
        )
        for quota in QUOTAS:
            self.quota_refusals.labels(quota)
        self.finished_retained = Gauge(
            "mpc_signer_finished_sessions_retained", "Finished sessions kept queryable", registry=r
        )
        self.finished_retained_bytes = Gauge(
            "mpc_signer_finished_sessions_retained_bytes",
            "Bytes of the finished sessions kept queryable",
            registry=r,
        )
        self.finished_evicted = Counter(
            "mpc_signer_finished_sessions_evicted",
            "Finished sessions forgotten, by cause (age, count, bytes)",
            ["cause"],
            registry=r,
        )
        for cause in ("age", "count", "bytes"):
            self.finished_evicted.labels(cause)
        self.keys_retired = Counter(
            "mpc_signer_keys_retired", "Keys retired on this node (RetireKey that destroyed a share)", registry=r
        )
        self.keys = Gauge("mpc_signer_keys", "Keys in the store, by state", ["state"], registry=r)
        for state in ("active", "retired"):
            self.keys.labels(state)
        # Registered when the enclave first reports it, so a scrape never shows a pool that is not there.
        self.preparams_pool: Gauge | None = None
        # InfoResponse.gauges, as mpc_signer_enclave_<name>; names are the enclave's fixed words.
        self.enclave_gauges: dict[str, Gauge] = {}
        # (method label, code) -> its counter and histogram series, so a finished RPC skips the
        # client library's label validation and locked lookup. Bounded like the labels themselves.
        self._rpc_series: dict[tuple[str, str], tuple[Any, Any]] = {}

    def serve(self, host: str, port: int) -> Any:
        """Start the scrape endpoint on a background thread; returns the server (has shutdown())."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def rpc_done(self, label: str, code: str, seconds: float) -> None:
        """Count one finished RPC (refusals included) and its latency."""
        series = self._rpc_series.get((label, code))
        if series is None:
            series = self._rpc_series[(label, code)] = (
                self.rpc_total.labels(label, code),
                self.rpc_latency.labels(label, code),
            )
        series[0].inc()
        series[1].observe(seconds)

    def quota_refused(self, quota: str) -> None:
        """Count one start refused by a bound (its configuration key, one of QUOTAS)."""
        self.quota_refusals.labels(quota if quota in QUOTAS else "other").inc()

    def evicted(self, cause: str, count: int) -> None:
        """Count finished sessions forgotten for `cause` ("age", "count" or "bytes")."""
        self.finished_evicted.labels(cause).inc(count)

    def burned(self, item: str, count: int = 1) -> None:
        """Count single-use items of one kind ("presignature" or "preparams") lost to a restart."""
        if count > 0:
            self.single_use_burned.labels(item).inc(count)

    def key_retired(self) -> None:
        self.keys_retired.inc()

    def session_finished(self, protocol: int, kind: int, done: bool) -> None:
        """Count a session as the host's registry ends it: its final word, including failures the
        enclave never saw (the result could not be stored, the deadline passed)."""
        self.sessions.labels(
            enum_label(epb.Protocol, protocol, "PROTOCOL_"),
            enum_label(epb.SessionKind, kind, "SESSION_KIND_"),
            "done" if done else "failed",
        ).inc()

    async def refresh_pools(self, store: Any, enclave: InfoSource | None = None) -> None:
        """Set the presignature pool gauge from the store (sum over every key) and the
        pre-parameter gauge from the enclave's Info, when it reports one."""
        total = 0
        states = {"active": 0, "retired": 0}
        for key in await store.list_keys():
            states[key.state] = states.get(key.state, 0) + 1
            if key.state == "active":  # a retired key has none
                total += await store.count_available(key.key_id)
        self.presignatures_available.set(total)
        for state, count in states.items():
            self.keys.labels(state).set(count)
        if enclave is not None:
            info = await enclave.info()
            if info.HasField("preparams_ready"):
                if self.preparams_pool is None:
                    self.preparams_pool = Gauge(
                        "mpc_signer_preparams_pool_size",
                        "Paillier pre-parameter sets ready in the enclave pool",
                        registry=self.registry,
                    )
                self.preparams_pool.set(info.preparams_ready)
            for name, value in info.gauges.items():
                gauge = self.enclave_gauges.get(name)
                if gauge is None:
                    if not _GAUGE_NAME.fullmatch(name) or len(self.enclave_gauges) >= _MAX_ENCLAVE_GAUGES:
                        continue  # bounded cardinality whatever the other side sends
                    gauge = self.enclave_gauges[name] = Gauge(
                        f"mpc_signer_enclave_{name}",
                        "Enclave resource count or bound (docs/limits.md)",
                        registry=self.registry,
                    )
                gauge.set(value)

    async def refresh_pools_forever(self, store: Any, enclave: InfoSource | None, interval: float) -> None:
        while True:
            try:
                await self.refresh_pools(store, enclave)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store or enclave briefly unavailable: the gauges keep their last values
                log.warning("metrics: cannot read pool sizes: %s", type(exc).__name__)
            await asyncio.sleep(interval)


def enum_label(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return "unknown"


def method_label(full_method: str) -> str:
    # "/mpc.v1.SignerService/Ping" -> "SignerService/Ping"; anything else collapses to "other"
    # so a client probing random paths cannot grow the label set.
    service, _, method = full_method.lstrip("/").partition("/")
    if service in _KNOWN_SERVICES and method.isidentifier():
        return f"{service.rsplit('.', 1)[-1]}/{method}"
    return "other"
