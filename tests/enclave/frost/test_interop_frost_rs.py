"""Interop with ZcashFoundation frost (frost_rs): mixed signing sessions, DKG packages, formats.

In every session at least one participant is this code and the others are ZF frost; keys come
from a trusted dealer (ZF's or ours) or from this project's DKG. Each signature is checked by
libsodium.
"""

from __future__ import annotations

import pytest

from enclave.protocols.frost import dkg, keys, signing, wire
from enclave.protocols.frost.ciphersuite import derive_identifier
from enclave.rng import SYSTEM_RNG
from tests.enclave.frost.common import libsodium_verify, run_dkg
from tests.enclave.frost.zf import ZfError, b64, call, unb64, zf, zid


def _keys_from_zf_dealer(t: int, n: int) -> tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage, dict[int, str]]:
    zshares = call(zf.get_key, t, n)
    ours = {}
    zkps = {}
    for share_b64 in zshares.values():
        share = wire.decode_secret_share(unb64(share_b64))
        ours[share.identifier] = keys.key_package_from_secret_share(share)
        zkps[share.identifier] = call(zf.gen_key_package, share_b64)
        assert unb64(zkps[share.identifier]) == wire.encode_key_package(ours[share.identifier])
    any_share = wire.decode_secret_share(unb64(next(iter(zshares.values()))))
    public = keys.public_key_package_from_commitment(sorted(ours), any_share.commitment, t)
    return ours, public, zkps


def _keys_from_our_dealer(t: int, n: int) -> tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage, dict[int, str]]:
    shares, public = keys.trusted_dealer_keygen(list(range(1, n + 1)), t, SYSTEM_RNG)
    ours = {i: keys.key_package_from_secret_share(s) for i, s in shares.items()}
    zkps = {i: call(zf.gen_key_package, b64(wire.encode_secret_share(s))) for i, s in shares.items()}
    return ours, public, zkps


def _keys_from_our_dkg(t: int, n: int) -> tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage, dict[int, str]]:
    ours, public = run_dkg(n, t)
    return ours, public, {i: b64(wire.encode_key_package(k)) for i, k in ours.items()}


def _mixed_session(
    ours: dict[int, keys.KeyPackage],
    public: keys.PublicKeyPackage,
    zkps: dict[int, str],
    our_signers: list[int],
    zf_signers: list[int],
    message: bytes,
) -> None:
    our_nonces = {i: signing.commit(ours[i].signing_share, SYSTEM_RNG) for i in our_signers}
    zf_nonces: dict[int, str] = {}
    comms: dict[str, str] = {}
    for i in our_signers:
        comms[zid(i)] = b64(wire.encode_signing_commitments(our_nonces[i].commitments))
    for i in zf_signers:
        zf_nonces[i], comms[zid(i)] = call(zf.preprocess, zkps[i])
    package = wire.decode_signing_package(
        wire.encode_signing_package(
            signing.SigningPackage(
                {i: wire.decode_signing_commitments(unb64(comms[zid(i)])) for i in our_signers + zf_signers},
                message,
            )
        )
    )
    shares = {i: signing.sign(ours[i], our_nonces[i], package) for i in our_signers}
    zshares = {zid(i): call(zf.sign, message, comms, zf_nonces[i], zkps[i]) for i in zf_signers}
    for i in zf_signers:
        shares[i] = wire.decode_signature_share(unb64(zshares[zid(i)]))
    for i in our_signers:
        zshares[zid(i)] = b64(wire.encode_signature_share(shares[i]))

    ctx = signing.signing_context(package, public.verifying_key)
    for i, z in shares.items():  # ZF's shares pass our per-share check, ours pass ZF's below
        assert signing.verify_signature_share(ctx, i, z, public.verifying_shares[i])

    ours_sig = signing.aggregate(package, shares, public)
    pub_b64 = b64(wire.encode_public_key_package(public))
    zf_sig = unb64(call(zf.aggregate, message, comms, zshares, pub_b64))
    assert ours_sig == zf_sig
    libsodium_verify(public.verifying_key, message, ours_sig)
    assert call(zf.verify, message, pub_b64, b64(ours_sig))


KEYGENS = {"zf-dealer": _keys_from_zf_dealer, "our-dealer": _keys_from_our_dealer, "our-dkg": _keys_from_our_dkg}


