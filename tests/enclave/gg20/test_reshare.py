"""GG20 reshare (enclave.protocols.gg20.reshare): the 2-of-3 recovery flow and 2-of-2 to 2-of-3,
the new shares interpolating to the old secret and signing (libsecp256k1 and OpenSSL through
`check_signature`, the EVM address unchanged by eth_keys), and cheating dealers named.

Session ids: receivers 1..|R| (their new indices), leaving dealers after them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import eth_keys

from enclave.crypto.polynomial import commit, interpolate
from enclave.crypto.primes import FixtureSource, SafePrimePair
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import ORDER, Secp256k1Group
from enclave.protocols.driver import Driver, Frame, echo_digest
from enclave.protocols.gg20 import reshare
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.reshare_auth import ReshareAuth, unframe
from enclave.tee.identity import EnclaveIdentity
from enclave.zk import wire
from enclave.zk.wire import CborReader
from tests import harness
from tests.enclave.gg20.test_refresh import _sign
from tests.harness import Result, identity, run


def _primes(source: FixtureSource, avoid: set[int]) -> SafePrimePair:
    for _ in range(64):
        pair = source(2048)
        if pair.p * pair.q not in avoid:
            avoid.add(pair.p * pair.q)
            return pair
    raise AssertionError("the fixture source holds no new primes")


def drivers(
    source: FixtureSource,
    old: dict[int, KeyShare],
    dealers: dict[int, int],  # session id -> old index
    receivers: int,
    threshold: int,
    sid: bytes,
    changes: dict[int, dict[str, Any]] | None = None,
) -> list[Driver]:
    changes = changes or {}
    first = next(iter(old.values()))
    avoid = {a.n for a in first.aux.values()}
    listed = {p: identity(p).public_key for p in range(1, receivers + 1) if p not in dealers}
    out = []
    for p in sorted(set(range(1, receivers + 1)) | set(dealers)):
        setup = reshare.ReshareSetup(
            sid,
            p,
            receivers,
            dealers,
            threshold,
            first.threshold,
            first.public_key,
            first.chain_code,
            SYSTEM_RNG,
            old[dealers[p]] if p in dealers else None,
            b"ctx",
            new_party_keys=listed,
            sign=None if p in dealers else identity(p).sign,
        )
        if p in changes:
            setup = replace(setup, **changes[p])
        out.append(reshare.start(setup, _primes(source, avoid) if p <= receivers else None))
    return out


def _address(public_key: bytes) -> str:
    return eth_keys.keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()  # type: ignore[no-any-return]


def _check(old: dict[int, KeyShare], res: Result, receivers: int, threshold: int) -> dict[int, KeyShare]:
    outs = res.outputs()
    new: dict[int, KeyShare] = {p: o for p, o in outs.items() if p <= receivers}  # type: ignore[misc]
    first = next(iter(old.values()))
    secret = interpolate(ORDER, {i: old[i].secret for i in sorted(old)[: first.threshold]})
    for p, share in new.items():
        assert (share.index, share.threshold, share.parties) == (p, threshold, tuple(range(1, receivers + 1)))
        assert (share.public_key, share.chain_code) == (first.public_key, first.chain_code)
        assert share.public_shares == new[1].public_shares and set(share.aux) == set(new[1].aux)
        assert share.aux[p].n not in {a.n for a in first.aux.values()}
    assert interpolate(ORDER, {p: new[p].secret for p in list(new)[:threshold]}) == secret
    assert interpolate(ORDER, {p: new[p].secret for p in list(new)[-threshold:]}) == secret
    for p, o in outs.items():
        if p > receivers:
            assert o == new[1].public_shares
    assert _address(new[1].public_key) == _address(first.public_key)
    return new


def test_recovery_2_of_3_the_new_client_signs_with_the_signer(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    """Old {client=1, signer=2, backup=3}; the client lost its share; signer and backup reshare to
    new {client'=1, signer=2, backup=3} (session ids = new indices)."""
    res = run(drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-reshare-recovery"))
    new = _check(keys_2of3, res, 3, 2)
    _sign(new, (1, 2), b"reshared-12")
    _sign(keys_2of3, (2, 3), b"old-still")


def test_2_of_2_becomes_2_of_3(prime_source: FixtureSource, keys_2of2: dict[int, KeyShare]) -> None:
    new = _check(keys_2of2, run(drivers(prime_source, keys_2of2, {1: 1, 2: 2}, 3, 2, b"gg20-grow")), 3, 2)
    _sign(new, (3, 1), b"grown-31")


def test_a_dealer_that_leaves(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    """Old parties 1, 2, 3 deal; the new set is {1, 2} (old 1 and 3) and old 2 (session 3) leaves."""
    res = run(drivers(prime_source, keys_2of3, {1: 1, 2: 3, 3: 2}, 2, 2, b"gg20-leave"))
    new = _check(keys_2of3, res, 2, 2)
    _sign(new, (1, 2), b"left-12")


def test_a_wrong_lagrange_contribution_is_named(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    """Dealer 3 deals as if its share were 1 more (and proves its real share, which it holds):
    dealer 2 names it; the new party cannot tell."""
    ds = drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-lagrange")
    driver: Any = next(d for d in ds if d.self_id == 3)
    cheat, g = driver._round, driver._round.s.group
    coeffs = (cheat.m.coeffs[0] + cheat.s.weight(3), *cheat.m.coeffs[1:])
    commitments = tuple(g.encode(c) for c in commit(g, coeffs))
    cheat.m = replace(cheat.m, coeffs=coeffs, commitments=commitments)
    # its round-one message commits to the new polynomial, with its (valid) proof over that
    r = CborReader(unframe(Frame.decode(driver._outbox[0].payload).body)[0], 3)
    view, _, aux = r.blob(32), r.blob(), r.blob()
    v = reshare._commitment_hash(cheat.s, 3, commitments, cheat.m.salt)
    body = reshare.round_one_auth(cheat.s).seal(wire.dumps([view, v, aux]))
    driver._cur_echo[3] = echo_digest(cheat.s.session_id, 1, 3, body)
    aborts = run(ds, [harness.modify(3, 1, lambda _: body)]).aborts()
    assert aborts[2].culprits == frozenset({3}) and aborts[2].reason == "wrong Lagrange contribution"
    assert aborts[1].culprits == frozenset() and "add up" in aborts[1].reason


def test_a_sub_share_not_matching_its_commitment_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    ds = drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-subshare")
    cheat: Any = next(d for d in ds if d.self_id == 3)._round  # type: ignore[attr-defined]
    coeffs = list(cheat.m.coeffs)
    coeffs[1] = (coeffs[1] + 1) % ORDER
    cheat.m = replace(cheat.m, coeffs=tuple(coeffs))
    aborts = run(ds).aborts()
    for p in (1, 2):
        assert aborts[p].culprits == frozenset({3}) and "sub-share" in aborts[p].reason


def test_different_views_abort_naming_nobody(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    ds = drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-view", {1: {"chain_code": bytes(32)}})
    aborts = run(ds).aborts()
    assert aborts and all(a.culprits == frozenset() for a in aborts.values())


# -- round one is authenticated (enclave.protocols.reshare_auth) ---------------------------------


def _named(res: Result, culprit: int, parties: tuple[int, ...]) -> None:
    aborts = res.aborts()
    for p in parties:
        assert aborts[p].culprits == frozenset({culprit}) and "not authenticated" in aborts[p].reason, aborts.get(p)
    assert not any(isinstance(o, KeyShare) for o in res.outcomes.values())


def test_a_new_partys_key_substituted_by_the_host_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    """New party 1's round-one message (its Paillier key) re-signed by a key the host holds, or
    changed under 1's signature: both dealers name 1."""
    sid = b"gg20-substitute"
    mallory = EnclaveIdentity.generate()
    forged = ReshareAuth(
        Secp256k1Group(),
        reshare.PROTOCOL,
        sid,
        1,
        frozenset({2, 3}),
        {1: mallory.public_key},
        SYSTEM_RNG,
        sign=mallory.sign,
    )
    for fn in (lambda b: forged.seal(unframe(b)[0]), lambda b: b[:9] + bytes([b[9] ^ 1]) + b[10:]):
        res = run(drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, sid), [harness.modify(1, 1, fn)])
        _named(res, 1, (2, 3))


def test_a_dealers_proof_under_another_share_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    sid, g, x = b"gg20-wrong-share", Secp256k1Group(), 424242
    other = ReshareAuth(g, reshare.PROTOCOL, sid, 3, frozenset({3}), {}, SYSTEM_RNG, {3: g.base_mul(x)}, x)
    rule = harness.modify(3, 1, lambda b: other.seal(unframe(b)[0]))
    _named(run(drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, sid), [rule]), 3, (2,))


def test_a_round_one_message_replayed_from_another_session_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    seen: dict[int, bytes] = {}

    def record(sender: int, recipient: int, frame: Frame) -> None:
        if frame.round == 1 and recipient == 2:
            seen[sender] = frame.body

    run(drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-first"), [harness.drop(2, 1), record])
    for sender in (1, 3):
        rule = harness.modify(sender, 1, lambda _, sender=sender: seen[sender])
        _named(run(drivers(prime_source, keys_2of3, {2: 2, 3: 3}, 3, 2, b"gg20-second"), [rule]), sender, (2,))
