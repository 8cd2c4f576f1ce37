"""The SQL both stores speak: column lists, statements, row mappers, conflict rules, the audit
query and the snapshot import.

The backends differ only where their mechanisms do, and say so when they build their `Sql`: the
parameter placeholder (`?` or `%s`) and how a timestamp is stored (ISO text or timestamptz); the
locking, the transactions and the connection handling stay in `sqlite.py` and `postgres.py`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from signer.storage.errors import (
    InvalidRecord,
    KeyExists,
    PresignatureExists,
    PresignatureUnavailable,
    SuccessorNotStored,
    WouldRevive,
)
from signer.storage.records import (
    AuditQuery,
    AuditRecord,
    ImportReport,
    KeyPage,
    KeyQuery,
    KeyRecord,
    StoredPresignature,
    check_key_id,
    decode_party_set,
    encode_party_set,
)

KEY_COLUMNS = (
    "key_id, protocol, party_id, threshold, party_ids, public_key, chain_code, sealer_kind, sealed_share, created_at,"
    " party_names, self_name, predecessor_key_id, state, retired_at"
)
# ListKeys: page sizes (a page is read in one query, so it is bounded)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PRESIG_COLUMNS = "presig_id, key_id, signer_set, sealer_kind, sealed, state, created_at, consumed_at, consumed_by"
AUDIT_COLUMNS = "id, at, operation, caller, session_id, key_id, digest, result, culprits, reason"
_AUDIT_WRITTEN = "at, operation, caller, session_id, key_id, digest, result, culprits, reason"


class Row(Protocol):
    """A result row addressed by column name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, name: str, /) -> Any: ...


