"""HMAC envelope: unambiguous encoding, every field bound, key rotation, constant-time check."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import DOMAIN, HmacKeyRing, MessageAuthError, compute_mac, mac_input
from signer.errors import Unauthenticated

KEYS = {"new": b"n" * 32, "old": b"o" * 32, "gone": b"g" * 32}


def ring() -> HmacKeyRing:
    return HmacKeyRing(KEYS, "new", frozenset({"gone"}))


def message(**fields: object) -> pb.ProtocolMessage:
    base = dict(session_id="s-1", sender="p1", recipient="p2", round=3, seq=7, payload=b"\x00payload")
    base.update(fields)
    return pb.ProtocolMessage(**base)  # type: ignore[arg-type]


def test_mac_input_is_the_documented_encoding() -> None:
    m = message(hmac_key_id="new")
    lp = lambda b: struct.pack(">I", len(b)) + b  # noqa: E731
    expected = (
        DOMAIN
        + lp(b"new")
        + lp(b"s-1")
        + lp(b"p1")
        + lp(b"p2")
        + lp(struct.pack(">I", 3))
        + lp(struct.pack(">Q", 7))
        + lp(b"\x00payload")
    )
    assert mac_input(m) == expected
    assert compute_mac(KEYS["new"], m) == hmac.new(KEYS["new"], expected, hashlib.sha256).digest()


def test_moving_bytes_between_fields_changes_the_mac() -> None:
    a = message(sender="p1", recipient="p2x", hmac_key_id="new")
    b = message(sender="p1p2", recipient="x", hmac_key_id="new")
    c = message(session_id="s-1p1", sender="", hmac_key_id="new")
    macs = {compute_mac(KEYS["new"], m) for m in (a, b, c, message(hmac_key_id="new"))}
    assert len(macs) == 4


def test_sign_then_verify_and_every_field_is_bound() -> None:
    keys = ring()
    m = message()
    keys.sign(m)
    assert m.hmac_key_id == "new" and len(m.hmac) == 32
    keys.verify(m)
    changes = {
        "session_id": "s-2",
        "sender": "p3",
        "recipient": "",
        "round": 4,
        "seq": 8,
        "payload": b"x",
        "hmac_key_id": "old",
    }
    for field, value in changes.items():
        tampered = pb.ProtocolMessage()
        tampered.CopyFrom(m)
        setattr(tampered, field, value)
        with pytest.raises(MessageAuthError, match="does not verify"):
            keys.verify(tampered)


def test_rotation_rules() -> None:
    keys = ring()
    old = message(hmac_key_id="old")
    old.hmac = compute_mac(KEYS["old"], old)
    keys.verify(old)  # accepted: listed and not retired
    gone = message(hmac_key_id="gone")
    gone.hmac = compute_mac(KEYS["gone"], gone)
    with pytest.raises(MessageAuthError, match="retired"):
        keys.verify(gone)
    unknown = message(hmac_key_id="who")
    unknown.hmac = compute_mac(b"w" * 32, unknown)
    with pytest.raises(MessageAuthError, match="not known"):
        keys.verify(unknown)
    with pytest.raises(MessageAuthError, match="no HMAC"):
        keys.verify(message(hmac_key_id="new"))
    assert issubclass(MessageAuthError, Unauthenticated)


def test_batch_names_the_bad_message() -> None:
    keys = ring()
    good, bad = message(), message(seq=8)
    keys.sign(good)
    keys.sign(bad)
    bad.payload = b"changed"
    with pytest.raises(MessageAuthError, match=r"messages\[1\]"):
        keys.verify_all([good, bad])


def test_keyring_refuses_weak_or_inconsistent_keys() -> None:
    with pytest.raises(ValueError, match="shorter"):
        HmacKeyRing({"k": b"short"}, "k")
    with pytest.raises(ValueError, match="active"):
        HmacKeyRing(KEYS, "gone", frozenset({"gone"}))
    assert "nnnn" not in repr(ring())


def test_a_key_bound_to_parties_authenticates_only_their_messages() -> None:
    keys = {"client-key": b"c" * 32, "signer-key": b"s" * 32, "shared": b"x" * 32}
    bindings = {"client-key": frozenset({"client"}), "signer-key": frozenset({"signer-1", "signer"})}
    verifier = HmacKeyRing(keys, "signer-key", senders=bindings)
    client = HmacKeyRing(keys, "client-key", senders=bindings)

    own = message(sender="client")
    client.sign(own)
    verifier.verify(own)
    forged = message(sender="signer-1")  # the client's key, writing as a signer
    client.sign(forged)
    with pytest.raises(MessageAuthError, match="sender is not a party its HMAC key may sign for"):
        verifier.verify(forged)
    # A forged MAC is reported as such, whatever the sender binding says.
    forged.payload = b"changed"
    with pytest.raises(MessageAuthError, match="does not verify"):
        verifier.verify(forged)
    # A key with no binding may sign for any party.
    anyone = message(sender="signer-1", hmac_key_id="shared")
    anyone.hmac = compute_mac(keys["shared"], anyone)
    verifier.verify(anyone)

    client.check_own_party("client")
    with pytest.raises(ValueError, match="may not sign for party 'signer'"):
        client.check_own_party("signer")
    with pytest.raises(ValueError, match="unknown key ids"):
        HmacKeyRing(keys, "shared", senders={"nope": frozenset({"a"})})
    with pytest.raises(ValueError, match="name no party"):
        HmacKeyRing(keys, "shared", senders={"shared": frozenset()})
