"""FROST(Ed25519, SHA-512): this project against ZF frost (PyPI `frost_rs`) in the same run.

Measured per configuration (t-of-n), median over repetitions, milliseconds:
- dkg_total_ms: every participant's whole DKG, all parties in this process. Ours runs the real
  sessions through the round Driver (framing, echo checks, encrypted round-2 shares); frost_rs
  runs round1/round2/round3 for everyone (its round-2 output is encrypted too).
- commit_ms: one participant's round one (nonces + serialized commitments).
- sign_ms: one participant's round two from the wire: decode the other signers' commitments
  (strict point validation), compute the share, serialize it. frost_rs.sign likewise takes
  serialized commitments, nonces and key package (it also base64-decodes them).
- aggregate_ms: decode the shares, aggregate and check the signature.
Each produced signature is verified with libsodium.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import nacl.signing

from enclave.protocols.frost import sessions, signing, wire
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.rounds import run_locally
from enclave.rng import SYSTEM_RNG

CONFIGS = [(2, 2), (2, 3), (7, 10)]
MESSAGE = b"benchmark message for FROST(Ed25519, SHA-512)"


def _median_ms(fn: Callable[[], Any], reps: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(reps):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        fn() if setup is None else fn(arg)  # type: ignore[call-arg]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _our_dkg(t: int, n: int) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    ids = {p: p for p in range(1, n + 1)}
    drivers = [sessions.dkg_driver(sessions.DkgSetup(b"bench-dkg", p, ids, t, SYSTEM_RNG)) for p in ids]
    run_locally(drivers)
    outs = {d.self_id: d.result.value for d in drivers}  # type: ignore[union-attr]
    return {p: o[0] for p, o in outs.items()}, outs[1][1]


def _ours(t: int, n: int, reps: int) -> dict[str, float]:
    dkg_ms = _median_ms(lambda: _our_dkg(t, n), max(3, reps // 10))
    keys, public = _our_dkg(t, n)
    signers = sorted(keys)[:t]
    me = signers[0]

    commit_ms = _median_ms(
        lambda: wire.encode_signing_commitments(signing.commit(keys[me].signing_share, SYSTEM_RNG).commitments),
        reps,
    )

    def fresh() -> tuple[signing.SigningNonces, dict[int, bytes]]:
        nonces = {i: signing.commit(keys[i].signing_share, SYSTEM_RNG) for i in signers}
        return nonces[me], {i: wire.encode_signing_commitments(nonces[i].commitments) for i in signers}

    def sign_from_wire(arg: tuple[signing.SigningNonces, dict[int, bytes]]) -> bytes:
        my_nonces, encoded = arg
        commitments = {i: (my_nonces.commitments if i == me else wire.decode_signing_commitments(c))
                       for i, c in encoded.items()}
        package = signing.SigningPackage(commitments, MESSAGE)
        return wire.encode_signature_share(signing.sign(keys[me], my_nonces, package))

    sign_ms = _median_ms(sign_from_wire, reps, fresh)

    def fresh_shares() -> tuple[signing.SigningPackage, dict[int, bytes]]:
        nonces = {i: signing.commit(keys[i].signing_share, SYSTEM_RNG) for i in signers}
        package = signing.SigningPackage({i: nonces[i].commitments for i in signers}, MESSAGE)
        return package, {i: wire.encode_signature_share(signing.sign(keys[i], nonces[i], package)) for i in signers}

    last: list[bytes] = []

    def aggregate(arg: tuple[signing.SigningPackage, dict[int, bytes]]) -> None:
        package, encoded = arg
        shares = {i: wire.decode_signature_share(z) for i, z in encoded.items()}
        last.append(signing.aggregate(package, shares, public))

    aggregate_ms = _median_ms(aggregate, reps, fresh_shares)
    nacl.signing.VerifyKey(public.verifying_key).verify(MESSAGE, last[-1])
    return {"dkg_total_ms": dkg_ms, "commit_ms": commit_ms, "sign_ms": sign_ms, "aggregate_ms": aggregate_ms}


def _frost_rs(t: int, n: int, reps: int) -> dict[str, float]:
    from frost_rs import utility_ed25519 as zf

    def dkg() -> tuple[dict[str, str], dict[str, str]]:
        ids = [zf.get_id() for _ in range(n)]
        r1s, r1p, r2s, r2p, kp, pp = {}, {}, {}, {}, {}, {}
        for i in ids:
            r1s[i], r1p[i] = zf.round1(i, t, n)
        for i in ids:
            r2s[i], r2p[i] = zf.round2(r1s[i], {k: v for k, v in r1p.items() if k != i})
        for i in ids:
            kp[i], pp[i] = zf.round3(
                r2s[i],
                {k: v for k, v in r1p.items() if k != i},
                {k: v[i] for k, v in r2p.items() if i in v},
            )
        return kp, pp

    dkg_ms = _median_ms(dkg, max(3, reps // 10))
    kp, pp = dkg()
    signers = sorted(kp)[:t]
    me = signers[0]
    commit_ms = _median_ms(lambda: zf.preprocess(kp[me]), reps)

    def fresh() -> tuple[dict[str, str], dict[str, str]]:
        nonces, comms = {}, {}
        for i in signers:
            nonces[i], comms[i] = zf.preprocess(kp[i])
        return nonces, comms

    sign_ms = _median_ms(lambda a: zf.sign(MESSAGE, a[1], a[0][me], kp[me]), reps, fresh)

    def fresh_shares() -> tuple[dict[str, str], dict[str, str]]:
        nonces, comms = fresh()
        return comms, {i: zf.sign(MESSAGE, comms, nonces[i], kp[i]) for i in signers}

    last: list[str] = []
    aggregate_ms = _median_ms(lambda a: last.append(zf.aggregate(MESSAGE, a[0], a[1], pp[me])), reps, fresh_shares)
    if not zf.verify(MESSAGE, pp[me], last[-1]):
        raise RuntimeError("frost_rs signature did not verify")
    return {"dkg_total_ms": dkg_ms, "commit_ms": commit_ms, "sign_ms": sign_ms, "aggregate_ms": aggregate_ms}


def run(reps: int = 60) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": "ms (median)", "configs": {}}
    for t, n in CONFIGS:
        ours = _ours(t, n, reps)
        theirs = _frost_rs(t, n, reps)
        out["configs"][f"{t}-of-{n}"] = {
            "ours": {k: round(v, 4) for k, v in ours.items()},
            "frost_rs": {k: round(v, 4) for k, v in theirs.items()},
            "sign_ratio_ours_over_frost_rs": round(ours["sign_ms"] / theirs["sign_ms"], 3),
            "dkg_ratio_ours_over_frost_rs": round(ours["dkg_total_ms"] / theirs["dkg_total_ms"], 3),
        }
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
