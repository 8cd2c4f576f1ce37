"""Signatures sealed for the caller: SessionStart.result_recipient_key set on a SIGN.

The DONE update's raw signature is HPKE-encrypted (enclave/crypto/hpke.py) to the recipient key, with
the session id, key id and verifying public key bound in the info, and the clear signature is
removed from the update, so what leaves the enclave in SessionResult is ciphertext. The host's
copy, its status calls, logs and the Exchange stream then carry only ciphertext. What this does
not hide: the final round's signature shares, which the parties exchange as protocol messages
(README "Results sealed for the caller").
"""

from __future__ import annotations

from enclave.crypto import hpke
from mpc.v1 import enclave_pb2 as pb


def seal_signature(update: pb.SessionUpdate, recipient_key: bytes) -> None:
    """In place: `signature` -> `sealed_signature` when a recipient key was given."""
    if not recipient_key or update.state != pb.SESSION_STATE_DONE or not update.result.signature:
        return
    result = update.result
    context = hpke.sign_result_info(update.session_id, result.key_id, result.public_key)
    result.sealed_signature = hpke.seal(recipient_key, result.signature, context)
    result.signature = b""
