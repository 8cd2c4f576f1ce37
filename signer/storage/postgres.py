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

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from signer.storage.errors import (
    InvalidRecord,
    KeyExists,
    KeyNotFound,
    PresignatureExists,
    PresignatureUnavailable,
    SchemaTooNew,
    StoreUnavailable,
)
from signer.storage.migrations import BOOTSTRAP, LATEST_VERSION, MIGRATIONS
from signer.storage.records import (
    AuditQuery,
    AuditRecord,
    ImportReport,
    KeyRecord,
    PresignatureRecord,
    Snapshot,
    check_key_id,
    check_preparams_id,
    decode_party_set,
    encode_party_set,
    now_utc,
    utc,
)

Conn = psycopg.AsyncConnection[dict[str, Any]]

# any 64-bit constant unique to this program: serializes concurrent migrators
_MIGRATION_LOCK = 0x6D70_632D_7369_676E  # "mpc-sign"

_KEY_COLS = (
    "key_id, protocol, party_id, threshold, party_ids, public_key, chain_code, sealer_kind, sealed_share, created_at"
)
_PRESIG_COLS = "presig_id, key_id, signer_set, sealer_kind, sealed, state, created_at, consumed_at, consumed_by"
_AUDIT_COLS = "id, at, operation, caller, session_id, key_id, digest, result, culprits, reason"


def _key(row: dict[str, Any]) -> KeyRecord:
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
        created_at=utc(row["created_at"]),
    )


def _presig(row: dict[str, Any]) -> PresignatureRecord:
    return PresignatureRecord(
        presig_id=row["presig_id"],
        key_id=row["key_id"],
        signer_set=decode_party_set(row["signer_set"]),
        sealer_kind=row["sealer_kind"],
        sealed=bytes(row["sealed"]),
        state=row["state"],
        created_at=utc(row["created_at"]),
        consumed_at=None if row["consumed_at"] is None else utc(row["consumed_at"]),
        consumed_by=row["consumed_by"],
    )


def _audit(row: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        time=utc(row["at"]),
        operation=row["operation"],
        caller=row["caller"],
        session_id=row["session_id"],
        key_id=row["key_id"],
        digest=row["digest"],
        result=row["result"],
        culprits=decode_party_set(row["culprits"]),
        reason=row["reason"],
    )


def _same_slot(a: PresignatureRecord, b: PresignatureRecord) -> bool:
    return (a.key_id, a.signer_set, a.sealer_kind) == (b.key_id, b.signer_set, b.sealer_kind)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("SHOW synchronous_commit")
        row = await cur.fetchone()
    if row is not None and str(row[0]).lower() == "off":
        await conn.execute("SET synchronous_commit = on")


