"""Shamir secret sharing, Feldman VSS and Lagrange interpolation over any `Group`.

Conventions (shared by FROST and GG20):
- A polynomial is a tuple of coefficients `(a_0, ..., a_{t-1})` of ints mod `group.order`;
  `a_0` is the secret and `t` the threshold (any `t` shares reconstruct, `t-1` reveal nothing).
- Share holders are identified by their evaluation point `x`, a non-zero int mod the order
  (FROST identifiers are scalars; GG20 party indices are small ints). Points must be distinct.
- Feldman commitments are `(a_0*G, ..., a_{t-1}*G)`; a share `y` for `x` is valid iff
  `y*G == sum_k x^k * C_k`.

API:
    coeffs = random_polynomial(group, secret, threshold, rng)
    shares = {x: evaluate(coeffs, x, group.order) for x in xs}   # or split(...)
    commitments = commit(group, coeffs)
    verify_share(group, commitments, x, shares[x])                  # -> bool
    commitment_at(group, commitments, x)                            # -> y*G (verifying share)
    commitments_at(group, commitments, xs)                          # -> {x: y*G} for many x
    lagrange_coefficient(group.order, x, xs)                        # lambda_x at 0
    interpolate(group.order, {x: y, ...})                           # secret

Commitments received from a peer must have been decoded with `group.decode` (strict) by the
caller; this module does arithmetic only and trusts its element arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from enclave.crypto.rng import Rng
from enclave.errors import InvalidParameters
from enclave.group.base import Element, Group


def random_polynomial(group: Group, secret: int, threshold: int, rng: Rng) -> tuple[int, ...]:
    """Degree `threshold-1` polynomial with constant term `secret` and uniform other terms."""
    if threshold < 1:
        raise InvalidParameters("threshold must be at least 1")
    return (secret % group.order, *(group.random_scalar(rng) for _ in range(threshold - 1)))


def evaluate(coeffs: Sequence[int], x: int, order: int) -> int:
    """f(x) mod order, by Horner's rule."""
    acc = 0
    for a in reversed(coeffs):
        acc = (acc * x + a) % order
    return acc


def _check_points(xs: Iterable[int], order: int) -> list[int]:
    pts = [x % order for x in xs]
    if any(x == 0 for x in pts):
        raise InvalidParameters("evaluation point must be non-zero")
    if len(set(pts)) != len(pts):
        raise InvalidParameters("evaluation points must be distinct")
    return pts


def split(
    group: Group, secret: int, threshold: int, xs: Sequence[int], rng: Rng
) -> tuple[tuple[int, ...], dict[int, int]]:
    """Shamir-share `secret` to the points `xs`; returns the polynomial and `{x: f(x)}`."""
    pts = _check_points(xs, group.order)
    if not 1 <= threshold <= len(pts):
        raise InvalidParameters("need 1 <= threshold <= number of shares")
    coeffs = random_polynomial(group, secret, threshold, rng)
    return coeffs, {x: evaluate(coeffs, x, group.order) for x in pts}


def commit(group: Group, coeffs: Sequence[int]) -> tuple[Element, ...]:
    """Feldman commitments `a_k * G`."""
    return tuple(group.base_mul(a) for a in coeffs)


def commitment_at(group: Group, commitments: Sequence[Element], x: int) -> Element:
    """`sum_k x^k * C_k`, i.e. f(x)*G for the committed polynomial (Horner in the exponent)."""
    if not commitments:
        raise InvalidParameters("empty commitment vector")
    acc = commitments[-1]
    for c in reversed(commitments[:-1]):
        acc = group.add(group.mul(acc, x), c)
    return acc


def _surjections(k: int, m: int) -> int:
    """m! * S(k, m): the integer weight of C_k in the m-th forward difference at 0."""
    return sum((-1) ** (m - j) * math.comb(m, j) * j**k for j in range(m + 1))


def commitments_at(group: Group, commitments: Sequence[Element], xs: Iterable[int]) -> dict[int, Element]:
    """`commitment_at` for many points (e.g. every verifying share of a public key package).

    For small positive integer points it walks the committed polynomial by forward differences
    (Delta^m f(0) = sum_k m! S(k, m) C_k, then f(x+1) = f(x) + Delta f(x), ...), which costs
    about d(d-1)/2 scalar multiplications plus max(xs)*d additions instead of len(xs)*d
    multiplications; otherwise it evaluates each point by Horner's rule.
    """
    pts = sorted(set(xs))
    d = len(commitments) - 1
    if not pts or d < 1 or pts[0] < 1 or pts[-1] > 8 * len(pts) + 8:
        return {x: commitment_at(group, commitments, x) for x in pts}
    diffs: list[Element] = []
    for m in range(d + 1):
        terms = []
        for k in range(m, d + 1):
            w = _surjections(k, m) if m else int(k == 0)
            if w:
                terms.append(commitments[k] if w == 1 else group.mul(commitments[k], w))
        acc = terms[0]
        for term in terms[1:]:
            acc = group.add(acc, term)
        diffs.append(acc)
    wanted = set(pts)
    out: dict[int, Element] = {}
    for x in range(1, pts[-1] + 1):
        for m in range(d):
            diffs[m] = group.add(diffs[m], diffs[m + 1])
        if x in wanted:
            out[x] = diffs[0]
    return out


def verify_share(group: Group, commitments: Sequence[Element], x: int, share: int) -> bool:
    """Feldman check of one share against the dealer's commitments."""
    if not 0 <= share < group.order:
        return False
    return group.eq(group.base_mul(share), commitment_at(group, commitments, x))


def lagrange_coefficient(order: int, x: int, xs: Iterable[int], at: int = 0) -> int:
    """Lagrange basis coefficient of point `x` over the set `xs`, evaluated at `at` (mod order)."""
    pts = _check_points(xs, order)
    x %= order
    if x not in pts:
        raise InvalidParameters("x must be one of the points")
    num, den = 1, 1
    for xj in pts:
        if xj == x:
            continue
        num = num * (xj - at) % order
        den = den * (xj - x) % order
    return num * pow(den, -1, order) % order


def interpolate(order: int, points: Mapping[int, int], at: int = 0) -> int:
    """Value at `at` of the polynomial through `points` ({x: y})."""
    xs = list(points)
    return sum(y * lagrange_coefficient(order, x, xs, at) for x, y in points.items()) % order
