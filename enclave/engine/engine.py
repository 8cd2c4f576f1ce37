"""The enclave's `SessionEngine`: a registry of live protocol sessions, their deadlines and caps.

Live secret state exists only here, in memory, for as long as its session runs. The engine

- refuses a start whose session id is running or recently finished (ALREADY_EXISTS), or beyond
  `max_sessions` running sessions (RESOURCE_EXHAUSTED);
- gives each session a deadline from `timeout_ms` (0: the configured default, clamped to the
  maximum); at the deadline its drivers (and secrets) are dropped and it is FAILED with
  "deadline exceeded";
- answers deliver to an unknown id with NOT_FOUND, to a finished one with FAILED_PRECONDITION;
  a message from a party outside the session (or addressed to another party) is rejected with
  INVALID_ARGUMENT naming it, before any message of the request is applied, and the session
  goes on; a garbage payload makes the session's driver abort naming the sender;
- serializes requests of one session with its lock and runs the protocol math in a small
  thread pool, so different sessions proceed concurrently and pings stay answered; any
  failure inside one session fails that session only; nothing waits in that pool: a GG20 key
  generation waiting for pre-parameters waits on the event loop (enclave/engine/preparams_wait.py);
- bounds what peers' messages can make it hold: each message by its protocol's size bound for
  its round (enclave/engine/limits.py), at most one round ahead, and the bytes held for later
  rounds by a reservation each session makes at start against `max_held_bytes`
  (RESOURCE_EXHAUSTED when the running sessions have reserved it all; enclave/engine/held.py);
- with a policy verifier configured, requires a valid approval on every SIGN (and of a reshare
  dealer) before the session is built (no signature share can exist without it):
  PERMISSION_DENIED otherwise; without one, refuses a reshare dealer a start that lists as many
  parties in new_party_keys as the new threshold (FAILED_PRECONDITION: whoever picks those keys
  could rebuild the dealer's share);
- holds this boot's identity key (enclave/tee/identity.py, the key attestation binds), with
  which a reshare party listed in new_party_keys signs its round-one message;
- enforces single use of presignatures, preprocessed FROST nonces and pre-parameter sets
  itself: they are sealed under this boot's key with a sequence number of its ledgers
  (enclave/engine/singleuse.py), so a replayed, rolled-back or earlier-boot blob is refused
  whatever the host does.

Finished sessions keep their public outcome (state, culprits, reason; the result is handed out
once, in the update that reports DONE) in a bounded list, so late requests get a precise answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from door.digests import REPAIR_APPROVAL_HASH, RESHARE_APPROVAL_HASH
from enclave.crypto.paillier import DEFAULT_MODULUS_BITS
from enclave.crypto.primes import PreParamPool, PrimeSource, SafePrimePair, decode_pair, encode_pair, system_source
from enclave.crypto.rng import SYSTEM_RNG, Rng
from enclave.engine.approval import decode_approval
from enclave.engine.blobs import PreparamsRecord
from enclave.engine.common import SESSION_ID, Prepared, invalid
from enclave.engine.frost import SUITES as FROST_SUITES
from enclave.engine.frost import FrostAdapter
from enclave.engine.gg20 import PROTOCOL as GG20_PROTOCOL
from enclave.engine.gg20 import Gg20Adapter
from enclave.engine.held import HeldBudget
from enclave.engine.live import LiveSession, Plan
from enclave.engine.preparams_wait import PreparamsWaiter
from enclave.engine.sealed_results import seal_signature
from enclave.engine.singleuse import DEFAULT_WINDOW, SingleUseLedger, check_this_boot
from enclave.errors import InvalidEncoding, InvalidParameters, RequestRejected
from enclave.policy import ApprovalRejected, ApprovalSubject, PolicyVerifier
from enclave.sealing import Binding, Sealer, SealingError, boot_sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)

T = TypeVar("T")

PREPARAMS_EXPORT_DEFAULT = 16
PREPARAMS_EXPORT_MAX = 64
_PREPARAMS_ID = re.compile(r"[0-9a-f]{32}")


# Without a policy the host decides who the new parties are (as it decides what to sign); with
# t_new listed keys it would decide enough of them to rebuild a dealer's share.
RESHARE_NEEDS_POLICY: Final = (
    "new_party_keys lists the new threshold or more parties: whoever picks those keys could rebuild this"
    " dealer's share; configure a policy to approve them"
)


# Without a policy nothing outside the host vouches for a new party's key: a host (or relay) that
# lists its own key for one new party gets that party's new share, and one more reshare in which
# that share deals (it proves itself with the share the host now knows) hands the host this
# dealer's sub-shares too; a repair hands over a whole share. So a dealer or helper needs a policy,
# unless the operator accepts that its host and relay decide who receives shares.
DEALING_NEEDS_POLICY: Final = (
    "a reshare dealer or repair helper needs a policy configured (its approval vouches for who receives"
    " shares); without one the host could list its own keys and collect this party's share. The enclave's"
    " --allow-reshare-without-policy lets the host and relay decide instead"
)


def preparams_binding(item_id: str) -> Binding:
    """Pre-parameters exist before any key: no key id, party 0, told apart by their random id."""
    return Binding(key_id="", protocol=GG20_PROTOCOL, party_id=0, purpose="preparams", item_id=item_id)


@dataclass(frozen=True)
class EngineConfig:
    max_sessions: int = 1000
    default_timeout_ms: int = 120_000
    max_timeout_ms: int = 3_600_000
    # Finished sessions remembered (oldest forgotten first) to answer late requests precisely.
    finished_retention: int = 10_000
    workers: int = 4
    preparams_pool_size: int = 2
    # How long a GG20 key generation may wait (on the event loop, holding no worker) for
    # pre-parameters; RESOURCE_EXHAUSTED at once when the pool cannot serve it within that.
    preparams_wait_seconds: float = 20.0
    max_messages_per_deliver: int = 256
    modulus_bits: int = DEFAULT_MODULUS_BITS
    # Largest Paillier modulus accepted from a peer (key generation refuses larger ones); the
    # GG20 message bounds follow from it (enclave/engine/limits.py).
    max_modulus_bits: int = DEFAULT_MODULUS_BITS
    # Bytes of peers' messages for later rounds all sessions together may have to hold.
    max_held_bytes: int = 256 * 1024 * 1024
    # Single-use items of one kind made in this boot that the used-record covers (one bit each);
    # an item is refused once this many newer ones of its kind were made (enclave/engine/singleuse.py).
    single_use_window: int = DEFAULT_WINDOW
    # Sign a bare digest (message_hash RAW) with a presignature: unsafe (CVE-2025-66017), off.
    allow_presigned_bare_digest: bool = False
    # Deal in a reshare or help a repair with no policy configured: unsafe against the host and
    # relay (DEALING_NEEDS_POLICY says why), off.
    allow_reshare_without_policy: bool = False

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.workers < 1 or self.preparams_pool_size < 1 or self.single_use_window < 1:
            raise ValueError("max_sessions, workers, preparams_pool_size and single_use_window must be at least 1")
        if not 0 < self.default_timeout_ms <= self.max_timeout_ms:
            raise ValueError("need 0 < default_timeout_ms <= max_timeout_ms")
        if self.max_modulus_bits < self.modulus_bits:
            raise ValueError("max_modulus_bits must be at least modulus_bits")
        if self.max_held_bytes < 1 or self.preparams_wait_seconds < 0:
            raise ValueError("max_held_bytes must be positive and preparams_wait_seconds not negative")


def _background(source: PrimeSource) -> PrimeSource:
    """The pool's filler thread searches at a lower CPU priority (Linux: per thread), so the
    search never competes with sessions and pings for the cores."""
    lowered = threading.local()

    def search(modulus_bits: int) -> SafePrimePair:
        if not getattr(lowered, "done", False):
            lowered.done = True
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        return source(modulus_bits)

    return search


class Engine:
    """Implements `enclave.service.SessionEngine` and `PreparamsPool`. Construct inside or outside
    a running loop; call `close()` when done (stops the pre-parameter pool and the worker threads)."""

    def __init__(
        self,
        sealer: Sealer,
        *,
        config: EngineConfig | None = None,
        rng: Rng = SYSTEM_RNG,
        prime_source: PrimeSource | None = None,
        policy: PolicyVerifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        identity: EnclaveIdentity | None = None,
    ) -> None:
        """`identity`: this boot's identity key, the one InfoResponse shows and attestation binds
        (default: a new one, for an engine no one attests)."""
        self.config = config or EngineConfig()
        self.policy = policy
        self.identity = identity if identity is not None else EnclaveIdentity.generate()
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="mpc-session")
        # Single-use items: sealed under a key of this boot only, used at most once in it.
        self.boot_sealer = boot_sealer(rng)
        self.used_presignatures = SingleUseLedger("presignature", self.config.single_use_window)
        self.used_preparams = SingleUseLedger("pre-parameter set", self.config.single_use_window)
        self.used_frost_nonces = SingleUseLedger("FROST nonce", self.config.single_use_window)
        self._preparams_seq: dict[str, int] = {}  # export id -> sequence, while its pair is pooled
        self._preparams_lock = threading.Lock()
        self.pool = PreParamPool(
            _background(prime_source or system_source(rng)),
            self.config.modulus_bits,
            self.config.preparams_pool_size,
            on_consumed=self._preparams_consumed,
        )
        self.pool.start()
        self.held = HeldBudget(self.config.max_held_bytes)
        self.preparams = PreparamsWaiter(self.pool)
        self._adapters: dict[int, FrostAdapter | Gg20Adapter] = {
            **{
                p: FrostAdapter(
                    sealer,
                    rng,
                    suite,
                    p,
                    boot_sealer=self.boot_sealer,
                    used_nonces=self.used_frost_nonces,
                    identity=self.identity,
                )
                for p, suite in FROST_SUITES.items()
            },
            pb.PROTOCOL_GG20_SECP256K1: Gg20Adapter(
                sealer,
                rng,
                self.preparams,
                self.boot_sealer,
                self.used_presignatures,
                self.config.preparams_wait_seconds,
                clock,
                max_modulus_bits=self.config.max_modulus_bits,
                allow_presigned_bare_digest=self.config.allow_presigned_bare_digest,
                identity=self.identity,
            ),
        }
        self._sealer = sealer
        self._rng = rng
        self._running: dict[str, LiveSession] = {}
        self._finished: OrderedDict[str, LiveSession] = OrderedDict()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def protocols(self) -> Sequence[pb.Protocol]:
        return [
            pb.PROTOCOL_GG20_SECP256K1,
            pb.PROTOCOL_FROST_ED25519,
            pb.PROTOCOL_FROST_SECP256K1,
            pb.PROTOCOL_FROST_SECP256K1_TR,
        ]

    def running(self) -> int:
        return len(self._running)

    def preparams_ready(self) -> int:
        """Pre-parameter sets ready in the pool (reported in InfoResponse for the host's metrics)."""
        return self.pool.ready()

    def gauges(self) -> dict[str, int]:
        """Counts and bounds for the host's metrics (InfoResponse.gauges): nothing secret."""
        return {
            **self.held.gauges(),
            **self.preparams.gauges(),
            "sessions_running": len(self._running),
            "sessions_limit": self.config.max_sessions,
        }

    def boot_sealer_kind(self) -> str:
        """The header kind of this boot's single-use blobs (public; reported in InfoResponse)."""
        return self.boot_sealer.kind

    def _preparams_consumed(self, item_id: str) -> None:
        """The pool took (or lost while sealing) an exported pair: its blob is used up for good."""
        with self._preparams_lock:
            seq = self._preparams_seq.pop(item_id, None)
        if seq is not None and not self.used_preparams.is_used(seq):
            with contextlib.suppress(RequestRejected):  # pushed out of the window: refused anyway
                self.used_preparams.consume(seq)

    # -- pre-parameters at rest (see enclave.crypto.primes) ----------------------------------------------

    async def preparams_export(self, request: pb.PreparamsExport) -> pb.PreparamsExported:
        limit = min(request.max_count or PREPARAMS_EXPORT_DEFAULT, PREPARAMS_EXPORT_MAX)

        def seal_fresh() -> list[pb.SealedBlob]:
            out: list[pb.SealedBlob] = []
            pairs = self.pool.unexported(limit)
            for i, pair in enumerate(pairs):
                item_id = self._rng.random_bytes(16).hex()
                try:
                    seq = self.used_preparams.issue()
                    record = PreparamsRecord(seq, encode_pair(pair))
                    data = self.boot_sealer.seal(record.encode(), preparams_binding(item_id))
                except BaseException:
                    # Not sealed: these stay in memory only, offered again by the next export.
                    self.pool.requeue_unexported(pairs[i:])
                    raise
                with self._preparams_lock:
                    self._preparams_seq[item_id] = seq
                self.pool.note_exported(pair, item_id)
                out.append(pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PREPARAMS, id=item_id, data=data))
            return out

        sealed = await self._in_worker(seal_fresh)
        return pb.PreparamsExported(
            sealed=sealed, consumed_ids=self.pool.consumed_exports(), ready=self.pool.ready(), pool_size=self.pool.size
        )

    async def preparams_import(self, request: pb.PreparamsImport) -> pb.PreparamsImported:
        if len(request.sealed) > PREPARAMS_EXPORT_MAX:
            raise invalid(f"at most {PREPARAMS_EXPORT_MAX} pre-parameter sets per import")

        def import_all() -> pb.PreparamsImported:
            answer = pb.PreparamsImported()
            for blob in request.sealed:
                code, message = self._import_one(blob)
                if code == pb.ERROR_CODE_UNSPECIFIED:
                    answer.imported_ids.append(blob.id)
                else:
                    answer.refused.add(id=blob.id, code=code, message=message)
            answer.ready = self.pool.ready()
            return answer

        answer = await self._in_worker(import_all)
        if answer.refused:
            log.warning("pre-parameter import: %d added, %d refused", len(answer.imported_ids), len(answer.refused))
        return answer

    def _import_one(self, blob: pb.SealedBlob) -> tuple[int, str]:
        """Single use across anything the host does: a blob of an earlier boot is refused
        (its key is gone), one whose pair this boot used or imported before is refused by the
        ledger; a pair still pooled is ALREADY_EXISTS. An imported pair's number is consumed at
        once (the pair then lives in memory only), so no blob adds a pair twice."""
        if blob.kind != pb.SEALED_BLOB_KIND_PREPARAMS or not _PREPARAMS_ID.fullmatch(blob.id):
            return pb.ERROR_CODE_INVALID_ARGUMENT, "not a pre-parameter blob (kind or id)"
        try:
            check_this_boot(self.boot_sealer, blob.data, f"pre-parameter set {blob.id}")
            plaintext = self.boot_sealer.unseal(blob.data, preparams_binding(blob.id))
            record = PreparamsRecord.decode(plaintext)
            self.used_preparams.check(record.sequence)
        except RequestRejected as exc:
            return exc.code, exc.message
        except SealingError as exc:
            return pb.ERROR_CODE_SEALED_BLOB_INVALID, str(exc)
        except InvalidEncoding as exc:
            return pb.ERROR_CODE_SEALED_BLOB_INVALID, f"pre-parameter record: {exc}"
        if self.pool.ready() >= self.pool.size:
            return pb.ERROR_CODE_RESOURCE_EXHAUSTED, "the pre-parameter pool is full"
        try:
            pair = decode_pair(record.pair, self.pool.modulus_bits)
        except InvalidParameters as exc:
            return pb.ERROR_CODE_INVALID_ARGUMENT, str(exc)
        try:
            # Before the pair enters the pool: of two concurrent imports of one blob, one wins.
            self.used_preparams.consume(record.sequence)
        except RequestRejected as exc:
            return exc.code, exc.message
        if not self.pool.add(pair):
            # In this boot an unused blob's pair is always still pooled (a taken pair's number
            # is consumed as it is taken), so the number consumed above costs nothing.
            if self.pool.ready() >= self.pool.size:
                return pb.ERROR_CODE_RESOURCE_EXHAUSTED, "the pre-parameter pool is full"
            return pb.ERROR_CODE_ALREADY_EXISTS, "these pre-parameters are already in the pool"
        return pb.ERROR_CODE_UNSPECIFIED, ""

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for session in self._running.values():
            session.fail("enclave shutting down")
        self.pool.stop(timeout=0)
        self.preparams.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _step(self, session: LiveSession, fn: Callable[[], T]) -> T:
        return fn() if session.light else await self._in_worker(fn)

    # -- start ----------------------------------------------------------------------------------

    async def start(self, request: pb.SessionStart) -> pb.SessionUpdate:
        sid = request.session_id
        if not SESSION_ID.fullmatch(sid):
            raise invalid("session_id must be 1-128 characters of [A-Za-z0-9._:-]")
        if request.kind not in (
            pb.SESSION_KIND_DKG,
            pb.SESSION_KIND_SIGN,
            pb.SESSION_KIND_PRESIGN,
            pb.SESSION_KIND_REFRESH,
            pb.SESSION_KIND_RESHARE,
            pb.SESSION_KIND_REPAIR,
        ):
            raise invalid("unknown session kind")
        adapter = self._adapters.get(request.protocol)
        if adapter is None:
            raise invalid("unknown protocol")
        if sid in self._running or sid in self._finished:
            raise RequestRejected(pb.ERROR_CODE_ALREADY_EXISTS, f"session {sid} already exists")
        if len(self._running) >= self.config.max_sessions:
            raise RequestRejected(pb.ERROR_CODE_RESOURCE_EXHAUSTED, "too many sessions running in the enclave")
        if len(request.messages) > self.config.max_messages_per_deliver:
            raise invalid(f"at most {self.config.max_messages_per_deliver} messages per delivery")
        prepared = adapter.prepare(request)
        timeout_ms = min(request.timeout_ms or self.config.default_timeout_ms, self.config.max_timeout_ms)
        limits = adapter.limits(request, len(prepared.parties.index), self.config.max_modulus_bits)
        reserve = limits.queue_bound(len(prepared.parties.index) - 1)
        session = LiveSession(request, prepared.parties, self._clock() + timeout_ms / 1000, limits, self.held, reserve)
        session.light = prepared.light
        initial = self._batch(session, request.messages)
        if not self.held.reserve(reserve):
            gauges = self.held.gauges()
            raise RequestRejected(
                pb.ERROR_CODE_RESOURCE_EXHAUSTED,
                f"the enclave cannot hold this session's early messages ({reserve} bytes): running sessions"
                f" have reserved {gauges['held_message_bytes_reserved']} of {self.held.limit}; retry later",
            )
        self._running[sid] = session  # reserved: no await since the checks above
        try:
            async with session.lock:
                if request.kind == pb.SESSION_KIND_SIGN or prepared.approval_digest is not None:
                    self._check_policy(request, prepared)  # a signature, or a reshare dealer's share
                if prepared.wait is not None:
                    await prepared.wait(session.deadline)
                plan: Plan = await self._step(session, lambda: prepared.build(session.deadline))
                outgoing = await self._step(session, lambda: session.begin(plan))
                if initial and session.running:
                    outgoing += await self._step(session, lambda: session.feed(initial))
                self._arm_deadline(session, timeout_ms / 1000)
                self._settle(session)
                return self._answer(session, outgoing)
        except BaseException:
            # Nothing of the session survives a failed start (a deliver queued on its lock
            # then finds it failed); the id may be used again.
            if self._running.get(sid) is session:
                del self._running[sid]
            session.fail("the session could not start")
            raise

    def _check_policy(self, request: pb.SessionStart, prepared: Prepared) -> None:
        if self.policy is None:
            if prepared.approval_hash in (RESHARE_APPROVAL_HASH, REPAIR_APPROVAL_HASH):
                if not self.config.allow_reshare_without_policy:
                    raise RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, DEALING_NEEDS_POLICY)
                if prepared.approval_hash == RESHARE_APPROVAL_HASH and len(request.new_party_keys) >= request.threshold:
                    raise RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, RESHARE_NEEDS_POLICY)
            return
        assert prepared.approval_digest is not None
        subject = ApprovalSubject(
            key_id=request.key_id,
            message_hash=prepared.approval_hash,
            digest=prepared.approval_digest,
            derivation_path=tuple(request.derivation_path),
            presignature_id=request.presignature_id,
            session_id=request.session_id,
        )
        try:
            self.policy.verify_approval(decode_approval(request.policy_approval, subject), subject)
        except ApprovalRejected as exc:
            raise RequestRejected(pb.ERROR_CODE_PERMISSION_DENIED, exc.reason) from None

    # -- deliver / abort ------------------------------------------------------------------------

    def _lookup(self, sid: str) -> LiveSession:
        session = self._running.get(sid) or self._finished.get(sid)
        if session is None:
            raise RequestRejected(pb.ERROR_CODE_NOT_FOUND, f"unknown session {sid}")
        return session

    @staticmethod
    def _finished_error(session: LiveSession) -> RequestRejected:
        what = "done" if session.state == pb.SESSION_STATE_DONE else f"failed: {session.reason}"
        return RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, f"session {session.id} is {what}")

    async def deliver(self, request: pb.SessionDeliver) -> pb.SessionUpdate:
        session = self._lookup(request.session_id)
        if len(request.messages) > self.config.max_messages_per_deliver:
            raise invalid(f"at most {self.config.max_messages_per_deliver} messages per delivery")
        async with session.lock:
            if not session.running:
                raise self._finished_error(session)
            if self._clock() >= session.deadline:
                return self._expire_now(session)
            batch = self._batch(session, request.messages)
            outgoing = await self._step(session, lambda: session.feed(batch))
            if session.running and self._clock() >= session.deadline:
                return self._expire_now(session)
            self._settle(session)
            return self._answer(session, outgoing)

    @staticmethod
    def _batch(session: LiveSession, messages: Sequence[pb.EnclaveMessage]) -> list[tuple[int, int, bytes]]:
        """(round, sender index, payload) of messages from other parties to this one; BadInput
        (the whole request refused, nothing applied) for any message that is not."""
        me, index = session.parties.self_name, session.parties.index
        batch: list[tuple[int, int, bytes]] = []
        for m in messages:
            if m.sender not in index or m.sender == me:
                raise invalid(f"message from {m.sender!r}, which is not another party of this session")
            if m.recipient not in ("", me):
                raise invalid(f"message from {m.sender!r} is addressed to {m.recipient!r}, not to this party")
            batch.append((m.round, index[m.sender], bytes(m.payload)))
        return batch

    async def abort(self, request: pb.SessionAbort) -> pb.SessionUpdate:
        session = self._lookup(request.session_id)
        async with session.lock:
            if session.state == pb.SESSION_STATE_DONE:
                raise self._finished_error(session)
            if session.running:
                reason = "".join(c for c in request.reason[:200] if c.isprintable())
                session.fail(f"aborted by the host: {reason}" if reason else "aborted by the host")
                log.info("session %s aborted by the host", session.id)
                self._settle(session)
            return session.update()

    # -- deadlines and bookkeeping ---------------------------------------------------------------

    def _arm_deadline(self, session: LiveSession, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._timers[session.id] = loop.call_later(seconds, self._on_deadline, session)

    def _on_deadline(self, session: LiveSession) -> None:
        self._timers.pop(session.id, None)
        task = asyncio.get_running_loop().create_task(self._expire(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, session: LiveSession) -> None:
        async with session.lock:
            if session.running:
                self._expire_now(session)

    def _expire_now(self, session: LiveSession) -> pb.SessionUpdate:
        session.fail("deadline exceeded")
        log.info("session %s: deadline exceeded, secrets dropped", session.id)
        self._settle(session)
        return session.update()

    @staticmethod
    def _answer(session: LiveSession, outgoing: Sequence[pb.EnclaveMessage]) -> pb.SessionUpdate:
        update = session.update(outgoing)
        seal_signature(update, session.result_recipient)  # when the caller asked for it
        # The DONE update is the one place the result is handed out (the host stores its sealed
        # blobs before reporting done); the finished record keeps only state and reason.
        session.result = None
        return update

    def _settle(self, session: LiveSession) -> None:
        """Move a finished session out of the running set (its secrets are already dropped)."""
        if session.running or self._running.get(session.id) is not session:
            return
        del self._running[session.id]
        timer = self._timers.pop(session.id, None)
        if timer is not None:
            timer.cancel()
        self._finished[session.id] = session
        while len(self._finished) > self.config.finished_retention:
            self._finished.popitem(last=False)
        if session.state == pb.SESSION_STATE_FAILED:
            log.info("session %s failed: %s (culprits %s)", session.id, session.reason, session.culprits)
