"""Shamir / Feldman / Lagrange over the Ed25519 group."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.crypto import polynomial as poly
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.group.ed25519 import ED25519 as G

Q = G.order


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6).flatmap(lambda t: st.tuples(st.just(t), st.integers(t, 8))), st.integers(0, Q - 1))
def test_any_t_shares_reconstruct(tn: tuple[int, int], secret: int) -> None:
    t, n = tn
    xs = list(range(1, n + 1))
    coeffs, shares = poly.split(G, secret, t, xs, SYSTEM_RNG)
    assert len(coeffs) == t
    subset = xs[-t:]
    assert poly.interpolate(Q, {x: shares[x] for x in subset}) == secret
    lam = [poly.lagrange_coefficient(Q, x, subset) for x in subset]
    assert sum(lam_i * shares[x] for lam_i, x in zip(lam, subset, strict=True)) % Q == secret


def test_t_minus_one_shares_do_not_determine_secret() -> None:
    _coeffs, shares = poly.split(G, 5, 3, [1, 2, 3], SYSTEM_RNG)
    assert poly.interpolate(Q, {1: shares[1], 2: shares[2]}) != 5


def test_feldman_accepts_good_rejects_bad() -> None:
    coeffs, shares = poly.split(G, 77, 3, [1, 2, 3, 4], SYSTEM_RNG)
    comm = poly.commit(G, coeffs)
    for x, y in shares.items():
        assert poly.verify_share(G, comm, x, y)
        assert G.eq(poly.commitment_at(G, comm, x), G.base_mul(y))
        assert not poly.verify_share(G, comm, x, (y + 1) % Q)
        assert not poly.verify_share(G, comm, x + 10, y)
    assert not poly.verify_share(G, comm, 1, Q + shares[1])
    assert G.eq(comm[0], G.base_mul(77))


def test_parameter_errors() -> None:
    with pytest.raises(InvalidParameters):
        poly.split(G, 1, 2, [1, 1], SYSTEM_RNG)
    with pytest.raises(InvalidParameters):
        poly.split(G, 1, 2, [0, 1], SYSTEM_RNG)
    with pytest.raises(InvalidParameters):
        poly.split(G, 1, 3, [1, 2], SYSTEM_RNG)
    with pytest.raises(InvalidParameters):
        poly.lagrange_coefficient(Q, 5, [1, 2])
    with pytest.raises(InvalidParameters):
        poly.commitment_at(G, [], 1)


@pytest.mark.parametrize("t", range(1, 9))
def test_commitments_at_many_points(t: int) -> None:
    coeffs = poly.random_polynomial(G, 5, t, SYSTEM_RNG)
    comm = poly.commit(G, coeffs)
    for xs in ([1, 2, 3], list(range(1, 11)), [5, 9, 255], [3], [2**200 + 7, 11]):
        at = poly.commitments_at(G, comm, xs)
        assert set(at) == set(xs)
        for x in xs:
            assert G.eq(at[x], G.base_mul(poly.evaluate(coeffs, x, Q)))
