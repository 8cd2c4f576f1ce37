"""ZF frost postcard format for FROST(Ed25519, SHA-512): layout, round trips and strict rejection
of malformed input (the secp256k1 suites: test_zf_encodings.py)."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidEncoding
from enclave.protocols.frost import dkg, keys, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519 as CS
from enclave.protocols.frost.ciphersuite import Ciphersuite
from tests.enclave.frost.common import SUITES

GROUP = CS.group
HEADER = CS.header
L = GROUP.order
G = GROUP.generator()
IDENTITY = GROUP.identity()
SMALL_ORDER = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
NON_CANONICAL = (2**255 - 19 + 1).to_bytes(32, "little")  # y = p + 1: identity, non-canonical


def test_header_is_version_zero_and_crc32_of_context() -> None:
    assert zlib.crc32(b"FROST-ED25519-SHA512-v1").to_bytes(4, "big") == HEADER[1:]
    assert HEADER[:1] == b"\x00"
    assert HEADER.hex() == "00b169f0da"


def test_varint_is_leb128() -> None:
    assert [wire.varint(n).hex() for n in (0, 1, 127, 128, 300, 65535)] == [
        "00",
        "01",
        "7f",
        "8001",
        "ac02",
        "ffff03",
    ]


def test_layouts() -> None:
    two_g = GROUP.add(G, G)
    c = signing.SigningCommitments(G, two_g)
    assert wire.encode_signing_commitments(CS, c) == HEADER + G + two_g
    pkg = signing.SigningPackage({42: c}, b"hello world")
    assert wire.encode_signing_package(CS, pkg) == (
        HEADER + b"\x01" + (42).to_bytes(32, "little") + HEADER + G + two_g + b"\x0b" + b"hello world"
    )
    third = pow(3, -1, L)
    assert wire.encode_signature_share(CS, third) == third.to_bytes(32, "little")
    ident, z = (42).to_bytes(32, "little"), third.to_bytes(32, "little")
    assert wire.encode_secret_share(CS, keys.SecretShare(42, third, (G,))) == HEADER + ident + z + b"\x01" + G
    assert wire.encode_key_package(CS, keys.KeyPackage(42, third, G, G, 2)) == HEADER + ident + z + G + G + b"\x02"
    pub = keys.PublicKeyPackage({42: G}, G, None)
    assert wire.encode_public_key_package(CS, pub) == HEADER + b"\x01" + (42).to_bytes(32, "little") + G + G
    assert wire.encode_public_key_package(CS, keys.PublicKeyPackage({42: G}, G, 2)).endswith(G + b"\x01\x02")
    r1 = dkg.Round1Package((G,), G, third)
    assert wire.encode_round1_package(CS, r1) == HEADER + b"\x01" + G + b"\x40" + G + third.to_bytes(32, "little")
    assert wire.encode_round2_package(CS, third) == HEADER + third.to_bytes(32, "little")


def test_roundtrips() -> None:
    shares, public = keys.trusted_dealer_keygen(CS, [1, 2, 3], 2, SYSTEM_RNG)
    for s in shares.values():
        assert wire.decode_secret_share(CS, wire.encode_secret_share(CS, s)) == s
        kp = keys.key_package_from_secret_share(CS, s)
        assert wire.decode_key_package(CS, wire.encode_key_package(CS, kp)) == kp
    for p in (public, keys.PublicKeyPackage(public.verifying_shares, public.verifying_key, None)):
        assert wire.decode_public_key_package(CS, wire.encode_public_key_package(CS, p)) == p
    n = signing.commit(CS, 5, SYSTEM_RNG)
    n2 = wire.decode_signing_nonces(CS, wire.encode_signing_nonces(CS, n))
    assert (n2.hiding, n2.binding, n2.commitments) == (n.hiding, n.binding, n.commitments)
    pkg = signing.SigningPackage({1: n.commitments, 7: signing.commit(CS, 6, SYSTEM_RNG).commitments}, b"m" * 300)
    assert wire.decode_signing_package(CS, wire.encode_signing_package(CS, pkg)) == pkg
    _, r1 = dkg.part1(CS, 3, 3, 2, SYSTEM_RNG)
    assert wire.decode_round1_package(CS, wire.encode_round1_package(CS, r1)) == r1


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SUITES), st.binary(max_size=220))
def test_decoders_never_raise_anything_but_invalid_encoding(cs: Ciphersuite, data: bytes) -> None:
    """Every suite's decoders (this one's and the secp256k1 suites')."""
    for decode in (
        wire.decode_signing_commitments,
        wire.decode_signing_package,
        wire.decode_signature_share,
        wire.decode_secret_share,
        wire.decode_key_package,
        wire.decode_public_key_package,
        wire.decode_round1_package,
        wire.decode_round2_package,
        wire.decode_signing_nonces,
        wire.decode_signature,
    ):
        for candidate in (data, cs.header + data):
            with contextlib.suppress(InvalidEncoding):
                decode(cs, candidate)


