"""The digest rules, stated once: what a signature or a policy approval covers.

GG20 signs a 32-byte digest the enclave makes from the message by a named rule; the host makes
the same digest for the policy request and the audit record, and both call `message_digest`:

    raw                    the 32-byte digest itself
    sha256                 SHA-256(message)
    double-sha256          SHA-256(SHA-256(message))                      (Bitcoin)
    keccak256              Keccak-256(message) (original Keccak padding, not SHA3-256; Ethereum)
    eth-personal-message   Keccak-256("\\x19Ethereum Signed Message:\\n" || decimal len || message)
                           (EIP-191 version 0x45, what `personal_sign` / `eth_sign` sign)

A FROST approval covers SHA-256 of the message (which may be up to 64 KiB), named "sha256"; a
Taproot signature under a script tree's merkle root is made with a key tweaked by that root, so
its approval covers SHA-256("mpc-signer/approval/taproot/v1" || root || message): `frost_digest`.
A reshare dealer hands out its share (split among the new parties), so with a policy configured a
dealer's enclave asks an approval for it too, named "reshare", over `reshare_digest` of the
start's source and new party sets and thresholds and of the keys its new parties sign with
(new_party_keys; the key id and session id are the approval's own fields). A FROST repair helper
rebuilds a party's share for whoever holds the key listed for that party, so it asks one too,
named "repair", over `repair_digest`. Pure functions; the caller checks lengths (the enclave
refuses a RAW digest that is not 32 bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Final

from Crypto.Hash import keccak

FROST_APPROVAL_HASH: Final = "sha256"
TAPROOT_APPROVAL_TAG: Final = b"mpc-signer/approval/taproot/v1"
_ETH_PREFIX: Final = b"\x19Ethereum Signed Message:\n"
RESHARE_APPROVAL_HASH: Final = "reshare"
RESHARE_APPROVAL_TAG: Final = b"mpc-signer/approval/reshare/v2"
REPAIR_APPROVAL_HASH: Final = "repair"
REPAIR_APPROVAL_TAG: Final = b"mpc-signer/approval/repair/v1"


def _keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def message_digest(rule: str, message: bytes) -> bytes:
    """The digest the rule named `rule` makes of `message` (ValueError for an unknown name)."""
    if rule == "raw":
        return bytes(message)
    if rule == "sha256":
        return hashlib.sha256(message).digest()
    if rule == "double-sha256":
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if rule == "keccak256":
        return _keccak256(message)
    if rule == "eth-personal-message":
        return _keccak256(_ETH_PREFIX + str(len(message)).encode("ascii") + message)
    raise ValueError(f"unknown message hash rule {rule!r}")


def frost_digest(message: bytes, taproot_merkle_root: bytes = b"") -> bytes:
    """What a FROST approval covers: SHA-256 of the message, or of tag || root || message."""
    if taproot_merkle_root:
        return hashlib.sha256(TAPROOT_APPROVAL_TAG + taproot_merkle_root + message).digest()
    return hashlib.sha256(message).digest()


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _ids(ids: Sequence[str]) -> bytes:
    return len(ids).to_bytes(4, "big") + b"".join(_lp(p.encode("utf-8")) for p in ids)


def reshare_preimage(
    source_party_ids: Sequence[str],
    source_threshold: int,
    source_signers: Sequence[str],
    party_ids: Sequence[str],
    threshold: int,
    new_party_keys: Mapping[str, bytes],
) -> bytes:
    """What `reshare_digest` hashes, which the host sends a policy service as the request's message
    (so that it can read what it approves and recompute the digest): the tag, then u32 source
    threshold, the source parties, the dealers, u32 new threshold and the new parties (each list
    u32 count and lp(id)s, lengths u32 big-endian), then u32 count and lp(id) || lp(key) of every
    listed party's key, sorted by party id: whoever picks those keys receives those parties'
    sub-shares."""
    keys = b"".join(_lp(p.encode("utf-8")) + _lp(bytes(k)) for p, k in sorted(new_party_keys.items()))
    return b"".join(
        (
            RESHARE_APPROVAL_TAG,
            source_threshold.to_bytes(4, "big"),
            _ids(source_party_ids),
            _ids(source_signers),
            threshold.to_bytes(4, "big"),
            _ids(party_ids),
            len(new_party_keys).to_bytes(4, "big"),
            keys,
        )
    )


def reshare_digest(
    source_party_ids: Sequence[str],
    source_threshold: int,
    source_signers: Sequence[str],
    party_ids: Sequence[str],
    threshold: int,
    new_party_keys: Mapping[str, bytes],
) -> bytes:
    """What a reshare approval covers: SHA-256 of `reshare_preimage`."""
    preimage = reshare_preimage(
        source_party_ids, source_threshold, source_signers, party_ids, threshold, new_party_keys
    )
    return hashlib.sha256(preimage).digest()


def repair_preimage(
    party_ids: Sequence[str], threshold: int, helpers: Sequence[str], repair_party_id: str, party_key: bytes
) -> bytes:
    """What `repair_digest` hashes, sent to a policy service as the request's message: the tag,
    then u32 threshold, the key's parties, the helpers (each list u32 count and lp(id)s),
    lp(repaired party id) and lp(its listed P-256 key, SEC1 uncompressed), lengths u32 big-endian."""
    return b"".join(
        (
            REPAIR_APPROVAL_TAG,
            threshold.to_bytes(4, "big"),
            _ids(party_ids),
            _ids(helpers),
            _lp(repair_party_id.encode("utf-8")),
            _lp(bytes(party_key)),
        )
    )


def repair_digest(
    party_ids: Sequence[str], threshold: int, helpers: Sequence[str], repair_party_id: str, party_key: bytes
) -> bytes:
    """What a repair approval covers: SHA-256 of `repair_preimage`."""
    return hashlib.sha256(repair_preimage(party_ids, threshold, helpers, repair_party_id, party_key)).digest()
