"""A real Consul agent in dev mode on free loopback ports, for the discovery tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def consul_binary() -> str:
    """The agent binary: $MPC_SIGNER_CONSUL_BIN, else the one tools/install-consul puts in .tools."""
    explicit = os.environ.get("MPC_SIGNER_CONSUL_BIN")
    if explicit:
        return explicit
    local = ROOT / ".tools" / "consul" / "usr" / "bin" / "consul"
    if not local.exists():
        subprocess.run([str(ROOT / "tools" / "install-consul"), str(ROOT / ".tools")], check=True)
    return str(local)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ConsulAgent:
    http_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.address + path, timeout=5) as r:  # noqa: S310 (loopback test agent)
            return json.loads(r.read() or b"null")

    def checks(self) -> dict[str, dict[str, object]]:
        result = self.get("/v1/agent/checks")
        assert isinstance(result, dict)
        return result

    def services(self) -> dict[str, dict[str, object]]:
        result = self.get("/v1/agent/services")
        assert isinstance(result, dict)
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_agent(workdir: Path, *, http_port: int | None = None, tls: dict[str, str] | None = None) -> ConsulAgent:
    """Start `consul agent -dev` bound to loopback; `tls` gives ca_file/cert_file/key_file for checks."""
    binary = consul_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = http_port or free_port()
    config = {"log_level": "INFO", **(tls or {})}
    config_path = workdir / "agent.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / f"consul-{port}.log"
    args = [
        binary,
        "agent",
        "-dev",
        "-bind",
        "127.0.0.1",
        "-client",
        "127.0.0.1",
        "-http-port",
        str(port),
        "-dns-port",
        "-1",
        "-grpc-port",
        "-1",
        "-serf-lan-port",
        str(free_port()),
        "-serf-wan-port",
        str(free_port()),
        "-server-port",
        str(free_port()),
        "-config-file",
        str(config_path),
    ]
    log = log_path.open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    agent = ConsulAgent(port, proc, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"consul agent exited: {log_path.read_text()[-2000:]}")
        try:
            if agent.get("/v1/status/leader"):
                return agent
        except OSError:
            pass
        time.sleep(0.1)
    agent.stop()
    raise RuntimeError("consul agent did not elect a leader within 30s")


def have_install_tools() -> bool:
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None
