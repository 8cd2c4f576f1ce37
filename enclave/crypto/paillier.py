"""Paillier encryption on gmpy2, with g = 1 + N.

Enc(m; r) = (1 + N)^m * r^N = (1 + m*N) * r^N (mod N^2). Plaintexts are residues mod N;
`decrypt_signed` maps them to (-N/2, N/2], the convention of the MtA protocols whose
intermediate values may be negative. Homomorphic operations: `add` (plaintext sum) and
`mul` (plaintext times an integer, negative allowed through the inverse).

Validation contract: every ciphertext from a peer goes through `PublicKey.validate` (in
Z*_{N^2}: 0 < c < N^2 and gcd(c, N) = 1) before any use; `check_modulus` enforces the
configured minimum size and the cheap structural facts (odd, not a square); the ZK proofs
(Πmod, Πfac) establish the rest.

The secret key holds p and q; `decrypt` and the owner's encryptions use CRT (mod p^2 and q^2),
about 3x faster than working mod N^2. Python cannot wipe memory: p and q live as ints for the
lifetime of the key object; they are kept out of repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import gmpy2

from enclave.crypto.rng import Rng, random_below
from enclave.errors import InvalidParameters

DEFAULT_MODULUS_BITS = 2048


def random_unit(rng: Rng, n: int) -> int:
    """Uniform element of Z*_n."""
    while True:
        r = random_below(rng, n)
        if r > 0 and gmpy2.gcd(r, n) == 1:
            return r


@dataclass(frozen=True)
class PublicKey:
    n: int

    @cached_property
    def n2(self) -> int:
        return self.n * self.n

    def validate(self, c: int) -> bool:
        """True iff c is in Z*_{N^2}."""
        return 0 < c < self.n2 and gmpy2.gcd(c, self.n) == 1

    def encrypt_with(self, m: int, r: int) -> int:
        n, n2 = self.n, self.n2
        return int((1 + (m % n) * n) * gmpy2.powmod(r, n, n2) % n2)

    def encrypt(self, m: int, rng: Rng) -> tuple[int, int]:
        """(ciphertext, randomness)."""
        r = random_unit(rng, self.n)
        return self.encrypt_with(m, r), r

    def add(self, c1: int, c2: int) -> int:
        return c1 * c2 % self.n2

    def mul(self, c: int, k: int) -> int:
        return int(gmpy2.powmod(c, k, self.n2))

    def to_bytes(self) -> bytes:
        return self.n.to_bytes((self.n.bit_length() + 7) // 8, "big")


def check_modulus(n: int, min_bits: int) -> str | None:
    """Cheap structural checks of a peer's modulus; the reason it fails, or None."""
    if n.bit_length() < min_bits:
        return "modulus below the configured size"
    if n % 2 == 0:
        return "modulus is even"
    if gmpy2.is_square(n):
        return "modulus is a perfect square"
    if gmpy2.is_prime(n, 25):
        return "modulus is prime"
    return None


@dataclass(frozen=True)
class SecretKey:
    p: int = field(repr=False)
    q: int = field(repr=False)

    def __post_init__(self) -> None:
        if self.p == self.q or self.p < 3 or self.q < 3:
            raise InvalidParameters("Paillier primes must be distinct odd primes")

    @cached_property
    def public(self) -> PublicKey:
        return PublicKey(self.p * self.q)

    @property
    def n(self) -> int:
        return self.p * self.q

    @cached_property
    def phi(self) -> int:
        return (self.p - 1) * (self.q - 1)

    @cached_property
    def _crt(self) -> tuple[int, int, int, int, int, int]:
        p, q = self.p, self.q
        p2, q2 = p * p, q * q
        n = p * q
        # h_p = L_p((1+N)^(p-1) mod p^2)^-1 mod p
        hp = int(gmpy2.invert((gmpy2.powmod(1 + n, p - 1, p2) - 1) // p, p))
        hq = int(gmpy2.invert((gmpy2.powmod(1 + n, q - 1, q2) - 1) // q, q))
        q_inv_p = int(gmpy2.invert(q, p))
        q2_inv_p2 = int(gmpy2.invert(q2, p2))
        return hp, hq, q_inv_p, p2, q2, q2_inv_p2

    def decrypt(self, c: int) -> int:
        """Plaintext in [0, N). The caller has validated c."""
        p, q = self.p, self.q
        hp, hq, q_inv_p, p2, q2, _ = self._crt
        mp = (gmpy2.powmod(c, p - 1, p2) - 1) // p * hp % p
        mq = (gmpy2.powmod(c, q - 1, q2) - 1) // q * hq % q
        return int(mq + (mp - mq) * q_inv_p % p * q)

    def decrypt_signed(self, c: int) -> int:
        m = self.decrypt(c)
        n = self.n
        return m - n if m > n // 2 else m

    def pow_mod_n2(self, base: int, exp: int) -> int:
        """base^exp mod N^2 by CRT over p^2 and q^2 (any sign of exp; a unit base for exp < 0)."""
        p, q = self.p, self.q
        _, _, _, p2, q2, q2_inv_p2 = self._crt
        if exp < 0:
            base, exp = int(gmpy2.invert(base, p2 * q2)), -exp
        ep = exp % (p * (p - 1))
        eq = exp % (q * (q - 1))
        xp = gmpy2.powmod(base, ep, p2)
        xq = gmpy2.powmod(base, eq, q2)
        return int(xq + (xp - xq) * q2_inv_p2 % p2 * q2)

    def pow_mod_n(self, base: int, exp: int) -> int:
        """base^exp mod N by CRT (any sign of exp; base must be a unit for exp < 0)."""
        p, q = self.p, self.q
        _, _, q_inv_p, _, _, _ = self._crt
        if exp < 0:
            base, exp = int(gmpy2.invert(base, self.n)), -exp
        xp = gmpy2.powmod(base, exp % (p - 1), p)
        xq = gmpy2.powmod(base, exp % (q - 1), q)
        return int(xq + (xp - xq) * q_inv_p % p * q)

    def nth_power(self, r: int) -> int:
        """r^N mod N^2, cheaply. Mod p^2 the N-th power lies in the subgroup of order p-1, so it
        is the Teichmüller lift of its residue mod p: r^N ≡ (r^(N mod (p-1)) mod p)^p (mod p^2)
        (likewise for q). Two half-size exponentiations and two lifts instead of two full
        exponentiations mod p^2 and q^2."""
        p, q, n = self.p, self.q, self.n
        _, _, _, p2, q2, q2_inv_p2 = self._crt
        xp = gmpy2.powmod(gmpy2.powmod(r, n % (p - 1), p), p, p2)
        xq = gmpy2.powmod(gmpy2.powmod(r, n % (q - 1), q), q, q2)
        return int(xq + (xp - xq) * q2_inv_p2 % p2 * q2)

    def encrypt_with(self, m: int, r: int) -> int:
        """The owner's encryption: the same ciphertext as `PublicKey.encrypt_with`, via CRT."""
        n = self.n
        n2 = n * n
        return (1 + (m % n) * n) * self.nth_power(r) % n2

    def encrypt(self, m: int, rng: Rng) -> tuple[int, int]:
        r = random_unit(rng, self.n)
        return self.encrypt_with(m, r), r
