"""ZF frost's postcard encodings for FROST(secp256k1, SHA-256) and its Taproot suite, byte for byte.

ZF's own serialization snapshots of its fixed sample objects (tests/vectors/
zf-frost-secp256k1-postcard.json: G, 2G, the scalar 1/3, identifier 42, "hello world") must be
what this code encodes for the same objects and must decode back to them. For the Taproot suite,
which frost_rs does not bind, these snapshots are the byte-compatibility check of the encodings
(header = CRC-32 of "FROST-secp256k1-SHA256-TR-v1"; the proof of knowledge in a DKG round-1
package is a 64-byte x-only BIP340 signature, where FROST(secp256k1) carries 65 bytes).
"""

from __future__ import annotations

import zlib

import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidEncoding
from enclave.group.secp256k1 import FIELD_PRIME
from enclave.protocols.frost import dkg, keys, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR
from tests.enclave.frost.common import load_vector

SNAPSHOTS = load_vector("zf-frost-secp256k1-postcard.json")
SECP_SUITES = [FROST_SECP256K1, FROST_SECP256K1_TR]


@pytest.fixture(params=SECP_SUITES, ids=[cs.short_name for cs in SECP_SUITES])
def cs(request: pytest.FixtureRequest) -> Ciphersuite:
    suite: Ciphersuite = request.param
    return suite


def _samples(cs: Ciphersuite) -> dict[str, bytes]:
    g = cs.group
    e1 = g.encode(g.generator())
    e2 = g.encode(g.add(g.generator(), g.generator()))
    third = pow(3, -1, cs.order)
    commitments = signing.SigningCommitments(e1, e2)
    nonces = signing.nonces_from_scalars(cs, third, third)
    return {
        "signing_commitments": wire.encode_signing_commitments(cs, commitments),
        "signing_nonces": wire.encode_signing_nonces(cs, nonces),
        "signing_package": wire.encode_signing_package(cs, signing.SigningPackage({42: commitments}, b"hello world")),
        "signature_share": wire.encode_signature_share(cs, third),
        "secret_share": wire.encode_secret_share(cs, keys.SecretShare(42, third, (e1,))),
        "key_package": wire.encode_key_package(cs, keys.KeyPackage(42, third, e1, e1, 2)),
        "public_key_package": wire.encode_public_key_package(cs, keys.PublicKeyPackage({42: e1}, e1, None)),
        "public_key_package_new": wire.encode_public_key_package(cs, keys.PublicKeyPackage({42: e1}, e1, 2)),
        "round1_package": wire.encode_round1_package(cs, dkg.Round1Package((e1,), e1, third)),
        "round2_package": wire.encode_round2_package(cs, third),
    }


def test_headers_are_crc32_of_the_context_strings() -> None:
    assert FROST_SECP256K1.context_string == b"FROST-secp256k1-SHA256-v1"
    assert FROST_SECP256K1_TR.context_string == b"FROST-secp256k1-SHA256-TR-v1"
    for cs in SECP_SUITES:
        assert cs.header == b"\x00" + zlib.crc32(cs.context_string).to_bytes(4, "big")
    assert FROST_SECP256K1.header.hex() == "00eed6b1b1"
    assert FROST_SECP256K1_TR.header.hex() == "00230f8ab3"


def test_encodings_equal_zf_snapshots(cs: Ciphersuite) -> None:
    expected = SNAPSHOTS[cs.short_name]
    ours = _samples(cs)
    assert set(ours) == set(expected)
    for name, data in ours.items():
        assert data.hex() == expected[name], name


def test_zf_snapshots_decode_and_reencode(cs: Ciphersuite) -> None:
    snap = {k: bytes.fromhex(v) for k, v in SNAPSHOTS[cs.short_name].items()}
    pairs = [
        ("signing_commitments", wire.encode_signing_commitments, wire.decode_signing_commitments),
        ("signing_nonces", wire.encode_signing_nonces, wire.decode_signing_nonces),
        ("signing_package", wire.encode_signing_package, wire.decode_signing_package),
        ("secret_share", wire.encode_secret_share, wire.decode_secret_share),
        ("public_key_package", wire.encode_public_key_package, wire.decode_public_key_package),
        ("public_key_package_new", wire.encode_public_key_package, wire.decode_public_key_package),
        ("round1_package", wire.encode_round1_package, wire.decode_round1_package),
    ]
    for name, encode, decode in pairs:
        assert encode(cs, decode(cs, snap[name])) == snap[name], name  # type: ignore[operator]
    assert wire.decode_round2_package(cs, snap["round2_package"]) == pow(3, -1, cs.order)
    # ZF's sample key package has verifying share G with signing share 1/3: the strict decoder
    # refuses that inconsistency, the layout is still read.
    with pytest.raises(InvalidEncoding, match="does not match"):
        wire.decode_key_package(cs, snap["key_package"])


def test_round1_proof_length_differs_by_suite() -> None:
    _, r1 = dkg.part1(FROST_SECP256K1, 1, 2, 2, SYSTEM_RNG)
    _, r1_tr = dkg.part1(FROST_SECP256K1_TR, 1, 2, 2, SYSTEM_RNG)
    enc, enc_tr = wire.encode_round1_package(FROST_SECP256K1, r1), wire.encode_round1_package(FROST_SECP256K1_TR, r1_tr)
    t = 2
    assert enc[5 + 1 + 33 * t] == 65 and len(enc) == 5 + 1 + 33 * t + 1 + 65
    assert enc_tr[5 + 1 + 33 * t] == 64 and len(enc_tr) == 5 + 1 + 33 * t + 1 + 64
    assert r1_tr.proof_r[0] == 2  # BIP340: the proof nonce point has an even y
    # the suites do not read each other's objects
    with pytest.raises(InvalidEncoding):
        wire.decode_round1_package(FROST_SECP256K1, enc_tr)
    with pytest.raises(InvalidEncoding):
        wire.decode_round1_package(FROST_SECP256K1_TR, enc)


def _pkg_bytes(cs: Ciphersuite) -> bytes:
    c = signing.commit(cs, 9, SYSTEM_RNG).commitments
    return wire.encode_signing_package(cs, signing.SigningPackage({1: c, 2: c}, b"msg"))


def _mutations(cs: Ciphersuite) -> list[object]:
    # header 5 || n 1 || id 32 || commitments (header 5 || D 33 || E 33) || ...
    d = 5 + 1 + 32 + 5
    return [
        lambda b: b[:1] + b"\x00\x00\x00\x00" + b[5:],  # ciphersuite
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:6] + (0).to_bytes(32, "big") + b[38:],  # zero identifier
        lambda b: b[:6] + cs.order.to_bytes(32, "big") + b[38:],  # identifier >= n
        lambda b: b[:6] + (3).to_bytes(32, "big") + b[38:],  # keys out of order (3 then 2)
        lambda b: b[:d] + b"\x04" + b[d + 1 :],  # hiding: not a compressed prefix
        lambda b: b[:d] + b"\x02" + FIELD_PRIME.to_bytes(32, "big") + b[d + 33 :],  # hiding: x >= p
        lambda b: b[:6] + (1).to_bytes(32, "little") + b[38:],  # little-endian identifier: not ours
    ]


@pytest.mark.parametrize("index", range(8))
def test_signing_package_rejections(cs: Ciphersuite, index: int) -> None:
    good = _pkg_bytes(cs)
    wire.decode_signing_package(cs, good)
    with pytest.raises(InvalidEncoding):
        wire.decode_signing_package(cs, _mutations(cs)[index](good))  # type: ignore[operator]
