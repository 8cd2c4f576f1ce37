"""End-to-end GG20: every signature checked by libsecp256k1 (verify + recovery) and OpenSSL."""

from __future__ import annotations

import itertools

import pytest

from enclave.crypto.primes import FixtureSource
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import BadInput
from enclave.group.secp256k1 import ORDER
from enclave.protocols.driver import Abort
from enclave.protocols.gg20 import keygen, sign
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.presignature import Presignature
from tests.enclave.gg20.conftest import UsedSet, check_signature, digest_of, run_presign, run_sign
from tests.harness import run


def _presign_and_sign(keys: dict[int, KeyShare], signers: tuple[int, ...], tag: bytes) -> None:
    presigs = run_presign(keys, signers, b"presign-" + tag).outputs()
    digest = digest_of(b"message " + tag)
    sigs = run_sign(keys, presigs, digest, b"sign-" + tag).outputs()  # type: ignore[arg-type]
    assert len({s.to_bytes() for s in sigs.values()}) == 1  # type: ignore[attr-defined]
    check_signature(next(iter(sigs.values())), digest, keys[signers[0]].public_key)  # type: ignore[arg-type]


def test_keygen_outputs_agree(keys_2of3: dict[int, KeyShare]) -> None:
    shares = list(keys_2of3.values())
    assert len({s.public_key for s in shares}) == 1
    assert len({s.chain_code for s in shares}) == 1
    assert all(s.public_shares == shares[0].public_shares for s in shares)
    assert len({s.aux[j].n for j in (1, 2, 3) for s in shares[:1]}) == 3


def test_2_of_2(keys_2of2: dict[int, KeyShare]) -> None:
    _presign_and_sign(keys_2of2, (1, 2), b"2of2")


@pytest.mark.parametrize("pair", list(itertools.combinations((1, 2, 3), 2)))
def test_2_of_3_every_pair(keys_2of3: dict[int, KeyShare], pair: tuple[int, int]) -> None:
    _presign_and_sign(keys_2of3, pair, b"2of3-%d%d" % pair)


def test_2_of_3_all_three_sign(keys_2of3: dict[int, KeyShare]) -> None:
    _presign_and_sign(keys_2of3, (1, 2, 3), b"2of3-all")


def test_3_of_5(keys_3of5: dict[int, KeyShare]) -> None:
    _presign_and_sign(keys_3of5, (1, 3, 5), b"3of5-135")


def test_3_of_5_other_set(keys_3of5: dict[int, KeyShare]) -> None:
    _presign_and_sign(keys_3of5, (2, 4, 5), b"3of5-245")


def test_serialized_share_and_presignature_sign(keys_2of2: dict[int, KeyShare]) -> None:
    keys = {i: KeyShare.from_bytes(k.to_bytes()) for i, k in keys_2of2.items()}
    assert keys == keys_2of2
    presigs = run_presign(keys, (1, 2), b"presign-serialized").outputs()
    restored = {i: Presignature.from_bytes(p.to_bytes()) for i, p in presigs.items()}  # type: ignore[attr-defined]
    assert restored == presigs
    digest = digest_of(b"sealed and restored")
    sig = run_sign(keys, restored, digest, b"sign-serialized").outputs()[1]
    check_signature(sig, digest, keys[1].public_key)  # type: ignore[arg-type]


def test_secrets_not_in_repr(keys_2of2: dict[int, KeyShare]) -> None:
    share = keys_2of2[1]
    text = repr(share)
    assert str(share.secret) not in text and str(share.paillier_p) not in text
    presig = run_presign(keys_2of2, (1, 2), b"presign-repr").outputs()[1]
    assert str(presig.k) not in repr(presig) and str(presig.chi) not in repr(presig)  # type: ignore[attr-defined]


def test_presignature_used_twice_is_refused(keys_2of2: dict[int, KeyShare]) -> None:
    presigs = run_presign(keys_2of2, (1, 2), b"presign-twice").outputs()
    hook = UsedSet()
    digest = digest_of(b"first")
    first = sign.start(b"sign-twice-1", keys_2of2[1], presigs[1], digest, hook)  # type: ignore[arg-type]
    assert first.take_outgoing()  # the share left only after the hook recorded the use
    with pytest.raises(RuntimeError, match="already used"):
        sign.start(b"sign-twice-2", keys_2of2[1], presigs[1], digest_of(b"second"), hook)  # type: ignore[arg-type]
    assert hook.used == {presigs[1].presign_id}  # type: ignore[attr-defined]


def test_consume_failure_releases_nothing(keys_2of2: dict[int, KeyShare]) -> None:
    presigs = run_presign(keys_2of2, (1, 2), b"presign-consume-fail").outputs()

    def failing(_: bytes) -> None:
        raise OSError("storage unavailable")

    with pytest.raises(OSError):
        sign.start(b"sign-fail", keys_2of2[1], presigs[1], digest_of(b"m"), failing)  # type: ignore[arg-type]


def test_presignature_bound_to_its_key(keys_2of2: dict[int, KeyShare], keys_2of3: dict[int, KeyShare]) -> None:
    presigs = run_presign(keys_2of2, (1, 2), b"presign-binding").outputs()
    with pytest.raises(BadInput):
        sign.start(b"s", keys_2of3[1], presigs[1], digest_of(b"m"), UsedSet())  # type: ignore[arg-type]


def test_bad_signature_share_names_the_signer(keys_2of3: dict[int, KeyShare]) -> None:
    from tests.harness import modify

    presigs = run_presign(keys_2of3, (1, 2, 3), b"presign-badshare").outputs()

    def bump(body: bytes) -> bytes:
        return ((int.from_bytes(body, "big") + 1) % ORDER).to_bytes(32, "big")

    res = run_sign(keys_2of3, presigs, digest_of(b"m"), b"sign-badshare", rules=[modify(2, 1, bump)])  # type: ignore[arg-type]
    for p in (1, 3):
        outcome = res.outcomes[p]
        assert isinstance(outcome, Abort) and outcome.culprits == {2}, outcome
        assert outcome.reason == "bad signature share"


def test_3072_bit_moduli_2_of_2(prime_source: FixtureSource) -> None:
    parties = [1, 2]
    drivers = [
        keygen.start(b"kg-3072", i, parties, 2, prime_source(3072), SYSTEM_RNG, min_modulus_bits=3072) for i in parties
    ]
    keys = run(drivers).outputs()
    assert all(k.aux[j].n.bit_length() == 3072 for k in keys.values() for j in parties)  # type: ignore[attr-defined]
    _presign_and_sign(keys, (1, 2), b"3072")  # type: ignore[arg-type]
