"""FROST derivation through the engine: what the enclave itself refuses (whatever the host let
through), keys made before FROST DKGs had a chain code, and the policy approval binding the
path. Signatures checked by libsodium (PyNaCl) under the key computed from the rule alone."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, EngineConfig, blobs
from enclave.engine.approval import encode_approval
from enclave.errors import RequestRejected
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from enclave.sealing import Binding, Sealer, generate_key_file
from mpc.v1 import enclave_pb2 as pb
from tests.enclave.frost import derivation_rule
from tests.engine import relay
from tests.engine.conftest import FROST

PARTIES = ("alice", "bob")


def _engines(tmp_path: Path, source: FixtureSource) -> tuple[dict[str, Engine], dict[str, Sealer]]:
    sealers = {p: generate_key_file(tmp_path / f"{p}.key") for p in PARTIES}
    cfg = EngineConfig(preparams_pool_size=1, workers=2)
    return {p: Engine(s, config=cfg, prime_source=source) for p, s in sealers.items()}, sealers


async def _key(engines: dict[str, Engine]) -> dict[str, pb.SessionResult]:
    starts = {p: relay.dkg("derive-dkg", FROST, PARTIES, 2, p) for p in PARTIES}
    return relay.results(await relay.run(engines, starts))


def _without_chain_code(sealer: Sealer, share: pb.SealedBlob) -> pb.SealedBlob:
    """The share as this engine sealed it before FROST DKGs made a chain code (empty)."""
    index, plain = blobs.unseal(sealer, share.data, key_id=share.id, protocol="frost-ed25519", purpose="share")
    record = blobs.ShareRecord.decode(plain)
    old = blobs.ShareRecord(
        record.protocol,
        record.key_id,
        record.threshold,
        record.parties,
        record.index,
        record.public_key,
        b"",
        record.share,
    )
    binding = Binding(key_id=share.id, protocol="frost-ed25519", party_id=index, purpose="share")
    return pb.SealedBlob(
        kind=share.kind, id=share.id, data=blobs.seal(sealer, old.encode(), binding), sealer_kind=share.sealer_kind
    )


async def _refused(engine: Engine, start: pb.SessionStart) -> tuple[int, str]:
    with pytest.raises(RequestRejected) as exc:
        await engine.start(start)
    assert engine.running() == 0
    return exc.value.code, exc.value.message


async def test_the_enclave_refuses_bad_paths_itself(tmp_path: Path, prime_source: FixtureSource) -> None:
    engines, _ = _engines(tmp_path, prime_source)
    try:
        res = await _key(engines)
        share = res["alice"].sealed_share
        for sid, path in {"hardened": [2**31], "u32-max": [0, 2**32 - 1], "deep": [0] * 256}.items():
            code, message = await _refused(
                engines["alice"], relay.sign(sid, FROST, PARTIES, "alice", share, b"m", path=path)
            )
            assert code == pb.ERROR_CODE_INVALID_ARGUMENT and "non-hardened" in message, sid
        # the enclave's own bound (255 levels) is deeper than the host's (16)
        path = tuple(range(255))
        starts = {p: relay.sign("deep-ok", FROST, PARTIES, p, res[p].sealed_share, b"deep", path=path) for p in PARTIES}
        out = relay.results(await relay.run(engines, starts))
        expected, _ = derivation_rule.child_key("frost-ed25519", res["alice"].public_key, res["alice"].chain_code, path)
        assert out["alice"].public_key == out["bob"].public_key == expected
        VerifyKey(expected).verify(b"deep", out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()


async def test_a_key_without_chain_code_signs_only_at_the_root(tmp_path: Path, prime_source: FixtureSource) -> None:
    engines, sealers = _engines(tmp_path, prime_source)
    try:
        res = await _key(engines)
        old = {p: _without_chain_code(sealers[p], res[p].sealed_share) for p in PARTIES}
        code, message = await _refused(
            engines["alice"], relay.sign("old-path", FROST, PARTIES, "alice", old["alice"], b"m", path=[0])
        )
        assert code == pb.ERROR_CODE_FAILED_PRECONDITION
        assert "no chain code" in message and "empty derivation_path" in message and res["alice"].key_id in message
        starts = {p: relay.sign("old-root", FROST, PARTIES, p, old[p], b"at the root") for p in PARTIES}
        out = relay.results(await relay.run(engines, starts))
        assert out["alice"].public_key == res["alice"].public_key
        VerifyKey(res["alice"].public_key).verify(b"at the root", out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()


async def test_a_policy_approval_binds_the_path(tmp_path: Path, prime_source: FixtureSource) -> None:
    engines, _ = _engines(tmp_path, prime_source)
    policy_key = ec.generate_private_key(ec.SECP256R1())
    try:
        res = await _key(engines)
        for e in engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        kid, message, path = res["alice"].key_id, b"pay 1 to x", (4, 2)

        def approval(sid: str, approved_path: tuple[int, ...]) -> pb.PolicyApproval:
            subject = ApprovalSubject(kid, "sha256", hashlib.sha256(message).digest(), approved_path, "", sid)
            expires = int(time.time()) + 60
            return encode_approval(
                expires, policy_key.sign(approval_message(subject, expires), ec.ECDSA(hashes.SHA256()))
            )

        def start(sid: str, p: str, grant: pb.PolicyApproval) -> pb.SessionStart:
            return relay.sign(sid, FROST, PARTIES, p, res[p].sealed_share, message, path=path, approval=grant)

        for sid, approved in {"pol-root": (), "pol-other": (4, 3)}.items():
            code, text = await _refused(engines["alice"], start(sid, "alice", approval(sid, approved)))
            assert code == pb.ERROR_CODE_PERMISSION_DENIED and "does not verify" in text, sid
        out = relay.results(
            await relay.run(engines, {p: start("pol-ok", p, approval("pol-ok", path)) for p in PARTIES})
        )
        expected, _ = derivation_rule.child_key("frost-ed25519", res["alice"].public_key, res["alice"].chain_code, path)
        assert out["alice"].public_key == expected
        VerifyKey(expected).verify(message, out["alice"].signature)
    finally:
        for e in engines.values():
            e.close()