class Sql:
    """The shared statements and mappers, spelled for one backend: `placeholder` marks a
    parameter, `time_in` turns a timestamp into what the database stores, `time_out` back."""

    def __init__(
        self, placeholder: str, time_in: Callable[[datetime], Any], time_out: Callable[[Any], datetime | None]
    ) -> None:
        p = placeholder
        self.placeholder, self.time_in, self.time_out = p, time_in, time_out
        self.schema_version = "SELECT coalesce(max(version), 0) AS v FROM schema_migrations"
        self.record_migration = (
            f"INSERT INTO schema_migrations (version, description, applied_at) VALUES ({self.params(3)})"
        )
        self.get_key = f"SELECT {KEY_COLUMNS} FROM keys WHERE key_id = {p}"
        self.list_keys = f"SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at, key_id"
        self.insert_key = f"INSERT INTO keys ({KEY_COLUMNS}) VALUES ({self.params(15)})"
        self.retire_key = (
            f"UPDATE keys SET state = 'retired', retired_at = {p}, sealed_share = {p}"
            f" WHERE key_id = {p} AND state = 'active'"
        )
        self.revive_key = (
            f"UPDATE keys SET state = 'active', retired_at = NULL, sealed_share = {p}"
            f" WHERE key_id = {p} AND state = 'retired'"
        )
        self.successors = f"SELECT {KEY_COLUMNS} FROM keys WHERE predecessor_key_id = {p} ORDER BY key_id"
        # Erases the blobs of a retired key's unused presignatures; the rows stay as consumed
        # tombstones, so no backup can make them available again.
        self.burn_presigs = (
            f"UPDATE presignatures SET state = 'consumed', consumed_at = {p}, consumed_by = {p}, sealed = {p}"
            f" WHERE key_id = {p} AND state = 'available'"
        )
        self.key_state = f"SELECT state FROM keys WHERE key_id = {p}"
        self.get_presig = f"SELECT {PRESIG_COLUMNS} FROM presignatures WHERE presig_id = {p}"
        # PostgreSQL only (an array parameter): the stored rows among a batch's ids
        self.get_presigs = f"SELECT {PRESIG_COLUMNS} FROM presignatures WHERE presig_id = ANY({p})"
        self.get_presig_by_slot = (
            f"SELECT {PRESIG_COLUMNS} FROM presignatures"
            f" WHERE key_id = {p} AND signer_set = {p} AND state = 'available'"
        )
        self.insert_presig = (
            f"INSERT INTO presignatures ({PRESIG_COLUMNS}) VALUES ({self.params(5)}, 'available', {p}, NULL, NULL)"
        )
        self.put_preparams = (
            f"INSERT INTO preparams (id, sealed, created_at) VALUES ({self.params(3)}) ON CONFLICT (id) DO NOTHING"
        )
        self.count_preparams = "SELECT count(*) AS n FROM preparams"
        self.claim_session_id = (
            f"INSERT INTO session_ids (session_id, kind, started_at) VALUES ({self.params(3)})"
            " ON CONFLICT (session_id) DO NOTHING"
        )
        self.release_session_id = f"DELETE FROM session_ids WHERE session_id = {p}"
        self.session_id_used = f"SELECT 1 FROM session_ids WHERE session_id = {p}"
        self.append_audit = f"INSERT INTO audit ({_AUDIT_WRITTEN}) VALUES ({self.params(9)})"
        self.export_keys = f"SELECT {KEY_COLUMNS} FROM keys ORDER BY key_id"
        self.export_presigs = f"SELECT {PRESIG_COLUMNS} FROM presignatures WHERE state = 'available' ORDER BY presig_id"

    def params(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    # --- values written ---------------------------------------------------------------------

    def key_values(self, key: KeyRecord, created: datetime) -> tuple[Any, ...]:
        """`insert_key`'s parameters."""
        return (
            key.key_id,
            key.protocol,
            key.party_id,
            key.threshold,
            encode_party_set(key.party_ids),
            key.public_key,
            key.chain_code,
            key.sealer_kind,
            key.sealed_share,
            self.time_in(created),
            json.dumps(list(key.party_names), separators=(",", ":")),
            key.self_name,
            key.predecessor_key_id,
            key.state,
            None if key.retired_at is None else self.time_in(key.retired_at),
        )

    def presig_values(self, p: StoredPresignature, created: datetime) -> tuple[Any, ...]:
        """`insert_presig`'s parameters."""
        return (p.presig_id, p.key_id, encode_party_set(p.signer_set), p.sealer_kind, p.sealed, self.time_in(created))

    def audit_values(self, r: AuditRecord, at: datetime) -> tuple[Any, ...]:
        """`append_audit`'s parameters."""
        return (
            self.time_in(at),
            r.operation,
            r.caller,
            r.session_id,
            r.key_id,
            r.digest,
            r.result,
            encode_party_set(r.culprits),
            r.reason,
        )

    # --- rows read --------------------------------------------------------------------------

    def key(self, row: Row) -> KeyRecord:
        return KeyRecord(
            key_id=row["key_id"],
            protocol=row["protocol"],
            party_id=row["party_id"],
            threshold=row["threshold"],
            party_ids=decode_party_set(row["party_ids"]),
            public_key=bytes(row["public_key"]),
            chain_code=bytes(row["chain_code"]),
            sealer_kind=row["sealer_kind"],
            sealed_share=bytes(row["sealed_share"]),
            created_at=self.time_out(row["created_at"]),
            party_names=tuple(json.loads(row["party_names"])),
            self_name=row["self_name"],
            predecessor_key_id=row["predecessor_key_id"],
            state=row["state"],
            retired_at=self.time_out(row["retired_at"]),
        )

    def presig(self, row: Row) -> StoredPresignature:
        return StoredPresignature(
            presig_id=row["presig_id"],
            key_id=row["key_id"],
            signer_set=decode_party_set(row["signer_set"]),
            sealer_kind=row["sealer_kind"],
            sealed=bytes(row["sealed"]),
            state=row["state"],
            created_at=self.time_out(row["created_at"]),
            consumed_at=self.time_out(row["consumed_at"]),
            consumed_by=row["consumed_by"],
        )

    def audit(self, row: Row) -> AuditRecord:
        return AuditRecord(
            id=row["id"],
            time=self.time_out(row["at"]),
            operation=row["operation"],
            caller=row["caller"],
            session_id=row["session_id"],
            key_id=row["key_id"],
            digest=row["digest"],
            result=row["result"],
            culprits=decode_party_set(row["culprits"]),
            reason=row["reason"],
        )

    # --- queries built from arguments -------------------------------------------------------

    def count_available(self, key_id: str, signer_set: tuple[int, ...] | None) -> tuple[str, tuple[str, ...]]:
        p = self.placeholder
        sql = f"SELECT count(*) AS n FROM presignatures WHERE key_id = {p} AND state = 'available'"
        if signer_set is None:
            return sql, (key_id,)
        return sql + f" AND signer_set = {p}", (key_id, encode_party_set(tuple(sorted(signer_set))))

    def list_keys_page(self, query: KeyQuery) -> tuple[str, list[Any]]:
        """The SELECT for one page of `query` (key id order; one row more than the page, to know
        whether another follows) and its parameters."""
        p = self.placeholder
        where: list[str] = []
        args: list[Any] = []
        if query.after:
            where.append(f"key_id > {p}")
            args.append(query.after)
        if query.protocol is not None:
            where.append(f"protocol = {p}")
            args.append(query.protocol)
        if query.state is not None:
            where.append(f"state = {p}")
            args.append(query.state)
        sql = f"SELECT {KEY_COLUMNS} FROM keys"
        if where:
            sql += " WHERE " + " AND ".join(where)
        args.append(query.page_size + 1)
        return sql + f" ORDER BY key_id LIMIT {p}", args

    def query_audit(self, query: AuditQuery) -> tuple[str, list[Any]]:
        """The SELECT for `query` (newest first) and its parameters."""
        p = self.placeholder
        where: list[str] = []
        args: list[Any] = []
        if query.key_id is not None:
            where.append(f"key_id = {p}")
            args.append(query.key_id)
        if query.operation is not None:
            where.append(f"operation = {p}")
            args.append(query.operation)
        if query.since is not None:
            where.append(f"at >= {p}")
            args.append(self.time_in(query.since))
        sql = f"SELECT {AUDIT_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        args.append(query.limit)
        return sql + f" ORDER BY id DESC LIMIT {p}", args


# --- rules both backends apply ----------------------------------------------------------------


def consume_target(key_id: str, signer_set: Sequence[int], session_id: str) -> str:
    """Check `consume_presignature`'s arguments; the signer set in its stored form."""
    check_key_id(key_id)
    if not session_id:
        raise ValueError("session_id is required")
    return encode_party_set(tuple(sorted(signer_set)))


def unavailable(key_id: str, sset: str, presig_id: str | None) -> PresignatureUnavailable:
    which = f"presignature {presig_id}" if presig_id else "presignature"
    return PresignatureUnavailable(f"no available {which} for key {key_id} and signers {sset}")


def settle_key(new: KeyRecord, stored: KeyRecord, inserted: bool) -> KeyRecord:
    """A key id is written once: an identical repeat returns the stored record, different content
    under the same id is KeyExists."""
    if not inserted and not stored.same_content(new):
        raise KeyExists(new.key_id)
    return stored


def key_page(rows: Sequence[KeyRecord], page_size: int) -> KeyPage:
    """A page from `list_keys_page`'s rows (one more than the page when another page follows)."""
    keys = tuple(rows[:page_size])
    return KeyPage(keys, keys[-1].key_id if len(rows) > page_size else "")


def check_retirement(key: KeyRecord, successors: Sequence[KeyRecord]) -> None:
    """A key with a successor recorded on this node is retired only once one of those successors
    holds its share here (the successor rule; README "Keys: lookup and retirement")."""
    if successors and not any(s.state == "active" for s in successors):
        raise SuccessorNotStored(key.key_id, [s.key_id for s in successors])


def settle_presignature(new: StoredPresignature, stored: StoredPresignature, inserted: bool) -> StoredPresignature:
    """A presignature id is written once: an identical available repeat returns the stored record,
    and so does one whose id was consumed in the same slot (a consumed id is never made available
    again); anything else under the id is PresignatureExists."""
    if inserted:
        return stored
    if stored.state == "available" and stored.same_content(new):
        return stored
    same_slot = (stored.key_id, stored.signer_set, stored.sealer_kind) == (new.key_id, new.signer_set, new.sealer_kind)
    if stored.state == "consumed" and same_slot:
        return stored
    raise PresignatureExists(new.presig_id)


class SqlStore(ABC):
    """The part of `Store` both backends implement alike, over a primitive each writes its own way."""

    async def consume_presignature(
        self,
        key_id: str,
        signer_set: Sequence[int],
        session_id: str,
        presig_id: str | None = None,
        sealer_kind: str | None = None,
    ) -> StoredPresignature:
        """`Store.consume_presignature`: the arguments are checked here, the single-use take is `_consume`."""
        sset = consume_target(key_id, signer_set, session_id)
        return await self._consume(key_id, sset, session_id, presig_id, sealer_kind)

    async def claim_and_consume(
        self,
        session_id: str,
        kind: str,
        key_id: str,
        signer_set: Sequence[int],
        presig_id: str | None = None,
        sealer_kind: str | None = None,
    ) -> StoredPresignature | None:
        """`Store.claim_and_consume`: the arguments are checked here, the transaction is `_claim_and_consume`."""
        sset = consume_target(key_id, signer_set, session_id)
        return await self._claim_and_consume(session_id, kind, key_id, sset, presig_id, sealer_kind)

    async def put_presignatures(self, presigs: Sequence[StoredPresignature]) -> list[StoredPresignature]:
        """`Store.put_presignatures`: every record is checked before the transaction."""
        for p in presigs:
            if p.state != "available":
                raise InvalidRecord("only available presignatures can be put")
        return await self._put_presignatures(presigs) if presigs else []

    @abstractmethod
    async def _claim_and_consume(
        self, session_id: str, kind: str, key_id: str, sset: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature | None:
        """In one transaction: claim `session_id` (None, nothing written, if it was used), then
        `_consume`'s take; an unavailable presignature rolls the claim back."""

    @abstractmethod
    async def _put_presignatures(self, presigs: Sequence[StoredPresignature]) -> list[StoredPresignature]:
        """Insert each as `put_presignature` does, settled alike, in one transaction."""

    @abstractmethod
    async def _consume(
        self, key_id: str, sset: str, session_id: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature:
        """Atomically mark `presig_id` (or the oldest available in the slot, of `sealer_kind` if
        given) consumed by `session_id` and return it with its blob; `unavailable(...)` if none."""


class SnapshotImport:
    """The tally of one all-or-nothing snapshot import, fed by a backend inside its transaction:
    every key first (`key`, which says whether to revive the stored record from the backup's),
    then, once no key conflicted and none would be revived unasked, the presignatures
    `presignatures()` names (`presignature`), then `report()`.

    A key this store records as RETIRED is never brought back silently: a backup that holds its
    share makes the import fail with WouldRevive naming it, unless `revive` names it; then the
    stored record becomes ACTIVE with the backup's share. A key retired in the backup and active
    here stays active (an import never destroys a share)."""

    def __init__(
        self,
        presignatures: Sequence[StoredPresignature],
        restore_presignatures: bool,
        revive: Collection[str] = (),
    ) -> None:
        self._presigs, self._restore = tuple(presignatures), restore_presignatures
        self._revive = frozenset(revive)
        self._imported: list[str] = []
        self._skipped: list[str] = []
        self._conflicts: list[str] = []
        self._would_revive: list[str] = []
        self._revived: list[str] = []
        self._left_active: list[str] = []
        self._retired: set[str] = set()  # retired in the store once the import is done
        self._p_imported = self._p_skipped = 0

    def key(self, new: KeyRecord, stored: KeyRecord, inserted: bool) -> bool:
        """Tally one key; True if the backend must revive the stored record with `new`'s share."""
        if inserted:
            self._imported.append(new.key_id)
        elif not stored.same_identity(new) or (not stored.retired and not new.retired and not stored.same_content(new)):
            self._conflicts.append(new.key_id)
        elif stored.retired and not new.retired:
            if new.key_id in self._revive:
                self._revived.append(new.key_id)
                return True
            self._would_revive.append(new.key_id)
        elif new.retired and not stored.retired:
            self._left_active.append(new.key_id)
        else:
            self._skipped.append(new.key_id)
        if (stored if not inserted else new).retired:
            self._retired.add(new.key_id)
        return False

    def presignatures(self) -> tuple[StoredPresignature, ...]:
        """The presignatures to write; KeyExists naming every conflicting key id if any key
        conflicted, WouldRevive naming every retired key the backup would bring back unasked.
        Presignatures of keys that stay retired are left out (counted as skipped)."""
        if self._conflicts:
            raise KeyExists(self._conflicts)
        if self._would_revive:
            raise WouldRevive(self._would_revive)
        if not self._restore:
            return ()
        kept = tuple(p for p in self._presigs if p.key_id not in self._retired)
        self._p_skipped += len(self._presigs) - len(kept)
        return kept

    def presignature(self, new: StoredPresignature, stored: StoredPresignature, inserted: bool) -> None:
        settle_presignature(new, stored, inserted)
        self._p_imported += inserted
        self._p_skipped += not inserted

    def report(self) -> ImportReport:
        return ImportReport(
            keys_imported=tuple(self._imported),
            keys_skipped=tuple(self._skipped),
            presignatures_imported=self._p_imported,
            presignatures_skipped=self._p_skipped,
            presignatures_not_restored=0 if self._restore else len(self._presigs),
            keys_revived=tuple(self._revived),
            keys_left_active=tuple(self._left_active),
        )
