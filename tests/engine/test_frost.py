"""FROST through the engine: DKG, signing by every allowed signer set, checked by PyNaCl."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine.keyids import key_id
from enclave.errors import RequestRejected
from enclave.group.ed25519 import ED25519
from enclave.protocols.driver import Frame
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import FROST

PARTIES = ("alice", "bob", "carol")


async def frost_key(engines, parties, threshold, sid="frost-dkg"):  # type: ignore[no-untyped-def]
    starts = {p: relay.dkg(sid, FROST, parties, threshold, p) for p in parties}
    return relay.results(await relay.run(engines, starts))


@pytest.mark.parametrize(("n", "t"), [(2, 2), (3, 2)])
async def test_dkg_then_every_signer_set_signs(tmp_path: Path, prime_source: FixtureSource, n: int, t: int) -> None:
    parties = PARTIES[:n]
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        res = await frost_key(engines, parties, t)
        first = res[parties[0]]
        assert len(first.public_key) == 32 and len(first.chain_code) == 32
        assert first.key_id == key_id("frost-ed25519", "frost-dkg", t, parties, first.public_key)
        for r in res.values():
            assert (r.key_id, r.public_key) == (first.key_id, first.public_key)
            assert r.sealed_share.kind == pb.SEALED_BLOB_KIND_KEY_SHARE and r.sealed_share.id == first.key_id
        for k, signers in enumerate(itertools.combinations(parties, t)):
            message = f"message {k} for {signers}".encode() * 50
            starts = {
                p: relay.sign(f"frost-sign-{k}", FROST, signers, p, res[p].sealed_share, message) for p in signers
            }
            out = relay.results(await relay.run(engines, starts))
            sig = out[signers[0]].signature
            assert len(sig) == 64 and all(o.signature == sig for o in out.values())
            assert all(o.public_key == first.public_key for o in out.values())
            VerifyKey(first.public_key).verify(message, sig)
            with pytest.raises(BadSignatureError):
                VerifyKey(first.public_key).verify(message + b"x", sig)
    finally:
        for e in engines.values():
            e.close()


async def test_signer_set_rules(tmp_path: Path, prime_source: FixtureSource) -> None:
    engines = relay.make_engines(PARTIES, tmp_path, prime_source)
    try:
        res = await frost_key(engines, PARTIES, 3)
        share = res["alice"].sealed_share

        async def refused(signers: list[str], me: str = "alice") -> str:
            with pytest.raises(RequestRejected) as exc:
                await engines["alice"].start(relay.sign("s", FROST, signers, me, share, b"m"))
            assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT
            return exc.value.message

        assert "at least 3" in await refused(["alice", "bob"])
        assert "'dave'" in await refused(["alice", "bob", "dave"])
        assert "self_party_id" in await refused(["bob", "carol", "dave"])
        # alice's share presented as bob's
        assert "self_party_id" in await refused(["alice", "bob", "carol"], me="bob")
        assert engines["alice"].running() == 0
    finally:
        for e in engines.values():
            e.close()


async def test_sealed_share_altered_or_rebound(tmp_path: Path, prime_source: FixtureSource) -> None:
    """The sealed share's key packages are decoded without subgroup checks, so the sealing AEAD
    must stand in front: any changed byte, or a share moved to another key, is refused."""
    parties = PARTIES[:2]
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        share = (await frost_key(engines, parties, 2))["alice"].sealed_share
        other = (await frost_key(engines, parties, 2, sid="frost-dkg-2"))["alice"].sealed_share

        async def rejected(blob: pb.SealedBlob, sid: str) -> None:
            with pytest.raises(RequestRejected) as exc:
                await engines["alice"].start(relay.sign(sid, FROST, parties, "alice", blob, b"m"))
            assert exc.value.code == pb.ERROR_CODE_SEALED_BLOB_INVALID, exc.value.message

        for pos in (3, 20, len(share.data) // 2, len(share.data) - 40, len(share.data) - 1):
            data = bytearray(share.data)
            data[pos] ^= 0x01
            await rejected(pb.SealedBlob(kind=share.kind, id=share.id, data=bytes(data)), f"alt-{pos}")
        await rejected(pb.SealedBlob(kind=share.kind, id=other.id, data=share.data), "moved")
        assert engines["alice"].running() == 0
    finally:
        for e in engines.values():
            e.close()


async def test_bad_signature_share_names_its_sender(tmp_path: Path, prime_source: FixtureSource) -> None:
    """Through the engine: the aggregate check fails, the per-share check names bob alone."""
    parties = PARTIES[:2]
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        res = await frost_key(engines, parties, 2)

        def bump_bobs_share(to: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
            frame = Frame.decode(m.payload)
            if m.sender != "bob" or frame.round != 2:
                return m
            z = (int.from_bytes(frame.body, "little") + 1) % ED25519.order
            bad = Frame(frame.round, frame.kind, frame.echo, z.to_bytes(32, "little"))
            return pb.EnclaveMessage(sender=m.sender, recipient=m.recipient, round=m.round, payload=bad.encode())

        starts = {p: relay.sign("bad-share", FROST, parties, p, res[p].sealed_share, b"m") for p in parties}
        out = await relay.run(engines, starts, tamper=bump_bobs_share)
        assert out["alice"].state == relay.FAILED and list(out["alice"].culprits) == ["bob"]
        assert "invalid signature share" in out["alice"].reason
        assert out["bob"].state == relay.DONE  # alice's share was fine
        VerifyKey(res["bob"].public_key).verify(b"m", out["bob"].result.signature)
    finally:
        for e in engines.values():
            e.close()
