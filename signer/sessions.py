"""Session registry of the host: who started what, its state, and the HMAC'd messages it emits.

The host holds no secret session state: the enclave does. Here a session is its id, kind, the
fingerprint of its start request (for idempotent starts), its state, its result, and the
sequence counter of this node's outgoing messages. Requests for one session are serialized
(one enclave call at a time per session); different sessions run concurrently.

Results that carry sealed blobs (a DKG's key share, a presignature) are handed to `persist`
before the session reports DONE; without a `persist` such a session fails rather than report a
key that is stored nowhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from enclave.transport.client import EnclaveClient, EnclaveTimeout, EnclaveUnavailable
from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.api import convert
from signer.auth.envelope import HmacKeyRing
from signer.auth.replay import SequenceGuard
from signer.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

log = logging.getLogger(__name__)


@dataclass
class Session:
    session_id: str
    kind: int  # enclave_pb2.SessionKind
    start: epb.SessionStart = field(repr=False)
    fingerprint: bytes = field(repr=False)
    deadline: float
    signature_encoding: int = pb.SIGNATURE_ENCODING_UNSPECIFIED
    state: int = pb.SESSION_STATE_RUNNING
    first_outgoing: list[pb.ProtocolMessage] = field(default_factory=list, repr=False)
    result: epb.SessionResult | None = field(default=None, repr=False)
    culprits: list[str] = field(default_factory=list)
    reason: str = ""
    next_seq: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def finished(self) -> bool:
        return self.state != pb.SESSION_STATE_RUNNING

    def failure(self) -> pb.SessionFailure | None:
        if self.state != pb.SESSION_STATE_FAILED:
            return None
        return pb.SessionFailure(culprits=self.culprits, reason=self.reason)


Persist = Callable[[Session, epb.SessionResult], Awaitable[None]]


class Sessions:
    def __init__(
        self,
        enclave: EnclaveClient,
        keyring: HmacKeyRing,
        guard: SequenceGuard,
        *,
        deadline_seconds: float,
        max_concurrent: int,
        persist: Persist | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enclave = enclave
        self._keyring = keyring
        self._guard = guard
        self._deadline = deadline_seconds
        self._max = max_concurrent
        self._persist = persist
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def _running(self) -> int:
        return sum(1 for s in self._sessions.values() if not s.finished)

    async def start(
        self, start: epb.SessionStart, fingerprint: bytes, signature_encoding: int = 0
    ) -> tuple[Session, list[pb.ProtocolMessage]]:
        existing = self._sessions.get(start.session_id)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise AlreadyExists("session_id is already in use by a different request")
            async with existing.lock:  # a concurrent identical start may still be talking to the enclave
                if self._sessions.get(start.session_id) is not existing:
                    raise Unavailable("a concurrent start of this session failed; retry")
                return existing, existing.first_outgoing
        if self._running() >= self._max:
            raise ResourceExhausted("too many sessions are running; retry later")
        start.timeout_ms = int(self._deadline * 1000)
        session = Session(
            session_id=start.session_id,
            kind=start.kind,
            start=start,
            fingerprint=fingerprint,
            deadline=self._clock() + self._deadline,
            signature_encoding=signature_encoding,
        )
        self._sessions[session.session_id] = session
        try:
            async with session.lock:
                update = await self._enclave.session_start(start)
                outgoing = await self._apply(session, update)
                session.first_outgoing = outgoing
        except BaseException:
            # Nothing started: the id stays free for a retry.
            if self._sessions.get(session.session_id) is session:
                del self._sessions[session.session_id]
            raise
        return session, outgoing

    def get(self, session_id: str, kind: int) -> Session:
        session = self._sessions.get(session_id)
        if session is None or session.kind != kind:
            raise NotFound("unknown session")
        self._check_deadline(session)
        return session

    async def submit(self, messages: Sequence[pb.ProtocolMessage]) -> tuple[Session, list[pb.ProtocolMessage]]:
        session_id = convert.submitted_session(messages)
        # Authenticity first, all or nothing; no field is interpreted before it verifies.
        self._keyring.verify_all(messages)
        session = self._sessions.get(session_id)
        if session is None:
            # Freshness is enforced on every authenticated message, routable or not.
            self._guard.accept(messages)
            raise NotFound("unknown session")
        async with session.lock:
            self._check_deadline(session)
            if session.finished:
                raise FailedPrecondition("the session has already finished")
            parties = set(session.start.party_ids)
            me = session.start.self_party_id
            for index, message in enumerate(messages):
                if message.sender not in parties or message.sender == me:
                    raise InvalidArgument(f"messages[{index}]: sender is not another party of the session")
                if message.recipient not in ("", me):
                    raise InvalidArgument(f"messages[{index}]: recipient is not this node")
            self._guard.accept(messages)
            deliver = epb.SessionDeliver(session_id=session_id, messages=convert.to_enclave_messages(messages))
            try:
                update = await self._enclave.session_deliver(deliver)
            except (EnclaveUnavailable, EnclaveTimeout):
                # The enclave lost or may have lost the session's secrets: it cannot continue.
                self._fail(session, "the enclave became unavailable during the session")
                raise
            return session, await self._apply(session, update)

    def _check_deadline(self, session: Session) -> None:
        if not session.finished and self._clock() > session.deadline:
            self._fail(session, "session deadline exceeded")
            task = asyncio.ensure_future(self._enclave.session_abort(session.session_id, "deadline exceeded"))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _fail(self, session: Session, reason: str, culprits: Sequence[str] = ()) -> None:
        session.state = pb.SESSION_STATE_FAILED
        session.reason = reason
        session.culprits = list(culprits)
        self._guard.forget_session(session.session_id)

    async def _apply(self, session: Session, update: epb.SessionUpdate) -> list[pb.ProtocolMessage]:
        state = convert.STATES.get(update.state)
        if update.session_id != session.session_id or state is None:
            self._fail(session, "the enclave answered for another session or with no state")
            return []
        if state == pb.SESSION_STATE_FAILED:
            self._fail(session, update.reason or "the session failed", update.culprits)
        elif state == pb.SESSION_STATE_DONE:
            result = update.result
            if result.HasField("sealed_share") or len(result.sealed_presignatures) > 0:
                if self._persist is None:
                    self._fail(session, "no key store is configured to keep the sealed result")
                    return []
                await self._persist(session, result)
            session.result = result
            session.state = pb.SESSION_STATE_DONE
            self._guard.forget_session(session.session_id)
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

    def public_result(self, session: Session) -> pb.SessionResult | None:
        if session.state != pb.SESSION_STATE_DONE or session.result is None:
            return None
        r = session.result
        if session.kind == epb.SESSION_KIND_DKG:
            return pb.SessionResult(
                dkg=pb.DKGResult(
                    key_id=r.key_id,
                    public_key=r.public_key,
                    chain_code=r.chain_code,
                    protocol=convert.PUBLIC_PROTOCOLS[session.start.protocol],
                    threshold=session.start.threshold,
                    party_ids=session.start.party_ids,
                )
            )
        if session.kind == epb.SESSION_KIND_SIGN:
            return pb.SessionResult(sign=convert.sign_result(r, session.signature_encoding))
        presignature_id = r.sealed_presignatures[0].id if r.sealed_presignatures else ""
        return pb.SessionResult(presign=pb.PresignResult(key_id=r.key_id, presignature_id=presignature_id))
