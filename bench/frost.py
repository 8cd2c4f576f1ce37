"""FROST per suite: this project against ZF frost (PyPI `frost_rs`) in the same run.

Suites: FROST(Ed25519, SHA-512) against frost_rs `utility_ed25519`, FROST(secp256k1, SHA-256)
against `utility_secp256k1`, and Taproot (BIP340, ZF's frost-secp256k1-tr) against
`utility_secp256k1` too (frost_rs has no Taproot module; the secp256k1 suite is the same curve
and the same work but for the BIP340 parity rules and hashes, so it is the nearest ZF figure).

Measured per configuration (t-of-n), median over repetitions, milliseconds:
- dkg_total_ms: every participant's whole DKG, all parties in this process. Ours runs the real
  sessions through the round Driver (framing, echo checks, encrypted round-2 shares); frost_rs
  runs round1/round2/round3 for everyone (its round-2 output is encrypted too).
- commit_ms: one participant's round one (nonces + serialized commitments).
- sign_ms: one participant's round two from the wire: decode the other signers' commitments
  (strict point validation), compute the share, serialize it. frost_rs.sign likewise takes
  serialized commitments, nonces and key package (it also base64-decodes them).
- aggregate_ms: decode the shares, aggregate and check the signature (ours: libsodium for
  Ed25519, libsecp256k1's BIP340 verifier for Taproot, the Schnorr equation for secp256k1).
- refresh: this project's refresh by DKG (zero-constant polynomials, the same two rounds)
  against its own DKG of the same configuration, measured alternately in the same run
  (frost_rs 1.0.0 has no refresh); target: refresh at most 2x the DKG.
- reshare: this project's reshare (enclave/protocols/frost/reshare.py) for two moves to a 2-of-3
  key, `recovery_2of3` (dealers 2 and 3 of a 2-of-3 key deal to {1', 2, 3}, 1' new) and
  `grow_2of2_to_2of3` (dealers 1 and 2 of a 2-of-2 key, party 3 new), against a 2-of-3 DKG,
  measured alternately: the critical path (the slowest party's CPU per message wave, summed, as
  bench/gg20.py measures it) and every party's CPU summed. frost_rs 1.0.0 has no reshare.
Operations of the two implementations are measured alternately, so load changes hit both
alike. Each produced signature is verified independently (libsodium, coincurve's BIP340
verifier, or ZF's own verifier for FROST(secp256k1)).
"""

from __future__ import annotations

import base64
import gc
import statistics
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import nacl.signing
from coincurve import PublicKeyXOnly

from enclave.crypto.rng import SYSTEM_RNG
from enclave.protocols.frost import reshare_rounds, rounds, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR
from tests import harness
from tests.enclave.frost.test_reshare import setups as reshare_setups
from tests.enclave.frost.test_reshare import signs

CONFIGS = [(2, 2), (2, 3), (7, 10)]
SUITES: list[Ciphersuite] = [FROST_ED25519, FROST_SECP256K1, FROST_SECP256K1_TR]


def _message(cs: Ciphersuite) -> bytes:
    return f"benchmark message for {cs.name}".encode()


Op = tuple[Callable[[Any], Any], Callable[[], Any]]  # (timed function, untimed setup)


def _paired_ms(a: Op, b: Op, reps: int) -> tuple[float, float]:
    """Median ms of two operations measured alternately, so load changes hit both alike.

    As `timeit` does, the cyclic garbage collector is paused inside the timed call only.
    """
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(reps):
        for (fn, setup), out in ((a, ta), (b, tb)):
            arg = setup()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fn(arg)
                out.append(time.perf_counter() - t0)
            finally:
                gc.enable()
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def _none() -> None:
    return None


def _verifier(cs: Ciphersuite, public: PublicKeyPackage) -> Callable[[bytes], None]:
    message = _message(cs)
    if cs is FROST_ED25519:
        return lambda sig: nacl.signing.VerifyKey(public.verifying_key).verify(message, sig) and None
    if cs is FROST_SECP256K1_TR:

        def bip340(sig: bytes) -> None:
            if not PublicKeyXOnly(public.verifying_key[1:]).verify(sig, message):
                raise RuntimeError("Taproot signature did not verify")

        return bip340
    from frost_rs import utility_secp256k1

    package = base64.urlsafe_b64encode(
        wire.encode_public_key_package(cs, PublicKeyPackage({}, public.verifying_key, None))
    ).decode()

    def zf_verify(sig: bytes) -> None:
        if not utility_secp256k1.verify(message, package, base64.urlsafe_b64encode(sig).decode()):
            raise RuntimeError("FROST(secp256k1) signature did not verify")

    return zf_verify


