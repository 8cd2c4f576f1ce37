"""The enclave client with metrics: every request timed, every session it carries followed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpc.v1 import enclave_pb2 as epb
from signer.link.client import EnclaveClient
from signer.metrics import Metrics, enum_label


def _round_label(value: int) -> str:
    # Protocols here have fewer than ten rounds; anything else is a peer's junk, not a label.
    return str(value) if 0 <= value < 16 else "other"


@dataclass
class _Tracked:
    protocol: str
    kind: str
    round: str
    since: float


class MeteredEnclaveClient(EnclaveClient):
    """The enclave client, timing every request and following the sessions it carries.

    A session is active from its SessionStart to the update that ends it (DONE or FAILED, or an
    enclave error on one of its requests); a round's duration is the time from the update whose
    outgoing messages open it to the next update of that session. Final states are counted by
    the host's session registry (`Metrics.session_finished`). Labels are enums only.
    """

    # Abandoned sessions (caller vanished) are dropped from tracking beyond this many.
    _MAX_TRACKED = 10_000

    def __init__(self, *args: Any, metrics: Metrics, clock: Callable[[], float] = time.perf_counter, **kw: Any):
        super().__init__(*args, **kw)
        self._m = metrics
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}

    async def call(self, request: epb.Request, *, timeout: float | None = None) -> epb.Response:
        kind = request.WhichOneof("body") or "unknown"
        start = self._clock()
        try:
            response = await super().call(request, timeout=timeout)
        except BaseException:
            self._m.enclave_rtt.labels(kind).observe(self._clock() - start)
            if kind == "session_deliver":
                self._finish(request.session_deliver.session_id)
            raise
        now = self._clock()
        self._m.enclave_rtt.labels(kind).observe(now - start)
        if kind in ("session_start", "session_deliver", "session_abort") and response.HasField("session_update"):
            tracked = self._track(request.session_start) if kind == "session_start" else None
            self._observe(response.session_update, now, tracked)
        return response

    def _track(self, start: epb.SessionStart) -> _Tracked:
        return _Tracked(
            protocol=enum_label(epb.Protocol, start.protocol, "PROTOCOL_"),
            kind=enum_label(epb.SessionKind, start.kind, "SESSION_KIND_"),
            round="0",
            since=self._clock(),
        )

    def _observe(self, update: epb.SessionUpdate, now: float, new: _Tracked | None) -> None:
        sid = update.session_id
        tracked = self._tracked.get(sid)
        if new is not None and tracked is None:
            if len(self._tracked) >= self._MAX_TRACKED:
                self._forget_oldest()
            tracked = self._tracked[sid] = new
            self._m.sessions_active.labels(new.protocol, new.kind).inc()
        if tracked is None:
            return
        if new is None:
            self._m.round_duration.labels(tracked.protocol, tracked.kind, tracked.round).observe(now - tracked.since)
        if update.outgoing:
            tracked.round = _round_label(update.outgoing[0].round)
        tracked.since = now
        if update.state in (epb.SESSION_STATE_DONE, epb.SESSION_STATE_FAILED):
            self._finish(sid)

    def _finish(self, sid: str) -> None:
        tracked = self._tracked.pop(sid, None)
        if tracked is not None:
            self._m.sessions_active.labels(tracked.protocol, tracked.kind).dec()

    def _forget_oldest(self) -> None:
        sid = min(self._tracked, key=lambda k: self._tracked[k].since)
        self._finish(sid)
