"""kill -9 of a signer (host and enclave) during a key refresh, on SQLite and PostgreSQL.

A refresh stores its successor in one insert before the session reports DONE (signer/api/
operations.py). Whenever the node dies, it must come back with the source key ACTIVE and signing
(each signature checked with libsodium / libsecp256k1 and eth_keys), and with either no successor
or one complete successor: ACTIVE, with its share, the same public key and chain code, its
predecessor recorded, a share the enclave validates, and, where the caller's party finished too,
signatures that verify under the old public key. Never a record without its share.

Kills land at several delays after the refresh began, measured in units of one whole refresh's
latency (before the start reaches the node, during the rounds, around the final store).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.service.conftest import FROST, GG20, Node, all_ok, check_signature, dkg, message_for, sid, sign

PARTIES = ("client", "signer-a", "signer-b")
SIGNERS = ("client", "signer-a")
DELAYS = (0.0, 0.3, 0.6, 0.9, 1.2, 2.0)
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def spec_for(key: pb.DKGResult) -> SessionSpec:
    return SessionSpec("refresh", sid("refresh"), key.protocol, PARTIES, key_id=key.key_id)


async def crash_and_restart(node: Node) -> None:
    await asyncio.to_thread(node.stop, True)  # SIGKILL of the host, then of the enclave
    await asyncio.to_thread(node.start)


async def signs(relay: Relay, key: pb.DKGResult, text: bytes) -> None:
    message = message_for(key.protocol, text + b" " + key.key_id.encode())
    check_signature(
        key.protocol, key.public_key, message, await sign(relay, key.protocol, SIGNERS, key.key_id, message)
    )


async def check_whole(node: Node, relay: Relay, client: Any, local: LocalNode, old: pb.DKGResult) -> str:
    """The source key signs; a successor on `node` is absent or complete. Which one."""
    assert (await client.get_key(old.key_id)).state == pb.KEY_STATE_ACTIVE
    await signs(relay, old, b"the source key after the kill")
    rows = node.raw_sql(
        "SELECT key_id, state, length(sealed_share), public_key, chain_code FROM keys WHERE predecessor_key_id = ?",
        (old.key_id,),
    )
    if not rows:
        return "none"
    assert len(rows) == 1, rows
    key_id, state, share, public_key, chain_code = rows[0]
    assert (state, bytes(public_key), bytes(chain_code)) == ("active", old.public_key, old.chain_code)
    assert share > 0
    info = await client.get_key(key_id)
    assert info.predecessor_key_id == old.key_id and info.state == pb.KEY_STATE_ACTIVE
    assert list(info.party_ids) == list(PARTIES) and info.threshold == old.threshold
    assert (await client.validate_key(key_id)).validity == pb.KEY_VALIDITY_VALID
    if key_id not in local.keys:
        return "successor here only"
    successor = pb.DKGResult(key_id=key_id, public_key=old.public_key, protocol=old.protocol, chain_code=old.chain_code)
    await signs(relay, successor, b"the successor after the kill")
    return "successor"


async def refresh_latency(relay: Relay, key: pb.DKGResult) -> float:
    began = time.perf_counter()
    all_ok(await relay.run(spec_for(key)))
    return time.perf_counter() - began


@pytest.mark.parametrize("store", STORES)
async def test_kill_during_refresh_leaves_old_key_and_no_half_successor(store: str, start_node, local, clients) -> None:  # type: ignore[no-untyped-def]
    a_node = start_node(f"refresh-a-{store}", store=store)
    b = clients(start_node(f"refresh-b-{store}"), exchange=False)

    def relay_with(a: Any) -> Relay:
        return Relay({"client": local, "signer-a": a, "signer-b": b})

    a = clients(a_node, exchange=False)
    latency = {FROST: await refresh_latency(relay_with(a), await dkg(relay_with(a), FROST, PARTIES, 2))}
    latency[GG20] = await refresh_latency(relay_with(a), await dkg(relay_with(a), GG20, PARTIES, 2))
    runs = [(FROST, d) for d in DELAYS] + [(GG20, 0.5), (GG20, 0.9)]
    keys = [await dkg(relay_with(a), protocol, PARTIES, 2) for protocol, _ in runs]

    outcomes: list[tuple[str, float, str]] = []
    for key, (protocol, delay) in zip(keys, runs, strict=True):
        call = asyncio.ensure_future(relay_with(clients(a_node, exchange=False)).run(spec_for(key), timeout=30))
        await asyncio.sleep(delay * latency[protocol])
        await crash_and_restart(a_node)
        with contextlib.suppress(Exception):
            await call  # finished before the kill, or cut off by it
        a = clients(a_node, exchange=False)
        outcome = await check_whole(a_node, relay_with(a), a, local, key)
        outcomes.append(("gg20" if protocol == GG20 else "frost", delay, outcome))
    # after any of it, a new refresh of a source key completes and its successor signs
    again = all_ok(await relay_with(a).run(spec_for(keys[-1])))["client"].dkg
    assert again.predecessor_key_id == keys[-1].key_id
    await signs(relay_with(a), again, b"a refresh after the kills")
    shown = {("gg20" if p == GG20 else "frost"): f"{s * 1000:.0f} ms" for p, s in latency.items()}
    print(f"refresh kills on {store} (refresh {shown}): {outcomes}")
