from __future__ import annotations

import cbor2
import pytest

from enclave.errors import InvalidEncoding
from enclave.zk import enc, mod, wire


def test_round_trip() -> None:
    p = mod.Proof(5, (1, 2), (0, 1), (1, 0), (3, 4))
    assert wire.decode(mod.Proof, wire.encode(p)) == p


@pytest.mark.parametrize(
    "items",
    [
        [1, 2, 3, 4, 5],  # too few fields
        [1, 2, 3, 4, 5, 6, 7],  # too many
        [True, 2, 3, 4, 5, 6],  # bool is not an int
        [1.0, 2, 3, 4, 5, 6],  # float
        [b"1", 2, 3, 4, 5, 6],  # bytes for an int
        {"s": 1},  # map
    ],
)
def test_strict_decoding(items: object) -> None:
    with pytest.raises(InvalidEncoding):
        wire.decode(enc.Proof, cbor2.dumps(items))


def test_garbage() -> None:
    with pytest.raises(InvalidEncoding):
        wire.decode(enc.Proof, b"\xff\x00garbage")
    with pytest.raises(InvalidEncoding):
        wire.decode(mod.Proof, cbor2.dumps([5, [1, "x"], [], [], []]))
