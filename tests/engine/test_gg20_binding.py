"""Presignatures bound to what they sign, through the engine (CVE-2025-66017): the enclave
computes the digest from the message, refuses a bare digest or another path with a
presignature before anything is consumed, and its policy approvals (v2) name the hash rule,
digest, path and presignature. Every signature is checked by coincurve and eth_keys."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from eth_keys import keys as eth_keys

from enclave.crypto.primes import FixtureSource
from enclave.engine.approval import encode_approval
from enclave.errors import RequestRejected
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import GG20, Key
from tests.engine.test_gg20 import check_ecdsa, ckd_pub, presign_for, sign_with

KECCAK = pb.MESSAGE_HASH_KECCAK256
TEXT = b"approve 0x00000000000000000000000000000000000000bb for 10 tokens"


def keccak(data: bytes) -> bytes:
    from Crypto.Hash import keccak as k

    return k.new(digest_bits=256, data=data).digest()


async def refused(key: Key, start: pb.SessionStart, code: int) -> str:
    with pytest.raises(RequestRejected) as exc:
        await key.engines[start.self_party_id].start(start)
    assert exc.value.code == code, exc.value.message
    return exc.value.message


def check_evm(result: pb.SessionResult, digest: bytes, public_key: bytes) -> None:
    check_ecdsa(result, digest, public_key)
    recovered = eth_keys.Signature(result.signature).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == eth_keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()


async def test_bare_digest_with_a_presignature_is_refused_and_nothing_used(gg20_2of2: Key) -> None:
    key, pair = gg20_2of2, gg20_2of2.parties
    presigs = await presign_for(key, pair, "bind-bare-pre")
    digest = keccak(TEXT)
    for rule in (pb.MESSAGE_HASH_UNSPECIFIED, pb.MESSAGE_HASH_RAW):
        for p in pair:
            start = relay.sign(
                "bind-bare", GG20, pair, p, key.shares[p], digest, presignature=presigs[p], message_hash=rule
            )
            message = await refused(key, start, pb.ERROR_CODE_FAILED_PRECONDITION)
            assert "bare digest" in message and "message_hash" in message
    assert all(e.running() == 0 for e in key.engines.values())
    # nothing was consumed: the same presignature signs the message itself
    res = relay.results(await sign_with(key, pair, "bind-bare-ok", TEXT, presigs, message_hash=KECCAK))
    for r in res.values():
        assert r.digest == digest
        check_evm(r, digest, key.public_key)
    # and a bare digest is always fine without a presignature (nonce fixed after the digest)
    for r in relay.results(await sign_with(key, pair, "bind-bare-direct", digest)).values():
        assert r.digest == digest and r.presignature_id == ""
        check_evm(r, digest, key.public_key)


async def test_a_path_chosen_after_presigning_is_refused(gg20_2of3: Key) -> None:
    key, pair = gg20_2of3, ("bob", "carol")
    root = await presign_for(key, pair, "bind-root")
    on_path = await presign_for(key, pair, "bind-path", (44, 60, 0, 0, 3))
    assert root["bob"].id != on_path["bob"].id
    cases = ((root, (7,), "m, not m/7"), (on_path, (), "m/44/60/0/0/3, not m"), (on_path, (44, 60, 0, 0, 4), "not"))
    for blobs, path, said in cases:
        start = relay.sign(
            "bind-late",
            GG20,
            pair,
            "bob",
            key.shares["bob"],
            TEXT,
            path=path,
            presignature=blobs["bob"],
            message_hash=KECCAK,
        )
        message = await refused(key, start, pb.ERROR_CODE_FAILED_PRECONDITION)
        assert "derivation path" in message and said in message, message
    digest = keccak(TEXT)
    for blobs, path in ((root, ()), (on_path, (44, 60, 0, 0, 3))):
        res = relay.results(await sign_with(key, pair, f"bind-ok-{len(path)}", TEXT, blobs, path, KECCAK))
        for r in res.values():
            check_evm(r, digest, ckd_pub(key.public_key, key.chain_code, path))


async def test_each_hash_rule_through_the_engine(gg20_2of2: Key) -> None:
    key, pair = gg20_2of2, gg20_2of2.parties
    expected = {
        pb.MESSAGE_HASH_SHA256: hashlib.sha256(TEXT).digest(),
        pb.MESSAGE_HASH_DOUBLE_SHA256: hashlib.sha256(hashlib.sha256(TEXT).digest()).digest(),
        pb.MESSAGE_HASH_KECCAK256: keccak(TEXT),
        pb.MESSAGE_HASH_ETH_PERSONAL: keccak(b"\x19Ethereum Signed Message:\n%d" % len(TEXT) + TEXT),
    }
    for rule, digest in expected.items():
        presigs = await presign_for(key, pair, f"bind-rule-pre-{rule}")
        res = relay.results(await sign_with(key, pair, f"bind-rule-{rule}", TEXT, presigs, message_hash=rule))
        for r in res.values():
            assert r.digest == digest, rule
            check_evm(r, digest, key.public_key)


async def test_bad_hash_requests(gg20_2of2: Key) -> None:
    key, share = gg20_2of2, gg20_2of2.shares["alice"]
    pair = key.parties
    cases = {
        "unknown rule": relay.sign("h1", GG20, pair, "alice", share, TEXT, message_hash=99),
        "long message": relay.sign("h2", GG20, pair, "alice", share, bytes(64 * 1024 + 1), message_hash=KECCAK),
        "raw not 32": relay.sign("h3", GG20, pair, "alice", share, TEXT, message_hash=pb.MESSAGE_HASH_RAW),
        "frost rule": relay.sign("h4", pb.PROTOCOL_FROST_ED25519, pair, "alice", share, TEXT, message_hash=KECCAK),
    }
    presign = relay.presign("h5", pair, "alice", share)
    presign.message = TEXT
    cases["presign with a message"] = presign
    cases["presign, hardened path"] = relay.presign("h6", pair, "alice", share, (2**31,))
    for what, start in cases.items():
        with pytest.raises(RequestRejected) as exc:
            await key.engines["alice"].start(start)
        assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT, what


async def test_allow_presigned_bare_digest_setting(tmp_path: Path, prime_source: FixtureSource) -> None:
    engines = relay.make_engines(("alice", "bob"), tmp_path, prime_source, allow_presigned_bare_digest=True)
    try:
        starts = {p: relay.dkg("bind-allow-dkg", GG20, ("alice", "bob"), 2, p) for p in engines}
        res = relay.results(await relay.run(engines, starts))
        shares = {p: r.sealed_share for p, r in res.items()}
        first = res["alice"]
        key = Key(engines, ("alice", "bob"), 2, shares, first.key_id, first.public_key, first.chain_code)
        presigs = await presign_for(key, key.parties, "bind-allow-pre")
        digest = keccak(TEXT)
        for r in relay.results(await sign_with(key, key.parties, "bind-allow", digest, presigs)).values():
            assert r.digest == digest
            check_evm(r, digest, key.public_key)
    finally:
        for e in engines.values():
            e.close()


async def test_approval_binds_rule_digest_path_and_presignature(gg20_2of3: Key) -> None:
    key, pair, path = gg20_2of3, ("alice", "carol"), (1, 2)
    policy_key = ec.generate_private_key(ec.SECP256R1())
    presigs = await presign_for(key, pair, "bind-pol-pre", path)
    other = await presign_for(key, pair, "bind-pol-other", path)
    pid, digest = presigs["alice"].id, keccak(TEXT)

    def approval(sid: str, **change: object) -> pb.PolicyApproval:
        fields = {
            "key_id": key.key_id,
            "message_hash": "keccak256",
            "digest": digest,
            "derivation_path": path,
            "presignature_id": pid,
            "session_id": sid,
            **change,
        }
        expires = int(time.time()) + 60
        signed = approval_message(ApprovalSubject(**fields), expires)  # type: ignore[arg-type]
        return encode_approval(expires, policy_key.sign(signed, ec.ECDSA(hashes.SHA256())))

    def start(sid: str, p: str, grant: pb.PolicyApproval, blobs: dict[str, pb.SealedBlob] = presigs) -> pb.SessionStart:
        return relay.sign(
            sid,
            GG20,
            pair,
            p,
            key.shares[p],
            TEXT,
            path=path,
            presignature=blobs[p],
            message_hash=KECCAK,
            approval=grant,
        )

    saved = {p: e.policy for p, e in key.engines.items()}
    try:
        for e in key.engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        denied = pb.ERROR_CODE_PERMISSION_DENIED
        for sid, grant in {
            "pol-digest": approval("pol-digest", digest=keccak(b"something else")),
            "pol-rule": approval("pol-rule", message_hash="sha256"),
            "pol-path": approval("pol-path", derivation_path=(1, 3)),
            "pol-presig": approval("pol-presig", presignature_id=other["alice"].id),
            "pol-none": approval("pol-none", presignature_id=""),
        }.items():
            assert "does not verify" in await refused(key, start(sid, "alice", grant), denied), sid
        # the right approval, used with another presignature: refused too
        assert "does not verify" in await refused(key, start("pol-swap", "alice", approval("pol-swap"), other), denied)
        v1 = approval("pol-v1")
        v1.version = 1
        assert "v1" in await refused(key, start("pol-v1", "alice", v1), denied)
        good = {p: start("pol-ok", p, approval("pol-ok")) for p in pair}
        for r in relay.results(await relay.run(key.engines, good)).values():
            assert r.presignature_id == pid
            check_evm(r, digest, ckd_pub(key.public_key, key.chain_code, path))
        assert PublicKey(key.public_key).format() == key.public_key
    finally:
        for p, e in key.engines.items():
            e.policy = saved[p]
