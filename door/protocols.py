"""The protocols' name tokens, derived once from the `Protocol` enum of enclave.proto.

A token is the enum name without its `PROTOCOL_` prefix, lower case, `_` as `-`
(PROTOCOL_FROST_SECP256K1_TR -> "frost-secp256k1-tr"). Tokens go into key ids and stored
records, so both wings read them from here and neither spells them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from mpc.v1 import enclave_pb2 as pb


def protocol_token(enum_name: str) -> str:
    """The token of one `Protocol` enum value name."""
    return enum_name.removeprefix("PROTOCOL_").lower().replace("_", "-")


# Protocol value -> token, for every protocol but PROTOCOL_UNSPECIFIED.
PROTOCOL_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {value: protocol_token(name) for name, value in pb.Protocol.items() if value != pb.PROTOCOL_UNSPECIFIED}
)
