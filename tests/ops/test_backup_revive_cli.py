"""`mpc-signer backup import` never brings a retired share back silently: it lists the keys it
would revive and refuses, unless each is named with `--revive KEY_ID`. Real processes over a
configured SQLite store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from signer.storage import open_store
from tests.ops.test_backup_cli import cli, config_for, key, seed, store_keys


def retire(tmp: Path, name: str, key_id: str) -> None:
    async def run() -> None:
        store = await open_store(f"sqlite:{tmp}/{name}/signer.db")
        try:
            await store.retire_key(key_id)
        finally:
            await store.close()

    asyncio.run(run())


def test_import_refuses_to_revive_unless_named(tmp_path: Path) -> None:
    config = config_for(tmp_path, "node")
    kept, gone, also_gone = key(1), key(2), key(3)
    seed(tmp_path, "node", [kept, gone, also_gone])
    backup = tmp_path / "node.mpcb"
    assert cli("backup", "export", backup, "--config", config).returncode == 0
    retire(tmp_path, "node", gone.key_id)
    retire(tmp_path, "node", also_gone.key_id)

    refused = cli("backup", "import", backup, "--config", config)
    assert refused.returncode == 1 and "WouldRevive" in refused.stderr and "nothing imported" in refused.stderr
    assert gone.key_id in refused.stderr and also_gone.key_id in refused.stderr
    partly = cli("backup", "import", backup, "--revive", gone.key_id, "--config", config)
    assert partly.returncode == 1 and also_gone.key_id in partly.stderr and gone.key_id not in partly.stderr
    assert {k.state for k in store_keys(config, tmp_path, "node").values()} == {"active", "retired"}
    assert store_keys(config, tmp_path, "node")[gone.key_id].state == "retired"  # nothing was written

    done = cli("backup", "import", backup, "--revive", gone.key_id, "--revive", also_gone.key_id, "--config", config)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["keys_revived"]) == sorted([gone.key_id, also_gone.key_id])
    assert report["keys_skipped"] == [kept.key_id]
    keys = store_keys(config, tmp_path, "node")
    assert keys[gone.key_id].state == "active" and keys[gone.key_id].sealed_share == gone.sealed_share

    audit = cli("audit", "--operation", "import", "--config", config)
    lines = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [line["result"] for line in lines] == ["ok", "failed", "failed"] and "REVIVED" in lines[0]["reason"]