def _our_dkg(cs: Ciphersuite, t: int, n: int) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    ids = {p: p for p in range(1, n + 1)}
    drivers = [rounds.dkg_driver(rounds.DkgSetup(cs, b"bench-dkg", p, ids, t, SYSTEM_RNG)) for p in ids]
    outs = harness.run(drivers).outputs()
    return {p: o[0] for p, o in outs.items()}, outs[1][1]


def _our_ops(cs: Ciphersuite, t: int, n: int, checks: list[Callable[[], None]]) -> dict[str, Op]:
    keys, public = _our_dkg(cs, t, n)
    signers = sorted(keys)[:t]
    me = signers[0]
    message = _message(cs)

    def commit(_: None) -> bytes:
        return wire.encode_signing_commitments(cs, signing.commit(cs, keys[me].signing_share, SYSTEM_RNG).commitments)

    def fresh() -> tuple[signing.SigningNonces, dict[int, bytes]]:
        nonces = {i: signing.commit(cs, keys[i].signing_share, SYSTEM_RNG) for i in signers}
        return nonces[me], {i: wire.encode_signing_commitments(cs, nonces[i].commitments) for i in signers}

    def sign_from_wire(arg: tuple[signing.SigningNonces, dict[int, bytes]]) -> bytes:
        my_nonces, encoded = arg
        commitments = {
            i: (my_nonces.commitments if i == me else wire.decode_signing_commitments(cs, c))
            for i, c in encoded.items()
        }
        package = signing.SigningPackage(commitments, message)
        return wire.encode_signature_share(cs, signing.sign(cs, keys[me], my_nonces, package))

    def fresh_shares() -> tuple[signing.SigningPackage, dict[int, bytes]]:
        nonces = {i: signing.commit(cs, keys[i].signing_share, SYSTEM_RNG) for i in signers}
        package = signing.SigningPackage({i: nonces[i].commitments for i in signers}, message)
        return package, {
            i: wire.encode_signature_share(cs, signing.sign(cs, keys[i], nonces[i], package)) for i in signers
        }

    last: list[bytes] = []

    def aggregate(arg: tuple[signing.SigningPackage, dict[int, bytes]]) -> None:
        package, encoded = arg
        shares = {i: wire.decode_signature_share(cs, z) for i, z in encoded.items()}
        last.append(signing.aggregate(cs, package, shares, public))

    verify = _verifier(cs, public)
    checks.append(lambda: verify(last[-1]))
    return {
        "dkg_total_ms": (lambda _: _our_dkg(cs, t, n), _none),
        "commit_ms": (commit, _none),
        "sign_ms": (sign_from_wire, fresh),
        "aggregate_ms": (aggregate, fresh_shares),
    }


def _frost_rs_ops(zf: ModuleType, message: bytes, t: int, n: int, checks: list[Callable[[], None]]) -> dict[str, Op]:
    def dkg(_: None) -> tuple[dict[str, str], dict[str, str]]:
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

    kp, pp = dkg(None)
    signers = sorted(kp)[:t]
    me = signers[0]

    def fresh() -> tuple[dict[str, str], dict[str, str]]:
        nonces, comms = {}, {}
        for i in signers:
            nonces[i], comms[i] = zf.preprocess(kp[i])
        return nonces, comms

    def fresh_shares() -> tuple[dict[str, str], dict[str, str]]:
        nonces, comms = fresh()
        return comms, {i: zf.sign(message, comms, nonces[i], kp[i]) for i in signers}

    last: list[str] = []

    def check() -> None:
        if not zf.verify(message, pp[me], last[-1]):
            raise RuntimeError("frost_rs signature did not verify")

    checks.append(check)
    return {
        "dkg_total_ms": (dkg, _none),
        "commit_ms": (lambda _: zf.preprocess(kp[me]), _none),
        "sign_ms": (lambda a: zf.sign(message, a[1], a[0][me], kp[me]), fresh),
        "aggregate_ms": (lambda a: last.append(zf.aggregate(message, a[0], a[1], pp[me])), fresh_shares),
    }


def _frost_rs_module(cs: Ciphersuite) -> tuple[str, ModuleType]:
    from frost_rs import utility_ed25519, utility_secp256k1

    if cs is FROST_ED25519:
        return "frost_rs_ed25519", utility_ed25519
    return "frost_rs_secp256k1", utility_secp256k1


