"""Key packages read back from an enclave-sealed key share: structural checks only.

`wire.decode_sealed_*` skip the point subgroup checks (the sealing AEAD authenticated the bytes
and the DKG validated the points), but must refuse everything malformed by structure, and must
not be reachable from anything that decodes peer data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from enclave.errors import InvalidEncoding
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519 as CS
from enclave.protocols.frost.ciphersuite import FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR
from tests.enclave.frost.common import dealer, run_dkg

GROUP = CS.group
HEADER = CS.header
L = GROUP.order
P = 2**255 - 19
IDENTITY = GROUP.identity()
SMALL_ORDER = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
ROOT = Path(__file__).resolve().parents[3]


def _y(y: int, sign: int = 0) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


@pytest.mark.parametrize("cs", [CS, FROST_SECP256K1, FROST_SECP256K1_TR], ids=lambda cs: cs.short_name)
def test_sealed_decoders_agree_with_the_strict_ones(cs: Ciphersuite) -> None:
    for kps, public in (dealer(cs, 3, 2), run_dkg(cs, 3, 2)):
        pub_bytes = wire.encode_public_key_package(cs, public)
        assert wire.decode_sealed_public_key_package(cs, pub_bytes) == wire.decode_public_key_package(cs, pub_bytes)
        for kp in kps.values():
            kp_bytes = wire.encode_key_package(cs, kp)
            assert wire.decode_sealed_key_package(cs, kp_bytes) == wire.decode_key_package(cs, kp_bytes) == kp


@pytest.mark.parametrize("cs", [FROST_SECP256K1, FROST_SECP256K1_TR], ids=lambda cs: cs.short_name)
def test_sealed_secp256k1_key_package_still_parses_points(cs: Ciphersuite) -> None:
    """libsecp256k1 parses and validates in one step, so the sealed reader refuses bad points."""
    kps, _ = dealer(cs, 3, 2)
    good = wire.encode_key_package(cs, kps[1])
    at = 5 + 32 + 32  # header || identifier || signing share || verifying share (33) || key (33) || t
    for point in (b"\x04" + good[at + 1 : at + 33], b"\x02" + (2**256 - 1).to_bytes(32, "big"), bytes(33)):
        with pytest.raises(InvalidEncoding):
            wire.decode_sealed_key_package(cs, good[:at] + point + good[at + 33 :])
    with pytest.raises(InvalidEncoding):  # another suite's header
        other = FROST_SECP256K1_TR if cs is FROST_SECP256K1 else FROST_SECP256K1
        wire.decode_sealed_key_package(other, good)


@pytest.mark.parametrize(
    "point",
    [
        IDENTITY,
        _y(1, 1),  # identity, sign bit set
        _y(P - 1),  # order 2
        _y(P - 1, 1),
        _y(P),  # y >= p
        _y(P + 1),
        b"\xff" * 32,
    ],
)
def test_decode_trusted_refuses_structurally_bad_points(point: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        GROUP.decode_trusted(point)
    with pytest.raises(InvalidEncoding):
        GROUP.decode(point)


def test_decode_trusted_checks_type_and_length_but_not_the_subgroup() -> None:
    for bad in (bytes(31), bytes(33), bytearray(GROUP.generator())):
        with pytest.raises(InvalidEncoding):
            GROUP.decode_trusted(bad)  # type: ignore[arg-type]
    # What it deliberately does not do: that is why it is for authenticated sealed data only.
    assert GROUP.decode_trusted(SMALL_ORDER) == SMALL_ORDER
    with pytest.raises(InvalidEncoding):
        GROUP.decode(SMALL_ORDER)


def _mutations(good: bytes, element_at: int) -> list[Callable[[bytes], bytes]]:
    return [
        lambda b: b[:-1],  # truncated
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b"\x01" + b[1:],  # wrong format version
        lambda b: b[:1] + b"\x00\x00\x00\x00" + b[5:],  # wrong suite
        lambda b: b[:element_at] + IDENTITY + b[element_at + 32 :],
        lambda b: b[:element_at] + _y(P + 3) + b[element_at + 32 :],
        lambda b: b"",
    ]


def test_sealed_key_package_structural_rejections() -> None:
    kps, _ = dealer(CS, 3, 2)
    good = wire.encode_key_package(CS, kps[2])
    # header 5 || identifier 32 || signing share 32 || verifying share 32 || verifying key 32 || t
    bad = [
        *_mutations(good, 69),
        lambda b: b[:5] + bytes(32) + b[37:],  # zero identifier
        lambda b: b[:5] + L.to_bytes(32, "little") + b[37:],  # identifier not reduced
        lambda b: b[:37] + L.to_bytes(32, "little") + b[69:],  # signing share not reduced
        lambda b: b[:101] + IDENTITY + b[133:],  # identity verifying key
        lambda b: b[:-1] + b"\x82\x00",  # non-minimal varint
    ]
    for mutate in bad:
        with pytest.raises(InvalidEncoding):
            wire.decode_sealed_key_package(CS, mutate(good))


def test_sealed_public_key_package_structural_rejections() -> None:
    _, public = dealer(CS, 3, 2)
    good = wire.encode_public_key_package(CS, public)
    # header 5 || n=3 || (identifier 32 || share 32) * 3 || key 32 || 0x01 || t
    first_id, second_id = 6, 6 + 64
    bad = [
        *_mutations(good, first_id + 32),
        lambda b: b[:first_id] + bytes(32) + b[first_id + 32 :],  # zero identifier
        lambda b: b[:second_id] + b[first_id : first_id + 32] + b[second_id + 32 :],  # keys not increasing
        lambda b: b[:5] + b"\x04" + b[6:],  # count larger than the entries
        lambda b: b[:-2] + b"\x02" + b[-1:],  # bad option tag
        lambda b: b[:-34] + IDENTITY + b[-2:],  # identity verifying key
    ]
    assert good[:5] == HEADER and good[5] == 3
    for mutate in bad:
        with pytest.raises(InvalidEncoding):
            wire.decode_sealed_public_key_package(CS, mutate(good))


def test_trusted_decoding_is_reachable_only_from_the_sealed_share_path() -> None:
    """`decode_trusted` is called by wire's sealed reader alone, and the sealed decoders by the
    engine's FROST adapter alone (after the sealing AEAD opened the share; its presigning half
    lives in frost_presign.py)."""
    callers: dict[str, set[str]] = {"decode_trusted": set(), "decode_sealed_": set()}
    for path in (ROOT / "enclave").rglob("*.py"):
        text = path.read_text()
        for name in callers:
            if re.search(rf"\.{name}\w*\(", text):  # a call, not a mention
                callers[name].add(path.relative_to(ROOT).as_posix())
    assert callers == {
        "decode_trusted": {"enclave/protocols/frost/wire.py"},
        "decode_sealed_": {"enclave/engine/frost.py", "enclave/engine/frost_presign.py"},
    }
