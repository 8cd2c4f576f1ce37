"""`mpc-signer enclave-ping`, the enclave container's health check: exit 0 with the enclave's Info
while it answers on its socket, 1 (with the reason) when it does not."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import EnclaveProcess
from tests.ops.test_backup_cli import cli


def test_enclave_ping_follows_the_enclave(start_enclave: Callable[..., EnclaveProcess]) -> None:
    enclave = start_enclave()
    out = cli("enclave-ping", "--address", enclave.address)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["address"] == enclave.address and info["attestation_mode"] == "none" and info["version"]

    enclave.kill()
    out = cli("enclave-ping", "--address", enclave.address, "--timeout", "1")
    assert out.returncode == 1 and "enclave-ping" in out.stderr and "unavailable" in out.stderr
    assert cli("enclave-ping", "--address", "ftp://nowhere").returncode == 2
