"""Single use enforced by the enclave itself: per-boot sealing and a bounded used-record.

A single-use item (a GG20 presignature, a Paillier pre-parameter set) is sealed under this
boot's `boot_sealer` (enclave.sealing): a key drawn from the injected Rng when the engine starts,
held only in enclave memory. Inside its sealed record the item carries a sequence number this
boot assigned (1, 2, 3, ... per kind of item). The engine keeps, per kind, a `SingleUseLedger`:

- `next`: the next number to assign; `low`: the oldest number still tracked;
- a bitmap of `window` bits, bit i set when number `low + i` was used.

So the record of what this boot used is complete (every number ever assigned is either in the
window, with its used bit, or below `low`) and bounded (`window` bits, 8 KiB for the default
65,536, whatever the uptime). When assigning a number would make the window span more than
`window` numbers, `low` moves up by one: the oldest item becomes unusable ("older than the
single-use window"), used or not. An item thus stays usable until `window` further items of its
kind were made in this boot; a host whose pool holds fewer unused items than that loses none.

What the host can do against it:
- replay a blob in this boot: its number's bit is set, refused (FAILED_PRECONDITION);
- restore an older store or backup: its blobs are either from this boot (bits set if used) or
  from an earlier one;
- restart the enclave: the boot key is gone; every blob sealed before (its header names another
  `boot-` sealer, or a durable sealer of an older version) is refused with
  ERROR_CODE_SEALED_IN_EARLIER_BOOT ("sealed in an earlier enclave boot"), before any
  decryption. The host drops such items and refills its pools.
A blob cannot move between kinds or items: the AEAD binding names purpose and item id, and the
sequence number is inside the authenticated plaintext.
"""

from __future__ import annotations

import threading
from typing import Final

from enclave.errors import RequestRejected
from enclave.sealing import LocalSealer, SealingError, parse_envelope
from mpc.v1 import enclave_pb2 as pb

DEFAULT_WINDOW: Final = 1 << 16
EARLIER_BOOT: Final = "sealed in an earlier enclave boot"


class SingleUseLedger:
    """Which of this boot's sequence numbers of one kind of item were used (thread-safe)."""

    def __init__(self, what: str, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("the single-use window must hold at least one item")
        self.what = what
        self.window = window
        self._next = 1
        self._low = 1
        self._used = 0  # bit i: number low + i was used
        self._lock = threading.Lock()
        self.expired = 0  # unused items pushed out of the window (never usable again)

    def issue(self) -> int:
        """A fresh sequence number for an item about to be sealed."""
        with self._lock:
            seq = self._next
            self._next += 1
            if self._next - self._low > self.window:
                if not self._used & 1:
                    self.expired += 1
                self._used >>= 1
                self._low += 1
            return seq

    def _refusal(self, seq: int) -> RequestRejected | None:
        if not 1 <= seq < self._next:
            # Only this boot's key seals these records: a number it never assigned is a bug or
            # a forgery the AEAD should have stopped; refuse it all the same.
            return RequestRejected(pb.ERROR_CODE_SEALED_BLOB_INVALID, f"{self.what}: not issued in this enclave boot")
        if seq < self._low:
            return RequestRejected(
                pb.ERROR_CODE_FAILED_PRECONDITION,
                f"{self.what} is older than the enclave's single-use window ({self.window} made since)",
            )
        if self._used >> (seq - self._low) & 1:
            return RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, f"{self.what} already used")
        return None

    def check(self, seq: int) -> None:
        """Raise RequestRejected unless `seq` is usable now (nothing recorded)."""
        with self._lock:
            refusal = self._refusal(seq)
        if refusal is not None:
            raise refusal

    def consume(self, seq: int) -> None:
        """Record `seq` as used; RequestRejected if it cannot be (used, too old, unknown)."""
        with self._lock:
            refusal = self._refusal(seq)
            if refusal is None:
                self._used |= 1 << (seq - self._low)
        if refusal is not None:
            raise refusal

    def is_used(self, seq: int) -> bool:
        with self._lock:
            return self._low <= seq < self._next and bool(self._used >> (seq - self._low) & 1)

    def stats(self) -> tuple[int, int, int]:
        """(numbers issued, oldest tracked, numbers used within the window) — public counts."""
        with self._lock:
            return self._next - 1, self._low, self._used.bit_count()


def earlier_boot(what: str) -> RequestRejected:
    return RequestRejected(
        pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT,
        f"{what}: {EARLIER_BOOT} (or by another enclave); it can never be used here: drop it and make a new one",
    )


def check_this_boot(boot: LocalSealer, envelope: bytes, what: str) -> None:
    """Refuse (ERROR_CODE_SEALED_IN_EARLIER_BOOT) a single-use envelope that this boot's sealer
    did not make: one from an earlier boot, or sealed by a durable sealer (an older version)."""
    try:
        kind = parse_envelope(envelope).kind
    except SealingError:
        return  # not even an envelope: the unseal that follows names the failing part
    if kind != boot.kind:
        raise earlier_boot(what)
