"""GG20 key refresh (keygen.start(..., refresh=share)): same public key, chain code and EVM
address, new shares and new aux info, signatures checked by libsecp256k1 and OpenSSL, and a
cheating party named (a sharing of something other than zero, a constant-term commitment, a
stray proof, a bad aux-information proof)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cbor2
import eth_keys
import pytest

from enclave.crypto.polynomial import interpolate
from enclave.crypto.primes import FixtureSource, SafePrimePair
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.group.secp256k1 import ORDER
from enclave.protocols.driver import Abort, Driver, Frame, Kind
from enclave.protocols.gg20 import keygen
from enclave.protocols.gg20.keyshare import KeyShare
from tests.enclave.gg20.conftest import check_signature, run_presign, run_sign
from tests.enclave.gg20.faults import assert_named, edit, edit_proof
from tests.enclave.gg20.test_sign import digest_of
from tests.harness import Result, Rule, modify, run


def new_primes(source: FixtureSource, share: KeyShare) -> SafePrimePair:
    """A pair from the (cycling) fixture source that is none of the key's old Paillier keys,
    as fresh primes from a real pool always are."""
    old = {a.n for a in share.aux.values()}
    for _ in range(64):
        pair = source(2048)
        if pair.p * pair.q not in old:
            return pair
    raise AssertionError("the fixture source holds no new primes")


def refresh_drivers(source: FixtureSource, keys: dict[int, KeyShare], sid: bytes) -> list[Driver]:
    first = next(iter(keys.values()))
    return [
        keygen.start(sid, i, first.parties, first.threshold, new_primes(source, keys[i]), SYSTEM_RNG, refresh=keys[i])
        for i in sorted(keys)
    ]


def run_refresh(source: FixtureSource, keys: dict[int, KeyShare], sid: bytes, rules: Sequence[Rule] = ()) -> Result:
    return run(refresh_drivers(source, keys, sid), rules)


def _address(public_key: bytes) -> str:
    return eth_keys.keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()  # type: ignore[no-any-return]


def _sign(keys: dict[int, KeyShare], signers: tuple[int, ...], tag: bytes) -> None:
    presigs = run_presign(keys, signers, b"presign-" + tag).outputs()
    digest = digest_of(b"message " + tag)
    sigs = run_sign(keys, presigs, digest, b"sign-" + tag).outputs()  # type: ignore[arg-type]
    check_signature(next(iter(sigs.values())), digest, keys[signers[0]].public_key)  # type: ignore[arg-type]


def test_refresh_keeps_the_key_and_renews_shares_and_aux(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    new: dict[int, KeyShare] = run_refresh(prime_source, keys_2of3, b"refresh-2of3").outputs()  # type: ignore[assignment]
    old1 = keys_2of3[1]
    for i, share in new.items():
        assert (share.public_key, share.chain_code) == (old1.public_key, old1.chain_code)
        assert share.public_shares == new[1].public_shares
        assert share.secret != keys_2of3[i].secret
        assert share.public_shares[i] != old1.public_shares[i]
        assert {j: a.n for j, a in share.aux.items()} == {j: a.n for j, a in new[1].aux.items()}
        assert share.aux[i].n != keys_2of3[i].aux[i].n  # a new Paillier key for every party
    assert _address(new[1].public_key) == _address(old1.public_key)
    # any two new shares interpolate to the old secret; an old and a new one do not
    secret = interpolate(ORDER, {1: keys_2of3[1].secret, 3: keys_2of3[3].secret})
    assert interpolate(ORDER, {2: new[2].secret, 3: new[3].secret}) == secret
    assert interpolate(ORDER, {1: keys_2of3[1].secret, 2: new[2].secret}) != secret
    _sign(new, (1, 2), b"refreshed-12")
    _sign(new, (2, 3), b"refreshed-23")
    _sign(keys_2of3, (1, 3), b"old-13")  # the old key still signs until it is retired


def test_refresh_2_of_2(prime_source: FixtureSource, keys_2of2: dict[int, KeyShare]) -> None:
    new: dict[int, KeyShare] = run_refresh(prime_source, keys_2of2, b"refresh-2of2").outputs()  # type: ignore[assignment]
    assert new[1].public_key == keys_2of2[1].public_key
    _sign(new, (1, 2), b"refreshed-2of2")


def test_refresh_rules(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    share = keys_2of3[1]
    with pytest.raises(InvalidParameters, match="keeps the key's parties"):
        keygen.start(b"r", 1, (1, 2), 2, new_primes(prime_source, share), SYSTEM_RNG, refresh=share)
    with pytest.raises(InvalidParameters, match="keeps the key's parties"):
        keygen.start(b"r", 1, (1, 2, 3), 3, new_primes(prime_source, share), SYSTEM_RNG, refresh=share)
    with pytest.raises(InvalidParameters, match="keeps the key's parties"):
        keygen.start(b"r", 2, (1, 2, 3), 2, new_primes(prime_source, share), SYSTEM_RNG, refresh=share)


def test_a_sharing_of_something_other_than_zero_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Party 3 deals shares of 5 (its polynomial's constant term), committing as if to zero:
    every recipient's Feldman check names it."""
    honest = keygen.random_polynomial
    calls: list[int] = []

    def third_deals_five(group: Any, secret: int, threshold: int, rng: Any) -> tuple[int, ...]:
        calls.append(secret)
        coeffs = honest(group, secret, threshold, rng)
        return (5, *coeffs[1:]) if len(calls) == 3 else coeffs

    monkeypatch.setattr(keygen, "random_polynomial", third_deals_five)
    ds = refresh_drivers(prime_source, keys_2of3, b"refresh-nonzero")  # party 3 is the third start
    monkeypatch.undo()
    assert calls == [0, 0, 0]
    assert_named(run(ds), 3, [1, 2], "share does not match the VSS commitments")


