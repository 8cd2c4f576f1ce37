"""FROST repair as a session (enclave.protocols.frost.repair_rounds) through the real driver: the
lost share rebuilt under its identifier and signing again (verified independently), helpers
ending with nothing new, cheating helpers named (a bad delta, a bad sigma), a host that makes up
the key's public key package or poses as the repaired party refused.

Session party ids are FROST identifiers. The repaired party signs round one with a P-256 key
(cryptography's, standing for its enclave identity key); helpers prove with their shares.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from door.encoding import lp32
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.protocols.driver import Driver
from enclave.protocols.frost import repair, repair_rounds, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.reshare_auth import Sign
from tests import harness
from tests.enclave.frost.common import dealer, run_dkg, sign_drivers, verify_independently

Keys = tuple[dict[int, KeyPackage], PublicKeyPackage]


def p256() -> tuple[bytes, Sign]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def sign(message: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return public, sign


def shown(cs: Ciphersuite, public: PublicKeyPackage) -> bytes:
    return public.verifying_key[1:] if cs.bip340 else public.verifying_key


def setups(
    cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, helpers: list[int], r: int
) -> dict[int, repair_rounds.RepairSetup]:
    party_key, sign = p256()
    t = next(iter(kps.values())).min_signers
    common: dict[str, Any] = {
        "suite": cs,
        "session_id": b"repair-session",
        "helpers": tuple(helpers),
        "participant": r,
        "identifiers": tuple(sorted(public.verifying_shares)),
        "min_signers": t,
        "shown_key": shown(cs, public),
        "party_key": party_key,
        "rng": SYSTEM_RNG,
        "context": b"ctx",
    }
    out = {h: repair_rounds.RepairSetup(party=h, source=(kps[h], public), **common) for h in helpers}
    out[r] = repair_rounds.RepairSetup(party=r, sign=sign, **common)
    return out


def run(setup_map: dict[int, repair_rounds.RepairSetup], rules: Any = (), seed: int | None = None) -> harness.Result:
    return harness.run([repair_rounds.repair_driver(s) for s in setup_map.values()], rules, seed=seed)


def signs(cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, signers: list[int]) -> None:
    message = b"signed with a repaired share"
    outs = harness.run(sign_drivers(cs, kps, public, signers, message)).outputs()
    sigs = {bytes(s) for s in outs.values()}  # type: ignore[call-overload]
    assert len(sigs) == 1
    verify_independently(cs, public.verifying_key, message, sigs.pop())


@pytest.mark.parametrize(("t", "n", "helpers", "r"), [(2, 3, [1, 3], 2), (3, 5, [1, 2, 5], 4), (3, 5, [1, 2, 3, 5], 4)])
def test_the_lost_share_comes_back_and_signs(suite: Ciphersuite, t: int, n: int, helpers: list[int], r: int) -> None:
    kps, public = run_dkg(suite, n, t) if t == 2 else dealer(suite, n, t)
    outs = run(setups(suite, kps, public, helpers, r), seed=7).outputs()
    for h in helpers:
        assert outs[h] == (None, public)  # a helper ends with nothing new
    rebuilt, package = outs[r]  # type: ignore[misc]
    assert rebuilt == kps[r] and package == public
    signs(suite, {**kps, r: rebuilt}, public, sorted([r, *helpers[: t - 1]]))


def _cheat(drivers: list[Driver], who: int, fn: Any) -> None:
    rnd: Any = next(d for d in drivers if d.self_id == who)._round
    rnd.c = replace(rnd.c, deltas=fn(dict(rnd.c.deltas)))


def test_a_bad_delta_is_named_by_the_helper_that_gets_it(suite: Ciphersuite) -> None:
    """Helper 3 commits honestly but sends helper 5 another delta."""
    kps, public = dealer(suite, 5, 3)
    drivers = [repair_rounds.repair_driver(s) for s in setups(suite, kps, public, [1, 3, 5], 2).values()]
    _cheat(drivers, 3, lambda d: {**d, 5: (d[5] + 1) % suite.order})
    res = harness.run(drivers)
    aborts = res.aborts()
    assert aborts[5].culprits == frozenset({3}) and "commitment" in aborts[5].reason
    assert res.outcomes[2] is None  # no share: it still waits for helper 5's sigma (the relay aborts it)


def test_a_bad_sigma_is_named_by_the_repaired_party(suite: Ciphersuite) -> None:
    """Helper 3 changes the delta it keeps for itself, which nobody else sees: its sigma is off."""
    kps, public = dealer(suite, 5, 3)
    drivers = [repair_rounds.repair_driver(s) for s in setups(suite, kps, public, [1, 3, 5], 2).values()]
    _cheat(drivers, 3, lambda d: {**d, 3: (d[3] + 1) % suite.order})
    res = harness.run(drivers)
    assert res.aborts()[2].culprits == frozenset({3}) and "sigma" in res.aborts()[2].reason
    assert set(res.aborts()) == {2}  # the helpers end normally, with nothing


def test_a_wrong_lagrange_contribution_is_named(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    drivers = [repair_rounds.repair_driver(s) for s in setups(suite, kps, public, [1, 3], 2).values()]
    rnd: Any = next(d for d in drivers if d.self_id == 3)._round
    g = suite.group
    bumped = {**rnd.c.commitments, 1: g.encode(g.add(suite.point(rnd.c.commitments[1]), g.base_mul(1)))}
    # Re-seal the changed payload so its proof is valid: the commitments themselves are wrong.
    payload = b"".join([rnd.c.enc_public, rnd.c.view, *(bumped[j] for j in (1, 3)), rnd.c.package])
    auth = repair_rounds.round_one_auth(rnd.c.setup, {h: suite.point(public.verifying_shares[h]) for h in (1, 3)})
    body = auth.seal(payload)
    aborts = harness.run(drivers, [harness.modify(3, 1, lambda _b: body)]).aborts()
    for p in (1, 2):
        assert aborts[p].culprits == frozenset({3}) and "Lagrange" in aborts[p].reason


def _lagrange(q: int, i: int, xs: list[int], at: int) -> int:
    num = den = 1
    for j in xs:
        if j != i:
            num, den = num * (at - j) % q, den * (i - j) % q
    return num * pow(den, -1, q) % q


def _package_through(cs: Ciphersuite, public: PublicKeyPackage, points: dict[int, Any]) -> PublicKeyPackage:
    """The package of the polynomial (in the exponent) through (0, the key) and `points`."""
    g, base = cs.group, {0: cs.point(public.verifying_key), **points}
    xs = sorted(base)
    shares = {}
    for x in sorted(public.verifying_shares):
        shares[x] = g.encode(g.sum([g.mul(base[i], _lagrange(cs.order, i, xs, x)) for i in xs]))
    return PublicKeyPackage(shares, public.verifying_key, public.min_signers)


def _fake_package(cs: Ciphersuite, public: PublicKeyPackage, known: int) -> tuple[int, PublicKeyPackage]:
    """A package for the same key (t = 2) a host can make: a share of its choosing at
    identifier `known`, every other verifying share interpolated in the exponent."""
    s_known = cs.group.random_scalar(SYSTEM_RNG)
    return s_known, _package_through(cs, public, {known: cs.group.base_mul(s_known)})


def test_a_helper_holding_another_package_is_named(suite: Ciphersuite) -> None:
    """Helper 1's share is the real one but the package it holds differs elsewhere (t = 3: the
    polynomial through the key, Y_1 and a made-up point): the other helpers name it."""
    kps, public = dealer(suite, 5, 3)
    other = _package_through(suite, public, {1: suite.point(public.verifying_shares[1]), 4: suite.group.base_mul(5)})
    assert other.verifying_shares[1] == public.verifying_shares[1] and other != public
    s = setups(suite, kps, public, [1, 3, 5], 2)
    s[1] = replace(s[1], source=(kps[1], other))
    aborts = run(s).aborts()
    for h in (3, 5):
        assert aborts[h].culprits == frozenset({1}) and "different public key package" in aborts[h].reason
    assert aborts[2].culprits == frozenset() and "different public key packages" in aborts[2].reason


def test_a_host_playing_one_helper_with_a_made_up_package_gets_nothing(suite: Ciphersuite) -> None:
    """The host plays helper 1 under a package it made up for the key (it knows its share 1 there,
    so that helper's proof and commitments check there). Helper 3 is honest: helper 1's proof
    fails under helper 3's package, so helper 3 names 1, and the repaired party, which cannot
    tell which package is the real one, aborts naming nobody. The host cannot fake helper 3 too:
    it knows no other share's log there."""
    kps, public = dealer(suite, 3, 2)
    s1, fake = _fake_package(suite, public, 1)
    repair.check_package(suite, fake, shown(suite, public), 2, [1, 2, 3])  # it does look like the key's
    fake_kp = KeyPackage(1, s1, fake.verifying_shares[1], public.verifying_key, 2)
    s = setups(suite, kps, public, [1, 3], 2)
    s[1] = replace(s[1], source=(fake_kp, fake))
    aborts = run(s).aborts()
    assert aborts[3].culprits == frozenset({1}) and "not authenticated" in aborts[3].reason
    assert aborts[2].culprits == frozenset() and "different public key packages" in aborts[2].reason


def test_a_package_swapped_in_transit_is_refused(suite: Ciphersuite) -> None:
    """The host replaces every helper's package on its way to the repaired party with one it made
    up (interpolating to the key): the helpers' proofs do not check under it."""
    kps, public = dealer(suite, 3, 2)
    _s1, fake = _fake_package(suite, public, 1)
    real, swapped = wire.encode_public_key_package(suite, public), wire.encode_public_key_package(suite, fake)

    def swap(body: bytes) -> bytes:
        n = int.from_bytes(body[:4], "big")
        payload, auth = body[4 : 4 + n], body[4 + n :]
        assert payload.endswith(real)
        return lp32(payload[: -len(real)] + swapped) + auth

    rules = [harness.modify(h, 1, swap, to=2) for h in (1, 3)]
    aborts = run(setups(suite, kps, public, [1, 3], 2), rules).aborts()
    assert aborts[2].culprits in (frozenset({1}), frozenset({3}))
    assert "not authenticated" in aborts[2].reason


def test_a_package_that_does_not_interpolate_is_refused(suite: Ciphersuite) -> None:
    _kps, public = dealer(suite, 5, 3)
    g = suite.group
    bad = dict(public.verifying_shares)
    bad[5] = g.encode(g.add(suite.point(bad[5]), g.base_mul(1)))
    key = shown(suite, public)
    with pytest.raises(InvalidParameters, match="interpolate"):
        repair.check_package(suite, PublicKeyPackage(bad, public.verifying_key, 3), key, 3, [1, 2, 3, 4, 5])
    with pytest.raises(InvalidParameters, match="parties and threshold"):
        repair.check_package(suite, public, key, 2, [1, 2, 3, 4, 5])
    with pytest.raises(InvalidParameters, match="expected key"):
        repair.check_package(suite, public, bytes(len(key)), 3, [1, 2, 3, 4, 5])
    repair.check_package(suite, public, key, 3, [1, 2, 3, 4, 5])


def test_a_host_posing_as_the_repaired_party_is_named(suite: Ciphersuite) -> None:
    """The repaired party's round one signed by a key other than the one its start lists."""
    kps, public = dealer(suite, 3, 2)
    s = setups(suite, kps, public, [1, 3], 2)
    _other_key, other_sign = p256()
    s[2] = replace(s[2], sign=other_sign)
    with pytest.raises(InvalidParameters):  # its own enclave refuses to sign under a key not its own
        repair_rounds.repair_driver(s[2])
    drivers = [repair_rounds.repair_driver(s[h]) for h in (1, 3)]
    impostor_key, impostor_sign = p256()
    impostor = repair_rounds.repair_driver(replace(s[2], party_key=impostor_key, sign=impostor_sign))
    aborts = harness.run([*drivers, impostor]).aborts()
    for h in (1, 3):
        assert aborts[h].culprits == frozenset({2}) and "not authenticated" in aborts[h].reason


def test_parties_with_different_views_abort_naming_nobody(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    s = setups(suite, kps, public, [1, 3], 2)
    s[2] = replace(s[2], context=b"another key id")
    aborts = run(s).aborts()
    assert aborts and all(a.culprits == frozenset() and "disagree" in a.reason for a in aborts.values())


def test_a_tampered_ciphertext_names_its_sender(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    flip = harness.modify(3, 3, lambda b: b[:-1] + bytes([b[-1] ^ 1]), to=2)
    aborts = run(setups(suite, kps, public, [1, 3], 2), [flip]).aborts()
    assert aborts[2].culprits == frozenset({3})
    flip = harness.modify(1, 2, lambda b: b[:-1] + bytes([b[-1] ^ 1]), to=3)
    aborts = run(setups(suite, kps, public, [1, 3], 2), [flip]).aborts()
    assert aborts[3].culprits == frozenset({1})
    chatty = harness.modify(2, 2, lambda b: b + b"x")
    aborts = run(setups(suite, kps, public, [1, 3], 2), [chatty]).aborts()
    assert aborts[1].culprits == frozenset({2})


def test_setup_rules(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 5, 3)
    ok = setups(suite, kps, public, [1, 3, 5], 2)
    bad = {
        "too few helpers": replace(ok[1], helpers=(1, 3)),
        "the repaired party helps": replace(ok[1], helpers=(1, 2, 3)),
        "helper without its share": replace(ok[1], source=None),
        "a share for the repaired party": replace(ok[2], source=(kps[1], public)),
        "not a party": replace(ok[1], party=4, source=(kps[4], public)),
        "another key": replace(ok[1], shown_key=shown(suite, public)[:-1] + b"\x00"),
        "a helper outside the key": replace(ok[1], helpers=(1, 3, 9)),
        "someone else's share": replace(ok[1], source=(kps[3], public)),
    }
    for name, s in bad.items():
        with pytest.raises(InvalidParameters):
            repair_rounds.repair_driver(s)
        del name
