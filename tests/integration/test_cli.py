"""The `mpc-signer` command line: certs, token, ping, config errors, and `serve` with the embedded
(supervised) enclave that `make run` uses."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from signer.auth.jwt import JwtVerifier, load_verification_key
from signer.ops.devcerts import DevCertPaths
from tests.conftest import REPO, SignerProcess, free_port, wait_for, write_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")}
    return subprocess.run(
        [sys.executable, "-m", "signer.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


def test_certs_writes_private_files(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = cli("certs", "--out", str(out))
    assert result.returncode == 0, result.stderr
    paths = DevCertPaths.under(out)
    for secret in (paths.ca_key, paths.server_key, paths.client_key, paths.jwt_key, paths.hmac_key, paths.enclave_psk):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    again = cli("certs", "--out", str(out))
    assert again.returncode == 1 and "exists" in again.stderr
    assert cli("certs", "--out", str(out), "--force").returncode == 0


def test_token_verifies_with_the_configured_key(dev_certs: DevCertPaths) -> None:
    result = cli("token", "--key", str(dev_certs.jwt_key), "--lifetime", "60")
    assert result.returncode == 0, result.stderr
    verifier = JwtVerifier(
        {"dev": load_verification_key(dev_certs.jwt_pub)},
        issuer="mpc-service",
        audience="mpc-signer",
        leeway_seconds=5,
        max_lifetime_seconds=900,
    )
    claims = verifier.verify(result.stdout.strip())
    assert claims.subject == "mpc-service"
    assert claims.expires_at - claims.issued_at == 60


def test_ping_prints_json(signer: SignerProcess) -> None:
    c = signer.certs
    result = cli(
        "ping", "--target", signer.target, "--ca", str(c.ca), "--cert", str(c.client_cert), "--key", str(c.client_key)
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["nodeId"] == "signer-test" and body["enclaveState"] == "ENCLAVE_STATE_READY"


def test_config_errors_name_the_key(tmp_path: Path, dev_certs: DevCertPaths) -> None:
    result = cli("token", env={"MPC_SIGNER_JWT_LEEWAY_SECONDS": "9999"})
    assert result.returncode == 2
    assert "jwt.leeway_seconds" in result.stderr and "MPC_SIGNER_JWT_LEEWAY_SECONDS" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlisten = "nowhere"\n')
    result = cli("serve", "--config", str(bad))
    assert result.returncode == 2 and "server.listen" in result.stderr
    missing = tmp_path / "missing.toml"
    # Every other file exists (a fresh clone has no var/certs), so the missing CA is what is reported.
    write_config(
        missing,
        {
            "tls": {
                "ca_file": tmp_path / "absent.pem",
                "cert_file": dev_certs.server_cert,
                "key_file": dev_certs.server_key,
            },
            "jwt": {"keys": {"dev": dev_certs.jwt_pub}},
            "hmac": {"keys": {"dev": dev_certs.hmac_key}, "active_key_id": "dev"},
        },
    )
    result = cli("serve", "--config", str(missing))
    assert result.returncode == 2 and "tls.ca_file" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_serve_supervises_an_embedded_enclave(
    dev_certs: DevCertPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the host's environment may hold secrets: the enclave child must not inherit them
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-secret")
    monkeypatch.setenv("PGPASSWORD", "canary-pg-password")
    monkeypatch.setenv("MPC_ENCLAVE_CANARY", "an enclave setting")
    port = free_port()
    c = dev_certs
    config = write_config(
        tmp_path / "signer.toml",
        {
            "server": {"listen": f"127.0.0.1:{port}", "node_id": "embedded-1", "grace_seconds": 0.5},
            "tls": {"ca_file": c.ca, "cert_file": c.server_cert, "key_file": c.server_key},
            "jwt": {"keys": {"dev": c.jwt_pub}},
            "hmac": {"keys": {"dev": c.hmac_key}},
            "enclave": {
                "mode": "embedded",
                "address": f"unix://{tmp_path}/enclave.sock",
                "health_interval_seconds": 0.2,
            },
        },
    )
    signer = SignerProcess(config, port, c, tmp_path).start()
    try:
        signer.wait_health(SERVING, timeout=15)
        children = _children(signer.proc.pid)
        assert len(children) == 1
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{children[0]}/environ").read_text().split("\0") if item
        )
        assert "canary" not in str(environ).replace("MPC_ENCLAVE_CANARY", "")
        assert set(environ) <= {"PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ", "PYTHONUNBUFFERED", "MPC_ENCLAVE_CANARY"}
        assert environ["MPC_ENCLAVE_CANARY"] == "an enclave setting"
        os.kill(children[0], signal.SIGKILL)
        signer.wait_health(NOT_SERVING, timeout=5)
        signer.wait_health(SERVING, timeout=15)  # restarted by the supervisor, host untouched
        assert signer.proc.poll() is None
        assert "embedded enclave exited" in signer.log()
        (restarted,) = _children(signer.proc.pid)
    finally:
        signer.stop()
    wait_for(lambda: not Path(f"/proc/{restarted}").exists(), 5, "the enclave child to stop with the host")
    assert not (tmp_path / "enclave.sock").exists()