@pytest.mark.parametrize("keygen", sorted(KEYGENS))
@pytest.mark.parametrize(
    ("t", "n", "our_signers", "zf_signers"),
    [(2, 2, [1], [2]), (2, 2, [2], [1]), (2, 3, [1], [3]), (2, 3, [3], [2]), (2, 3, [2], [1, 3])],
)
def test_mixed_signing(keygen: str, t: int, n: int, our_signers: list[int], zf_signers: list[int]) -> None:
    ours, public, zkps = KEYGENS[keygen](t, n)
    _mixed_session(ours, public, zkps, our_signers, zf_signers, f"interop {keygen} {t}-of-{n}".encode())


def test_zf_rejects_our_wrong_share() -> None:
    ours, public, zkps = _keys_from_our_dealer(2, 2)
    n1 = signing.commit(ours[1].signing_share, SYSTEM_RNG)
    n2, c2 = call(zf.preprocess, zkps[2])
    comms = {zid(1): b64(wire.encode_signing_commitments(n1.commitments)), zid(2): c2}
    package = signing.SigningPackage({1: n1.commitments, 2: wire.decode_signing_commitments(unb64(c2))}, b"m")
    bad = (signing.sign(ours[1], n1, package) + 1) % signing.L
    shares = {zid(1): b64(wire.encode_signature_share(bad)), zid(2): call(zf.sign, b"m", comms, n2, zkps[2])}
    with pytest.raises(ZfError):
        call(zf.aggregate, b"m", comms, shares, b64(wire.encode_public_key_package(public)))


def test_dkg_proof_of_knowledge_interop() -> None:
    """ZF verifies our round-1 package (its part2 checks the proof) and we verify ZF's."""
    ids = [1, 2, 3]
    secret1, pkg1 = dkg.part1(1, 3, 2, SYSTEM_RNG)
    zsecrets, zpkgs = {}, {}
    for i in (2, 3):
        zsecrets[i], zpkgs[i] = call(zf.round1, zid(i), 2, 3)
        theirs = wire.decode_round1_package(unb64(zpkgs[i]))
        dkg.check_round1_package(secret1, i, theirs)
        assert wire.encode_round1_package(theirs) == unb64(zpkgs[i])
    ours_b64 = b64(wire.encode_round1_package(pkg1))
    call(zf.round2, zsecrets[2], {zid(1): ours_b64, zid(3): zpkgs[3]})

    forged = dkg.Round1Package(pkg1.commitment, pkg1.proof_r, (pkg1.proof_z + 1) % signing.L)
    with pytest.raises(ZfError):
        call(zf.round2, zsecrets[2], {zid(1): b64(wire.encode_round1_package(forged)), zid(3): zpkgs[3]})
    # and the proof is bound to the identifier: ours under identifier 1 fails as identifier 3
    with pytest.raises(dkg.DkgFault):
        dkg.check_round1_package(secret1, 3, pkg1)
    assert ids


def test_zf_dkg_outputs_decode_and_reencode() -> None:
    n, t = 3, 2
    ids = [call(zf.get_id) for _ in range(n)]
    r1s, r1p, r2s, r2p, kp, pp = {}, {}, {}, {}, {}, {}
    for i in ids:
        r1s[i], r1p[i] = call(zf.round1, i, t, n)
    for i in ids:
        r2s[i], r2p[i] = call(zf.round2, r1s[i], {k: v for k, v in r1p.items() if k != i})
    for i in ids:
        kp[i], pp[i] = call(
            zf.round3, r2s[i], {k: v for k, v in r1p.items() if k != i}, {k: v[i] for k, v in r2p.items() if i in v}
        )
    for i in ids:
        k = wire.decode_key_package(unb64(kp[i]))
        assert wire.encode_key_package(k) == unb64(kp[i])
        p = wire.decode_public_key_package(unb64(pp[i]))
        assert wire.encode_public_key_package(p) == unb64(pp[i])
        assert p.verifying_shares[k.identifier] == k.verifying_share


def test_identifier_derivation_matches_zf() -> None:
    for name in ["alice", "server-signer-01", "", "ünïcode"]:
        assert unb64(call(zf.get_id, name)) == derive_identifier(name).to_bytes(32, "little")
