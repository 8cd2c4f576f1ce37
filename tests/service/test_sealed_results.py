"""Signatures sealed for the caller (StartSignRequest.result_recipient_key) through real processes:
the signer's result carries only HPKE ciphertext, the SDK opens it with the recipient's key, the
signature verifies with libsecp256k1 / libsodium, and nothing else opens it."""

from __future__ import annotations

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.sealed_result import SealedResultError, generate_recipient_key, open_signature, public_bytes
from signer.client.spec import SessionSpec
from tests.service.conftest import GG20, PROTOCOLS, all_ok, check_signature, dkg, message_for, sid, status_of

PARTIES = ("client", "signer-a")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_sealed_signature_opens_only_for_its_recipient(start_node, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a")
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, protocol, PARTIES, 2)
    recipient = generate_recipient_key()
    message = message_for(protocol, b"for the recipient's eyes")
    spec = SessionSpec(
        "sign",
        sid("sealed"),
        protocol,
        PARTIES,
        key_id=key.key_id,
        message=message,  # type: ignore[arg-type]
        result_recipient_key=public_bytes(recipient),
    )
    results = all_ok(await relay.run(spec))
    sealed = results["signer-a"].sign
    assert sealed.signature == b"" and len(sealed.sealed_signature) == 65 + (65 if protocol == GG20 else 64) + 16
    assert sealed.public_key == key.public_key

    signature = open_signature(sealed, spec.session_id, recipient)
    assert signature == results["client"].sign.signature  # the caller's own party computed it in the clear
    # the digest the enclave signed is public and stays in the clear beside the sealed signature
    check_signature(
        protocol,
        key.public_key,
        message,
        pb.SignResult(signature=signature, recovery_id=signature[64] if protocol == GG20 else 0, digest=sealed.digest),
    )

    status = await client.sign_status(spec.session_id)  # the host's copy is the ciphertext too
    assert status.result.signature == b"" and status.result.sealed_signature == sealed.sealed_signature

    with pytest.raises(SealedResultError):
        open_signature(sealed, spec.session_id, generate_recipient_key())
    with pytest.raises(SealedResultError):
        open_signature(sealed, sid("another-session"), recipient)
    moved = pb.SignResult(key_id=sealed.key_id, public_key=b"\x02" * 33, sealed_signature=sealed.sealed_signature)
    with pytest.raises(SealedResultError):
        open_signature(moved, spec.session_id, recipient)

    # A key of the right length that is no point: the enclave refuses the start.
    off_curve = pb.StartSignRequest(
        session_id=sid("off-curve"),
        protocol=protocol,
        key_id=key.key_id,
        message=message,
        party_ids=list(PARTIES),
        self_party_id="signer-a",
        result_recipient_key=b"\x04" + bytes(64),
    )
    code, reason = await status_of(client.start_sign(off_curve))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "result_recipient_key is not a point on P-256" in reason


async def test_recipient_keys_are_checked_before_anything_starts(start_node, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a")
    client = connect(node)
    recipient = generate_recipient_key()

    def request(**fields: object) -> pb.StartSignRequest:
        base: dict[str, object] = dict(
            session_id=sid("bad-key"),
            protocol=GG20,
            key_id="ab" * 32,
            message=bytes(32),
            party_ids=list(PARTIES),
            self_party_id="signer-a",
        )
        return pb.StartSignRequest(**{**base, **fields})  # type: ignore[arg-type]

    code, message = await status_of(client.start_sign(request(result_recipient_key=b"\x04" * 10)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "result_recipient_key" in message
    code, message = await status_of(
        client.start_sign(
            request(result_recipient_key=public_bytes(recipient), signature_encoding=pb.SIGNATURE_ENCODING_DER)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "DER" in message
    compressed = recipient.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    assert len(compressed) == 33  # accepted by the host's check; this key simply does not exist
    code, message = await status_of(client.start_sign(request(result_recipient_key=compressed)))
    assert code == grpc.StatusCode.NOT_FOUND