class PostgresStore:
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
            row = await (await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")).fetchone()
            return int(row["v"]) if row else 0

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(BOOTSTRAP["postgresql"])
            row = await (await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")).fetchone()
            current = int(row["v"]) if row else 0
            if current > LATEST_VERSION:
                raise SchemaTooNew(current, LATEST_VERSION)
            for m in MIGRATIONS:
                if m.version <= current:
                    continue
                for stmt in m.statements("postgresql"):
                    await conn.execute(stmt.encode())  # bytes: no placeholder parsing of '%' in DDL
                await conn.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s)",
                    (m.version, m.description, self._clock()),
                )
                applied.append(m.version)
        return applied

    async def check(self) -> None:
        async with self._tx() as conn:
            await conn.execute("SELECT 1")

    # --- keys -------------------------------------------------------------------------------

    async def put_key(self, key: KeyRecord) -> KeyRecord:
        async with self._tx() as conn:
            stored, _ = await self._insert_key(conn, key, self._clock())
        return stored

    async def _insert_key(self, conn: Conn, key: KeyRecord, at: datetime) -> tuple[KeyRecord, bool]:
        created = key.created_at or at
        cur = await conn.execute(
            f"INSERT INTO keys ({_KEY_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (key_id) DO NOTHING RETURNING created_at",
            (
                key.key_id,
                key.protocol,
                key.party_id,
                key.threshold,
                encode_party_set(key.party_ids),
                key.public_key,
                key.chain_code,
                key.sealer_kind,
                key.sealed_share,
                created,
            ),
        )
        row = await cur.fetchone()
        if row is not None:
            return KeyRecord(**{**key.__dict__, "created_at": utc(row["created_at"])}), True
        cur = await conn.execute(f"SELECT {_KEY_COLS} FROM keys WHERE key_id = %s", (key.key_id,))
        existing_row = await cur.fetchone()
        if existing_row is None:  # keys are never deleted; a conflict without a row is a broken database
            raise StoreUnavailable(f"key {key.key_id} conflicted but cannot be read")
        existing = _key(existing_row)
        if not existing.same_content(key):
            raise KeyExists(key.key_id)
        return existing, False

    async def get_key(self, key_id: str) -> KeyRecord:
        check_key_id(key_id)
        async with self._tx() as conn:
            row = await (await conn.execute(f"SELECT {_KEY_COLS} FROM keys WHERE key_id = %s", (key_id,))).fetchone()
        if row is None:
            raise KeyNotFound(key_id)
        return _key(row)

    async def list_keys(self) -> list[KeyRecord]:
        async with self._tx() as conn:
            rows = await (await conn.execute(f"SELECT {_KEY_COLS} FROM keys ORDER BY created_at, key_id")).fetchall()
        return [_key(r) for r in rows]

    # --- presignatures ----------------------------------------------------------------------

    async def put_presignature(self, presig: PresignatureRecord) -> PresignatureRecord:
        if presig.state != "available":
            raise InvalidRecord("only available presignatures can be put")
        async with self._tx() as conn:
            stored, _ = await self._insert_presig(conn, presig, self._clock())
        return stored

    async def _insert_presig(self, conn: Conn, p: PresignatureRecord, at: datetime) -> tuple[PresignatureRecord, bool]:
        created = p.created_at or at
        try:
            async with conn.transaction():  # savepoint: a foreign-key failure must not spoil the outer transaction
                cur = await conn.execute(
                    f"INSERT INTO presignatures ({_PRESIG_COLS})"
                    " VALUES (%s, %s, %s, %s, %s, 'available', %s, NULL, NULL)"
                    " ON CONFLICT (presig_id) DO NOTHING RETURNING created_at",
                    (p.presig_id, p.key_id, encode_party_set(p.signer_set), p.sealer_kind, p.sealed, created),
                )
                row = await cur.fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise KeyNotFound(p.key_id) from None
        if row is not None:
            return PresignatureRecord(**{**p.__dict__, "created_at": utc(row["created_at"])}), True
        cur = await conn.execute(f"SELECT {_PRESIG_COLS} FROM presignatures WHERE presig_id = %s", (p.presig_id,))
        existing_row = await cur.fetchone()
        if existing_row is None:
            raise StoreUnavailable(f"presignature {p.presig_id} conflicted but cannot be read")
        existing = _presig(existing_row)
        if existing.state == "available" and existing.same_content(p):
            return existing, False
        if existing.state == "consumed" and _same_slot(existing, p):
            return existing, False  # a consumed id is never made available again
        raise PresignatureExists(p.presig_id)

    async def consume_presignature(
        self,
        key_id: str,
        signer_set: tuple[int, ...],
        session_id: str,
        presig_id: str | None = None,
        sealer_kind: str | None = None,
    ) -> PresignatureRecord:
        check_key_id(key_id)
        if not session_id:
            raise ValueError("session_id is required")
        sset = encode_party_set(tuple(sorted(signer_set)))
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
        async with self._tx() as conn:
            row = await (await conn.execute(sql, params)).fetchone()
        if row is None:
            which = f"presignature {presig_id}" if presig_id else "presignature"
            raise PresignatureUnavailable(f"no available {which} for key {key_id} and signers {sset}")
        return _presig(row)

    async def count_available(self, key_id: str, signer_set: tuple[int, ...] | None = None) -> int:
        check_key_id(key_id)
        sql = "SELECT count(*) AS n FROM presignatures WHERE key_id = %s AND state = 'available'"
        args: tuple[str, ...] = (key_id,)
        if signer_set is not None:
            sql += " AND signer_set = %s"
            args += (encode_party_set(tuple(sorted(signer_set))),)
        async with self._tx() as conn:
            row = await (await conn.execute(sql, args)).fetchone()
        return int(row["n"]) if row else 0

    # --- pre-parameters ---------------------------------------------------------------------

    async def put_preparams(self, preparams_id: str, sealed: bytes) -> bool:
        check_preparams_id(preparams_id)
        if not sealed:
            raise InvalidRecord("sealed pre-parameters are empty")
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO preparams (id, sealed, created_at) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (preparams_id, bytes(sealed), self._clock()),
            )
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
            row = await (await conn.execute("SELECT count(*) AS n FROM preparams")).fetchone()
        return int(row["n"]) if row else 0

    # --- used session ids -------------------------------------------------------------------

    async def claim_session_id(self, session_id: str, kind: str) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO session_ids (session_id, kind, started_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (session_id) DO NOTHING",
                (session_id, kind, self._clock()),
            )
            return cur.rowcount == 1

    async def release_session_id(self, session_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM session_ids WHERE session_id = %s", (session_id,))

    async def session_id_used(self, session_id: str) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute("SELECT 1 FROM session_ids WHERE session_id = %s", (session_id,))
            row = await cur.fetchone()
        return row is not None

    # --- audit ------------------------------------------------------------------------------

    async def append_audit(self, record: AuditRecord) -> AuditRecord:
        at = record.time or self._clock()
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO audit (at, operation, caller, session_id, key_id, digest, result, culprits, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    at,
                    record.operation,
                    record.caller,
                    record.session_id,
                    record.key_id,
                    record.digest,
                    record.result,
                    encode_party_set(record.culprits),
                    record.reason,
                ),
            )
            row = await cur.fetchone()
        assert row is not None
        return AuditRecord(**{**record.__dict__, "id": int(row["id"]), "time": utc(at)})

    async def append_audits(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        async with self._tx() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO audit (at, operation, caller, session_id, key_id, digest, result, culprits, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r.time or self._clock(),
                        r.operation,
                        r.caller,
                        r.session_id,
                        r.key_id,
                        r.digest,
                        r.result,
                        encode_party_set(r.culprits),
                        r.reason,
                    )
                    for r in records
                ],
            )

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        where: list[str] = []
        args: list[Any] = []
        if query.key_id is not None:
            where.append("key_id = %s")
            args.append(query.key_id)
        if query.operation is not None:
            where.append("operation = %s")
            args.append(query.operation)
        if query.since is not None:
            where.append("at >= %s")
            args.append(query.since)
        sql = f"SELECT {_AUDIT_COLS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT %s"
        args.append(query.limit)
        async with self._tx() as conn:
            rows = await (await conn.execute(sql, args)).fetchall()
        return [_audit(r) for r in rows]

    # --- backup -----------------------------------------------------------------------------

    async def export_snapshot(self) -> Snapshot:
        async with self._tx() as conn:
            # one snapshot for both reads, so keys and presignatures agree with each other
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            keys = await (await conn.execute(f"SELECT {_KEY_COLS} FROM keys ORDER BY key_id")).fetchall()
            presigs = await (
                await conn.execute(
                    f"SELECT {_PRESIG_COLS} FROM presignatures WHERE state = 'available' ORDER BY presig_id"
                )
            ).fetchall()
        return Snapshot(tuple(_key(r) for r in keys), tuple(_presig(r) for r in presigs))

    async def import_snapshot(self, snapshot: Snapshot, *, restore_presignatures: bool = False) -> ImportReport:
        at = self._clock()
        imported: list[str] = []
        skipped: list[str] = []
        conflicts: list[str] = []
        p_imported = p_skipped = 0
        async with self._tx() as conn:
            for k in snapshot.keys:
                try:
                    _, inserted = await self._insert_key(conn, k, at)
                except KeyExists:
                    conflicts.append(k.key_id)
                    continue
                (imported if inserted else skipped).append(k.key_id)
            if conflicts:
                raise KeyExists(conflicts)
            if restore_presignatures:
                for p in snapshot.presignatures:
                    _, inserted = await self._insert_presig(conn, p, at)
                    p_imported += inserted
                    p_skipped += not inserted
        return ImportReport(
            keys_imported=tuple(imported),
            keys_skipped=tuple(skipped),
            presignatures_imported=p_imported,
            presignatures_skipped=p_skipped,
            presignatures_not_restored=0 if restore_presignatures else len(snapshot.presignatures),
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()
