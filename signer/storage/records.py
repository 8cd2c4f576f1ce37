"""What the store holds. Records are validated on construction so a backend never writes junk.

Sealed blobs are opaque here: the host cannot read them and does not try.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from signer.storage.errors import InvalidRecord

KEY_ID_RE = re.compile(r"[0-9a-f]{64}")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HEX_RE = re.compile(r"(?:[0-9a-f]{2}){1,128}")

Operation = Literal["dkg", "sign", "presign", "refresh", "reshare", "repair", "import", "export", "retire"]
OPERATIONS: frozenset[str] = frozenset(
    {"dkg", "sign", "presign", "refresh", "reshare", "repair", "import", "export", "retire"}
)
Result = Literal["ok", "failed"]
PresigState = Literal["available", "consumed"]
KeyState = Literal["active", "retired"]
KEY_STATES: frozenset[str] = frozenset({"active", "retired"})
# What a presignature destroyed by its key's retirement records as its consumer: the id stays
# (a tombstone, so no backup can bring it back), the sealed blob is erased.
RETIRED_BY = "key-retired"


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        raise InvalidRecord("key id must be 64 lowercase hex characters")
    return key_id


PREPARAMS_ID_RE = re.compile(r"[0-9a-f]{32}")


def check_preparams_id(preparams_id: str) -> str:
    if not isinstance(preparams_id, str) or not PREPARAMS_ID_RE.fullmatch(preparams_id):
        raise InvalidRecord("pre-parameter id must be 32 lowercase hex characters")
    return preparams_id


def _check_token(name: str, value: str) -> None:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise InvalidRecord(f"{name} must be a short lowercase token")


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidRecord(f"{name} must be 1..128 characters of [A-Za-z0-9._:-]")


def _party_set(name: str, ids: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    ids = tuple(ids)
    if not ids or any(type(i) is not int or i < 0 for i in ids):
        raise InvalidRecord(f"{name} must be a non-empty list of non-negative integers")
    if len(set(ids)) != len(ids):
        raise InvalidRecord(f"{name} has duplicates")
    return tuple(sorted(ids))


def encode_party_set(ids: tuple[int, ...]) -> str:
    """Canonical text form, so equal sets compare equal in SQL."""
    return json.dumps(list(ids), separators=(",", ":"))


def decode_party_set(text: str) -> tuple[int, ...]:
    return tuple(int(i) for i in json.loads(text))


def utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise InvalidRecord("timestamps must be timezone-aware")
    return t.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _names(names: tuple[str, ...] | list[str], count: int, self_name: str) -> tuple[str, ...]:
    """The ordered party names of a key: none (a record written before names were kept), or one
    per party number, distinct, with this node's among them."""
    names = tuple(names)
    if not names:
        if self_name:
            raise InvalidRecord("self_name needs party_names")
        return names
    for n in names:
        _check_id("party name", n)
    if len(set(names)) != len(names) or len(names) != count:
        raise InvalidRecord("party_names must be distinct, one per party")
    if self_name not in names:
        raise InvalidRecord("self_name must be one of party_names")
    return names


