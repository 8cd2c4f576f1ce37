"""Interop with ZcashFoundation frost (frost_rs) for FROST(Ed25519, SHA-512) and FROST(secp256k1,
SHA-256): mixed signing sessions, mixed DKG sessions, formats.

In every mixed session at least one participant is this code and the others are ZF frost; keys
come from a trusted dealer (ZF's or ours), from this project's DKG, or from a DKG in which some
participants are ZF frost. Each signature is checked by ZF's verifier and by an independent
library (`verify_independently`).
"""

from __future__ import annotations

from types import ModuleType

import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.protocols.frost import dkg, keys, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite
from tests.enclave.frost.common import dkg_part2, run_dkg, verify_independently
from tests.enclave.frost.zf import ZfError, b64, call, module, open_from_zf, seal_for_zf, unb64

ZF_SUITES = [FROST_ED25519, FROST_SECP256K1]
Keys = tuple[dict[int, keys.KeyPackage], keys.PublicKeyPackage, dict[int, str]]


@pytest.fixture(params=ZF_SUITES, ids=[cs.short_name for cs in ZF_SUITES])
def cs(request: pytest.FixtureRequest) -> Ciphersuite:
    suite: Ciphersuite = request.param
    return suite


def _zid(cs: Ciphersuite, i: int) -> str:
    return b64(cs.encode_identifier(i))


def _keys_from_zf_dealer(cs: Ciphersuite, t: int, n: int) -> Keys:
    zf = module(cs)
    zshares = call(zf.get_key, t, n)
    ours = {}
    zkps = {}
    for share_b64 in zshares.values():
        share = wire.decode_secret_share(cs, unb64(share_b64))
        ours[share.identifier] = keys.key_package_from_secret_share(cs, share)
        zkps[share.identifier] = call(zf.gen_key_package, share_b64)
        assert unb64(zkps[share.identifier]) == wire.encode_key_package(cs, ours[share.identifier])
    any_share = wire.decode_secret_share(cs, unb64(next(iter(zshares.values()))))
    public = keys.public_key_package_from_commitment(cs, sorted(ours), any_share.commitment, t)
    return ours, public, zkps


def _keys_from_our_dealer(cs: Ciphersuite, t: int, n: int) -> Keys:
    zf = module(cs)
    shares, public = keys.trusted_dealer_keygen(cs, list(range(1, n + 1)), t, SYSTEM_RNG)
    ours = {i: keys.key_package_from_secret_share(cs, s) for i, s in shares.items()}
    zkps = {i: call(zf.gen_key_package, b64(wire.encode_secret_share(cs, s))) for i, s in shares.items()}
    return ours, public, zkps


def _keys_from_our_dkg(cs: Ciphersuite, t: int, n: int) -> Keys:
    ours, public = run_dkg(cs, n, t)
    return ours, public, {i: b64(wire.encode_key_package(cs, k)) for i, k in ours.items()}


