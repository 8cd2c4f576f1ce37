"""Non-hardened derivation of FROST keys and the DKG's chain code (enclave.protocols.frost.derive).

The rule is checked against `derivation_rule`, written again from its statement with PyNaCl and
coincurve point arithmetic; derived shares against Lagrange interpolation; signatures from
derived packages with libsodium (Ed25519), ZF frost and the Schnorr equation on libsecp256k1
points (FROST(secp256k1)), and libsecp256k1's BIP340 verifier (Taproot).
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from coincurve import PublicKey, PublicKeyXOnly

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.protocols.driver import Frame, Kind
from enclave.protocols.frost import derive
from enclave.protocols.frost.ciphersuite import FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from signer.client.verify import verify_frost_secp256k1
from tests import harness
from tests.enclave.frost import derivation_rule
from tests.enclave.frost.common import dealer, dkg_drivers, sign_drivers, verify_independently

CHAIN = hashlib.sha256(b"a chain code").digest()
PATHS = [(0,), (1,), (0, 0), (0, 1), (44, 0, 2**31 - 1), tuple(range(16))]


def _derive_all(
    cs: Ciphersuite, kps: dict[int, KeyPackage], public: PublicKeyPackage, chain: bytes, path: tuple[int, ...]
) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    out = {i: derive.derive_packages(cs, kp, public, chain, path) for i, kp in kps.items()}
    publics = {(tuple(sorted(p.verifying_shares.items())), p.verifying_key) for _, p in out.values()}
    assert len(publics) == 1, "every party derives the same public key package"
    return {i: k for i, (k, _) in out.items()}, next(iter(out.values()))[1]


@pytest.mark.parametrize("path", PATHS, ids=str)
def test_derived_key_follows_the_documented_rule(suite: Ciphersuite, path: tuple[int, ...]) -> None:
    """P' from the enclave equals P' computed from the API key and chain code alone."""
    kps, public = dealer(suite, 3, 2)
    _, child = _derive_all(suite, kps, public, CHAIN, path)
    expected, expected_chain = derivation_rule.child_key(
        suite.short_name, derive.api_key(suite, public.verifying_key), CHAIN, path
    )
    assert derive.api_key(suite, child.verifying_key) == expected
    derived = derive.derive_public(suite, public.verifying_key, CHAIN, path)
    assert derived.chain_code == expected_chain and derived.verifying_key == child.verifying_key


def test_derived_shares_interpolate_to_the_derived_secret(suite: Ciphersuite) -> None:
    """s_j' = ±s_j + tweak at every party; any t of them interpolate to the child secret, whose
    public key is P', and Y_j' = s_j' * G."""
    cs, g = suite, suite.group
    kps, public = dealer(cs, 4, 3)
    root = polynomial.interpolate(cs.order, {i: kps[i].signing_share for i in (1, 2, 3)})
    path = (3, 1, 4, 1, 5)
    child_kps, child = _derive_all(cs, kps, public, CHAIN, path)
    d = derive.derive_public(cs, public.verifying_key, CHAIN, path)
    expected_secret = ((-root if d.negated else root) + d.tweak) % cs.order
    for signers in itertools.combinations(sorted(kps), 3):
        secret = polynomial.interpolate(cs.order, {i: child_kps[i].signing_share for i in signers})
        assert secret == expected_secret
        assert g.encode(g.base_mul(secret)) == child.verifying_key
    for i, kp in child_kps.items():
        assert g.encode(g.base_mul(kp.signing_share)) == kp.verifying_share == child.verifying_shares[i]
        assert kp.signing_share == ((-kps[i].signing_share if d.negated else kps[i].signing_share) + d.tweak) % cs.order
    if not cs.bip340:
        assert not d.negated  # the additive rule alone: no negation outside Taproot


def test_different_paths_and_chain_codes_give_different_keys(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 2, 2)
    keys = {derive.derive_public(suite, public.verifying_key, CHAIN, p).verifying_key for p in PATHS}
    keys.add(public.verifying_key)
    assert len(keys) == len(PATHS) + 1
    other = hashlib.sha256(b"another chain code").digest()
    assert (
        derive.derive_public(suite, public.verifying_key, CHAIN, (0,)).verifying_key
        != derive.derive_public(suite, public.verifying_key, other, (0,)).verifying_key
    )
    # the empty path is the key itself
    assert derive.derive_packages(suite, kps[1], public, CHAIN, ()) == (kps[1], public)


@pytest.mark.parametrize("path", [(0,), (7, 2**31 - 1, 0)], ids=str)
def test_derived_signatures_verify_under_the_derived_key(suite: Ciphersuite, path: tuple[int, ...]) -> None:
    cs = suite
    kps, public = dealer(cs, 3, 2)
    child_kps, child = _derive_all(cs, kps, public, CHAIN, path)
    api = derivation_rule.child_key(cs.short_name, derive.api_key(cs, public.verifying_key), CHAIN, path)[0]
    for signers in itertools.combinations(sorted(kps), 2):
        message = f"derived {path} by {signers}".encode()
        sig = harness.run(sign_drivers(cs, child_kps, child, list(signers), message)).outputs()[signers[0]]
        assert isinstance(sig, bytes)
        verify_independently(cs, child.verifying_key, message, sig)
        if cs is FROST_SECP256K1:
            # libsecp256k1 points and our own RFC 9591 challenge (signer.client.verify)
            assert verify_frost_secp256k1(api, message, sig)
            assert not verify_frost_secp256k1(derive.api_key(cs, public.verifying_key), message, sig)
        elif cs.bip340:
            assert PublicKeyXOnly(api).verify(sig, message)
            assert not PublicKeyXOnly(public.verifying_key[1:]).verify(sig, message)


