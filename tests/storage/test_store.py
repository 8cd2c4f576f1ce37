"""The Store contract, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from signer.storage import (
    LATEST_VERSION,
    AuditQuery,
    AuditRecord,
    InvalidRecord,
    KeyExists,
    KeyNotFound,
    PresignatureExists,
    PresignatureUnavailable,
    SchemaTooNew,
    Store,
    StoreUnavailable,
    open_store,
)
from signer.storage.errors import StoreNotPrivate
from signer.storage.sqlite import SqliteStore
from tests.storage.conftest import Clock, Locations, StoreLocation, make_key, make_presig

# --- schema and migrations ---------------------------------------------------------------------


async def test_migrations_applied_once_and_idempotent(loc: StoreLocation) -> None:
    s = await open_store(loc.url)
    try:
        assert await s.schema_version() == LATEST_VERSION
        assert await s.migrate() == []
    finally:
        await s.close()
    s = await open_store(loc.url)  # reopening applies nothing new
    try:
        assert await s.migrate() == []
    finally:
        await s.close()
    rows = loc.raw("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, LATEST_VERSION + 1))


async def test_concurrent_openers_migrate_once(locations: Locations) -> None:
    loc = locations.new()
    stores = await asyncio.gather(*(open_store(loc.url) for _ in range(4)))
    try:
        assert {await s.schema_version() for s in stores} == {LATEST_VERSION}
    finally:
        for s in stores:
            await s.close()
    assert loc.raw("SELECT count(*) FROM schema_migrations")[0][0] == LATEST_VERSION


async def test_simultaneous_first_opens_of_one_sqlite_file(tmp_path: Path) -> None:
    """Connections switching a new file to WAL at the same moment may each be answered "database
    is locked" without waiting; opening retries within the busy timeout instead of failing."""
    for round_ in range(100):
        path = tmp_path / f"race-{round_}" / "signer.db"
        opened = await asyncio.gather(*(SqliteStore.open(path) for _ in range(6)), return_exceptions=True)
        failures = [o for o in opened if isinstance(o, BaseException)]
        for store in opened:
            if isinstance(store, SqliteStore):
                await store.close()
        assert not failures, failures[0]


async def test_schema_too_new_refused(loc: StoreLocation) -> None:
    s = await open_store(loc.url)
    await s.close()
    loc.raw(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
        (LATEST_VERSION + 1, "from the future", "2030-01-01T00:00:00.000000Z"),
    )
    with pytest.raises(SchemaTooNew, match=rf"version {LATEST_VERSION + 1}.*upgrade") as ei:
        await open_store(loc.url)
    assert ei.value.found == LATEST_VERSION + 1 and ei.value.known == LATEST_VERSION


# --- keys -------------------------------------------------------------------------------------


async def test_put_get_list(store: Store, clock: Clock) -> None:
    k1, k2 = make_key(1), make_key(2, protocol="frost-ed25519", public_key=b"\x11" * 32, chain_code=b"")
    stored = await store.put_key(k1)
    assert stored.created_at is not None and stored.same_content(k1)
    await store.put_key(k2)
    got = await store.get_key(k1.key_id)
    assert got == stored
    assert (await store.get_key(k2.key_id)).chain_code == b""
    assert [k.key_id for k in await store.list_keys()] == [k1.key_id, k2.key_id]
    with pytest.raises(KeyNotFound):
        await store.get_key("f" * 64)
    with pytest.raises(InvalidRecord):
        await store.get_key("F" * 64)


def test_record_validation() -> None:
    with pytest.raises(InvalidRecord):
        make_key(key_id="ab" * 31)
    with pytest.raises(InvalidRecord):
        make_key(party_id=9)
    with pytest.raises(InvalidRecord):
        make_key(threshold=4)
    with pytest.raises(InvalidRecord):
        make_key(party_ids=(1, 1, 2))
    assert make_key(party_ids=(3, 1, 2)).party_ids == (1, 2, 3)
    assert "sealed_share" not in repr(make_key())


