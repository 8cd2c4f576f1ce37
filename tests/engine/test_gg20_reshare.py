"""GG20 reshare through the engine (SESSION_KIND_RESHARE): the 2-of-3 recovery flow (a new
party "dave" replaces alice, who lost her share; bob and carol deal), the new party signing with
bob (coincurve, cryptography and eth_keys through check_ecdsa; the EVM address unchanged), every
honest message within the reshare bounds, and the old key still signing."""

from __future__ import annotations

from pathlib import Path

import eth_keys
import pytest

from enclave.crypto.primes import FixtureSource
from enclave.engine import limits
from enclave.errors import RequestRejected
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import GG20, Key
from tests.engine.test_gg20_refresh import _sign
from tests.engine.test_message_bounds import Sizes


def _address(public_key: bytes) -> str:
    return eth_keys.keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()  # type: ignore[no-any-return]


async def test_recovery_through_engines(tmp_path: Path, prime_source: FixtureSource, gg20_2of3: Key) -> None:
    key = gg20_2of3
    dave = relay.make_engines(["dave"], tmp_path, prime_source)
    engines = {**key.engines, **dave}
    try:
        new_parties = ("dave", "bob", "carol")
        source = (key.parties, 2, ("bob", "carol"))
        src = (key.key_id, key.public_key, key.chain_code)
        keys = relay.listed(engines, new_parties, source[2])
        starts = {
            p: relay.reshare(
                "gg20-reshare", GG20, source, (new_parties, 2), p, key.shares.get(p) if p != "dave" else None, src, keys
            )
            for p in new_parties
        }
        sizes = Sizes()
        new = relay.results(await relay.run(engines, starts, sizes))
        sizes.check(limits.for_session("gg20", "reshare", 3, 2, 2048), 0.9)
        kid = new["dave"].key_id
        assert kid != key.key_id
        for r in new.values():
            assert (r.key_id, r.public_key, r.chain_code, r.predecessor_key_id) == (
                kid,
                key.public_key,
                key.chain_code,
                key.key_id,
            )
        assert _address(new["dave"].public_key) == _address(key.public_key)
        shares = {p: r.sealed_share for p, r in new.items()}
        moved = Key(engines, new_parties, 2, shares, kid, key.public_key, key.chain_code)
        await _sign(moved, shares, ("dave", "bob"), "gg20-reshared-db")
        await _sign(moved, shares, ("carol", "dave"), "gg20-reshared-cd", path=(3,))
        await _sign(key, key.shares, ("bob", "carol"), "gg20-old-still")
    finally:
        for e in dave.values():
            e.close()


async def test_a_leaving_dealer_gets_the_key_id_and_no_share(
    tmp_path: Path, prime_source: FixtureSource, gg20_2of3: Key
) -> None:
    key = gg20_2of3
    new_parties = ("alice", "bob")  # 2-of-3 to 2-of-2; carol deals and leaves
    source = (key.parties, 2, ("alice", "bob", "carol"))
    src = (key.key_id, key.public_key, key.chain_code)
    starts = {
        p: relay.reshare("gg20-shrink", GG20, source, (new_parties, 2), p, key.shares[p], src, {}) for p in key.parties
    }
    out = relay.results(await relay.run(key.engines, starts))
    assert not out["carol"].HasField("sealed_share") and out["carol"].key_id == out["alice"].key_id
    assert out["carol"].predecessor_key_id == key.key_id
    shares = {p: out[p].sealed_share for p in new_parties}
    await _sign(
        Key(key.engines, new_parties, 2, shares, out["alice"].key_id, key.public_key, key.chain_code),
        shares,
        new_parties,
        "gg20-shrunk",
    )
    assert pb.SESSION_KIND_RESHARE == 5


async def test_gg20_reshare_request_rules(tmp_path: Path, prime_source: FixtureSource, gg20_2of3: Key) -> None:
    key = gg20_2of3
    dave = relay.make_engines(["dave"], tmp_path, prime_source)
    try:
        source = (key.parties, 2, ("bob", "carol"))
        src = (key.key_id, key.public_key, key.chain_code)

        async def refused(name: str, start: pb.SessionStart) -> str:
            engine = dave["dave"] if name == "dave" else key.engines[name]
            with pytest.raises(RequestRejected) as exc:
                await engine.start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT, exc.value.message
            return exc.value.message

        new = (("dave", "bob", "carol"), 2)
        keys = {"dave": dave["dave"].identity.public_key}
        start = relay.reshare("rr1", GG20, source, new, "dave", None, src, keys)
        start.source_chain_code = b""
        assert "source_chain_code (32 bytes)" in await refused("dave", start)
        start = relay.reshare("rr2", GG20, source, new, "dave", None, src, keys)
        start.source_public_key = b"\x02" + bytes(32)
        assert "not a valid key" in await refused("dave", start)
        start = relay.reshare("rr3", GG20, (key.parties, 3, ("bob", "carol")), new, "bob", key.shares["bob"], src, keys)
        assert "at least source_threshold (3)" in await refused("bob", start)
        start = relay.reshare(
            "rr4", GG20, (("carol", "bob", "alice"), 2, ("bob", "carol")), new, "bob", key.shares["bob"], src, keys
        )
        assert "in the key's order" in await refused("bob", start)
        start = relay.reshare("rr5", GG20, source, new, "bob", None, src, keys)
        assert "needs its sealed share" in await refused("bob", start)
        assert all(e.running() == 0 for e in (*key.engines.values(), dave["dave"]))
    finally:
        for e in dave.values():
            e.close()