def test_taproot_derived_key_as_internal_key_of_a_script_tree() -> None:
    """A merkle root tweaks the derived key once more (BIP341 output key of internal key P')."""
    from enclave.protocols.frost.taproot import FROST_SECP256K1_TR as TR

    kps, public = dealer(TR, 2, 2)
    path, root, message = (5, 6), bytes(range(32)), b"script tree under a derived key"
    child_kps, child = _derive_all(TR, kps, public, CHAIN, path)
    sig = harness.run(sign_drivers(TR, child_kps, child, [1, 2], message, merkle_root=root)).outputs()[1]
    assert isinstance(sig, bytes)
    internal = derivation_rule.child_key(TR.short_name, public.verifying_key[1:], CHAIN, path)[0]
    tag = hashlib.sha256(b"TapTweak").digest()
    tweak = hashlib.sha256(tag + tag + internal + root).digest()
    output = PublicKey.combine_keys([PublicKey(b"\x02" + internal), PublicKey.from_secret(tweak)]).format()[1:]
    assert PublicKeyXOnly(output).verify(sig, message)


def test_dkg_chain_code_is_equal_everywhere_and_follows_from_the_transcript(suite: Ciphersuite) -> None:
    cs = suite
    round1: dict[int, bytes] = {}

    def spy(s: int, r: int, frame: Frame) -> None:
        if frame.round == 1 and frame.kind is Kind.BROADCAST:
            round1[s] = frame.body[: -cs.element_len]  # the ZF package, without the encryption key

    outs = harness.run(dkg_drivers(cs, 3, 2), [spy]).outputs()
    chains = {o[2] for o in outs.values()}  # type: ignore[index]
    assert len(chains) == 1
    chain = chains.pop()
    assert isinstance(chain, bytes) and len(chain) == derive.CHAIN_CODE_LEN
    public = outs[1][1]  # type: ignore[index]
    assert isinstance(public, PublicKeyPackage)
    api = derive.api_key(cs, public.verifying_key)
    transcript = {cs.encode_identifier(p): body for p, body in round1.items()}
    assert derivation_rule.chain_code(cs.short_name, api, transcript) == chain
    assert chain not in (hashlib.sha256(api).digest(), bytes(32))
    # another DKG (fresh polynomials) has another chain code
    again = harness.run(dkg_drivers(cs, 3, 2)).outputs()
    assert again[1][2] != chain  # type: ignore[index]
    # and a DKG key derives and signs, end to end
    kps = {p: o[0] for p, o in outs.items()}  # type: ignore[index]
    child_kps, child = _derive_all(cs, kps, public, chain, (1, 2))  # type: ignore[arg-type]
    sig = harness.run(sign_drivers(cs, child_kps, child, [2, 3], b"from a DKG key")).outputs()[2]
    assert isinstance(sig, bytes)
    verify_independently(cs, child.verifying_key, b"from a DKG key", sig)


def test_bad_paths_and_chain_codes_are_refused(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 2, 2)
    for path in [(2**31,), (0, 2**32 - 1), tuple([0] * (derive.MAX_DEPTH + 1))]:
        with pytest.raises(InvalidParameters, match="non-hardened"):
            derive.derive_packages(suite, kps[1], public, CHAIN, path)
    for chain in (b"", bytes(31), bytes(33)):
        with pytest.raises(InvalidParameters, match="chain code is 32 bytes"):
            derive.derive_packages(suite, kps[1], public, chain, (0,))
    assert derive.derive_public(suite, public.verifying_key, CHAIN, tuple([0] * derive.MAX_DEPTH)).verifying_key


def test_secrets_stay_out_of_reprs(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 2, 2, SYSTEM_RNG)
    child, _ = derive.derive_packages(suite, kps[1], public, CHAIN, (9,))
    assert str(child.signing_share) not in repr(child)


@pytest.mark.parametrize("parity", [2, 3], ids=["even-y", "odd-y"])
def test_taproot_parent_of_either_parity_derives_from_its_x_only_key(parity: int) -> None:
    """Outsiders know a Taproot key x-only: an odd-y parent derives as its even twin would."""
    from enclave.protocols.frost.taproot import FROST_SECP256K1_TR as TR

    while True:
        kps, public = dealer(TR, 3, 2)
        if public.verifying_key[0] == parity:
            break
    child_kps, child = _derive_all(TR, kps, public, CHAIN, (0, 1))
    expected = derivation_rule.child_key(TR.short_name, public.verifying_key[1:], CHAIN, (0, 1))[0]
    assert child.verifying_key[1:] == expected
    sig = harness.run(sign_drivers(TR, child_kps, child, [1, 3], b"parity")).outputs()[1]
    assert isinstance(sig, bytes) and PublicKeyXOnly(expected).verify(sig, b"parity")
