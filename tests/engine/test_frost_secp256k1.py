"""FROST(secp256k1, SHA-256) and FROST Taproot through the engine: DKG, every signer set, the
Taproot merkle root, request checks and the policy approval that covers the root.

Signatures are checked independently: coincurve's BIP340 verifier for Taproot, ZF frost
(frost_rs) and signer.client.verify's Schnorr check for FROST(secp256k1)."""

from __future__ import annotations

import base64
import itertools
import time
from pathlib import Path

import pytest
from coincurve import PublicKeyXOnly
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from frost_rs import utility_secp256k1

from door.digests import frost_digest
from enclave.crypto.primes import FixtureSource
from enclave.engine.approval import encode_approval
from enclave.engine.keyids import key_id
from enclave.errors import RequestRejected
from enclave.group.secp256k1 import SECP256K1
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from enclave.protocols.frost import taproot, wire
from enclave.protocols.frost.ciphersuite import FROST_SECP256K1
from enclave.protocols.frost.keys import PublicKeyPackage
from mpc.v1 import enclave_pb2 as pb
from signer.client.verify import verify_frost_secp256k1
from tests.engine import relay

SECP = pb.PROTOCOL_FROST_SECP256K1
TR = pb.PROTOCOL_FROST_SECP256K1_TR
PARTIES = ("alice", "bob", "carol")


