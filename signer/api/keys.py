"""GetKey, ListKeys and RetireKey: this node's key records, and retirement of its share.

Retirement (README "Keys: lookup and retirement") is one store transaction: the sealed share and
the blobs of the key's unused presignatures are erased, the record becomes RETIRED, and the audit
record is appended with it, so a crash leaves the key either ACTIVE and signing or RETIRED and
audited, never half of each. Before it, this process stops starting sessions with the key
(`Operations.retiring`) and refuses while one is running, so no session this node started ends
after RetireKey answered. The store refuses too when a successor of the key is recorded here and
none of them holds a share (the successor rule, signer.storage.sql.check_retirement).

Page tokens are opaque to callers: base64url of a version byte and the last key id of the page.
They carry no secret and grant nothing (a forged one only moves the listing's start), but one
that does not parse is INVALID_ARGUMENT rather than a silent first page.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from datetime import datetime

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import signer_pb2 as pb
from signer.api.operations import Operations, caller_name
from signer.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from signer.sessions import convert
from signer.storage import (
    AuditRecord,
    KeyNotFound,
    KeyQuery,
    KeyRecord,
    KeyState,
    StoreUnavailable,
    SuccessorNotStored,
)
from signer.storage.sql import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

log = logging.getLogger(__name__)

_TOKEN_VERSION = b"\x01"
_KEY_ID_BYTES = 32
STATES: dict[str, pb.KeyState] = {"active": pb.KEY_STATE_ACTIVE, "retired": pb.KEY_STATE_RETIRED}
_STATE_FILTERS: dict[int, KeyState] = {pb.KEY_STATE_ACTIVE: "active", pb.KEY_STATE_RETIRED: "retired"}
_PUBLIC_BY_TOKEN: dict[str, pb.Protocol] = {
    PROTOCOL_NAMES[enclave]: public for public, enclave in convert.PROTOCOLS.items()
}


def _unix_ms(t: datetime | None) -> int:
    return 0 if t is None else int(t.timestamp() * 1000)


def key_info(key: KeyRecord) -> pb.KeyInfo:
    """The public view of a record; never the sealed share."""
    return pb.KeyInfo(
        key_id=key.key_id,
        protocol=_PUBLIC_BY_TOKEN.get(key.protocol, pb.PROTOCOL_UNSPECIFIED),
        public_key=key.public_key,
        chain_code=key.chain_code,
        threshold=key.threshold,
        party_ids=key.party_names,
        self_party_id=key.self_name,
        state=STATES[key.state],
        created_at_unix_ms=_unix_ms(key.created_at),
        predecessor_key_id=key.predecessor_key_id,
        retired_at_unix_ms=_unix_ms(key.retired_at),
    )


def encode_page_token(last_key_id: str) -> str:
    if not last_key_id:
        return ""
    return base64.urlsafe_b64encode(_TOKEN_VERSION + bytes.fromhex(last_key_id)).rstrip(b"=").decode("ascii")


def decode_page_token(token: str) -> str:
    """The key id a page token continues after ("" for the first page); INVALID_ARGUMENT if it
    is not a token this service issues."""
    if not token:
        return ""
    bad = InvalidArgument("page_token is not a token from ListKeys (pass next_page_token unchanged)")
    if len(token) > 64:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) != 1 + _KEY_ID_BYTES or raw[:1] != _TOKEN_VERSION or encode_page_token(raw[1:].hex()) != token:
        raise bad
    return raw[1:].hex()


def key_query(request: pb.ListKeysRequest) -> KeyQuery:
    if request.page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be at most {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
    protocol: str | None = None
    if request.protocol != pb.PROTOCOL_UNSPECIFIED:
        enclave = convert.PROTOCOLS.get(request.protocol)
        if enclave is None:
            raise InvalidArgument("protocol is not one this node knows")
        protocol = PROTOCOL_NAMES[enclave]
    state: KeyState | None = None
    if request.state != pb.KEY_STATE_UNSPECIFIED:
        if request.state not in _STATE_FILTERS:
            raise InvalidArgument("state must be KEY_STATE_ACTIVE, KEY_STATE_RETIRED or unspecified")
        state = _STATE_FILTERS[request.state]
    return KeyQuery(
        page_size=request.page_size or DEFAULT_PAGE_SIZE,
        after=decode_page_token(request.page_token),
        protocol=protocol,
        state=state,
    )


class KeyDirectory:
    """The three RPCs over `operations` (store, key cache, audit); `running_with_key(key_id)`
    names the sessions of this node running with a key."""

    def __init__(
        self,
        operations: Operations,
        running_with_key: Callable[[str], list[str]],
        retired: Callable[[], None] | None = None,
    ) -> None:
        self._ops = operations
        self._running = running_with_key
        self._retired = retired or (lambda: None)

    async def get_key(self, request: pb.GetKeyRequest) -> pb.GetKeyResponse:
        key = await self._ops.key_record(convert.key_id(request.key_id))
        return pb.GetKeyResponse(key=key_info(key))

    async def list_keys(self, request: pb.ListKeysRequest) -> pb.ListKeysResponse:
        query = key_query(request)
        try:
            page = await self._ops.store().list_keys_page(query)
        except StoreUnavailable:
            raise Unavailable("the key store is unavailable; retry") from None
        return pb.ListKeysResponse(
            keys=[key_info(k) for k in page.keys], next_page_token=encode_page_token(page.next_after)
        )

    async def retire_key(self, request: pb.RetireKeyRequest) -> pb.RetireKeyResponse:
        key_id = convert.key_id(request.key_id)
        caller = caller_name()[:512]
        ops = self._ops
        if key_id in ops.retiring:
            raise FailedPrecondition(f"key {key_id} is being retired by another call; retry")
        ops.retiring.add(key_id)
        try:
            running = self._running(key_id)
            if running:
                refusal = FailedPrecondition(
                    f"key {key_id} is in use by running session(s) {', '.join(running[:8])} on this node; "
                    "retire it once they finish"
                )
                await self._audit_refusal(key_id, caller, str(refusal))
                raise refusal
            audit = AuditRecord(
                operation="retire",
                caller=caller,
                session_id="",
                result="ok",
                key_id=key_id,
                reason="share and unused presignatures destroyed",
            )
            try:
                key, changed = await ops.store().retire_key(key_id, audit)
            except KeyNotFound:
                raise NotFound(f"key {key_id} is not known on this node") from None
            except SuccessorNotStored as exc:
                refusal = FailedPrecondition(
                    f"key {key_id} is not retired: its successor(s) {', '.join(exc.successors)} are recorded on "
                    "this node and none of them holds a share here; retiring it would leave this node without a "
                    "share of the key"
                )
                await self._audit_refusal(key_id, caller, str(refusal))
                raise refusal from None
            except StoreUnavailable:
                raise Unavailable("the key store is unavailable; nothing was retired; retry") from None
            ops.forget_key(key_id)
        finally:
            ops.retiring.discard(key_id)
        if changed:
            self._retired()
            log.info("key %s retired: its share and unused presignatures are destroyed", key_id)
        return pb.RetireKeyResponse(key=key_info(key))

    async def _audit_refusal(self, key_id: str, caller: str, reason: str) -> None:
        try:
            await self._ops.store().append_audit(
                AuditRecord(
                    operation="retire",
                    caller=caller,
                    session_id="",
                    result="failed",
                    key_id=key_id,
                    reason=reason[:2048],
                )
            )
        except Exception:
            log.exception("audit record for the refused retirement of key %s not written", key_id)
