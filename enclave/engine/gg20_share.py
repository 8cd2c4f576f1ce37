"""A GG20 key share as the engine seals it: `KeyShare.to_bytes()` inside the engine's key-share
record. One way from a record to a share (`key_share`) and one digest of a successor's new
public shares (`new_shares_digest`, for `keyids.successor_key_id`), shared by the GG20 adapter's
signing, refresh and reshare paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from enclave.engine.blobs import ShareRecord
from enclave.engine.common import blob_invalid
from enclave.errors import InvalidEncoding
from enclave.protocols.gg20.common import framed_hash
from enclave.protocols.gg20.keyshare import KeyShare

SHARES_TAG: Final = b"mpc-signer/gg20/public-shares/v1"


def key_share(record: ShareRecord) -> KeyShare:
    """The record's GG20 key share (its sealing AEAD and binding were checked by open_share)."""
    try:
        share = KeyShare.from_bytes(record.share)
    except InvalidEncoding:
        raise blob_invalid("key share: unreadable GG20 key share") from None
    if share.index != record.index or share.public_key != record.public_key:
        raise blob_invalid("key share: GG20 key share does not match its record")
    return share


def new_shares_digest(public_shares: Mapping[int, bytes], parties: Sequence[int]) -> bytes:
    """Digest of a successor key's public shares X_j, in party order."""
    return framed_hash(SHARES_TAG, *(public_shares[k] for k in parties))