async def test_no_silent_overwrite(store: Store, loc: StoreLocation) -> None:
    k = make_key(7)
    first = await store.put_key(k)
    again = await store.put_key(k)  # a retried put is a no-op
    assert again == first
    for change in (
        {"sealed_share": b"MPCS-other"},
        {"threshold": 3},
        {"public_key": b"\x03" * 33},
        {"sealer_kind": "kms"},
        {"party_ids": (1, 2, 3, 4)},
    ):
        with pytest.raises(KeyExists) as ei:
            await store.put_key(make_key(7, **{"sealed_share": k.sealed_share, **change}))
        assert ei.value.key_ids == (k.key_id,)
    assert await store.get_key(k.key_id) == first
    assert loc.raw("SELECT count(*) FROM keys")[0][0] == 1


async def test_put_key_committed_before_return(store: Store, loc: StoreLocation) -> None:
    k = make_key(3)
    await store.put_key(k)
    # another connection sees it at once: the transaction committed before put_key returned
    rows = loc.raw("SELECT sealed_share FROM keys WHERE key_id = ?", (k.key_id,))
    assert bytes(rows[0][0]) == k.sealed_share


async def test_database_refuses_rewriting_history(store: Store, loc: StoreLocation) -> None:
    k = await store.put_key(make_key(4))
    await store.put_presignature(make_presig(k, 1))
    await store.consume_presignature(k.key_id, (1, 2), "sess-1")
    await store.append_audit(AuditRecord(operation="sign", caller="c", session_id="s", result="ok"))
    for sql in (
        "UPDATE audit SET result = 'failed'",
        "DELETE FROM audit",
        "UPDATE presignatures SET state = 'available', consumed_at = NULL, consumed_by = NULL",
        "UPDATE keys SET sealed_share = X'00'" if loc.backend == "sqlite" else "UPDATE keys SET sealed_share = '\\x00'",
        "DELETE FROM keys",
    ):
        with pytest.raises(Exception, match=r"append-only|cannot change|immutable"):
            loc.raw(sql)
    assert await store.count_available(k.key_id) == 0


async def test_durable_across_reopen_and_abrupt_exit(locations: Locations) -> None:
    loc = locations.new()
    k = make_key(5)
    # a separate process writes and then dies without closing anything
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from signer.storage import open_store, AuditRecord
        from tests.storage.conftest import make_key, make_presig
        async def main():
            s = await open_store({loc.url!r})
            k = make_key(5, sealed_share={k.sealed_share!r})
            await s.put_key(k)
            await s.put_presignature(make_presig(k, 1, sealed=b"MPCS-presig"))
            await s.append_audit(AuditRecord(operation="dkg", caller="svc", session_id="s1", result="ok",
                                             key_id=k.key_id))
            os._exit(0)
        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=os.getcwd())
    s = await open_store(loc.url)
    try:
        assert (await s.get_key(k.key_id)).same_content(k)
        assert await s.count_available(k.key_id) == 1
        [rec] = await s.query_audit(AuditQuery(key_id=k.key_id))
        assert rec.operation == "dkg" and rec.session_id == "s1"
    finally:
        await s.close()


# --- presignatures ----------------------------------------------------------------------------


async def test_presignature_lifecycle(store: Store, loc: StoreLocation) -> None:
    k = await store.put_key(make_key(10))
    p1, p2, p3 = make_presig(k, 1), make_presig(k, 2), make_presig(k, 3, signers=(2, 3))
    for p in (p1, p2, p3):
        await store.put_presignature(p)
    assert await store.put_presignature(p1) is not None  # identical repeat is a no-op
    with pytest.raises(PresignatureExists):
        await store.put_presignature(make_presig(k, 1, sealed=b"MPCS-different"))
    with pytest.raises(KeyNotFound):
        await store.put_presignature(make_presig(make_key(11), 1))
    assert await store.count_available(k.key_id) == 3
    assert await store.count_available(k.key_id, (2, 1)) == 2
    assert await store.count_available(k.key_id, (2, 3)) == 1

    got = await store.consume_presignature(k.key_id, (2, 1), "sess-a")  # oldest first
    assert got.presig_id == p1.presig_id and got.sealed == p1.sealed
    assert got.state == "consumed" and got.consumed_by == "sess-a" and got.consumed_at is not None
    # the blob is erased from the row as it is handed out
    assert bytes(loc.raw("SELECT sealed FROM presignatures WHERE presig_id = ?", (p1.presig_id,))[0][0]) == b""

    with pytest.raises(PresignatureUnavailable):  # consumed: never returned again
        await store.consume_presignature(k.key_id, (1, 2), "sess-b", presig_id=p1.presig_id)
    with pytest.raises(PresignatureUnavailable):  # named one, but for another signer set
        await store.consume_presignature(k.key_id, (1, 3), "sess-b", presig_id=p2.presig_id)
    with pytest.raises(PresignatureUnavailable):  # named one, but another key
        await store.consume_presignature("e" * 64, (1, 2), "sess-b", presig_id=p2.presig_id)
    named = await store.consume_presignature(k.key_id, (1, 2), "sess-c", presig_id=p2.presig_id)
    assert named.sealed == p2.sealed
    with pytest.raises(PresignatureUnavailable):
        await store.consume_presignature(k.key_id, (1, 2), "sess-d")
    # putting a consumed id again does not revive it
    await store.put_presignature(p1)
    assert await store.count_available(k.key_id, (1, 2)) == 0
    assert (await store.consume_presignature(k.key_id, (3, 2), "sess-e")).presig_id == p3.presig_id
    assert await store.count_available(k.key_id) == 0


