"""Presignatures bound to what they sign (CVE-2025-66017, RUSTSEC-2025-0127), through the real
processes: the caller's local party (the engine in process) and a signer host in front of a real
enclave process, over mTLS.

The attacker holds the host, or is the caller: it asks a presignature to sign a bare digest whose
message no enclave saw, or picks the derivation path after the presignature (its nonce) exists,
through the API and straight on the enclave's socket. Each is refused with FAILED_PRECONDITION and
a message saying why, and nothing is signed. What is allowed signs: every hash rule's digest is
computed by the enclave exactly as hashlib / pycryptodome / eth_keys compute it, and every
signature verifies with libsecp256k1 and recovers the right EVM address, for the key and for
derived keys, with and without presignatures.
"""

from __future__ import annotations

import hashlib

import grpc
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_keys import keys as eth_keys

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.engine.test_gg20 import ckd_pub
from tests.service.conftest import GG20, KECCAK, check_signature, dkg, keccak, presign, sign, status_of
from tests.service.test_single_use import PARTIES, presig_row, straight_to_the_enclave

TEXT = b"transfer 5 ETH to 0x00000000000000000000000000000000000000cc"


@pytest.fixture(scope="module")
def node(start_node):  # type: ignore[no-untyped-def]
    return start_node("signer-a")


def audit(node, key_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    sql = "SELECT result, reason FROM audit WHERE key_id = ? AND operation = 'sign' ORDER BY id"
    return [(r[0], r[1]) for r in node.raw_sql(sql, (key_id,))]


async def refused_start(client, **fields) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    request = pb.StartSignRequest(protocol=GG20, party_ids=PARTIES, self_party_id="signer-a", **fields)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(request)
    return err.value.code(), err.value.details() or ""


async def test_a_bare_digest_is_not_signed_with_a_presignature(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, GG20, PARTIES, 2)
    digest = keccak(TEXT)
    for i, rule in enumerate((pb.MESSAGE_HASH_UNSPECIFIED, pb.MESSAGE_HASH_RAW)):
        pid = await presign(relay, PARTIES, key.key_id)
        kept = presig_row(node, pid)
        code, details = await refused_start(
            client, session_id=f"bare-{i}", key_id=key.key_id, message=digest, presignature_id=pid, message_hash=rule
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "bare digest" in details and "message_hash" in details, details
        # The host itself, on the enclave's socket with the kept blob: refused the same way.
        refusal = await straight_to_the_enclave(node, key.key_id, kept, pid, digest, rule)
        assert refusal.code == epb.ERROR_CODE_FAILED_PRECONDITION and "bare digest" in refusal.message
        # Nothing started, so nothing was signed.
        assert (await status_of(client.sign_status(f"bare-{i}")))[0] == grpc.StatusCode.NOT_FOUND
    assert audit(node, key.key_id) == [] and local.engine.running() == 0
    # A bare digest signed interactively (presigning in the same session) is fine, and so is the
    # message with its hash rule and a presignature.
    check_signature(GG20, key.public_key, digest, await sign(relay, GG20, PARTIES, key.key_id, digest))
    pid = await presign(relay, PARTIES, key.key_id)
    result = await sign(relay, GG20, PARTIES, key.key_id, TEXT, pid, message_hash=KECCAK)
    assert result.presignature_id == pid
    check_signature(GG20, key.public_key, digest, result)


async def test_a_path_chosen_after_presigning_is_refused(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, GG20, PARTIES, 2)
    for path, other, said in (((), (7,), "m, not m/7"), ((44, 60, 0, 0, 9), (44, 60, 0, 0, 8), "m/44/60/0/0/9")):
        pid = await presign(relay, PARTIES, key.key_id, path)
        kept = presig_row(node, pid)
        code, details = await refused_start(
            client,
            session_id=f"late-{len(path)}",
            key_id=key.key_id,
            message=TEXT,
            presignature_id=pid,
            message_hash=KECCAK,
            derivation_path=other,
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "derivation path" in details and said in details, details
        refusal = await straight_to_the_enclave(node, key.key_id, kept, pid, TEXT, epb.MESSAGE_HASH_KECCAK256, other)
        assert refusal.code == epb.ERROR_CODE_FAILED_PRECONDITION and "derivation path" in refusal.message
        assert (await status_of(client.sign_status(f"late-{len(path)}")))[0] == grpc.StatusCode.NOT_FOUND
    assert audit(node, key.key_id) == []  # no signature
    # The path fixed at presigning signs, under the child key (BIP32 CKDpub written out in the test).
    path = (44, 60, 0, 0, 9)
    pid = await presign(relay, PARTIES, key.key_id, path)
    result = await sign(relay, GG20, PARTIES, key.key_id, TEXT, pid, message_hash=KECCAK, path=path)
    child = ckd_pub(key.public_key, key.chain_code, path)
    assert result.public_key == child != key.public_key
    check_signature(GG20, child, keccak(TEXT), result)


def k256(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


EIP191 = b"\x19Ethereum Signed Message:\n" + str(len(TEXT)).encode() + TEXT
RULES = {
    pb.MESSAGE_HASH_SHA256: hashlib.sha256(TEXT).digest(),
    pb.MESSAGE_HASH_DOUBLE_SHA256: hashlib.sha256(hashlib.sha256(TEXT).digest()).digest(),
    pb.MESSAGE_HASH_KECCAK256: k256(TEXT),
    pb.MESSAGE_HASH_ETH_PERSONAL: k256(EIP191),
}


@pytest.mark.parametrize("rule", list(RULES), ids=lambda r: pb.MessageHash.Name(r))
async def test_each_hash_rule_signs_the_digest_it_names(node, local, connect, rule) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, GG20, PARTIES, 2)
    expected = RULES[rule]
    path = (0, 5)
    child = ckd_pub(key.public_key, key.chain_code, path)
    cases = [
        ("presigned", (), key.public_key),
        ("presigned, derived", path, child),
        ("interactive", (), key.public_key),
        ("interactive, derived", path, child),
    ]
    for what, p, public_key in cases:
        pid = await presign(relay, PARTIES, key.key_id, p) if what.startswith("presigned") else ""
        result = await sign(relay, GG20, PARTIES, key.key_id, TEXT, pid, message_hash=rule, path=p)
        assert result.digest == expected, what
        check_signature(GG20, public_key, expected, result)  # libsecp256k1 and EVM address recovery
        if rule == pb.MESSAGE_HASH_ETH_PERSONAL:  # eth_keys hashes the EIP-191 bytes itself
            recovered = eth_keys.Signature(result.signature).recover_public_key_from_msg(EIP191)
            assert recovered == eth_keys.PublicKey.from_compressed_bytes(public_key), what
