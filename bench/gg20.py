"""GG20 benchmark: keygen, key refresh and reshare (warm pre-parameter pool), presign and online sign, at
2048- and 3072-bit Paillier moduli, plus safe-prime pre-parameter generation time and the enclave's
single-use bookkeeping on an online signature (`single_use`: per-boot sealing, used-record) and
the cost of re-randomizing the presignature by what is signed (`rerandomize`: the hash to δ,
R' = δ·R and δ^-1, per party, against the whole online signature's CPU per party).

All parties run in this process, one at a time, so each party's CPU time is measured alone
(time.thread_time). Messages are delivered in waves (every message of round r, then every
message of round r+1, ...); a party's work in a wave is the time spent in its `receive` calls
(verification, and the next round's computation when its round completes), and in `start`
for the first wave. The critical path is the sum over waves of the slowest party's work: the
latency of a deployment where parties compute in parallel and the network is free.

The warm pool is a `PreParamPool` filled before timing from the committed fixture safe primes
(tests/vectors/safe_primes.json): key generation timing excludes the prime search, which is
measured separately (`preparams`, fresh primes from the system RNG; the 3072-bit figure is a
single sample because one search takes tens of seconds to minutes on these machines).

The reshare (enclave/protocols/gg20/reshare.py) makes a 2-of-3 key: from the 2-of-3 key, dealers 2
and 3 to {1', 2, 3} with party 1' new (`recovery_2of3`, a lost share recovered); from the 2-of-2
key, dealers 1 and 2 to {1, 2, 3} with party 3 new (`grow_2of2_to_2of3`). Every receiver takes a
new Paillier key from the warm pool; the last successor presigns and signs (outside timing).
A refresh or reshare the fixture holds too few distinct moduli for (it needs as many new to the
key as it has receivers) is skipped and says so: at 3072 bits the fixture has four pairs.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from enclave.crypto.primes import FixtureSource, PreParamPool, system_source
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import Secp256k1Group
from enclave.protocols.driver import Driver, Output
from enclave.protocols.gg20 import keygen, presign, reshare, sign
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.message import MessageHash, digest_of
from enclave.protocols.gg20.presignature import Presignature
from enclave.protocols.gg20.sign import rerandomizer
from tests.enclave.gg20.test_refresh import _sign as signs_independently
from tests.harness import identity

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "safe_primes.json"
TARGETS = {
    "presign_2of2_critical_path_ms_at_2048": 300,
    "sign_cpu_ms_per_party_at_2048": 1,
    "keygen_warm_critical_path_ms_at_2048": 1500,
    "refresh_warm_critical_path_ms_at_2048": 1500,
}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.thread_time()
    out = fn()
    return out, (time.thread_time() - t0) * 1000


def _run(starts: dict[int, Callable[[], Driver]]) -> dict[str, Any]:
    per_party = {p: 0.0 for p in starts}
    waves: list[dict[int, float]] = []
    drivers: dict[int, Driver] = {}
    first: dict[int, float] = {}
    for p, start in starts.items():
        drivers[p], first[p] = _timed(start)
    waves.append(first)
    while True:
        outgoing = [(d.self_id, out) for d in drivers.values() for out in d.take_outgoing()]
        if not outgoing:
            break
        wave = {p: 0.0 for p in drivers}
        for sender, out in outgoing:
            targets = [out.to] if out.to is not None else [p for p in drivers if p != sender]
            for t in targets:
                _, ms = _timed(partial(drivers[t].receive, sender, out.payload))
                wave[t] += ms
        waves.append(wave)
    for wave in waves:
        for p, ms in wave.items():
            per_party[p] += ms
    outcomes = {p: d.result for p, d in drivers.items()}
    if not all(isinstance(o, Output) for o in outcomes.values()):
        raise RuntimeError(f"benchmark run did not complete: {outcomes}")
    return {
        "outputs": {p: o.value for p, o in outcomes.items()},  # type: ignore[union-attr]
        "per_party_cpu_ms": per_party,
        "critical_path_ms": sum(max(w.values()) for w in waves),
        "waves": len(waves),
    }


class _ConsumeOnce:
    """The consume hook contract (a real service records the use durably, e.g. in storage)."""

    def __init__(self) -> None:
        self.used: set[bytes] = set()

    def __call__(self, presign_id: bytes) -> None:
        if presign_id in self.used:
            raise RuntimeError("presignature already used")
        self.used.add(presign_id)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    parties = sorted(runs[0]["per_party_cpu_ms"])
    return {
        "runs": len(runs),
        "critical_path_ms_median": round(statistics.median(r["critical_path_ms"] for r in runs), 2),
        "critical_path_ms_min": round(min(r["critical_path_ms"] for r in runs), 2),
        "per_party_cpu_ms_median": {
            str(p): round(statistics.median(r["per_party_cpu_ms"][p] for r in runs), 3) for p in parties
        },
        "message_waves": runs[0]["waves"],
    }


def _too_few(held: int) -> dict[str, str]:
    return {"skipped": f"the fixture holds {held} pairs of safe primes of this size, too few moduli new to the key"}


def _protocols(
    source: FixtureSource, bits: int, parties: list[int], threshold: int, reps: dict[str, int], tag: str
) -> dict[str, Any]:
    # Moduli new to the key: a refresh needs one per party, a reshare one per receiver (three).
    held = source.count(bits // 2) // 2
    reps = {**reps, "refresh": reps["refresh"] if held >= 2 * len(parties) else 0}
    reps["reshare"] = reps["reshare"] if held >= len(parties) + 3 else 0
    pool = PreParamPool(source, bits, size=len(parties) * (reps["keygen"] + reps["refresh"]) + 3 * reps["reshare"])
    pool.fill_now()
    keygens = []
    keys: dict[int, KeyShare] = {}
    for rep in range(reps["keygen"]):
        sid = f"bench-keygen-{tag}-{rep}".encode()
        starts = {
            p: partial(
                keygen.start, sid, p, parties, threshold, pool.take(timeout=0), SYSTEM_RNG, min_modulus_bits=bits
            )
            for p in parties
        }
        res = _run(starts)
        keygens.append(res)
        keys = res["outputs"]
    # Refresh (a new Paillier key per party from the same warm pool, zero sharings, the proofs
    # of a key generation): the key it starts from is the last one made above.
    refreshes = []

    def new_pair(share: KeyShare, taken: frozenset[int] = frozenset()) -> Any:
        """The fixture primes cycle; a refresh or reshare needs moduli new to the key (and to
        the session: `taken`)."""
        old = {a.n for a in share.aux.values()} | taken
        pair = pool.take(timeout=0)
        while pair.p * pair.q in old:
            pair = source(bits)
        return pair

    for rep in range(reps["refresh"]):
        sid = f"bench-refresh-{tag}-{rep}".encode()
        starts = {
            p: partial(
                keygen.start,
                sid,
                p,
                parties,
                threshold,
                new_pair(keys[p]),
                SYSTEM_RNG,
                min_modulus_bits=bits,
                refresh=keys[p],
            )
            for p in parties
        }
        refreshes.append(_run(starts))
    # Reshare to a 2-of-3 key (the module's docstring); session ids 1..3 are the new indices.
    move, dealers, new_party = (
        ("recovery_2of3", {2: 2, 3: 3}, 1) if len(parties) == 3 else ("grow_2of2_to_2of3", {1: 1, 2: 2}, 3)
    )
    reshares = []
    first = keys[parties[0]]
    for rep in range(reps["reshare"]):
        setups = {
            p: reshare.ReshareSetup(
                f"bench-reshare-{tag}-{rep}".encode(),
                p,
                3,
                dealers,
                2,
                threshold,
                first.public_key,
                first.chain_code,
                SYSTEM_RNG,
                keys[dealers[p]] if p in dealers else None,
                b"bench",
                bits,
                new_party_keys={new_party: identity(new_party).public_key},
                sign=identity(p).sign if p == new_party else None,
            )
            for p in (1, 2, 3)
        }
        pairs: dict[int, Any] = {}
        for p in setups:
            pairs[p] = new_pair(first, frozenset(q.p * q.q for q in pairs.values()))
        reshares.append(_run({p: partial(reshare.start, s, pairs[p]) for p, s in setups.items()}))
    if reshares:
        successor = reshares[-1]["outputs"]
        if any(k.public_key != first.public_key for k in successor.values()):
            raise RuntimeError("reshare changed the key")
        signs_independently(successor, (new_party, 2), f"bench-reshared-{tag}".encode())
    signers = parties[:threshold]
    presigns, signs = [], []
    for rep in range(reps["presign"]):
        sid = f"bench-presign-{tag}-{rep}".encode()
        res = _run({p: partial(presign.start, sid, keys[p], signers, SYSTEM_RNG) for p in signers})
        presigns.append(res)
        presigs = res["outputs"]
        digest = hashlib.sha256(sid).digest()
        res = _run(
            {
                p: partial(
                    sign.start, b"sign-" + sid, keys[p], presigs[p], digest, _ConsumeOnce(), rule=MessageHash.SHA256
                )
                for p in signers
            }
        )
        signs.append(res)
    # A service loads the share from its sealed blob per request: the per-verifier fixed-base
    # tables are then rebuilt inside the presign. Measure that cold case too.
    cold = []
    for rep in range(max(1, reps["presign"] // 2)):
        fresh = {p: KeyShare.from_bytes(keys[p].to_bytes()) for p in signers}
        sid = f"bench-presign-cold-{tag}-{rep}".encode()
        cold.append(_run({p: partial(presign.start, sid, fresh[p], signers, SYSTEM_RNG) for p in signers}))
    return {
        "keygen": _summary(keygens),
        "refresh": _summary(refreshes) if refreshes else _too_few(held),
        f"reshare_{move}": _summary(reshares) if reshares else _too_few(held),
        "presign": _summary(presigns),
        "presign_share_just_unsealed": _summary(cold),
        "sign": _summary(signs),
        "signers": signers,
        "presignature_bytes": len(presigs[signers[0]].to_bytes()),
        "_presignature": presigs[signers[0]],
    }


def _rerandomize(presig: Presignature, sign_cpu_ms: float, reps: int) -> dict[str, Any]:
    """What re-randomization adds to one party's online signature (enclave/protocols/gg20/sign.py):
    δ from the SHA-512 of the public values, R' = δ·R (libsecp256k1) and δ^-1 mod q. The per-share
    check is unchanged in cost (the tweak is folded into S_j at presigning, which saves one point
    multiplication per received share that the old check paid). Also the hash rules' cost on a
    small message, which the enclave now computes itself."""
    g = Secp256k1Group()
    q = g.order
    digest = hashlib.sha256(b"bench").digest()

    def us(fn: Callable[[], Any]) -> float:
        samples = []
        for _ in range(reps):
            t0 = time.thread_time_ns()
            fn()
            samples.append((time.thread_time_ns() - t0) / 1000)
        return round(statistics.median(samples), 2)

    def rerandomize() -> None:
        delta = rerandomizer(presig, MessageHash.SHA256, digest, q)
        g.mul(g.decode(presig.r_point), delta)
        pow(delta, -1, q)

    cost = us(rerandomize)
    message = b"x" * 200
    return {
        "rerandomize_us_per_party": cost,
        "sign_cpu_ms_per_party": sign_cpu_ms,
        "share_of_sign_cpu": round(cost / 1000 / sign_cpu_ms, 3) if sign_cpu_ms else None,
        "digest_us_200_byte_message": {
            rule.value: us(partial(digest_of, rule, message)) for rule in MessageHash if rule is not MessageHash.RAW
        },
        "note": "CPU per party (thread time, median); sign_cpu_ms_per_party is the whole online signature"
        " with re-randomization, from the 2048-bit 2-of-2 runs above",
    }


def _single_use(presignature_bytes: int, sign_cpu_ms: float, reps: int) -> dict[str, Any]:
    """The enclave's single-use bookkeeping on one GG20 online signature, per party: what a SIGN
    with a sealed presignature does beyond the signing math (enclave/engine/singleuse.py). The
    ledger runs at its full window (every issue then slides it), its worst case."""
    from enclave.engine.blobs import PresignatureContent, seal, unseal
    from enclave.engine.singleuse import DEFAULT_WINDOW, SingleUseLedger, check_this_boot
    from enclave.sealing import Binding, boot_sealer

    boot = boot_sealer(SYSTEM_RNG)
    ledger = SingleUseLedger("presignature")
    for _ in range(DEFAULT_WINDOW):
        ledger.issue()
    kid, pid = "ab" * 32, "cd" * 32
    binding = Binding(key_id=kid, protocol="gg20-secp256k1", party_id=1, purpose="presignature", item_id=pid)
    body = SYSTEM_RNG.random_bytes(presignature_bytes)

    def us(fn: Callable[[], Any]) -> float:
        samples = []
        for _ in range(reps):
            t0 = time.thread_time_ns()
            fn()
            samples.append((time.thread_time_ns() - t0) / 1000)
        return round(statistics.median(samples), 2)

    def issue_and_seal() -> bytes:  # at presign: a number and the per-boot sealing
        rec = PresignatureContent("gg20-secp256k1", kid, pid, ("a", "b"), ledger.issue(), body)
        return seal(boot, rec.encode(), binding)

    blob = issue_and_seal()
    fresh = [ledger.issue() for _ in range(reps)]
    it = iter(fresh)

    def open_and_consume() -> None:  # at sign: this boot's kind, unseal, check, consume
        check_this_boot(boot, blob[3:], "presignature")
        _, plaintext = unseal(boot, blob, key_id=kid, protocol="gg20-secp256k1", purpose="presignature", item_id=pid)
        seq = next(it)
        PresignatureContent.decode(plaintext)
        ledger.check(seq)
        ledger.consume(seq)

    ledger_only = iter([ledger.issue() for _ in range(reps)])

    def ledger_check_consume() -> None:
        seq = next(ledger_only)
        ledger.check(seq)
        ledger.consume(seq)

    sign_side = us(open_and_consume)
    return {
        "window_items": DEFAULT_WINDOW,
        "record_bytes": DEFAULT_WINDOW // 8,
        "presign_issue_and_seal_us": us(issue_and_seal),
        "sign_ledger_check_and_consume_us": us(ledger_check_consume),
        "sign_boot_check_unseal_and_consume_us": sign_side,
        "sign_cpu_ms_per_party": sign_cpu_ms,
        "share_of_sign_cpu": round(sign_side / 1000 / sign_cpu_ms, 3) if sign_cpu_ms else None,
        "note": "CPU per party (thread time, median); the unseal was paid before this change too"
        " (durable sealer), the ledger and the boot check are new",
    }


def _preparams(bits: int, samples: int) -> dict[str, Any]:
    source = system_source(SYSTEM_RNG)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        source(bits)
        times.append(round(time.perf_counter() - t0, 2))
    return {"samples_s": times, "note": "wall time for one pair of safe primes (one Paillier-Blum modulus)"}


def run(quick: bool = False) -> dict[str, Any]:
    doc = json.loads(FIXTURES.read_text())
    source = FixtureSource(int(h, 16) for h in doc["primes"]["1024"] + doc["primes"]["1536"])
    results: dict[str, Any] = {"targets": TARGETS, "method": __doc__.split("\n\n")[1].replace("\n", " ")}
    reps_2048 = {"keygen": 1 if quick else 2, "refresh": 1 if quick else 2, "reshare": 1 if quick else 2}
    reps_2048["presign"] = 2 if quick else 5
    reps_3072 = {"keygen": 1, "refresh": 1, "reshare": 1, "presign": 1 if quick else 2}
    for bits, reps in ((2048, reps_2048), (3072, reps_3072)):
        results[f"modulus_{bits}"] = {
            "2of2": _protocols(source, bits, [1, 2], 2, reps, f"{bits}-2of2"),
            "2of3": _protocols(source, bits, [1, 2, 3], 2, reps, f"{bits}-2of3"),
        }
    sign_2048 = results["modulus_2048"]["2of2"]
    sign_cpu = max(sign_2048["sign"]["per_party_cpu_ms_median"].values())
    results["single_use"] = _single_use(sign_2048["presignature_bytes"], sign_cpu, 200 if quick else 2000)
    results["rerandomize"] = _rerandomize(sign_2048["_presignature"], sign_cpu, 200 if quick else 2000)
    for bits in (2048, 3072):
        for setup in results[f"modulus_{bits}"].values():
            del setup["_presignature"]
    results["preparams"] = {
        "2048": _preparams(2048, 1 if quick else 3),
        "3072": {**_preparams(3072, 1), "single_sample": True},
    }
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2, default=str))
