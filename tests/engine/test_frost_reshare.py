"""FROST reshare through the engine (SESSION_KIND_RESHARE): the 2-of-3 recovery flow for every
suite (the new client signs with the signer; libsodium, libsecp256k1's BIP340 verifier or ZF
frost check the signature), 2-of-2 to 2-of-3 with a dealer that leaves, a wrong chain code given
to the new party, and the request rules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from door.digests import RESHARE_APPROVAL_HASH, reshare_digest
from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, limits
from enclave.engine.approval import encode_approval
from enclave.errors import RequestRejected
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb
from signer.policy.approvals import signed_digest
from tests.engine import relay
from tests.engine.test_frost_refresh import PROTOCOLS, verify
from tests.engine.test_message_bounds import Sizes

OLD = ("client", "signer", "backup")
NEW = ("client2", "signer", "backup")
ALL = ("client", "signer", "backup", "client2")


async def _dkg(engines: Any, protocol: int, parties: Any, t: int) -> dict[str, pb.SessionResult]:
    starts = {p: relay.dkg("dkg", protocol, parties, t, p) for p in parties}
    return relay.results(await relay.run(engines, starts))


def _starts(
    engines: Any,
    protocol: int,
    old: dict[str, pb.SessionResult],
    source: tuple[Any, int, Any],
    new: tuple[Any, int],
    sid: str = "reshare",
) -> dict[str, pb.SessionStart]:
    first = next(iter(old.values()))
    key = (first.key_id, first.public_key, first.chain_code)
    parties = list(new[0]) + [d for d in source[2] if d not in new[0]]
    keys = relay.listed(engines, new[0], source[2])
    return {
        p: relay.reshare(sid, protocol, source, new, p, old[p].sealed_share if p in source[2] else None, key, keys)
        for p in parties
    }


async def _sign(engines: Any, protocol: int, signers: Any, shares: Any, message: bytes, sid: str) -> pb.SessionResult:
    starts = {p: relay.sign(sid, protocol, signers, p, shares[p], message) for p in signers}
    return relay.results(await relay.run(engines, starts))[signers[0]]


@pytest.mark.parametrize("suite", sorted(PROTOCOLS))
async def test_recovery_the_new_client_signs_with_the_signer(
    tmp_path: Path, prime_source: FixtureSource, suite: str
) -> None:
    """The client lost its share; signer and backup reshare to {client2, signer, backup}."""
    protocol = PROTOCOLS[suite]
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        first = old["signer"]
        sizes = Sizes()  # every honest message is within the reshare bounds, and they are tight
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2))
        new = relay.results(await relay.run(engines, starts, sizes))
        element = 32 if protocol == pb.PROTOCOL_FROST_ED25519 else 33
        sizes.check(limits.for_session("frost", "reshare", 3, 2, 2048, element_len=element), 1.0)
        kid = new["client2"].key_id
        assert kid != first.key_id
        for r in new.values():
            assert (r.key_id, r.public_key, r.chain_code) == (kid, first.public_key, first.chain_code)
            assert r.predecessor_key_id == first.key_id and r.sealed_share.id == kid
        shares = {p: r.sealed_share for p, r in new.items()}
        for k, signers in enumerate([("client2", "signer"), ("client2", "backup"), ("signer", "backup")]):
            message = f"recovered {k}".encode()
            out = await _sign(engines, protocol, signers, shares, message, f"new-{k}")
            assert out.key_id == kid
            verify(protocol, first.public_key, message, out.signature)
        # the old key is untouched: it still signs until the host retires it
        out = await _sign(
            engines, protocol, ("signer", "backup"), {p: r.sealed_share for p, r in old.items()}, b"o", "o"
        )
        verify(protocol, first.public_key, b"o", out.signature)
    finally:
        for e in engines.values():
            e.close()


async def test_2_of_2_becomes_2_of_3_and_a_leaving_dealer_gets_no_share(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, ("client", "signer"), 2)
        grown = relay.results(
            await relay.run(
                engines, _starts(engines, protocol, old, (("client", "signer"), 2, ("client", "signer")), (OLD, 2))
            )
        )
        shares = {p: r.sealed_share for p, r in grown.items()}
        verify(
            protocol,
            old["client"].public_key,
            b"g",
            (await _sign(engines, protocol, ("backup", "signer"), shares, b"g", "g")).signature,
        )
        # then the signer node is replaced: client and backup deal to {client, client2, backup}
        moved = relay.results(
            await relay.run(
                engines,
                _starts(
                    engines,
                    protocol,
                    grown,
                    (OLD, 2, ("client", "signer", "backup")),
                    (("client", "client2", "backup"), 2),
                    "mv",
                ),
            )
        )
        assert not moved["signer"].HasField("sealed_share") and moved["signer"].key_id == moved["client"].key_id
        assert moved["signer"].predecessor_key_id == grown["client"].key_id
        shares = {p: r.sealed_share for p, r in moved.items() if p != "signer"}
        out = await _sign(engines, protocol, ("client2", "backup"), shares, b"m", "m")
        verify(protocol, old["client"].public_key, b"m", out.signature)
    finally:
        for e in engines.values():
            e.close()


async def test_a_wrong_chain_code_for_the_new_party_aborts_naming_nobody(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2))
        starts["client2"].source_chain_code = bytes(32)
        updates = await relay.run(engines, starts)
        assert all(u.state == pb.SESSION_STATE_FAILED and not u.culprits for u in updates.values())
    finally:
        for e in engines.values():
            e.close()


async def test_reshare_request_rules(tmp_path: Path, prime_source: FixtureSource) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        ok = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2))

        async def refused(name: str, change: Any) -> str:
            start = pb.SessionStart()
            start.CopyFrom(ok[name])
            change(start)
            engine: Engine = engines[name]
            with pytest.raises(RequestRejected) as exc:
                await engine.start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT, exc.value.message
            return exc.value.message

        def few(s: pb.SessionStart) -> None:
            del s.source_signers[1:]

        assert "at least source_threshold (2)" in await refused("signer", few)
        assert "distinct parties of source_party_ids" in await refused(
            "signer", lambda s: s.source_signers.append("client2")
        )
        assert "needs its sealed share" in await refused("signer", lambda s: s.ClearField("sealed_blobs"))
        assert "only a party of source_signers" in await refused(
            "client2", lambda s: s.sealed_blobs.append(old["client"].sealed_share)
        )
        assert "needs source_public_key" in await refused("client2", lambda s: s.ClearField("source_public_key"))
        assert "source_chain_code must be 32" in await refused(
            "client2", lambda s: setattr(s, "source_chain_code", b"x")
        )
        assert "threshold (the new key's)" in await refused("signer", lambda s: setattr(s, "threshold", 4))
        assert "source_threshold must be" in await refused("signer", lambda s: setattr(s, "source_threshold", 1))

        def higher(s: pb.SessionStart) -> None:
            s.source_threshold = 3
            s.source_signers.append("client")

        assert "source key's threshold (2)" in await refused("signer", higher)
        assert "self_party_id must be" in await refused("client2", lambda s: setattr(s, "self_party_id", "nobody"))
        assert "in the key's order" in await refused(
            "signer", lambda s: s.source_party_ids.__setitem__(slice(None), ["signer", "client", "backup"])
        )
        assert "takes no message" in await refused("signer", lambda s: setattr(s, "message", b"m"))
        assert "do not match" in await refused("signer", lambda s: setattr(s, "source_public_key", bytes(32)))
        assert "not a valid key" in await refused("client2", lambda s: setattr(s, "source_public_key", bytes(32)))
        assert all(e.running() == 0 for e in engines.values())
    finally:
        for e in engines.values():
            e.close()


async def test_a_bad_sub_share_names_its_dealer_and_the_old_key_still_signs(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    protocol = pb.PROTOCOL_FROST_SECP256K1
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)

        def tamper(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            if m.sender == "backup" and m.recipient == "client2" and m.round == 2:
                bad = pb.EnclaveMessage()
                bad.CopyFrom(m)
                bad.payload = m.payload[:-1] + bytes([m.payload[-1] ^ 1])
                return bad
            return m

        updates = await relay.run(
            engines, _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2)), tamper
        )
        assert updates["client2"].state == pb.SESSION_STATE_FAILED
        assert list(updates["client2"].culprits) == ["backup"]
        shares = {p: r.sealed_share for p, r in old.items()}
        out = await _sign(engines, protocol, ("signer", "backup"), shares, b"still", "still")
        verify(protocol, old["signer"].public_key, b"still", out.signature)
    finally:
        for e in engines.values():
            e.close()


async def test_with_a_policy_every_dealer_needs_an_approval_of_this_reshare(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """A dealer's sub-shares reveal its share to whoever plays t_new receivers (its own host
    could): with a policy configured the dealer starts only with an approval of these party sets
    and thresholds; the new party needs none."""
    protocol = pb.PROTOCOL_FROST_ED25519
    policy_key = ec.generate_private_key(ec.SECP256R1())
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        for e in engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        kid = old["signer"].key_id

        def approve(sid: str, digest: bytes) -> pb.PolicyApproval:
            expires = int(time.time()) + 60
            signed = approval_message(ApprovalSubject(kid, RESHARE_APPROVAL_HASH, digest, (), "", sid), expires)
            return encode_approval(expires, policy_key.sign(signed, ec.ECDSA(hashes.SHA256())))

        dealers = ("signer", "backup")
        starts = _starts(engines, protocol, old, (OLD, 2, dealers), (NEW, 2), "gated")
        with pytest.raises(RequestRejected) as exc:
            await engines["signer"].start(starts["signer"])
        assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
        keys = dict(starts["signer"].new_party_keys)
        # an approval of another new party set, or of another key for client2, does not do
        mallory = EnclaveIdentity.generate().public_key
        for other in (
            reshare_digest(OLD, 2, dealers, ("mallory", "signer", "backup"), 2, {"mallory": keys["client2"]}),
            reshare_digest(OLD, 2, dealers, NEW, 2, {"client2": mallory}),
        ):
            starts["signer"].policy_approval.CopyFrom(approve("gated", other))
            with pytest.raises(RequestRejected) as exc:
                await engines["signer"].start(starts["signer"])
            assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
        good = approve("gated", reshare_digest(OLD, 2, dealers, NEW, 2, keys))
        # the host asks the policy service for the digest the enclave checks
        assert signed_digest(starts["signer"]) == (RESHARE_APPROVAL_HASH, reshare_digest(OLD, 2, dealers, NEW, 2, keys))
        for d in dealers:
            starts[d].policy_approval.CopyFrom(good)
        new = relay.results(await relay.run(engines, starts))
        shares = {p: r.sealed_share for p, r in new.items()}
        for e in engines.values():
            e.policy = None
        out = await _sign(engines, protocol, ("client2", "signer"), shares, b"gated", "after-gated")
        verify(protocol, old["signer"].public_key, b"gated", out.signature)
    finally:
        for e in engines.values():
            e.close()


# -- who receives a share: new_party_keys and round-one authentication ---------------------------


async def test_the_host_substituting_a_new_partys_key_is_named(tmp_path: Path, prime_source: FixtureSource) -> None:
    """client2's round-one message changed on the way, or the dealers told another key for
    client2 (one the host holds): the dealers name client2 and nobody gets a share."""
    protocol = pb.PROTOCOL_FROST_SECP256K1_TR
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)

        def flip(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            if m.sender == "client2" and m.round == 1:
                bad = pb.EnclaveMessage()
                bad.CopyFrom(m)
                bad.payload = m.payload[:-70] + bytes([m.payload[-70] ^ 1]) + m.payload[-69:]
                return bad
            return m

        host_key = EnclaveIdentity.generate().public_key
        for sid, tamper in (("flipped", flip), ("host-key", None)):
            starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2), sid)
            if tamper is None:
                for d in ("signer", "backup"):
                    starts[d].new_party_keys["client2"] = host_key
            updates = await relay.run(engines, starts, tamper)
            for d in ("signer", "backup"):
                assert updates[d].state == pb.SESSION_STATE_FAILED and list(updates[d].culprits) == ["client2"]
                assert "not authenticated" in updates[d].reason, updates[d].reason
            assert not any(u.result.HasField("sealed_share") for u in updates.values())
        # the host key told to one dealer only: the listed keys are part of the view, so the
        # other dealer aborts too (naming nobody) before it deals
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2), "split")
        starts["signer"].new_party_keys["client2"] = host_key
        updates = await relay.run(engines, starts)
        assert list(updates["signer"].culprits) == ["client2"]
        assert updates["backup"].state == pb.SESSION_STATE_FAILED and not updates["backup"].culprits
        assert "disagree" in updates["backup"].reason
        assert not any(u.result.HasField("sealed_share") for u in updates.values())
    finally:
        for e in engines.values():
            e.close()


async def test_a_round_one_message_replayed_from_another_reshare_is_named(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        first: dict[str, pb.EnclaveMessage] = {}

        def record(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            if m.round == 1 and recipient == "signer":
                first[m.sender] = m
            return m

        relay.results(
            await relay.run(
                engines, _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2), "a"), record
            )
        )
        for sender in ("backup", "client2"):

            def replay(recipient: str, m: pb.EnclaveMessage, sender: str = sender) -> pb.EnclaveMessage:
                return first[sender] if m.sender == sender and m.round == 1 else m

            starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2), f"b-{sender}")
            updates = await relay.run(engines, starts, replay)
            assert list(updates["signer"].culprits) == [sender] and "not authenticated" in updates["signer"].reason
    finally:
        for e in engines.values():
            e.close()


async def test_who_is_a_new_party_is_checked_at_start(tmp_path: Path, prime_source: FixtureSource) -> None:
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        ok = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2))

        async def refused(name: str, change: Any, code: int = pb.ERROR_CODE_INVALID_ARGUMENT) -> str:
            start = pb.SessionStart()
            start.CopyFrom(ok[name])
            change(start)
            with pytest.raises(RequestRejected) as exc:
                await engines[name].start(start)
            assert exc.value.code == code, exc.value.message
            return exc.value.message

        def old_client(s: pb.SessionStart) -> None:  # the host poses as the old client, no dealer
            s.party_ids[0] = "client"
            del s.new_party_keys["client2"]

        assert "neither a dealer (source_signers) nor listed" in await refused("signer", old_client)
        assert "neither a dealer" in await refused("signer", lambda s: s.new_party_keys.clear())
        key = ok["signer"].new_party_keys["client2"]
        assert "not one of party_ids" in await refused("signer", lambda s: s.new_party_keys.__setitem__("x", key))
        assert "is a dealer" in await refused("signer", lambda s: s.new_party_keys.__setitem__("backup", key))
        for bad in (key[:-1], b"\x04" + bytes(64), b"\x02" + key[1:33]):
            assert "not a P-256 public key" in await refused(
                "signer", lambda s, bad=bad: s.new_party_keys.__setitem__("client2", bad)
            )
        other = EnclaveIdentity.generate().public_key
        assert "is not this enclave's identity key" in await refused(
            "client2", lambda s: s.new_party_keys.__setitem__("client2", other), pb.ERROR_CODE_FAILED_PRECONDITION
        )
        assert all(e.running() == 0 for e in engines.values())
    finally:
        for e in engines.values():
            e.close()


async def test_two_new_parties_may_not_share_one_key(tmp_path: Path, prime_source: FixtureSource) -> None:
    """A host listing one identity key for two new parties would have one holder receive two
    shares while every dealer counts two parties: refused at start, at every party."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines((*ALL, "client3"), tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        new = ("client2", "client3", "signer", "backup")
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (new, 3))
        for name in ("signer", "backup", "client3"):
            start = pb.SessionStart()
            start.CopyFrom(starts[name])
            start.new_party_keys["client3"] = start.new_party_keys["client2"]
            with pytest.raises(RequestRejected) as exc:
                await engines[name].start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
            assert "one key for both 'client2' and 'client3'" in exc.value.message, exc.value.message
        assert all(e.running() == 0 for e in engines.values())
        # with a key each, the same reshare runs
        relay.results(await relay.run(engines, starts))
    finally:
        for e in engines.values():
            e.close()


