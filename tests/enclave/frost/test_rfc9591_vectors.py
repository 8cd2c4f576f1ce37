"""RFC 9591 Appendix E.1, FROST(Ed25519, SHA-512): every intermediate value reproduced."""

from __future__ import annotations

from typing import Any

import pytest

from enclave import polynomial
from enclave.protocols.frost import keys, signing, wire
from enclave.protocols.frost.ciphersuite import CONTEXT_STRING, GROUP
from enclave.protocols.rounds import Output
from tests import harness
from tests.enclave.frost.common import libsodium_verify, load_vector

V = load_vector("frost-ed25519-sha512-rfc9591.json")


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def sc(x: str) -> int:
    return int.from_bytes(h(x), "little")


def test_config_is_this_ciphersuite() -> None:
    assert V["config"]["name"] == "FROST(Ed25519, SHA-512)"
    assert CONTEXT_STRING == b"FROST-ED25519-SHA512-v1"


def test_key_generation_values() -> None:
    inp = V["inputs"]
    secret = sc(inp["group_secret_key"])
    assert GROUP.base_mul(secret).hex() == inp["group_public_key"]
    coeffs = (secret, *(sc(c) for c in inp["share_polynomial_coefficients"]))
    for share in inp["participant_shares"]:
        assert polynomial.evaluate(coeffs, share["identifier"], GROUP.order) == sc(share["participant_share"])
    pts = {s["identifier"]: sc(s["participant_share"]) for s in inp["participant_shares"]}
    assert polynomial.interpolate(GROUP.order, {i: pts[i] for i in inp["participant_list"]}) == secret


def _setup() -> tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage, dict[int, signing.SigningNonces], bytes]:
    inp = V["inputs"]
    vk = h(inp["group_public_key"])
    t = int(V["config"]["MIN_PARTICIPANTS"])
    shares = {s["identifier"]: sc(s["participant_share"]) for s in inp["participant_shares"]}
    kps = {i: keys.KeyPackage(i, s, GROUP.base_mul(s), vk, t) for i, s in shares.items()}
    public = keys.PublicKeyPackage({i: kp.verifying_share for i, kp in kps.items()}, vk, t)
    nonces = {}
    for o in V["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        d = signing.nonce_generate_from_random(shares[i], h(o["hiding_nonce_randomness"]))
        e = signing.nonce_generate_from_random(shares[i], h(o["binding_nonce_randomness"]))
        nonces[i] = signing.nonces_from_scalars(d, e)
    return kps, public, nonces, h(inp["message"])


def test_round_one_nonces_commitments_binding_factors() -> None:
    kps, _, nonces, message = _setup()
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    vk = kps[1].verifying_key
    rho = signing.compute_binding_factors(package, vk)
    prefix = signing.binding_factor_prefix(package, vk)
    for o in V["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        n = nonces[i]
        assert GROUP.encode_scalar(n.hiding).hex() == o["hiding_nonce"]
        assert GROUP.encode_scalar(n.binding).hex() == o["binding_nonce"]
        assert n.commitments.hiding.hex() == o["hiding_nonce_commitment"]
        assert n.commitments.binding.hex() == o["binding_nonce_commitment"]
        assert (prefix + GROUP.encode_scalar(i)).hex() == o["binding_factor_input"]
        assert GROUP.encode_scalar(rho[i]).hex() == o["binding_factor"]


def test_round_two_shares_group_commitment_and_signature() -> None:
    kps, public, nonces, message = _setup()
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    ctx = signing.signing_context(package, public.verifying_key)
    expected_sig = h(V["final_output"]["sig"])
    assert ctx.group_commitment == expected_sig[:32]
    shares = {}
    for o in V["round_two_outputs"]["outputs"]:
        i = o["identifier"]
        shares[i] = signing.sign(kps[i], nonces[i], package)
        assert wire.encode_signature_share(shares[i]).hex() == o["sig_share"]
        assert signing.verify_signature_share(ctx, i, shares[i], kps[i].verifying_share)
    sig = signing.aggregate(package, shares, public)
    assert sig == expected_sig
    libsodium_verify(public.verifying_key, message, sig)


def test_vector_through_the_session_driver() -> None:
    """The same values come out of the real two-round session (nonces injected)."""
    from enclave.protocols.frost import sessions
    from enclave.rng import SYSTEM_RNG

    kps, public, nonces, message = _setup()
    signers = V["inputs"]["participant_list"]
    ids = {p: p for p in signers}
    drivers = [
        sessions.signing_driver(
            sessions.SignSetup(b"rfc9591", p, ids, kps[p], public, message, SYSTEM_RNG), nonces=nonces[p]
        )
        for p in signers
    ]
    seen: dict[tuple[int, int], Any] = {}

    def spy(s: int, r: int, frame: Any) -> None:
        seen[(s, frame.round)] = frame.body

    res = harness.run(drivers, [spy])
    for p in signers:
        assert res.outcomes[p] == Output(h(V["final_output"]["sig"]))
    for o in V["round_two_outputs"]["outputs"]:
        assert seen[(o["identifier"], 2)].hex() == o["sig_share"]


def test_nonces_are_single_use() -> None:
    kps, _, nonces, message = _setup()
    package = signing.SigningPackage({i: n.commitments for i, n in nonces.items()}, message)
    signing.sign(kps[1], nonces[1], package)
    with pytest.raises(ValueError, match="already used"):
        signing.sign(kps[1], nonces[1], package)
