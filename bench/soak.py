"""Soak: a bounded mixed load against a real signer host and enclave, judged for errors and memory.

The set-up is the service benchmark's (bench/service.py): this process is the relay and the
caller's local party, the signer host and its enclave are separate processes on loopback (unix
socket, SQLite, mTLS + JWT + HMAC, one Exchange stream). For `--seconds` it keeps, all at once:
FROST signatures (`--frost-sign` in flight, each on a key drawn from those made so far), GG20
presignatures (`--gg20-presign`) feeding a pool that GG20 online signatures draw on
(`--gg20-sign`), and FROST and GG20 key generations (`--frost-dkg`, `--gg20-dkg`). Every
signature is verified with libsodium or libsecp256k1; a failed or unverified operation is an
error.

Output, JSON lines (stdout, and `--out`): one `{"type": "interval", ...}` per `--interval`
(default a minute) with the operations and errors of each kind, p50/p99 latency, RSS (MiB) and
open file descriptors of the host and the enclave (from /proc), and the sessions the host reports
active (`mpc_signer_sessions_active`, scraped from its metrics endpoint); then one
`{"type": "summary", ...}` with the totals and the verdict.

The verdict (exit status 1 when it fails):
- no operation failed;
- memory plateaus: over the judged window (from max(half the run, retention + warm-up) to the
  end; warm-up = min(60 s, a quarter of the run)) the least-squares slope of each process's RSS,
  times the window's length, stays under max(`--max-growth-percent` of its median RSS,
  `--min-growth-mib`);
- file descriptors plateau: the same fit of each process's fd count grows by at most
  `--max-fd-growth` over the window.
The window starts after finished sessions have filled the host's retention: the host keeps
finished sessions `sessions.retention_seconds` (set here with `--retention-seconds`; default the
product's 300 s for a run of 10 minutes or more, a fifth of the run for a shorter one), so before
then its memory grows by design.

Usage: python -m bench.soak [--seconds 600] [--out FILE] (or `make soak`,
`python -m bench --only soak` with MPC_SOAK_SECONDS). All traffic is to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.service import FROST, GG20, PARTIES, Service, _free_port, _session, _sid
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.jwt import read_hex_secret
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.client.verify import verify

KINDS = ("frost_sign", "gg20_sign", "gg20_presign", "frost_dkg", "gg20_dkg")
SAMPLE_SECONDS = 5.0
DRAIN_SECONDS = 180.0  # sessions in flight when the run ends must finish within this
MIB = 1024 * 1024


@dataclass
class Options:
    seconds: float = 600.0
    interval: float = 60.0
    frost_sign: int = 16
    gg20_sign: int = 2
    gg20_presign: int = 2
    frost_dkg: int = 1
    gg20_dkg: int = 1
    retention_seconds: float | None = None
    max_growth_percent: float = 5.0
    min_growth_mib: float = 8.0
    max_fd_growth: int = 8

    @property
    def retention(self) -> float:
        if self.retention_seconds is not None:
            return self.retention_seconds
        # The product's default for a run of 10 minutes or more; shorter runs keep a fifth of theirs.
        return 300.0 if self.seconds >= 600 else min(300.0, self.seconds / 5)


def proc_sample(pid: int) -> tuple[int, int]:
    """(RSS bytes, open fds) of a process, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def active_sessions(metrics_port: int) -> int:
    """Sum of the host's mpc_signer_sessions_active gauge over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mpc_signer_sessions_active{")
        )
    )


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2), "p99_ms": round(percentile(ordered, 0.99), 2)}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points (units of y per second)."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mt) * (y - my) for t, y in points) / var


def judge(samples: list[dict[str, Any]], opts: Options, errors: int) -> dict[str, Any]:
    """The verdict: errors, then the RSS and fd plateau rules over the judged window."""
    warmup = min(60.0, opts.seconds / 4)
    start = max(opts.seconds / 2, opts.retention + warmup)
    window = [s for s in samples if s["t"] >= start]
    failures: list[str] = []
    if errors:
        failures.append(f"{errors} operations failed")
    out: dict[str, Any] = {"window_seconds": [round(start, 1), round(opts.seconds, 1)], "failures": failures}
    if len(window) < 4:
        failures.append(f"only {len(window)} samples in the judged window: run longer")
        return out
    span = window[-1]["t"] - window[0]["t"]
    for proc in ("host", "enclave"):
        rss = [(s["t"], s[proc]["rss"]) for s in window]
        growth = slope(rss) * span
        median = statistics.median(y for _, y in rss)
        bound = max(opts.max_growth_percent / 100 * median, opts.min_growth_mib * MIB)
        fd_growth = slope([(s["t"], s[proc]["fds"]) for s in window]) * span
        out[proc] = {
            "rss_median_mib": round(median / MIB, 1),
            "rss_growth_mib": round(growth / MIB, 2),
            "rss_bound_mib": round(bound / MIB, 2),
            "fd_growth": round(fd_growth, 2),
        }
        if growth > bound:
            failures.append(f"{proc} RSS grew {growth / MIB:.1f} MiB over the window (bound {bound / MIB:.1f} MiB)")
        if fd_growth > opts.max_fd_growth:
            failures.append(
                f"{proc} file descriptors grew by {fd_growth:.1f} over the window (bound {opts.max_fd_growth})"
            )
    return out


@dataclass
class Tally:
    """Operations of one kind: counts and latencies of the current interval and of the run."""

    ops: int = 0
    errors: int = 0
    interval_ms: list[float] = field(default_factory=list)
    interval_errors: int = 0
    all_ms: list[float] = field(default_factory=list)

    def take_interval(self) -> dict[str, Any]:
        out = {"ops": len(self.interval_ms), "errors": self.interval_errors, **latency(self.interval_ms)}
        self.interval_ms, self.interval_errors = [], 0
        return out


class Load:
    """The workers: each repeats one kind of operation until `stop_at`."""

    def __init__(self, relay: Relay, opts: Options, frost_key: pb.DKGResult, gg20_key: pb.DKGResult) -> None:
        self.relay, self.opts = relay, opts
        self.frost_keys = [frost_key]
        self.gg20_key = gg20_key
        self.pool: asyncio.Queue[str] = asyncio.Queue(maxsize=64)
        self.tallies = {kind: Tally() for kind in KINDS}
        self.error_log: list[str] = []
        self.stop_at = 0.0

    async def frost_sign(self) -> None:
        key = secrets.choice(self.frost_keys[-64:])
        message = secrets.token_bytes(48)
        results = await _session(
            self.relay, SessionSpec("sign", _sid("soak-sign"), FROST, PARTIES, key_id=key.key_id, message=message)
        )
        if not verify(FROST, key.public_key, message, results["signer"].sign.signature):
            raise RuntimeError(f"FROST signature on key {key.key_id} does not verify")

    async def gg20_presign(self) -> None:
        results = await _session(
            self.relay, SessionSpec("presign", _sid("soak-pre"), GG20, PARTIES, key_id=self.gg20_key.key_id)
        )
        await self.pool.put(results["signer"].presign.presignature_id)

    async def gg20_sign(self) -> None:
        # With a presignature the enclave hashes the message itself (never a bare digest).
        message = secrets.token_bytes(48)
        digest = hashlib.sha256(message).digest()
        presignature_id = self.pool.get_nowait()
        results = await _session(
            self.relay,
            SessionSpec(
                "sign",
                _sid("soak-sign"),
                GG20,
                PARTIES,
                key_id=self.gg20_key.key_id,
                message=message,
                message_hash=pb.MESSAGE_HASH_SHA256,
                presignature_id=presignature_id,
            ),
        )
        sign = results["signer"].sign
        if sign.presignature_id != presignature_id:
            raise RuntimeError(f"signed with presignature {sign.presignature_id}, asked for {presignature_id}")
        if not verify(GG20, self.gg20_key.public_key, digest, sign.signature):
            raise RuntimeError("GG20 signature does not verify")

    async def frost_dkg(self) -> None:
        results = await _session(self.relay, SessionSpec("dkg", _sid("soak-dkg"), FROST, PARTIES, threshold=2))
        self.frost_keys.append(results["signer"].dkg)

    async def gg20_dkg(self) -> None:
        await _session(self.relay, SessionSpec("dkg", _sid("soak-dkg"), GG20, PARTIES, threshold=2))

    async def worker(self, kind: str) -> None:
        one: Callable[[], Awaitable[None]] = getattr(self, kind)
        tally = self.tallies[kind]
        while time.monotonic() < self.stop_at:
            if kind == "gg20_sign" and self.pool.empty():
                await asyncio.sleep(0.05)  # waiting for a presignature is not signing time
                continue
            t0 = time.perf_counter()
            try:
                await one()
            except Exception as exc:  # every failure is counted and reported
                tally.errors += 1
                tally.interval_errors += 1
                if len(self.error_log) < 20:
                    self.error_log.append(f"{kind}: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            ms = (time.perf_counter() - t0) * 1000
            tally.ops += 1
            tally.interval_ms.append(ms)
            tally.all_ms.append(ms)

    def workers(self) -> list[asyncio.Task[None]]:
        counts = {
            "frost_sign": self.opts.frost_sign,
            "gg20_sign": self.opts.gg20_sign,
            "gg20_presign": self.opts.gg20_presign,
            "frost_dkg": self.opts.frost_dkg,
            "gg20_dkg": self.opts.gg20_dkg,
        }
        return [asyncio.ensure_future(self.worker(kind)) for kind, n in counts.items() for _ in range(n)]


class Monitor:
    """Samples the host and enclave every SAMPLE_SECONDS; emits a line every interval."""

    def __init__(self, service: Service, metrics_port: int, load: Load, emit: Callable[[dict[str, Any]], None]):
        self.pids = {"enclave": service.procs[0].pid, "host": service.procs[1].pid}
        self.procs = service.procs
        self.metrics_port, self.load, self.emit = metrics_port, load, emit
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.monotonic()

    def sample(self) -> dict[str, Any]:
        dead = [name for name, proc in zip(("enclave", "host"), self.procs, strict=True) if proc.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} process exited during the soak")
        s: dict[str, Any] = {"t": time.monotonic() - self.t0}
        for name, pid in self.pids.items():
            rss, fds = proc_sample(pid)
            s[name] = {"rss": rss, "fds": fds}
        s["active_sessions"] = active_sessions(self.metrics_port)
        self.samples.append(s)
        return s

    def interval_line(self, index: int, s: dict[str, Any]) -> dict[str, Any]:
        tallies = {kind: t.take_interval() for kind, t in self.load.tallies.items()}
        return {
            "type": "interval",
            "index": index,
            "elapsed_s": round(s["t"], 1),
            "ops": sum(t["ops"] for t in tallies.values()),
            "errors": sum(t["errors"] for t in tallies.values()),
            "kinds": tallies,
            **{name: {"rss_mib": round(s[name]["rss"] / MIB, 1), "fds": s[name]["fds"]} for name in self.pids},
            "active_sessions": s["active_sessions"],
            "presignature_pool": self.load.pool.qsize(),
        }

    async def run(self, until: float, interval: float) -> None:
        index, next_line = 0, self.t0 + interval
        while True:
            now = time.monotonic()
            if now >= until:
                break
            await asyncio.sleep(min(SAMPLE_SECONDS, until - now, max(0.0, next_line - now)))
            s = await asyncio.to_thread(self.sample)
            if time.monotonic() >= next_line - 0.01:
                self.emit(self.interval_line(index, s))
                index += 1
                next_line += interval
        s = await asyncio.to_thread(self.sample)
        if any(t.interval_ms or t.interval_errors for t in self.load.tallies.values()):
            self.emit(self.interval_line(index, s))


async def _soak(work: Path, opts: Options, emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    metrics_port = _free_port()
    service = Service(
        work,
        extra_config=(
            "[metrics]",
            f'listen = "127.0.0.1:{metrics_port}"',
            "[sessions]",
            f"retention_seconds = {opts.retention}",
        ),
    )
    service.start()
    try:
        c = service.certs
        ring = HmacKeyRing({"dev": read_hex_secret(c.hmac_key)}, "dev")
        client = SignerClient.connect(
            f"127.0.0.1:{service.port}",
            ca=c.ca,
            cert=c.client_cert,
            key=c.client_key,
            hmac=ring,
            token_key=c.jwt_key,
            exchange=True,
        )
        from tests.service.fixture_enclave import prime_slice

        local = LocalNode(ring, prime_source=prime_slice(0))
        try:
            relay = Relay({"client": local, "signer": client})
            frost_key = (await _session(relay, SessionSpec("dkg", _sid("soak-dkg"), FROST, PARTIES, threshold=2)))[
                "signer"
            ].dkg
            gg20_key = (await _session(relay, SessionSpec("dkg", _sid("soak-dkg"), GG20, PARTIES, threshold=2)))[
                "signer"
            ].dkg
            load = Load(relay, opts, frost_key, gg20_key)
            monitor = Monitor(service, metrics_port, load, emit)
            load.stop_at = monitor.t0 + opts.seconds
            tasks = load.workers()
            monitor_task = asyncio.ensure_future(monitor.run(load.stop_at, opts.interval))
            try:
                await monitor_task
                drained = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
                undrained = len(drained[1])
            finally:
                for task in [*tasks, monitor_task]:
                    task.cancel()
                await asyncio.gather(*tasks, monitor_task, return_exceptions=True)
            errors = sum(t.errors for t in load.tallies.values()) + undrained
            if undrained:
                load.error_log.append(f"{undrained} operations still running {DRAIN_SECONDS:.0f}s after the end")
        finally:
            await client.close()
            await local.close()
    finally:
        service.stop()
    verdict = judge(monitor.samples, opts, errors)
    total_ops = sum(t.ops for t in load.tallies.values())
    return {
        "type": "summary",
        "seconds": opts.seconds,
        "ops": total_ops,
        "errors": errors,
        "ops_per_second": round(total_ops / opts.seconds, 1),
        "kinds": {kind: {"ops": t.ops, "errors": t.errors, **latency(t.all_ms)} for kind, t in load.tallies.items()},
        "concurrency": {
            "frost_sign": opts.frost_sign,
            "gg20_sign": opts.gg20_sign,
            "gg20_presign": opts.gg20_presign,
            "frost_dkg": opts.frost_dkg,
            "gg20_dkg": opts.gg20_dkg,
        },
        "retention_seconds": opts.retention,
        "peak": {
            name: {
                "rss_mib": round(max(s[name]["rss"] for s in monitor.samples) / MIB, 1),
                "fds": max(s[name]["fds"] for s in monitor.samples),
            }
            for name in ("host", "enclave")
        },
        "max_active_sessions": max(s["active_sessions"] for s in monitor.samples),
        "error_messages": load.error_log,
        "verdict": verdict,
        "passed": not verdict["failures"],
        "setup": f"2-of-2 on loopback, {os.cpu_count()} cores; relay + local party here, signer host and "
        "enclave as separate processes; SQLite; one Exchange stream; fixture safe primes",
    }


def soak(opts: Options, out: Path | None = None) -> dict[str, Any]:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    sink = out.open("w") if out is not None else None

    def emit(line: dict[str, Any]) -> None:
        text = json.dumps(line, sort_keys=True)
        print(text, flush=True)
        if sink is not None:
            sink.write(text + "\n")
            sink.flush()

    try:
        with tempfile.TemporaryDirectory(prefix="mpc-soak-") as tmp:
            summary = asyncio.run(_soak(Path(tmp), opts, emit))
        emit(summary)
        return summary
    finally:
        if sink is not None:
            sink.close()


def run() -> dict[str, Any]:
    """For `python -m bench --only soak`: MPC_SOAK_SECONDS long (default 600)."""
    return soak(Options(seconds=float(os.environ.get("MPC_SOAK_SECONDS", "600"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="how long the load runs")
    parser.add_argument("--interval", type=float, default=defaults.interval, help="seconds per report line")
    for kind in KINDS:
        parser.add_argument(
            f"--{kind.replace('_', '-')}", type=int, default=getattr(defaults, kind), help=f"{kind} sessions in flight"
        )
    parser.add_argument("--retention-seconds", type=float, help="the host's sessions.retention_seconds")
    parser.add_argument("--max-growth-percent", type=float, default=defaults.max_growth_percent)
    parser.add_argument("--min-growth-mib", type=float, default=defaults.min_growth_mib)
    parser.add_argument("--max-fd-growth", type=int, default=defaults.max_fd_growth)
    parser.add_argument("--out", type=Path, help="also write the JSON lines here")
    args = parser.parse_args(argv)
    opts = Options(**{k: v for k, v in vars(args).items() if k != "out"})
    if opts.seconds < 20:
        parser.error("--seconds: at least 20 (the plateau rule needs samples after the warm-up)")
    summary = soak(opts, args.out)
    for failure in summary["verdict"]["failures"]:
        print(f"soak failed: {failure}", file=sys.stderr)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
