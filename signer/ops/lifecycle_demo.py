"""`mpc-signer demo --lifecycle`: one key through its life, signing after each step, with one
public key throughout (README "Reshare (recovery)").

A 2-of-3 key {client, signer, backup}: the caller's party (a `LocalNode`), the signer node, and a
backup party (a second `LocalNode` in this process, standing in for a backup node). For FROST
Ed25519 and GG20:

1. make: key generation, then a signature by client and signer;
2. refresh: new shares of the same key; once every party holds the successor ACTIVE the old key
   is retired everywhere, then a signature with the successor;
3. recover: the client's share is lost; signer and backup deal the key to a fresh client party
   (a reshare), the refreshed key is retired once the successor is everywhere, and the new client
   signs with the signer.

Each signature is checked outside the protocol code (`signer.client.verify`: libsodium, and
libsecp256k1 over the SHA-256 digest for ECDSA). Prints a JSON list of {protocol, public_key,
one_public_key, steps: [{step, key_id, predecessor_key_id, signature, verified, ms}]}; exits
non-zero if any check fails.

The signer deals in the reshare with no policy service to approve who receives the new share, so
its enclave must run with --allow-reshare-without-policy: the embedded one does (a development
setup); against --target, start that enclave so, or the reshare is refused with a status saying
so.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import signer_pb2 as pb
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import Outcome, SessionSpec, require_ok, reshare_spec
from signer.client.verify import verify

PARTIES = ("client", "signer", "backup")
LIFECYCLE_PROTOCOLS: tuple[pb.Protocol, ...] = (pb.PROTOCOL_FROST_ED25519, pb.PROTOCOL_GG20_SECP256K1)

Parties = dict[str, SignerClient | LocalNode]
LocalFactory = Callable[[str], LocalNode]  # party name -> a new local party


def _agreed_key(outcomes: Mapping[str, Outcome], what: str) -> pb.DKGResult:
    keys = [o.result.dkg for o in require_ok(outcomes, what).values() if o.result is not None]
    if not keys or any(k != keys[0] for k in keys):
        raise RuntimeError(f"{what}: the parties disagree on the new key")
    return keys[0]


async def _sign(parties: Parties, key: pb.DKGResult, signers: tuple[str, str], text: str) -> dict[str, Any]:
    gg20 = key.protocol == pb.PROTOCOL_GG20_SECP256K1
    message = text.encode()
    spec = SessionSpec(
        "sign",
        f"demo-life-sign-{secrets.token_hex(6)}",
        key.protocol,
        signers,
        key_id=key.key_id,
        message=message,
        message_hash=pb.MESSAGE_HASH_SHA256 if gg20 else pb.MESSAGE_HASH_UNSPECIFIED,
    )
    outcomes = require_ok(await Relay(parties).run(spec), "signing")
    signature = outcomes[signers[1]].result.sign.signature  # type: ignore[union-attr]
    signed = hashlib.sha256(message).digest() if gg20 else message
    same = all(o.result is not None and o.result.sign.signature == signature for o in outcomes.values())
    return {
        "signers": list(signers),
        "message": text,
        "signature": signature.hex(),
        "verified": same and verify(key.protocol, key.public_key, signed, signature),
    }


async def check_successor_everywhere(parties: Parties, key: pb.DKGResult) -> None:
    """The relay's rule before any retirement: every party holds the successor ACTIVE."""
    for name, party in parties.items():
        if isinstance(party, LocalNode):
            held = key.key_id in party.keys and party.keys[key.key_id].public_key == key.public_key
        else:
            info = await party.get_key(key.key_id)
            held = info.state == pb.KEY_STATE_ACTIVE and info.public_key == key.public_key
        if not held:
            raise RuntimeError(f"{name} does not hold key {key.key_id}: the old key is kept")


async def retire_everywhere(parties: Parties, key_id: str) -> None:
    """RetireKey at every party in `parties` (a lost party is left out by the caller); a local
    party that never held the key is skipped, a node that does not know it answers NOT_FOUND."""
    for party in parties.values():
        if isinstance(party, LocalNode):
            if key_id in party.keys:
                party.retire_key(key_id)
        else:
            await party.retire_key(key_id)


def _step(name: str, key: pb.DKGResult, began: float, signed: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": name,
        "key_id": key.key_id,
        "predecessor_key_id": key.predecessor_key_id or None,
        "ms": round((time.perf_counter() - began) * 1000, 1),
        **signed,
    }


async def run_lifecycle(protocol: pb.Protocol, signer: SignerClient, new_local: LocalFactory) -> dict[str, Any]:
    tag = secrets.token_hex(6)
    async with contextlib.AsyncExitStack() as stack:
        client, backup = new_local("client"), new_local("backup")
        for node in (client, backup):
            stack.push_async_callback(node.close)
        parties: Parties = {"client": client, "signer": signer, "backup": backup}
        steps = []

        began = time.perf_counter()
        spec = SessionSpec("dkg", f"demo-life-dkg-{tag}", protocol, PARTIES, threshold=2)
        key = _agreed_key(await Relay(parties).run(spec), "key generation")
        steps.append(_step("make", key, began, await _sign(parties, key, ("client", "signer"), "made")))

        began = time.perf_counter()
        spec = SessionSpec("refresh", f"demo-life-refresh-{tag}", protocol, PARTIES, key_id=key.key_id)
        refreshed = _agreed_key(await Relay(parties).run(spec), "refresh")
        await check_successor_everywhere(parties, refreshed)
        await retire_everywhere(parties, key.key_id)
        steps.append(
            _step("refresh", refreshed, began, await _sign(parties, refreshed, ("client", "signer"), "refreshed"))
        )

        # the client's share is lost: its party takes no further part; a fresh one replaces it
        parties["client"] = new_local("client")
        stack.push_async_callback(parties["client"].close)
        began = time.perf_counter()
        spec = reshare_spec(f"demo-life-recover-{tag}", refreshed, PARTIES, 2, ("signer", "backup"))
        recovered = _agreed_key(await Relay(parties).run(spec), "recovery (reshare)")
        await check_successor_everywhere(parties, recovered)
        await retire_everywhere(parties, refreshed.key_id)
        signed = await _sign(parties, recovered, ("client", "signer"), "recovered")
        steps.append(_step("recover", recovered, began, signed))

    keys = (key, refreshed, recovered)
    return {
        "protocol": PROTOCOL_NAMES[protocol],
        "public_key": key.public_key.hex(),
        "one_public_key": len({(k.public_key, k.chain_code) for k in keys}) == 1,
        "steps": steps,
    }


def lifecycle_verified(summary: list[dict[str, Any]]) -> bool:
    return bool(summary) and all(
        item["one_public_key"] and all(step["verified"] for step in item["steps"]) for item in summary
    )


def default_local_factory(ring: Any) -> LocalFactory:
    """Local parties with their own sealing keys and a real prime search (GG20 takes seconds)."""

    def make(name: str) -> LocalNode:
        # the backup deals in the reshare with no policy, as the signer's enclave is allowed to
        return LocalNode(ring, deal_without_policy=name == "backup")

    return make
