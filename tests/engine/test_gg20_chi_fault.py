"""The GG20 χ fault through the real enclave process: the in-process party ("local") lies about
its Ŝ = χ·Γ in presign round 3 and then takes part in the identification from its real state;
the enclave process ("remote", `python -m enclave` over its unix socket) fails the session
naming "local", outputs no presignature, and signs with the same key afterwards."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import cbor2
import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine
from enclave.group.secp256k1 import Secp256k1Group
from enclave.protocols.driver import Frame, Kind, echo_digest
from enclave.protocols.gg20 import presign
from mpc.v1 import enclave_pb2 as pb
from tests.conftest import EnclaveProcess
from tests.engine import relay
from tests.engine.conftest import GG20
from tests.engine.test_process import PAIR, Remote, enclave_args


@pytest.fixture
def local(tmp_path: Path, prime_source: FixtureSource) -> Iterator[Engine]:
    engine = relay.make_engines(["local"], tmp_path, prime_source)["local"]
    yield engine
    engine.close()


def _chi_liar(engine: Engine, sid: str) -> relay.Tamper:
    g = Secp256k1Group()
    state: dict[str, bytes] = {}

    def tamper(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage | None:
        if m.sender != "local":
            return m
        frame = Frame.decode(m.payload)
        if frame.round == 3 and frame.kind is Kind.BROADCAST:
            items = cbor2.loads(frame.body)
            items[2] = g.encode(g.add(g.decode(items[2]), g.generator()))
            state["r3"] = cbor2.dumps(items)
            frame = replace(frame, body=state["r3"])
        elif frame.round == 4:
            rnd = engine._running[sid]._phase.driver._round  # type: ignore[union-attr]
            assert isinstance(rnd, presign.Round4)
            cfg = rnd.cfg
            echo = list(frame.echo)
            echo[cfg.signers.index(cfg.me)] = echo_digest(cfg.session_id, 3, cfg.me, state["r3"])
            frame = replace(frame, echo=tuple(echo), body=presign.identification(cfg, rnd.c, rnd.pub)[0])
        else:
            return m
        out = pb.EnclaveMessage()
        out.CopyFrom(m)
        out.payload = frame.encode()
        return out

    return tamper


async def test_chi_fault_culprit_reaches_the_session_status(
    tmp_path: Path, start_enclave: Callable[..., EnclaveProcess], local: Engine
) -> None:
    proc = start_enclave(extra_args=enclave_args(tmp_path / "remote.key"))
    remote = Remote(proc.address)
    parties = {"remote": remote, "local": local}
    try:
        key = relay.results(await relay.run(parties, {p: relay.dkg("chi-dkg", GG20, PAIR, 2, p) for p in PAIR}))
        shares = {p: r.sealed_share for p, r in key.items()}

        sid = "chi-presign"
        starts = {p: relay.presign(sid, PAIR, p, shares[p]) for p in PAIR}
        updates = await relay.run(parties, starts, _chi_liar(local, sid))
        u = updates["remote"]
        assert u.state == relay.FAILED, u
        assert list(u.culprits) == ["local"] and u.reason == "inconsistent χ share", (list(u.culprits), u.reason)
        assert not u.result.sealed_presignatures

        # the honest enclave is unharmed: the same key presigns and signs afterwards
        pre = relay.results(await relay.run(parties, {p: relay.presign("chi-after", PAIR, p, shares[p]) for p in PAIR}))
        digest = hashlib.sha256(b"after the chi fault").digest()
        out = relay.results(
            await relay.run(
                parties,
                {
                    p: relay.sign(
                        "chi-sign",
                        GG20,
                        PAIR,
                        p,
                        shares[p],
                        b"after the chi fault",
                        presignature=pre[p].sealed_presignatures[0],
                        message_hash=pb.MESSAGE_HASH_SHA256,
                    )
                    for p in PAIR
                },
            )
        )
        sig = out["remote"].signature
        public_key = key["remote"].public_key
        assert PublicKey.from_signature_and_message(sig, digest, hasher=None).format() == public_key
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        assert PublicKey(public_key).verify(encode_dss_signature(r, s), digest, hasher=None)
    finally:
        await remote.client.close()
