"""The host's checks of a FROST repair start against what this node records of the key.

A repair session has two kinds of party (enclave/engine/frost_repair.py):

- a helper (self_party_id in source_signers) holds the key here: the request must state the
  key's protocol, ordered party set and threshold as its record has them, this node must be the
  helper's party, and a public key or chain code the request gives must be the record's; its
  sealed share goes into the start, and it keeps it (a helper stores nothing);
- the repaired party (self_party_id == repair_party_id) must hold no record of the key: the
  repair rebuilds a share this node lost (an empty store, a replacement node under the same party
  id), and stores it under the key's own id. A node that still has an ACTIVE record has its share;
  one with a RETIRED record destroyed it on purpose, and a repair does not bring a retired share
  back (the same rule a backup restore follows). The request must describe the key (public key;
  the chain code if it has one), which the rebuilt share is checked against.

As for a reshare, the record is a convenience and an early, precise refusal: the enclave is the
authority (a helper's sealed share binds the key's parties and threshold, and every party's view
of the session must agree or it aborts).
"""

from __future__ import annotations

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import enclave_pb2 as epb
from signer.api.parties import party_number
from signer.errors import FailedPrecondition, InvalidArgument
from signer.storage import KeyRecord


def check_helper(start: epb.SessionStart, key: KeyRecord) -> None:
    """A helper's start against its record of the key (INVALID_ARGUMENT naming what differs)."""
    if key.protocol != PROTOCOL_NAMES[start.protocol]:
        raise InvalidArgument(f"protocol does not match key {key.key_id} ({key.protocol})")
    names_differ = bool(key.party_names) and tuple(start.party_ids) != key.party_names
    if names_differ or tuple(sorted(party_number(p) for p in start.party_ids)) != key.party_ids:
        shown = f" ({', '.join(key.party_names)})" if key.party_names else ""
        raise InvalidArgument(f"party_ids must be the full party set of key {key.key_id} in its order{shown}")
    if start.threshold != key.threshold:
        raise InvalidArgument(f"threshold must be the key's ({key.threshold})")
    if party_number(start.self_party_id) != key.party_id:
        raise InvalidArgument(
            f"self_party_id is not this node's party in key {key.key_id}, which this node holds as "
            f"{key.self_name or 'another party'}"
        )
    if start.source_public_key and start.source_public_key != key.public_key:
        raise InvalidArgument(f"public_key is not the public key of key {key.key_id}")
    if start.source_chain_code and start.source_chain_code != key.chain_code:
        raise InvalidArgument(f"chain_code is not the chain code of key {key.key_id}")


def check_repaired(start: epb.SessionStart, key: KeyRecord | None) -> None:
    """The repaired party's node holds no record of the key, and the request describes it."""
    if key is not None:
        if key.retired:
            raise FailedPrecondition(
                f"key {key.key_id} is retired on this node: a repair does not bring a retired share back"
            )
        raise FailedPrecondition(
            f"this node holds a share of key {key.key_id} (as {key.self_name or 'its party'}): a repair rebuilds "
            "a share a node has lost, into a store with no record of the key"
        )
    if not start.source_public_key:
        raise InvalidArgument(
            f"this node holds no record of key {start.key_id} (the repaired party), so the request must give public_key"
        )