def check(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> None:
    if protocol == TR:
        assert len(public_key) == 32 and len(signature) == 64
        assert PublicKeyXOnly(public_key).verify(signature, message)
        assert not PublicKeyXOnly(public_key).verify(signature, message + b"x")
        return
    assert len(public_key) == 33 and len(signature) == 65
    package = wire.encode_public_key_package(FROST_SECP256K1, PublicKeyPackage({}, public_key, None))
    b64 = base64.urlsafe_b64encode
    assert utility_secp256k1.verify(message, b64(package).decode(), b64(signature).decode())
    assert verify_frost_secp256k1(public_key, message, signature)
    assert not verify_frost_secp256k1(public_key, message + b"x", signature)


async def frost_key(engines, protocol, parties, threshold, sid="dkg"):  # type: ignore[no-untyped-def]
    starts = {p: relay.dkg(sid, protocol, parties, threshold, p) for p in parties}
    return relay.results(await relay.run(engines, starts))


def taproot_sign(sid, signers, me, share, message, root=b"", approval=None):  # type: ignore[no-untyped-def]
    start = relay.sign(sid, TR, signers, me, share, message, approval=approval)
    start.taproot_merkle_root = root
    return start


@pytest.mark.parametrize("protocol", [SECP, TR], ids=["frost-secp256k1", "frost-secp256k1-tr"])
async def test_dkg_then_every_signer_set_signs(tmp_path: Path, prime_source: FixtureSource, protocol: int) -> None:
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    name = "frost-secp256k1" if protocol == SECP else "frost-secp256k1-tr"
    try:
        res = await frost_key(engines, protocol, PARTIES, 2)
        first = res["alice"]
        assert len(first.public_key) == (33 if protocol == SECP else 32) and len(first.chain_code) == 32
        assert first.key_id == key_id(name, "dkg", 2, PARTIES, first.public_key)
        assert all((r.key_id, r.public_key) == (first.key_id, first.public_key) for r in res.values())
        for k, signers in enumerate(itertools.combinations(PARTIES, 2)):
            message = f"message {k} for {signers}".encode()
            starts = {p: relay.sign(f"sign-{k}", protocol, signers, p, res[p].sealed_share, message) for p in signers}
            out = relay.results(await relay.run(engines, starts))
            sig = out[signers[0]].signature
            assert all(o.signature == sig and o.public_key == first.public_key for o in out.values())
            check(protocol, first.public_key, message, sig)
    finally:
        for e in engines.values():
            e.close()


async def test_taproot_merkle_root(tmp_path: Path, prime_source: FixtureSource) -> None:
    parties = PARTIES[:2]
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        res = await frost_key(engines, TR, parties, 2)
        internal = SECP256K1.encode(SECP256K1.lift_x(res["alice"].public_key))
        root = bytes(range(32))
        starts = {p: taproot_sign("tr-root", parties, p, res[p].sealed_share, b"spend", root) for p in parties}
        out = relay.results(await relay.run(engines, starts))
        output_key = taproot.tweaked_public_key(internal, root)[1:]
        assert out["alice"].public_key == output_key != res["alice"].public_key
        check(TR, output_key, b"spend", out["alice"].signature)
        assert not PublicKeyXOnly(res["alice"].public_key).verify(out["alice"].signature, b"spend")

        async def refused(start: pb.SessionStart) -> str:
            with pytest.raises(RequestRejected) as exc:
                await engines["alice"].start(start)
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
            return exc.value.message

        share = res["alice"].sealed_share
        assert "32 bytes" in await refused(taproot_sign("short", parties, "alice", share, b"m", bytes(31)))
        dkg = relay.dkg("dkg-root", TR, parties, 2, "alice")
        dkg.taproot_merkle_root = root
        assert "no taproot_merkle_root" in await refused(dkg)
        secp = await frost_key(engines, SECP, parties, 2, sid="secp-dkg")
        start = relay.sign("secp-root", SECP, parties, "alice", secp["alice"].sealed_share, b"m")
        start.taproot_merkle_root = root
        assert "PROTOCOL_FROST_SECP256K1_TR only" in await refused(start)
        # a Taproot share is not a FROST(secp256k1) share, nor the other way round
        with pytest.raises(RequestRejected) as exc:
            await engines["alice"].start(relay.sign("cross", SECP, parties, "alice", share, b"m"))
        assert exc.value.code == pb.ERROR_CODE_SEALED_BLOB_INVALID
        assert engines["alice"].running() == 0
    finally:
        for e in engines.values():
            e.close()


async def test_policy_approval_covers_the_merkle_root(tmp_path: Path, prime_source: FixtureSource) -> None:
    parties = PARTIES[:2]
    policy_key = ec.generate_private_key(ec.SECP256R1())
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        res = await frost_key(engines, TR, parties, 2)
        for e in engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        kid, message, root = res["alice"].key_id, b"spend this", bytes([7]) * 32

        def approve(sid: str, digest: bytes) -> pb.PolicyApproval:
            expires = int(time.time()) + 60
            signed = approval_message(ApprovalSubject(kid, "sha256", digest, (), "", sid), expires)
            return encode_approval(expires, policy_key.sign(signed, ec.ECDSA(hashes.SHA256())))

        # an approval of the message alone does not approve it under a script tree's key
        for sid, digest in (("p1", frost_digest(message)), ("p2", frost_digest(message, bytes(32)))):
            start = taproot_sign(sid, parties, "alice", res["alice"].sealed_share, message, root, approve(sid, digest))
            with pytest.raises(RequestRejected) as exc:
                await engines["alice"].start(start)
            assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
        good = approve("p3", frost_digest(message, root))
        starts = {p: taproot_sign("p3", parties, p, res[p].sealed_share, message, root, good) for p in parties}
        out = relay.results(await relay.run(engines, starts))
        check(TR, out["alice"].public_key, message, out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()


def test_host_and_enclave_agree_on_the_approval_digest() -> None:
    """The host asks the policy service about the digest the enclave will rebuild (and audits it)."""
    from signer.api.operations import audit_digest
    from signer.policy.approvals import signed_digest

    message, root = b"spend", bytes([9]) * 32
    for protocol, start_root, enclave_digest in (
        (pb.PROTOCOL_FROST_ED25519, b"", frost_digest(message)),
        (SECP, b"", frost_digest(message)),
        (TR, b"", frost_digest(message)),
        (TR, root, frost_digest(message, root)),
    ):
        start = pb.SessionStart(protocol=protocol, message=message, taproot_merkle_root=start_root)
        assert signed_digest(start) == ("sha256", enclave_digest)
        assert audit_digest(start) == enclave_digest.hex()
    assert frost_digest(message, root) != frost_digest(message)
    gg20 = pb.SessionStart(protocol=pb.PROTOCOL_GG20_SECP256K1, message=bytes(32))
    assert signed_digest(gg20) == ("raw", bytes(32))
