"""Party numbers: the store keeps party sets as integers, the public API names parties with
strings (signer.api.operations explains the mapping). A pure function of the id."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from signer.errors import InvalidArgument

_PARTY_DOMAIN = b"mpc-signer/party-id/v1"


def party_number(party_id: str) -> int:
    return int.from_bytes(hashlib.sha256(_PARTY_DOMAIN + party_id.encode("utf-8")).digest()[:4], "big") >> 1


def party_numbers(party_ids: Sequence[str]) -> tuple[int, ...]:
    return tuple(party_number(p) for p in party_ids)


def check_distinct_numbers(party_ids: Sequence[str]) -> None:
    if len(set(party_numbers(party_ids))) != len(party_ids):
        raise InvalidArgument("party_ids: two ids map to the same party number; rename one of them")
