"""FROST share repair through the engine (SESSION_KIND_REPAIR): the client of a 2-of-3 key loses
its share, signer and backup rebuild it under the same key id for every suite and the client
signs with the signer again (libsodium, libsecp256k1's BIP340 verifier or ZF frost check the
signature); a relay that gives the repaired party another key's chain code, a host posing as
the repaired party, the policy gate on helpers, and the request rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from door.digests import REPAIR_APPROVAL_HASH, repair_digest
from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, limits
from enclave.engine.approval import encode_approval
from enclave.errors import RequestRejected
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.test_frost_refresh import PROTOCOLS, verify
from tests.engine.test_message_bounds import Sizes

PARTIES = ("client", "signer", "backup")
HELPERS = ("signer", "backup")


def _engines(tmp: Path, source: FixtureSource) -> tuple[dict[str, Engine], dict[str, EnclaveIdentity]]:
    engines = relay.make_engines(PARTIES, tmp, source)
    return engines, {p: e.identity for p, e in engines.items()}


async def _dkg(engines: Any, protocol: int) -> dict[str, pb.SessionResult]:
    starts = {p: relay.dkg("dkg", protocol, PARTIES, 2, p) for p in PARTIES}
    return relay.results(await relay.run(engines, starts))


def _starts(
    protocol: int, old: dict[str, pb.SessionResult], key: bytes, sid: str = "repair"
) -> dict[str, pb.SessionStart]:
    k = (PARTIES, 2, old["signer"])
    return {
        p: relay.repair(sid, protocol, k, HELPERS, ("client", key), p, old[p].sealed_share if p != "client" else None)
        for p in ("client", *HELPERS)
    }


async def _sign(engines: Any, protocol: int, signers: Any, shares: Any, message: bytes, sid: str) -> pb.SessionResult:
    starts = {p: relay.sign(sid, protocol, signers, p, shares[p], message) for p in signers}
    return relay.results(await relay.run(engines, starts))[signers[0]]


@pytest.mark.parametrize("suite", sorted(PROTOCOLS))
async def test_the_client_gets_its_share_back_and_signs(
    tmp_path: Path, prime_source: FixtureSource, suite: str
) -> None:
    protocol = PROTOCOLS[suite]
    engines, ids = _engines(tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol)
        first = old["signer"]
        sizes = Sizes()  # every honest message is within the repair bounds, and they are tight
        out = relay.results(await relay.run(engines, _starts(protocol, old, ids["client"].public_key), sizes))
        element = 32 if protocol == pb.PROTOCOL_FROST_ED25519 else 33
        sizes.check(limits.MessageLimits(tuple(limits.frost_repair(3, 3, 2, element))), 1.0)
        for r in out.values():  # the same key: same id, public key and chain code
            assert (r.key_id, r.public_key, r.chain_code) == (first.key_id, first.public_key, first.chain_code)
            assert not r.predecessor_key_id
        assert out["client"].sealed_share.id == first.key_id
        assert not out["signer"].HasField("sealed_share") and not out["backup"].HasField("sealed_share")
        shares = {"client": out["client"].sealed_share, **{h: old[h].sealed_share for h in HELPERS}}
        for k, signers in enumerate([("client", "signer"), ("backup", "client")]):
            message = f"repaired {k}".encode()
            signed = await _sign(engines, protocol, signers, shares, message, f"s-{k}")
            assert signed.key_id == first.key_id
            verify(protocol, first.public_key, message, signed.signature)
    finally:
        for e in engines.values():
            e.close()


async def test_a_wrong_chain_code_for_the_repaired_party_aborts_naming_nobody(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines, ids = _engines(tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol)
        starts = _starts(protocol, old, ids["client"].public_key)
        starts["client"].source_chain_code = bytes(32)
        updates = await relay.run(engines, starts)
        assert all(u.state == pb.SESSION_STATE_FAILED and not u.culprits for u in updates.values())
        assert not updates["client"].HasField("result")
    finally:
        for e in engines.values():
            e.close()


async def test_a_host_posing_as_the_repaired_party_is_named(tmp_path: Path, prime_source: FixtureSource) -> None:
    """The relay lists the client's enclave key, but the host runs the client's side in another
    enclave (the signer's, as if the client's machine were gone): that enclave refuses to sign
    under a key that is not its own; and a message signed by any other key is named by the helpers."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines, ids = _engines(tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol)
        starts = _starts(protocol, old, ids["client"].public_key, "posing")
        with pytest.raises(RequestRejected) as exc:
            await engines["signer"].start(starts["client"])
        assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION and "identity key" in exc.value.message

        def resign(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            if m.sender == "client" and m.round == 1:
                bad = pb.EnclaveMessage()
                bad.CopyFrom(m)
                bad.payload = m.payload[:-1] + bytes([m.payload[-1] ^ 1])  # the signature's last byte
                return bad
            return m

        updates = await relay.run(engines, _starts(protocol, old, ids["client"].public_key, "resigned"), resign)
        for h in HELPERS:
            assert updates[h].state == pb.SESSION_STATE_FAILED and list(updates[h].culprits) == ["client"]
    finally:
        for e in engines.values():
            e.close()


async def test_with_a_policy_every_helper_needs_an_approval_of_this_repair(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """The repaired share goes to whoever holds the listed key: with a policy, a helper starts only
    with an approval naming the key's parties, the helpers, the repaired party and that key."""
    protocol = pb.PROTOCOL_FROST_ED25519
    policy_key = ec.generate_private_key(ec.SECP256R1())
    engines, ids = _engines(tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol)
        for e in engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        kid, client_key = old["signer"].key_id, ids["client"].public_key

        def approve(sid: str, digest: bytes) -> pb.PolicyApproval:
            expires = int(time.time()) + 60
            signed = approval_message(ApprovalSubject(kid, REPAIR_APPROVAL_HASH, digest, (), "", sid), expires)
            return encode_approval(expires, policy_key.sign(signed, ec.ECDSA(hashes.SHA256())))

        starts = _starts(protocol, old, client_key, "gated")
        with pytest.raises(RequestRejected) as exc:
            await engines["signer"].start(starts["signer"])
        assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
        # an approval of the same repair for another key (a host's own) does not do
        other = repair_digest(PARTIES, 2, HELPERS, "client", EnclaveIdentity.generate().public_key)
        starts["signer"].policy_approval.CopyFrom(approve("gated", other))
        with pytest.raises(RequestRejected) as exc:
            await engines["signer"].start(starts["signer"])
        assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
        good = approve("gated", repair_digest(PARTIES, 2, HELPERS, "client", client_key))
        for h in HELPERS:
            starts[h].policy_approval.CopyFrom(good)
        out = relay.results(await relay.run(engines, starts))  # the client itself needs none
        for e in engines.values():
            e.policy = None
        shares = {"client": out["client"].sealed_share, "signer": old["signer"].sealed_share}
        signed = await _sign(engines, protocol, ("client", "signer"), shares, b"gated", "after-gated")
        verify(protocol, old["signer"].public_key, b"gated", signed.signature)
    finally:
        for e in engines.values():
            e.close()


async def test_repair_request_rules(tmp_path: Path, prime_source: FixtureSource) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines, ids = _engines(tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol)
        ok = _starts(protocol, old, ids["client"].public_key)

        async def refused(name: str, change: Callable[[pb.SessionStart], Any]) -> str:
            start = pb.SessionStart()
            start.CopyFrom(ok[name])
            change(start)
            with pytest.raises(RequestRejected) as exc:
                await engines[name].start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT, exc.value.message
            return exc.value.message

        def few(s: pb.SessionStart) -> None:
            del s.source_signers[1:]

        assert "at least threshold (2) helpers" in await refused("signer", few)
        assert "not repair_party_id" in await refused("signer", lambda s: s.source_signers.append("client"))
        assert "one of party_ids" in await refused("signer", lambda s: setattr(s, "repair_party_id", "nobody"))
        assert "needs its sealed share" in await refused("signer", lambda s: s.ClearField("sealed_blobs"))
        assert "brings no sealed share" in await refused(
            "client", lambda s: s.sealed_blobs.append(old["signer"].sealed_share)
        )
        assert "needs source_public_key" in await refused("client", lambda s: s.ClearField("source_public_key"))
        assert "not a valid key" in await refused("client", lambda s: setattr(s, "source_public_key", bytes(32)))
        assert "source_chain_code must be 32" in await refused(
            "client", lambda s: setattr(s, "source_chain_code", b"x")
        )
        assert "do not match" in await refused("signer", lambda s: setattr(s, "source_public_key", bytes(32)))
        assert "the key's (party_ids in the key's order)" in await refused(
            "signer", lambda s: s.party_ids.__setitem__(slice(None), ["signer", "client", "backup"])
        )
        assert "keeps the key's parties" in await refused("signer", lambda s: setattr(s, "source_threshold", 2))
        assert "exactly repair_party_id" in await refused("signer", lambda s: s.new_party_keys.clear())
        assert "exactly repair_party_id" in await refused(
            "signer", lambda s: s.new_party_keys.__setitem__("signer", ids["signer"].public_key)
        )
        assert "takes no message" in await refused("signer", lambda s: setattr(s, "message", b"m"))
        gg20 = pb.SessionStart()
        gg20.CopyFrom(ok["signer"])
        gg20.protocol = pb.PROTOCOL_GG20_SECP256K1
        with pytest.raises(RequestRejected) as exc:
            await engines["signer"].start(gg20)
        assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
        assert all(e.running() == 0 for e in engines.values())
    finally:
        for e in engines.values():
            e.close()


async def test_with_no_policy_a_helper_refuses_unless_the_operator_allows_it(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """The default: no policy, no --allow-reshare-without-policy. Whoever lists the repaired
    party's key would get that party's whole share, so a helper refuses before it deals; the
    repaired party itself gives nothing away and may start."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(PARTIES, tmp_path, prime_source, allow_reshare_without_policy=False)
    try:
        old = await _dkg(engines, protocol)
        starts = _starts(protocol, old, engines["client"].identity.public_key)
        for h in HELPERS:
            with pytest.raises(RequestRejected) as exc:
                await engines[h].start(starts[h])
            assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION
            assert "needs a policy configured" in exc.value.message, exc.value.message
        update = await engines["client"].start(starts["client"])
        assert update.state == pb.SESSION_STATE_RUNNING
    finally:
        for e in engines.values():
            e.close()
