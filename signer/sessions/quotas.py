"""Per-caller fairness inside the node-wide session cap (`sessions.max_concurrent`).

A caller is the pair (client identity from the mTLS certificate, subject of the service JWT). Two
bounds apply to it, and one to its client as a whole:

- running sessions per caller (`sessions.per_caller_max`) and per client identity
  (`sessions.per_client_max`, 0: only the node-wide cap), counted from a start until the session
  finishes (DONE, FAILED, deadline) or its start is refused;
- expensive starts per caller (`sessions.gg20_starts_per_second`, bursts of
  `sessions.gg20_starts_burst`): a token bucket charged by every GG20 key generation and key
  refresh (Paillier pre-parameters and proofs, 0.6-2.3 s of enclave CPU), every presigning session, and every GG20
  signing that finds no stored presignature and so presigns in the session.

The subject is chosen by whoever mints the tokens (the relay, with the JWT key), so per-caller
bounds share a node fairly among the tenants of an honest relay; what bounds a relay as a whole,
honest or not, is its certificate's per-client bound and the node-wide cap. Refusals are
RESOURCE_EXHAUSTED naming the bound's configuration key, and each one is counted (metrics).

State: counts exist only for callers with running sessions; a bucket only while it is not full
(`prune` drops full ones, and a full bucket is the same as none), so a caller that stops costs
nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mpc.v1 import enclave_pb2 as epb
from signer.errors import ResourceExhausted

_K = TypeVar("_K")

MAX_SHOWN = 64  # characters of a subject or client identity quoted back in a refusal


@dataclass(frozen=True, slots=True)
class CallerId:
    """Who a session counts against."""

    client: str  # the allowed identity of the client certificate
    subject: str  # the service JWT's `sub`

    def describe(self) -> str:
        return f"caller {_shown(self.subject)} of client {_shown(self.client)}"


def _shown(name: str) -> str:
    return repr(name[:MAX_SHOWN] + ("..." if len(name) > MAX_SHOWN else ""))


def presigns(start: epb.SessionStart) -> bool:
    """Whether a start runs the expensive GG20 work: key generation, refresh or reshare, or presigning (a presigning
    session, or a signing session without a presignature, known once its start was prepared)."""
    if start.protocol != epb.PROTOCOL_GG20_SECP256K1:
        return False
    if start.kind == epb.SESSION_KIND_SIGN:
        return not start.presignature_id
    # A refresh takes a fresh Paillier key from the pre-parameter pool, as a key generation does;
    # so does a reshare's receiver, and every party of one checks the receivers' proofs.
    return start.kind in (
        epb.SESSION_KIND_DKG,
        epb.SESSION_KIND_REFRESH,
        epb.SESSION_KIND_RESHARE,
        epb.SESSION_KIND_PRESIGN,
    )


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class CallerQuotas:
    def __init__(
        self,
        *,
        per_caller_max: int,
        per_client_max: int = 0,
        gg20_starts_per_second: float = math.inf,
        gg20_starts_burst: int = 1,
        refused: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_caller = per_caller_max
        self._per_client = per_client_max
        self._rate = gg20_starts_per_second
        self._burst = float(gg20_starts_burst)
        self._refused = refused or (lambda _quota: None)
        self._clock = clock
        self._by_caller: dict[CallerId, int] = {}
        self._by_client: dict[str, int] = {}
        self._buckets: dict[CallerId, _Bucket] = {}

    def running(self, caller: CallerId) -> int:
        return self._by_caller.get(caller, 0)

    def acquire(self, caller: CallerId, presigning: bool = False) -> None:
        """Count a new running session of `caller`, charging its bucket if the start presigns;
        raises ResourceExhausted (and counts nothing) when a bound is reached."""
        running = self._by_caller.get(caller, 0)
        if running >= self._per_caller:
            self._refuse(
                "sessions.per_caller_max",
                f"{caller.describe()} has {running} running sessions (sessions.per_caller_max); "
                "retry when one finishes",
            )
        client_running = self._by_client.get(caller.client, 0)
        if self._per_client and client_running >= self._per_client:
            self._refuse(
                "sessions.per_client_max",
                f"client {_shown(caller.client)} has {client_running} running sessions (sessions.per_client_max); "
                "retry when one finishes",
            )
        if presigning:
            self.charge(caller)
        self._by_caller[caller] = running + 1
        self._by_client[caller.client] = client_running + 1

    def release(self, caller: CallerId) -> None:
        """One running session of `caller` ended (or its start was refused)."""
        _decrement(self._by_caller, caller)
        _decrement(self._by_client, caller.client)

    def charge(self, caller: CallerId) -> None:
        """Take one token of `caller`'s bucket of expensive starts, or refuse."""
        if math.isinf(self._rate):
            return
        now = self._clock()
        bucket = self._buckets.get(caller)
        tokens = self._burst if bucket is None else min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self._rate
            self._refuse(
                "sessions.gg20_starts_per_second",
                f"{caller.describe()} starts GG20 key generations and presignings faster than "
                f"sessions.gg20_starts_per_second ({self._rate:g}/s, bursts of {self._burst:g}); "
                f"retry in {wait:.1f} s",
            )
        self._buckets[caller] = _Bucket(tokens - 1.0, now)

    def prune(self) -> int:
        """Forget buckets that have refilled (a full bucket is the same as none); returns how many."""
        now = self._clock()
        full = [c for c, b in self._buckets.items() if b.tokens + (now - b.at) * self._rate >= self._burst]
        for caller in full:
            del self._buckets[caller]
        return len(full)

    def _refuse(self, quota: str, message: str) -> None:
        self._refused(quota)
        raise ResourceExhausted(message)


def _decrement(table: dict[_K, int], key: _K) -> None:
    left = table.get(key, 0) - 1
    if left > 0:
        table[key] = left
    else:
        table.pop(key, None)
