"""`mpc-signer backup export|import` and `mpc-signer audit` as an operator runs them: real
processes over configured SQLite stores. (Restoring into another signer that then signs is in
tests/ops/test_restore_signs.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from signer.storage import AuditQuery, KeyRecord, StoredPresignature, open_store
from tests.conftest import REPO, write_config


def key(n: int, sealed: bytes | None = None) -> KeyRecord:
    return KeyRecord(
        key_id=f"{n:064x}",
        protocol="frost-ed25519",
        party_id=1,
        threshold=2,
        party_ids=(1, 2, 3),
        public_key=bytes([n]) * 32,
        chain_code=b"",
        sealer_kind="local",
        sealed_share=sealed or b"MPCS" + secrets.token_bytes(60),
    )


def config_for(tmp: Path, name: str) -> Path:
    return write_config(tmp / f"{name}.toml", {"storage": {"url": f"sqlite:{tmp}/{name}/signer.db"}})


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")}
    return subprocess.run(
        [sys.executable, "-m", "signer.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def store_keys(config: Path, tmp: Path, name: str) -> dict[str, KeyRecord]:
    async def read() -> dict[str, KeyRecord]:
        store = await open_store(f"sqlite:{tmp}/{name}/signer.db")
        try:
            return {k.key_id: k for k in await store.list_keys()}
        finally:
            await store.close()

    return asyncio.run(read())


def seed(tmp: Path, name: str, keys: list[KeyRecord], presigs: int = 0) -> None:
    async def write() -> None:
        (tmp / name).mkdir(mode=0o700, parents=True, exist_ok=True)  # a store directory is private
        store = await open_store(f"sqlite:{tmp}/{name}/signer.db")
        try:
            for k in keys:
                await store.put_key(k)
            for i in range(presigs):
                await store.put_presignature(
                    StoredPresignature(
                        presig_id=f"p{i}",
                        key_id=keys[0].key_id,
                        signer_set=(1, 2),
                        sealer_kind="local",
                        sealed=b"MPCS" + secrets.token_bytes(40),
                    )
                )
        finally:
            await store.close()

    asyncio.run(write())


def test_export_then_import_into_an_empty_store_with_audit(tmp_path: Path) -> None:
    a, b = config_for(tmp_path, "a"), config_for(tmp_path, "b")
    seed(tmp_path, "a", [key(1), key(2)], presigs=2)
    hmac_key = tmp_path / "backup-hmac.key"
    hmac_key.write_text(secrets.token_hex(32))
    backup = tmp_path / "backup.mpcb"

    out = cli("backup", "export", backup, "--config", a, "--hmac-key-file", hmac_key)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["keys"] == 2 and report["presignatures"] == 2 and report["authenticated"] is True
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    # A second export never replaces the file.
    again = cli("backup", "export", backup, "--config", a, "--hmac-key-file", hmac_key)
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr

    # Without the key, a keyed file is refused (no downgrade), and nothing is written.
    refused = cli("backup", "import", backup, "--config", b)
    assert refused.returncode == 1 and "nothing imported" in refused.stderr
    assert store_keys(b, tmp_path, "b") == {}

    out = cli("backup", "import", backup, "--config", b, "--hmac-key-file", hmac_key)
    assert out.returncode == 0, out.stderr
    imported = json.loads(out.stdout)
    assert sorted(imported["keys_imported"]) == [f"{1:064x}", f"{2:064x}"]
    assert imported["presignatures_imported"] == 0 and imported["presignatures_not_restored"] == 2
    source, restored = store_keys(a, tmp_path, "a"), store_keys(b, tmp_path, "b")
    assert source.keys() == restored.keys()
    assert all(source[k].same_content(restored[k]) for k in source)  # sealed bytes unchanged: still sealed

    # Importing the same file again skips identical keys.
    out = cli("backup", "import", backup, "--config", b, "--hmac-key-file", hmac_key)
    assert out.returncode == 0 and len(json.loads(out.stdout)["keys_skipped"]) == 2

    audit = cli("audit", "--config", b, "--operation", "import")
    assert audit.returncode == 0, audit.stderr
    lines = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [r["result"] for r in lines] == ["ok", "ok", "failed"]  # newest first
    assert all(r["operation"] == "import" and r["caller"] == "cli" for r in lines)
    exports = [json.loads(line) for line in cli("audit", "--config", a, "--since", "2000-01-01").stdout.splitlines()]
    assert [r["operation"] for r in exports] == ["export"]
    assert cli("audit", "--config", a, "--limit", "0").returncode == 2


def test_import_never_overwrites_a_different_key(tmp_path: Path) -> None:
    a, b = config_for(tmp_path, "a"), config_for(tmp_path, "b")
    seed(tmp_path, "a", [key(1), key(2)])
    local = key(2)  # same key id, different sealed share
    seed(tmp_path, "b", [local])
    backup = tmp_path / "backup.mpcb"
    assert cli("backup", "export", backup, "--config", a).returncode == 0

    out = cli("backup", "import", backup, "--config", b)
    assert out.returncode == 1
    assert "KeyExists" in out.stderr and f"{2:064x}" in out.stderr and "nothing imported" in out.stderr
    after = store_keys(b, tmp_path, "b")
    assert list(after) == [local.key_id] and after[local.key_id].same_content(local)  # key 1 not added either


def test_corrupted_backup_is_refused_whole(tmp_path: Path) -> None:
    a, b = config_for(tmp_path, "a"), config_for(tmp_path, "b")
    seed(tmp_path, "a", [key(1), key(2), key(3)])
    backup = tmp_path / "backup.mpcb"
    assert cli("backup", "export", backup, "--config", a).returncode == 0
    data = bytearray(backup.read_bytes())
    body = data.index(b"\n") + 40  # a byte inside the records line
    data[body] ^= 0x01
    damaged = tmp_path / "damaged.mpcb"
    damaged.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.mpcb"
    truncated.write_bytes(backup.read_bytes()[:-30])

    for bad in (damaged, truncated):
        out = cli("backup", "import", bad, "--config", b)
        assert out.returncode == 1 and "BackupCorrupt" in out.stderr, out.stderr
    assert store_keys(b, tmp_path, "b") == {}

    async def failures() -> int:
        store = await open_store(f"sqlite:{tmp_path}/b/signer.db")
        try:
            return len(await store.query_audit(AuditQuery(operation="import")))
        finally:
            await store.close()

    assert asyncio.run(failures()) == 2  # each refusal is on the audit trail
