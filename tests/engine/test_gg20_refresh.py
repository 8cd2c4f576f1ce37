"""GG20 refresh through the engine (SESSION_KIND_REFRESH): a new key id for the same public key,
chain code and EVM address, new sealed shares that sign (root and a BIP32 child, checked by
coincurve, cryptography and eth_keys), the old key still signing, and the request rules."""

from __future__ import annotations

import hashlib

import eth_keys
import pytest

from enclave.engine.keyids import key_id
from enclave.errors import RequestRejected
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import GG20, Key
from tests.engine.test_gg20 import SHA256, check_ecdsa, ckd_pub


def _address(public_key: bytes) -> str:
    return eth_keys.keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()  # type: ignore[no-any-return]


async def _sign(key: Key, shares: dict[str, pb.SealedBlob], signers: tuple[str, ...], sid: str, path=()) -> None:  # type: ignore[no-untyped-def]
    message = f"signed in {sid}".encode()
    starts = {p: relay.sign(sid, GG20, signers, p, shares[p], message, path=path, message_hash=SHA256) for p in signers}
    out = relay.results(await relay.run(key.engines, starts))
    expected = ckd_pub(key.public_key, key.chain_code, tuple(path)) if path else key.public_key
    check_ecdsa(out[signers[0]], hashlib.sha256(message).digest(), expected)


async def test_refresh_then_sign_under_the_same_key(gg20_2of3: Key) -> None:
    key = gg20_2of3
    starts = {p: relay.refresh("gg20-refresh", GG20, key.parties, 2, p, key.shares[p]) for p in key.parties}
    new = relay.results(await relay.run(key.engines, starts))
    kid = new["alice"].key_id
    assert kid != key.key_id and kid != key_id("gg20-secp256k1", "gg20-refresh", 2, key.parties, key.public_key)
    for r in new.values():
        assert (r.key_id, r.public_key, r.chain_code, r.predecessor_key_id) == (
            kid,
            key.public_key,
            key.chain_code,
            key.key_id,
        )
        assert r.sealed_share.id == kid
    assert _address(new["alice"].public_key) == _address(key.public_key)
    shares = {p: r.sealed_share for p, r in new.items()}
    await _sign(key, shares, ("alice", "bob"), "gg20-new-ab")
    await _sign(key, shares, ("bob", "carol"), "gg20-new-bc", path=(0, 7))
    await _sign(key, key.shares, ("alice", "carol"), "gg20-old-ac")  # the old key signs until retired


async def test_refresh_request_rules(gg20_2of3: Key) -> None:
    key = gg20_2of3
    alice = key.engines["alice"]

    async def refused(start: pb.SessionStart) -> str:
        with pytest.raises(RequestRejected) as exc:
            await alice.start(start)
        assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
        return exc.value.message

    share = key.shares["alice"]
    assert "in the key's order" in await refused(
        relay.refresh("gr1", GG20, ("carol", "bob", "alice"), 2, "alice", share)
    )
    assert "keeps the key's threshold (2)" in await refused(relay.refresh("gr2", GG20, key.parties, 3, "alice", share))
    with_path = relay.refresh("gr3", GG20, key.parties, 2, "alice", share)
    with_path.derivation_path.append(1)
    assert "takes no message" in await refused(with_path)
    assert alice.running() == 0
