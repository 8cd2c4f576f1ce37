"""GG20 through the engine: DKG, presign + sign, direct sign, BIP32 children, sealed-blob and
single-use rules. Every signature is checked by coincurve (with recovery) and by cryptography."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from enclave.engine.keyids import key_id
from enclave.errors import RequestRejected
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import GG20, Key

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SHA256 = pb.MESSAGE_HASH_SHA256


def ckd_pub(public_key: bytes, chain_code: bytes, path: tuple[int, ...]) -> bytes:
    """BIP32 CKDpub written from the spec with coincurve (independent of enclave.protocols.gg20.bip32)."""
    key, code = PublicKey(public_key), chain_code
    for i in path:
        digest = hmac.new(code, key.format(compressed=True) + i.to_bytes(4, "big"), hashlib.sha512).digest()
        key = key.add(digest[:32])
        code = digest[32:]
    return key.format(compressed=True)


def check_ecdsa(result: pb.SessionResult, digest: bytes, expected_key: bytes) -> None:
    sig = result.signature
    assert len(sig) == 65 and result.public_key == expected_key
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    assert 0 < s <= ORDER // 2, "low s"
    assert v == result.recovery_id and v in (0, 1)
    der = encode_dss_signature(r, s)
    assert PublicKey(expected_key).verify(der, digest, hasher=None)
    recovered = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    assert recovered.format(compressed=True) == expected_key
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), expected_key)
    pub.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


async def presign_for(
    key: Key, signers: tuple[str, ...], sid: str, path: tuple[int, ...] = ()
) -> dict[str, pb.SealedBlob]:
    starts = {p: relay.presign(sid, signers, p, key.shares[p], path) for p in signers}
    res = relay.results(await relay.run(key.engines, starts))
    blobs = {p: r.sealed_presignatures[0] for p, r in res.items()}
    assert all(len(r.sealed_presignatures) == 1 for r in res.values())
    ids = {b.id for b in blobs.values()}
    assert len(ids) == 1, "presignature id is equal at every signer"
    assert all(b.kind == pb.SEALED_BLOB_KIND_PRESIGNATURE for b in blobs.values())
    return blobs


async def sign_with(
    key: Key,
    signers: tuple[str, ...],
    sid: str,
    digest: bytes,
    presigs: dict[str, pb.SealedBlob] | None = None,
    path: tuple[int, ...] = (),
    message_hash: int = pb.MESSAGE_HASH_UNSPECIFIED,
) -> dict[str, pb.SessionUpdate]:
    starts = {
        p: relay.sign(
            sid,
            GG20,
            signers,
            p,
            key.shares[p],
            digest,
            path=path,
            presignature=presigs[p] if presigs else None,
            message_hash=message_hash,
        )
        for p in signers
    }
    return await relay.run(key.engines, starts)


def test_dkg_results(gg20_2of2: Key, gg20_2of3: Key) -> None:
    for key in (gg20_2of2, gg20_2of3):
        assert len(key.public_key) == 33 and key.public_key[0] in (2, 3)
        assert len(key.chain_code) == 32
        sid = "gg20-dkg-2of2" if key is gg20_2of2 else "gg20-dkg-2of3"
        assert key.key_id == key_id("gg20-secp256k1", sid, key.threshold, key.parties, key.public_key)
        assert all(s.id == key.key_id and s.kind == pb.SEALED_BLOB_KIND_KEY_SHARE for s in key.shares.values())
        PublicKey(key.public_key)  # a valid point


async def test_2of3_every_pair_presign_then_sign(gg20_2of3: Key) -> None:
    for k, pair in enumerate(itertools.combinations(gg20_2of3.parties, 2)):
        presigs = await presign_for(gg20_2of3, pair, f"pre-3-{k}")
        text = f"pair {pair}".encode()
        digest = hashlib.sha256(text).digest()
        res = relay.results(await sign_with(gg20_2of3, pair, f"sig-3-{k}", text, presigs, message_hash=SHA256))
        for r in res.values():
            check_ecdsa(r, digest, gg20_2of3.public_key)
            assert r.digest == digest
            assert r.presignature_id == presigs[pair[0]].id and r.key_id == gg20_2of3.key_id


async def test_2of3_direct_sign_with_derived_path(gg20_2of3: Key) -> None:
    pair, path = ("carol", "alice"), (0, 7, 2**31 - 1)
    digest = hashlib.sha256(b"direct, derived").digest()
    res = relay.results(await sign_with(gg20_2of3, pair, "direct-3", digest, path=path))
    child = ckd_pub(gg20_2of3.public_key, gg20_2of3.chain_code, path)
    assert child != gg20_2of3.public_key
    for r in res.values():
        check_ecdsa(r, digest, child)
        assert r.presignature_id == ""


async def test_2of2_presign_sign_derived_and_direct(gg20_2of2: Key) -> None:
    pair = gg20_2of2.parties
    path = (44, 60, 0, 0, 5)
    presigs = await presign_for(gg20_2of2, pair, "pre-2", path)
    digest = hashlib.sha256(b"two of two").digest()
    res = relay.results(await sign_with(gg20_2of2, pair, "sig-2", b"two of two", presigs, path, SHA256))
    for r in res.values():
        check_ecdsa(r, digest, ckd_pub(gg20_2of2.public_key, gg20_2of2.chain_code, path))
    res = relay.results(await sign_with(gg20_2of2, pair, "direct-2", digest))
    for r in res.values():
        check_ecdsa(r, digest, gg20_2of2.public_key)


async def test_presignature_single_use(gg20_2of2: Key) -> None:
    pair = gg20_2of2.parties
    presigs = await presign_for(gg20_2of2, pair, "pre-once")
    relay.results(await sign_with(gg20_2of2, pair, "once-1", b"first", presigs, message_hash=SHA256))
    for p in pair:
        with pytest.raises(RequestRejected) as exc:
            await gg20_2of2.engines[p].start(
                relay.sign(
                    "once-2",
                    GG20,
                    pair,
                    p,
                    gg20_2of2.shares[p],
                    b"second",
                    presignature=presigs[p],
                    message_hash=SHA256,
                )
            )
        assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION
        assert exc.value.message == "presignature already used"


async def test_sealed_blob_altered_or_rebound(gg20_2of2: Key, gg20_2of3: Key) -> None:
    engine, share = gg20_2of2.engines["alice"], gg20_2of2.shares["alice"]
    digest = bytes(32)

    async def rejected(start: pb.SessionStart) -> str:
        with pytest.raises(RequestRejected) as exc:
            await engine.start(start)
        assert exc.value.code == pb.ERROR_CODE_SEALED_BLOB_INVALID, exc.value.message
        return exc.value.message

    for pos in (0, 1, 20, len(share.data) // 2, len(share.data) - 1):
        data = bytearray(share.data)
        data[pos] ^= 0x01
        bad = pb.SealedBlob(kind=share.kind, id=share.id, data=bytes(data))
        await rejected(relay.sign(f"alt-{pos}", GG20, gg20_2of2.parties, "alice", bad, digest))
    # alice's share of one key presented under another key's id: the binding does not match
    other = gg20_2of3.key_id
    moved = pb.SealedBlob(kind=share.kind, id=other, data=share.data)
    message = await rejected(relay.sign("moved", GG20, ("alice", "bob"), "alice", moved, digest))
    assert "authentication" in message
    # a FROST session given a GG20 share
    await rejected(relay.sign("proto", pb.PROTOCOL_FROST_ED25519, ("alice", "bob"), "alice", share, b"m"))
    # a presignature altered
    presigs = await presign_for(gg20_2of2, gg20_2of2.parties, "pre-alt")
    data = bytearray(presigs["alice"].data)
    data[-5] ^= 0x80
    bad_presig = pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PRESIGNATURE, id=presigs["alice"].id, data=bytes(data))
    await rejected(
        relay.sign(
            "alt-pre", GG20, gg20_2of2.parties, "alice", share, b"m", presignature=bad_presig, message_hash=SHA256
        )
    )
    # a presignature under another id
    renamed = pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PRESIGNATURE, id="f" * 64, data=presigs["alice"].data)
    await rejected(
        relay.sign("ren-pre", GG20, gg20_2of2.parties, "alice", share, b"m", presignature=renamed, message_hash=SHA256)
    )
    # the presignature still works for its own signers afterwards
    assert engine.running() == 0


async def test_bad_sign_requests(gg20_2of3: Key) -> None:
    engine, share = gg20_2of3.engines["alice"], gg20_2of3.shares["alice"]
    pair = ("alice", "bob")
    cases = [
        relay.sign("d31", GG20, pair, "alice", share, bytes(31)),
        relay.sign("d33", GG20, pair, "alice", share, bytes(33)),
        relay.sign("hard", GG20, pair, "alice", share, bytes(32), path=(1, 2**31)),
        relay.sign("outsider", GG20, ("alice", "mallory"), "alice", share, bytes(32)),
    ]
    for start in cases:
        with pytest.raises(RequestRejected) as exc:
            await engine.start(start)
        assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT, start.session_id
    presigs = await presign_for(gg20_2of3, ("alice", "bob"), "pre-set")
    with pytest.raises(RequestRejected) as exc:
        await engine.start(
            relay.sign(
                "set",
                GG20,
                ("alice", "carol"),
                "alice",
                share,
                b"m",
                presignature=presigs["alice"],
                message_hash=SHA256,
            )
        )
    assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT and "signer set" in exc.value.message
    assert engine.running() == 0


async def test_direct_sign_holds_an_early_online_message(gg20_2of2: Key) -> None:
    """Bob gets Alice's round-5 (online) share before her round-4 presign message: it is held
    until his presign phase ends, then applied."""
    pair, digest = gg20_2of2.parties, hashlib.sha256(b"out of order").digest()
    held: list[pb.EnclaveMessage] = []

    def hold_alice_round4(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage | None:
        if m.sender == "alice" and m.round == 4:
            held.append(m)
            return None
        return m

    starts = {p: relay.sign("early", GG20, pair, p, gg20_2of2.shares[p], digest) for p in pair}
    updates = await relay.run(gg20_2of2.engines, starts, hold_alice_round4)
    assert held and all(u.state == relay.RUNNING for u in updates.values())
    bob = await gg20_2of2.engines["bob"].deliver(pb.SessionDeliver(session_id="early", messages=held))
    assert bob.state == relay.DONE, bob.reason
    assert [m.round for m in bob.outgoing] == [5]
    alice = await gg20_2of2.engines["alice"].deliver(pb.SessionDeliver(session_id="early", messages=bob.outgoing))
    assert alice.state == relay.DONE
    check_ecdsa(alice.result, digest, gg20_2of2.public_key)
    assert alice.result.signature == bob.result.signature


async def test_round_out_of_range_and_duplicate_held_message_abort(gg20_2of2: Key) -> None:
    pair = gg20_2of2.parties
    for sid, rounds in (("range", [9]), ("dup", [5, 5])):
        starts = {p: relay.sign(sid, GG20, pair, p, gg20_2of2.shares[p], bytes(32)) for p in pair}
        engine = gg20_2of2.engines["alice"]
        await engine.start(starts["alice"])
        msgs = [pb.EnclaveMessage(sender="bob", round=r, payload=b"\x01\x00\x01\x00\x00\x00") for r in rounds]
        u = await engine.deliver(pb.SessionDeliver(session_id=sid, messages=msgs))
        assert u.state == relay.FAILED and list(u.culprits) == ["bob"], u.reason
        with pytest.raises(RequestRejected) as exc:
            await engine.deliver(pb.SessionDeliver(session_id=sid, messages=msgs))
        assert exc.value.code == pb.ERROR_CODE_FAILED_PRECONDITION
