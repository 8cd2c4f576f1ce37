"""Operator shares, key validation and sealed results: the enclave-side cost of each, in process.

Measured (microseconds or milliseconds of wall time, p50 over repetitions, one core):
- hpke_seal_signature_us / hpke_open_signature_us: HPKE-sealing a 65-byte signature in the
  enclave (what a SIGN with result_recipient_key adds) and opening it in the SDK.
- share_entry_us: one UnsealShare below the threshold (HPKE open, decode, checksum, set and
  check-value lookup).
- unseal_at_threshold_us_{t}of{n}: the share that reaches the threshold (combine by Lagrange
  over GF(2^256-189), HKDF, AES-GCM unwrap).
- rekey_ms: a rekey of a 3-of-5 set to a new 3-of-5 set, share file write with fsync and rename
  included (the disk dominates).
- validate_frost_ms, validate_gg20_ms: ValidateKeyRequest on a 2-of-3 share (unseal and every
  consistency check; GG20 at 2048-bit Paillier, its two primality tests included).

Run alone: python -m bench --only unseal
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from bench.frost import _our_dkg
from bench.gg20 import FIXTURES, _run
from enclave.crypto import hpke
from enclave.crypto.primes import FixtureSource, PreParamPool
from enclave.crypto.rng import SYSTEM_RNG
from enclave.engine import blobs
from enclave.engine.blobs import ShareRecord
from enclave.engine.keyids import key_id
from enclave.engine.validation import validate_key
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519
from enclave.protocols.gg20 import keygen
from enclave.sealing import Binding, LocalSealer
from enclave.tee.identity import EnclaveIdentity
from enclave.unseal import shares as codec
from enclave.unseal.handler import UnsealHandler
from enclave.unseal.unsealer import Unsealer
from mpc.v1 import enclave_pb2 as pb
from signer.client import sealed_result


def _p50_us(fn: Callable[[], Any], reps: int) -> float:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return round(statistics.median(samples), 1)


def _hpke(reps: int) -> dict[str, float]:
    recipient = ec.generate_private_key(ec.SECP256R1())
    public = sealed_result.public_bytes(recipient)
    info = hpke.sign_result_info("bench-session", "ab" * 32, b"\x02" * 33)
    sealed = hpke.seal(public, b"\x01" * 65, info)
    return {
        "hpke_seal_signature_us": _p50_us(lambda: hpke.seal(public, b"\x01" * 65, info), reps),
        "hpke_open_signature_us": _p50_us(lambda: sealed_result.open_from(recipient, sealed, info), reps),
    }


async def _unseal(work: Path, reps: int) -> dict[str, float]:
    identity = EnclaveIdentity.generate()
    out: dict[str, float] = {}
    for t, n in ((2, 3), (3, 5), (16, 32)):
        path = work / f"shares-{t}-{n}.json"
        issued = [codec.encode(s) for s in await Unsealer(path).init(n, t)]
        encrypted = [hpke.seal(identity.public_key, s.encode(), hpke.operator_share_info("unseal")) for s in issued[:t]]
        entry: list[float] = []
        final: list[float] = []
        for _ in range(reps):
            handler = UnsealHandler(Unsealer(path), identity)  # a fresh boot: sealed, nothing entered
            for i, ciphertext in enumerate(encrypted):
                t0 = time.perf_counter()
                await handler.handle(pb.UnsealRequest(share=pb.UnsealShare(encrypted_share=ciphertext)))
                (final if i == t - 1 else entry).append((time.perf_counter() - t0) * 1e6)
        out[f"unseal_at_threshold_us_{t}of{n}"] = round(statistics.median(final), 1)
        if entry:
            out["share_entry_us"] = round(statistics.median(entry), 1)
    path = work / "rekey.json"
    unsealer = Unsealer(path)
    current = await unsealer.init(5, 3)
    for share in current[:3]:
        await unsealer.enter(share)
    times = []
    for _ in range(max(3, reps // 10)):
        t0 = time.perf_counter()
        await unsealer.rekey(current[:3], 5, 3)
        times.append((time.perf_counter() - t0) * 1000)
    out["rekey_ms"] = round(statistics.median(times), 2)
    return out


def _validation(reps: int) -> dict[str, float]:
    sealer = LocalSealer(SYSTEM_RNG.random_bytes(32))
    parties = ("p1", "p2", "p3")

    def request(protocol: int, name: str, public_key: bytes, chain: bytes, share: bytes) -> pb.ValidateKeyRequest:
        kid = key_id(name, "bench-validate", 2, parties, public_key)
        record = ShareRecord(name, kid, 2, parties, 1, public_key, chain, share)
        binding = Binding(key_id=kid, protocol=name, party_id=1, purpose="share")
        return pb.ValidateKeyRequest(
            sealed_share=pb.SealedBlob(
                kind=pb.SEALED_BLOB_KIND_KEY_SHARE, id=kid, data=blobs.seal(sealer, record.encode(), binding)
            ),
            protocol=protocol,
            public_key=public_key,
            expected_party_id="p1",  # type: ignore[arg-type]
        )

    keys, public = _our_dkg(FROST_ED25519, 2, 3)
    frost_share = blobs.pack(
        wire.encode_key_package(FROST_ED25519, keys[1]), wire.encode_public_key_package(FROST_ED25519, public)
    )
    frost = request(pb.PROTOCOL_FROST_ED25519, "frost-ed25519", keys[1].verifying_key, b"", frost_share)

    import json

    doc = json.loads(FIXTURES.read_text())
    pool = PreParamPool(FixtureSource(int(h, 16) for h in doc["primes"]["1024"]), 2048, size=3)
    pool.fill_now()
    shares = _run(
        {
            p: partial(
                keygen.start,
                b"bench-validate",
                p,
                [1, 2, 3],
                2,
                pool.take(timeout=0),
                SYSTEM_RNG,
                min_modulus_bits=2048,
            )
            for p in (1, 2, 3)
        }
    )["outputs"]
    ks = shares[1]
    gg20 = request(pb.PROTOCOL_GG20_SECP256K1, "gg20-secp256k1", ks.public_key, ks.chain_code, ks.to_bytes())
    out = {}
    for name, req in (("validate_frost_ms", frost), ("validate_gg20_ms", gg20)):
        answer = validate_key(sealer, req)
        if answer.verdict != pb.KEY_VERDICT_VALID:
            raise RuntimeError(f"{name}: {answer.reason}")
        out[name] = round(_p50_us(partial(validate_key, sealer, req), reps) / 1000, 2)
    return out


def run(reps: int = 200) -> dict[str, Any]:
    logging.getLogger("enclave.unseal").setLevel(logging.ERROR)  # one line per share and rekey otherwise
    results: dict[str, Any] = {"method": __doc__.split("\n\n")[1].replace("\n", " ")}
    results.update(_hpke(reps * 5))
    with tempfile.TemporaryDirectory() as work:
        results.update(asyncio.run(_unseal(Path(work), reps // 4)))
    results.update(_validation(max(5, reps // 10)))
    return results


if __name__ == "__main__":
    import json as _json

    print(_json.dumps(run(), indent=2))
