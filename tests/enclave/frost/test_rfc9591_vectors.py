"""RFC 9591 Appendix E.1 FROST(Ed25519, SHA-512) and E.5 FROST(secp256k1, SHA-256): every
intermediate value reproduced, through the pure functions and through the session driver."""

from __future__ import annotations

from typing import Any

import pytest

from enclave.crypto import polynomial
from enclave.crypto.rng import SYSTEM_RNG
from enclave.protocols.driver import Output
from enclave.protocols.frost import rounds, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite
from tests import harness
from tests.enclave.frost.common import load_vector, vector_setup, verify_independently

CASES = {
    "E.1": (FROST_ED25519, "frost-ed25519-sha512-rfc9591.json", "FROST(Ed25519, SHA-512)", b"FROST-ED25519-SHA512-v1"),
    "E.5": (
        FROST_SECP256K1,
        "frost-secp256k1-sha256-rfc9591.json",
        "FROST(secp256k1, SHA-256)",
        b"FROST-secp256k1-SHA256-v1",
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[Ciphersuite, dict[str, Any]]:
    cs, name, _, _ = CASES[request.param]
    return cs, load_vector(name)


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def _sc(cs: Ciphersuite, x: str) -> int:
    return cs.group.decode_scalar(h(x))


@pytest.mark.parametrize("appendix", sorted(CASES))
def test_config_is_this_ciphersuite(appendix: str) -> None:
    cs, name, title, context = CASES[appendix]
    assert load_vector(name)["config"]["name"] == title == cs.name
    assert cs.context_string == context


def test_key_generation_values(case: tuple[Ciphersuite, dict[str, Any]]) -> None:
    cs, v = case
    inp = v["inputs"]
    secret = _sc(cs, inp["group_secret_key"])
    assert cs.group.encode(cs.group.base_mul(secret)).hex() == inp["group_public_key"]
    coeffs = (secret, *(_sc(cs, c) for c in inp["share_polynomial_coefficients"]))
    for share in inp["participant_shares"]:
        assert polynomial.evaluate(coeffs, share["identifier"], cs.order) == _sc(cs, share["participant_share"])
    pts = {s["identifier"]: _sc(cs, s["participant_share"]) for s in inp["participant_shares"]}
    assert polynomial.interpolate(cs.order, {i: pts[i] for i in inp["participant_list"]}) == secret


def test_round_one_nonces_commitments_binding_factors(case: tuple[Ciphersuite, dict[str, Any]]) -> None:
    cs, v = case
    kps, _, nonces, message = vector_setup(cs, v)
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    vk = kps[1].verifying_key
    rho = signing.compute_binding_factors(cs, package, vk)
    prefix = signing.binding_factor_prefix(cs, package, vk)
    for o in v["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        n = nonces[i]
        assert cs.group.encode_scalar(n.hiding).hex() == o["hiding_nonce"]
        assert cs.group.encode_scalar(n.binding).hex() == o["binding_nonce"]
        assert n.commitments.hiding.hex() == o["hiding_nonce_commitment"]
        assert n.commitments.binding.hex() == o["binding_nonce_commitment"]
        assert (prefix + cs.encode_identifier(i)).hex() == o["binding_factor_input"]
        assert cs.group.encode_scalar(rho[i]).hex() == o["binding_factor"]


def test_round_two_shares_group_commitment_and_signature(case: tuple[Ciphersuite, dict[str, Any]]) -> None:
    cs, v = case
    kps, public, nonces, message = vector_setup(cs, v)
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    ctx = signing.signing_context(cs, package, public.verifying_key)
    expected_sig = h(v["final_output"]["sig"])
    assert len(expected_sig) == cs.signature_len
    assert ctx.group_commitment == expected_sig[: cs.element_len]
    shares = {}
    for o in v["round_two_outputs"]["outputs"]:
        i = o["identifier"]
        shares[i] = signing.sign(cs, kps[i], nonces[i], package)
        assert wire.encode_signature_share(cs, shares[i]).hex() == o["sig_share"]
        assert signing.verify_signature_share(ctx, i, shares[i], kps[i].verifying_share)
    sig = signing.aggregate(cs, package, shares, public)
    assert sig == expected_sig
    verify_independently(cs, public.verifying_key, message, sig)


def test_vector_through_the_session_driver(case: tuple[Ciphersuite, dict[str, Any]]) -> None:
    """The same values come out of the real two-round session (nonces injected)."""
    cs, v = case
    kps, public, nonces, message = vector_setup(cs, v)
    signers = v["inputs"]["participant_list"]
    ids = {p: p for p in signers}
    drivers = [
        rounds.signing_driver(
            rounds.SignSetup(cs, b"rfc9591", p, ids, kps[p], public, message, SYSTEM_RNG), nonces=nonces[p]
        )
        for p in signers
    ]
    seen: dict[tuple[int, int], Any] = {}

    def spy(s: int, r: int, frame: Any) -> None:
        seen[(s, frame.round)] = frame.body

    res = harness.run(drivers, [spy])
    for p in signers:
        assert res.outcomes[p] == Output(h(v["final_output"]["sig"]))
    for o in v["round_two_outputs"]["outputs"]:
        assert seen[(o["identifier"], 2)].hex() == o["sig_share"]


def test_nonces_are_single_use(case: tuple[Ciphersuite, dict[str, Any]]) -> None:
    cs, v = case
    kps, _, nonces, message = vector_setup(cs, v)
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    signing.sign(cs, kps[1], nonces[1], package)
    with pytest.raises(ValueError, match="already used"):
        signing.sign(cs, kps[1], nonces[1], package)
