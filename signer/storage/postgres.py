"""PostgreSQL store: psycopg 3 (async) behind a psycopg_pool.AsyncConnectionPool.

Shared by several signer instances. Each operation is one explicit transaction on a pooled
connection (autocommit outside it). Single-use consumption relies on row locks: the named
presignature is taken with SELECT ... FOR UPDATE (a concurrent taker waits, then sees it
consumed), the next available one with FOR UPDATE SKIP LOCKED (concurrent takers get different
rows). Migrations take a transaction-scoped advisory lock so two instances starting together
apply each step once. `synchronous_commit` is forced back on if the server has it off, so a
returned write has been flushed to the server's WAL.

The schema is whatever `search_path` selects (set it with the libpq `options` parameter,
e.g. `?options=-csearch_path%3Dsigner`); tests use a throwaway schema per run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from signer.storage.errors import InvalidRecord, KeyNotFound, KeyRetired, StoreUnavailable
from signer.storage.migrations import BOOTSTRAP, pending
from signer.storage.records import RETIRED_BY, Snapshot, check_key_id, check_preparams_id, now_utc, utc
from signer.storage.sql import (
    SnapshotImport,
    Sql,
    SqlStore,
    check_retirement,
    key_page,
    settle_key,
    settle_presignature,
    unavailable,
)

if TYPE_CHECKING:
    from signer.storage.records import (
        AuditQuery,
        AuditRecord,
        ImportReport,
        KeyPage,
        KeyQuery,
        KeyRecord,
        StoredPresignature,
    )

Conn = psycopg.AsyncConnection[dict[str, Any]]

# any 64-bit constant unique to this program: serializes concurrent migrators
_MIGRATION_LOCK = 0x6D70_632D_7369_676E  # "mpc-sign"


def _time_out(t: datetime | None) -> datetime | None:
    return None if t is None else utc(t)


# timestamps are timestamptz: psycopg passes aware datetimes both ways
_SQL = Sql("%s", lambda t: t, _time_out)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("SHOW synchronous_commit")
        row = await cur.fetchone()
    if row is not None and str(row[0]).lower() == "off":
        await conn.execute("SET synchronous_commit = on")


class PostgresStore(SqlStore):
    """Build with `await PostgresStore.open(conninfo)`."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, clock: Callable[[], datetime] = now_utc) -> None:
        self._pool = pool
        self._clock = clock
        self._closed = False

    def __repr__(self) -> str:
        return "PostgresStore()"  # the conninfo may carry a password

    @property
    def backend(self) -> str:
        return "postgresql"

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = now_utc,
    ) -> PostgresStore:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            open=False,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(timeout))},
            configure=_configure,
            check=AsyncConnectionPool.check_connection,  # a restarted server leaves dead connections behind
            name="mpc-signer-store",
        )
        try:
            await pool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error) as e:
            await pool.close()
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {e.__class__.__name__}") from e
        store = cls(pool, clock=clock)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        if self._closed:
            raise StoreUnavailable("store is closed")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as e:
            # Class name only: the driver text can name the host, user and database.
            raise StoreUnavailable(f"PostgreSQL unavailable: {e.__class__.__name__}") from e
        except psycopg.errors.SerializationFailure as e:
            raise StoreUnavailable("PostgreSQL serialization conflict; retry") from e

    # --- schema -----------------------------------------------------------------------------

    async def schema_version(self) -> int:
        async with self._tx() as conn:
            await conn.execute(BOOTSTRAP["postgresql"])
            row = await (await conn.execute(_SQL.schema_version)).fetchone()
            return int(row["v"]) if row else 0

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(BOOTSTRAP["postgresql"])
            row = await (await conn.execute(_SQL.schema_version)).fetchone()
            current = int(row["v"]) if row else 0
            for m in pending(current):
                for stmt in m.statements("postgresql"):
                    await conn.execute(stmt.encode())  # bytes: no placeholder parsing of '%' in DDL
                await conn.execute(_SQL.record_migration, (m.version, m.description, self._clock()))
                applied.append(m.version)
        return applied

    async def check(self) -> None:
        async with self._tx() as conn:
            await conn.execute("SELECT 1")

    # --- keys -------------------------------------------------------------------------------

    async def put_key(self, key: KeyRecord) -> KeyRecord:
        async with self._tx() as conn:
            return settle_key(key, *await self._insert_key(conn, key, self._clock()))

    async def _insert_key(self, conn: Conn, key: KeyRecord, at: datetime) -> tuple[KeyRecord, bool]:
        """Insert unless the id is present (the unique key decides); (stored, inserted?)."""
        created = key.created_at or at
        cur = await conn.execute(
            _SQL.insert_key + " ON CONFLICT (key_id) DO NOTHING RETURNING created_at", _SQL.key_values(key, created)
        )
        row = await cur.fetchone()
        if row is not None:
            return replace(key, created_at=utc(row["created_at"])), True
        existing = await (await conn.execute(_SQL.get_key, (key.key_id,))).fetchone()
        if existing is None:  # keys are never deleted; a conflict without a row is a broken database
            raise StoreUnavailable(f"key {key.key_id} conflicted but cannot be read")
        return _SQL.key(existing), False

    async def get_key(self, key_id: str) -> KeyRecord:
        check_key_id(key_id)
        async with self._tx() as conn:
            row = await (await conn.execute(_SQL.get_key, (key_id,))).fetchone()
        if row is None:
            raise KeyNotFound(key_id)
        return _SQL.key(row)

    async def list_keys(self) -> list[KeyRecord]:
        async with self._tx() as conn:
            rows = await (await conn.execute(_SQL.list_keys)).fetchall()
        return [_SQL.key(r) for r in rows]

    async def list_keys_page(self, query: KeyQuery) -> KeyPage:
        sql, args = _SQL.list_keys_page(query)
        async with self._tx() as conn:
            rows = await (await conn.execute(sql, args)).fetchall()
        return key_page([_SQL.key(r) for r in rows], query.page_size)

    async def retire_key(self, key_id: str, audit: AuditRecord | None = None) -> tuple[KeyRecord, bool]:
        check_key_id(key_id)
        async with self._tx() as conn:
            # The row lock orders this against a concurrent retirement, and against presignature
            # inserts (their foreign key check takes a share lock on the key row) and revivals.
            row = await (await conn.execute(_SQL.get_key + " FOR UPDATE", (key_id,))).fetchone()
            if row is None:
                raise KeyNotFound(key_id)
            key = _SQL.key(row)
            if key.retired:
                return key, False
            successors = await (await conn.execute(_SQL.successors, (key_id,))).fetchall()
            check_retirement(key, [_SQL.key(r) for r in successors])
            retired = key.retire(self._clock())
            await conn.execute(_SQL.burn_presigs, (retired.retired_at, RETIRED_BY, b"", key_id))
            await conn.execute(_SQL.retire_key, (retired.retired_at, b"", key_id))
            if audit is not None:
                await conn.execute(_SQL.append_audit, _SQL.audit_values(audit, audit.time or self._clock()))
        return retired, True

    # --- presignatures ----------------------------------------------------------------------

    async def put_presignature(self, presig: StoredPresignature) -> StoredPresignature:
        if presig.state != "available":
            raise InvalidRecord("only available presignatures can be put")
        async with self._tx() as conn:
            return settle_presignature(presig, *await self._insert_presig(conn, presig, self._clock()))

    async def _put_presignatures(self, presigs: Sequence[StoredPresignature]) -> list[StoredPresignature]:
        at = self._clock()
        async with self._tx() as conn:
            stored: dict[str, StoredPresignature] = {}
            for key_id in dict.fromkeys(p.key_id for p in presigs):
                # FOR SHARE, as for one presignature: a retirement waits for this batch or the
                # batch sees it. A known key row also rules out the foreign-key failure.
                key = await (await conn.execute(_SQL.key_state + " FOR SHARE", (key_id,))).fetchone()
                if key is None:
                    raise KeyNotFound(key_id)
                if key["state"] != "active":
                    raise KeyRetired(key_id)
            async with conn.cursor() as cur:
                # executemany pipelines the rows: one round trip for the batch, not one per row.
                await cur.executemany(
                    _SQL.insert_presig + " ON CONFLICT (presig_id) DO NOTHING RETURNING presig_id, created_at",
                    [_SQL.presig_values(p, p.created_at or at) for p in presigs],
                    returning=True,
                )
                inserted: dict[str, datetime] = {}
                async for result in cur.results():
                    for row in await result.fetchall():
                        inserted[row["presig_id"]] = row["created_at"]
            others = [p.presig_id for p in presigs if p.presig_id not in inserted]
            if others:
                rows = await (await conn.execute(_SQL.get_presigs, (others,))).fetchall()
                stored = {r["presig_id"]: _SQL.presig(r) for r in rows}
            return self._settle_batch(presigs, inserted, stored)

    @staticmethod
    def _settle_batch(
        presigs: Sequence[StoredPresignature], inserted: dict[str, datetime], stored: dict[str, StoredPresignature]
    ) -> list[StoredPresignature]:
        """Each as `put_presignature` settles it; an id repeated within the batch is settled
        against its first occurrence (written by this batch, or stored before)."""
        out: list[StoredPresignature] = []
        first: dict[str, StoredPresignature] = {}
        for p in presigs:
            if p.presig_id in first:
                out.append(settle_presignature(p, first[p.presig_id], False))
                continue
            if p.presig_id in inserted:
                settled = settle_presignature(p, replace(p, created_at=utc(inserted[p.presig_id])), True)
            elif p.presig_id in stored:
                settled = settle_presignature(p, stored[p.presig_id], False)
            else:
                raise StoreUnavailable(f"presignature {p.presig_id} conflicted but cannot be read")
            first[p.presig_id] = settled
            out.append(settled)
        return out

    async def _insert_presig(self, conn: Conn, p: StoredPresignature, at: datetime) -> tuple[StoredPresignature, bool]:
        created = p.created_at or at
        # FOR SHARE: a retirement (FOR UPDATE on the key row) waits for this insert, or this
        # insert for the retirement, which it then sees.
        key = await (await conn.execute(_SQL.key_state + " FOR SHARE", (p.key_id,))).fetchone()
        if key is not None and key["state"] != "active":
            raise KeyRetired(p.key_id)
        try:
            async with conn.transaction():  # savepoint: a foreign-key failure must not spoil the outer transaction
                cur = await conn.execute(
                    _SQL.insert_presig + " ON CONFLICT (presig_id) DO NOTHING RETURNING created_at",
                    _SQL.presig_values(p, created),
                )
                row = await cur.fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise KeyNotFound(p.key_id) from None
        if row is not None:
            return replace(p, created_at=utc(row["created_at"])), True
        existing = await (await conn.execute(_SQL.get_presig, (p.presig_id,))).fetchone()
        if existing is None:
            raise StoreUnavailable(f"presignature {p.presig_id} conflicted but cannot be read")
        return _SQL.presig(existing), False

    async def _consume(
        self, key_id: str, sset: str, session_id: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature:
        async with self._tx() as conn:
            return await self._take(conn, key_id, sset, session_id, presig_id, sealer_kind)

    async def _claim_and_consume(
        self, session_id: str, kind: str, key_id: str, sset: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature | None:
        # One transaction, one commit: an unavailable presignature raises inside it, which rolls
        # the claim back; a used id writes nothing.
        async with self._tx() as conn:
            cur = await conn.execute(_SQL.claim_session_id, (session_id, kind, self._clock()))
            if cur.rowcount != 1:
                return None
            return await self._take(conn, key_id, sset, session_id, presig_id, sealer_kind)

    async def _take(
        self, conn: Conn, key_id: str, sset: str, session_id: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature:
        """The single-use take inside the caller's transaction."""
        if presig_id is None:
            target = (
                "SELECT presig_id, sealed FROM presignatures WHERE key_id = %(key)s AND signer_set = %(sset)s"
                " AND state = 'available' AND (%(kind)s::text IS NULL OR sealer_kind = %(kind)s::text)"
                " ORDER BY created_at, presig_id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
        else:
            target = (
                "SELECT presig_id, sealed FROM presignatures WHERE presig_id = %(id)s AND key_id = %(key)s"
                " AND signer_set = %(sset)s AND state = 'available' FOR UPDATE"
            )
        # `target` is read (and locked) before the update, so its `sealed` is the blob being erased
        sql = (
            f"WITH target AS ({target})"
            " UPDATE presignatures p SET state = 'consumed', consumed_at = %(at)s, consumed_by = %(session)s,"
            " sealed = ''::bytea FROM target WHERE p.presig_id = target.presig_id AND p.state = 'available'"
            " RETURNING p.presig_id, p.key_id, p.signer_set, p.sealer_kind, target.sealed, p.state,"
            " p.created_at, p.consumed_at, p.consumed_by"
        )
        params = {
            "key": key_id,
            "sset": sset,
            "id": presig_id,
            "at": self._clock(),
            "session": session_id,
            "kind": sealer_kind,
        }
        row = await (await conn.execute(sql, params)).fetchone()
        if row is None:
            raise unavailable(key_id, sset, presig_id)
        return _SQL.presig(row)

    async def count_available(self, key_id: str, signer_set: tuple[int, ...] | None = None) -> int:
        check_key_id(key_id)
        sql, args = _SQL.count_available(key_id, signer_set)
        async with self._tx() as conn:
            row = await (await conn.execute(sql, args)).fetchone()
        return int(row["n"]) if row else 0

    # --- pre-parameters ---------------------------------------------------------------------

    async def put_preparams(self, preparams_id: str, sealed: bytes) -> bool:
        check_preparams_id(preparams_id)
        if not sealed:
            raise InvalidRecord("sealed pre-parameters are empty")
        async with self._tx() as conn:
            cur = await conn.execute(_SQL.put_preparams, (preparams_id, bytes(sealed), self._clock()))
            return cur.rowcount == 1

    async def take_preparams(self, limit: int) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []
        async with self._tx() as conn:
            # SKIP LOCKED: concurrent takers each delete (and so get) different rows.
            cur = await conn.execute(
                "DELETE FROM preparams WHERE id IN (SELECT id FROM preparams ORDER BY created_at, id"
                " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, sealed, created_at",
                (limit,),
            )
            rows = await cur.fetchall()
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        return [(str(r["id"]), bytes(r["sealed"])) for r in rows]

    async def delete_preparams(self, ids: Sequence[str]) -> int:
        for i in ids:
            check_preparams_id(i)
        if not ids:
            return 0
        async with self._tx() as conn:
            cur = await conn.execute("DELETE FROM preparams WHERE id = ANY(%s)", (list(ids),))
            return cur.rowcount

    async def count_preparams(self) -> int:
        async with self._tx() as conn:
            row = await (await conn.execute(_SQL.count_preparams)).fetchone()
        return int(row["n"]) if row else 0

    # --- used session ids -------------------------------------------------------------------

    async def claim_session_id(self, session_id: str, kind: str) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(_SQL.claim_session_id, (session_id, kind, self._clock()))
            return cur.rowcount == 1

    async def release_session_id(self, session_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(_SQL.release_session_id, (session_id,))

    async def session_id_used(self, session_id: str) -> bool:
        async with self._tx() as conn:
            row = await (await conn.execute(_SQL.session_id_used, (session_id,))).fetchone()
        return row is not None

    # --- audit ------------------------------------------------------------------------------

    async def append_audit(self, record: AuditRecord) -> AuditRecord:
        at = record.time or self._clock()
        async with self._tx() as conn:
            row = await (
                await conn.execute(_SQL.append_audit + " RETURNING id", _SQL.audit_values(record, at))
            ).fetchone()
        assert row is not None
        return replace(record, id=int(row["id"]), time=utc(at))

    async def append_audits(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        async with self._tx() as conn, conn.cursor() as cur:
            await cur.executemany(_SQL.append_audit, [_SQL.audit_values(r, r.time or self._clock()) for r in records])

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        sql, args = _SQL.query_audit(query)
        async with self._tx() as conn:
            rows = await (await conn.execute(sql, args)).fetchall()
        return [_SQL.audit(r) for r in rows]

    # --- backup -----------------------------------------------------------------------------

    async def export_snapshot(self) -> Snapshot:
        async with self._tx() as conn:
            # one snapshot for both reads, so keys and presignatures agree with each other
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            keys = await (await conn.execute(_SQL.export_keys)).fetchall()
            presigs = await (await conn.execute(_SQL.export_presigs)).fetchall()
        return Snapshot(tuple(_SQL.key(r) for r in keys), tuple(_SQL.presig(r) for r in presigs))

    async def import_snapshot(
        self, snapshot: Snapshot, *, restore_presignatures: bool = False, revive: Collection[str] = ()
    ) -> ImportReport:
        at = self._clock()
        tally = SnapshotImport(snapshot.presignatures, restore_presignatures, revive)
        async with self._tx() as conn:
            for k in snapshot.keys:
                if tally.key(k, *await self._insert_key(conn, k, at)):
                    await conn.execute(_SQL.revive_key, (k.sealed_share, k.key_id))
            for p in tally.presignatures():
                tally.presignature(p, *await self._insert_presig(conn, p, at))
        return tally.report()

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()
