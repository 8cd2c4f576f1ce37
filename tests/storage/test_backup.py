"""Backup export/import on both backends: round trip, integrity, all-or-nothing, no overwrite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signer.storage import (
    AuditQuery,
    BackupCorrupt,
    KeyExists,
    PresignatureExists,
    Store,
    open_store,
)
from signer.storage.backup import decode_backup, encode_backup, export_backup, import_backup
from tests.storage.conftest import Locations, StoreLocation, make_key, make_presig

HMAC_KEY = b"operator-backup-key-0123456789ab"


@pytest.fixture
async def source(locations: Locations) -> AsyncIterator[Store]:
    """A store with three keys, four available presignatures and one consumed one."""
    s = await open_store(locations.new().url)
    keys = [await s.put_key(make_key(n)) for n in (1, 2, 3)]
    for i in range(3):
        await s.put_presignature(make_presig(keys[0], i))
    await s.put_presignature(make_presig(keys[1], 0, signers=(2, 3)))
    await s.put_presignature(make_presig(keys[2], 0))
    await s.consume_presignature(keys[2].key_id, (1, 2), "used-before-export")
    yield s
    await s.close()


@pytest.fixture
async def target_loc(locations: Locations) -> StoreLocation:
    return locations.new()


@pytest.fixture
async def target(target_loc: StoreLocation) -> AsyncIterator[Store]:
    s = await open_store(target_loc.url)
    yield s
    await s.close()


async def assert_empty(store: Store, loc: StoreLocation) -> None:
    assert await store.list_keys() == []
    assert loc.raw("SELECT count(*) FROM presignatures")[0][0] == 0


async def test_round_trip_into_empty_store(source: Store, target: Store, tmp_path: Path) -> None:
    path = tmp_path / "backup.mpcb"
    report = await export_backup(source, path, caller="CN=operator")
    assert (report.keys, report.presignatures) == (3, 4)  # the consumed one is not exported
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    imported = await import_backup(target, path, caller="CN=operator")
    src_keys = await source.list_keys()
    assert sorted(imported.keys_imported) == sorted(k.key_id for k in src_keys) and imported.keys_skipped == ()
    assert await target.list_keys() == src_keys  # content and creation times, byte for byte
    assert imported.presignatures_not_restored == 4 and imported.presignatures_imported == 0
    assert await target.count_available(src_keys[0].key_id) == 0  # not restored unless asked

    [exp] = await source.query_audit(AuditQuery(operation="export"))
    assert exp.result == "ok" and exp.caller == "CN=operator" and report.sha256 in exp.reason
    [imp] = await target.query_audit(AuditQuery(operation="import"))
    assert imp.result == "ok" and "imported 3 keys" in imp.reason


async def test_round_trip_with_presignatures(source: Store, target: Store, tmp_path: Path) -> None:
    path = tmp_path / "b"
    await export_backup(source, path, hmac_key=HMAC_KEY)
    report = await import_backup(target, path, hmac_key=HMAC_KEY, restore_presignatures=True)
    assert report.presignatures_imported == 4
    k1 = make_key(1).key_id
    original = await source.export_snapshot()
    restored = await target.export_snapshot()
    assert {(p.presig_id, p.sealed, p.signer_set) for p in restored.presignatures} == {
        (p.presig_id, p.sealed, p.signer_set) for p in original.presignatures
    }
    got = await target.consume_presignature(k1, (1, 2), "after-restore")
    assert got.presig_id == make_presig(make_key(1), 0).presig_id  # creation order kept
    # importing the same file again: all skipped, and the consumed presignature stays consumed
    again = await import_backup(target, path, hmac_key=HMAC_KEY, restore_presignatures=True)
    assert again.keys_imported == () and len(again.keys_skipped) == 3
    assert again.presignatures_imported == 0 and again.presignatures_skipped == 4
    assert await target.count_available(k1) == 2


async def test_export_never_overwrites(source: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = out / "b"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        await export_backup(source, path)
    assert path.read_bytes() == b"precious"
    assert [p.name for p in out.iterdir()] == ["b"]  # no temporary left behind


async def test_every_byte_flip_detected(source: Store) -> None:
    data = encode_backup(await source.export_snapshot(), created_at=datetime.now(UTC))
    decode_backup(data)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(BackupCorrupt):
            decode_backup(bytes(bad))
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(BackupCorrupt):
            decode_backup(data[:cut])
    with pytest.raises(BackupCorrupt):
        decode_backup(data + b"{}\n")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:3]


def _reseal(header: bytes, body: bytes, hmac_key: bytes | None = None) -> bytes:
    """What an attacker who can write the file does: edit, then recompute the SHA-256."""
    signed = header + b"\n" + body + b"\n"
    trailer = {"sha256": hashlib.sha256(signed).hexdigest()}
    if hmac_key:
        trailer["hmac_sha256"] = hmac.new(hmac_key, b"mpc-signer-backup/v1/hmac\x00" + signed, "sha256").hexdigest()
    return signed + json.dumps(trailer, sort_keys=True, separators=(",", ":")).encode() + b"\n"


async def test_corrupted_backup_refused_nothing_imported(
    source: Store, target: Store, target_loc: StoreLocation, tmp_path: Path
) -> None:
    path = tmp_path / "b"
    await export_backup(source, path)
    good = path.read_bytes()
    header, body, _ = _lines(good)
    pos = body.index(b'"sealed_share":"') + 20
    cases = {  # what is done -> what the refusal must say
        "SHA-256 mismatch": good.replace(body, body[:pos] + bytes([body[pos] ^ 1]) + body[pos + 1 :]),
        "three newline-terminated lines": good[: len(good) // 2],
        "expected three": header + b"\n" + body + b"\n",
        "format name": good.replace(b"mpc-signer-backup", b"other-backup", 1),
        "version 3 is not supported": _reseal(header.replace(b'"version":2', b'"version":3'), body),
        "duplicate key ids": _reseal(header, body.replace(b'"keys":[', b'"keys":[' + _first_key(body) + b",", 1)),
        "not in canonical form": _reseal(header, body.replace(b'"keys":[', b'"keys": [', 1)),
        "key id must be 64": _reseal(header, body.replace(make_key(2).key_id.encode(), b"zz" * 32)),
    }
    for i, (reason, data) in enumerate(cases.items()):
        bad = tmp_path / f"bad-{i}"
        bad.write_bytes(data)
        with pytest.raises(BackupCorrupt, match=reason):
            await import_backup(target, bad, restore_presignatures=True)
        await assert_empty(target, target_loc)
    failed = await target.query_audit(AuditQuery(operation="import"))
    assert len(failed) == len(cases) and {r.result for r in failed} == {"failed"}


def _first_key(body: bytes) -> bytes:
    doc = json.loads(body)
    return json.dumps(doc["keys"][0], sort_keys=True, separators=(",", ":")).encode()


async def test_hmac_protects_metadata(source: Store, target: Store, target_loc: StoreLocation, tmp_path: Path) -> None:
    plain, keyed = tmp_path / "plain", tmp_path / "keyed"
    await export_backup(source, plain)
    await export_backup(source, keyed, hmac_key=HMAC_KEY)
    old_pk = make_key(1).public_key
    forged_pk = b"\x03" + old_pk[1:]

    def forge(data: bytes, hmac_key: bytes | None = None) -> bytes:
        header, body, _ = _lines(data)
        return _reseal(header, body.replace(base64.b64encode(old_pk), base64.b64encode(forged_pk)), hmac_key)

    # SHA-256 alone cannot stop someone who rewrites the file and recomputes it (documented) ...
    decoded = decode_backup(forge(plain.read_bytes()))
    assert any(k.public_key == forged_pk for k in decoded.keys)
    # ... the HMAC does, unless the forger holds the key
    for data, key in (
        (forge(keyed.read_bytes()), HMAC_KEY),  # old HMAC kept
        (forge(keyed.read_bytes(), b"attacker-key-0123456789"), HMAC_KEY),
        (keyed.read_bytes(), b"wrong-operator-key-000000"),  # wrong key
        (keyed.read_bytes(), None),  # keyed file, no key given
        (plain.read_bytes(), HMAC_KEY),  # key given, unkeyed file: no downgrade
    ):
        bad = tmp_path / "try"
        bad.unlink(missing_ok=True)
        bad.write_bytes(data)
        with pytest.raises(BackupCorrupt):
            await import_backup(target, bad, hmac_key=key)
        await assert_empty(target, target_loc)
    with pytest.raises(ValueError):
        await import_backup(target, keyed, hmac_key=b"short")
    report = await import_backup(target, keyed, hmac_key=HMAC_KEY)
    assert len(report.keys_imported) == 3


async def test_import_over_existing_identical_key(source: Store, target: Store, tmp_path: Path) -> None:
    path = tmp_path / "b"
    await export_backup(source, path)
    k1 = await source.get_key(make_key(1).key_id)

    # identical key already present: skipped and reported, the others imported
    await target.put_key(k1)
    report = await import_backup(target, path)
    assert report.keys_skipped == (k1.key_id,) and len(report.keys_imported) == 2
    assert await target.get_key(k1.key_id) == await source.get_key(k1.key_id)


async def test_import_conflicting_key_imports_nothing(
    source: Store, target: Store, target_loc: StoreLocation, tmp_path: Path
) -> None:
    path = tmp_path / "b"
    await export_backup(source, path)
    k2 = await source.get_key(make_key(2).key_id)
    different = make_key(2, sealed_share=b"MPCS-another-share")
    kept = await target.put_key(different)
    with pytest.raises(KeyExists) as ei:
        await import_backup(target, path, restore_presignatures=True)
    assert ei.value.key_ids == (k2.key_id,)
    assert await target.list_keys() == [kept]  # untouched, and keys 1 and 3 were not imported either
    assert target_loc.raw("SELECT count(*) FROM presignatures")[0][0] == 0
    [rec] = await target.query_audit(AuditQuery(operation="import"))
    assert rec.result == "failed" and "KeyExists" in rec.reason


async def test_import_conflicting_presignature_imports_nothing(
    source: Store, target: Store, target_loc: StoreLocation, tmp_path: Path
) -> None:
    path = tmp_path / "b"
    await export_backup(source, path)
    k1 = await target.put_key(await source.get_key(make_key(1).key_id))
    await target.put_presignature(make_presig(k1, 0, sealed=b"MPCS-not-the-same"))
    with pytest.raises(PresignatureExists):
        await import_backup(target, path, restore_presignatures=True)
    assert [k.key_id for k in await target.list_keys()] == [k1.key_id]
    assert target_loc.raw("SELECT count(*) FROM presignatures")[0][0] == 1
    # without restoring presignatures the keys go in
    report = await import_backup(target, path)
    assert len(report.keys_imported) == 2 and report.keys_skipped == (k1.key_id,)
