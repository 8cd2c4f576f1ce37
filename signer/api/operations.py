"""What the API adds around sessions that needs the store: key lookup and signer-set checks before
a signing, presigning, refresh, reshare or repair session starts, durable presignature consumption,
durable storage of a key generation's, a refresh's, a reshare's or a repair's sealed share and of
presignatures before a session reports DONE, and one audit record per finished operation.

A repair's repaired party stores its rebuilt share under the key's own id, in a store that held
no record of the key (signer.api.repair); a helper stores nothing.

A dealer that leaves the key in a reshare finishes DONE with no share: it records nothing of the
successor (no key record: GetKey of the successor is NOT_FOUND there, as on any node that is not
one of its parties), and its source key stays ACTIVE, signing with the old parties, until the
relay retires it; the audit record says so.

Party numbers. The store keeps party sets as integers; the public API names parties with
strings. A party's number is the first 31 bits of SHA-256("mpc-signer/party-id/v1" || id): a
pure function of the id, so a stored key's party set can be checked against the names in a later
request (keys stored before schema 5 have no names; since then the DKG's names are kept too, for
GetKey). Key generation refuses a party list whose numbers collide, so within one key the mapping
is one-to-one. The enclave remains the authority on the
exact party list of a share (its sealed share binds it); the host check only rejects bad requests
early with a precise status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.api.parties import check_distinct_numbers, party_number, party_numbers
from signer.api.repair import check_helper, check_repaired
from signer.api.reshare import check_without_record, fill_from_record
from signer.auth.interceptor import current_caller
from signer.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from signer.link.client import EnclaveRequestError
from signer.policy.approvals import signed_digest
from signer.sessions import convert
from signer.sessions.quotas import CallerId
from signer.sessions.registry import USED_SESSION_ID, HostSession
from signer.storage import (
    AuditRecord,
    KeyNotFound,
    KeyRecord,
    PresignatureUnavailable,
    Store,
    StoredPresignature,
    StoreUnavailable,
)

__all__ = ["Operations", "check_distinct_numbers", "party_number", "party_numbers"]

log = logging.getLogger(__name__)

KEY_CACHE_SIZE = 1024
KEY_CACHE_SECONDS = 2.0

AUDIT_OPERATIONS: dict[int, str] = {
    epb.SESSION_KIND_DKG: "dkg",
    epb.SESSION_KIND_SIGN: "sign",
    epb.SESSION_KIND_PRESIGN: "presign",
    epb.SESSION_KIND_REFRESH: "refresh",
    epb.SESSION_KIND_RESHARE: "reshare",
    epb.SESSION_KIND_REPAIR: "repair",
}


def audit_digest(start: epb.SessionStart) -> str:
    """What an audit record names as the signed digest: the one a policy approval covers
    (`approvals.signed_digest`: for GG20 the 32-byte digest made from the message by its hash
    rule, as the enclave makes it; for FROST SHA-256 of the message, whose message may be up to
    64 KiB, and for Taproot under a script tree the tagged hash of root and message)."""
    return signed_digest(start)[1].hex()


def caller_name() -> str:
    caller = current_caller()
    if caller is None:
        return ""
    if caller.claims is not None:
        return f"{caller.identity} (sub={caller.claims.subject})"
    return caller.identity


def caller_id() -> CallerId | None:
    """Who the call's sessions count against (signer.sessions.quotas): certificate identity, token subject."""
    caller = current_caller()
    if caller is None:
        return None
    return CallerId(caller.identity, caller.claims.subject if caller.claims is not None else "")


