"""Sealed shares survive a crash of the signer and its enclave (SQLite and PostgreSQL); a sealed
blob altered in the database is refused with a clear error while other keys keep signing."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from signer.client.relay import Relay
from tests.conftest import wait_for
from tests.service.conftest import FROST, GG20, check_signature, dkg, message_for, sign

PARTIES = ("client", "signer-a")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_sign_from_sealed_shares_after_a_crash(store, start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a", store=store)
    relay = Relay({"client": local, "signer-a": connect(node)})
    keys = {protocol: await dkg(relay, protocol, PARTIES, 2) for protocol in (FROST, GG20)}

    node.stop(crash=True)  # SIGKILL both processes: nothing but the store survives
    node.start()

    relay = Relay({"client": local, "signer-a": connect(node)})
    for protocol, key in keys.items():
        message = message_for(protocol, b"after the restart")
        check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))


async def test_altered_sealed_share_is_refused_and_other_keys_still_sign(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a")
    relay = Relay({"client": local, "signer-a": connect(node)})
    victim = await dkg(relay, FROST, PARTIES, 2)
    other = await dkg(relay, FROST, PARTIES, 2)

    # Someone with write access to the database (the triggers that keep keys immutable do not
    # stop an owner who drops them) flips one byte of the sealed ciphertext.
    (blob,) = node.raw_sql("SELECT sealed_share FROM keys WHERE key_id = ?", (victim.key_id,))[0]
    altered = bytearray(blob)
    altered[len(altered) // 2] ^= 0x01
    node.raw_sql("DROP TRIGGER keys_immutable")
    node.raw_sql("UPDATE keys SET sealed_share = ? WHERE key_id = ?", (bytes(altered), victim.key_id))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sign(relay, FROST, PARTIES, victim.key_id, b"with an altered share")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"sealed key share for key {victim.key_id} failed authentication" in (err.value.details() or "")
    assert local.engine.running() == 0  # the relay dropped the local party's half-started session
    refused = node.raw_sql("SELECT result, reason FROM audit WHERE key_id = ? AND operation = 'sign'", (victim.key_id,))
    assert refused and refused[-1][0] == "failed" and "failed authentication" in refused[-1][1]

    message = b"the other key is fine"
    check_signature(FROST, other.public_key, message, await sign(relay, FROST, PARTIES, other.key_id, message))

    # And the audit trail has the successful operations with the caller's identity (audit
    # records are written in the background once a session finishes).
    def audited() -> bool:
        rows = node.raw_sql("SELECT operation, caller, result, digest FROM audit WHERE key_id = ?", (other.key_id,))
        return ("dkg", "mpc-service (sub=mpc-service)", "ok", None) in rows and (
            "sign",
            "mpc-service (sub=mpc-service)",
            "ok",
            hashlib.sha256(message).hexdigest(),
        ) in rows

    wait_for(audited, 5, "audit records")
    assert GG20 != FROST
