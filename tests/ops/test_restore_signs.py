"""Backup on one instance, restore into an empty store of another instance whose enclave holds the
same sealing key, and sign there with the restored keys (both protocols); the metrics of that
instance show the sessions, and its audit trail the signatures."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from signer.client.relay import Relay
from tests.conftest import SignerProcess, free_port, wait_for
from tests.ops.nodes import start_node
from tests.ops.test_backup_cli import cli
from tests.ops.test_metrics_and_logs import check_labels, scrape, value
from tests.service.conftest import FROST, GG20, check_signature, dkg, message_for, sign

PARTIES = ("client", "signer-a")


async def test_restored_keys_sign_on_another_instance(
    tmp_path: Path,
    start_signer: Callable[..., SignerProcess],
    local,
    connect,  # type: ignore[no-untyped-def]
) -> None:
    sealing_key = tmp_path / "sealing" / "sealing.key"
    source = start_node(start_signer, tmp_path / "a", "signer-a", f"sqlite:{tmp_path}/a/signer.db", sealing_key)
    relay = Relay({"client": local, "signer-a": connect(source)})
    keys = {protocol: await dkg(relay, protocol, PARTIES, 2) for protocol in (FROST, GG20)}

    backup = tmp_path / "signer-a.mpcb"
    out = cli("backup", "export", backup, "--config", source.signer.config_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["keys"] == 2
    source.stop()  # the source is retired

    metrics_port = free_port()
    target = start_node(
        start_signer,
        tmp_path / "b",
        "signer-b",
        f"sqlite:{tmp_path}/b/signer.db",
        sealing_key,
        prime_slice=2,
        config={"metrics": {"listen": f"127.0.0.1:{metrics_port}"}},
    )
    out = cli("backup", "import", backup, "--config", target.signer.config_path)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(out.stdout)["keys_imported"]) == sorted(k.key_id for k in keys.values())

    # The restored share plays party "signer-a" from the new instance.
    relay = Relay({"client": local, "signer-a": connect(target)})
    for protocol, key in keys.items():
        message = message_for(protocol, b"signed after a restore")
        check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))

    # Final states are counted by the session registry's finished hook, just after the answer.
    wait_for(
        lambda: all(
            value(scrape(metrics_port), "mpc_signer_sessions_total", protocol=p, kind="sign", state="done") == 1
            for p in ("frost_ed25519", "gg20_secp256k1")
        ),
        10,
        "both signatures counted",
    )
    samples = scrape(metrics_port)
    for protocol in ("frost_ed25519", "gg20_secp256k1"):
        assert value(samples, "mpc_signer_sessions_total", protocol=protocol, kind="sign", state="done") == 1
        assert value(samples, "mpc_signer_sessions_active", protocol=protocol, kind="sign") == 0
    assert (
        value(samples, "mpc_signer_protocol_round_seconds_count", protocol="gg20_secp256k1", kind="sign", round="1")
        >= 1
    )
    assert value(samples, "mpc_signer_rpc_total", method="SignerService/StartSign", code="OK") == 2
    assert value(samples, "mpc_signer_enclave_roundtrip_seconds_count", request="session_deliver") >= 2
    check_labels(samples)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    for key in keys.values():  # no key id, public key or party id anywhere in a scrape
        assert key.key_id not in text and key.public_key.hex() not in text
    # (as whole words: the bound `sessions.per_client_max` is a label value, not a party id)
    assert not re.search(r"\b(signer-a|signer-b|client)\b", text.replace("mpc_signer", ""))

    for key in keys.values():  # audit records are written just after a session finishes

        def signed(key_id: str = key.key_id) -> bool:
            out = cli("audit", "--config", target.signer.config_path, "--key-id", key_id, "--operation", "sign")
            records = [json.loads(line) for line in out.stdout.splitlines()]
            return [(r["result"], r["caller"]) for r in records] == [("ok", "mpc-service (sub=mpc-service)")]

        wait_for(signed, 10, f"the audit record of the signature with {key.key_id}", interval=0.5)
    target.stop()