class AuditBatcher:
    """Group commit of audit records: `append` waits until its record is committed, and records
    that arrive while a batch is being written go into the next one, so a busy node pays one
    commit (one fsync on SQLite) per batch instead of one per operation."""

    MAX_BATCH = 512

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[AuditRecord, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, record: AuditRecord) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            try:
                await self._store.append_audits([record for record, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


class Operations:
    """Store-backed hooks for `signer.sessions.registry.Sessions` and the servicer, over the
    store the server opened before building them."""

    def __init__(
        self,
        store: Store,
        approve: Callable[[epb.SessionStart], Awaitable[None]] | None = None,
        burned: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        # Counts single-use items the enclave refused as sealed in an earlier boot (metrics).
        self.burned = burned or (lambda _kind, _count: None)
        # The signing policy (signer/policy/approvals.py), when configured: runs for every SIGN.
        self._approve = approve
        self._audit = AuditBatcher(store)
        # Key records change once at most (retirement; an operator's revival from a backup is
        # offline), so signing skips the store's thread for keys it has seen recently. A
        # retirement through this process evicts its entry; one through another instance on the
        # same PostgreSQL database is seen within KEY_CACHE_SECONDS. Bounded, least recently used out.
        self._keys: OrderedDict[str, tuple[float, KeyRecord]] = OrderedDict()
        self._clock = clock
        # Keys a RetireKey of this process is retiring: no session may start with them meanwhile.
        self.retiring: set[str] = set()

    def store(self) -> Store:
        return self._store

    def forget_key(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    async def key_record(self, key_id: str) -> KeyRecord:
        """The key as the store holds it now (not the cache: a validation must see the store),
        retired or not."""
        try:
            return await self.store().get_key(key_id)
        except KeyNotFound:
            raise NotFound(f"key {key_id} is not known on this node") from None
        except StoreUnavailable:
            raise Unavailable("the key store is unavailable; retry") from None

    async def _key(self, start: epb.SessionStart) -> KeyRecord:
        if start.key_id in self.retiring:
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        now = self._clock()
        cached = self._keys.get(start.key_id)
        if cached is None or now - cached[0] > KEY_CACHE_SECONDS:
            try:
                key = await self.store().get_key(start.key_id)
            except KeyNotFound:
                raise NotFound(f"key {start.key_id} is not known on this node") from None
            except StoreUnavailable:
                raise Unavailable("the key store is unavailable; retry") from None
            if start.key_id in self.retiring:  # began while the store was read
                raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
            self._keys[key.key_id] = (now, key)
            self._keys.move_to_end(key.key_id)
            if len(self._keys) > KEY_CACHE_SIZE:
                self._keys.popitem(last=False)
        else:
            key = cached[1]
            self._keys.move_to_end(start.key_id)
        refuse_retired(key)
        if key.protocol != PROTOCOL_NAMES[start.protocol]:
            raise InvalidArgument(f"protocol does not match key {start.key_id} ({key.protocol})")
        signers = party_numbers(start.party_ids)
        if not set(signers) <= set(key.party_ids):
            raise InvalidArgument("party_ids must be parties of the key")
        if party_number(start.self_party_id) != key.party_id:
            raise InvalidArgument("self_party_id is not this node's party in the key")
        if len(signers) < key.threshold:
            raise InvalidArgument(f"party_ids must list at least the key's threshold ({key.threshold}) of parties")
        return key

    async def prepare_sign(self, session: HostSession) -> None:
        start = session.start
        key = await self._key(start)
        if self._approve is not None:
            if start.presignature_id:
                # The id is claimed only with the presignature, below: a used one is refused
                # before the policy is asked (the claim below stays the final word).
                await self._refuse_used_id(start.session_id)
            # After the key check (no policy request for keys this node lacks), before a
            # presignature is consumed (a refusal must not burn one).
            await self._approve(start)
        start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )
        if not start.presignature_id:
            # Without a named presignature, presigning and signing run in this one session (FROST:
            # two rounds). None is picked from the pool: a presignature is bound to its derivation
            # path (which the store does not record) and an approval names the one it is for.
            return
        # Consumed durably before the enclave sees it: a presignature is never used twice, even
        # if this process dies right after (it is then lost, which is safe). The session id is
        # claimed in the same transaction (the registry left the claim to this hook): one
        # durable commit for both, and a refusal of either leaves neither.
        try:
            presig = await self.store().claim_and_consume(
                start.session_id, "sign", key.key_id, party_numbers(start.party_ids), start.presignature_id
            )
        except PresignatureUnavailable:
            raise FailedPrecondition(
                f"presignature {start.presignature_id} is not available for this key and signer set "
                "(unknown, already used, or for another key or signer set)"
            ) from None
        except StoreUnavailable:
            raise Unavailable("the key store is unavailable; retry") from None
        if presig is None:
            raise AlreadyExists(USED_SESSION_ID)
        session.claimed = True
        start.sealed_blobs.append(
            epb.SealedBlob(kind=convert.presignature_kind(start.protocol), id=presig.presig_id, data=presig.sealed)
        )

    async def _refuse_used_id(self, session_id: str) -> None:
        try:
            used = await self.store().session_id_used(session_id)
        except StoreUnavailable:
            raise Unavailable("the key store is unavailable; retry") from None
        if used:
            raise AlreadyExists(USED_SESSION_ID)

    async def prepare_presign(self, session: HostSession) -> None:
        key = await self._key(session.start)
        session.start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )

    async def prepare_refresh(self, session: HostSession) -> None:
        """The source key of a refresh, checked against the request before the enclave sees it;
        its sealed share and threshold go into the start."""
        start = session.start
        if start.key_id in self.retiring:
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        key = await self.key_record(start.key_id)
        if start.key_id in self.retiring:  # began while the store was read
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        refuse_retired(key)
        check_refresh_matches(start, key)
        start.threshold = key.threshold
        start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )

    async def prepare_reshare(self, session: HostSession) -> None:
        """The source key of a reshare as this node records it (signer.api.reshare): a dealer's
        sealed share goes into the start, a record fills and checks the source's description, and
        a node with no record must be new to the key. Nothing reaches the enclave before this."""
        start = session.start
        if start.key_id in self.retiring:
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        check_distinct_numbers(start.party_ids)
        try:
            key: KeyRecord | None = await self.key_record(start.key_id)
        except NotFound:
            key = None
        if key is None:
            if start.self_party_id in start.source_signers:
                raise NotFound(
                    f"key {start.key_id} is not known on this node, which is one of source_signers (a dealer needs "
                    "its share of the source key)"
                )
            check_without_record(start)
            return
        if start.key_id in self.retiring:  # began while the store was read
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        refuse_retired(key)
        fill_from_record(start, key)
        if start.self_party_id in start.source_signers:
            if self._approve is not None:
                # A dealer hands the new parties its share's worth: with a policy configured, the
                # policy service decides (the enclave refuses to deal without its approval).
                await self._approve(start)
            start.sealed_blobs.append(
                epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
            )

    async def prepare_repair(self, session: HostSession) -> None:
        """A FROST repair's key as this node records it (signer.api.repair): a helper's record
        checks the start and its sealed share goes in; the repaired party's node must hold no
        record. Nothing reaches the enclave before this."""
        start = session.start
        if start.key_id in self.retiring:
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        check_distinct_numbers(start.party_ids)
        try:
            key: KeyRecord | None = await self.key_record(start.key_id)
        except NotFound:
            key = None
        if start.self_party_id == start.repair_party_id:
            check_repaired(start, key)
            return
        if key is None:
            raise NotFound(
                f"key {start.key_id} is not known on this node, which is one of helpers (a helper needs its share)"
            )
        if start.key_id in self.retiring:  # began while the store was read
            raise FailedPrecondition(f"key {start.key_id} is being retired on this node")
        refuse_retired(key)
        check_helper(start, key)
        if self._approve is not None:
            # The repaired share goes to whoever holds repair_party_key: the policy decides who.
            await self._approve(start)
        start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )

    async def persist(self, session: HostSession, result: epb.SessionResult) -> None:
        start = session.start
        store = self.store()
        if session.kind in convert.KEY_RESULT_KINDS:
            predecessor = ""
            if session.kind == epb.SESSION_KIND_REPAIR:
                # The rebuilt share is of the key this node asked about, and only its party gets one.
                if result.key_id != start.key_id or start.self_party_id != start.repair_party_id:
                    raise ValueError("the enclave's repair result is for another key or party")
            elif session.kind != epb.SESSION_KIND_DKG:
                # The enclave names the source it refreshed or reshared; it must be the key this
                # node asked for, and the new key a new id.
                if result.predecessor_key_id != start.key_id or result.key_id == start.key_id:
                    raise ValueError("the enclave's result names another source key")
                if start.self_party_id not in start.party_ids:
                    raise ValueError("the enclave returned a share to a party that leaves the key")
                predecessor = start.key_id
            share = result.sealed_share
            # One insert, one transaction: the record is complete or absent, never half-written.
            await store.put_key(
                KeyRecord(
                    key_id=result.key_id,
                    protocol=PROTOCOL_NAMES[start.protocol],
                    party_id=party_number(start.self_party_id),
                    threshold=start.threshold,
                    party_ids=party_numbers(start.party_ids),
                    public_key=result.public_key,
                    chain_code=result.chain_code,
                    sealer_kind=share.sealer_kind,
                    sealed_share=share.data,
                    party_names=tuple(start.party_ids),
                    self_name=start.self_party_id,
                    predecessor_key_id=predecessor,
                )
            )
            return
        # One transaction for the batch (a FROST presigning session makes up to 100 nonces):
        # one commit, and none of them is stored unless all are.
        signers = party_numbers(start.party_ids)
        await store.put_presignatures(
            [
                StoredPresignature(
                    presig_id=blob.id,
                    key_id=start.key_id,
                    signer_set=signers,
                    sealer_kind=blob.sealer_kind,
                    sealed=blob.data,
                )
                for blob in result.sealed_presignatures
            ]
        )

    async def audit(self, session: HostSession) -> None:
        start = session.start
        ok = session.state == pb.SESSION_STATE_DONE
        key_id = start.key_id or (session.result.key_id if session.result is not None else "") or None
        reason = session.reason
        if ok and session.kind in (epb.SESSION_KIND_REFRESH, epb.SESSION_KIND_RESHARE) and session.result is not None:
            reason = f"successor {session.result.key_id}"
            if session.start.self_party_id not in session.start.party_ids:
                # A dealer that leaves the set records nothing of the successor; its source key
                # stays ACTIVE until the relay retires it.
                reason += " (this node leaves the key: no share stored)"
        if session.kind == epb.SESSION_KIND_REPAIR:
            r = session.start.repair_party_id
            if not ok:
                reason = f"repair of {r}: {reason}"
            elif session.start.self_party_id == r:
                reason = "share rebuilt and stored"
            else:
                reason = f"helped rebuild the share of {r}"
        if session.culprits:
            reason = f"{reason} (culprits: {', '.join(session.culprits)})"
        await self._audit.append(
            AuditRecord(
                operation=AUDIT_OPERATIONS[session.kind],  # type: ignore[arg-type]
                caller=session.caller[:512],
                session_id=session.session_id,
                result="ok" if ok else "failed",
                key_id=key_id,
                digest=audit_digest(start) if session.kind == epb.SESSION_KIND_SIGN else None,
                culprits=party_numbers([c for c in session.culprits if c]),
                reason=reason[:2048],
            )
        )

    async def audit_refused_start(self, start: epb.SessionStart, caller: str, reason: str) -> None:
        """An operation refused before it became a session, for reasons worth an audit trail
        (a sealed blob that failed authentication)."""
        try:
            await self.store().append_audit(
                AuditRecord(
                    operation=AUDIT_OPERATIONS[start.kind],  # type: ignore[arg-type]
                    caller=caller[:512],
                    session_id=start.session_id,
                    result="failed",
                    key_id=start.key_id or None,
                    digest=audit_digest(start) if start.kind == epb.SESSION_KIND_SIGN else None,
                    reason=reason[:2048],
                )
            )
        except Exception:
            log.exception("audit record for refused session %s not written", start.session_id)


