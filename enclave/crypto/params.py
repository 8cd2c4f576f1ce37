"""Parameters and integer helpers shared by ring-Pedersen and the CGGMP21 proofs (eprint 2021/060, section 6.1).

ℓ = 256 (the bit size of the secp256k1 order), ℓ' = 5ℓ, ε = 2ℓ as in CGGMP21; the Paillier–
Blum and ring-Pedersen repetition count is the paper's statistical m = 80 (not a reduced value).
Ranges are symmetric: "x in ±2^b" means -2^b <= x <= 2^b.
"""

from __future__ import annotations

import gmpy2

from enclave.crypto.rng import Rng, random_below

L = 256
L_PRIME = 5 * L
EPSILON = 2 * L
REPETITIONS = 80


def sample_pm(rng: Rng, bound: int) -> int:
    """Uniform integer in [-bound, bound]."""
    return random_below(rng, 2 * bound + 1) - bound


def in_pm(x: int, bound: int) -> bool:
    return -bound <= x <= bound


def is_unit(x: int, n: int) -> bool:
    """x in Z*_n, as a canonical residue: 0 < x < n and gcd(x, n) = 1."""
    return 0 < x < n and gmpy2.gcd(x, n) == 1
