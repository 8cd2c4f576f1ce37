"""FROST share refresh (enclave.protocols.frost.refresh) through the real DKG driver, and by a
dealer: same verifying key, new shares of the same secret, signatures verified independently,
a cheating participant named.

frost_rs 1.0.0 has no refresh, so these check the ZF shapes (a round-1 commitment without the
identity, t-1 elements) and the algebra, not a live mixed session.
"""

from __future__ import annotations

from typing import Any

import pytest

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.protocols.driver import Abort
from enclave.protocols.frost import dkg, refresh, rounds, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from tests import harness
from tests.enclave.frost.common import dealer, run_dkg, sign_drivers, verify_independently

Keys = tuple[dict[int, KeyPackage], PublicKeyPackage]


def refresh_drivers(
    cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, sid: bytes = b"r"
) -> list[Any]:
    ids = {p: kps[p].identifier for p in kps}
    t = next(iter(kps.values())).min_signers
    return [
        rounds.dkg_driver(rounds.DkgSetup(cs, sid, p, ids, t, SYSTEM_RNG, refresh=(kps[p], public)))
        for p in sorted(kps)
    ]


def run_refresh(
    cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, rules: Any = ()
) -> harness.Result:
    return harness.run(refresh_drivers(cs, kps, public), rules)


def _refreshed(res: harness.Result) -> Keys:
    outs = res.outputs()
    publics = {
        (tuple(sorted(pub.verifying_shares.items())), pub.verifying_key, pub.min_signers) for _k, pub in outs.values()
    }  # type: ignore[attr-defined]
    assert len(publics) == 1, "parties disagree on the refreshed public key package"
    return {p: o[0] for p, o in outs.items()}, next(iter(outs.values()))[1]  # type: ignore[index]


def _secret(cs: Ciphersuite, kps: dict[int, KeyPackage], which: list[int]) -> int:
    return polynomial.interpolate(cs.order, {kps[p].identifier: kps[p].signing_share for p in which})


def _signature(cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, signers: list[int]) -> bytes:
    message = b"after a refresh"
    sigs = {bytes(s) for s in harness.run(sign_drivers(cs, kps, public, signers, message)).outputs().values()}  # type: ignore[arg-type]
    assert len(sigs) == 1
    sig = sigs.pop()
    verify_independently(cs, public.verifying_key, message, sig)
    return sig


@pytest.mark.parametrize(("n", "t"), [(2, 2), (3, 2), (4, 3)])
def test_refresh_keeps_the_key_and_changes_every_share(suite: Ciphersuite, n: int, t: int) -> None:
    kps, public = run_dkg(suite, n, t)
    new, new_public = _refreshed(run_refresh(suite, kps, public))
    assert new_public.verifying_key == public.verifying_key and new_public.min_signers == t
    for p in kps:
        assert new[p].identifier == kps[p].identifier and new[p].verifying_key == public.verifying_key
        assert new[p].signing_share != kps[p].signing_share
        assert new_public.verifying_shares[kps[p].identifier] != public.verifying_shares[kps[p].identifier]
        assert new[p].verifying_share == new_public.verifying_shares[kps[p].identifier]
    # any t new shares give the old secret; an old and a new share together do not
    assert _secret(suite, new, list(range(1, t + 1))) == _secret(suite, kps, list(range(n - t + 1, n + 1)))
    mixed = {1: kps[1], **{p: new[p] for p in range(2, t + 1)}}
    assert _secret(suite, mixed, list(range(1, t + 1))) != _secret(suite, kps, list(range(1, t + 1)))
    _signature(suite, new, new_public, list(range(n - t + 1, n + 1)))
    # a second refresh of the refreshed key works the same way
    newer, newer_public = _refreshed(run_refresh(suite, new, new_public))
    assert newer_public.verifying_key == public.verifying_key
    _signature(suite, newer, newer_public, list(range(1, t + 1)))


def test_round1_package_is_zf_shaped(suite: Ciphersuite) -> None:
    """t-1 commitment elements (ZF's refresh drops the identity), and the encoding round-trips
    through the strict decoder every peer uses."""
    secret, package = refresh.part1(suite, 2, 3, 3, SYSTEM_RNG)
    assert len(package.commitment) == 2 and secret.coefficients[0] == 0
    assert package.proof_z == 0 or package.proof_r  # the ZF shape: a nonce commitment, z = k
    assert wire.decode_round1_package(suite, wire.encode_round1_package(suite, package)) == package


