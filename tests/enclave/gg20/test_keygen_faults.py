"""Keygen under attack: every malicious message ends in an Abort that names its sender.

The malicious party is either a real party given bad inputs (its own code computes honest
proofs about a bad modulus, as an attacker's would) or a tamper rule on its frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cbor2
import gmpy2
import pytest
from coincurve import PublicKey

from enclave.crypto import ringpedersen
from enclave.crypto.params import REPETITIONS
from enclave.crypto.primes import FixtureSource, SafePrimePair
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.group.secp256k1 import ORDER
from enclave.protocols.driver import Abort, Driver, Frame, Kind
from enclave.protocols.gg20 import keygen
from tests.enclave.gg20.faults import assert_named, edit, edit_proof
from tests.harness import Rule, equivocate, modify, run


def drivers(
    source: FixtureSource,
    parties: Sequence[int],
    sid: bytes,
    threshold: int = 2,
    overrides: dict[int, dict[str, Any]] | None = None,
) -> list[Driver]:
    out = []
    for i in parties:
        kw: dict[str, Any] = {"threshold": threshold, "primes": None}
        kw.update((overrides or {}).get(i, {}))
        primes = kw.pop("primes") or source(kw.get("min_modulus_bits", 2048))
        out.append(keygen.start(sid, i, parties, kw.pop("threshold"), primes, SYSTEM_RNG, **kw))
    return out


def blum_prime(bits: int, seed: int, residue: int = 3) -> int:
    p = gmpy2.next_prime((3 << (bits - 2)) | (seed << (bits // 2)))
    while p % 4 != residue:
        p = gmpy2.next_prime(p)
    return int(p)


def test_modulus_below_configured_size(prime_source: FixtureSource) -> None:
    ds = drivers(prime_source, [1, 2], b"kg-small-modulus", overrides={1: {"min_modulus_bits": 3072}})
    assert_named(run(ds), 2, [1], "modulus below the configured size")


def test_bitforge_small_factor_with_forged_fac(prime_source: FixtureSource) -> None:
    # A Blum modulus of full size whose smaller factor has 128 bits: Πmod and Πprm are honestly
    # provable for it, only Πfac's range check stands between it and a BitForge key extraction.
    weak = SafePrimePair(blum_prime(128, 0x1234), blum_prime(1920, 0x5678))
    assert (weak.p * weak.q).bit_length() >= 2048
    ds = drivers(prime_source, [1, 2, 3], b"kg-bitforge", overrides={2: {"primes": weak}})
    assert_named(run(ds), 2, [1, 3], "invalid Πfac")


@pytest.mark.parametrize("how", ["dropped", "empty"])
def test_bitforge_missing_fac(prime_source: FixtureSource, how: str) -> None:
    def strip(items: list[Any]) -> None:
        if how == "dropped":
            del items[1]
        else:
            items[1] = b""

    ds = drivers(prime_source, [1, 2], b"kg-missing-fac-" + how.encode())
    res = run(ds, rules=[modify(2, 2, edit(strip), to=1, kind=Kind.DIRECT)])
    assert_named(res, 2, [1])


def _bad_modulus(kind: str, pair: SafePrimePair) -> int:
    if kind == "prime":
        return int(gmpy2.next_prime(pair.p * pair.q))
    if kind == "even":
        return pair.p * pair.q + 1
    if kind == "square":
        return pair.p * pair.p
    if kind == "not-blum":
        return blum_prime(1024, 0x99, residue=1) * blum_prime(1024, 0x77, residue=1)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("prime", "modulus is prime"),
        ("even", "modulus is even"),
        ("square", "modulus is a perfect square"),
        ("not-blum", "invalid Πmod"),
    ],
)
def test_bad_modulus(prime_source: FixtureSource, kind: str, reason: str) -> None:
    pair = prime_source(2048)
    bad = _bad_modulus(kind, pair)

    def swap(items: list[Any]) -> None:
        items[1] = bad

    ds = drivers(prime_source, [1, 2], b"kg-bad-modulus-" + kind.encode(), overrides={2: {"primes": pair}})
    assert_named(run(ds, rules=[modify(2, 1, edit(swap))]), 2, [1], reason)


def test_mod_with_w_sharing_a_factor(prime_source: FixtureSource) -> None:
    pair = prime_source(2048)

    def w_is_factor(proof: list[Any]) -> None:
        proof[0] = pair.p

    ds = drivers(prime_source, [1, 2], b"kg-mod-gcd", overrides={2: {"primes": pair}})
    assert_named(run(ds, rules=[modify(2, 1, edit(edit_proof(4, w_is_factor)))]), 2, [1], "invalid Πmod")


@pytest.mark.parametrize("count", [REPETITIONS - 1, 12])
def test_mod_too_few_repetitions(prime_source: FixtureSource, count: int) -> None:
    def truncate(proof: list[Any]) -> None:
        for i in range(1, 5):
            proof[i] = proof[i][:count]

    ds = drivers(prime_source, [1, 2], b"kg-mod-reps-%d" % count)
    assert_named(run(ds, rules=[modify(2, 1, edit(edit_proof(4, truncate)))]), 2, [1], "invalid Πmod")


def test_prm_too_few_repetitions(prime_source: FixtureSource) -> None:
    def truncate(proof: list[Any]) -> None:
        proof[0], proof[1] = proof[0][:40], proof[1][:40]

    ds = drivers(prime_source, [1, 2], b"kg-prm-reps")
    assert_named(run(ds, rules=[modify(2, 1, edit(edit_proof(5, truncate)))]), 2, [1], "invalid Πprm")


@pytest.mark.parametrize(
    ("proof_index", "field", "value", "reason"),
    [
        (4, 1, "zero", "invalid Πmod"),  # x_0 = 0
        (4, 4, "n", "invalid Πmod"),  # z_0 = N
        (4, 0, "negative", "invalid Πmod"),  # w < 0
        (4, 0, "one", "invalid Πmod"),  # w = 1
        (5, 0, "one", "invalid Πprm"),  # A_0 = 1
        (5, 1, "negative", "invalid Πprm"),  # z_0 < 0
        (5, 1, "n", "invalid Πprm"),  # z_0 = N
    ],
)
def test_aux_proof_elements_out_of_range(
    prime_source: FixtureSource, proof_index: int, field: int, value: str, reason: str
) -> None:
    pair = prime_source(2048)
    n = pair.p * pair.q

    def set_value(proof: list[Any]) -> None:
        current = proof[field]
        new = {"zero": 0, "one": 1, "n": n, "negative": -(current[0] if isinstance(current, list) else current)}[value]
        if isinstance(current, list):
            current[0] = new
        else:
            proof[field] = new

    ds = drivers(
        prime_source,
        [1, 2],
        b"kg-range-%d-%d-%s" % (proof_index, field, value.encode()),
        overrides={2: {"primes": pair}},
    )
    assert_named(run(ds, rules=[modify(2, 1, edit(edit_proof(proof_index, set_value)))]), 2, [1], reason)


@pytest.mark.parametrize("flaw", ["s=t", "s=1"])
def test_ring_pedersen_degenerate(prime_source: FixtureSource, monkeypatch: pytest.MonkeyPatch, flaw: str) -> None:
    # The malicious party proves Πprm for its degenerate parameters (λ = 1 or 0 makes the proof
    # itself pass); only the structural check rejects them.
    honest = keygen.start(b"kg-pedersen-" + flaw.encode(), 1, [1, 2], 2, prime_source(2048), SYSTEM_RNG)

    def degenerate(key: Any, rng: Any) -> tuple[ringpedersen.Params, ringpedersen.Trapdoor]:
        params, _ = real(key, rng)
        if flaw == "s=t":
            return ringpedersen.Params(params.n, params.t, params.t), ringpedersen.Trapdoor(1, key)
        return ringpedersen.Params(params.n, 1, params.t), ringpedersen.Trapdoor(0, key)

    real = ringpedersen.generate
    monkeypatch.setattr(keygen.ringpedersen, "generate", degenerate)
    evil = keygen.start(b"kg-pedersen-" + flaw.encode(), 2, [1, 2], 2, prime_source(2048), SYSTEM_RNG)
    monkeypatch.undo()
    assert_named(run([honest, evil]), 2, [1], "invalid ring-Pedersen parameters")


def test_vss_too_many_commitments(prime_source: FixtureSource) -> None:
    ds = drivers(prime_source, [1, 2, 3], b"kg-vss-count", overrides={2: {"threshold": 3}})
    assert_named(run(ds), 2, [1, 3], "wrong number of VSS commitments")


def _off_curve_x() -> bytes:
    for x in range(1, 100):
        candidate = b"\x02" + x.to_bytes(32, "big")
        try:
            PublicKey(candidate)
        except ValueError:
            return candidate
    raise AssertionError("no off-curve x below 100")


@pytest.mark.parametrize(
    "point", [_off_curve_x(), b"\x00", bytes(33), b"\x04" + bytes(32), b"\x02" + (2**256 - 1).to_bytes(32, "big")]
)
def test_vss_invalid_commitment_point(prime_source: FixtureSource, point: bytes) -> None:
    def bad_point(items: list[Any]) -> None:
        items[0][1] = point

    ds = drivers(prime_source, [1, 2], b"kg-vss-point-" + point[:2])
    assert_named(
        run(ds, rules=[modify(2, 2, edit(bad_point), kind=Kind.BROADCAST)]), 2, [1], "invalid VSS commitment point"
    )


def test_vss_share_does_not_match(prime_source: FixtureSource) -> None:
    seen: dict[str, int] = {}

    def capture(sender: int, recipient: int, frame: Frame) -> None:
        if sender == 1 and frame.round == 1:
            seen["n1"] = cbor2.loads(frame.body)[1]

    def shift(items: list[Any]) -> None:
        n = seen["n1"]
        items[0] = items[0] * (1 + n) % (n * n)  # Enc(share) -> Enc(share + 1)

    rules: list[Rule] = [capture, modify(2, 2, edit(shift), to=1, kind=Kind.DIRECT)]  # type: ignore[list-item]
    ds = drivers(prime_source, [1, 2], b"kg-vss-share")
    assert_named(run(ds, rules=rules), 2, [1], "share does not match the VSS commitments")


def test_share_ciphertext_outside_group(prime_source: FixtureSource) -> None:
    def zero(items: list[Any]) -> None:
        items[0] = 0

    ds = drivers(prime_source, [1, 2], b"kg-share-ct")
    assert_named(
        run(ds, rules=[modify(2, 2, edit(zero), to=1, kind=Kind.DIRECT)]), 2, [1], "share ciphertext outside Z*_{N^2}"
    )


@pytest.mark.parametrize("parties", [[0, 1], [1, ORDER], [1, 1, 2], [1, ORDER + 1]])
def test_invalid_party_indices_refused(prime_source: FixtureSource, parties: list[int]) -> None:
    with pytest.raises(InvalidParameters):
        keygen.start(b"kg-ids", 1, parties, 2, prime_source(2048), SYSTEM_RNG)


def test_decommitment_does_not_open(prime_source: FixtureSource) -> None:
    def flip_salt(items: list[Any]) -> None:
        items[2] = bytes([items[2][0] ^ 1]) + items[2][1:]

    ds = drivers(prime_source, [1, 2], b"kg-decommit")
    assert_named(
        run(ds, rules=[modify(2, 2, edit(flip_salt), kind=Kind.BROADCAST)]),
        2,
        [1],
        "decommitment does not open the commitment",
    )


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def test_bad_schnorr_proof_of_u(prime_source: FixtureSource) -> None:
    def bad(items: list[Any]) -> None:
        items[3] = _flip_last(items[3])

    ds = drivers(prime_source, [1, 2], b"kg-schnorr-u")
    assert_named(run(ds, rules=[modify(2, 2, edit(bad), kind=Kind.BROADCAST)]), 2, [1], "invalid Schnorr proof")


def test_bad_schnorr_proof_of_share(prime_source: FixtureSource) -> None:
    ds = drivers(prime_source, [1, 2], b"kg-schnorr-x")
    assert_named(run(ds, rules=[modify(2, 3, _flip_last)]), 2, [1], "invalid Schnorr proof of the key share")


def test_equivocating_broadcast(prime_source: FixtureSource) -> None:
    def other_commitment(items: list[Any]) -> None:
        items[0] = bytes(32)

    ds = drivers(prime_source, [1, 2, 3], b"kg-equivocate")
    res = run(ds, rules=[equivocate(2, 1, 3, edit(other_commitment))])
    assert_named(res, 2, [1, 3])


def test_round_one_replayed_from_older_session(prime_source: FixtureSource) -> None:
    old = keygen.start(b"kg-old-session", 2, [1, 2], 2, prime_source(2048), SYSTEM_RNG)
    old_payload = old.take_outgoing()[0].payload

    def replay(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender == 2 and frame.round == 1:
            return [old_payload]
        return None

    ds = drivers(prime_source, [1, 2], b"kg-new-session")
    assert_named(run(ds, rules=[replay]), 2, [1], "invalid Πmod")


def test_sender_outside_the_party_set_is_rejected(prime_source: FixtureSource) -> None:
    outsider = keygen.start(b"kg-outsider", 9, [1, 9], 2, prime_source(2048), SYSTEM_RNG)
    payload = outsider.take_outgoing()[0].payload
    ds = drivers(prime_source, [1, 2], b"kg-outsider")
    res = run(ds, inject=[(9, 1, payload), (9, 2, payload)])
    assert sorted(res.rejected) == [(1, 9), (2, 9)]
    outputs = res.outputs()
    assert outputs[1].public_key == outputs[2].public_key  # type: ignore[attr-defined]


def test_colluding_parties_reusing_one_modulus(prime_source: FixtureSource) -> None:
    shared = prime_source(2048)
    overrides = {2: {"primes": shared}, 3: {"primes": shared}}
    ds = drivers(prime_source, [1, 2, 3], b"kg-shared-modulus", overrides=overrides)
    res = run(ds)
    outcome = res.outcomes[1]
    assert isinstance(outcome, Abort) and outcome.culprits == {2, 3} and outcome.reason == "reused Paillier modulus"
