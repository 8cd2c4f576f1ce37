"""GG20 reshare (enclave.protocols.gg20.reshare): the 2-of-3 recovery flow and 2-of-2 to 2-of-3,
the new shares interpolating to the old secret and signing (libsecp256k1 and OpenSSL through
`check_signature`, the EVM address unchanged by eth_keys), and cheating dealers named.

Session ids: receivers 1..|R| (their new indices), leaving dealers after them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import eth_keys

from enclave.crypto.polynomial import interpolate
from enclave.crypto.primes import FixtureSource, SafePrimePair
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import ORDER
from enclave.protocols.driver import Driver
from enclave.protocols.gg20 import reshare
from enclave.protocols.gg20.keyshare import KeyShare
from tests.enclave.gg20.test_refresh import _sign
from tests.harness import Result, run


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
    """Dealer 3 deals as if its share were 1 more: dealer 2 names it; the new party cannot tell."""
    bad = replace(keys_2of3[3], secret=(keys_2of3[3].secret + 1) % ORDER)
    old = {**keys_2of3, 3: bad}
    ds = drivers(prime_source, old, {2: 2, 3: 3}, 3, 2, b"gg20-lagrange")
    aborts = run(ds).aborts()
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
