"""The host's view of the enclave's health: a watcher that pings it and sets gRPC health."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2
from signer.link.client import EnclaveClient, EnclaveTimeout, TransportError
from signer.tasks import cancel_quietly

log = logging.getLogger(__name__)

SERVICE_NAME = signer_pb2.DESCRIPTOR.services_by_name["SignerService"].full_name
HEALTH_SERVICES = ("", SERVICE_NAME)


@dataclass
class EnclaveStatus:
    """Last enclave info seen by the health watcher (for Ping when the enclave is down)."""

    up: bool = False  # answers and is not sealed
    sealed: bool = False
    attestation_mode: str = ""
    version: str = ""


class HealthWatcher:
    """SERVING only while the enclave answers: pings it every `interval` seconds.

    A ping that is late (no answer within the interval) counts as a miss, and only `misses`
    consecutive ones turn the node NOT_SERVING: one slow answer under load is not an outage, and
    flapping health makes Consul and load balancers move traffic for nothing. An enclave that is
    not there at all (connection refused or broken) is down at once: that is no guess. A sealed
    enclave (t-of-n unseal, waiting for the operators' shares) answers but is not up either."""

    def __init__(
        self,
        enclave: EnclaveClient,
        health: health_aio.HealthServicer,
        status: EnclaveStatus,
        interval: float,
        misses: int = 1,
    ) -> None:
        self._enclave = enclave
        self._health = health
        self._status = status
        self._interval = interval
        self._misses_allowed = misses
        self._missed = 0
        self._task: asyncio.Task[None] | None = None

    async def _set(self, up: bool) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in HEALTH_SERVICES:
            await self._health.set(name, serving)

    async def check_once(self) -> bool:
        try:
            if self._status.up:
                pong = await self._enclave.call(epb.Request(ping=epb.PingRequest()), timeout=self._interval)
                sealed = pong.ping.sealed
            else:
                info = await self._enclave.info(timeout=self._interval)
                self._status.attestation_mode = info.attestation_mode
                self._status.version = info.version
                sealed = info.state == epb.ENCLAVE_STATE_SEALED
            if sealed and not self._status.sealed:
                log.warning("the enclave is sealed: it waits for the operators' shares (mpc-signer unseal)")
            self._status.sealed = sealed
            up = not sealed
            self._missed = 0
        except EnclaveTimeout as exc:
            self._missed += 1
            up = self._status.up and self._missed < self._misses_allowed
            if self._status.up:
                log.warning("enclave ping %d of %d missed: %s", self._missed, self._misses_allowed, exc)
        except TransportError as exc:
            up = False
            if self._status.up:
                log.warning("enclave stopped answering: %s", exc)
        if up and not self._status.up:
            log.info("enclave answers (mode %s, version %s)", self._status.attestation_mode, self._status.version)
        self._status.up = up
        await self._set(up)
        return up

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_quietly(self._task)
