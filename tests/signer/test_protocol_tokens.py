"""Protocol tokens are stored (key records, audit rows) and hashed into key ids: deriving them
from the enum (door/protocols.py) must never change one, even if an enum value is renamed."""

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import enclave_pb2 as pb

STORED = {
    pb.PROTOCOL_GG20_SECP256K1: "gg20-secp256k1",
    pb.PROTOCOL_FROST_ED25519: "frost-ed25519",
    pb.PROTOCOL_FROST_SECP256K1: "frost-secp256k1",
    pb.PROTOCOL_FROST_SECP256K1_TR: "frost-secp256k1-tr",
}


def test_every_token_already_stored_is_unchanged() -> None:
    assert {p: PROTOCOL_NAMES[p] for p in STORED} == STORED


def test_every_protocol_but_unspecified_has_a_distinct_token() -> None:
    assert set(PROTOCOL_NAMES) == {v for _, v in pb.Protocol.items()} - {pb.PROTOCOL_UNSPECIFIED}
    assert len(set(PROTOCOL_NAMES.values())) == len(PROTOCOL_NAMES)
