"""FROST for Taproot (ZF frost-secp256k1-tr): BIP340 signatures and BIP341 tweaks.

frost_rs has no Taproot module, so byte compatibility with ZF rests on: ZF's own test vector for
the suite (every value reproduced, R with an odd y there, so the nonce negation is exercised),
ZF's serialization snapshots (test_zf_encodings.py), and BIP341's published vectors for the
tweak. Every signature is checked by libsecp256k1's BIP340 verifier (coincurve).
"""

from __future__ import annotations

from typing import Any

import pytest
from coincurve import PublicKeyXOnly

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters
from enclave.group.secp256k1 import SECP256K1
from enclave.protocols.driver import Abort
from enclave.protocols.frost import dkg, keys, signing, taproot
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR as TR
from tests import harness
from tests.enclave.frost.common import dkg_part2, load_vector, sign_drivers, vector_setup

G = SECP256K1
BIP341 = load_vector("bip341-taproot-tweak.json")
ZF_VECTOR = load_vector("frost-secp256k1-tr-zf-vectors.json")


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def bip340_verify(verifying_key: bytes, message: bytes, signature: bytes) -> None:
    """libsecp256k1's verifier under the x-only form of a 33-byte key (or a 32-byte x-only key)."""
    xonly = verifying_key[1:] if len(verifying_key) == 33 else verifying_key
    assert len(signature) == 64 and PublicKeyXOnly(xonly).verify(signature, message), "BIP340 verification failed"


def _root(value: str | None) -> bytes:
    return h(value) if value else b""  # BIP341 "no script tree" is the tweak over x(P) alone


def _split(secret: int, t: int, n: int) -> tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage]:
    shares, public = keys.trusted_dealer_keygen(TR, list(range(1, n + 1)), t, SYSTEM_RNG, secret=secret)
    return {i: keys.key_package_from_secret_share(TR, s) for i, s in shares.items()}, public


def _sign(
    kps: dict[int, keys.KeyPackage],
    public: keys.PublicKeyPackage,
    signers: list[int],
    message: bytes,
    merkle_root: bytes | None = None,
) -> bytes:
    res = harness.run(sign_drivers(TR, kps, public, signers, message, merkle_root=merkle_root))
    sigs = set(res.outputs().values())
    assert len(sigs) == 1
    sig = sigs.pop()
    assert isinstance(sig, bytes)
    return sig


# -- ZF's test vector ---------------------------------------------------------------------------


