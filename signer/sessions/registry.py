"""Session registry of the host: who started what, its state, and the HMAC'd messages it emits.

The host holds no secret session state: the enclave does. Here a session is its id, kind, the
fingerprint of its start request (for idempotent starts), its state, its result, and the
sequence counter of this node's outgoing messages. Requests for one session are serialized
(one enclave call at a time per session); different sessions run concurrently, including
several signing sessions on the same key (each has its own nonces or presignature in the enclave).

Hooks, all optional, let the API layer add what needs the store without this module knowing it:

- `prepare(session)` runs once per new session, before the enclave sees it (key lookup, signer
  set checks, durable presignature consumption, sealed blobs into the start request). If it
  raises, the session is forgotten as if never started.
- `persist(session, result)` runs before a session that produced sealed blobs (a DKG's, a
  refresh's or a reshare's key share, presignatures) reports DONE; without it such a session
  fails rather than report a key that is stored nowhere.
- `finished(session)` runs once when a session reaches DONE or FAILED (audit records). It runs
  in the background: its latency is not the caller's.

Fresh sessions: with `ids` (the store's `session_ids` table), every new session id is claimed
durably before the enclave sees the start, so an id runs at most once on this node, across host
and enclave restarts: a start with a used id is refused (ALREADY_EXISTS) and a message for a used
id that is no longer in memory is refused before it reaches the enclave (FAILED_PRECONDITION), so
a relay replaying an old session's HMAC'd messages into a new session of the same id cannot make
it abort and blame an honest party. A claim is released only when the enclave certainly never
ran the session (the start failed before it was sent, no connection could be made, or the
enclave refused it). A signing start that consumes a stored presignature leaves the claim to its
`prepare` hook, which makes it in the presignature's transaction (`claims_with_presignature`).

Deadlines: every session must finish within `deadline_seconds` of its start. A background sweep
(`run_sweeper`) fails overdue sessions with reason "session deadline exceeded" and tells the
enclave to drop their secrets; status calls then show FAILED with that reason, and a submit gets
FAILED_PRECONDITION. Lookups also check the deadline, so a late caller never sees a stale
RUNNING between sweeps.

Bounded state: a running session holds its own replay state (`SenderSequences`, one entry per
sender of its party set), dropped when it ends; a message for a session not held here is refused
before anything is recorded. A finished session leaves the running table for a compact record
in `signer.sessions.retention.FinishedSessions`, bounded in age, count and bytes. Running sessions are
bounded node-wide (`max_concurrent`) and per caller (`signer.sessions.quotas.CallerQuotas`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.replay import SenderSequences
from signer.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from signer.link.client import (
    EnclaveClient,
    EnclaveNotReached,
    EnclaveRequestError,
    EnclaveTimeout,
    EnclaveUnavailable,
    TransportError,
)
from signer.sessions import convert
from signer.sessions.quotas import CallerId, CallerQuotas, presigns
from signer.sessions.retention import FinishedSession, FinishedSessions

log = logging.getLogger(__name__)

DEADLINE_REASON = "session deadline exceeded"
USED_SESSION_ID = "session_id was already used on this node; a session id runs once: start a new one"


@dataclass
class HostSession:
    session_id: str
    kind: int  # enclave_pb2.SessionKind
    start: epb.SessionStart = field(repr=False)
    fingerprint: bytes = field(repr=False)
    deadline: float
    signature_encoding: int = pb.SIGNATURE_ENCODING_UNSPECIFIED
    caller: str = ""
    state: int = pb.SESSION_STATE_RUNNING
    first_outgoing: list[pb.ProtocolMessage] = field(default_factory=list, repr=False)
    result: epb.SessionResult | None = field(default=None, repr=False)
    culprits: list[str] = field(default_factory=list)
    reason: str = ""
    next_seq: int = 1
    finished_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    caller_id: CallerId | None = None
    sequences: SenderSequences = field(default_factory=SenderSequences, repr=False)
    # The session id is durably claimed (by the registry, or by `prepare` for a start that
    # consumes a stored presignature: see `claims_with_presignature`).
    claimed: bool = False

    @property
    def finished(self) -> bool:
        return self.state != pb.SESSION_STATE_RUNNING

    def failure(self) -> pb.SessionFailure | None:
        if self.state != pb.SESSION_STATE_FAILED:
            return None
        return pb.SessionFailure(culprits=self.culprits, reason=self.reason)


Persist = Callable[[HostSession, epb.SessionResult], Awaitable[None]]
Hook = Callable[[HostSession], Awaitable[None]]
# What a start or status call answers from: a session held in full, or a finished one's record.
Answering = HostSession | FinishedSession

NO_LONGER_KEPT = (
    "session is no longer kept on this node: it ran here, and finished sessions are kept for "
    "sessions.retention_seconds at most (fewer when sessions.retained_max or retained_max_bytes is reached), "
    "and not across restarts"
)


class SessionIds(Protocol):
    """Durable record of the session ids this node has started (signer.storage's session_ids)."""

    async def claim(self, session_id: str, kind: int) -> bool: ...

    async def release(self, session_id: str) -> None: ...

    async def used(self, session_id: str) -> bool: ...


class Sessions:
    def __init__(
        self,
        enclave: EnclaveClient,
        keyring: HmacKeyRing,
        *,
        deadline_seconds: float,
        max_concurrent: int,
        retained: FinishedSessions | None = None,
        quotas: CallerQuotas | None = None,
        refused: Callable[[str], None] | None = None,
        persist: Persist | None = None,
        finished: Hook | None = None,
        ids: SessionIds | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`retained`: where finished sessions are kept (default: 300 s, 10,000, 32 MiB);
        `quotas`: per-caller bounds (default: none); `refused(quota key)` is told of every start
        refused by a bound, the node-wide one included."""
        self._enclave = enclave
        self._keyring = keyring
        self._deadline = deadline_seconds
        self._max = max_concurrent
        if retained is None:
            retained = FinishedSessions(max_age=300.0, max_count=10_000, max_bytes=32 << 20)
        self._retained = retained
        self._quotas = quotas
        self._refused = refused or (lambda _quota: None)
        self._persist = persist
        self._finished_hook = finished
        self._ids = ids
        self._clock = clock
        self._sessions: dict[str, HostSession] = {}
        self._running = 0
        self._background: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return self._running

    def __len__(self) -> int:
        return len(self._sessions) + len(self._retained)

    @property
    def retained(self) -> FinishedSessions:
        return self._retained

    async def start(
        self,
        start: epb.SessionStart,
        fingerprint: bytes,
        signature_encoding: int = 0,
        *,
        prepare: Hook | None = None,
        caller: str = "",
        messages: Sequence[pb.ProtocolMessage] = (),
        caller_id: CallerId | None = None,
    ) -> tuple[Answering, list[pb.ProtocolMessage]]:
        """Start a session; `messages` from other parties are applied right after the start (all
        checked before anything starts), and the returned messages answer both. `caller` names
        the caller in audit records; `caller_id` is who the session counts against (quotas)."""
        repeated = await self._repeated_start(start, fingerprint)
        if repeated is not None:
            return repeated
        self._admit(start, messages)
        start.timeout_ms = int(self._deadline * 1000)
        # The enclave applies them right after the start: one request instead of two.
        start.messages.extend(convert.to_enclave_messages(messages))
        session = HostSession(
            session_id=start.session_id,
            kind=start.kind,
            start=start,
            fingerprint=fingerprint,
            deadline=self._clock() + self._deadline,
            signature_encoding=signature_encoding,
            caller=caller,
        )
        if self._quotas is not None and caller_id is not None:
            # Key generation and presigning sessions are known to presign now; a GG20 signing
            # session only once prepare() found no stored presignature for it.
            self._quotas.acquire(caller_id, presigning=start.kind != epb.SESSION_KIND_SIGN and presigns(start))
            session.caller_id = caller_id
        self._sessions[session.session_id] = session
        self._running += 1
        in_enclave = sent = False
        try:
            async with session.lock:
                deferred = prepare is not None and claims_with_presignature(start)
                if self._ids is not None and not deferred:
                    if not await self._ids.claim(session.session_id, session.kind):
                        raise AlreadyExists(USED_SESSION_ID)
                    session.claimed = True
                if prepare is not None:
                    await prepare(session)
                if self._ids is not None and not session.claimed:
                    # Fail closed: no session reaches the enclave with an unclaimed id.
                    raise RuntimeError("prepare did not claim the session id of a start that consumes a presignature")
                if session.caller_id is not None and start.kind == epb.SESSION_KIND_SIGN and presigns(start):
                    assert self._quotas is not None
                    self._quotas.charge(session.caller_id)
                if messages:
                    session.sequences.accept(messages)
                try:
                    sent = True
                    update = await self._enclave.session_start(start)
                finally:
                    # Sealed blobs and first messages are only needed for the start.
                    del start.sealed_blobs[:]
                    del start.messages[:]
                in_enclave = True
                outgoing = await self._apply(session, update)
                session.first_outgoing = outgoing
                if session.finished:
                    # It finished within its start: a retried start must answer these again.
                    self._retained.set_first_outgoing(session.session_id, outgoing)
        except BaseException as exc:
            # Nothing started: the id stays free for a retry, unless the enclave may have run it.
            never_ran = not in_enclave and (not sent or isinstance(exc, EnclaveNotReached | EnclaveRequestError))
            if session.claimed and self._ids is not None and never_ran:
                with contextlib.suppress(Exception):
                    await self._ids.release(session.session_id)
            if self._sessions.get(session.session_id) is session:
                del self._sessions[session.session_id]
                self._leave_running(session)
            elif session.finished:
                self._retained.discard(session.session_id)
            if in_enclave:
                self._spawn(self._abort_in_enclave(session.session_id, "the start was refused"))
            raise
        return session, outgoing

    async def _repeated_start(
        self, start: epb.SessionStart, fingerprint: bytes
    ) -> tuple[Answering, list[pb.ProtocolMessage]] | None:
        """The answer to a start this node has seen (same request: same answer; another: refused)."""
        record = self._retained.get(start.session_id)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise AlreadyExists("session_id is already in use by a different request")
            return record, record.outgoing()
        existing = self._sessions.get(start.session_id)
        if existing is None:
            return None
        if existing.fingerprint != fingerprint:
            raise AlreadyExists("session_id is already in use by a different request")
        async with existing.lock:  # a concurrent identical start may still be talking to the enclave
            if self._sessions.get(start.session_id) is not existing and not existing.finished:
                raise Unavailable("a concurrent start of this session failed; retry")
            self._check_deadline(existing)
            return existing, existing.first_outgoing

    def _admit(self, start: epb.SessionStart, messages: Sequence[pb.ProtocolMessage]) -> None:
        """Refuse a new start over the concurrency bound, for a party this node may not write
        as, or with first messages that are not authentic or not routed to this party."""
        if self._running >= self._max:
            self._refused("sessions.max_concurrent")
            raise ResourceExhausted("too many sessions are running (sessions.max_concurrent); retry later")
        try:
            self._keyring.check_own_party(start.self_party_id)
        except ValueError as exc:
            raise FailedPrecondition(f"{exc} (hmac.senders); its messages would be refused") from None
        if messages:
            if convert.submitted_session(messages) != start.session_id:
                raise InvalidArgument("messages must belong to the session being started")
            self._keyring.verify_all(messages)
            convert.check_routing(messages, convert.session_parties(start), start.self_party_id)

    def running_with_key(self, key_id: str) -> list[str]:
        """The ids of the sessions running on this node with `key_id` as their key (RetireKey
        waits for them)."""
        return sorted(s.session_id for s in self._sessions.values() if s.start.key_id == key_id and not s.finished)

    def get(self, session_id: str, kind: int) -> Answering:
        session: Answering | None = self._sessions.get(session_id) or self._retained.get(session_id)
        if session is None or session.kind != kind:
            raise NotFound("unknown session")
        if isinstance(session, HostSession):
            self._check_deadline(session)
        return session

    async def status(self, session_id: str, kind: int) -> Answering:
        """`get`, and for a session not held here that ran here, a NOT_FOUND that says so."""
        try:
            return self.get(session_id, kind)
        except NotFound:
            held = session_id in self._sessions or self._retained.get(session_id) is not None  # another kind
            if not held and self._ids is not None and await self._ids.used(session_id):
                raise NotFound(NO_LONGER_KEPT) from None
            raise

    async def submit(self, messages: Sequence[pb.ProtocolMessage]) -> tuple[HostSession, list[pb.ProtocolMessage]]:
        session_id = convert.submitted_session(messages)
        # Authenticity first, all or nothing; no field is interpreted before it verifies.
        self._keyring.verify_all(messages)
        session = self._sessions.get(session_id)
        if session is None:
            # Nothing is recorded for a session not held here: replay state lives in a session.
            record = self._retained.get(session_id)
            if record is not None:
                raise FailedPrecondition(_finished_refusal(record))
            if self._ids is not None and await self._ids.used(session_id):
                raise FailedPrecondition("the session has already run on this node; its messages are refused")
            raise NotFound("unknown session")
        async with session.lock:
            self._check_deadline(session)
            if session.finished:
                raise FailedPrecondition(_finished_refusal(session))
            convert.check_routing(messages, convert.session_parties(session.start), session.start.self_party_id)
            session.sequences.accept(messages)
            return session, await self._deliver(session, messages)

    async def _deliver(self, session: HostSession, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        deliver = epb.SessionDeliver(session_id=session.session_id, messages=convert.to_enclave_messages(messages))
        try:
            update = await self._enclave.session_deliver(deliver)
        except (EnclaveUnavailable, EnclaveTimeout):
            # The enclave lost or may have lost the session's secrets: it cannot continue.
            self._fail(session, "the enclave became unavailable during the session")
            raise
        return await self._apply(session, update)

    # -- deadlines and eviction ------------------------------------------------------------

    def _check_deadline(self, session: HostSession) -> None:
        if not session.finished and self._clock() > session.deadline:
            self._expire(session)

    def _expire(self, session: HostSession) -> None:
        self._fail(session, DEADLINE_REASON)
        self._spawn(self._abort_in_enclave(session.session_id, "deadline exceeded"))

    async def _abort_in_enclave(self, session_id: str, reason: str) -> None:
        try:
            await self._enclave.session_abort(session_id, reason)
        except EnclaveRequestError:
            pass  # already finished there
        except TransportError as exc:
            # The enclave drops the session's secrets at its own timeout (SessionStart.timeout_ms).
            log.info("abort of session %s not delivered to the enclave: %s", session_id, exc)

    def sweep(self) -> int:
        """Fail overdue sessions and evict finished ones past retention; returns how many failed."""
        now = self._clock()
        expired = 0
        for session in list(self._sessions.values()):
            # A session busy with the enclave is checked again when its call returns.
            if not session.finished and now > session.deadline and not session.lock.locked():
                self._expire(session)
                expired += 1
        self._retained.expire(now)
        if self._quotas is not None:
            self._quotas.prune()
        return expired

    async def run_sweeper(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:
                log.exception("session sweep failed")

    async def close(self) -> None:
        """Wait for background work (audit records, enclave aborts) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- state transitions -----------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _terminal(self, session: HostSession, state: int) -> None:
        if session.finished:
            return
        session.state = state
        session.finished_at = self._clock()
        if self._sessions.get(session.session_id) is session:
            # Out of the running table, into a compact record; the hook still sees it all.
            del self._sessions[session.session_id]
            self._retained.add(self._record(session))
        self._leave_running(session)
        session.sequences = SenderSequences()
        if self._finished_hook is not None:
            self._spawn(self._run_finished_hook(session))

    def _leave_running(self, session: HostSession) -> None:
        self._running -= 1
        if session.caller_id is not None:
            assert self._quotas is not None
            self._quotas.release(session.caller_id)
            session.caller_id = None

    def _record(self, session: HostSession) -> FinishedSession:
        assert session.finished_at is not None
        result = self.public_result(session)
        return FinishedSession(
            session_id=session.session_id,
            kind=session.kind,
            fingerprint=session.fingerprint,
            state=session.state,
            finished_at=session.finished_at,
            reason=session.reason,
            culprits=tuple(session.culprits),
            result=result.SerializeToString() if result is not None else b"",
        )

    async def _run_finished_hook(self, session: HostSession) -> None:
        assert self._finished_hook is not None
        try:
            await self._finished_hook(session)
        except Exception:
            log.exception("finished-session hook failed for session %s", session.session_id)

    def _fail(self, session: HostSession, reason: str, culprits: Sequence[str] = ()) -> None:
        if session.finished:
            return
        session.reason = reason
        session.culprits = list(culprits)
        self._terminal(session, pb.SESSION_STATE_FAILED)

    async def _apply(self, session: HostSession, update: epb.SessionUpdate) -> list[pb.ProtocolMessage]:
        state = convert.STATES.get(update.state)
        if update.session_id != session.session_id or state is None:
            self._fail(session, "the enclave answered for another session or with no state")
            return []
        if session.finished:
            # The deadline passed while the enclave was working: its answer is not delivered.
            return []
        if state == pb.SESSION_STATE_FAILED:
            self._fail(session, update.reason or "the session failed", update.culprits)
        elif state == pb.SESSION_STATE_DONE:
            result = update.result
            if result.HasField("sealed_share") or len(result.sealed_presignatures) > 0:
                if self._persist is None:
                    self._fail(session, "no key store is configured to keep the sealed result")
                    return []
                try:
                    await self._persist(session, result)
                except Exception as exc:
                    log.exception("storing the result of session %s failed", session.session_id)
                    self._fail(session, f"the result could not be stored ({type(exc).__name__})")
                    return []
                # Sealed bytes are in the store now; the registry keeps only public fields.
                if not result.presignature_id and len(result.sealed_presignatures) > 0:
                    result.presignature_id = result.sealed_presignatures[0].id
                result.ClearField("sealed_share")
                for blob in result.sealed_presignatures:
                    blob.ClearField("data")  # the ids (public) stay: PresignResult.presignature_ids
            session.result = result
            self._terminal(session, pb.SESSION_STATE_DONE)
        outgoing = []
        for message in update.outgoing:
            envelope = pb.ProtocolMessage(
                session_id=session.session_id,
                sender=session.start.self_party_id,
                recipient=message.recipient,
                round=message.round,
                seq=session.next_seq,
                payload=message.payload,
            )
            session.next_seq += 1
            self._keyring.sign(envelope)
            outgoing.append(envelope)
        return outgoing

    def public_result(self, session: Answering) -> pb.SessionResult | None:
        if isinstance(session, FinishedSession):
            return session.public_result()
        if session.state != pb.SESSION_STATE_DONE or session.result is None:
            return None
        r = session.result
        if session.kind in convert.KEY_RESULT_KINDS:
            return pb.SessionResult(dkg=convert.dkg_result(r, session.start))
        if session.kind == epb.SESSION_KIND_SIGN:
            return pb.SessionResult(sign=convert.sign_result(r, session.signature_encoding))
        return pb.SessionResult(
            presign=pb.PresignResult(
                key_id=r.key_id,
                presignature_id=r.presignature_id,
                derivation_path=session.start.derivation_path,
                presignature_ids=[b.id for b in r.sealed_presignatures],
            )
        )


def claims_with_presignature(start: epb.SessionStart) -> bool:
    """A signing start that names a stored presignature (or FROST nonce) has its id claimed by
    the `prepare` hook, in the transaction that consumes the presignature (`Store.
    claim_and_consume`): one durable commit instead of two on the one-call signing path. The
    registry refuses to send such a start unless `prepare` set `HostSession.claimed`."""
    return start.kind == epb.SESSION_KIND_SIGN and bool(start.presignature_id)


def _finished_refusal(session: Answering) -> str:
    return "the session has already finished" + (
        f" ({session.reason})" if session.state == pb.SESSION_STATE_FAILED else ""
    )
