"""Process helpers for the operations tests: signer nodes with a chosen store and sealing key, and
a private PostgreSQL cluster that a test may stop and restart (never the machine's shared one).

Nodes reuse the service tests' pieces (`tests.service.conftest`: the fixture-primes enclave,
`Node`, the relay helpers); what differs here is that several nodes may share one sealing key
(backup restore, horizontal scale) and one store, and take any extra configuration (Consul).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Node as RelayNode
from signer.client.relay import Party
from signer.client.spec import Outcome, SessionSpec
from tests.conftest import REPO, SignerProcess, free_port, wait_for
from tests.service.conftest import FixtureEnclave, Node


class SharedKeyEnclave(FixtureEnclave):
    """The fixture-primes enclave sealing with a given key file (created if missing)."""

    def __init__(self, address: str, workdir: Path, sealing_key: Path, prime_slice: int) -> None:
        super().__init__(address, workdir)
        self.sealing_key = sealing_key
        self.prime_slice = prime_slice

    def start(self, timeout: float = 15.0) -> SharedKeyEnclave:
        args = [
            sys.executable,
            "-m",
            "tests.service.fixture_enclave",
            "--listen",
            self.address,
            "--sealing-key-file",
            str(self.sealing_key),
            "--generate-sealing-key",
            *self.extra_args,
        ]
        env = {**os.environ, "MPC_TEST_PRIME_SLICE": str(self.prime_slice)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env=env)
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, f"enclave on {self.address}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"enclave exited with {self.proc.returncode}: {self.log()}")
        return self


def start_node(
    start_signer: Callable[..., SignerProcess],
    workdir: Path,
    name: str,
    store_url: str,
    sealing_key: Path,
    *,
    prime_slice: int = 1,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Node:
    """An enclave (sealing with `sealing_key`) and a signer (node id `name`, store `store_url`)."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the store: private
    enclave = SharedKeyEnclave(f"unix://{workdir}/e.sock", workdir, sealing_key, prime_slice)
    enclave.start()
    sections: dict[str, dict[str, Any]] = {"server": {"node_id": name}, "storage": {"url": store_url}}
    for section, values in (config or {}).items():
        sections.setdefault(section, {}).update(values)
    signer = start_signer(enclave, sections)
    signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    return Node(name, enclave, signer, store_url)


class HookedParty:
    """A party whose every delivery first awaits `hook(kind, delivery_number)`: the place where a
    test injects a fault at a chosen point of a session."""

    def __init__(self, inner: Party, hook: Callable[[str, int], Awaitable[None]]) -> None:
        self._inner = inner
        self._hook = hook
        self._kind = ""
        self._deliveries = 0
        self.party_id = inner.party_id

    @property
    def outcome(self) -> Outcome:
        return self._inner.outcome

    @property
    def remote(self) -> bool:
        return self._inner.remote

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        self._kind = spec.kind
        return await self._inner.start(spec, initial)

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        self._deliveries += 1
        await self._hook(self._kind, self._deliveries)
        return await self._inner.deliver(messages)

    async def refresh(self) -> Outcome:
        return await self._inner.refresh()


class HookedNode:
    def __init__(self, inner: RelayNode, hook: Callable[[str, int], Awaitable[None]]) -> None:
        self._inner = inner
        self._hook = hook

    def party(self, party_id: str) -> HookedParty:
        return HookedParty(self._inner.party(party_id), self._hook)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries directory, if any."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for bin_dir in reversed(candidates):
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port, trust authentication, no unix
    socket. Runs as the `postgres` user when the tests run as root (initdb refuses root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mpc-ops-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        return self

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
