"""Fixtures for the TEE integration tests: a real enclave process (tests/tee/fixture_enclave.py:
`python -m enclave` with the NSM, the vsock hop to KMS and prime search replaced by test
stand-ins) and a real signer over mTLS in front of it.

start_tee_node (module)
    `start_tee_node(name, enclave_args=(), env=None, signer_config=None) -> Node`.
ring, local, connect
    As in tests/service/conftest.py (the caller's HMAC ring, its local party, SDK clients).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from tests.conftest import REPO, EnclaveProcess, SignerProcess, wait_for
from tests.service.conftest import Node, connect, local, ring  # noqa: F401 (fixtures used here)


class TeeEnclave(EnclaveProcess):
    def __init__(self, address: str, workdir: Path, extra_args: Sequence[str], env: Mapping[str, str]) -> None:
        super().__init__(address, workdir, None, extra_args)
        self.env = dict(env)

    def start(self, timeout: float = 15.0) -> TeeEnclave:
        args = [
            sys.executable,
            "-m",
            "tests.tee.fixture_enclave",
            "--listen",
            self.address,
            "--sealing-key-file",
            str(self.workdir / "sealing.key"),
            "--generate-sealing-key",
            *self.extra_args,
        ]
        env = {**os.environ, "MPC_TEST_PRIME_SLICE": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env=env)
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, f"enclave on {self.address}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"enclave exited with {self.proc.returncode}: {self.log()}")
        return self


@pytest.fixture(scope="module")
def start_tee_node(
    tmp_path_factory: pytest.TempPathFactory, start_signer: Callable[..., SignerProcess]
) -> Iterator[Callable[..., Node]]:
    nodes: list[Node] = []

    def start(
        name: str,
        enclave_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        signer_config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Node:
        workdir = tmp_path_factory.mktemp(f"tee-{name}")
        enclave = TeeEnclave(f"unix://{workdir}/e.sock", workdir, enclave_args, env or {})
        enclave.start()
        url = f"sqlite:{workdir}/signer.db"
        config: dict[str, dict[str, Any]] = {"server": {"node_id": name}, "storage": {"url": url}}
        for section, values in (signer_config or {}).items():
            config.setdefault(section, {}).update(values)
        signer = start_signer(enclave, config)
        node = Node(name, enclave, signer, url)  # type: ignore[arg-type]
        nodes.append(node)
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        return node

    yield start
    for node in nodes:
        node.stop()
