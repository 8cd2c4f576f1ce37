"""FROST refresh through the engine (SESSION_KIND_REFRESH) for every suite: a new key id for the
same public key, new sealed shares that sign (checked by libsodium, libsecp256k1's BIP340
verifier, or ZF frost and signer.client.verify for FROST(secp256k1)), the old shares still
signing, old and new shares never mixing, request rules, and a cheating party named."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, EngineConfig
from enclave.engine.keyids import key_id
from enclave.errors import RequestRejected
from enclave.sealing import generate_key_file
from mpc.v1 import enclave_pb2 as pb
from tests.enclave.frost import derivation_rule
from tests.engine import relay
from tests.engine.test_frost_secp256k1 import check as check_secp256k1

PARTIES = ("alice", "bob", "carol")
PROTOCOLS = {
    "ed25519": pb.PROTOCOL_FROST_ED25519,
    "secp256k1": pb.PROTOCOL_FROST_SECP256K1,
    "taproot": pb.PROTOCOL_FROST_SECP256K1_TR,
}
NAMES = {pb.PROTOCOL_FROST_ED25519: "frost-ed25519", pb.PROTOCOL_FROST_SECP256K1: "frost-secp256k1"}


def verify(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> None:
    if protocol == pb.PROTOCOL_FROST_ED25519:
        VerifyKey(public_key).verify(message, signature)
    else:
        check_secp256k1(protocol, public_key, message, signature)


async def _dkg(engines, protocol, parties, t, sid="dkg"):  # type: ignore[no-untyped-def]
    return relay.results(await relay.run(engines, {p: relay.dkg(sid, protocol, parties, t, p) for p in parties}))


async def _refresh(engines, protocol, parties, t, shares, sid="refresh", tamper=None):  # type: ignore[no-untyped-def]
    starts = {p: relay.refresh(sid, protocol, parties, t, p, shares[p]) for p in parties}
    return await relay.run(engines, starts, tamper)


async def _sign(engines, protocol, signers, shares, message, sid):  # type: ignore[no-untyped-def]
    starts = {p: relay.sign(sid, protocol, signers, p, shares[p], message) for p in signers}
    return await relay.run(engines, starts)


@pytest.mark.parametrize("suite", sorted(PROTOCOLS))
async def test_refresh_then_sign_under_the_same_key(tmp_path: Path, prime_source: FixtureSource, suite: str) -> None:
    protocol = PROTOCOLS[suite]
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, PARTIES, 2)
        old_shares = {p: r.sealed_share for p, r in old.items()}
        first = old["alice"]
        new = relay.results(await _refresh(engines, protocol, PARTIES, 2, old_shares))
        kid = new["alice"].key_id
        assert kid != first.key_id and kid != key_id(
            NAMES.get(protocol, "frost-secp256k1-tr"), "refresh", 2, PARTIES, first.public_key
        )
        for r in new.values():
            assert (r.key_id, r.public_key, r.chain_code) == (kid, first.public_key, first.chain_code)
            assert r.predecessor_key_id == first.key_id
            assert r.sealed_share.id == kid and r.sealed_share.kind == pb.SEALED_BLOB_KIND_KEY_SHARE
        new_shares = {p: r.sealed_share for p, r in new.items()}
        for k, signers in enumerate([("alice", "bob"), ("bob", "carol"), ("alice", "carol")]):
            message = f"after refresh {k}".encode()
            out = relay.results(await _sign(engines, protocol, signers, new_shares, message, f"new-{k}"))
            assert {o.key_id for o in out.values()} == {kid}
            verify(protocol, first.public_key, message, out[signers[0]].signature)
        # a child key of the refreshed key is the child of the old one (same chain code)
        suite_name = {pb.PROTOCOL_FROST_ED25519: "frost-ed25519", pb.PROTOCOL_FROST_SECP256K1: "frost-secp256k1"}.get(
            protocol, "frost-secp256k1-tr"
        )
        child, _ = derivation_rule.child_key(suite_name, first.public_key, first.chain_code, (5, 1))
        starts = {
            p: relay.sign("child", protocol, ("alice", "bob"), p, new_shares[p], b"child", path=(5, 1))
            for p in ("alice", "bob")
        }
        out = relay.results(await relay.run(engines, starts))
        assert out["alice"].public_key == child
        verify(protocol, child, b"child", out["alice"].signature)
        # the old key keeps signing until it is retired
        out = relay.results(await _sign(engines, protocol, ("alice", "carol"), old_shares, b"old", "old-0"))
        verify(protocol, first.public_key, b"old", out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()


async def test_old_and_new_shares_do_not_mix(tmp_path: Path, prime_source: FixtureSource) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, PARTIES, 2)
        new = relay.results(await _refresh(engines, protocol, PARTIES, 2, {p: r.sealed_share for p, r in old.items()}))
        # alice brings the old key's share, bob the new key's (a host swapping blobs): each
        # enclave checks the other's signature share against its own key's verifying shares,
        # so the session fails at both instead of producing a signature
        mixed = {"alice": old["alice"].sealed_share, "bob": new["bob"].sealed_share}
        starts = {p: relay.sign("mixed", protocol, ("alice", "bob"), p, mixed[p], b"m") for p in mixed}
        updates = await relay.run(engines, starts)
        assert updates["alice"].state == updates["bob"].state == pb.SESSION_STATE_FAILED
        assert (list(updates["alice"].culprits), list(updates["bob"].culprits)) == (["bob"], ["alice"])
        assert updates["alice"].reason == "invalid signature share"
    finally:
        for e in engines.values():
            e.close()


async def test_refresh_request_rules(tmp_path: Path, prime_source: FixtureSource) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, PARTIES, 2)
        share = old["alice"].sealed_share

        async def refused(start: pb.SessionStart) -> str:
            with pytest.raises(RequestRejected) as exc:
                await engines["alice"].start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
            return exc.value.message

        reordered = relay.refresh("r1", protocol, ("bob", "alice", "carol"), 2, "alice", share)
        assert "in the key's order" in await refused(reordered)
        fewer = relay.refresh("r2", protocol, ("alice", "bob"), 2, "alice", share)
        assert "party_ids must be the key's" in await refused(fewer)
        higher = relay.refresh("r3", protocol, PARTIES, 3, "alice", share)
        assert "keeps the key's threshold (2)" in await refused(higher)
        with_message = relay.refresh("r4", protocol, PARTIES, 2, "alice", share)
        with_message.message = b"sign this"
        assert "takes no message" in await refused(with_message)
        assert engines["alice"].running() == 0
    finally:
        for e in engines.values():
            e.close()


async def test_a_bad_zero_share_names_its_dealer(tmp_path: Path, prime_source: FixtureSource) -> None:
    """carol's round-2 ciphertext to alice is altered: alice names carol and keeps the old key."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, PARTIES, 2)
        shares = {p: r.sealed_share for p, r in old.items()}

        def tamper(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            if m.sender == "carol" and recipient == "alice" and m.recipient == "alice":
                bad = pb.EnclaveMessage()
                bad.CopyFrom(m)
                body = bytearray(bad.payload)
                body[-1] ^= 1
                bad.payload = bytes(body)
                return bad
            return m

        updates = await _refresh(engines, protocol, PARTIES, 2, shares, tamper=tamper)
        assert updates["alice"].state == pb.SESSION_STATE_FAILED
        assert list(updates["alice"].culprits) == ["carol"]
        out = relay.results(await _sign(engines, protocol, ("alice", "bob"), shares, b"still", "still"))
        verify(protocol, old["alice"].public_key, b"still", out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()


async def test_a_second_refresh_under_the_same_session_id_gets_another_key_id(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """Successor key ids cover the new shares: a host replaying a refresh's session id (or the
    DKG's) after an enclave restart never gets one id for two different sharings, nor the
    source's own id."""
    protocol = pb.PROTOCOL_FROST_ED25519
    sealers = {p: generate_key_file(tmp_path / f"{p}.key") for p in PARTIES}

    def boot() -> dict[str, Engine]:
        config = EngineConfig(preparams_pool_size=1, workers=2)
        return {p: Engine(sealers[p], config=config, prime_source=prime_source) for p in PARTIES}

    engines = boot()
    try:
        old = await _dkg(engines, protocol, PARTIES, 2, sid="same-id")
        shares = {p: r.sealed_share for p, r in old.items()}
        first = relay.results(await _refresh(engines, protocol, PARTIES, 2, shares, sid="again"))
        for e in engines.values():  # a restart forgets the finished session ids
            e.close()
        engines = boot()
        second = relay.results(await _refresh(engines, protocol, PARTIES, 2, shares, sid="again"))
        reused = relay.results(await _refresh(engines, protocol, PARTIES, 2, shares, sid="same-id"))
        ids = [old["alice"].key_id, first["alice"].key_id, second["alice"].key_id, reused["alice"].key_id]
        assert len(set(ids)) == 4, ids
    finally:
        for e in engines.values():
            e.close()
