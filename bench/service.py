"""End to end through the service: 2-of-2, the caller's local party and one signer node on
loopback, every message over gRPC with mTLS, JWT and HMACs, every signer-side step through the
enclave process (unix socket), keys and presignatures in the signer's SQLite store.

Three processes share the machine: this one (relay + local party), the signer host, its enclave.
The relay reaches the signer over one SignerService.Exchange stream, as a relay making many calls
should; the same sign latencies and FROST throughput are also measured with one unary RPC per call
(`*_unary`), sampled alternately with the stream's so that the machine's drift hits both alike.
Measured, milliseconds (p50, p95 over repetitions):
- frost_dkg, frost_sign: one whole session, from the first start to every party done.
- gg20_dkg: key generation with pre-parameters ready (fixture safe primes: the prime search is
  not what is measured; every proof about the moduli runs).
- frost_refresh, gg20_refresh: one whole key refresh (StartRefresh), each from the previous
  refresh's successor, from the first start to every party done, the successor durably stored;
  GG20 with pre-parameters ready, as gg20_dkg. The last successor's signature is verified.
- frost_reshare_*, gg20_reshare_*: one whole reshare (StartReshare) to a 2-of-3 key, from the
  first start to every party done, every successor durably stored; a second local party in this
  process ("backup") is the third party. `grow_2of2_to_2of3`: client and signer deal a 2-of-2
  key (a new one per repetition, not timed) to {client, signer, backup}, backup new to the key.
  `recovery_2of3`: signer and backup deal the 2-of-3 key to {client', signer, backup}, client' a
  fresh local party each time (the client lost its share), each from the previous successor.
  Both local parties share this process's one core and GIL with the relay, so these figures
  are an upper bound on a deployment's. The last successor of each signs with the new party.
- gg20_presign: producing one presignature (stored sealed by the signer, kept by the local party).
- gg20_online_sign: signing with a presignature ready (one round), including its durable
  consumption in the store, the enclave hashing the 64-byte message (Keccak-256) and the
  re-randomization of the presignature by it; the presignatures are made first (the pool a relay keeps) and the
  signatures timed back to back. gg20_online_sign_after_presign: each signature right after
  its presignature was made, which overlaps the presigning session's background work.
- frost_sign_throughput, frost_dkg_throughput: sessions per second with `CONCURRENCY` in flight.
- frost_presign_batch: one FROST presigning session of `PRESIGN_BATCH` nonces (one round, every
  nonce stored sealed by the signer). frost_sign_preprocessed (and _unary, _throughput): a FROST
  signature from one of them: one round, one call to the signer (the caller's share rides in its
  start, which answers DONE with its own share), the nonce consumed durably in the store first.
- rpc_floor: one health Check over the same mTLS channel (no enclave hop, no store): the cost of
  one call on this machine at this moment, for reading the other figures as ratios on noisy VMs.
- gg20_sign_throughput: GG20 signatures per second with no presignature ready (presigning and
  signing in one session each), `GG20_CONCURRENCY` in flight. GG20 key generation throughput is
  bounded by the pre-parameter (safe prime) supply, measured in bench/gg20.py, so it is not here.
Every signature is verified with libsecp256k1 / libsodium (outside the timed region).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from Crypto.Hash import keccak
from grpc_health.v1 import health_pb2, health_pb2_grpc

from enclave.crypto.primes import FixtureSource
from enclave.engine import EngineConfig
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.jwt import read_hex_secret
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec, reshare_spec
from signer.client.verify import verify
from signer.ops.devcerts import write_dev_certs

REPO = Path(__file__).resolve().parent.parent
PARTIES = ("client", "signer")
RESHARED = ("client", "signer", "backup")  # the 2-of-3 key a reshare makes
FROST = pb.PROTOCOL_FROST_ED25519
GG20 = pb.PROTOCOL_GG20_SECP256K1
SIGN_REPS = 60
DKG_REPS = {FROST: 10, GG20: 4}
REFRESH_REPS = {FROST: 10, GG20: 3}
RESHARE_REPS = {FROST: 6, GG20: 2}
# The local parties may deal a reshare with no policy key, as the enclave does with
# --allow-reshare-without-policy (Service.start): a benchmark has no policy service.
LOCAL_CONFIG = EngineConfig(preparams_pool_size=1, allow_reshare_without_policy=True)
ONLINE_REPS = 30
CONCURRENCY = 16
THROUGHPUT_SECONDS = 8.0
UNARY_THROUGHPUT_SECONDS = 5.0
DKG_THROUGHPUT_SECONDS = 4.0
GG20_CONCURRENCY = 4
GG20_THROUGHPUT_SECONDS = 8.0
PRESIGN_BATCH = 100  # FROST nonces per presigning session (the service's maximum)
PREPROCESSED_THROUGHPUT_SECONDS = 5.0
PREPROCESSED_POOL = 6000  # enough nonces for the throughput window at ~1000/s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2), "n": len(ordered)}


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Service:
    """An enclave process and a signer process in a temporary directory."""

    def __init__(self, work: Path, extra_config: tuple[str, ...] = (), enclave_args: tuple[str, ...] = ()) -> None:
        """`extra_config`: more TOML lines for the signer's configuration (whole sections);
        `enclave_args`: more command-line options for the enclave."""
        self.work = work
        self.extra_config = extra_config
        self.enclave_args = enclave_args
        self.certs = write_dev_certs(work / "certs")
        self.port = _free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        sock = self.work / "enclave.sock"
        log = open(self.work / "processes.log", "ab")  # noqa: SIM115 - owned by the children
        env = {k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")}
        # The test harness's enclave entry point: `python -m enclave` with fixture primes.
        self.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.service.fixture_enclave",
                    "--listen",
                    f"unix://{sock}",
                    "--sealing-key-file",
                    str(self.work / "sealing.key"),
                    "--generate-sealing-key",
                    *self.enclave_args,
                ],
                cwd=REPO,
                stdout=log,
                stderr=log,
                env={**env, "MPC_TEST_PRIME_SLICE": "1"},
            )
        )
        _wait(sock.exists, 30, "the enclave")
        c = self.certs
        config = self.work / "signer.toml"
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    f'listen = "127.0.0.1:{self.port}"',
                    'log_level = "WARNING"',
                    "[tls]",
                    f'ca_file = "{c.ca}"',
                    f'cert_file = "{c.server_cert}"',
                    f'key_file = "{c.server_key}"',
                    "[jwt]",
                    f'keys = {{ dev = "{c.jwt_pub}" }}',
                    "[hmac]",
                    f'keys = {{ dev = "{c.hmac_key}" }}',
                    'active_key_id = "dev"',
                    "[enclave]",
                    'mode = "external"',
                    f'address = "unix://{sock}"',
                    "[storage]",
                    f'url = "sqlite:{self.work}/signer.db"',
                    *self.extra_config,
                    "",
                ]
            )
        )
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "signer.cli", "serve", "--config", str(config)],
                cwd=REPO,
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        _wait(lambda: _connectable(self.port), 30, "the signer")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each process of the set-up."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {"relay_and_local_party": sum(os.times()[:2])}
        for name, proc in zip(("enclave", "signer"), self.procs, strict=True):
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _session(relay: Relay, spec: SessionSpec) -> dict[str, Any]:
    outcomes = await relay.run(spec, timeout=120)
    bad = {p: o.failure for p, o in outcomes.items() if not o.ok or o.result is None}
    if bad:
        raise RuntimeError(f"{spec.kind} failed: {bad}")
    return {p: o.result for p, o in outcomes.items()}


async def _timed(relay: Relay, spec: SessionSpec) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    results = await _session(relay, spec)
    return (time.perf_counter() - t0) * 1000, results


def _sid(kind: str) -> str:
    return f"bench-{kind}-{secrets.token_hex(6)}"


async def _dkg(relay: Relay, protocol: pb.Protocol, reps: int) -> tuple[dict[str, float], pb.DKGResult]:
    samples, key = [], None
    for _ in range(reps):
        ms, results = await _timed(relay, SessionSpec("dkg", _sid("dkg"), protocol, PARTIES, threshold=2))
        samples.append(ms)
        key = results["signer"].dkg
    assert key is not None
    return _summary(samples), key


async def _refresh(relay: Relay, key: pb.DKGResult, reps: int) -> tuple[dict[str, float], int]:
    """Refresh `key` `reps` times in a chain; the summary, and 1 if the last successor's
    signature (outside the timed region) does not verify under the original public key."""
    samples = []
    for _ in range(reps):
        spec = SessionSpec("refresh", _sid("refresh"), key.protocol, PARTIES, key_id=key.key_id)
        ms, results = await _timed(relay, spec)
        samples.append(ms)
        successor = results["signer"].dkg
        if successor.predecessor_key_id != key.key_id or successor.public_key != key.public_key:
            raise RuntimeError("refresh answered another key")
        key = successor
    return _summary(samples), await _fails_to_sign(relay, key, PARTIES)


async def _fails_to_sign(relay: Relay, key: pb.DKGResult, signers: tuple[str, ...]) -> int:
    """1 if `signers`' signature with `key` (a 32-byte message: GG20 signs it as a digest) does
    not verify under its public key, else 0."""
    message = secrets.token_bytes(32)
    signed = await _session(
        relay, SessionSpec("sign", _sid("sign"), key.protocol, signers, key_id=key.key_id, message=message)
    )
    return int(not verify(key.protocol, key.public_key, message, signed["signer"].sign.signature))


async def _reshared(relay: Relay, spec: SessionSpec) -> tuple[float, pb.DKGResult]:
    """One timed reshare; the successor, checked to be the same key at every party."""
    ms, results = await _timed(relay, spec)
    successors = {r.dkg.SerializeToString(deterministic=True) for r in results.values()}
    successor = results["signer"].dkg
    if len(successors) != 1 or (successor.predecessor_key_id, successor.public_key) != (
        spec.key_id,
        spec.source_public_key,
    ):
        raise RuntimeError("the parties disagree on the reshare's successor, or it is another key")
    return ms, successor


async def _reshare(
    relay: Relay, protocol: pb.Protocol, new_client: Any, reps: int
) -> tuple[dict[str, dict[str, float]], int]:
    """Both moves `reps` times (see the module's docstring); the summaries, and how many of the
    two last successors' signatures with their new party (outside the timed region) fail."""
    grow, recovery = [], []
    for _ in range(reps):
        _ms, results = await _timed(relay, SessionSpec("dkg", _sid("dkg"), protocol, PARTIES, threshold=2))
        spec = reshare_spec(_sid("grow"), results["signer"].dkg, RESHARED, 2, PARTIES)
        ms, key = await _reshared(relay, spec)
        grow.append(ms)
    failures = await _fails_to_sign(relay, key, ("signer", "backup"))
    clients = []
    try:
        for _ in range(reps):
            clients.append(new_client())
            fresh = Relay({**relay.nodes, "client": clients[-1]})
            ms, key = await _reshared(fresh, reshare_spec(_sid("recover"), key, RESHARED, 2, ("signer", "backup")))
            recovery.append(ms)
        failures += await _fails_to_sign(fresh, key, ("client", "signer"))
    finally:
        for c in clients:
            await c.close()
    return {"grow_2of2_to_2of3": _summary(grow), "recovery_2of3": _summary(recovery)}, failures


async def _frost_sign(relay: Relay, key: pb.DKGResult, i: int) -> tuple[float, bytes, bytes]:
    message = f"benchmark {i}".encode()
    ms, results = await _timed(
        relay, SessionSpec("sign", _sid("sign"), FROST, PARTIES, key_id=key.key_id, message=message)
    )
    return ms, message, results["signer"].sign.signature


async def _rpc_floor(client: SignerClient, reps: int = 300) -> dict[str, float]:
    stub = health_pb2_grpc.HealthStub(client.channel)
    samples = []
    for i in range(reps + 50):
        t0 = time.perf_counter()
        await stub.Check(health_pb2.HealthCheckRequest())
        if i >= 50:
            samples.append((time.perf_counter() - t0) * 1000)
    return _summary(samples)


async def _bench(relays: dict[str, Relay], cpu_seconds: Any, client: SignerClient, new_client: Any) -> dict[str, Any]:
    """`relays["exchange"]` reaches the signer over one Exchange stream, `relays["unary"]` with a
    unary RPC per call; sign latencies are sampled alternately on both, so drift hits both alike.
    Both relays also hold the backup local party; `new_client()` makes a client party new to a key."""
    out: dict[str, Any] = {}
    failures = 0
    relay = relays["exchange"]
    out["rpc_floor"] = await _rpc_floor(client)
    # Warm-up: connections, code paths.
    out["frost_dkg"], frost_key = await _dkg(relay, FROST, DKG_REPS[FROST])
    samples: dict[str, list[float]] = {name: [] for name in relays}
    for i in range(SIGN_REPS):
        for name, r in relays.items():
            ms, message, signature = await _frost_sign(r, frost_key, i)
            samples[name].append(ms)
            failures += not verify(FROST, frost_key.public_key, message, signature)
    out["frost_sign"] = _summary(samples["exchange"][5:])
    out["frost_sign_unary"] = _summary(samples["unary"][5:])
    preprocessed, bad = await _frost_preprocessed(relays, frost_key, cpu_seconds)
    out.update(preprocessed)
    failures += bad

    out["gg20_dkg"], gg20_key = await _dkg(relay, GG20, DKG_REPS[GG20])
    for protocol, name in ((FROST, "frost_refresh"), (GG20, "gg20_refresh")):
        source = frost_key if protocol == FROST else gg20_key
        out[name], failed = await _refresh(relay, source, REFRESH_REPS[protocol])
        failures += failed
    for protocol, prefix in ((FROST, "frost_reshare"), (GG20, "gg20_reshare")):
        moves, failed = await _reshare(relay, protocol, new_client, RESHARE_REPS[protocol])
        out.update({f"{prefix}_{move}": summary for move, summary in moves.items()})
        failures += failed

    async def presign() -> tuple[float, str]:
        ms, results = await _timed(relay, SessionSpec("presign", _sid("pre"), GG20, PARTIES, key_id=gg20_key.key_id))
        return ms, results["signer"].presign.presignature_id

    async def online_sign(r: Relay, presignature_id: str) -> float:
        nonlocal failures
        # The message itself with its hash rule: a presignature never signs a bare digest, so the
        # enclave hashes (Keccak-256) and re-randomizes inside the timed region.
        message = secrets.token_bytes(64)
        ms, results = await _timed(
            r,
            SessionSpec(
                "sign",
                _sid("sign"),
                GG20,
                PARTIES,
                key_id=gg20_key.key_id,
                message=message,
                presignature_id=presignature_id,
                message_hash=pb.MESSAGE_HASH_KECCAK256,
            ),
        )
        digest = results["signer"].sign.digest
        failures += digest != keccak.new(digest_bits=256, data=message).digest()
        failures += not verify(GG20, gg20_key.public_key, digest, results["signer"].sign.signature)
        failures += results["signer"].sign.presignature_id != presignature_id
        return ms

    # The pool a relay keeps: presignatures made ahead, then signatures back to back (as FROST's).
    presign_samples: list[float] = []
    pool: list[str] = []
    for _ in range(2 * ONLINE_REPS):
        ms, presignature_id = await presign()
        presign_samples.append(ms)
        pool.append(presignature_id)
    online: dict[str, list[float]] = {name: [] for name in relays}
    for _ in range(ONLINE_REPS):
        for name, r in relays.items():
            online[name].append(await online_sign(r, pool.pop()))
    out["gg20_presign"] = _summary(presign_samples)
    out["gg20_online_sign"] = _summary(online["exchange"][2:])
    out["gg20_online_sign_unary"] = _summary(online["unary"][2:])
    # Each signature right after the presignature it uses was made (the presigning session's
    # background work, such as its audit record, overlaps the signature).
    after: list[float] = []
    for _ in range(ONLINE_REPS):
        _ms, presignature_id = await presign()
        after.append(await online_sign(relay, presignature_id))
    out["gg20_online_sign_after_presign"] = _summary(after[2:])

    for name, suffix, seconds in (("exchange", "", THROUGHPUT_SECONDS), ("unary", "_unary", UNARY_THROUGHPUT_SECONDS)):
        verified: list[tuple[bytes, bytes]] = []

        async def frost_signature(i: int, r: Relay = relays[name], verified: list[Any] = verified) -> None:
            _ms, message, signature = await _frost_sign(r, frost_key, i)
            verified.append((message, signature))

        out[f"frost_sign_throughput{suffix}"] = await _throughput(
            frost_signature, CONCURRENCY, seconds, cpu_seconds, "signatures"
        )
        failures += sum(not verify(FROST, frost_key.public_key, m, s) for m, s in verified)

    async def frost_dkg(_i: int) -> None:
        await _session(relay, SessionSpec("dkg", _sid("dkg"), FROST, PARTIES, threshold=2))

    out["frost_dkg_throughput"] = await _throughput(frost_dkg, CONCURRENCY, DKG_THROUGHPUT_SECONDS, cpu_seconds, "keys")

    gg20_signed: list[tuple[bytes, bytes]] = []

    async def gg20_signature(_i: int) -> None:
        digest = secrets.token_bytes(32)
        results = await _session(
            relay, SessionSpec("sign", _sid("sign"), GG20, PARTIES, key_id=gg20_key.key_id, message=digest)
        )
        gg20_signed.append((digest, results["signer"].sign.signature))

    out["gg20_sign_throughput"] = await _throughput(
        gg20_signature, GG20_CONCURRENCY, GG20_THROUGHPUT_SECONDS, cpu_seconds, "signatures"
    )
    failures += sum(not verify(GG20, gg20_key.public_key, d, s) for d, s in gg20_signed)
    out["verification_failures"] = failures
    return out


async def _frost_batch(relay: Relay, key: pb.DKGResult, count: int) -> tuple[float, list[str]]:
    ms, results = await _timed(
        relay, SessionSpec("presign", _sid("nonces"), FROST, PARTIES, key_id=key.key_id, count=count)
    )
    ids = list(results["signer"].presign.presignature_ids)
    if len(ids) != count or list(results["client"].presign.presignature_ids) != ids:
        raise RuntimeError("the parties disagree on a batch of FROST nonces")
    return ms, ids


async def _frost_preprocessed(
    relays: dict[str, Relay], key: pb.DKGResult, cpu_seconds: Any
) -> tuple[dict[str, Any], int]:
    """FROST signing from preprocessed commitments: batches of PRESIGN_BATCH nonces made ahead
    (the pool a relay keeps), then each signature one round, one call per signer (the relay
    starts the caller's party, whose share rides in the signer's start, which answers DONE)."""
    out: dict[str, Any] = {}
    failures = 0
    relay = relays["exchange"]
    batch_ms: list[float] = []
    pool: list[str] = []
    while len(pool) < 2 * SIGN_REPS:
        ms, ids = await _frost_batch(relay, key, PRESIGN_BATCH)
        batch_ms.append(ms)
        pool += ids
    out["frost_presign_batch"] = {**_summary(batch_ms), "nonces_per_batch": PRESIGN_BATCH}

    async def sign(r: Relay, i: int, pid: str) -> float:
        nonlocal failures
        message = f"preprocessed {i}".encode()
        ms, results = await _timed(
            r,
            SessionSpec("sign", _sid("sign1"), FROST, PARTIES, key_id=key.key_id, message=message, presignature_id=pid),
        )
        failures += not verify(FROST, key.public_key, message, results["signer"].sign.signature)
        failures += results["signer"].sign.presignature_id != pid
        return ms

    samples: dict[str, list[float]] = {name: [] for name in relays}
    for i in range(SIGN_REPS):
        for name, r in relays.items():
            samples[name].append(await sign(r, i, pool.pop()))
    out["frost_sign_preprocessed"] = _summary(samples["exchange"][5:])
    out["frost_sign_preprocessed_unary"] = _summary(samples["unary"][5:])

    # Throughput, 16 in flight, on one stream, from a pool made ahead (not timed).
    while len(pool) < PREPROCESSED_POOL:
        pool += (await _frost_batch(relay, key, PRESIGN_BATCH))[1]
    verified: list[tuple[bytes, bytes]] = []

    async def one(i: int) -> None:
        if not pool:
            raise RuntimeError("the preprocessed nonce pool ran dry: raise PREPROCESSED_POOL")
        pid = pool.pop()
        message = f"preprocessed throughput {i}".encode()
        results = await _session(
            relay,
            SessionSpec("sign", _sid("sign1"), FROST, PARTIES, key_id=key.key_id, message=message, presignature_id=pid),
        )
        verified.append((message, results["signer"].sign.signature))

    out["frost_sign_preprocessed_throughput"] = await _throughput(
        one, CONCURRENCY, PREPROCESSED_THROUGHPUT_SECONDS, cpu_seconds, "signatures"
    )
    failures += sum(not verify(FROST, key.public_key, m, s) for m, s in verified)
    return out, failures


async def _throughput(one: Any, concurrency: int, seconds: float, cpu_seconds: Any, unit: str) -> dict[str, Any]:
    """Run `one(i)` from `concurrency` workers until `seconds` have passed (sessions started
    before then finish); rate, and CPU milliseconds per item in each process."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop_at:
            await one(w * 1_000_000 + i)
            done += 1
            i += 1

    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = {name: round((after - cpu0[name]) * 1000 / max(done, 1), 2) for name, after in cpu_seconds().items()}
    return {
        f"{unit}_per_second": round(done / elapsed, 1),
        "concurrency": concurrency,
        unit: done,
        "seconds": round(elapsed, 2),
        f"cpu_ms_per_{unit.rstrip('s')}": cpu,
    }


async def _main(work: Path) -> dict[str, Any]:
    # No policy service here: the operator's consent that the relay decides who receives shares.
    service = Service(work, enclave_args=("--allow-reshare-without-policy",))
    service.start()
    try:
        c = service.certs
        ring = HmacKeyRing({"dev": read_hex_secret(c.hmac_key)}, "dev")
        clients = {
            name: SignerClient.connect(
                f"127.0.0.1:{service.port}",
                ca=c.ca,
                cert=c.client_cert,
                key=c.client_key,
                hmac=ring,
                token_key=c.jwt_key,
                exchange=(name == "exchange"),
            )
            for name in ("exchange", "unary")
        }
        from tests.service.fixture_enclave import prime_slice

        # One prime slice for the client and every client' that replaces it, so a new client
        # never brings the Paillier key of the one it replaces; the backup has a slice of its own.
        client_primes: FixtureSource = prime_slice(0)
        local = LocalNode(ring, prime_source=client_primes, config=LOCAL_CONFIG)
        backup = LocalNode(ring, prime_source=prime_slice(2), config=LOCAL_CONFIG)
        try:
            relays = {
                name: Relay({"client": local, "signer": client, "backup": backup}) for name, client in clients.items()
            }
            results = await _bench(
                relays,
                service.cpu_seconds,
                clients["unary"],
                lambda: LocalNode(ring, prime_source=client_primes, config=LOCAL_CONFIG),
            )
        finally:
            for client in clients.values():
                await client.close()
            await local.close()
            await backup.close()
    finally:
        service.stop()
    results["setup"] = (
        "2-of-2 on loopback: relay + local party (this process), signer host and enclave as separate "
        f"processes on {os.cpu_count()} cores; SQLite store; fixture safe primes for GG20 pre-parameters; "
        "the relay reaches the signer over one SignerService.Exchange stream (figures without a suffix) "
        "or with one unary RPC per call (suffix _unary)"
    )
    targets = {
        "frost_sign_p50_ms": 5,
        "gg20_online_sign_p50_ms": 5,
        "frost_sign_per_second": 300,
        # issue #17: from preprocessed commitments, at most 3 rpc_floor p50, throughput at least
        # that of two-round signing in the same run
        "frost_sign_preprocessed_in_rpc_floors": 3,
        "frost_sign_preprocessed_per_second": results["frost_sign_throughput"]["signatures_per_second"],
    }
    results["targets"] = targets
    measured = {
        "frost_sign_p50_ms": results["frost_sign"]["p50_ms"],
        "gg20_online_sign_p50_ms": results["gg20_online_sign"]["p50_ms"],
        "frost_sign_per_second": results["frost_sign_throughput"]["signatures_per_second"],
        "frost_sign_preprocessed_in_rpc_floors": results["frost_sign_preprocessed"]["p50_ms"]
        / results["rpc_floor"]["p50_ms"],
        "frost_sign_preprocessed_per_second": results["frost_sign_preprocessed_throughput"]["signatures_per_second"],
    }
    results["targets_met"] = {
        name: (value >= targets[name]) if name.endswith("per_second") else (value <= targets[name])
        for name, value in measured.items()
    }
    # This machine's speed moves from hour to hour; latencies as multiples of one call compare better.
    floor = results["rpc_floor"]["p50_ms"]
    results["in_rpc_floors"] = {
        name: round(results[name]["p50_ms"] / floor, 2)
        for name in (
            "frost_sign",
            "gg20_online_sign",
            "frost_sign_unary",
            "gg20_online_sign_unary",
            "frost_sign_preprocessed",
            "frost_sign_preprocessed_unary",
            "frost_dkg",
            "frost_refresh",
            "gg20_dkg",
            "gg20_refresh",
            "frost_reshare_grow_2of2_to_2of3",
            "frost_reshare_recovery_2of3",
            "gg20_reshare_grow_2of2_to_2of3",
            "gg20_reshare_recovery_2of3",
        )
    }
    return results


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mpc-bench-service-") as tmp:
        return asyncio.run(_main(Path(tmp)))


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
