"""GG20 key generations waiting for Paillier pre-parameters, on the event loop.

A key generation needs one safe-prime pair from the pool (enclave/crypto/primes.py). When none is
ready it waits here, as a future on the event loop, never in one of the engine's worker threads:
those run protocol math for every session, and a start parked in them would stall FROST and
GG20 work alike (the head-of-line blocking of issue 16). Waiters are served first come, first
served, as the pool's filler (or an import) adds pairs.

A start that the pool cannot serve in time is refused at once with RESOURCE_EXHAUSTED rather than
left to wait for nothing: "in time" is the pool's own estimate (`PreParamPool.expected_wait`, from
the searches so far) for this waiter and every one ahead of it, against the wait it is allowed
(`EngineConfig.preparams_wait_seconds`, bounded by the session deadline). Before any search has
finished there is no estimate and the start waits at most that long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from enclave.crypto.primes import PreParamPool, SafePrimePair
from enclave.errors import RequestRejected
from mpc.v1 import enclave_pb2 as pb


class PreparamsWaiter:
    def __init__(self, pool: PreParamPool) -> None:
        self._pool = pool
        self._waiters: deque[asyncio.Future[SafePrimePair]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._refused_at_once = 0
        self._refused_after_wait = 0
        self._waited = 0
        pool.add_listener(self._pair_ready)

    def gauges(self) -> dict[str, int]:
        return {
            "preparams_waiting": sum(1 for f in self._waiters if not f.done()),
            "preparams_served_after_wait_total": self._waited,
            "preparams_refused_at_once_total": self._refused_at_once,
            "preparams_refused_after_wait_total": self._refused_after_wait,
        }

    async def take(self, timeout: float) -> SafePrimePair:
        """A pair, within `timeout` seconds or refused (RequestRejected RESOURCE_EXHAUSTED)."""
        self._loop = asyncio.get_running_loop()
        if not self._waiters:
            pair = self._pool.try_take()
            if pair is not None:
                return pair
        ahead = sum(1 for f in self._waiters if not f.done())
        eta = self._pool.expected_wait(ahead + 1 - self._pool.ready())
        if eta is not None and eta > timeout:
            self._refused_at_once += 1
            when = "never (the pool is not filling)" if eta == float("inf") else f"in about {eta:.1f} s"
            raise RequestRejected(
                pb.ERROR_CODE_RESOURCE_EXHAUSTED,
                f"no Paillier pre-parameters ready: with {ahead} key generation(s) waiting ahead, the pool"
                f" can serve this one {when}, past the {timeout:.1f} s it may wait; retry later",
            )
        fut: asyncio.Future[SafePrimePair] = self._loop.create_future()
        self._waiters.append(fut)
        self._serve()
        try:
            async with asyncio.timeout(timeout):
                pair = await fut
        except TimeoutError:
            if fut.done() and not fut.cancelled():  # served as the timer fired
                pair = fut.result()
            else:
                self._refused_after_wait += 1
                raise RequestRejected(
                    pb.ERROR_CODE_RESOURCE_EXHAUSTED,
                    f"no Paillier pre-parameters became ready within {timeout:.1f} s; retry later",
                ) from None
        except asyncio.CancelledError:
            # The request went away: a pair it was just handed goes back for the next one.
            if fut.done() and not fut.cancelled():
                self._pool.add(fut.result())
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)
        self._waited += 1
        return pair

    def close(self) -> None:
        self._closed = True
        for fut in self._waiters:
            fut.cancel()
        self._waiters.clear()

    def _pair_ready(self) -> None:
        """From the pool's thread (or an import's): serve waiters on the loop."""
        loop = self._loop
        if loop is None or self._closed or not self._waiters:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._serve)

    def _serve(self) -> None:
        while self._waiters:
            fut = self._waiters[0]
            if fut.done():  # timed out or cancelled meanwhile
                self._waiters.popleft()
                continue
            pair = self._pool.try_take()
            if pair is None:
                return
            self._waiters.popleft()
            fut.set_result(pair)
