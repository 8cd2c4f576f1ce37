"""Issue 16's enclave findings, through the real enclave process over its unix socket
(`python -m tests.engine.paced_enclave`, fixture primes paced like a slow prime search):

- peers' messages for later rounds: an oversized one, or one more than a round ahead, aborts only
  its session naming the sender; what the enclave holds stays within the sessions' reservations
  and its memory does not grow with what peers send (it did: 1 MiB per message, unbounded);
- GG20 key generations waiting for pre-parameters hold no worker: FROST and GG20 work carries on
  and every such StartDKG answers within about its allowed wait (it held a worker for 20 s);
- connections that never speak are closed after the handshake timeout, the cap makes room by
  closing the oldest silent one and refuses one more when all have spoken, idle ones are closed,
  and the host's own connection, which pings, keeps working throughout."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from coincurve import PublicKey
from nacl.signing import VerifyKey
from prometheus_client import generate_latest

from enclave.engine import Engine, limits
from enclave.protocols.driver import Frame, Kind
from mpc.v1 import enclave_pb2 as pb
from signer.link.client import EnclaveClient, EnclaveRequestError, parse_address
from signer.metrics import Metrics
from signer.storage import open_store
from tests.conftest import REPO, EnclaveProcess, wait_for
from tests.engine import relay
from tests.engine.conftest import FROST, GG20
from tests.service.fixture_enclave import prime_slice

RUNNING, FAILED = pb.SESSION_STATE_RUNNING, pb.SESSION_STATE_FAILED
PAIR = ("remote", "local")


class PacedEnclave(EnclaveProcess):
    """`python -m tests.engine.paced_enclave` with its pacing in the environment."""

    def __init__(self, workdir: Path, extra_args: Sequence[str], env: dict[str, str]) -> None:
        super().__init__(f"unix://{workdir}/e.sock", workdir, None, extra_args)
        self.env = env

    def start(self, timeout: float = 30.0) -> PacedEnclave:
        args = [sys.executable, "-m", "tests.engine.paced_enclave", "--listen", self.address, *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env={**os.environ, **self.env})
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, "the paced enclave")  # type: ignore[union-attr]
        assert self.alive(), self.log()
        return self

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


@pytest.fixture
def paced(tmp_path: Path) -> Iterator[list[PacedEnclave]]:
    started: list[PacedEnclave] = []
    yield started
    for p in started:
        p.stop()


def start_paced(started: list[PacedEnclave], tmp: Path, *args: str, pair_seconds: float = 0.0) -> PacedEnclave:
    workdir = tmp / f"enclave-{len(started)}"
    workdir.mkdir()
    key = workdir / "sealing.key"
    proc = PacedEnclave(
        workdir,
        ["--sealing-key-file", str(key), "--generate-sealing-key", "--preparams-pool-size", "1", *args],
        {"MPC_TEST_PRIME_SLICE": "1", "MPC_TEST_PAIR_SECONDS": str(pair_seconds)},
    )
    started.append(proc)
    return proc.start()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Engine]:
    # prime slice 0: never a prime of the remote's slice 1
    engine = relay.make_engines(["local"], tmp_path, prime_slice(0))["local"]
    yield engine
    engine.close()


class Remote:
    def __init__(self, client: EnclaveClient) -> None:
        self.client = client

    async def start(self, request: pb.SessionStart) -> pb.SessionUpdate:
        return await self.client.session_start(request)

    async def deliver(self, request: pb.SessionDeliver) -> pb.SessionUpdate:
        return await self.client.session_deliver(request)


def message(sender: str, rnd: int, kind: Kind, size: int, recipient: str = "") -> pb.EnclaveMessage:
    """A well-framed message of exactly `size` bytes (its body is junk: held unexamined)."""
    frame = Frame(rnd, kind, (), b"\x00" * (size - 6)).encode()
    assert len(frame) == size
    return pb.EnclaveMessage(sender=sender, recipient=recipient, round=rnd, payload=frame)


async def gauges(client: EnclaveClient) -> dict[str, int]:
    return dict((await client.info()).gauges)


async def sign_frost_and_verify(parties: dict[str, object], tag: str) -> None:
    dkg = relay.results(await relay.run(parties, {p: relay.dkg(f"fd-{tag}", FROST, PAIR, 2, p) for p in PAIR}))  # type: ignore[arg-type]
    msg = f"still signing ({tag})".encode()
    out = relay.results(
        await relay.run(parties, {p: relay.sign(f"fs-{tag}", FROST, PAIR, p, dkg[p].sealed_share, msg) for p in PAIR})  # type: ignore[arg-type]
    )
    VerifyKey(dkg["local"].public_key).verify(msg, out["remote"].signature)


async def test_held_messages_are_bounded_and_a_party_over_the_bound_is_named(
    tmp_path: Path, paced: list[PacedEnclave], local: Engine
) -> None:
    n = 32
    per_session = limits.for_session("frost", "dkg", n, 2, 2048).queue_bound(n - 1)
    cap = 5 * per_session + per_session // 2
    proc = start_paced(paced, tmp_path, "--max-sessions", "64", "--max-held-bytes", str(cap))
    client = EnclaveClient(parse_address(proc.address), call_timeout=60.0)
    names = [f"p{i}" for i in range(n)]
    peers = names[1:]
    bound = limits.frost_dkg(n, 2)[1].direct
    try:
        # five 32-party DKGs fit the held-message budget; a sixth is refused at start
        for k in range(5):
            assert (await client.session_start(relay.dkg(f"big-{k}", FROST, names, 2, "p0"))).state == RUNNING
        with pytest.raises(EnclaveRequestError) as refused:
            await client.session_start(relay.dkg("big-5", FROST, names, 2, "p0"))
        assert refused.value.code == pb.ERROR_CODE_RESOURCE_EXHAUSTED
        assert f"({per_session} bytes)" in refused.value.message and str(cap) in refused.value.message

        # every peer's round-2 message at the bound is held (this party is in round 1)
        for k in range(2):
            msgs = [message(p, 2, Kind.DIRECT, bound, "p0") for p in peers]
            update = await client.session_deliver(pb.SessionDeliver(session_id=f"big-{k}", messages=msgs))
            assert update.state == RUNNING, update.reason
        g = await gauges(client)
        assert g["held_message_bytes"] == 2 * len(peers) * bound <= g["held_message_bytes_reserved"]
        assert g["held_message_bytes_reserved"] == 5 * per_session and g["held_message_bytes_limit"] == cap

        # 1 MiB messages (what was held unexamined before), one request each: the first aborts
        # its session naming the sender; the enclave's memory does not follow what peers send
        rss_before = proc.rss_mib()
        for k in (2, 3, 4):
            for p in peers:
                try:
                    update = await client.session_deliver(
                        pb.SessionDeliver(session_id=f"big-{k}", messages=[message(p, 2, Kind.DIRECT, 1 << 20, "p0")])
                    )
                except EnclaveRequestError as exc:
                    assert exc.code == pb.ERROR_CODE_FAILED_PRECONDITION  # the session already failed
                    continue
                assert update.state == FAILED and list(update.culprits) == ["p1"] and p == "p1"
                expected = f"1048576-byte direct message for round 2 exceeds the protocol's bound of {bound} bytes"
                assert update.reason == expected
        rss_growth = proc.rss_mib() - rss_before
        print(f"enclave RSS {rss_before:.0f} MiB -> {proc.rss_mib():.0f} MiB after 93 MiB of oversized messages")
        assert rss_growth < 48, f"enclave RSS grew by {rss_growth:.0f} MiB"

        # a message two rounds ahead: GG20 key generation (3 rounds) in round 1 gets a round-3 one
        trio = ["p0", "p1", "p2"]
        assert (await client.session_start(relay.dkg("early", GG20, trio, 2, "p0"))).state == RUNNING
        early = await client.session_deliver(
            pb.SessionDeliver(session_id="early", messages=[message("p2", 3, Kind.BROADCAST, 100)])
        )
        assert early.state == FAILED and list(early.culprits) == ["p2"]
        assert early.reason == "message for round 3 while this party is in round 1 (no honest party is that far ahead)"

        # only those sessions: the first two still run and hold what they held; the failed ones
        # gave their reservations back, so new sessions start and a real one signs
        for k in range(2):
            update = await client.session_deliver(pb.SessionDeliver(session_id=f"big-{k}"))
            assert update.state == RUNNING
        g = await gauges(client)
        assert g["held_message_bytes"] == 2 * len(peers) * bound
        assert g["held_message_bytes_reserved"] == 2 * per_session
        assert g["messages_over_bound_total"] == 3 and g["messages_too_early_total"] == 1
        await sign_frost_and_verify({"remote": Remote(client), "local": local}, "after")
    finally:
        await client.close()


async def test_key_generations_waiting_for_preparams_hold_no_worker(
    tmp_path: Path, paced: list[PacedEnclave], local: Engine
) -> None:
    # one pair at once (for the key below), then none for a minute: every later GG20 key
    # generation finds the pool empty
    proc = start_paced(paced, tmp_path, "--max-sessions", "64", "--preparams-wait-seconds", "1", pair_seconds=60)
    client = EnclaveClient(parse_address(proc.address), call_timeout=60.0)
    parties: dict[str, object] = {"remote": Remote(client), "local": local}
    try:
        key = relay.results(await relay.run(parties, {p: relay.dkg("key", GG20, PAIR, 2, p) for p in PAIR}))  # type: ignore[arg-type]

        async def waiting_dkg(i: int) -> tuple[float, int]:
            t0 = time.monotonic()
            try:
                update = await client.session_start(relay.dkg(f"wait-{i}", GG20, ("remote", f"x{i}"), 2, "remote"))
                code = pb.ERROR_CODE_UNSPECIFIED if update.state == RUNNING else -1
            except EnclaveRequestError as exc:
                code = exc.code
            return time.monotonic() - t0, code

        async def timed(name: str, work: object) -> tuple[str, float]:
            t0 = time.monotonic()
            await work  # type: ignore[misc]
            return name, time.monotonic() - t0

        async def presign_and_sign() -> None:
            pre = relay.results(
                await relay.run(parties, {p: relay.presign("pre", PAIR, p, key[p].sealed_share) for p in PAIR})  # type: ignore[arg-type]
            )
            digest = hashlib.sha256(b"during the pile-up").digest()
            out = relay.results(
                await relay.run(
                    parties,
                    {  # type: ignore[arg-type]
                        p: relay.sign(
                            "sig",
                            GG20,
                            PAIR,
                            p,
                            key[p].sealed_share,
                            b"during the pile-up",
                            presignature=pre[p].sealed_presignatures[0],
                            message_hash=pb.MESSAGE_HASH_SHA256,
                        )
                        for p in PAIR
                    },
                )
            )
            sig = out["remote"].signature
            assert PublicKey.from_signature_and_message(sig, digest, hasher=None).format() == key["local"].public_key

        waits = [asyncio.ensure_future(waiting_dkg(i)) for i in range(16)]
        await asyncio.sleep(0.05)  # the key generations are waiting first
        others = await asyncio.gather(
            timed("frost", sign_frost_and_verify(parties, "pile-up")), timed("gg20", presign_and_sign())
        )
        answers = await asyncio.gather(*waits)
        print("waiting StartDKG answers (s):", sorted(round(t, 2) for t, _ in answers), "others (s):", others)
        assert all(code == pb.ERROR_CODE_RESOURCE_EXHAUSTED for _, code in answers)
        assert max(t for t, _ in answers) < 5.0  # allowed 1 s; they took 20 s in a worker each before
        durations = dict(others)
        assert durations["frost"] < 5.0 and durations["gg20"] < 15.0
        g = await gauges(client)
        assert g["preparams_refused_at_once_total"] + g["preparams_refused_after_wait_total"] == 16
        assert g["preparams_waiting"] == 0
    finally:
        await client.close()


def _silent(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def _closed_by_peer(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def test_silent_connections_time_out_and_the_cap_spares_the_host(
    tmp_path: Path, paced: list[PacedEnclave]
) -> None:
    proc = start_paced(
        paced, tmp_path, "--channel-handshake-timeout", "1", "--max-connections", "4", "--channel-idle-timeout", "3"
    )
    host = EnclaveClient(parse_address(proc.address))
    extra: list[EnclaveClient] = []
    raw: list[socket.socket] = []
    try:
        await host.ping()
        raw = [_silent(proc.socket_path) for _ in range(3)]  # the cap is reached
        await asyncio.sleep(0.2)
        newest = _silent(proc.socket_path)  # makes room by closing the oldest silent one
        raw.append(newest)
        assert await asyncio.to_thread(_closed_by_peer, raw[0], 2.0)
        # the other silent ones are closed by the handshake timeout
        t0 = time.monotonic()
        assert all([await asyncio.to_thread(_closed_by_peer, s, 3.0) for s in raw[1:]])
        assert time.monotonic() - t0 < 3.0
        await host.ping()
        g = await gauges(host)
        assert g["channel_connections_evicted_total"] == 1 and g["channel_connections_silent_closed_total"] == 3

        # three more clients that spoke fill the cap: one more connection is refused at once
        extra = [EnclaveClient(parse_address(proc.address)) for _ in range(3)]
        for c in extra:
            await c.ping()
        refused = _silent(proc.socket_path)
        raw.append(refused)
        assert await asyncio.to_thread(_closed_by_peer, refused, 1.0)
        assert (await gauges(host))["channel_connections_refused_total"] == 1

        # the host pings (as its health check does) and is never idle; the others are closed
        # after 3 s idle, and a client that comes back just reconnects
        conn = host._conn
        for _ in range(10):
            await host.ping()
            await asyncio.sleep(0.5)
        assert host._conn is conn and host.connected
        g = await gauges(host)
        assert g["channel_connections_idle_closed_total"] == 3 and g["channel_connections_open"] == 1
        await extra[0].ping()

        # the host exports the gauges as metrics
        metrics = Metrics()
        store = await open_store(f"sqlite:///{tmp_path}/host.db")
        try:
            await metrics.refresh_pools(store, host)
        finally:
            await store.close()
        scrape = generate_latest(metrics.registry).decode()
        assert "mpc_signer_enclave_channel_connections_idle_closed_total 3.0" in scrape
        assert "mpc_signer_enclave_held_message_bytes_limit 2.68435456e+08" in scrape
    finally:
        for s in raw:
            s.close()
        for c in [host, *extra]:
            await c.close()