async def test_oldest_presignature_of_one_sealer_kind(store: Store) -> None:
    """A signing request without a named presignature takes only the enclave's current boot's
    (any other could never be used); a named one is taken whatever its kind."""
    k = await store.put_key(make_key(12))
    old = make_presig(k, 1, sealer_kind="boot-00000000000000aa")
    mine = make_presig(k, 2, sealer_kind="boot-00000000000000bb")
    for p in (old, mine):
        await store.put_presignature(p)
    got = await store.consume_presignature(k.key_id, (1, 2), "sess-a", sealer_kind="boot-00000000000000bb")
    assert got.presig_id == mine.presig_id  # not the older one
    with pytest.raises(PresignatureUnavailable):
        await store.consume_presignature(k.key_id, (1, 2), "sess-b", sealer_kind="boot-00000000000000bb")
    named = await store.consume_presignature(
        k.key_id, (1, 2), "sess-c", presig_id=old.presig_id, sealer_kind="boot-00000000000000bb"
    )
    assert named.presig_id == old.presig_id


async def test_concurrent_consume_exactly_one_wins(locations: Locations) -> None:
    loc = locations.new()
    # two independent stores (two connections / pools) on the same database, like two instances
    a, b = await open_store(loc.url), await open_store(loc.url)
    try:
        k = await a.put_key(make_key(20))
        await a.put_presignature(make_presig(k, 0))

        async def take(s: Store, session: str, presig_id: str | None) -> str | None:
            try:
                return (await s.consume_presignature(k.key_id, (1, 2), session, presig_id=presig_id)).presig_id
            except PresignatureUnavailable:
                return None

        async def race(tag: str, presig_id: str | None) -> list[str]:
            results = await asyncio.gather(*(take((a, b)[i % 2], f"{tag}-{i}", presig_id) for i in range(24)))
            return [r for r in results if r is not None]

        assert len(await race("next", None)) == 1
        await a.put_presignature(make_presig(k, 1, presig_id="named-1"))
        assert await race("named", "named-1") == ["named-1"]

        # a pool of 6 among 24 takers: 6 winners, all distinct
        for i in range(6):
            await a.put_presignature(make_presig(k, 100 + i))
        winners = await race("pool", None)
        assert len(winners) == 6 and len(set(winners)) == 6
        assert await a.count_available(k.key_id) == 0
        rows = loc.raw("SELECT count(*), count(DISTINCT consumed_by) FROM presignatures WHERE state = 'consumed'")
        assert rows[0] == (8, 8)
    finally:
        await a.close()
        await b.close()


# --- audit ------------------------------------------------------------------------------------


