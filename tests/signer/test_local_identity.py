"""The SDK's local party has an identity key, as an enclave does: a reshare lists
`LocalNode.identity_public_key` in new_party_keys for a local party new to the key, and the
node's engine signs that party's round-one message with the same key."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from enclave.protocols.reshare_auth import signed_message, verify_signature
from signer.auth.envelope import HmacKeyRing
from signer.client.local import LocalNode


async def test_a_local_node_signs_with_the_key_it_shows() -> None:
    keys = HmacKeyRing({"k": b"k" * 32}, "k")
    one, two = LocalNode(keys), LocalNode(keys)
    try:
        shown = one.identity_public_key
        assert len(shown) == 65 and shown != two.identity_public_key
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), shown)
        message = signed_message("frost-ED25519/reshare", b"sid", 3, b"payload")
        assert verify_signature(key, one.engine.identity.sign(message), message)
        assert not verify_signature(key, two.engine.identity.sign(message), message)
    finally:
        await one.close()
        await two.close()
