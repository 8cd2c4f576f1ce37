"""SQLite store: the embedded default.

One connection, owned by one dedicated worker thread: every call is a job on that thread, so the
event loop never blocks on disk and the connection is never shared between threads. WAL with
synchronous=FULL makes each COMMIT durable (fsynced) before the coroutine returns. Writes use
BEGIN IMMEDIATE, which takes the database's write lock up front, so read-check-write sequences
(no-overwrite puts, single-use consumption) stay atomic even when another process opens the
same file.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from signer.private_files import NotPrivate, private_dir, private_file, refuse_if_shared
from signer.storage.errors import (
    InvalidRecord,
    KeyNotFound,
    KeyRetired,
    PresignatureUnavailable,
    StorageError,
    StoreNotPrivate,
    StoreUnavailable,
)
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

T = TypeVar("T")

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _ts(t: datetime) -> str:
    return utc(t).strftime(_TS_FORMAT)


def _from_ts(s: str | None) -> datetime | None:
    return None if s is None else datetime.strptime(s, _TS_FORMAT).replace(tzinfo=UTC)


# timestamps are ISO text in UTC with microseconds, so they sort as they compare
_SQL = Sql("?", _ts, _from_ts)


def make_private(path: Path) -> None:
    """Create the database's directory (0700) and file (0600) if missing, and refuse any of them
    that other local users may read or write. SQLite creates the -wal and -shm files with the
    database file's own mode, so a private database file keeps them private too."""
    private_dir(path.parent)
    private_file(path)
    try:
        refuse_if_shared(path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    except NotPrivate as exc:
        raise StoreNotPrivate(f"sqlite store: {exc} (the store holds every sealed share and the audit trail)") from None


class SqliteStore(SqlStore):
    """Build with `await SqliteStore.open(path)`."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = now_utc, busy_timeout_ms: int = 10_000) -> None:
        self._path = Path(path)
        self._clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    @property
    def backend(self) -> str:
        return "sqlite"

    @classmethod
    async def open(cls, path: Path | str, **kw: Any) -> SqliteStore:
        store = cls(Path(path), **kw)
        try:
            await store._run(store._connect)
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    # --- plumbing ---------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except (StorageError, sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # ours, or a constraint/guard violation: a bug to surface, not a reason to retry
        except sqlite3.DatabaseError as e:
            # locked, disk I/O, full disk, unreadable file: none of these says anything about
            # the request itself, so the caller may retry
            raise StoreUnavailable(f"sqlite store {self._path}: {e.__class__.__name__}: {e}") from e

    def _connect(self) -> None:
        make_private(self._path)
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout_ms / 1000)
        conn.row_factory = sqlite3.Row
        mode = self._enable_wal(conn)
        if mode.lower() != "wal":
            conn.close()
            raise StoreUnavailable(f"sqlite store {self._path}: cannot enable WAL (journal mode {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        self._conn = conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch the file to WAL. Connections opening a new file at once can each be told
        "database is locked" at once (SQLite answers BUSY without waiting where waiting could
        deadlock): retry within the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    conn.close()
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("store is not open")
        return self._conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        conn = self._db
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # --- schema -----------------------------------------------------------------------------

    async def schema_version(self) -> int:
        return await self._run(self._schema_version_sync)

    def _schema_version_sync(self) -> int:
        with self._tx(write=False) as db:
            db.execute(BOOTSTRAP["sqlite"])
            return int(db.execute(_SQL.schema_version).fetchone()[0])

    async def migrate(self) -> list[int]:
        return await self._run(self._migrate_sync)

    def _migrate_sync(self) -> list[int]:
        applied: list[int] = []
        with self._tx() as db:
            db.execute(BOOTSTRAP["sqlite"])
            current = int(db.execute(_SQL.schema_version).fetchone()[0])
            for m in pending(current):
                for stmt in m.statements("sqlite"):
                    db.execute(stmt)
                db.execute(_SQL.record_migration, (m.version, m.description, _ts(self._clock())))
                applied.append(m.version)
        return applied

    async def check(self) -> None:
        await self._run(lambda: self._db.execute("SELECT 1").fetchone())

    # --- keys -------------------------------------------------------------------------------

    async def put_key(self, key: KeyRecord) -> KeyRecord:
        return await self._run(self._put_key_sync, key)

    def _put_key_sync(self, key: KeyRecord) -> KeyRecord:
        with self._tx() as db:
            return settle_key(key, *self._insert_key(db, key, self._clock()))

    def _insert_key(self, db: sqlite3.Connection, key: KeyRecord, at: datetime) -> tuple[KeyRecord, bool]:
        """Insert unless the id is present (read first, under the write lock); (stored, inserted?)."""
        row = db.execute(_SQL.get_key, (key.key_id,)).fetchone()
        if row is not None:
            return _SQL.key(row), False
        created = key.created_at or at
        db.execute(_SQL.insert_key, _SQL.key_values(key, created))
        return replace(key, created_at=created), True

    async def get_key(self, key_id: str) -> KeyRecord:
        check_key_id(key_id)

        def q() -> KeyRecord:
            row = self._db.execute(_SQL.get_key, (key_id,)).fetchone()
            if row is None:
                raise KeyNotFound(key_id)
            return _SQL.key(row)

        return await self._run(q)

    async def list_keys(self) -> list[KeyRecord]:
        return await self._run(lambda: [_SQL.key(r) for r in self._db.execute(_SQL.list_keys)])

    async def list_keys_page(self, query: KeyQuery) -> KeyPage:
        sql, args = _SQL.list_keys_page(query)
        rows = await self._run(lambda: [_SQL.key(r) for r in self._db.execute(sql, args)])
        return key_page(rows, query.page_size)

    async def retire_key(self, key_id: str, audit: AuditRecord | None = None) -> tuple[KeyRecord, bool]:
        check_key_id(key_id)
        return await self._run(self._retire_sync, key_id, audit)

    def _retire_sync(self, key_id: str, audit: AuditRecord | None) -> tuple[KeyRecord, bool]:
        # BEGIN IMMEDIATE: the write lock is held from the read on, so no presignature of the key
        # is added or consumed between the checks and the commit.
        with self._tx() as db:
            row = db.execute(_SQL.get_key, (key_id,)).fetchone()
            if row is None:
                raise KeyNotFound(key_id)
            key = _SQL.key(row)
            if key.retired:
                return key, False
            check_retirement(key, [_SQL.key(r) for r in db.execute(_SQL.successors, (key_id,))])
            retired = key.retire(self._clock())
            at = _ts(retired.retired_at)  # type: ignore[arg-type]
            db.execute(_SQL.burn_presigs, (at, RETIRED_BY, b"", key_id))
            db.execute(_SQL.retire_key, (at, b"", key_id))
            if audit is not None:
                db.execute(_SQL.append_audit, _SQL.audit_values(audit, audit.time or self._clock()))
        return retired, True

    # --- presignatures ----------------------------------------------------------------------

    async def put_presignature(self, presig: StoredPresignature) -> StoredPresignature:
        if presig.state != "available":
            raise InvalidRecord("only available presignatures can be put")
        return await self._run(self._put_presig_sync, presig)

    def _put_presig_sync(self, presig: StoredPresignature) -> StoredPresignature:
        with self._tx() as db:
            return settle_presignature(presig, *self._insert_presig(db, presig, self._clock()))

    async def _put_presignatures(self, presigs: Sequence[StoredPresignature]) -> list[StoredPresignature]:
        def w() -> list[StoredPresignature]:
            at = self._clock()
            # In-process statements are cheap; the commit (an fsync) is what one per row cost.
            with self._tx() as db:
                return [settle_presignature(p, *self._insert_presig(db, p, at)) for p in presigs]

        return await self._run(w)

    def _insert_presig(
        self, db: sqlite3.Connection, p: StoredPresignature, at: datetime
    ) -> tuple[StoredPresignature, bool]:
        row = db.execute(_SQL.get_presig, (p.presig_id,)).fetchone()
        if row is not None:
            return _SQL.presig(row), False
        key = db.execute(_SQL.key_state, (p.key_id,)).fetchone()
        if key is None:
            raise KeyNotFound(p.key_id)
        if key["state"] != "active":
            raise KeyRetired(p.key_id)
        created = p.created_at or at
        db.execute(_SQL.insert_presig, _SQL.presig_values(p, created))
        return replace(p, created_at=created), True

    async def _consume(
        self, key_id: str, sset: str, session_id: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature:
        return await self._run(self._consume_sync, key_id, sset, session_id, presig_id, sealer_kind)

    def _consume_sync(
        self, key_id: str, sset: str, session_id: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature:
        with self._tx() as db:
            return self._take(db, key_id, sset, session_id, presig_id, sealer_kind)

    async def _claim_and_consume(
        self, session_id: str, kind: str, key_id: str, sset: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature | None:
        return await self._run(self._claim_and_consume_sync, session_id, kind, key_id, sset, presig_id, sealer_kind)

    def _claim_and_consume_sync(
        self, session_id: str, kind: str, key_id: str, sset: str, presig_id: str | None, sealer_kind: str | None
    ) -> StoredPresignature | None:
        # One BEGIN IMMEDIATE ... COMMIT: the claim and the take are durable together or not at
        # all (an unavailable presignature raises inside the transaction, which rolls back).
        with self._tx() as db:
            if db.execute(_SQL.claim_session_id, (session_id, kind, _ts(self._clock()))).rowcount != 1:
                return None
            return self._take(db, key_id, sset, session_id, presig_id, sealer_kind)

    def _take(
        self,
        db: sqlite3.Connection,
        key_id: str,
        sset: str,
        session_id: str,
        presig_id: str | None,
        sealer_kind: str | None,
    ) -> StoredPresignature:
        """The single-use take inside the caller's write transaction."""
        if presig_id is None:
            row = db.execute(
                f"{_SQL.get_presig_by_slot} AND (? IS NULL OR sealer_kind = ?) ORDER BY created_at, presig_id LIMIT 1",
                (key_id, sset, sealer_kind, sealer_kind),
            ).fetchone()
        else:
            row = db.execute(f"{_SQL.get_presig_by_slot} AND presig_id = ?", (key_id, sset, presig_id)).fetchone()
        if row is None:
            raise unavailable(key_id, sset, presig_id)
        at = self._clock()
        cur = db.execute(
            "UPDATE presignatures SET state = 'consumed', consumed_at = ?, consumed_by = ?, sealed = X''"
            " WHERE presig_id = ? AND state = 'available'",
            (_ts(at), session_id, row["presig_id"]),
        )
        if cur.rowcount != 1:  # cannot happen under the write lock; refuse rather than guess
            raise PresignatureUnavailable(f"presignature {row['presig_id']} was consumed concurrently")
        consumed = _SQL.presig(row)
        return replace(consumed, state="consumed", consumed_at=utc(at), consumed_by=session_id)

    async def count_available(self, key_id: str, signer_set: tuple[int, ...] | None = None) -> int:
        check_key_id(key_id)
        sql, args = _SQL.count_available(key_id, signer_set)
        return await self._run(lambda: int(self._db.execute(sql, args).fetchone()[0]))

    # --- pre-parameters ---------------------------------------------------------------------

    async def put_preparams(self, preparams_id: str, sealed: bytes) -> bool:
        check_preparams_id(preparams_id)
        if not sealed:
            raise InvalidRecord("sealed pre-parameters are empty")

        def w() -> bool:
            with self._tx() as db:
                cur = db.execute(_SQL.put_preparams, (preparams_id, bytes(sealed), _ts(self._clock())))
                return cur.rowcount == 1

        return await self._run(w)

    async def take_preparams(self, limit: int) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []

        def w() -> list[tuple[str, bytes]]:
            # BEGIN IMMEDIATE holds the write lock from the SELECT on: no other taker interleaves.
            with self._tx() as db:
                rows = db.execute(
                    "SELECT id, sealed FROM preparams ORDER BY created_at, id LIMIT ?", (limit,)
                ).fetchall()
                taken = [(str(r["id"]), bytes(r["sealed"])) for r in rows]
                db.executemany("DELETE FROM preparams WHERE id = ?", [(i,) for i, _ in taken])
                return taken

        return await self._run(w)

    async def delete_preparams(self, ids: Sequence[str]) -> int:
        for i in ids:
            check_preparams_id(i)

        def w() -> int:
            with self._tx() as db:
                return sum(db.execute("DELETE FROM preparams WHERE id = ?", (i,)).rowcount for i in ids)

        return await self._run(w) if ids else 0

    async def count_preparams(self) -> int:
        return await self._run(lambda: int(self._db.execute(_SQL.count_preparams).fetchone()[0]))

    # --- used session ids -------------------------------------------------------------------

    async def claim_session_id(self, session_id: str, kind: str) -> bool:
        def w() -> bool:
            with self._tx() as db:
                return db.execute(_SQL.claim_session_id, (session_id, kind, _ts(self._clock()))).rowcount == 1

        return await self._run(w)

    async def release_session_id(self, session_id: str) -> None:
        def w() -> None:
            with self._tx() as db:
                db.execute(_SQL.release_session_id, (session_id,))

        await self._run(w)

    async def session_id_used(self, session_id: str) -> bool:
        return await self._run(lambda: self._db.execute(_SQL.session_id_used, (session_id,)).fetchone() is not None)

    # --- audit ------------------------------------------------------------------------------

    async def append_audit(self, record: AuditRecord) -> AuditRecord:
        def w() -> AuditRecord:
            at = record.time or self._clock()
            with self._tx() as db:
                cur = db.execute(_SQL.append_audit, _SQL.audit_values(record, at))
            return replace(record, id=cur.lastrowid, time=utc(at))

        return await self._run(w)

    async def append_audits(self, records: Sequence[AuditRecord]) -> None:
        def w() -> None:
            with self._tx() as db:
                db.executemany(_SQL.append_audit, [_SQL.audit_values(r, r.time or self._clock()) for r in records])

        if records:
            await self._run(w)

    async def query_audit(self, query: AuditQuery) -> list[AuditRecord]:
        sql, args = _SQL.query_audit(query)
        return await self._run(lambda: [_SQL.audit(r) for r in self._db.execute(sql, args)])

    # --- backup -----------------------------------------------------------------------------

    async def export_snapshot(self) -> Snapshot:
        def q() -> Snapshot:
            with self._tx(write=False) as db:
                keys = tuple(_SQL.key(r) for r in db.execute(_SQL.export_keys))
                presigs = tuple(_SQL.presig(r) for r in db.execute(_SQL.export_presigs))
            return Snapshot(keys, presigs)

        return await self._run(q)

    async def import_snapshot(
        self, snapshot: Snapshot, *, restore_presignatures: bool = False, revive: Collection[str] = ()
    ) -> ImportReport:
        def w() -> ImportReport:
            at = self._clock()
            tally = SnapshotImport(snapshot.presignatures, restore_presignatures, revive)
            with self._tx() as db:
                for k in snapshot.keys:
                    if tally.key(k, *self._insert_key(db, k, at)):
                        db.execute(_SQL.revive_key, (k.sealed_share, k.key_id))
                for p in tally.presignatures():
                    tally.presignature(p, *self._insert_presig(db, p, at))
            return tally.report()

        return await self._run(w)

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