def test_zf_vector_every_value() -> None:
    kps, public, nonces, message = vector_setup(TR, ZF_VECTOR)
    assert G.encode(G.base_mul(int(ZF_VECTOR["inputs"]["group_secret_key"], 16))) == public.verifying_key
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    prefix = signing.binding_factor_prefix(TR, package, public.verifying_key)
    rho = signing.compute_binding_factors(TR, package, public.verifying_key)
    for o in ZF_VECTOR["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        assert G.encode_scalar(nonces[i].hiding).hex() == o["hiding_nonce"]
        assert G.encode_scalar(nonces[i].binding).hex() == o["binding_nonce"]
        assert nonces[i].commitments.hiding.hex() == o["hiding_nonce_commitment"]
        assert nonces[i].commitments.binding.hex() == o["binding_nonce_commitment"]
        assert (prefix + TR.encode_identifier(i)).hex() == o["binding_factor_input"]
        assert G.encode_scalar(rho[i]).hex() == o["binding_factor"]
    ctx = signing.signing_context(TR, package, public.verifying_key)
    assert ctx.nonces_negated  # R has an odd y in ZF's vector: the negation path is exercised
    shares = {}
    for o in ZF_VECTOR["round_two_outputs"]["outputs"]:
        i = o["identifier"]
        shares[i] = signing.sign(TR, kps[i], nonces[i], package)
        assert G.encode_scalar(shares[i]).hex() == o["sig_share"]
        assert signing.verify_signature_share(ctx, i, shares[i], kps[i].verifying_share)
    sig = signing.aggregate(TR, package, shares, public)
    assert sig.hex() == ZF_VECTOR["final_output"]["sig"]
    bip340_verify(public.verifying_key, message, sig)


def test_suite_constants() -> None:
    assert TR.context_string == b"FROST-secp256k1-SHA256-TR-v1" and TR.signature_len == 64 and TR.bip340
    # H2 is BIP340's tagged challenge hash
    assert TR.H2(b"abc") == int.from_bytes(taproot.tagged_hash("BIP0340/challenge", b"abc"), "big") % TR.order


# -- BIP341 tweak -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BIP341["scriptPubKey"], ids=lambda c: c["internalPubkey"][:8])
def test_bip341_script_pubkey_tweaks(case: dict[str, Any]) -> None:
    internal = G.encode(G.lift_x(h(case["internalPubkey"])))
    root = _root(case["merkleRoot"])
    assert taproot.taproot_tweak(internal, root) == int(case["tweak"], 16)
    output = taproot.tweaked_public_key(internal, root)
    assert output[1:].hex() == case["tweakedPubkey"]
    assert ("5120" + output[1:].hex()) == case["scriptPubKey"]
    # the same output key from the odd-y twin of the internal key (x-only keys have no parity)
    assert taproot.tweaked_public_key(G.negate_encoding(internal), root) == output


@pytest.mark.parametrize("case", BIP341["keyPathSpending"], ids=lambda c: c["internalPubkey"][:8])
def test_bip341_key_path_spending_with_frost(case: dict[str, Any]) -> None:
    """Split BIP341's internal private key 2-of-3, tweak the key packages with the input's merkle
    root, sign the input's sighash with FROST: the key is BIP341's tweaked key, the signature
    verifies under it, and so does BIP341's own witness signature."""
    secret = int(case["internalPrivkey"], 16)
    kps, public = _split(secret, 2, 3)
    assert public.verifying_key[1:].hex() == case["internalPubkey"]
    root = _root(case["merkleRoot"])
    assert taproot.taproot_tweak(public.verifying_key, root) == int(case["tweak"], 16)
    tweaked = {i: taproot.tweak_key_package(k, root) for i, k in kps.items()}
    tweaked_public = taproot.tweak_public_key_package(public, root)
    # the tweaked shares interpolate to BIP341's tweaked private key
    d = polynomial.interpolate(TR.order, {i: tweaked[i].signing_share for i in (1, 3)})
    expected = int(case["tweakedPrivkey"], 16)
    assert d == expected
    assert tweaked_public.verifying_key[1:] == G.encode(G.base_mul(expected))[1:]
    sighash = h(case["sigHash"])
    sig = _sign(kps, public, [1, 3], sighash, merkle_root=root)
    bip340_verify(tweaked_public.verifying_key, sighash, sig)
    bip340_verify(tweaked_public.verifying_key, sighash, h(case["witness"])[:64])


def test_tweak_refuses_bad_merkle_roots() -> None:
    kps, public = _split(12345, 2, 2)
    for root in (bytes(31), bytes(33)):
        with pytest.raises(InvalidParameters):
            taproot.tweak_key_package(kps[1], root)
        with pytest.raises(InvalidParameters):
            sign_drivers(TR, kps, public, [1, 2], b"m", merkle_root=root)[0].take_outgoing()


# -- DKG: ZF's post_dkg tweak -------------------------------------------------------------------


def test_dkg_output_commits_to_an_unspendable_script_path() -> None:
    """The DKG's key is Q = even(P) + hashTapTweak(x(P))*G for P = sum of the phi_0 (ZF post_dkg),
    every share is a share of Q's discrete log, and the key signs as is and with a merkle root."""
    n, t = 3, 2
    r1 = {i: dkg.part1(TR, i, n, t, SYSTEM_RNG) for i in range(1, n + 1)}
    r2 = {i: dkg_part2(TR, r1[i][0], {j: r1[j][1] for j in r1 if j != i}) for i in r1}
    outs = {
        i: dkg.part3(TR, r2[i][0], {j: r1[j][1] for j in r1 if j != i}, {j: r2[j][1][i] for j in r2 if j != i})
        for i in r1
    }
    p = G.encode(G.sum([G.decode(r1[i][1].commitment[0]) for i in r1]))
    key = outs[1][1].verifying_key
    assert key == taproot.tweaked_public_key(p, b"")
    assert key[1:] != p[1:]
    kps = {i: o[0] for i, o in outs.items()}
    secret = polynomial.interpolate(TR.order, {i: kps[i].signing_share for i in (2, 3)})
    assert G.encode(G.base_mul(secret)) == key
    for signers in ([1, 2], [2, 3], [1, 2, 3]):
        bip340_verify(key, b"dkg key", _sign(kps, outs[1][1], signers, b"dkg key"))
    root = bytes(range(32))
    sig = _sign(kps, outs[1][1], [1, 3], b"script tree", merkle_root=root)
    bip340_verify(taproot.tweaked_public_key(key, root), b"script tree", sig)


# -- even y for the key and for R ---------------------------------------------------------------


def _secret_with_parity(odd: bool) -> int:
    s = 7
    while G.y_is_odd(G.base_mul(s)) != odd:
        s += 1
    return s


@pytest.mark.parametrize("odd_key", [False, True])
def test_both_key_parities_and_both_nonce_parities_verify(odd_key: bool) -> None:
    kps, public = _split(_secret_with_parity(odd_key), 2, 3)
    assert (public.verifying_key[0] == 3) == odd_key
    seen_r_parity = set()
    for attempt in range(40):
        nonces = {i: signing.commit(TR, kps[i].signing_share, SYSTEM_RNG) for i in (1, 2)}
        package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, b"parity %d" % attempt)
        ctx = signing.signing_context(TR, package, public.verifying_key)
        assert ctx.key_negated == odd_key
        shares = {i: signing.sign(TR, kps[i], nonces[i], package) for i in (1, 2)}
        for i, z in shares.items():
            assert signing.verify_signature_share(ctx, i, z, public.verifying_shares[i])
            assert not signing.verify_signature_share(ctx, i, (TR.order - z) % TR.order, public.verifying_shares[i])
        bip340_verify(public.verifying_key, package.message, signing.aggregate(TR, package, shares, public))
        seen_r_parity.add(ctx.nonces_negated)
        if len(seen_r_parity) == 2:
            break
    assert seen_r_parity == {False, True}


