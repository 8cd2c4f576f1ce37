"""Safe primes for Paillier–Blum moduli, and a pool of pre-parameters filled in the background.

A safe prime is p = 2p' + 1 with p' prime; p ≡ 3 (mod 4) follows from p' odd, so a product of
two safe primes is a Paillier–Blum modulus (what Πmod proves) and its group of quadratic
residues has no small-order subgroup (what the ring-Pedersen parameters need).

Generation: a random odd p' of `bits - 1` bits is the start of a window of candidates
p' + 2k; a sieve strikes every k for which p' or 2p' + 1 has a prime factor below
`_SIEVE_LIMIT`. Survivors get a base-2 Fermat test on p', then on p, and a finalist gets BPSW
plus Miller–Rabin rounds on both (gmpy2 does the arithmetic).

The pool (`PreParamPool`) keeps `size` pairs of safe primes ready so that key generation
never waits on a search inside a request. Where the primes come from is injected
(`PrimeSource`): production uses `generate_safe_prime`; tests load fixture primes
(tests/vectors/safe_primes.json, regenerated with `make test-primes`). Every pair, whatever
its source, still goes through the full proofs in key generation: a fixture only saves the
search.

At rest. A pair the pool produced is exported once, sealed by the engine under its per-boot
sealer (enclave.sealing.boot_sealer, purpose "preparams", a random 16-byte item id, plaintext a
record with this boot's sequence number for it and `encode_pair`; enclave/engine/singleuse.py),
and the host stores the blob; the enclave keeps using its in-memory copy. What is protected: the
primes are sealed (AEAD, bound to purpose and id), so the host sees only ciphertext; an altered
blob or one sealed under another key is refused. Single use is the enclave's own rule: a pair
taken for key generation leaves the pool and its number is marked used (`on_consumed`), an
imported blob's number is marked used as it is imported, so no blob adds a pair twice; after a
restart the per-boot key is gone and every stored blob is refused as "sealed in an earlier
enclave boot". The host drops those (the pool refills with a fresh prime search; README gives
the cost) and deletes the stored copies of pairs the pool reports used (`consumed_exports`).
Python cannot wipe memory: the primes stay in enclave memory until garbage-collected.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.rng import Rng
from enclave.errors import InvalidParameters, LocalError

_SIEVE_LIMIT = 1 << 16
_WINDOW = 1 << 14
_MR_ROUNDS = 40


def _small_primes(limit: int) -> list[int]:
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return [i for i in range(3, limit) if flags[i]]


_SMALL_PRIMES = _small_primes(_SIEVE_LIMIT)


def is_probable_prime(n: int) -> bool:
    """BPSW plus `_MR_ROUNDS` Miller–Rabin rounds (gmpy2)."""
    if n < 2:
        return False
    return bool(gmpy2.is_bpsw_prp(n)) and bool(gmpy2.is_prime(n, _MR_ROUNDS))


def is_safe_prime(p: int) -> bool:
    return p > 5 and p % 4 == 3 and is_probable_prime(p) and is_probable_prime((p - 1) // 2)


def generate_safe_prime(bits: int, rng: Rng) -> int:
    """A uniform-ish safe prime of exactly `bits` bits (top two bits set so p*q has 2*bits)."""
    if bits < 16:
        raise InvalidParameters("safe prime too small")
    qbits = bits - 1
    two = gmpy2.mpz(2)
    while True:
        start = int.from_bytes(rng.random_bytes((qbits + 7) // 8), "big")
        start &= (1 << qbits) - 1
        start |= (3 << (qbits - 2)) | 1  # top two bits: the product of two has full length
        survivors = bytearray([1]) * _WINDOW
        for r in _SMALL_PRIMES:
            if r >= start:
                break
            inv2 = (r + 1) // 2  # 2^-1 mod r
            # q = start + 2k is divisible by r when k ≡ -start/2 (mod r)
            k0 = (-start * inv2) % r
            survivors[k0::r] = bytes(len(range(k0, _WINDOW, r)))
            # 2q+1 ≡ 0 (mod r) when q ≡ -1/2, i.e. k ≡ (-1/2 - start)/2 (mod r)
            k1 = ((-inv2 - start) * inv2) % r
            survivors[k1::r] = bytes(len(range(k1, _WINDOW, r)))
        for k in range(_WINDOW):
            if not survivors[k]:
                continue
            q = gmpy2.mpz(start + 2 * k)
            if q.bit_length() != qbits:
                break
            if gmpy2.powmod(two, q - 1, q) != 1:
                continue
            p = 2 * q + 1
            if gmpy2.powmod(two, p - 1, p) != 1:
                continue
            if is_probable_prime(int(q)) and is_probable_prime(int(p)):
                return int(p)


@dataclass(frozen=True)
class SafePrimePair:
    """Two distinct safe primes of equal size: the secret behind one Paillier–Blum modulus."""

    p: int = field(repr=False)
    q: int = field(repr=False)

    @property
    def bits(self) -> int:
        return (self.p * self.q).bit_length()


PrimeSource = Callable[[int], SafePrimePair]
"""Given a modulus size in bits, returns a fresh pair of safe primes of half that size each."""


def system_source(rng: Rng) -> PrimeSource:
    def source(modulus_bits: int) -> SafePrimePair:
        half = modulus_bits // 2
        p = generate_safe_prime(half, rng)
        while True:
            q = generate_safe_prime(half, rng)
            if q != p:
                return SafePrimePair(p, q)

    return source


class FixtureSource:
    """Pairs from a fixed list of safe primes (tests, benchmarks). Cycles when exhausted.

    Each prime is checked to be a safe prime when loaded, so a corrupt fixture fails loudly.
    """

    def __init__(self, primes: Iterable[int]) -> None:
        self._by_bits: dict[int, list[int]] = {}
        for p in primes:
            if not is_safe_prime(p):
                raise InvalidParameters("fixture value is not a safe prime")
            self._by_bits.setdefault(p.bit_length(), []).append(p)
        self._next: dict[int, int] = {}
        self._lock = threading.Lock()

    def count(self, half_bits: int) -> int:
        return len(self._by_bits.get(half_bits, []))

    def __call__(self, modulus_bits: int) -> SafePrimePair:
        half = modulus_bits // 2
        primes = self._by_bits.get(half, [])
        if len(primes) < 2:
            raise LocalError("no fixture safe primes of that size")
        with self._lock:
            i = self._next.get(half, 0)
            self._next[half] = (i + 2) % (len(primes) - len(primes) % 2)
        return SafePrimePair(primes[i], primes[i + 1])


PAIR_FORMAT_VERSION = 1


def encode_pair(pair: SafePrimePair) -> bytes:
    """version || len(p) || p || len(q) || q (lengths 2 bytes, integers big-endian)."""
    out = bytearray([PAIR_FORMAT_VERSION])
    for v in (pair.p, pair.q):
        raw = v.to_bytes((v.bit_length() + 7) // 8, "big")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def decode_pair(data: bytes, modulus_bits: int) -> SafePrimePair:
    """Parse and re-validate: two distinct safe primes of exactly `modulus_bits // 2` bits.
    Raises InvalidParameters (the message never contains the values)."""
    if not data or data[0] != PAIR_FORMAT_VERSION:
        raise InvalidParameters("unknown pre-parameter format version")
    values: list[int] = []
    at = 1
    for _ in range(2):
        if at + 2 > len(data):
            raise InvalidParameters("truncated pre-parameters")
        n = int.from_bytes(data[at : at + 2], "big")
        at += 2
        if n == 0 or at + n > len(data):
            raise InvalidParameters("truncated pre-parameters")
        values.append(int.from_bytes(data[at : at + n], "big"))
        at += n
    if at != len(data):
        raise InvalidParameters("trailing bytes after pre-parameters")
    p, q = values
    half = modulus_bits // 2
    if p.bit_length() != half or q.bit_length() != half:
        raise InvalidParameters(f"pre-parameters are not of the configured size ({modulus_bits}-bit modulus)")
    if p == q or not (is_safe_prime(p) and is_safe_prime(q)):
        raise InvalidParameters("pre-parameters are not two distinct safe primes")
    return SafePrimePair(p, q)


class PreParamPool:
    """Keeps up to `size` safe-prime pairs of `modulus_bits` ready, refilled by a daemon thread.

    `take()` returns a pooled pair at once when one is ready, else waits for the filler
    (raising `LocalError` after `timeout`); `try_take()` never waits. `add_listener(fn)` has `fn`
    called (from whatever thread added it) whenever a pair becomes ready, and
    `expected_wait(count)` estimates when `count` more pairs will be, from the searches so far:
    together they let a caller wait without holding a thread (enclave/engine/preparams_wait.py).
    `start()` launches the filler; `stop()` ends it after the search in progress.

    Export bookkeeping (see the module docstring): `unexported()` hands out pairs the filler
    made and no export has covered yet, `note_exported()` records the id they were sealed
    under, `consumed_exports()` drains the ids of exported pairs taken since; `add()` puts an
    imported pair in while there is room.
    """

    def __init__(
        self,
        source: PrimeSource,
        modulus_bits: int,
        size: int,
        on_consumed: Callable[[str], None] | None = None,
    ) -> None:
        if size < 1:
            raise InvalidParameters("pool size must be at least 1")
        self._source = source
        self.modulus_bits = modulus_bits
        self.size = size
        self._ready: deque[SafePrimePair] = deque()
        self._fresh: deque[SafePrimePair] = deque()  # produced here, not exported yet
        self._exported: dict[SafePrimePair, str] = {}  # pairs in _ready with their export id
        self._consumed: list[str] = []
        # Told the export id of every exported pair as it is used (the engine's single-use record).
        self._on_consumed = on_consumed
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self._search_started: float | None = None  # monotonic time of the search in progress
        self._search_seconds: float | None = None  # smoothed duration of the searches so far

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._fill, name="preparam-pool", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def ready(self) -> int:
        with self._cond:
            return len(self._ready)

    def add_listener(self, listener: Callable[[], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def expected_wait(self, count: int) -> float | None:
        """Seconds until `count` more pairs are ready (beyond those ready now), from the searches
        so far; None before any search finished; infinity when nothing fills the pool."""
        with self._cond:
            if self._thread is None or self._stopping:
                return float("inf")
            per, started = self._search_seconds, self._search_started
        if per is None:
            return None
        if count <= 0:
            return 0.0
        first = per if started is None else max(0.0, per - (time.monotonic() - started))
        return first + (count - 1) * per

    def fill_now(self) -> None:
        """Fill the pool in the calling thread (startup warm-up, benchmarks)."""
        while self.ready() < self.size:
            pair = self._source(self.modulus_bits)
            with self._cond:
                self._ready.append(pair)
                self._fresh.append(pair)
                self._cond.notify_all()
            self._notify()

    def add(self, pair: SafePrimePair) -> bool:
        """Add an imported (already validated) pair if the pool has room and lacks it."""
        with self._cond:
            if len(self._ready) >= self.size or pair in self._ready:
                return False
            self._ready.append(pair)
            self._cond.notify_all()
        self._notify()
        return True

    def unexported(self, limit: int) -> list[SafePrimePair]:
        """Up to `limit` pairs produced here and not yet exported (each handed out once)."""
        with self._cond:
            out: list[SafePrimePair] = []
            while self._fresh and len(out) < limit:
                out.append(self._fresh.popleft())
            return out

    def requeue_unexported(self, pairs: Iterable[SafePrimePair]) -> None:
        """Put back pairs whose export failed (still in the pool), first in line."""
        with self._cond:
            for pair in reversed(list(pairs)):
                if pair in self._ready:
                    self._fresh.appendleft(pair)

    def note_exported(self, pair: SafePrimePair, item_id: str) -> None:
        with self._cond:
            if pair in self._ready:
                self._exported[pair] = item_id
            else:  # taken while it was being sealed: its stored copy must go at once
                self._consumed_now(item_id)

    def _consumed_now(self, item_id: str) -> None:
        self._consumed.append(item_id)
        if self._on_consumed is not None:
            self._on_consumed(item_id)

    def consumed_exports(self) -> list[str]:
        with self._cond:
            out, self._consumed = self._consumed, []
            return out

    def take(self, timeout: float | None = None) -> SafePrimePair:
        with self._cond:
            if not self._ready and self._thread is None:
                raise LocalError("pre-parameter pool is empty and not running")
            if not self._cond.wait_for(lambda: bool(self._ready), timeout):
                raise LocalError("pre-parameter pool is empty")
            return self._pop()

    def try_take(self) -> SafePrimePair | None:
        """A ready pair, or None at once."""
        with self._cond:
            return self._pop() if self._ready else None

    def _pop(self) -> SafePrimePair:
        pair = self._ready.popleft()
        item_id = self._exported.pop(pair, None)
        if item_id is not None:
            self._consumed_now(item_id)
        with contextlib.suppress(ValueError):
            self._fresh.remove(pair)
        self._cond.notify_all()
        return pair

    def _fill(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or len(self._ready) < self.size)
                if self._stopping:
                    return
                self._search_started = started = time.monotonic()
            pair = self._source(self.modulus_bits)
            with self._cond:
                took = time.monotonic() - started
                prev = self._search_seconds
                # smoothed: one slow or lucky search moves the estimate a third of the way
                self._search_seconds = took if prev is None else prev + (took - prev) / 3
                self._search_started = None
                if len(self._ready) >= self.size:  # imports filled the pool during the search
                    continue
                self._ready.append(pair)
                self._fresh.append(pair)
                self._cond.notify_all()
            self._notify()
