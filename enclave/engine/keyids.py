"""Key ids and presignature ids: deterministic, equal at every party, 64 lowercase hex characters.

key id = SHA-256 over length-prefixed fields (u32 big-endian length || bytes):
    "mpc-signer/engine/key-id/v1", protocol name, session id, u32 threshold,
    u32 number of parties, each party id in session order, group public key.
Every party of a DKG session knows all of these once the group key exists, so every party
computes the same id without another round; two DKG sessions never share an id because the
session id and the freshly generated public key are in it.

successor key id (a refresh's new key) = SHA-256 over the same framing of
    "mpc-signer/engine/successor-key-id/v1", protocol name, source key id, session id, u32
    threshold, u32 number of parties, each party id, group public key, and the digest of the
    new public shares. The public key is the source's, so the source id and the new shares are
    what make it new: it never equals the source's id, and two refreshes of one key (even under
    a reused session id) get different ids because their shares differ.

presignature id = SHA-256 over "mpc-signer/engine/presignature-id/v2", key id, presign session
id, R (the presignature's nonce point, common to all signers and unpredictable before the
session ends), the derivation path it was made for (u32 big-endian indices). Equal at every
signer, so the relay can name one presignature to all of them; a host that gave the signers
different paths gets different ids, and no signing session can name both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from door.encoding import lp32, u32

KEY_ID_TAG: Final = b"mpc-signer/engine/key-id/v1"
PRESIGNATURE_ID_TAG: Final = b"mpc-signer/engine/presignature-id/v2"
KEY_ID_LEN: Final = 64


def key_id(protocol: str, session_id: str, threshold: int, parties: Sequence[str], public_key: bytes) -> str:
    h = hashlib.sha256(lp32(KEY_ID_TAG))
    h.update(lp32(protocol.encode("utf-8")))
    h.update(lp32(session_id.encode("utf-8")))
    h.update(u32(threshold) + u32(len(parties)))
    for p in parties:
        h.update(lp32(p.encode("utf-8")))
    h.update(lp32(public_key))
    return h.hexdigest()


SUCCESSOR_KEY_ID_TAG: Final = b"mpc-signer/engine/successor-key-id/v1"


def successor_key_id(
    protocol: str,
    source: str,
    session_id: str,
    threshold: int,
    parties: Sequence[str],
    public_key: bytes,
    new_shares_digest: bytes,
) -> str:
    h = hashlib.sha256(lp32(SUCCESSOR_KEY_ID_TAG))
    for part in (protocol.encode("utf-8"), source.encode("ascii"), session_id.encode("utf-8")):
        h.update(lp32(part))
    h.update(u32(threshold) + u32(len(parties)))
    for p in parties:
        h.update(lp32(p.encode("utf-8")))
    h.update(lp32(public_key) + lp32(new_shares_digest))
    return h.hexdigest()


def presignature_id(key: str, session_id: str, r_point: bytes, path: Sequence[int] = ()) -> str:
    h = hashlib.sha256(lp32(PRESIGNATURE_ID_TAG))
    path_b = b"".join(u32(i) for i in path)
    for part in (key.encode("ascii"), session_id.encode("utf-8"), r_point, path_b):
        h.update(lp32(part))
    return h.hexdigest()


def is_key_id(value: str) -> bool:
    return len(value) == KEY_ID_LEN and all(c in "0123456789abcdef" for c in value)