def test_refresh_refuses_a_changed_party_set_or_threshold(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    ids = {p: p for p in (1, 2)}  # a party left out: that is a reshare, not a refresh
    with pytest.raises(InvalidParameters, match="keeps the key's participants"):
        rounds.dkg_driver(rounds.DkgSetup(suite, b"r", 1, ids, 2, SYSTEM_RNG, refresh=(kps[1], public)))
    all_ids = {p: p for p in (1, 2, 3)}
    with pytest.raises(InvalidParameters, match="keeps the key's threshold"):
        rounds.dkg_driver(rounds.DkgSetup(suite, b"r", 1, all_ids, 3, SYSTEM_RNG, refresh=(kps[1], public)))
    with pytest.raises(InvalidParameters, match="another participant's"):
        rounds.dkg_driver(rounds.DkgSetup(suite, b"r", 1, all_ids, 2, SYSTEM_RNG, refresh=(kps[2], public)))


def _aborted_naming(res: harness.Result, honest: list[int], culprit: int, reason: str) -> None:
    for p in honest:
        out = res.outcomes[p]
        assert isinstance(out, Abort), (p, out)
        assert out.culprits == frozenset({culprit}) and reason in out.reason, (p, out)


def test_a_sharing_of_something_other_than_zero_is_named(suite: Ciphersuite, monkeypatch: pytest.MonkeyPatch) -> None:
    """Party 3 adds a constant to every share it deals (a sharing of 5, not of zero, committed
    as if it were zero): each recipient's Feldman check names it, and the old key is intact."""
    kps, public = run_dkg(suite, 3, 2)
    honest_share_for = dkg.share_for

    def shifted(cs: Ciphersuite, secret: dkg.Round1Secret, recipient: int) -> int:
        value = honest_share_for(cs, secret, recipient)
        return (value + 5) % cs.order if secret.identifier == 3 else value

    monkeypatch.setattr(dkg, "share_for", shifted)
    res = run_refresh(suite, kps, public)
    _aborted_naming(res, [1, 2], 3, "refresh share does not match the sender's commitment")
    monkeypatch.undo()
    _signature(suite, kps, public, [1, 2])


def test_a_commitment_with_a_constant_term_is_named(suite: Ciphersuite) -> None:
    """A round-1 package carrying t elements (a_0*G included, as a DKG's would) is refused."""
    kps, public = run_dkg(suite, 3, 2)
    g = suite.group

    def with_constant(body: bytes) -> bytes:  # package || encryption key || source digest
        tail = suite.element_len + refresh.SOURCE_DIGEST_LEN
        package = wire.decode_round1_package(suite, body[:-tail])
        longer = dkg.Round1Package((g.encode(g.base_mul(7)), *package.commitment), package.proof_r, package.proof_z)
        return wire.encode_round1_package(suite, longer) + body[-tail:]

    res = run_refresh(suite, kps, public, [harness.modify(2, 1, with_constant)])
    _aborted_naming(res, [1, 3], 2, "refresh commitment length does not match the threshold")


def test_dealer_refresh(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    zero, new_public = refresh.refreshing_shares(suite, public, [1, 2, 3], 2, SYSTEM_RNG)
    new = {p: refresh.refresh_share(suite, zero[p], kps[p]) for p in kps}
    assert new_public.verifying_key == public.verifying_key
    for p in kps:
        assert new[p].verifying_share == new_public.verifying_shares[p] != public.verifying_shares[p]
    _signature(suite, new, new_public, [1, 3])
    bad = zero[2].__class__(2, (zero[2].signing_share + 1) % suite.order, zero[2].commitment)
    with pytest.raises(InvalidParameters, match="does not match the dealer's commitment"):
        refresh.refresh_share(suite, bad, kps[2])


def test_shares_of_different_generations_abort_naming_nobody(suite: Ciphersuite) -> None:
    """The host refreshes a key once, then starts a second refresh giving party 1 its share from
    before the first: every party aborts (its source digest differs) instead of finishing with
    verifying shares that do not fit together."""
    kps, public = run_dkg(suite, 3, 2)
    new, new_public = _refreshed(run_refresh(suite, kps, public))
    ids = {p: p for p in kps}
    drivers = [rounds.dkg_driver(rounds.DkgSetup(suite, b"r2", 1, ids, 2, SYSTEM_RNG, refresh=(kps[1], public)))] + [
        rounds.dkg_driver(rounds.DkgSetup(suite, b"r2", p, ids, 2, SYSTEM_RNG, refresh=(new[p], new_public)))
        for p in (2, 3)
    ]
    res = harness.run(drivers)
    for p in (1, 2, 3):
        out = res.outcomes[p]
        assert isinstance(out, Abort) and out.culprits == frozenset(), (p, out)
        assert out.reason == "the parties are refreshing different versions of the key"
