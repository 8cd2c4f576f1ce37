from __future__ import annotations

import gmpy2
import pytest

from enclave.crypto.paillier import PublicKey, SecretKey, check_modulus
from enclave.crypto.rng import SYSTEM_RNG
from tests.enclave import safe_primes


@pytest.fixture(scope="module")
def key() -> SecretKey:
    ps = safe_primes.primes(1024)
    return SecretKey(ps[0], ps[1])


def test_round_trip_and_crt_agree(key: SecretKey) -> None:
    for m in (0, 1, 12345, key.n - 1, 2**255):
        c, r = key.public.encrypt(m, SYSTEM_RNG)
        assert key.decrypt(c) == m % key.n
        assert key.encrypt_with(m, r) == c == key.public.encrypt_with(m, r)


def test_signed_plaintexts(key: SecretKey) -> None:
    c, _ = key.encrypt(-42, SYSTEM_RNG)
    assert key.decrypt_signed(c) == -42


def test_homomorphic_ops(key: SecretKey) -> None:
    pk = key.public
    c1, _ = pk.encrypt(1000, SYSTEM_RNG)
    c2, _ = pk.encrypt(234, SYSTEM_RNG)
    assert key.decrypt(pk.add(c1, c2)) == 1234
    assert key.decrypt(pk.mul(c1, 7)) == 7000
    assert key.decrypt_signed(pk.mul(c1, -3)) == -3000


def test_nth_power_matches_plain(key: SecretKey) -> None:
    n2 = key.n * key.n
    for r in (2, 12345, key.n - 1, key.p + 1, 3**1000 % key.n):
        assert key.nth_power(r) == int(gmpy2.powmod(r, key.n, n2))


def test_crt_pow_matches_plain(key: SecretKey) -> None:
    n2 = key.n * key.n
    for e in (0, 1, key.n, 2**3000 + 17, -5):
        assert key.pow_mod_n2(12345, e) == int(gmpy2.powmod(12345, e, n2))
        assert key.pow_mod_n(777, e) == int(gmpy2.powmod(777, e, key.n))


def test_ciphertext_validation(key: SecretKey) -> None:
    pk = key.public
    c, _ = pk.encrypt(5, SYSTEM_RNG)
    assert pk.validate(c)
    for bad in (0, -c, pk.n2, pk.n2 + 1, key.p, key.q * 7, pk.n):
        assert not pk.validate(bad)


def test_modulus_checks() -> None:
    ps = safe_primes.primes(1024)
    n = ps[0] * ps[1]
    assert check_modulus(n, 2048) is None
    assert check_modulus(n, 3072) == "modulus below the configured size"
    assert check_modulus(n + 1, 2048) == "modulus is even"
    assert check_modulus(ps[0] * ps[0], 2046) == "modulus is a perfect square"
    assert check_modulus(int(gmpy2.next_prime(n)), 2048) == "modulus is prime"


def test_3072_bit_keys() -> None:
    ps = safe_primes.primes(1536)
    key = SecretKey(ps[0], ps[1])
    assert key.n.bit_length() == 3072
    c, _ = key.public.encrypt(99, SYSTEM_RNG)
    assert key.decrypt(c) == 99


def test_secret_key_repr_is_quiet(key: SecretKey) -> None:
    assert str(key.p) not in repr(key) and str(key.q) not in repr(key)
    assert isinstance(key.public, PublicKey)