def test_a_commitment_with_a_constant_term_is_named(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    def longer(items: list[Any]) -> None:
        items[0] = [items[0][0], *items[0]]

    rules = [modify(2, 2, edit(longer), kind=Kind.BROADCAST)]
    result = run_refresh(prime_source, keys_2of3, b"refresh-const", rules)
    assert_named(result, 2, [1, 3], "wrong number of VSS commitments")


def test_a_proof_of_u_in_a_refresh_is_named(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    def stray(items: list[Any]) -> None:
        items[3] = b"\x01" * 65

    rules = [modify(1, 2, edit(stray), kind=Kind.BROADCAST)]
    result = run_refresh(prime_source, keys_2of3, b"refresh-stray", rules)
    assert_named(result, 1, [2, 3], "a refresh decommitment carries no Schnorr proof")


def test_a_bad_aux_info_proof_is_named(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    """The refresh's new aux info is proven as in a key generation: Πmod with one repetition
    too few, Πprm with too few, each names its prover."""

    def fewer_mod(proof: list[Any]) -> None:
        for i in range(1, 5):
            proof[i] = proof[i][:-1]

    def fewer_prm(proof: list[Any]) -> None:
        proof[0], proof[1] = proof[0][:40], proof[1][:40]

    rules = [modify(2, 1, edit(edit_proof(4, fewer_mod)))]
    assert_named(run_refresh(prime_source, keys_2of3, b"refresh-badmod", rules), 2, [1, 3], "invalid Πmod")
    rules = [modify(3, 1, edit(edit_proof(5, fewer_prm)))]
    assert_named(run_refresh(prime_source, keys_2of3, b"refresh-badprm", rules), 3, [1, 2], "invalid Πprm")


def test_shares_of_different_generations_abort_naming_nobody(
    prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]
) -> None:
    new: dict[int, KeyShare] = run_refresh(prime_source, keys_2of3, b"refresh-gen1").outputs()  # type: ignore[assignment]
    mixed = {1: keys_2of3[1], 2: new[2], 3: new[3]}
    result = run(refresh_drivers(prime_source, mixed, b"refresh-gen2"))
    for p in (1, 2, 3):
        out = result.outcomes[p]
        assert isinstance(out, Abort) and out.culprits == frozenset(), (p, out)
        assert out.reason == "the parties are refreshing different versions of the key"


def test_the_keys_old_paillier_modulus_is_refused(prime_source: FixtureSource, keys_2of3: dict[int, KeyShare]) -> None:
    """Party 2 brings its old Paillier key back (all its proofs are honest for it): named."""
    old = keys_2of3[2].paillier
    with pytest.raises(InvalidParameters, match="new pre-parameters"):
        keygen.start(b"r", 2, (1, 2, 3), 2, SafePrimePair(old.p, old.q), SYSTEM_RNG, refresh=keys_2of3[2])
    ds = refresh_drivers(prime_source, keys_2of3, b"refresh-oldmod")
    # a cheating party 2 skips that local check: its round-1 message, made by a plain keygen
    # start with the old Paillier key (so Πmod and Πprm are honest for it) plus the source digest
    reused = keygen.start(b"refresh-oldmod", 2, (1, 2, 3), 2, SafePrimePair(old.p, old.q), SYSTEM_RNG)
    first = reused.take_outgoing()[0].payload
    frame = Frame.decode(first)
    items = cbor2.loads(frame.body)
    items.append(keygen.source_digest(keys_2of3[2]))
    forged = Frame(frame.round, frame.kind, frame.echo, cbor2.dumps(items)).encode()

    def swap(sender: int, recipient: int, f: Frame) -> list[Frame | bytes] | None:
        return [forged] if sender == 2 and f.round == 1 else None

    result = run(ds, [swap])
    assert_named(result, 2, [1, 3], "a refresh must bring a new Paillier modulus, not the key's old one")
