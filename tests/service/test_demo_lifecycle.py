"""`mpc-signer demo --lifecycle` (signer.ops.lifecycle_demo) against a real signer node over mTLS:
a 2-of-3 key made, refreshed and recovered for a lost client share, signing after each step with
one public key, each old key retired. The local parties take fixture primes here (the command
searches for its own); every signature is checked again here independently."""

from __future__ import annotations

import hashlib

import coincurve
import grpc
import nacl.signing
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.local import LocalNode
from signer.ops.lifecycle_demo import LIFECYCLE_PROTOCOLS, lifecycle_verified, run_lifecycle
from tests.service.fixture_enclave import prime_slice


def check(protocol: str, public_key: bytes, message: bytes, signature: bytes) -> None:
    if protocol == "frost-ed25519":
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    else:
        digest = hashlib.sha256(message).digest()
        recovered = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        assert recovered.format() == public_key


async def test_lifecycle_keeps_one_public_key(start_node, connect, ring: HmacKeyRing) -> None:  # type: ignore[no-untyped-def]
    node = start_node("lifecycle-signer", enclave_args=["--allow-reshare-without-policy"])
    signer = connect(node)
    # one prime source per party name: the recovered client never brings the lost one's primes
    sources = {"client": prime_slice(0), "backup": prime_slice(2)}

    def make(name: str) -> LocalNode:
        return LocalNode(ring, prime_source=sources[name], deal_without_policy=name == "backup")

    summary = [await run_lifecycle(p, signer, make) for p in LIFECYCLE_PROTOCOLS]
    assert lifecycle_verified(summary)
    assert [item["protocol"] for item in summary] == ["frost-ed25519", "gg20-secp256k1"]
    for item in summary:
        public_key = bytes.fromhex(item["public_key"])
        assert item["one_public_key"] is True
        assert [s["step"] for s in item["steps"]] == ["make", "refresh", "recover"]
        made, refreshed, recovered = item["steps"]
        assert made["predecessor_key_id"] is None
        assert refreshed["predecessor_key_id"] == made["key_id"]
        assert recovered["predecessor_key_id"] == refreshed["key_id"]
        for step in item["steps"]:
            assert step["verified"] is True and step["signers"] == ["client", "signer"]
            check(item["protocol"], public_key, step["message"].encode(), bytes.fromhex(step["signature"]))
        states = [(await signer.get_key(s["key_id"])).state for s in item["steps"]]
        assert states == [pb.KEY_STATE_RETIRED, pb.KEY_STATE_RETIRED, pb.KEY_STATE_ACTIVE]
        assert (await signer.get_key(recovered["key_id"])).public_key == public_key


async def test_lifecycle_stops_at_a_signer_that_may_not_deal(start_node, connect, ring: HmacKeyRing) -> None:  # type: ignore[no-untyped-def]
    """Without --allow-reshare-without-policy (and no policy) the signer refuses the recovery: the
    demo fails with the enclave's reason, and the refreshed key stays the ACTIVE one."""
    node = start_node("lifecycle-strict")
    signer = connect(node)
    sources = {"client": prime_slice(0), "backup": prime_slice(2)}

    def make(name: str) -> LocalNode:
        return LocalNode(ring, prime_source=sources[name], deal_without_policy=name == "backup")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await run_lifecycle(pb.PROTOCOL_FROST_ED25519, signer, make)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--allow-reshare-without-policy" in (refused.value.details() or "")
    keys = (await signer.list_keys(protocol=pb.PROTOCOL_FROST_ED25519)).keys
    active = [k for k in keys if k.state == pb.KEY_STATE_ACTIVE]
    assert len(keys) == 2 and len(active) == 1, keys  # the made key (retired) and its refresh
    assert active[0].predecessor_key_id and all(k.public_key == active[0].public_key for k in keys)