def _mixed_dkg(cs: Ciphersuite, t: int, ours: list[int], theirs: list[int]) -> Keys:
    """One DKG, participants `ours` run enclave.protocols.frost.dkg, `theirs` run ZF frost."""
    zf = module(cs)
    everyone = sorted(ours + theirs)
    n = len(everyone)
    r1: dict[int, str] = {}  # round-1 packages (ZF postcard, base64), everyone's
    our_secret: dict[int, dkg.Round1Secret] = {}
    zf_secret: dict[int, str] = {}
    for i in ours:
        our_secret[i], package = dkg.part1(cs, i, n, t, SYSTEM_RNG)
        r1[i] = b64(wire.encode_round1_package(cs, package))
    for i in theirs:
        zf_secret[i], r1[i] = call(zf.round1, _zid(cs, i), t, n)
    phi0 = {i: wire.decode_round1_package(cs, unb64(r1[i])).commitment[0] for i in everyone}
    # round 2: r2[sender][recipient] in frost_rs's envelope; ZF checks every proof of knowledge
    r2: dict[int, dict[int, str]] = {}
    zf_secret2: dict[int, str] = {}
    our_secret2: dict[int, dkg.Round2Secret] = {}
    for i in theirs:
        zf_secret2[i], out = call(zf.round2, zf_secret[i], {_zid(cs, j): r1[j] for j in everyone if j != i})
        r2[i] = {j: out[_zid(cs, j)] for j in everyone if j != i}
    for i in ours:
        packages = {j: wire.decode_round1_package(cs, unb64(r1[j])) for j in everyone if j != i}
        our_secret2[i], shares = dkg_part2(cs, our_secret[i], packages)
        a0 = our_secret[i].coefficients[0]
        r2[i] = {j: seal_for_zf(cs, a0, phi0[j], shares[j]) for j in shares}
    out_keys: dict[int, keys.KeyPackage] = {}
    zkps: dict[int, str] = {}
    publics: set[tuple[object, ...]] = set()
    for i in theirs:
        kp, pp = call(
            zf.round3,
            zf_secret2[i],
            {_zid(cs, j): r1[j] for j in everyone if j != i},
            {_zid(cs, j): r2[j][i] for j in everyone if j != i},
        )
        zkps[i] = kp
        out_keys[i] = wire.decode_key_package(cs, unb64(kp))
        # frost_rs's ZF version predates PublicKeyPackage.min_signers: compare the rest
        zf_public = wire.decode_public_key_package(cs, unb64(pp))
        assert zf_public.min_signers is None
        publics.add((tuple(sorted(zf_public.verifying_shares.items())), zf_public.verifying_key))
    for i in ours:
        a0 = our_secret[i].coefficients[0]
        received = {j: open_from_zf(cs, a0, phi0[j], r2[j][i]) for j in everyone if j != i}
        packages = {j: wire.decode_round1_package(cs, unb64(r1[j])) for j in everyone if j != i}
        kp_ours, public = dkg.part3(cs, our_secret2[i], packages, received)
        out_keys[i] = kp_ours
        zkps[i] = b64(wire.encode_key_package(cs, kp_ours))
        assert public.min_signers == t
        publics.add((tuple(sorted(public.verifying_shares.items())), public.verifying_key))
    assert len(publics) == 1, "ZF frost and this code disagree on the public key package"
    shares, verifying_key = publics.pop()
    return out_keys, keys.PublicKeyPackage(dict(shares), verifying_key, t), zkps  # type: ignore[arg-type]


def _mixed_session(
    cs: Ciphersuite, keyset: Keys, our_signers: list[int], zf_signers: list[int], message: bytes
) -> None:
    zf: ModuleType = module(cs)
    ours, public, zkps = keyset
    our_nonces = {i: signing.commit(cs, ours[i].signing_share, SYSTEM_RNG) for i in our_signers}
    zf_nonces: dict[int, str] = {}
    comms: dict[str, str] = {}
    for i in our_signers:
        comms[_zid(cs, i)] = b64(wire.encode_signing_commitments(cs, our_nonces[i].commitments))
    for i in zf_signers:
        zf_nonces[i], comms[_zid(cs, i)] = call(zf.preprocess, zkps[i])
    package = wire.decode_signing_package(
        cs,
        wire.encode_signing_package(
            cs,
            signing.SigningPackage(
                {i: wire.decode_signing_commitments(cs, unb64(comms[_zid(cs, i)])) for i in our_signers + zf_signers},
                message,
            ),
        ),
    )
    shares = {i: signing.sign(cs, ours[i], our_nonces[i], package) for i in our_signers}
    zshares = {_zid(cs, i): call(zf.sign, message, comms, zf_nonces[i], zkps[i]) for i in zf_signers}
    for i in zf_signers:
        shares[i] = wire.decode_signature_share(cs, unb64(zshares[_zid(cs, i)]))
    for i in our_signers:
        zshares[_zid(cs, i)] = b64(wire.encode_signature_share(cs, shares[i]))

    ctx = signing.signing_context(cs, package, public.verifying_key)
    for i, z in shares.items():  # ZF's shares pass our per-share check, ours pass ZF's below
        assert signing.verify_signature_share(ctx, i, z, public.verifying_shares[i])

    ours_sig = signing.aggregate(cs, package, shares, public)
    pub_b64 = b64(wire.encode_public_key_package(cs, public))
    zf_sig = unb64(call(zf.aggregate, message, comms, zshares, pub_b64))
    assert ours_sig == zf_sig
    verify_independently(cs, public.verifying_key, message, ours_sig)
    assert call(zf.verify, message, pub_b64, b64(ours_sig))


KEYGENS = {"zf-dealer": _keys_from_zf_dealer, "our-dealer": _keys_from_our_dealer, "our-dkg": _keys_from_our_dkg}


@pytest.mark.parametrize("keygen", sorted(KEYGENS))
@pytest.mark.parametrize(
    ("t", "n", "our_signers", "zf_signers"),
    [(2, 2, [1], [2]), (2, 2, [2], [1]), (2, 3, [1], [3]), (2, 3, [3], [2]), (2, 3, [2], [1, 3])],
)
def test_mixed_signing(
    cs: Ciphersuite, keygen: str, t: int, n: int, our_signers: list[int], zf_signers: list[int]
) -> None:
    keyset = KEYGENS[keygen](cs, t, n)
    _mixed_session(cs, keyset, our_signers, zf_signers, f"interop {keygen} {t}-of-{n}".encode())


