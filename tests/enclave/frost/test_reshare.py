"""FROST reshare (enclave.protocols.frost.reshare, reshare_rounds) through the real driver:
the key moved to new party sets and thresholds, the new shares interpolating to the old secret,
signatures by the new shares verified independently (libsodium, libsecp256k1 BIP340, ZF frost),
and cheating dealers named with the old key untouched.

Session party ids: the source key's parties keep their DKG ids 1..n; new parties are 10, 11, ...
New FROST identifiers are 1-based positions in the receivers list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.protocols import reshare_auth
from enclave.protocols.driver import Abort, Driver, Output
from enclave.protocols.frost import reshare_rounds
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.tee.identity import EnclaveIdentity
from tests import harness
from tests.enclave.frost.common import run_dkg, sign_drivers, verify_independently

Keys = tuple[dict[int, KeyPackage], PublicKeyPackage]


def setups(
    cs: Ciphersuite,
    kps: dict[int, KeyPackage],
    public: PublicKeyPackage,
    dealers: list[int],
    receivers: list[int],
    t_new: int,
    context: bytes = b"ctx",
    sid: bytes = b"reshare-session",
) -> dict[int, reshare_rounds.ReshareSetup]:
    old_t = next(iter(kps.values())).min_signers
    d = {p: kps[p].identifier for p in dealers}
    r = {p: i + 1 for i, p in enumerate(receivers)}
    # A party new to the key knows a Taproot key x-only: give it the even-y guess.
    vk = public.verifying_key
    guess = b"\x02" + vk[1:] if cs.bip340 else vk
    listed = {p: harness.identity(p).public_key for p in receivers if p not in dealers}
    return {
        p: reshare_rounds.ReshareSetup(
            cs,
            sid,
            p,
            d,
            r,
            vk if p in dealers else guess,
            old_t,
            t_new,
            SYSTEM_RNG,
            (kps[p], public) if p in dealers else None,
            context,
            new_party_keys=listed,
            sign=None if p in dealers else harness.identity(p).sign,
        )
        for p in sorted(set(dealers) | set(receivers))
    }


def run(setup_map: dict[int, reshare_rounds.ReshareSetup], rules: Any = ()) -> harness.Result:
    return harness.run([reshare_rounds.reshare_driver(s) for s in setup_map.values()], rules)


def new_keys(res: harness.Result, receivers: list[int]) -> Keys:
    outs = res.outputs()
    publics = {
        (tuple(sorted(pub.verifying_shares.items())), pub.verifying_key, pub.min_signers)
        for _k, pub in outs.values()  # type: ignore[misc]
    }
    assert len(publics) == 1, "parties disagree on the new public key package"
    for p, (k, _pub) in outs.items():  # type: ignore[misc]
        assert (k is None) == (p not in receivers)
    return {p: outs[p][0] for p in receivers}, next(iter(outs.values()))[1]  # type: ignore[index]


def secret(cs: Ciphersuite, kps: dict[int, KeyPackage], which: list[int]) -> int:
    return polynomial.interpolate(cs.order, {kps[p].identifier: kps[p].signing_share for p in which})


def signs(cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, signers: list[int]) -> None:
    message = b"after a reshare"
    sigs = {bytes(s) for s in harness.run(sign_drivers(cs, kps, public, signers, message)).outputs().values()}  # type: ignore[arg-type]
    assert len(sigs) == 1
    verify_independently(cs, public.verifying_key, message, sigs.pop())


def check_moved(cs: Ciphersuite, old: Keys, new: Keys, t_new: int) -> None:
    kps, public = old
    nkps, npublic = new
    assert npublic.verifying_key == public.verifying_key and npublic.min_signers == t_new
    assert sorted(npublic.verifying_shares) == list(range(1, len(nkps) + 1))
    for k in nkps.values():
        assert k.min_signers == t_new and k.verifying_share == npublic.verifying_shares[k.identifier]
    t_old = next(iter(kps.values())).min_signers
    old_secret = secret(cs, kps, sorted(kps)[:t_old])
    parties = sorted(nkps)
    assert secret(cs, nkps, parties[:t_new]) == old_secret
    assert secret(cs, nkps, parties[-t_new:]) == old_secret
    if t_new > 2:  # fewer than t_new new shares say nothing of the secret
        assert secret(cs, nkps, parties[: t_new - 1]) != old_secret


def test_recovery_2_of_3_new_client_signs_with_the_signer(suite: Ciphersuite) -> None:
    """{C=1, S=2, B=3}: C lost its share; S and B reshare to {C'=10, S, B}; C' signs with S."""
    old = run_dkg(suite, 3, 2)
    receivers = [10, 2, 3]
    new = new_keys(run(setups(suite, *old, [2, 3], receivers, 2)), receivers)
    check_moved(suite, old, new, 2)
    signs(suite, *new, [10, 2])
    signs(suite, *new, [10, 3])
    signs(suite, *old, [2, 3])  # the old key still signs: nothing of it changed


def test_2_of_2_becomes_2_of_3(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 2, 2)
    receivers = [1, 2, 10]
    new = new_keys(run(setups(suite, *old, [1, 2], receivers, 2)), receivers)
    check_moved(suite, old, new, 2)
    signs(suite, *new, [10, 1])


def test_replace_a_signer_node(suite: Ciphersuite) -> None:
    """Node 2 is dead: 1 and 3 move the key to {1, 10, 3}; the dead node's old share is useless
    with the new ones (a new share and an old one do not interpolate to the secret)."""
    old = run_dkg(suite, 3, 2)
    receivers = [1, 10, 3]
    new = new_keys(run(setups(suite, *old, [1, 3], receivers, 2)), receivers)
    check_moved(suite, old, new, 2)
    signs(suite, *new, [10, 3])
    kps, _ = old
    assert secret(suite, {2: kps[2], 3: new[0][3]}, [2, 3]) != secret(suite, kps, [1, 2])


def test_threshold_change_2_of_3_to_3_of_4_and_a_dealer_that_leaves(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 3, 2)
    receivers = [1, 3, 10, 11]  # dealer 2 deals and leaves with nothing
    res = run(setups(suite, *old, [1, 2, 3], receivers, 3))
    assert res.outputs()[2][0] is None  # type: ignore[index]
    new = new_keys(res, receivers)
    check_moved(suite, old, new, 3)
    signs(suite, *new, [10, 11, 3])


def resealed(setup: reshare_rounds.ReshareSetup, fn: Any) -> Any:
    """A round-one change made by the sending party itself: `fn` on the payload, then the
    sender's own valid proof or signature over the changed payload."""
    auth = reshare_rounds.round_one_auth(setup)
    return lambda body: auth.seal(fn(reshare_auth.unframe(body)[0]))


def _shift_constant(cs: Ciphersuite) -> Any:
    def fn(body: bytes) -> bytes:
        g, n = cs.group, cs.element_len
        head, c0, rest = body[: n + 32], body[n + 32 : 2 * n + 32], body[2 * n + 32 :]
        return head + g.encode(g.add(cs.point(c0), g.base_mul(1))) + rest

    return fn


def test_a_wrong_lagrange_contribution_is_named_and_the_old_key_untouched(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 3, 2)
    s = setups(suite, *old, [2, 3], [10, 2, 3], 2)
    res = run(s, [harness.modify(3, 1, resealed(s[3], _shift_constant(suite)))])
    aborts = res.aborts()
    assert aborts[2].culprits == frozenset({3}) and "Lagrange" in aborts[2].reason
    # the new party cannot tell who: only the sum fails there
    assert aborts[10].culprits == frozenset() and "add up" in aborts[10].reason
    signs(suite, *old, [1, 2])


def test_a_sub_share_not_matching_its_commitment_is_named(suite: Ciphersuite) -> None:
    """Dealer 3 commits honestly (its constant term passes) but deals from another polynomial."""
    old = run_dkg(suite, 3, 2)
    drivers = [reshare_rounds.reshare_driver(s) for s in setups(suite, *old, [2, 3], [10, 2, 3], 2).values()]
    cheat: Driver = next(d for d in drivers if d.self_id == 3)
    rnd: Any = cheat._round
    coeffs = list(rnd.c.coefficients)
    coeffs[1] = (coeffs[1] + 1) % suite.order
    rnd.c = replace(rnd.c, coefficients=tuple(coeffs))
    aborts = harness.run(drivers).aborts()
    for p in (10, 2):
        assert aborts[p].culprits == frozenset({3}) and "commitment" in aborts[p].reason
    signs(suite, *old, [2, 3])


@pytest.mark.parametrize("what", ["threshold", "context", "receivers"])
def test_parties_with_different_views_abort_naming_nobody(suite: Ciphersuite, what: str) -> None:
    old = run_dkg(suite, 3, 2)
    s = setups(suite, *old, [2, 3], [10, 2, 3], 2)
    if what == "threshold":
        s[10] = setups(suite, *old, [2, 3], [10, 2, 3], 3)[10]
    elif what == "context":  # e.g. a wrong chain code given to the new party
        s[10] = replace(s[10], context=b"other")
    else:
        s[10] = replace(s[10], receivers={2: 1, 10: 2, 3: 3})
    aborts = run(s).aborts()
    assert aborts and all(a.culprits == frozenset() for a in aborts.values())
    assert any("disagree" in a.reason for a in aborts.values())


def test_a_tampered_ciphertext_names_its_dealer(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 3, 2)
    flip = harness.modify(2, 2, lambda b: b[:-1] + bytes([b[-1] ^ 1]), to=10)
    aborts = run(setups(suite, *old, [2, 3], [10, 2, 3], 2), [flip]).aborts()
    assert aborts[10].culprits == frozenset({2})


def test_setup_rules(suite: Ciphersuite) -> None:
    kps, public = run_dkg(suite, 3, 2)
    ok = setups(suite, kps, public, [2, 3], [10, 2, 3], 2)
    bad = {
        "too few dealers": replace(ok[2], dealers={2: 2}),
        "dealer without its share": replace(ok[2], source=None),
        "share for a non-dealer": replace(ok[10], source=(kps[1], public)),
        "threshold above the new set": replace(ok[2], min_signers=4),
        "threshold 1": replace(ok[2], min_signers=1),
        "not a party": replace(ok[2], party=7, source=None),
        "identifiers not 1..n": replace(ok[2], receivers={10: 1, 2: 2, 3: 5}),
        "another key": replace(ok[2], verifying_key=public.verifying_shares[1]),
        "a dealer outside the key": replace(ok[2], dealers={2: 2, 3: 3, 9: 9}),
    }
    for name, s in bad.items():
        with pytest.raises(InvalidParameters):
            reshare_rounds.reshare_driver(s)
        del name
    assert not isinstance(run(ok).outcomes[2], Abort)


def test_malformed_messages_name_their_sender(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 3, 2)
    n = suite.element_len
    s = setups(suite, *old, [2, 3], [10, 2, 3], 2)
    cases = [
        # a party new to the key sends a commitment it cannot have
        (harness.modify(10, 1, resealed(s[10], lambda b: b + bytes(n) * 2)), 10, 2),
        # a dealer's commitment one element short
        (harness.modify(3, 1, resealed(s[3], lambda b: b[:-n])), 3, 2),
        # a dealer's commitment element that is no point
        (harness.modify(3, 1, resealed(s[3], lambda b: b[:-n] + b"\xff" * n)), 3, 2),
        # round one's framing cut short
        (harness.modify(3, 1, lambda b: b[:-1]), 3, 2),
        # a non-empty round-2 message from a party that deals nothing
        (harness.modify(10, 2, lambda b: b + b"x"), 10, 2),
        # a sub-share cut short
        (harness.modify(3, 2, lambda b: b[:-1], to=10), 3, 10),
    ]
    for rule, culprit, at in cases:
        aborts = run(s, [rule]).aborts()
        assert aborts[at].culprits == frozenset({culprit}), (culprit, aborts[at])


# -- round one is authenticated (enclave.protocols.reshare_auth) ---------------------------------


def _aborted_naming(res: harness.Result, culprit: int, parties: Any, text: str) -> None:
    aborts = res.aborts()
    for p in parties:
        assert aborts[p].culprits == frozenset({culprit}) and text in aborts[p].reason, (p, aborts.get(p))
    assert not any(isinstance(o, Output) for o in res.outcomes.values())  # no share anywhere


def test_a_new_partys_key_substituted_by_the_host_is_named(suite: Ciphersuite) -> None:
    """The host replaces 10's round-one message (its encryption key) by one of its own, signed by
    another key, or changes the payload under 10's signature: every party names 10, no share."""
    old = run_dkg(suite, 3, 2)
    s = setups(suite, *old, [2, 3], [10, 2, 3], 2)
    mallory = EnclaveIdentity.generate()
    forged = replace(s[10], sign=mallory.sign, new_party_keys={10: mallory.public_key})
    resigned = resealed(forged, lambda b: suite.group.encode(suite.group.base_mul(7)) + b[suite.element_len :])
    for rule in (resigned, lambda b: b[:4] + bytes([b[4] ^ 1]) + b[5:]):
        _aborted_naming(run(s, [harness.modify(10, 1, rule)]), 10, (2, 3), "not authenticated")


def test_a_dealers_proof_under_another_share_is_named(suite: Ciphersuite) -> None:
    """Dealer 3's message proved with a share that is not its own (what a host posing as dealer 3
    can do): the dealers name 3."""
    old = run_dkg(suite, 3, 2)
    s = setups(suite, *old, [2, 3], [10, 2, 3], 2)
    g, x = suite.group, 12345
    other = reshare_auth.ReshareAuth(
        g,
        f"frost-{suite.short_name}/reshare",
        b"reshare-session",
        3,
        frozenset({3}),
        {},
        SYSTEM_RNG,
        {3: g.base_mul(x)},
        x,
    )
    rule = harness.modify(3, 1, lambda b: other.seal(reshare_auth.unframe(b)[0]))
    _aborted_naming(run(s, [rule]), 3, (2,), "not authenticated")


def test_a_round_one_message_replayed_from_another_session_is_named(suite: Ciphersuite) -> None:
    old = run_dkg(suite, 3, 2)
    seen: dict[int, bytes] = {}

    def record(sender: int, recipient: int, frame: Any) -> None:
        if frame.round == 1 and recipient == 2:
            seen[sender] = frame.body

    run(setups(suite, *old, [2, 3], [10, 2, 3], 2, sid=b"first"), [record])
    second = setups(suite, *old, [2, 3], [10, 2, 3], 2, sid=b"second")
    for sender in (3, 10):
        rule = harness.modify(sender, 1, lambda b, sender=sender: seen[sender])
        _aborted_naming(run(second, [rule]), sender, (2,), "not authenticated")


def test_every_receiver_that_deals_nothing_is_listed(suite: Ciphersuite) -> None:
    kps, public = run_dkg(suite, 3, 2)
    ok = setups(suite, kps, public, [2, 3], [10, 2, 3], 2)
    key = harness.identity(10).public_key
    for s in (
        replace(ok[2], new_party_keys={}),  # 10 not listed
        replace(ok[2], new_party_keys={10: key, 3: key}),  # a dealer listed
        replace(ok[10], sign=None),  # listed, nothing to sign with
        replace(ok[10], sign=EnclaveIdentity.generate().sign),  # signs with a key not its own
        replace(ok[2], new_party_keys={10: b"\x04" + bytes(64)}),  # not a point
    ):
        with pytest.raises(InvalidParameters):
            reshare_rounds.reshare_driver(s)