def check_refresh_matches(start: epb.SessionStart, key: KeyRecord) -> None:
    """A refresh keeps the key's protocol, ordered party set and threshold: the request must
    state them as they are (INVALID_ARGUMENT otherwise, naming what differs)."""
    if key.protocol != PROTOCOL_NAMES[start.protocol]:
        raise InvalidArgument(f"protocol does not match key {key.key_id} ({key.protocol})")
    # The store keeps the numbers as a set; the order is checked on the names (a key stored
    # before names were kept is checked for its order by the enclave, whose share binds it).
    names_differ = bool(key.party_names) and tuple(start.party_ids) != key.party_names
    if names_differ or tuple(sorted(party_numbers(start.party_ids))) != key.party_ids:
        shown = f" ({', '.join(key.party_names)})" if key.party_names else ""
        raise InvalidArgument(
            f"party_ids must be the full party set of key {key.key_id} in its order{shown}: a refresh keeps the parties"
        )
    if party_number(start.self_party_id) != key.party_id:
        raise InvalidArgument("self_party_id is not this node's party in the key")
    if start.threshold and start.threshold != key.threshold:
        raise InvalidArgument(f"threshold must be the key's ({key.threshold}) or 0: a refresh keeps the threshold")


def retired_refusal(key: KeyRecord) -> FailedPrecondition:
    at = key.retired_at.isoformat(timespec="milliseconds") if key.retired_at else "an unknown time"
    return FailedPrecondition(f"key {key.key_id} is retired (at {at}): this node holds no share of it")


def refuse_retired(key: KeyRecord) -> None:
    """FAILED_PRECONDITION for a key retired on this node (its share is gone)."""
    if key.retired:
        raise retired_refusal(key)


def sealed_blob_refusal(exc: EnclaveRequestError, start: epb.SessionStart) -> FailedPrecondition | None:
    if exc.code == epb.ERROR_CODE_SEALED_IN_EARLIER_BOOT:
        # The presignature was consumed in the store before the enclave saw it: it is gone.
        return FailedPrecondition(
            f"presignature {start.presignature_id} was sealed in an earlier enclave boot (the enclave restarted"
            " since) or by another instance's enclave, and can never be used here; it was dropped: make a new"
            " presignature"
        )
    if exc.code != epb.ERROR_CODE_SEALED_BLOB_INVALID:
        return None
    what = "sealed key share"
    if start.presignature_id:
        what = f"sealed key share or presignature {start.presignature_id}"
    return FailedPrecondition(
        f"{what} for key {start.key_id} failed authentication in the enclave (altered, or sealed under "
        "another key or binding); this key cannot sign on this node until its share is restored"
    )
