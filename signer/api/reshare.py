"""The host's checks of a reshare start against what this node records of the source key.

A reshare session has three kinds of party, and the host treats each as the enclave does
(enclave/engine/reshare_common.py):

- a dealer (self_party_id in source_signers) holds the source key here: its record fills the
  source party set and threshold the request left empty, anything the request does state must be
  the record's, and its sealed share goes into the start;
- an old party of the key that does not deal but is in the new set has a record too, used the same
  way, but it brings no share (only dealers do);
- a party new to the key has no record: the request must describe the source key itself (party
  set, threshold, public key; the chain code if the key has one). It may keep the name of an old
  party (a replacement node with an empty store, a client that lost its share): with no record
  here, it deals nothing and is a new party. The enclave checks the dealers'
  contributions add up to that public key, and every party's view of the rest must agree, so a
  wrong value aborts the session rather than make a wrong key.

The record is only a convenience and an early, precise refusal: the enclave is the authority (a
dealer's sealed share binds its party set and threshold).
"""

from __future__ import annotations

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import enclave_pb2 as epb
from signer.api.parties import party_number
from signer.errors import InvalidArgument
from signer.storage import KeyRecord


def fill_from_record(start: epb.SessionStart, key: KeyRecord) -> None:
    """Check the start's description of the source key against this node's record of it and fill
    what the request left to the record (INVALID_ARGUMENT naming what differs)."""
    if key.protocol != PROTOCOL_NAMES[start.protocol]:
        raise InvalidArgument(f"protocol does not match key {key.key_id} ({key.protocol})")
    old = tuple(start.source_party_ids)
    if not old:
        if not key.party_names:
            raise InvalidArgument(
                f"source_party_ids must be given: this node's record of key {key.key_id} keeps no party names"
            )
        start.source_party_ids.extend(key.party_names)
        old = key.party_names
    names_differ = bool(key.party_names) and old != key.party_names
    if names_differ or tuple(sorted(party_number(p) for p in old)) != key.party_ids:
        shown = f" ({', '.join(key.party_names)})" if key.party_names else ""
        raise InvalidArgument(f"source_party_ids must be the full party set of key {key.key_id} in its order{shown}")
    if any(d not in old for d in start.source_signers):
        raise InvalidArgument("source_signers must be parties of the source key")
    if start.source_threshold and start.source_threshold != key.threshold:
        raise InvalidArgument(f"source_threshold must be the key's ({key.threshold}) or 0")
    start.source_threshold = key.threshold
    if len(start.source_signers) < key.threshold:
        raise InvalidArgument(f"source_signers must list at least the key's threshold ({key.threshold}) of parties")
    me = start.self_party_id
    if me in old and party_number(me) != key.party_id:
        raise InvalidArgument("self_party_id is not this node's party in the source key")
    if me not in old:
        raise InvalidArgument(
            f"self_party_id is not a party of key {key.key_id}, which this node holds as "
            f"{key.self_name or 'another party'}"
        )
    if start.source_public_key and start.source_public_key != key.public_key:
        raise InvalidArgument(f"source_public_key is not the public key of key {key.key_id}")
    if start.source_chain_code and start.source_chain_code != key.chain_code:
        raise InvalidArgument(f"source_chain_code is not the chain code of key {key.key_id}")
    start.source_public_key = key.public_key
    start.source_chain_code = key.chain_code


def check_without_record(start: epb.SessionStart) -> None:
    """A party with no record of the source key is new to it: it deals nothing, and the request
    must describe the source key."""
    if start.self_party_id in start.source_signers:
        raise InvalidArgument(
            f"self_party_id is one of source_signers, but this node holds no share of key {start.key_id}"
        )
    missing = [
        name
        for name, value in (
            ("source_party_ids", len(start.source_party_ids)),
            ("source_threshold", start.source_threshold),
            ("source_public_key", len(start.source_public_key)),
        )
        if not value
    ]
    if missing:
        raise InvalidArgument(
            f"this node holds no record of key {start.key_id} (a party new to the key), so the request must give "
            f"{', '.join(missing)}"
        )
