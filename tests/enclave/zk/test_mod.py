from __future__ import annotations

import dataclasses

import gmpy2
import pytest

from enclave.crypto.params import REPETITIONS
from enclave.crypto.rng import SYSTEM_RNG, random_below
from enclave.zk import mod, wire
from tests.enclave.zk.conftest import Party, transcript


@pytest.fixture(scope="module")
def proof(parties: tuple[Party, Party]) -> mod.Proof:
    key = parties[0].key
    return mod.prove(transcript(), mod.Statement(key.n), mod.Witness(key), SYSTEM_RNG)


def test_valid(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    n = parties[0].key.n
    assert mod.verify(transcript(), mod.Statement(n), proof)
    assert mod.verify(transcript(), mod.Statement(n), wire.decode(mod.Proof, wire.encode(proof)))


@pytest.mark.parametrize("what", ["session", "prover", "verifier"])
def test_replay_under_another_binding_fails(parties: tuple[Party, Party], proof: mod.Proof, what: str) -> None:
    t = {"session": transcript(session=b"other"), "prover": transcript(prover=3), "verifier": transcript(verifier=3)}
    assert not mod.verify(t[what], mod.Statement(parties[0].key.n), proof)


def test_other_modulus_fails(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    assert not mod.verify(transcript(), mod.Statement(parties[1].key.n), proof)


@pytest.mark.parametrize("kind", ["even", "prime"])
def test_even_or_prime_modulus_rejected(parties: tuple[Party, Party], proof: mod.Proof, kind: str) -> None:
    n = parties[0].key.n
    bad = n + 1 if kind == "even" else int(gmpy2.next_prime(n))
    assert not mod.verify(transcript(), mod.Statement(bad), proof)


@pytest.mark.parametrize("count", [0, 12, REPETITIONS - 1, REPETITIONS + 1])
def test_wrong_repetition_count(parties: tuple[Party, Party], proof: mod.Proof, count: int) -> None:
    def fit(xs: tuple[int, ...]) -> tuple[int, ...]:
        return (xs * 2)[:count]

    short = mod.Proof(proof.w, fit(proof.x), fit(proof.a), fit(proof.b), fit(proof.z))
    assert not mod.verify(transcript(), mod.Statement(parties[0].key.n), short)


def test_w_sharing_a_factor(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    key = parties[0].key
    for w in (key.p, key.q * 3, 0):
        assert not mod.verify(transcript(), mod.Statement(key.n), dataclasses.replace(proof, w=w))


def test_w_with_jacobi_plus_one(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    key = parties[0].key
    w = proof.w * proof.w % key.n
    assert gmpy2.jacobi(w, key.n) == 1
    assert not mod.verify(transcript(), mod.Statement(key.n), dataclasses.replace(proof, w=w))


@pytest.mark.parametrize("field", ["x", "z"])
@pytest.mark.parametrize("value", ["zero", "n", "negative", "factor"])
def test_elements_out_of_range(parties: tuple[Party, Party], proof: mod.Proof, field: str, value: str) -> None:
    key = parties[0].key
    values = list(getattr(proof, field))
    values[3] = {"zero": 0, "n": key.n, "negative": -values[3], "factor": key.p}[value]
    assert not mod.verify(transcript(), mod.Statement(key.n), dataclasses.replace(proof, **{field: tuple(values)}))


def test_bits_must_be_bits(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    a = list(proof.a)
    a[0] = 2
    assert not mod.verify(transcript(), mod.Statement(parties[0].key.n), dataclasses.replace(proof, a=tuple(a)))


def _sqrt_mod_prime(v: int, p: int) -> int | None:
    """Tonelli–Shanks (test helper for a cheating prover on non-Blum primes)."""
    v %= p
    if v == 0:
        return 0
    if gmpy2.legendre(v, p) != 1:
        return None
    q, s = p - 1, 0
    while q % 2 == 0:
        q, s = q // 2, s + 1
    z = 2
    while gmpy2.legendre(z, p) != -1:
        z += 1
    m, c, t, r = s, pow(z, q, p), pow(v, q, p), pow(v, (q + 1) // 2, p)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % p, i + 1
        b = pow(c, 1 << (m - i - 1), p)
        m, c, t, r = i, b * b % p, t * b * b % p, r * b % p
    return r


def _fourth_root(v: int, p: int) -> int | None:
    r = _sqrt_mod_prime(v, p)
    if r is None:
        return None
    for cand in (r, p - r):
        s = _sqrt_mod_prime(cand, p)
        if s is not None:
            return s
    return None


def _prime_1_mod_4(bits: int, seed: int) -> int:
    p = int(gmpy2.next_prime((3 << (bits - 2)) | (seed << (bits // 2))))
    while p % 4 != 1:
        p = int(gmpy2.next_prime(p))
    return p


def test_non_blum_modulus_cheating_prover_fails() -> None:
    # p ≡ q ≡ 1 (mod 4): the prover knows the factors and does its best (Tonelli–Shanks 4th
    # roots wherever one exists); each repetition fails with probability >= 1/2.
    p, q = _prime_1_mod_4(1024, 11), _prime_1_mod_4(1024, 29)
    assert p != q
    n, phi = p * q, (p - 1) * (q - 1)
    t = transcript()
    while True:
        w = random_below(SYSTEM_RNG, n)
        if gmpy2.jacobi(w, n) == -1:
            break
    ys = mod._challenges(t, n, w)
    xs, as_, bs, zs = [], [], [], []
    n_inv = int(gmpy2.invert(n, phi))
    failed = 0
    for y in ys:
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            v = y * (n - 1 if a else 1) * (w if b else 1) % n
            rp, rq = _fourth_root(v, p), _fourth_root(v, q)
            if rp is not None and rq is not None:
                xs.append(int(rq + (rp - rq) * gmpy2.invert(q, p) % p * q))
                break
        else:
            failed += 1
            xs.append(random_below(SYSTEM_RNG, n))
        as_.append(a)
        bs.append(b)
        zs.append(int(gmpy2.powmod(y, n_inv, n)))
    assert failed > 0
    forged = mod.Proof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs))
    assert not mod.verify(transcript(), mod.Statement(n), forged)


def test_perfect_square_modulus_rejected(parties: tuple[Party, Party], proof: mod.Proof) -> None:
    p = parties[0].key.p
    assert not mod.verify(transcript(), mod.Statement(p * p), proof)
