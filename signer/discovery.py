"""Consul registration: a service with a gRPC health check over mTLS and a TTL check on the enclave.

Consul is an aid to routing, never a dependency of signing: every call to the agent runs in a
worker thread with a short timeout, failures are logged and retried with capped exponential
backoff, and nothing here can block or fail an RPC.

Checks are passed with the HTTP API's own key names (``CheckID``, ``GRPCUseTLS`` ...): Consul
1.8 rejects the snake_case keys that py-consul's ``Check`` helpers produce.

Two checks are registered:

- ``<service_id>:grpc`` — Consul itself calls ``grpc.health.v1.Health/Check`` on the signer
  over TLS. The agent presents its own client certificate (agent ``cert_file``/``key_file``),
  so that identity must be on the signer's client allowlist.
- ``<service_id>:enclave`` — a TTL check that this process passes only while the enclave
  answers, and fails (with a note) as soon as it does not. If the process dies, the TTL
  expires and Consul marks the instance critical on its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import consul
from consul.exceptions import ACLPermissionDenied, BadRequest

from signer.tasks import cancel_quietly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsulSettings:
    """Where the agent is and how this instance presents itself."""

    address: str  # http(s)://host:port of the local Consul agent
    service_id: str
    advertise_host: str
    advertise_port: int
    service_name: str = "mpc-signer"
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    ttl_seconds: float = 15.0
    grpc_interval_seconds: float = 10.0
    grpc_tls: bool = True
    grpc_tls_server_name: str = ""
    deregister_critical_after: str = "10m"
    request_timeout_seconds: float = 3.0
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0

    @property
    def grpc_check_id(self) -> str:
        return f"{self.service_id}:grpc"

    @property
    def ttl_check_id(self) -> str:
        return f"{self.service_id}:enclave"


def _duration(seconds: float) -> str:
    # Consul parses Go durations; milliseconds keep sub-second test settings exact.
    return f"{max(1, round(seconds * 1000))}ms"


def build_checks(s: ConsulSettings) -> list[dict[str, Any]]:
    """The two check definitions, with Consul's HTTP API key names."""
    grpc_check: dict[str, Any] = {
        "CheckID": s.grpc_check_id,
        "Name": "signer gRPC health (mTLS)",
        "GRPC": f"{s.advertise_host}:{s.advertise_port}",
        "GRPCUseTLS": s.grpc_tls,
        "Interval": _duration(s.grpc_interval_seconds),
        "Timeout": _duration(min(s.grpc_interval_seconds, 5.0)),
        "DeregisterCriticalServiceAfter": s.deregister_critical_after,
    }
    if s.grpc_tls_server_name:  # Consul >= 1.10 only: 1.8 refuses a definition that has it
        grpc_check["TLSServerName"] = s.grpc_tls_server_name
    ttl_check: dict[str, Any] = {
        "CheckID": s.ttl_check_id,
        "Name": "enclave answers",
        "TTL": _duration(s.ttl_seconds),
        "Notes": "passed by the signer host only while its enclave answers",
        "DeregisterCriticalServiceAfter": s.deregister_critical_after,
    }
    return [grpc_check, ttl_check]


def _client(s: ConsulSettings) -> Any:
    parts = urlsplit(s.address if "//" in s.address else f"//{s.address}")
    return consul.Consul(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8500,
        scheme=parts.scheme or "http",
        token=s.token,
        connections_timeout=s.request_timeout_seconds,
    )


class ConsulRegistrar:
    """Keeps this instance registered while it runs; deregisters on `stop`."""

    def __init__(
        self,
        settings: ConsulSettings,
        enclave_alive: Callable[[], Awaitable[bool]],
        *,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._s = settings
        self._enclave_alive = enclave_alive
        self._jitter = jitter
        self._client = _client(settings)
        self._task: asyncio.Task[None] | None = None
        self._registered = False
        self._last_alive: bool | None = None
        self.attempts = 0  # registration attempts, for tests and logs

    @property
    def registered(self) -> bool:
        return self._registered

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="consul-registrar")

    async def stop(self) -> None:
        """Stop the loop, then deregister (best effort, bounded by the request timeout)."""
        if self._task is not None:
            await cancel_quietly(self._task)
            self._task = None
        try:
            await asyncio.to_thread(self._client.agent.service.deregister, self._s.service_id)
            log.info("consul: deregistered service %s", self._s.service_id)
        except Exception as exc:
            log.warning("consul: deregistration of %s failed: %s", self._s.service_id, type(exc).__name__)
        self._registered = False

    async def _register(self) -> None:
        s = self._s
        checks = build_checks(s)
        await asyncio.to_thread(
            self._client.agent.service.register,
            s.service_name,
            service_id=s.service_id,
            address=s.advertise_host,
            port=s.advertise_port,
            tags=list(s.tags),
            meta=dict(s.meta),
            check=checks[0],
            extra_checks=checks[1:],
            replace_existing_checks=True,
        )

    async def _report(self, alive: bool) -> None:
        agent_check = self._client.agent.check
        if alive:
            await asyncio.to_thread(agent_check.ttl_pass, self._s.ttl_check_id, "enclave answers")
        else:
            await asyncio.to_thread(agent_check.ttl_fail, self._s.ttl_check_id, "enclave does not answer")
        if alive != self._last_alive:
            log.info("consul: enclave check now %s", "passing" if alive else "critical")
        self._last_alive = alive

    async def _run(self) -> None:
        backoff = self._s.retry_initial_seconds
        # Report well inside the TTL so a slow agent round trip never lets it lapse.
        period = max(self._s.ttl_seconds / 3.0, 0.05)
        while True:
            try:
                if not self._registered:
                    self.attempts += 1
                    await self._register()
                    self._registered = True
                    self._last_alive = None
                    log.info(
                        "consul: registered %s as %s at %s:%d",
                        self._s.service_name,
                        self._s.service_id,
                        self._s.advertise_host,
                        self._s.advertise_port,
                    )
                    backoff = self._s.retry_initial_seconds
                try:
                    alive = await self._enclave_alive()
                except Exception:
                    alive = False
                await self._report(alive)
                await asyncio.sleep(period)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # An agent restart forgets the service: the TTL update then fails and we register again.
                self._registered = False
                delay = backoff * (0.5 + self._jitter())
                if isinstance(exc, (BadRequest, ACLPermissionDenied)):
                    # The agent answered and said no (a definition this Consul version rejects, an
                    # ACL token without the right policy): an operator has to act. Its reason is
                    # Consul's own text, which carries no token.
                    log.error(
                        "consul: agent at %s refused the registration (%s: %s); retrying in %.1fs",
                        self._s.address,
                        type(exc).__name__,
                        str(exc)[:300],
                        delay,
                    )
                else:
                    log.warning(
                        "consul: agent at %s unavailable (%s); retrying in %.1fs",
                        self._s.address,
                        type(exc).__name__,
                        delay,
                    )
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._s.retry_max_seconds)
