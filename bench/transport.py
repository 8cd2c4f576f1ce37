"""The host <-> enclave channel alone: `EnclaveClient` against a `FrameServer` whose handler does
no work, in two processes on a unix socket, so what is measured is the transport's own cost.

Measured:
- ping: one sequential round trip of a ping, milliseconds (p50, p95).
- deliver_1k: one sequential round trip of a SessionDeliver carrying ~1 KB of payload, answered
  with a SessionUpdate carrying ~1 KB (the size of a FROST signing hop), milliseconds.
- deliver_1k_throughput: round trips per second with `CONCURRENCY` callers sharing the client.
- client_cpu_us_per_call, server_cpu_us_per_call: CPU time of this process and of the server
  process per sequential deliver_1k round trip (the server's read from /proc: Linux only).

Run alone: python -m bench --only transport
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from door.address import parse_address
from enclave.transport.server import FrameServer
from mpc.v1 import enclave_pb2 as pb
from signer.link.client import EnclaveClient

REPO = Path(__file__).resolve().parent.parent
PAYLOAD_BYTES = 1024
WARMUP = 300
SEQUENTIAL_REPS = 3000
CONCURRENCY = 16
THROUGHPUT_SECONDS = 3.0


def _payload_message() -> pb.EnclaveMessage:
    return pb.EnclaveMessage(sender="client", recipient="signer", round=2, payload=b"\xa5" * PAYLOAD_BYTES)


async def _echo(request: pb.Request) -> pb.Response:
    kind = request.WhichOneof("body")
    if kind == "ping":
        return pb.Response(request_id=request.request_id, ping=pb.PingResponse())
    if kind == "session_deliver":
        deliver = request.session_deliver
        update = pb.SessionUpdate(
            session_id=deliver.session_id, state=pb.SESSION_STATE_RUNNING, outgoing=deliver.messages
        )
        return pb.Response(request_id=request.request_id, session_update=update)
    return pb.Response(request_id=request.request_id, error=pb.Error(code=pb.ERROR_CODE_INVALID_ARGUMENT))


async def _serve(uri: str) -> None:
    server = FrameServer(_echo)
    await server.start(parse_address(uri))
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def _process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 3), "p95_ms": round(p95, 3), "n": len(ordered)}


async def _measure(uri: str, server_pid: int) -> dict[str, object]:
    client = EnclaveClient(parse_address(uri), connect_timeout=5.0)
    deliver = pb.SessionDeliver(session_id="bench-session", messages=[_payload_message()])
    deadline = time.monotonic() + 10
    while True:
        try:
            await client.ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    try:
        results: dict[str, object] = {}
        for name, call in (
            ("ping", lambda: client.ping()),
            ("deliver_1k", lambda: client.session_deliver(deliver)),
        ):
            for _ in range(WARMUP):
                await call()
            samples: list[float] = []
            cpu0 = time.process_time()
            server_cpu0 = _process_cpu_seconds(server_pid)
            gc.disable()
            try:
                for _ in range(SEQUENTIAL_REPS):
                    t0 = time.perf_counter()
                    await call()
                    samples.append((time.perf_counter() - t0) * 1e3)
            finally:
                gc.enable()
            cpu = time.process_time() - cpu0
            server_cpu1 = _process_cpu_seconds(server_pid)
            results[name] = _summary(samples)
            if name == "deliver_1k":
                results["client_cpu_us_per_call"] = round(cpu / SEQUENTIAL_REPS * 1e6, 1)
                if server_cpu0 is not None and server_cpu1 is not None:
                    server_cpu = server_cpu1 - server_cpu0
                    results["server_cpu_us_per_call"] = round(server_cpu / SEQUENTIAL_REPS * 1e6, 1)

        done = 0
        stop_at = time.monotonic() + THROUGHPUT_SECONDS

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                update = await client.session_deliver(deliver)
                assert len(update.outgoing) == 1
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        elapsed = time.monotonic() - started
        results["deliver_1k_throughput"] = {
            "per_second": round(done / elapsed, 1),
            "concurrency": CONCURRENCY,
            "seconds": round(elapsed, 2),
        }
        return results
    finally:
        await client.close()


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        uri = f"unix://{os.path.join(tmp, 'enclave.sock')}"
        server = subprocess.Popen([sys.executable, "-m", "bench.transport", uri], cwd=REPO)
        try:
            return asyncio.run(_measure(uri, server.pid))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