async def test_without_a_policy_a_dealer_refuses_threshold_many_new_parties(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """Whoever picks t_new listed keys could rebuild a dealer's share: without a policy to approve
    them a dealer refuses; a party new to the key risks nothing and starts."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines((*ALL, "client3"), tmp_path, prime_source)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (("client2", "client3", "signer"), 2))
        assert len(starts["signer"].new_party_keys) == 2
        for d in ("signer", "backup"):
            with pytest.raises(RequestRejected) as exc:
                await engines[d].start(starts[d])
            assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION
            assert "could rebuild this dealer's share" in exc.value.message and "policy" in exc.value.message
        update = await engines["client2"].start(starts["client2"])
        assert update.state == pb.SESSION_STATE_RUNNING
        assert all(e.running() == 0 for n, e in engines.items() if n != "client2")
    finally:
        for e in engines.values():
            e.close()


async def test_with_no_policy_a_dealer_refuses_unless_the_operator_allows_it(
    tmp_path: Path, prime_source: FixtureSource
) -> None:
    """The default: no policy, no --allow-reshare-without-policy. A host listing its own key for
    one new party gets that party's share, and a second reshare in which that share deals hands it
    this dealer's sub-shares: a dealer refuses. A party new to the key risks nothing and starts."""
    protocol = pb.PROTOCOL_FROST_ED25519
    engines = relay.make_engines(ALL, tmp_path, prime_source, allow_reshare_without_policy=False)
    try:
        old = await _dkg(engines, protocol, OLD, 2)
        starts = _starts(engines, protocol, old, (OLD, 2, ("signer", "backup")), (NEW, 2), "no-policy")
        for d in ("signer", "backup"):
            with pytest.raises(RequestRejected) as exc:
                await engines[d].start(starts[d])
            assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION
            assert "needs a policy configured" in exc.value.message, exc.value.message
        update = await engines["client2"].start(starts["client2"])
        assert update.state == pb.SESSION_STATE_RUNNING
    finally:
        for e in engines.values():
            e.close()
