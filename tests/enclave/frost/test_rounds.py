"""FROST signing and DKG sessions through the round Driver, honest runs and properties, for
every ciphersuite (the `suite` fixture)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.protocols.driver import Frame, Kind
from enclave.protocols.frost import dkg, keys, rounds, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR
from tests import harness
from tests.enclave.frost.common import (
    SUITES,
    dealer,
    dkg_drivers,
    run_dkg,
    sign_drivers,
    verify_independently,
)


def _sign(
    cs: Ciphersuite, kps: dict[int, keys.KeyPackage], public: keys.PublicKeyPackage, signers: list[int], msg: bytes
) -> bytes:
    res = harness.run(sign_drivers(cs, kps, public, signers, msg), seed=len(msg))
    sigs = set(res.outputs().values())
    assert len(sigs) == 1
    sig = sigs.pop()
    assert isinstance(sig, bytes) and len(sig) == cs.signature_len
    verify_independently(cs, public.verifying_key, msg, sig)
    return sig


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SUITES),
    st.integers(2, 6).flatmap(lambda t: st.tuples(st.just(t), st.integers(t, 7))),
    st.binary(max_size=300),
    st.randoms(use_true_random=False),
)
def test_dealer_keys_any_t_of_n_any_signer_set(cs: Ciphersuite, tn: tuple[int, int], msg: bytes, rnd: object) -> None:
    t, n = tn
    kps, public = dealer(cs, n, t)
    k = rnd.randint(t, n)  # type: ignore[attr-defined]
    signers = sorted(rnd.sample(range(1, n + 1), k))  # type: ignore[attr-defined]
    _sign(cs, kps, public, signers, msg)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SUITES),
    st.integers(2, 4).flatmap(lambda t: st.tuples(st.just(t), st.integers(t, 5))),
    st.binary(max_size=64),
)
def test_dkg_keys_any_t_of_n(cs: Ciphersuite, tn: tuple[int, int], msg: bytes) -> None:
    t, n = tn
    g = cs.group
    kps, public = run_dkg(cs, n, t)
    assert set(public.verifying_shares) == set(range(1, n + 1))
    for i, kp in kps.items():
        assert kp.verifying_share == public.verifying_shares[i] == g.encode(g.base_mul(kp.signing_share))
        assert kp.min_signers == t
    # any t shares interpolate to the same group secret, whose public key is the verifying key
    secret = polynomial.interpolate(cs.order, {i: kps[i].signing_share for i in list(kps)[:t]})
    assert g.encode(g.base_mul(secret)) == public.verifying_key
    assert polynomial.interpolate(cs.order, {i: kps[i].signing_share for i in list(kps)[-t:]}) == secret
    _sign(cs, kps, public, list(range(n - t + 1, n + 1)), msg)


def test_derived_identifiers_through_dkg_and_signing(suite: Ciphersuite) -> None:
    cs = suite
    names = {1: "wallet-client", 2: "server-signer", 3: "backup"}
    ids = {p: cs.derive_identifier(name) for p, name in names.items()}
    res = harness.run(dkg_drivers(cs, 3, 2, ids=ids))
    outs = res.outputs()
    kps = {p: o[0] for p, o in outs.items()}
    public = outs[1][1]
    assert set(public.verifying_shares) == set(ids.values())
    # driver party ids stay 1..3, FROST identifiers are the derived scalars
    pkps = {p: kps[p] for p in kps}
    signers = [1, 3]
    drivers = [
        rounds.signing_driver(
            rounds.SignSetup(cs, b"s", p, {q: ids[q] for q in signers}, pkps[p], public, b"derived", SYSTEM_RNG)
        )
        for p in signers
    ]
    sig = harness.run(drivers).outputs()[1]
    assert isinstance(sig, bytes)
    verify_independently(cs, public.verifying_key, b"derived", sig)


def test_dkg_round2_is_ciphertext_only(suite: Ciphersuite) -> None:
    cs = suite
    drivers = dkg_drivers(cs, 3, 2)
    bodies: list[tuple[int, int, Frame]] = []

    def spy(s: int, r: int, frame: Frame) -> None:
        bodies.append((s, r, frame))

    res = harness.run(drivers, [spy])
    kps = {p: o[0] for p, o in res.outputs().items()}
    round2 = [(s, r, f) for s, r, f in bodies if f.round == 2]
    assert round2 and all(f.kind is Kind.DIRECT for _, _, f in round2)
    # no share value (nor its encoding as a ZF round2 package) appears on the wire
    all_bytes = b"".join(f.body for _, _, f in bodies)
    for kp in kps.values():
        assert cs.group.encode_scalar(kp.signing_share) not in all_bytes
    assert wire.encode_round2_package(cs, 0)[:5] not in b"".join(f.body for _, _, f in round2)


def test_share_ciphertext_bound_to_session_sender_recipient(suite: Ciphersuite) -> None:
    cs, g = suite, suite.group
    a, b = g.random_scalar(SYSTEM_RNG), g.random_scalar(SYSTEM_RNG)
    pa, pb = g.encode(g.base_mul(a)), g.encode(g.base_mul(b))
    shared = dkg.shared_secret(cs, a, pb)
    assert shared == dkg.shared_secret(cs, b, pa)
    ct = dkg.encrypt_share(cs, b"sid", shared, pa, pb, 1, 2, b"secret share")
    assert dkg.decrypt_share(cs, b"sid", shared, pb, pa, 2, 1, ct) == b"secret share"
    for args in [(b"other", shared, pb, pa, 2, 1), (b"sid", shared, pb, pa, 3, 1), (b"sid", shared, pb, pa, 2, 3)]:
        with pytest.raises(dkg.DkgFault):
            dkg.decrypt_share(cs, *args, ct)  # type: ignore[arg-type]
    # the key is bound to the suite: FROST(secp256k1) and Taproot share a group, not share keys
    if cs.group is FROST_SECP256K1.group:
        other = FROST_SECP256K1_TR if cs is FROST_SECP256K1 else FROST_SECP256K1
        with pytest.raises(dkg.DkgFault):
            dkg.decrypt_share(other, b"sid", shared, pb, pa, 2, 1, ct)


def test_setup_validation(suite: Ciphersuite) -> None:
    cs = suite
    kps, public = dealer(cs, 3, 3)
    with pytest.raises(InvalidParameters):  # fewer signers than t
        sign_drivers(cs, kps, public, [1, 2], b"m")
    with pytest.raises(InvalidParameters):
        keys.trusted_dealer_keygen(cs, [1], 1, SYSTEM_RNG)
    with pytest.raises(InvalidParameters):
        keys.trusted_dealer_keygen(cs, list(range(1, 257)), 2, SYSTEM_RNG)
    other_kps, other_public = dealer(cs, 3, 2)
    with pytest.raises(InvalidParameters):  # key package from another key
        rounds.signing_driver(rounds.SignSetup(cs, b"s", 1, {1: 1, 2: 2}, other_kps[1], public, b"m", SYSTEM_RNG))
    assert other_public
    if not cs.bip340:  # only Taproot keys take a merkle root
        with pytest.raises(InvalidParameters):
            sign_drivers(cs, kps, public, [1, 2, 3], b"m", merkle_root=bytes(32))


def test_aggregate_names_every_bad_share(suite: Ciphersuite) -> None:
    cs = suite
    kps, public = dealer(cs, 4, 3)
    signers = [1, 2, 4]
    nonces = {i: signing.commit(cs, kps[i].signing_share, SYSTEM_RNG) for i in signers}
    pkg = signing.SigningPackage({i: nonces[i].commitments for i in signers}, b"m")
    shares = {i: signing.sign(cs, kps[i], nonces[i], pkg) for i in signers}
    shares[2] = (shares[2] + 1) % cs.order
    shares[4] = (shares[4] + 5) % cs.order
    with pytest.raises(signing.InvalidSignatureShares) as info:
        signing.aggregate(cs, pkg, shares, public)
    assert info.value.culprits == frozenset({2, 4})
