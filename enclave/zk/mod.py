"""Πmod: N is a Paillier–Blum modulus (CGGMP21 fig. 16), m = 80 repetitions.

Statement: N. Witness: p, q (primes ≡ 3 mod 4). Proof: w with Jacobi(w, N) = -1 and, for
each challenge y_i in Z_N, a 4th root x_i of (-1)^a_i w^b_i y_i and z_i = y_i^(N^-1 mod φ(N)).
The verifier rejects an even or prime N, a w that is not a unit (gcd(w, N) != 1) or has
Jacobi symbol != -1, any element outside (0, N) or sharing a factor with N, bits a_i, b_i
outside {0, 1}, and any repetition count other than 80.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import SecretKey
from enclave.crypto.params import REPETITIONS, is_unit
from enclave.crypto.rng import Rng, random_below
from enclave.crypto.transcript import Transcript


@dataclass(frozen=True)
class Statement:
    n: int


@dataclass(frozen=True)
class Witness:
    key: SecretKey = field(repr=False)


@dataclass(frozen=True)
class Proof:
    w: int
    x: tuple[int, ...]
    a: tuple[int, ...]
    b: tuple[int, ...]
    z: tuple[int, ...]


def _challenges(transcript: Transcript, n: int, w: int) -> list[int]:
    transcript.append("zk", "cggmp21/mod/v1")
    transcript.append("N", n)
    transcript.append("w", w)
    return [transcript.challenge_int(f"y{i}", n) for i in range(REPETITIONS)]


def _fourth_root_mod_prime(v: int, p: int) -> int | None:
    """A 4th root of v mod the Blum prime p, or None when v is not a quadratic residue."""
    if gmpy2.legendre(v, p) != 1:
        return None
    e = (p + 1) // 4
    return int(gmpy2.powmod(v, e * e % (p - 1), p))


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    key = witness.key
    p, q, n = key.p, key.q, statement.n
    while True:
        w = random_below(rng, n)
        if gmpy2.jacobi(w, n) == -1 and gmpy2.gcd(w, n) == 1:
            break
    ys = _challenges(transcript, n, w)
    n_inv = int(gmpy2.invert(n, key.phi))
    q_inv_p = int(gmpy2.invert(q, p))
    xs, as_, bs, zs = [], [], [], []
    for y in ys:
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            v = y * (n - 1 if a else 1) * (w if b else 1) % n
            # Legendre symbols first: only the one quadratic-residue combination pays for roots
            if gmpy2.legendre(v % p, p) == 1 and gmpy2.legendre(v % q, q) == 1:
                break
        else:
            # only when y shares a factor with N, i.e. never for an honest hash output
            raise ValueError("challenge is not a unit")
        rp = _fourth_root_mod_prime(v % p, p)
        rq = _fourth_root_mod_prime(v % q, q)
        assert rp is not None and rq is not None
        xs.append(rq + (rp - rq) * q_inv_p % p * q)
        as_.append(a)
        bs.append(b)
        zs.append(key.pow_mod_n(y, n_inv))
    return Proof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs))


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    n = statement.n
    if n < 3 or n % 2 == 0 or gmpy2.is_prime(n, 25):
        return False
    m = REPETITIONS
    if not (len(proof.x) == len(proof.a) == len(proof.b) == len(proof.z) == m):
        return False
    if not is_unit(proof.w, n) or gmpy2.jacobi(proof.w, n) != -1:
        return False
    if any(bit not in (0, 1) for bit in proof.a + proof.b):
        return False
    if not all(is_unit(v, n) for v in proof.x + proof.z):
        return False
    ys = _challenges(transcript, n, proof.w)
    for y, x, a, b, z in zip(ys, proof.x, proof.a, proof.b, proof.z, strict=True):
        if gmpy2.powmod(z, n, n) != y:
            return False
        expected = y * (n - 1 if a else 1) * (proof.w if b else 1) % n
        if gmpy2.powmod(x, 4, n) != expected:
            return False
    return True
