"""A small mixed load for the chaos tests, recording what the client was told.

Workers run FROST signatures (on keys drawn from those made so far), FROST and GG20 key
generations, GG20 presignatures and GG20 online signatures with them, all relayed between the
test's local party and one signer node, until told to stop. The record is what the chaos tests
judge: every key the signer reported DONE, every signature with the presignature it used (checked
at once with libsodium / libsecp256k1), and every operation's time span and failure, so that
failures can be told apart by whether they overlapped the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay, RelayError
from signer.client.spec import SessionSpec
from signer.client.verify import verify
from tests.service.conftest import FROST, GG20, sid

PARTIES = ("client", "signer")
PAUSE_AFTER_FAILURE = 0.1  # a worker whose call failed does not spin while the node is down


class SessionFailed(Exception):
    """The signer (or the local party) reported the session FAILED."""


@dataclass(frozen=True)
class Op:
    kind: str
    started: float
    ended: float
    failure: str | None = None  # None: succeeded
    code: grpc.StatusCode | None = None  # the gRPC status of a failed call, if it was one


@dataclass(frozen=True)
class Presignature:
    presignature_id: str
    epoch: int  # how many enclave restarts the load had seen when it was started


@dataclass(frozen=True)
class Signed:
    key: pb.DKGResult
    digest: bytes
    signature: bytes
    presignature_id: str


@dataclass
class Record:
    frost_keys: list[pb.DKGResult] = field(default_factory=list)
    gg20_keys: list[pb.DKGResult] = field(default_factory=list)
    signed: list[Signed] = field(default_factory=list)
    # presignatures handed to a signing attempt, whatever its outcome
    attempted: set[str] = field(default_factory=set)
    # presignatures of an enclave boot that has since been killed, never handed to a signature
    earlier_boot: list[str] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    bad_signatures: int = 0


class ChaosLoad:
    def __init__(self, relay: Relay, frost_key: pb.DKGResult, gg20_key: pb.DKGResult) -> None:
        self.relay = relay
        self.record = Record(frost_keys=[frost_key], gg20_keys=[gg20_key])
        self.gg20_key = gg20_key
        self.pool: list[Presignature] = []
        self.epoch = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _session(self, spec: SessionSpec) -> pb.SessionResult:
        outcomes = await self.relay.run(spec, timeout=60)
        failed = {p: o.failure for p, o in outcomes.items() if not o.ok or o.result is None}
        if failed:
            raise SessionFailed(f"{spec.kind} {spec.session_id}: {failed}")
        result = outcomes["signer"].result
        assert result is not None
        return result

    async def frost_sign(self) -> None:
        key = random.choice(self.record.frost_keys)
        message = secrets.token_bytes(32)
        result = await self._session(
            SessionSpec("sign", sid("chaos-sign"), FROST, PARTIES, key_id=key.key_id, message=message)
        )
        self._check(key, message, result.sign, "")

    async def frost_dkg(self) -> None:
        result = await self._session(SessionSpec("dkg", sid("chaos-dkg"), FROST, PARTIES, threshold=2))
        self.record.frost_keys.append(result.dkg)

    async def gg20_dkg(self) -> None:
        result = await self._session(SessionSpec("dkg", sid("chaos-dkg"), GG20, PARTIES, threshold=2))
        self.record.gg20_keys.append(result.dkg)

    async def gg20_presign(self) -> None:
        epoch = self.epoch
        result = await self._session(
            SessionSpec("presign", sid("chaos-pre"), GG20, PARTIES, key_id=self.gg20_key.key_id)
        )
        self.pool.append(Presignature(result.presign.presignature_id, epoch))
        if len(self.pool) > 8:
            await asyncio.sleep(0.2)  # enough ahead: leave the CPU to the other workers

    async def gg20_sign(self) -> None:
        while self.pool and self.pool[0].epoch < self.epoch:  # made before the enclave restarted
            self.record.earlier_boot.append(self.pool.pop(0).presignature_id)
        if not self.pool:
            await asyncio.sleep(0.05)
            return
        presignature_id = self.pool.pop(0).presignature_id
        self.record.attempted.add(presignature_id)
        message = secrets.token_bytes(48)  # hashed by the enclave: a presignature never signs a bare digest
        digest = hashlib.sha256(message).digest()
        result = await self._session(
            SessionSpec(
                "sign",
                sid("chaos-sign"),
                GG20,
                PARTIES,
                key_id=self.gg20_key.key_id,
                message=message,
                message_hash=pb.MESSAGE_HASH_SHA256,
                presignature_id=presignature_id,
            )
        )
        self._check(self.gg20_key, digest, result.sign, presignature_id)

    def _check(self, key: pb.DKGResult, message: bytes, sign: pb.SignResult, presignature_id: str) -> None:
        if not verify(key.protocol, key.public_key, message, sign.signature):
            self.record.bad_signatures += 1
        if presignature_id and sign.presignature_id != presignature_id:
            self.record.bad_signatures += 1
        self.record.signed.append(Signed(key, message, sign.signature, sign.presignature_id))

    async def _worker(self, kind: str, one: Callable[[], Awaitable[None]]) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                await one()
            except (grpc.aio.AioRpcError, RelayError, SessionFailed) as exc:
                code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
                text = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                self.record.ops.append(Op(kind, t0, time.monotonic(), f"{type(exc).__name__}: {text}", code))
                await asyncio.sleep(PAUSE_AFTER_FAILURE)
                continue
            self.record.ops.append(Op(kind, t0, time.monotonic()))

    def start(self) -> None:
        mix = [("frost_sign", self.frost_sign)] * 3 + [
            ("frost_dkg", self.frost_dkg),
            ("gg20_dkg", self.gg20_dkg),
            ("gg20_presign", self.gg20_presign),
            ("gg20_sign", self.gg20_sign),
        ]
        self._tasks = [asyncio.ensure_future(self._worker(kind, one)) for kind, one in mix]

    async def stop(self, timeout: float = 90.0) -> None:
        """Let every operation in flight finish (bounded), then stop the workers."""
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not pending, f"{len(pending)} operations did not finish within {timeout}s of the load's end"

    def first_success(self, kind: str, since: float) -> float | None:
        """When the first operation of `kind` started at or after `since` succeeded (its end)."""
        ends = [op.ended for op in self.record.ops if op.kind == kind and op.failure is None and op.started >= since]
        return min(ends, default=None)
