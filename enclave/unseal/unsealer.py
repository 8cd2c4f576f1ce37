"""Sealed or unsealed: the operators' shares, the progress towards a threshold, init and rekey.

The enclave started with --sealing-shares FILE holds an `Unsealer` and gives the engine a
`GatedSealer`: until enough shares have been entered it seals and unseals nothing (every key
operation is refused with FAILED_PRECONDITION "node is sealed"). Progress lives in memory only:
a restart starts sealed again, with nothing entered.

Accepting a share (`_accept`): it must decode (checksum, enclave/unseal/shares.py), name a set
of this node's share file (current, or pending during a rekey), carry that set's threshold and
size, match the check value the file records for its index (so a wrong share of the right set is
refused alone, before anything is combined), and not repeat an index already entered. A refused
share changes nothing. When a set's threshold is reached the shares are combined (Lagrange at 0)
and must open the set's wrapped data key (AEAD); if they do not, the file was altered after the
shares were issued: nothing is unsealed and that set's count starts over.

Rekey: with `threshold` shares of the current set (while unsealed, and they must open the very
data key in use), a new set wraps the same data key and is written beside the current one as
pending; both unseal. `verify` with the new set's threshold of shares (or unsealing with them
after a restart) makes it current and drops the old set. Each step is one atomic file write
(enclave/unseal/keyfile.py), so an interruption anywhere leaves a working set: the old one, or
the old and the new one, or the new one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Sequence
from pathlib import Path

from enclave.crypto import shamir
from enclave.crypto.rng import SYSTEM_RNG, Rng
from enclave.errors import BadInput, RequestRejected
from enclave.sealing import KEK_LEN, LOCAL_KIND, Binding, LocalSealer, SealerConfigError, kek_id
from enclave.unseal import keyfile
from enclave.unseal.keyfile import ShareFile, ShareSlot
from enclave.unseal.shares import MAX_SET_SIZE, OperatorShare, ShareRefused
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)

SEALED = "node is sealed"


def _precondition(message: str) -> RequestRejected:
    return RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, message)


def check_set_size(shares: int, threshold: int) -> None:
    if not 1 <= threshold <= shares <= MAX_SET_SIZE:
        raise BadInput(f"need 1 <= threshold <= shares <= {MAX_SET_SIZE} (got {threshold} of {shares})")


class Unsealer:
    def __init__(self, path: Path, rng: Rng = SYSTEM_RNG) -> None:
        self._path = Path(path)
        self._rng = rng
        for stale in keyfile.remove_stale_temporaries(self._path):
            log.warning("removed %s, left by an interrupted share file write", stale)
        self._file: ShareFile | None = keyfile.read(self._path)
        self._data_key: bytes | None = None
        self._sealer: LocalSealer | None = None
        self._entered: dict[bytes, dict[int, int]] = {}  # set id -> {index: value}, while sealed
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Unsealer(path={str(self._path)!r}, sealed={self.sealed})"

    @property
    def sealed(self) -> bool:
        return self._sealer is None

    @property
    def sealer(self) -> LocalSealer | None:
        return self._sealer

    @property
    def file(self) -> ShareFile | None:
        return self._file

    def sealed_error(self) -> RequestRejected:
        """The refusal of every key operation while sealed, with the progress."""
        f = self._file
        if f is None:
            return _precondition(f"{SEALED}: it has no share set yet (mpc-signer unseal-init)")
        done = len(self._entered.get(f.current.set_id, {}))
        return _precondition(
            f"{SEALED}: {done} of {f.current.threshold} shares of set {f.current.set_hex} entered (mpc-signer unseal)"
        )

    def status(self, message: str = "", new: pb.NewShares | None = None) -> pb.UnsealStatus:
        answer = pb.UnsealStatus(initialized=self._file is not None, sealed=self.sealed, message=message)
        if self._file is not None:
            answer.current.CopyFrom(self._set_status(self._file.current))
            if self._file.pending is not None:
                answer.pending.CopyFrom(self._set_status(self._file.pending))
        if new is not None:
            answer.new_shares.CopyFrom(new)
        return answer

    def _set_status(self, slot: ShareSlot) -> pb.ShareSet:
        entered = len(self._entered.get(slot.set_id, {}))
        return pb.ShareSet(set_id=slot.set_hex, threshold=slot.threshold, shares=slot.shares, entered=entered)

    # -- checks -----------------------------------------------------------------------------------

    def _sets_named(self, slots: Sequence[ShareSlot]) -> str:
        return " or ".join(f"set {s.set_hex}" for s in slots)

    def _accept(self, share: OperatorShare, slots: Sequence[ShareSlot | None], purpose: str) -> ShareSlot:
        allowed = [s for s in slots if s is not None]
        slot = next((s for s in allowed if hmac.compare_digest(s.set_id, share.set_id)), None)
        if slot is None:
            raise ShareRefused(
                "foreign",
                f"this is a share of set {share.set_hex}, which {purpose} on this node cannot use "
                f"(it takes {self._sets_named(allowed)}): a share of another node, or of a set replaced by a rekey",
            )
        if (share.threshold, share.shares) != (slot.threshold, slot.shares):
            raise ShareRefused(
                "parameters",
                f"{share.describe()} says {share.threshold} of {share.shares}; the set is {slot.threshold} of "
                f"{slot.shares}: not a share this node issued",
            )
        if not slot.check_matches(share):
            raise ShareRefused("wrong", f"{share.describe()} is not the share issued for this set (a wrong share)")
        return slot

    def _open(self, slot: ShareSlot, points: dict[int, int]) -> bytes:
        assert self._file is not None
        key = keyfile.unwrap(slot, self._file.data_key_id, shamir.combine(points))
        if key is None or not hmac.compare_digest(kek_id(key), self._file.data_key_id):
            raise _precondition(
                f"the shares of set {slot.set_hex} are each valid but together do not open the wrapped data key: "
                f"the share file {self._path} was altered after they were issued; nothing changed"
            )
        return key

    def _collect(self, shares: Sequence[OperatorShare], slot: ShareSlot, purpose: str) -> dict[int, int]:
        points: dict[int, int] = {}
        for i, share in enumerate(shares, 1):
            self._accept(share, [slot], purpose)
            if share.index in points:
                raise ShareRefused("repeated", f"share {i} entered is {share.describe()} again; each share counts once")
            points[share.index] = share.value
        if len(points) < slot.threshold:
            raise BadInput(f"{purpose} needs {slot.threshold} shares of set {slot.set_hex}; {len(points)} given")
        return points

    # -- operations -------------------------------------------------------------------------------

    async def init(self, shares: int, threshold: int) -> list[OperatorShare]:
        """The first share set: a fresh data key wrapped for it. The node stays sealed."""
        check_set_size(shares, threshold)
        async with self._lock:
            if self._file is not None:
                raise _precondition(
                    f"this node already has a share set ({self._file.current.set_hex}); a new set comes from a "
                    "rekey (mpc-signer rekey)"
                )
            data_key = self._rng.random_bytes(KEK_LEN)
            slot, issued = keyfile.new_slot(data_key, kek_id(data_key), threshold, shares, self._rng)
            file = ShareFile(kek_id(data_key), slot)
            try:
                await asyncio.to_thread(keyfile.create, self._path, file, self._rng)
            except OSError as exc:
                raise _precondition(f"cannot write the share file {self._path}: {exc.strerror}") from None
            except SealerConfigError as exc:
                raise _precondition(str(exc)) from None
            self._file = file
            log.warning("share file %s created: set %s, %d of %d", self._path, slot.set_hex, threshold, shares)
            return issued

    async def enter(self, share: OperatorShare) -> str:
        """One share towards unsealing; unseals when a set's threshold is reached."""
        async with self._lock:
            if not self.sealed:
                raise _precondition("the node is already unsealed")
            f = self._file
            if f is None:
                raise _precondition("this node has no share set yet: create one with mpc-signer unseal-init")
            slot = self._accept(share, [f.current, f.pending], "unsealing")
            entered = self._entered.setdefault(slot.set_id, {})
            if share.index in entered:
                raise ShareRefused("repeated", f"{share.describe()} was already entered; each share counts once")
            entered[share.index] = share.value
            if len(entered) < slot.threshold:
                log.info("%s accepted: %d of %d", share.describe(), len(entered), slot.threshold)
                return f"{share.describe()} accepted: {len(entered)} of {slot.threshold}"
            points = dict(entered)
            try:
                data_key = self._open(slot, points)
            except RequestRejected:
                entered.clear()
                raise
            self._data_key = data_key
            self._sealer = LocalSealer(data_key, self._rng)
            self._entered.clear()
            log.warning("unsealed with %d shares of set %s", slot.threshold, slot.set_hex)
            message = f"{share.describe()} accepted: unsealed with {slot.threshold} shares of set {slot.set_hex}"
            if f.pending is not None and slot is f.pending:
                message += "; " + await self._promote(f)
            return message

    async def rekey(self, shares: Sequence[OperatorShare], new_shares: int, new_threshold: int) -> list[OperatorShare]:
        """A new set for the same data key, written as pending beside the current set."""
        check_set_size(new_shares, new_threshold)
        async with self._lock:
            if self.sealed or self._file is None:
                raise _precondition(f"{SEALED}: unseal it before a rekey")
            f = self._file
            data_key = self._open(f.current, self._collect(shares, f.current, "a rekey"))
            assert self._data_key is not None
            if not hmac.compare_digest(data_key, self._data_key):
                raise _precondition("the current set opens another data key than the one in use; nothing changed")
            slot, issued = keyfile.new_slot(data_key, f.data_key_id, new_threshold, new_shares, self._rng)
            await self._write(ShareFile(f.data_key_id, f.current, slot))
            replaced = f" (replacing pending set {f.pending.set_hex})" if f.pending is not None else ""
            log.warning(
                "rekey: set %s (%d of %d) pending beside %s%s",
                slot.set_hex,
                new_threshold,
                new_shares,
                f.current.set_hex,
                replaced,
            )
            return issued

    async def verify(self, shares: Sequence[OperatorShare]) -> str:
        """Shares of the pending set prove it: it becomes the current set."""
        async with self._lock:
            f = self._file
            if self.sealed:
                raise _precondition(
                    f"{SEALED}: enter the new set's shares with mpc-signer unseal (reaching its threshold unseals and "
                    "completes the rekey)"
                )
            if f is None or f.pending is None:
                raise _precondition("no rekeyed set is waiting for verification")
            data_key = self._open(f.pending, self._collect(shares, f.pending, "verifying the new set"))
            assert self._data_key is not None
            if not hmac.compare_digest(data_key, self._data_key):
                raise _precondition("the new set opens another data key than the one in use; nothing changed")
            return await self._promote(f)

    async def _promote(self, f: ShareFile) -> str:
        assert f.pending is not None
        try:
            await self._write(ShareFile(f.data_key_id, f.pending))
        except RequestRejected as exc:
            log.error("the pending set %s could not be made current: %s", f.pending.set_hex, exc.message)
            return f"the new set {f.pending.set_hex} stays pending ({exc.message})"
        log.warning(
            "set %s is now the current share set; set %s no longer unseals", f.pending.set_hex, f.current.set_hex
        )
        return f"set {f.pending.set_hex} is now the current set; the shares of set {f.current.set_hex} no longer work"

    async def _write(self, file: ShareFile) -> None:
        try:
            await asyncio.to_thread(keyfile.replace, self._path, file, self._rng)
        except OSError as exc:
            raise _precondition(f"cannot write the share file {self._path}: {exc.strerror}; nothing changed") from None
        self._file = file


class GatedSealer:
    """The durable sealer the engine gets in shares mode: the unsealed local sealer, or a refusal.
    Blobs are of kind "local", exactly as a key file's (the data key is the local sealer's key)."""

    def __init__(self, unsealer: Unsealer) -> None:
        self._unsealer = unsealer

    def __repr__(self) -> str:
        return f"GatedSealer({self._unsealer!r})"

    @property
    def kind(self) -> str:
        return LOCAL_KIND

    def _open(self) -> LocalSealer:
        sealer = self._unsealer.sealer
        if sealer is None:
            raise self._unsealer.sealed_error()
        return sealer

    def seal(self, plaintext: bytes, binding: Binding) -> bytes:
        return self._open().seal(plaintext, binding)

    def unseal(self, blob: bytes, binding: Binding) -> bytes:
        return self._open().unseal(blob, binding)