@dataclass(frozen=True)
class KeyRecord:
    """One party's share of one key. `created_at` is set by the store on first write.

    An ACTIVE key holds its sealed share. A RETIRED key keeps its public record (identity,
    lineage, retirement time) and holds no share: `sealed_share` is empty. `party_names` are
    the key generation's ordered party ids and `self_name` this node's; both are empty for a
    record stored before the names were kept (schema 4 and older). `predecessor_key_id` names
    the key a refresh or reshare made this one from ("" for a key generation).
    """

    key_id: str
    protocol: str
    party_id: int
    threshold: int
    party_ids: tuple[int, ...]
    public_key: bytes
    chain_code: bytes
    sealer_kind: str
    sealed_share: bytes = field(repr=False)
    created_at: datetime | None = None
    party_names: tuple[str, ...] = ()
    self_name: str = ""
    predecessor_key_id: str = ""
    state: KeyState = "active"
    retired_at: datetime | None = None

    def __post_init__(self) -> None:
        self._check_identity()
        object.__setattr__(self, "party_names", _names(self.party_names, len(self.party_ids), self.self_name))
        if self.predecessor_key_id:
            check_key_id(self.predecessor_key_id)
            if self.predecessor_key_id == self.key_id:
                raise InvalidRecord("a key cannot be its own predecessor")
        if self.state not in KEY_STATES:
            raise InvalidRecord("state must be active or retired")
        if self.state == "active" and (not self.sealed_share or self.retired_at is not None):
            raise InvalidRecord("an active key needs its sealed share and no retirement time")
        if self.state == "retired" and (self.sealed_share or self.retired_at is None):
            raise InvalidRecord("a retired key holds no sealed share and records when it was retired")
        for name in ("created_at", "retired_at"):
            t = getattr(self, name)
            if t is not None:
                object.__setattr__(self, name, utc(t))

    def _check_identity(self) -> None:
        check_key_id(self.key_id)
        _check_token("protocol", self.protocol)
        _check_token("sealer kind", self.sealer_kind)
        ids = _party_set("party_ids", self.party_ids)
        object.__setattr__(self, "party_ids", ids)
        if type(self.party_id) is not int or self.party_id not in ids:
            raise InvalidRecord("party_id must be one of party_ids")
        if type(self.threshold) is not int or not 1 <= self.threshold <= len(ids):
            raise InvalidRecord("threshold must be between 1 and the number of parties")
        for name in ("public_key", "chain_code", "sealed_share"):
            if not isinstance(getattr(self, name), bytes):
                raise InvalidRecord(f"{name} must be bytes")
        if not self.public_key:
            raise InvalidRecord("public_key must not be empty")

    @property
    def retired(self) -> bool:
        return self.state == "retired"

    def same_content(self, other: KeyRecord) -> bool:
        """Equal in everything but the store-assigned creation time."""
        return replace(self, created_at=None) == replace(other, created_at=None)

    def same_identity(self, other: KeyRecord) -> bool:
        """The same key and party, whatever its state: equal in everything but creation time,
        state, retirement time and sealed share."""
        strip = {"created_at": None, "state": "active", "retired_at": None, "sealed_share": b"-"}
        return replace(self, **strip) == replace(other, **strip)  # type: ignore[arg-type]

    def retire(self, at: datetime) -> KeyRecord:
        """This record as retirement leaves it: no share, RETIRED at `at`."""
        return replace(self, state="retired", retired_at=at, sealed_share=b"")


@dataclass(frozen=True)
class StoredPresignature:
    """A sealed GG20 presignature for one key and one signer set; single use."""

    presig_id: str
    key_id: str
    signer_set: tuple[int, ...]
    sealer_kind: str
    sealed: bytes = field(repr=False)
    state: PresigState = "available"
    created_at: datetime | None = None
    consumed_at: datetime | None = None
    consumed_by: str | None = None

    def __post_init__(self) -> None:
        _check_id("presig_id", self.presig_id)
        check_key_id(self.key_id)
        object.__setattr__(self, "signer_set", _party_set("signer_set", self.signer_set))
        _check_token("sealer kind", self.sealer_kind)
        if not isinstance(self.sealed, bytes):
            raise InvalidRecord("sealed must be bytes")
        if self.state not in ("available", "consumed"):
            raise InvalidRecord("state must be available or consumed")
        if self.state == "available" and not self.sealed:
            raise InvalidRecord("an available presignature needs its sealed blob")
        for name in ("created_at", "consumed_at"):
            t = getattr(self, name)
            if t is not None:
                object.__setattr__(self, name, utc(t))

    def same_content(self, other: StoredPresignature) -> bool:
        return (self.presig_id, self.key_id, self.signer_set, self.sealer_kind, self.sealed) == (
            other.presig_id,
            other.key_id,
            other.signer_set,
            other.sealer_kind,
            other.sealed,
        )


