"""Key lifecycle in the store, on both backends: retirement as one transaction, idempotence, the
successor rule, pagination and filters, the migration from schema 4, and backups that would
revive a retired share."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signer.storage import (
    AuditQuery,
    KeyNotFound,
    KeyQuery,
    KeyRetired,
    Store,
    SuccessorNotStored,
    WouldRevive,
    open_store,
)
from signer.storage.backup import export_backup, import_backup
from signer.storage.migrations import MIGRATIONS
from signer.storage.records import RETIRED_BY, AuditRecord, InvalidRecord, KeyRecord
from tests.storage.conftest import Clock, Locations, StoreLocation, make_key, make_presig

NAMES = ("alice", "bob", "carol")


def named_key(n: int, **kw: object) -> KeyRecord:
    return make_key(n, party_names=NAMES, self_name="bob", **kw)  # type: ignore[arg-type]


# --- retirement -------------------------------------------------------------------------------


async def test_retire_erases_share_and_presignatures_keeps_public_record(store: Store, loc: StoreLocation) -> None:
    key = await store.put_key(named_key(1))
    other = await store.put_key(named_key(2))
    for i in range(3):
        await store.put_presignature(make_presig(key, i))
    await store.put_presignature(make_presig(other, 0))
    await store.consume_presignature(key.key_id, (1, 2), "sess-used", f"ps-{key.key_id[-6:]}-0")
    audit = AuditRecord(operation="retire", caller="op", session_id="", result="ok", key_id=key.key_id)

    retired, changed = await store.retire_key(key.key_id, audit)

    assert changed and retired.state == "retired" and retired.sealed_share == b"" and retired.retired_at
    stored = await store.get_key(key.key_id)
    assert stored == retired
    assert stored.same_identity(key) and stored.party_names == NAMES and stored.created_at == key.created_at
    assert await store.count_available(key.key_id) == 0
    assert await store.count_available(other.key_id) == 1
    # every blob of the key is gone from the database itself, not only from the API's view
    assert loc.raw("SELECT length(sealed_share) FROM keys WHERE key_id = ?", (key.key_id,)) == [(0,)]
    blobs = loc.raw("SELECT state, length(sealed), consumed_by FROM presignatures WHERE key_id = ?", (key.key_id,))
    assert len(blobs) == 3 and all(state == "consumed" and size == 0 for state, size, _ in blobs)
    assert sorted(by for *_, by in blobs) == sorted(["sess-used", RETIRED_BY, RETIRED_BY])
    assert [r.operation for r in await store.query_audit(AuditQuery(key_id=key.key_id))] == ["retire"]
    # nothing can be added to a retired key, and nothing of it consumed
    with pytest.raises(KeyRetired):
        await store.put_presignature(make_presig(key, 9))
    assert (await store.get_key(other.key_id)).state == "active"


async def test_retire_is_idempotent(store: Store) -> None:
    key = await store.put_key(make_key(1))
    audit = AuditRecord(operation="retire", caller="op", session_id="", result="ok", key_id=key.key_id)
    first, changed = await store.retire_key(key.key_id, audit)
    again, changed_again = await store.retire_key(key.key_id, audit)
    assert changed and not changed_again and again == first
    assert len(await store.query_audit(AuditQuery(operation="retire"))) == 1


async def test_retire_unknown_key(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.retire_key(make_key(7).key_id)


async def test_successor_rule(store: Store) -> None:
    """A key whose successor is recorded here is retired only once a successor holds its share."""
    old = await store.put_key(make_key(1))
    successor = await store.put_key(make_key(2, predecessor_key_id=old.key_id, public_key=old.public_key))
    await store.retire_key(successor.key_id)  # the successor's share is gone here (state inserted directly)
    with pytest.raises(SuccessorNotStored) as refused:
        await store.retire_key(old.key_id)
    assert refused.value.successors == (successor.key_id,)
    assert (await store.get_key(old.key_id)).state == "active"  # nothing changed
    # a second successor that holds its share makes the retirement safe
    await store.put_key(make_key(3, predecessor_key_id=old.key_id, public_key=old.public_key))
    _, changed = await store.retire_key(old.key_id)
    assert changed


async def test_a_failed_retirement_changes_nothing(store: Store, loc: StoreLocation) -> None:
    """The transaction is all or nothing: an audit record the database refuses (here: a failing
    insert after the share was erased in the same transaction) leaves the key ACTIVE."""
    key = await store.put_key(make_key(1))
    await store.put_presignature(make_presig(key, 0))
    bad = AuditRecord(operation="retire", caller="op", session_id="", result="ok", key_id=key.key_id)
    object.__setattr__(bad, "result", "neither")  # past the record's own check: the database's CHECK refuses it
    with pytest.raises(Exception):  # the backend's constraint error
        await store.retire_key(key.key_id, bad)
    assert (await store.get_key(key.key_id)).same_content(key)
    assert await store.count_available(key.key_id) == 1


async def test_records_enforce_state_rules() -> None:
    with pytest.raises(InvalidRecord):
        make_key(1, state="retired", retired_at=datetime.now(UTC))  # still holds a share
    with pytest.raises(InvalidRecord):
        make_key(1, state="retired", sealed_share=b"")  # no time
    with pytest.raises(InvalidRecord):
        make_key(1, party_names=("a", "b"), self_name="a")  # one name per party
    with pytest.raises(InvalidRecord):
        make_key(1, predecessor_key_id=make_key(1).key_id)
    assert "sealed_share" not in repr(make_key(1))


async def test_database_refuses_other_key_changes(store: Store, loc: StoreLocation) -> None:
    key = await store.put_key(make_key(1))
    for sql in (
        "UPDATE keys SET public_key = chain_code",
        "UPDATE keys SET state = 'retired'",  # the share would stay
        "UPDATE keys SET predecessor_key_id = key_id",
        "DELETE FROM keys",
    ):
        with pytest.raises(Exception, match="immutable"):
            loc.raw(sql)
    assert (await store.get_key(key.key_id)).same_content(key)


# --- listing ----------------------------------------------------------------------------------


async def test_pages_and_filters(store: Store) -> None:
    keys = [
        await store.put_key(make_key(n, protocol="frost-ed25519" if n % 3 == 0 else "gg20-secp256k1"))
        for n in range(1, 11)
    ]
    await store.retire_key(keys[1].key_id)
    await store.retire_key(keys[2].key_id)

    seen: list[str] = []
    after = ""
    while True:
        page = await store.list_keys_page(KeyQuery(page_size=4, after=after))
        seen += [k.key_id for k in page.keys]
        after = page.next_after
        if not after:
            break
    assert seen == sorted(k.key_id for k in keys)

    exact = await store.list_keys_page(KeyQuery(page_size=10))
    assert len(exact.keys) == 10 and exact.next_after == ""  # a full last page says so
    retired = await store.list_keys_page(KeyQuery(page_size=100, state="retired"))
    assert [k.key_id for k in retired.keys] == [keys[1].key_id, keys[2].key_id]
    frost_active = await store.list_keys_page(KeyQuery(page_size=100, protocol="frost-ed25519", state="active"))
    assert [k.key_id for k in frost_active.keys] == [keys[5].key_id, keys[8].key_id]
    with pytest.raises(InvalidRecord):
        KeyQuery(page_size=0)
    with pytest.raises(InvalidRecord):
        KeyQuery(page_size=10, after="not-a-key")


# --- migration from schema 4 -----------------------------------------------------------------


def _schema_4(loc: StoreLocation) -> None:
    """A database as the previous release left it, with one key and one presignature."""
    if loc.backend == "sqlite":
        path = Path(loc.url[len("sqlite://") :])
        path.parent.mkdir(mode=0o700, parents=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    dialect = "sqlite" if loc.backend == "sqlite" else "postgresql"
    ts = "2026-01-01T00:00:00.000000Z" if dialect == "sqlite" else "2026-01-01T00:00:00+00:00"
    loc.raw(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        f" applied_at {'TEXT' if dialect == 'sqlite' else 'TIMESTAMPTZ'} NOT NULL)"
    )
    for m in MIGRATIONS[:4]:
        for stmt in m.statements(dialect):
            loc.raw(stmt.replace("%", "%%") if dialect == "postgresql" else stmt)
        loc.raw("INSERT INTO schema_migrations VALUES (?, ?, ?)", (m.version, m.description, ts))
    old = make_key(1)
    loc.raw(
        "INSERT INTO keys (key_id, protocol, party_id, threshold, party_ids, public_key, chain_code, sealer_kind,"
        " sealed_share, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (old.key_id, old.protocol, 2, 2, "[1,2,3]", old.public_key, old.chain_code, "local", b"OLDSHARE", ts),
    )
    loc.raw(
        "INSERT INTO presignatures (presig_id, key_id, signer_set, sealer_kind, sealed, state, created_at)"
        " VALUES ('ps-old', ?, '[1,2]', 'local', ?, 'available', ?)",
        (old.key_id, b"PRESIG", ts),
    )


async def test_migration_from_schema_4(loc: StoreLocation, clock: Clock) -> None:
    _schema_4(loc)
    store = await open_store(loc.url, clock=clock)
    try:
        assert await store.schema_version() == MIGRATIONS[-1].version >= 5
        key = await store.get_key(make_key(1).key_id)
        assert key.state == "active" and key.sealed_share == b"OLDSHARE"
        assert key.party_names == () and key.self_name == "" and key.predecessor_key_id == "" and key.retired_at is None
        assert key.created_at == datetime(2026, 1, 1, tzinfo=UTC)
        assert await store.count_available(key.key_id) == 1
        _, changed = await store.retire_key(key.key_id)
        assert changed and await store.count_available(key.key_id) == 0
    finally:
        await store.close()


# --- backups ----------------------------------------------------------------------------------


async def test_backup_never_revives_a_retired_share_silently(locations: Locations, tmp_path: Path) -> None:
    loc = locations.new()
    store = await open_store(loc.url)
    try:
        kept = await store.put_key(named_key(1))
        gone = await store.put_key(named_key(2))
        await store.put_presignature(make_presig(gone, 0))
        before = tmp_path / "before-retirement"
        await export_backup(store, before)
        await store.retire_key(gone.key_id)

        with pytest.raises(WouldRevive) as refused:
            await import_backup(store, before, restore_presignatures=True)
        assert refused.value.key_ids == (gone.key_id,)
        assert gone.key_id in str(refused.value)
        assert (await store.get_key(gone.key_id)).state == "retired"  # nothing written
        assert (await store.query_audit(AuditQuery(operation="import")))[0].result == "failed"

        report = await import_backup(store, before, restore_presignatures=True, revive=[gone.key_id])
        assert report.keys_revived == (gone.key_id,) and report.keys_skipped == (kept.key_id,)
        revived = await store.get_key(gone.key_id)
        assert revived.state == "active" and revived.sealed_share == gone.sealed_share and revived.retired_at is None
        # its presignature was destroyed by the retirement and stays so
        assert await store.count_available(gone.key_id) == 0
        assert "REVIVED" in (await store.query_audit(AuditQuery(operation="import")))[0].reason

        # a backup holding a retired record restores the record only, and never retires a key here
        await store.retire_key(gone.key_id)
        after = tmp_path / "after-retirement"
        await export_backup(store, after)
        fresh = await open_store(locations.new().url)
        try:
            await fresh.put_key(gone)
            report = await import_backup(fresh, after)
            assert report.keys_left_active == (gone.key_id,) and report.keys_imported == (kept.key_id,)
            assert (await fresh.get_key(gone.key_id)).state == "active"
        finally:
            await fresh.close()
    finally:
        await store.close()