async def test_audit_append_and_query(store: Store, clock: Clock) -> None:
    k1, k2 = make_key(30).key_id, make_key(31).key_id
    start = clock.t
    recs = [
        AuditRecord(operation="dkg", caller="CN=svc", session_id="s1", result="ok", key_id=k1),
        AuditRecord(operation="sign", caller="CN=svc", session_id="s2", result="ok", key_id=k1, digest="ab" * 32),
        AuditRecord(
            operation="sign",
            caller="CN=svc",
            session_id="s3",
            result="failed",
            key_id=k1,
            digest="cd" * 32,
            culprits=(3, 1),
            reason="bad proof from party 3",
        ),
        AuditRecord(operation="sign", caller="CN=other", session_id="s4", result="ok", key_id=k2, digest="ef" * 32),
        AuditRecord(operation="presign", caller="CN=svc", session_id="s5", result="ok", key_id=k1),
    ]
    stored = [await store.append_audit(r) for r in recs]
    assert [s.id for s in stored] == sorted({s.id for s in stored})
    everything = await store.query_audit(AuditQuery())
    assert [r.session_id for r in everything] == ["s5", "s4", "s3", "s2", "s1"]  # newest first
    assert everything[2].culprits == (1, 3) and everything[2].reason == "bad proof from party 3"
    assert everything[2] == stored[2]
    assert [r.session_id for r in await store.query_audit(AuditQuery(key_id=k1))] == ["s5", "s3", "s2", "s1"]
    assert [r.session_id for r in await store.query_audit(AuditQuery(key_id=k1, operation="sign"))] == ["s3", "s2"]
    assert [r.session_id for r in await store.query_audit(AuditQuery(operation="sign", limit=2))] == ["s4", "s3"]
    since = start + timedelta(seconds=3)  # the clock ticks once per record
    assert [r.session_id for r in await store.query_audit(AuditQuery(since=since))] == ["s5", "s4", "s3"]
    assert await store.query_audit(AuditQuery(operation="import")) == []
    with pytest.raises(InvalidRecord):
        AuditQuery(limit=0)
    with pytest.raises(InvalidRecord):
        AuditRecord(operation="delete", caller="x", session_id="s", result="ok")  # type: ignore[arg-type]


# --- opening -----------------------------------------------------------------------------------


async def test_open_store_urls() -> None:
    with pytest.raises(ValueError):
        await open_store("mysql://localhost/x")
    with pytest.raises(ValueError):
        await open_store("sqlite://")


@pytest.mark.postgres
async def test_postgres_unreachable_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        await open_store("postgresql://127.0.0.1:1/none", timeout=1.0)


async def test_closed_store_is_unavailable(loc: StoreLocation) -> None:
    s = await open_store(loc.url)
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(StoreUnavailable):
        await s.get_key(make_key(1).key_id)


async def test_sqlite_unopenable_path_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        await open_store(f"sqlite://{tmp_path}")  # a directory, not a database file
    (tmp_path / "junk.db").write_bytes(b"this is not an sqlite database, just some bytes" * 100)
    (tmp_path / "junk.db").chmod(0o600)  # private, so the content is what is refused
    with pytest.raises(StoreUnavailable):
        await open_store(f"sqlite://{tmp_path / 'junk.db'}")


async def test_sqlite_files_and_directory_are_private(tmp_path: Path) -> None:
    """Created 0700/0600 (the -wal and -shm files take the database file's mode), and a store
    someone left readable by other local users is refused at open with what to fix."""
    path = tmp_path / "var" / "data" / "signer.db"
    s = await open_store(f"sqlite://{path}")
    try:
        await s._run(lambda: s._db.execute("CREATE TABLE t (x)"))
        made = (path.parent.parent, path.parent, *path.parent.iterdir())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in made}
    finally:
        await s.close()
    assert modes == {"var": 0o700, "data": 0o700, "signer.db": 0o600, "signer.db-wal": 0o600, "signer.db-shm": 0o600}
    for loose, mode in ((path, 0o644), (path.parent, 0o755), (path, 0o640)):
        loose.chmod(mode)
        with pytest.raises(StoreNotPrivate, match=f"{loose} has mode {mode:o}.*chmod"):
            await open_store(f"sqlite://{path}")
        loose.chmod(0o700 if loose.is_dir() else 0o600)
    s = await open_store(f"sqlite://{path}")
    await s.close()


async def test_sqlite_runs_wal_with_full_sync(tmp_path: Path) -> None:
    s = await open_store(f"sqlite://{tmp_path / 'db' / 'signer.db'}")
    try:
        assert isinstance(s, SqliteStore)
        names = ("journal_mode", "synchronous", "foreign_keys")
        pragmas = await s._run(lambda: [s._db.execute(f"PRAGMA {n}").fetchone()[0] for n in names])
        assert pragmas == ["wal", 2, 1]  # synchronous 2 = FULL
    finally:
        await s.close()