def test_signer_with_another_merkle_root_is_named() -> None:
    """A signer that tweaks with a different root makes a share for another key: named."""
    kps, public = _split(_secret_with_parity(True), 2, 3)
    root, other = bytes(32), bytes([1]) * 32
    drivers = sign_drivers(TR, kps, public, [1, 2], b"m", merkle_root=root)[:1]
    drivers += sign_drivers(TR, kps, public, [1, 2], b"m", merkle_root=other)[1:]
    res = harness.run(drivers)
    out = res.outcomes[1]
    assert isinstance(out, Abort) and out.culprits == frozenset({2}) and out.reason == "invalid signature share"


def test_proof_of_knowledge_nonce_is_even() -> None:
    for _ in range(8):
        _, package = dkg.part1(TR, 1, 2, 2, SYSTEM_RNG)
        assert package.proof_r[0] == 2
        assert dkg.verify_proof_of_knowledge(TR, 1, package)


def test_signatures_of_the_tr_suite_do_not_verify_as_rfc_signatures() -> None:
    """Domain separation between the two secp256k1 suites: one key, one message, both suites."""
    from enclave.protocols.frost.ciphersuite import FROST_SECP256K1

    secret = _secret_with_parity(False)
    kps, public = _split(secret, 2, 2)
    sig = _sign(kps, public, [1, 2], b"same")
    bip340_verify(public.verifying_key, b"same", sig)
    assert not FROST_SECP256K1.verify_signature(b"\x02" + sig, b"same", public.verifying_key)
    assert not FROST_SECP256K1.verify_signature(b"\x03" + sig, b"same", public.verifying_key)
