"""The engine-wide budget for peers' messages held unexamined until their round comes.

Every session reserves, when it starts, the most such bytes its honest peers can make it hold
(`MessageLimits.queue_bound`, enclave/engine/limits.py); a start whose reservation would take
the reserved total past `limit` is refused (RESOURCE_EXHAUSTED), so the sessions already running
never run short. Bytes a session holds beyond its reservation can only be messages of an abort
branch that arrived early (GG20's round-4 reveal or identification); they are lent from what no
reservation covers, and when nothing is left that session fails naming nobody.

Sessions run in worker threads, so the counts are kept under a lock. `gauges()` reports them
(InfoResponse.gauges, the host's `mpc_signer_enclave_*` metrics).
"""

from __future__ import annotations

import threading


class HeldBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the held-message limit must be at least 1 byte")
        self.limit = limit
        self._lock = threading.Lock()
        self._reserved = 0
        self._lent = 0
        self._held = 0
        self._peak = 0
        self._refused = 0
        self._short = 0
        self._oversize = 0
        self._too_early = 0

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self._reserved + self._lent + size > self.limit:
                self._refused += 1
                return False
            self._reserved += size
            return True

    def release(self, reserved: int, lent: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self._lent -= lent

    def lend(self, size: int) -> bool:
        with self._lock:
            if self._reserved + self._lent + size > self.limit:
                self._short += 1
                return False
            self._lent += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._lent -= size

    def note_held(self, delta: int) -> None:
        with self._lock:
            self._held += delta
            self._peak = max(self._peak, self._held)

    def note_refused(self, *, oversize: bool) -> None:
        """A peer's message aborted its session: over its round's bound, or too far ahead."""
        with self._lock:
            if oversize:
                self._oversize += 1
            else:
                self._too_early += 1

    def gauges(self) -> dict[str, int]:
        with self._lock:
            return {
                "held_message_bytes": self._held,
                "held_message_bytes_peak": self._peak,
                "held_message_bytes_reserved": self._reserved + self._lent,
                "held_message_bytes_limit": self.limit,
                "held_message_starts_refused_total": self._refused,
                "held_message_sessions_short_total": self._short,
                "messages_over_bound_total": self._oversize,
                "messages_too_early_total": self._too_early,
            }
