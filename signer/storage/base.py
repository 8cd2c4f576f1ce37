"""The one storage interface the host uses; SQLite and PostgreSQL implement it identically."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from signer.storage.records import (
    AuditQuery,
    AuditRecord,
    ImportReport,
    KeyPage,
    KeyQuery,
    KeyRecord,
    Snapshot,
    StoredPresignature,
)


class Store(Protocol):
    """Async store of key metadata, sealed blobs and audit records.

    Every write is committed durably before its coroutine returns. If the awaiting task is
    cancelled mid-call, the database operation may still complete: writes are idempotent
    (`put_key`, `put_presignature`) or fail safe (a consumed presignature is lost, never reused).
    """

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        ...

    async def schema_version(self) -> int: ...

    async def migrate(self) -> list[int]:
        """Apply the migrations this store lacks (idempotent); return the versions applied."""
        ...

    async def check(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...

    async def put_key(self, key: KeyRecord) -> KeyRecord:
        """Store a new key; identical repeat = no-op returning the stored record; different
        content under the same key id = KeyExists."""
        ...

    async def get_key(self, key_id: str) -> KeyRecord: ...

    async def list_keys(self) -> list[KeyRecord]: ...

    async def list_keys_page(self, query: KeyQuery) -> KeyPage:
        """One page of keys in key id order, filtered by protocol and state."""
        ...

    async def retire_key(self, key_id: str, audit: AuditRecord | None = None) -> tuple[KeyRecord, bool]:
        """In one transaction: erase the key's sealed share and the blobs of its unused
        presignatures (left as consumed tombstones), mark it RETIRED now, and append `audit` if
        given; the public record stays. Returns the record and whether this call retired it (False: it already was;
        idempotent). KeyNotFound if unknown; SuccessorNotStored if a successor of the key is
        recorded here and none of them is ACTIVE. Before the commit nothing has changed."""
        ...

    async def put_presignature(self, presig: StoredPresignature) -> StoredPresignature:
        """Store a new available presignature (KeyNotFound if its key is unknown, KeyRetired if
        it is retired; identical
        repeat = no-op; other content under the id = PresignatureExists)."""
        ...

    async def put_presignatures(self, presigs: Sequence[StoredPresignature]) -> list[StoredPresignature]:
        """`put_presignature` for a batch (a presigning session's), all or nothing in one
        transaction: one commit for the batch instead of one per presignature."""
        ...

    async def consume_presignature(
        self,
        key_id: str,
        signer_set: tuple[int, ...],
        session_id: str,
        presig_id: str | None = None,
        sealer_kind: str | None = None,
    ) -> StoredPresignature:
        """Atomically mark one available presignature consumed by `session_id` and return it with
        its sealed blob: the named one, or the oldest for (key_id, signer_set) — with
        `sealer_kind`, the oldest sealed by that sealer (the enclave's current boot: others can
        never be used). Exactly one concurrent caller gets a given presignature;
        PresignatureUnavailable otherwise. The blob is erased from the row as it is consumed."""
        ...

    async def claim_and_consume(
        self,
        session_id: str,
        kind: str,
        key_id: str,
        signer_set: tuple[int, ...],
        presig_id: str | None = None,
        sealer_kind: str | None = None,
    ) -> StoredPresignature | None:
        """`claim_session_id` and `consume_presignature` in one transaction (one durable commit
        where there were two): None if `session_id` was used before, and then nothing changed;
        PresignatureUnavailable if none is available, and then the id is not claimed either.
        Otherwise both are committed before the coroutine returns."""
        ...

    async def count_available(self, key_id: str, signer_set: tuple[int, ...] | None = None) -> int: ...

    async def put_preparams(self, preparams_id: str, sealed: bytes) -> bool:
        """Store one sealed pre-parameter set under its 32-hex-character id; an id already
        present is left as it is (returns False)."""
        ...

    async def take_preparams(self, limit: int) -> list[tuple[str, bytes]]:
        """Atomically delete and return up to `limit` stored sets (oldest first) as (id, sealed):
        single use, two concurrent callers never get the same set."""
        ...

    async def delete_preparams(self, ids: Sequence[str]) -> int:
        """Delete the stored sets with these ids (used by the enclave meanwhile); returns how many."""
        ...

    async def count_preparams(self) -> int: ...

    async def claim_session_id(self, session_id: str, kind: str) -> bool:
        """Record `session_id` as used (durably, before returning); False if it was used before."""
        ...

    async def release_session_id(self, session_id: str) -> None:
        """Forget a claim whose session certainly never ran (the enclave never saw its start)."""
        ...

    async def session_id_used(self, session_id: str) -> bool:
        """Whether `session_id` was ever claimed on this store."""
        ...

    async def append_audit(self, record: AuditRecord) -> AuditRecord: ...

    async def append_audits(self, records: Sequence[AuditRecord]) -> None:
        """Append several records in one transaction (one commit, one fsync): group commit for a
        busy node. All or nothing."""
        ...

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Matching records, newest first."""
        ...

    async def export_snapshot(self) -> Snapshot:
        """All keys and all available presignatures, read in one consistent transaction."""
        ...

    async def import_snapshot(
        self, snapshot: Snapshot, *, restore_presignatures: bool = False, revive: Collection[str] = ()
    ) -> ImportReport:
        """All-or-nothing import: any key (or presignature) id present with different content
        raises KeyExists (PresignatureExists) and nothing is written. Identical ones are skipped.
        A share of a key retired here raises WouldRevive naming every such key, unless `revive`
        names it (then it is ACTIVE again with the backup's share). Presignatures are written only
        if `restore_presignatures`, never for a key that stays retired; one whose id is already
        present in any state is skipped, so a consumed presignature is never revived."""
        ...

    async def close(self) -> None: ...
