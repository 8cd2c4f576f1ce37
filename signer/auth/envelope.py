"""HMAC over ProtocolMessage envelopes; shared by the signer host and the client SDK.

The MAC input is a domain tag followed by every envelope field except `hmac` itself, each
length-prefixed (4-byte big-endian length, then the bytes), integers as fixed-width big-endian:

    "mpc-signer/protocol-message/v1" || lp(hmac_key_id) || lp(session_id) || lp(sender)
        || lp(recipient) || lp(u32be(round)) || lp(u64be(seq)) || lp(payload)

so no two different envelopes share an input (moving bytes between fields changes a length),
and the key id is bound, so a MAC cannot be replayed under another key. Comparison is
constant-time. Keys are looked up by id: the active key signs; every configured key verifies
except those listed as retired.

The sender is who the key says: with `senders` (key id -> party ids), a message verifies only if
its sender is one of the parties its key may sign for, so a key (leaked, or held by a relay)
writes only as its own party. Keys not listed may sign for any party (one shared key: the
development set-up). The keys are symmetric: whoever holds a key to verify can also write with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from door.encoding import lp32, u32, u64
from mpc.v1 import signer_pb2
from signer.errors import Unauthenticated

DOMAIN = b"mpc-signer/protocol-message/v1"
MAC_BYTES = 32
MIN_KEY_BYTES = 32


class MessageAuthError(Unauthenticated):
    """A protocol message that fails authentication. The message names the field, not secrets."""


def mac_input(message: signer_pb2.ProtocolMessage) -> bytes:
    return b"".join(
        (
            DOMAIN,
            lp32(message.hmac_key_id.encode("utf-8")),
            lp32(message.session_id.encode("utf-8")),
            lp32(message.sender.encode("utf-8")),
            lp32(message.recipient.encode("utf-8")),
            lp32(u32(message.round)),
            lp32(u64(message.seq)),
            lp32(message.payload),
        )
    )


def compute_mac(key: bytes, message: signer_pb2.ProtocolMessage) -> bytes:
    return hmac.new(key, mac_input(message), hashlib.sha256).digest()


@dataclass(frozen=True)
class HmacKeyRing:
    keys: Mapping[str, bytes] = field(repr=False)
    active_key_id: str
    retired_key_ids: frozenset[str] = frozenset()
    # key id -> the party ids it may sign messages for; a key not listed may sign for any party
    senders: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys or self.active_key_id in self.retired_key_ids:
            raise ValueError("the active HMAC key id must be a configured, non-retired key")
        short = sorted(k for k, v in self.keys.items() if len(v) < MIN_KEY_BYTES)
        if short:
            raise ValueError(f"HMAC keys {short} are shorter than {MIN_KEY_BYTES} bytes")
        unknown = sorted(k for k in self.senders if k not in self.keys)
        if unknown:
            raise ValueError(f"HMAC sender bindings for unknown key ids {unknown}")
        empty = sorted(k for k, parties in self.senders.items() if not parties)
        if empty:
            raise ValueError(f"HMAC sender bindings {empty} name no party")

    def may_sign_for(self, key_id: str, party_id: str) -> bool:
        allowed = self.senders.get(key_id)
        return allowed is None or party_id in allowed

    def check_own_party(self, party_id: str) -> None:
        """Raise ValueError if this ring's active key may not sign for `party_id` (its messages
        would be refused by every recipient with the same bindings)."""
        if not self.may_sign_for(self.active_key_id, party_id):
            raise ValueError(f"HMAC key {self.active_key_id!r} may not sign for party {party_id!r}")

    def sign(self, message: signer_pb2.ProtocolMessage) -> None:
        """Set hmac_key_id to the active key and hmac over the resulting envelope (in place)."""
        message.hmac_key_id = self.active_key_id
        message.hmac = compute_mac(self.keys[self.active_key_id], message)

    def verify(self, message: signer_pb2.ProtocolMessage) -> None:
        if not message.hmac:
            raise MessageAuthError("message has no HMAC")
        if not message.hmac_key_id:
            raise MessageAuthError("message has no HMAC key id")
        if message.hmac_key_id in self.retired_key_ids:
            raise MessageAuthError("message HMAC key id is retired")
        key = self.keys.get(message.hmac_key_id)
        if key is None:
            raise MessageAuthError("message HMAC key id is not known")
        if not hmac.compare_digest(message.hmac, compute_mac(key, message)):
            raise MessageAuthError("message HMAC does not verify")
        if not self.may_sign_for(message.hmac_key_id, message.sender):
            raise MessageAuthError("message sender is not a party its HMAC key may sign for")

    def verify_all(self, messages: Iterable[signer_pb2.ProtocolMessage]) -> None:
        for index, message in enumerate(messages):
            try:
                self.verify(message)
            except MessageAuthError as exc:
                raise MessageAuthError(f"messages[{index}]: {exc}") from None