@pytest.mark.parametrize(
    ("t", "ours", "theirs"), [(2, [1], [2]), (2, [2], [1, 3]), (2, [1, 3], [2]), (3, [1, 4], [2, 3])]
)
def test_mixed_dkg_then_mixed_signing(cs: Ciphersuite, t: int, ours: list[int], theirs: list[int]) -> None:
    """Some DKG participants are ZF frost, the others this code; everyone ends with the same
    public key package, and the key signs in mixed sessions both ways round."""
    keyset = _mixed_dkg(cs, t, ours, theirs)
    signers = sorted(ours + theirs)[:t]
    _mixed_session(cs, keyset, [i for i in signers if i in ours], [i for i in signers if i in theirs], b"dkg mix")
    _mixed_session(cs, keyset, [i for i in signers if i in theirs], [i for i in signers if i in ours], b"dkg mix 2")


def test_zf_rejects_our_wrong_share(cs: Ciphersuite) -> None:
    zf = module(cs)
    ours, public, zkps = _keys_from_our_dealer(cs, 2, 2)
    n1 = signing.commit(cs, ours[1].signing_share, SYSTEM_RNG)
    n2, c2 = call(zf.preprocess, zkps[2])
    comms = {_zid(cs, 1): b64(wire.encode_signing_commitments(cs, n1.commitments)), _zid(cs, 2): c2}
    package = signing.SigningPackage({1: n1.commitments, 2: wire.decode_signing_commitments(cs, unb64(c2))}, b"m")
    bad = (signing.sign(cs, ours[1], n1, package) + 1) % cs.order
    shares = {
        _zid(cs, 1): b64(wire.encode_signature_share(cs, bad)),
        _zid(cs, 2): call(zf.sign, b"m", comms, n2, zkps[2]),
    }
    with pytest.raises(ZfError):
        call(zf.aggregate, b"m", comms, shares, b64(wire.encode_public_key_package(cs, public)))


def test_dkg_proof_of_knowledge_interop(cs: Ciphersuite) -> None:
    """ZF verifies our round-1 package (its part2 checks the proof) and we verify ZF's."""
    zf = module(cs)
    secret1, pkg1 = dkg.part1(cs, 1, 3, 2, SYSTEM_RNG)
    zsecrets, zpkgs = {}, {}
    for i in (2, 3):
        zsecrets[i], zpkgs[i] = call(zf.round1, _zid(cs, i), 2, 3)
        theirs = wire.decode_round1_package(cs, unb64(zpkgs[i]))
        dkg.check_round1_package(cs, secret1, i, theirs)
        assert wire.encode_round1_package(cs, theirs) == unb64(zpkgs[i])
    ours_b64 = b64(wire.encode_round1_package(cs, pkg1))
    call(zf.round2, zsecrets[2], {_zid(cs, 1): ours_b64, _zid(cs, 3): zpkgs[3]})

    forged = dkg.Round1Package(pkg1.commitment, pkg1.proof_r, (pkg1.proof_z + 1) % cs.order)
    with pytest.raises(ZfError):
        call(zf.round2, zsecrets[2], {_zid(cs, 1): b64(wire.encode_round1_package(cs, forged)), _zid(cs, 3): zpkgs[3]})
    # and the proof is bound to the identifier: ours under identifier 1 fails as identifier 3
    with pytest.raises(dkg.DkgFault):
        dkg.check_round1_package(cs, secret1, 3, pkg1)


def test_zf_dkg_outputs_decode_and_reencode(cs: Ciphersuite) -> None:
    zf = module(cs)
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
        k = wire.decode_key_package(cs, unb64(kp[i]))
        assert wire.encode_key_package(cs, k) == unb64(kp[i])
        p = wire.decode_public_key_package(cs, unb64(pp[i]))
        assert wire.encode_public_key_package(cs, p) == unb64(pp[i])
        assert p.verifying_shares[k.identifier] == k.verifying_share


def test_identifier_derivation_matches_zf(cs: Ciphersuite) -> None:
    zf = module(cs)
    for name in ["alice", "server-signer-01", "", "ünïcode"]:
        assert unb64(call(zf.get_id, name)) == cs.encode_identifier(cs.derive_identifier(name))