@dataclass(frozen=True)
class AuditRecord:
    """One operation's outcome. `id` and `time` are assigned by the store when appended."""

    operation: Operation
    caller: str
    session_id: str
    result: Result
    key_id: str | None = None
    digest: str | None = None  # hex of the signed digest, if any
    culprits: tuple[int, ...] = ()
    reason: str = ""
    id: int | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise InvalidRecord("unknown audit operation")
        if self.result not in ("ok", "failed"):
            raise InvalidRecord("audit result must be ok or failed")
        if not isinstance(self.caller, str) or len(self.caller) > 512:
            raise InvalidRecord("caller must be a string of at most 512 characters")
        if not isinstance(self.session_id, str) or len(self.session_id) > 256:
            raise InvalidRecord("session_id must be a string of at most 256 characters")
        if self.key_id is not None:
            check_key_id(self.key_id)
        if self.digest is not None and not _HEX_RE.fullmatch(self.digest):
            raise InvalidRecord("digest must be lowercase hex")
        culprits = tuple(self.culprits)
        if any(type(c) is not int or c < 0 for c in culprits):
            raise InvalidRecord("culprits must be party ids")
        object.__setattr__(self, "culprits", tuple(sorted(set(culprits))))
        if not isinstance(self.reason, str) or len(self.reason) > 2048:
            raise InvalidRecord("reason must be a string of at most 2048 characters")
        if self.time is not None:
            object.__setattr__(self, "time", utc(self.time))


@dataclass(frozen=True)
class AuditQuery:
    key_id: str | None = None
    operation: Operation | None = None
    since: datetime | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if self.key_id is not None:
            check_key_id(self.key_id)
        if self.operation is not None and self.operation not in OPERATIONS:
            raise InvalidRecord("unknown audit operation")
        if self.since is not None:
            object.__setattr__(self, "since", utc(self.since))
        if type(self.limit) is not int or not 1 <= self.limit <= 10_000:
            raise InvalidRecord("limit must be between 1 and 10000")


@dataclass(frozen=True)
class Snapshot:
    """A consistent view of every key and every available presignature (for backups)."""

    keys: tuple[KeyRecord, ...]
    presignatures: tuple[StoredPresignature, ...]


@dataclass(frozen=True)
class ImportReport:
    keys_imported: tuple[str, ...] = ()
    keys_skipped: tuple[str, ...] = ()  # already present with identical content
    presignatures_imported: int = 0
    presignatures_skipped: int = 0  # already present (identical, or consumed: never revived)
    presignatures_not_restored: int = 0  # in the file, left out because restoring them was not asked for
    keys_revived: tuple[str, ...] = ()  # retired here, restored ACTIVE from the backup because the operator named them
    keys_left_active: tuple[str, ...] = ()  # retired in the backup, active here: an import never retires a key


@dataclass(frozen=True)
class KeyQuery:
    """One page of keys in key id order: those after `after`, of `protocol` and `state` if given."""

    page_size: int
    after: str = ""
    protocol: str | None = None
    state: KeyState | None = None

    def __post_init__(self) -> None:
        if type(self.page_size) is not int or not 1 <= self.page_size <= 10_000:
            raise InvalidRecord("page_size must be between 1 and 10000")
        if self.after:
            check_key_id(self.after)
        if self.protocol is not None:
            _check_token("protocol", self.protocol)
        if self.state is not None and self.state not in KEY_STATES:
            raise InvalidRecord("state must be active or retired")


@dataclass(frozen=True)
class KeyPage:
    """One page of `Store.list_keys_page`: keys in key id order, and the id to continue after
    ("" on the last page)."""

    keys: tuple[KeyRecord, ...]
    next_after: str