def run_suite(cs: Ciphersuite, reps: int = 80, configs: list[tuple[int, int]] = CONFIGS) -> dict[str, Any]:
    theirs_name, zf = _frost_rs_module(cs)
    out: dict[str, Any] = {"compared_with": theirs_name, "configs": {}}
    for t, n in configs:
        checks: list[Callable[[], None]] = []
        ours_ops, zf_ops = _our_ops(cs, t, n, checks), _frost_rs_ops(zf, _message(cs), t, n, checks)
        ours: dict[str, float] = {}
        theirs: dict[str, float] = {}
        for metric in ours_ops:
            r = max(7, reps // (4 * n)) if metric == "dkg_total_ms" else reps
            ours[metric], theirs[metric] = _paired_ms(ours_ops[metric], zf_ops[metric], r)
        for check in checks:  # every aggregate signature produced above verifies
            check()
        out["configs"][f"{t}-of-{n}"] = {
            "ours": {k: round(v, 4) for k, v in ours.items()},
            "frost_rs": {k: round(v, 4) for k, v in theirs.items()},
            "ratio_ours_over_frost_rs": {k: round(ours[k] / theirs[k], 3) for k in ours},
        }
    return out


def _refresh_vs_dkg(cs: Ciphersuite, t: int, n: int, reps: int) -> dict[str, float]:
    """Every participant's whole refresh against a whole DKG, alternately (one key refreshed)."""
    keys, public = _our_dkg(cs, t, n)
    ids = {p: p for p in range(1, n + 1)}

    def refresh(_: None) -> None:
        drivers = [
            rounds.dkg_driver(rounds.DkgSetup(cs, b"bench-refresh", p, ids, t, SYSTEM_RNG, refresh=(keys[p], public)))
            for p in ids
        ]
        outs = harness.run(drivers).outputs()
        if {o[1].verifying_key for o in outs.values()} != {public.verifying_key}:  # type: ignore[index]
            raise RuntimeError("refresh changed the key")

    refresh_ms, dkg_ms = _paired_ms((refresh, _none), (lambda _: _our_dkg(cs, t, n), _none), reps)
    return {
        "refresh_total_ms": round(refresh_ms, 4),
        "dkg_total_ms": round(dkg_ms, 4),
        "ratio": round(refresh_ms / dkg_ms, 3),
    }


# (old t, old n, dealers, receivers): session party 10 is the party new to the key.
RESHARES = {"recovery_2of3": (2, 3, [2, 3], [10, 2, 3]), "grow_2of2_to_2of3": (2, 2, [1, 2], [1, 2, 10])}


def _reshare_vs_dkg(cs: Ciphersuite, move: str, reps: int) -> dict[str, float]:
    """A reshare's critical path and total CPU against a 2-of-3 DKG's, alternately (one source key)."""
    from bench.gg20 import _run  # the critical-path runner (per-party thread time by message wave)

    t, n, dealers, receivers = RESHARES[move]
    old = _our_dkg(cs, t, n)
    ids = {p: p for p in range(1, 4)}
    runs: dict[str, list[dict[str, Any]]] = {"reshare": [], "dkg": []}
    for rep in range(reps):
        setups = reshare_setups(cs, *old, dealers, receivers, 2, sid=f"bench-reshare-{rep}".encode())
        runs["reshare"].append(_run({p: partial(reshare_rounds.reshare_driver, s) for p, s in setups.items()}))
        dkgs = {p: rounds.DkgSetup(cs, f"bench-dkg-{rep}".encode(), p, ids, 2, SYSTEM_RNG) for p in ids}
        runs["dkg"].append(_run({p: partial(rounds.dkg_driver, s) for p, s in dkgs.items()}))
    outs = runs["reshare"][-1]["outputs"]
    public = outs[receivers[0]][1]
    if public.verifying_key != old[1].verifying_key:
        raise RuntimeError("reshare changed the key")
    signs(cs, {p: outs[p][0] for p in receivers}, public, [10, receivers[1]])  # the new party signs
    med = {
        (kind, what): statistics.median(
            r["critical_path_ms"] if what == "path" else sum(r["per_party_cpu_ms"].values()) for r in runs[kind]
        )
        for kind in runs
        for what in ("path", "cpu")
    }
    return {
        "reshare_critical_path_ms": round(med["reshare", "path"], 3),
        "dkg_critical_path_ms": round(med["dkg", "path"], 3),
        "ratio": round(med["reshare", "path"] / med["dkg", "path"], 3),
        "reshare_total_cpu_ms": round(med["reshare", "cpu"], 3),
        "dkg_total_cpu_ms": round(med["dkg", "cpu"], 3),
        "ratio_total_cpu": round(med["reshare", "cpu"] / med["dkg", "cpu"], 3),
    }


def run(reps: int = 80) -> dict[str, Any]:
    return {
        "unit": "ms, median of interleaved runs",
        "suites": {cs.short_name: run_suite(cs, reps) for cs in SUITES},
        "refresh": {
            "target_ratio_at_most": 2.0,
            "suites": {
                cs.short_name: {f"{t}-of-{n}": _refresh_vs_dkg(cs, t, n, max(7, reps // (4 * n))) for t, n in CONFIGS}
                for cs in SUITES
            },
        },
        "reshare": {
            "compared_with": "2-of-3 DKG, same suite",
            "suites": {
                cs.short_name: {m: _reshare_vs_dkg(cs, m, max(7, reps // 8)) for m in RESHARES} for cs in SUITES
            },
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