def _pkg_bytes() -> bytes:
    c = signing.commit(CS, 9, SYSTEM_RNG).commitments
    return wire.encode_signing_package(CS, signing.SigningPackage({1: c, 2: c}, b"msg"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b"\x01" + b[1:],  # format version
        lambda b: b[:1] + b"\x00\x00\x00\x00" + b[5:],  # ciphersuite
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:-1],  # truncated
        lambda b: b[:5] + b"\x82\x00" + b[6:],  # non-minimal varint for the count
        lambda b: b[:6] + (0).to_bytes(32, "little") + b[38:],  # zero identifier
        lambda b: b[:6] + L.to_bytes(32, "little") + b[38:],  # identifier >= L
        lambda b: b[:6] + (3).to_bytes(32, "little") + b[38:],  # keys out of order (3 then 2)
        lambda b: b[:43] + IDENTITY + b[75:],  # identity hiding commitment
        lambda b: b[:43] + SMALL_ORDER + b[75:],  # small-order hiding commitment
        lambda b: b[:43] + NON_CANONICAL + b[75:],  # non-canonical hiding commitment
    ],
)
def test_signing_package_rejections(mutate: object) -> None:
    good = _pkg_bytes()
    wire.decode_signing_package(CS, good)
    with pytest.raises(InvalidEncoding):
        wire.decode_signing_package(CS, mutate(good))  # type: ignore[operator]


def test_scalar_and_element_rejections() -> None:
    with pytest.raises(InvalidEncoding):
        wire.decode_signature_share(CS, L.to_bytes(32, "little"))
    with pytest.raises(InvalidEncoding):
        wire.decode_signature_share(CS, bytes(33))
    kp = keys.KeyPackage(1, 5, GROUP.base_mul(5), GROUP.base_mul(9), 2)
    enc = wire.encode_key_package(CS, kp)
    with pytest.raises(InvalidEncoding):  # signing share does not match verifying share
        wire.decode_key_package(CS, enc[:37] + (6).to_bytes(32, "little") + enc[69:])
    with pytest.raises(InvalidEncoding):
        wire.decode_key_package(CS, enc[:69] + IDENTITY + enc[101:])
    _, r1 = dkg.part1(CS, 1, 2, 2, SYSTEM_RNG)
    enc = wire.encode_round1_package(CS, r1)
    with pytest.raises(InvalidEncoding):  # signature length prefix must be 64
        wire.decode_round1_package(CS, enc[:-65] + b"\x3f" + enc[-64:])
    with pytest.raises(InvalidEncoding):  # zero-length commitment
        wire.decode_round1_package(CS, HEADER + b"\x00" + b"\x40" + G + bytes(32))


def test_binding_commitment_is_checked_where_it_is_used() -> None:
    """E is validated by signing_context's checked multiplication and names its signer."""
    c1 = signing.commit(CS, 3, SYSTEM_RNG).commitments
    c2 = signing.commit(CS, 4, SYSTEM_RNG).commitments
    for bad in (IDENTITY, SMALL_ORDER, NON_CANONICAL):
        raw = wire.encode_signing_package(
            CS, signing.SigningPackage({1: c1, 2: signing.SigningCommitments(c2.hiding, bad)}, b"m")
        )
        pkg = wire.decode_signing_package(CS, raw)
        with pytest.raises(signing.InvalidCommitment) as info:
            signing.signing_context(CS, pkg, GROUP.base_mul(7))
        assert info.value.identifier == 2


@pytest.mark.parametrize("point", [IDENTITY, SMALL_ORDER, NON_CANONICAL])
def test_round1_package_points_rejected_strictly_or_by_the_proof_check(point: bytes) -> None:
    secret, pkg = dkg.part1(CS, 1, 2, 2, SYSTEM_RNG)
    enc = wire.encode_round1_package(CS, pkg)
    phi0_bad = enc[:6] + point + enc[38:]
    r_bad = enc[:-64] + point + enc[-32:]
    for bad in (phi0_bad, r_bad):
        with pytest.raises(InvalidEncoding):
            wire.decode_round1_package(CS, bad)
        with pytest.raises(dkg.DkgFault):
            dkg.check_round1_package(CS, secret, 2, wire.parse_round1_package(CS, bad))
