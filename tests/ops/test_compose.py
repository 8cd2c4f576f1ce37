"""docker-compose.yml and the host Dockerfile, validated without a Docker engine: the file parses,
conforms to the Compose specification schema (the one docker-compose 1.29.2 ships, fetched by
tools/fetch-compose-schema), every file it references exists, every MPC_SIGNER_* variable is one
the configuration accepts and the values load, and every command it runs is one our CLI accepts."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from signer.cli import build_parser
from signer.config.loader import ENV_PREFIX, env_var_names, load_config
from tests.test_lock import check_lock

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = ROOT / ".tools" / "compose-spec.json"
HOST_IMAGE_SERVICES = ("certs", "enclave", "signer")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA.exists():
        subprocess.run(
            [str(ROOT / "tools" / "fetch-compose-schema"), str(SCHEMA)],
            check=True,
            timeout=300,
            env={**os.environ, "PYTHON": sys.executable},
        )
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def test_conforms_to_the_compose_specification(compose: dict[str, Any], schema: dict[str, Any]) -> None:
    # The file declares draft 2019-09 (as "...2019-09/schema#", which jsonschema does not look up).
    assert "2019-09" in schema["$schema"]
    validator_class = jsonschema.Draft201909Validator
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # The validator is live: a wrong type under a service is caught.
    broken = json.loads(json.dumps(compose))
    broken["services"]["signer"]["ports"] = 9091
    assert list(validator_class(schema).iter_errors(broken))


def test_the_four_services_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "consul", "enclave", "signer"} <= services.keys()
    for name in ("postgres", "consul", "enclave", "signer"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    depends = services["signer"]["depends_on"]
    assert depends["enclave"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert services["enclave"]["network_mode"] == "none"  # reachable through its socket only


def test_referenced_files_exist_and_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), (name, context)
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), (name, dockerfile)
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            else:
                source, kind = volume.get("source", ""), volume["type"]
            if kind == "bind":
                assert (ROOT / source).exists(), (name, source)
            elif kind == "volume":
                assert source in declared, (name, source)
        for key in ("env_file",):
            for f in [service[key]] if isinstance(service.get(key), str) else service.get(key, []):
                assert (ROOT / f).is_file(), (name, f)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_signer_environment_is_the_configuration_reference(compose: dict[str, Any]) -> None:
    known = set(env_var_names())
    for name, service in compose["services"].items():
        for var in environment(service):
            if var.startswith(ENV_PREFIX):
                assert var in known, (name, var)
    env = environment(compose["services"]["signer"])
    config = load_config(environ=env)  # every value parses and passes the cross-checks
    assert config.enclave.mode == "external" and config.enclave.address.startswith("unix://")
    assert config.storage.url.startswith("postgresql://")
    assert config.consul.enabled and config.metrics.listen
    # The signer and the enclave meet at the same socket, on a volume both mount.
    socket_dir = str(Path(config.enclave.address.removeprefix("unix://")).parent)
    mounts = {
        svc: {v.split(":")[0] for v in compose["services"][svc]["volumes"] if v.split(":")[1] == socket_dir}
        for svc in ("enclave", "signer")
    }
    assert mounts["enclave"] and mounts["enclave"] == mounts["signer"]
    enclave_command = compose["services"]["enclave"]["command"]
    assert enclave_command[enclave_command.index("--listen") + 1] == config.enclave.address
    # Files the configuration names live on volumes mounted into the signer.
    mounted = {v.split(":")[1] for v in compose["services"]["signer"]["volumes"]}
    for path in (
        config.tls.ca_file,
        config.tls.cert_file,
        config.tls.key_file,
        *config.jwt.keys.values(),
        *config.hmac.keys.values(),
    ):
        assert any(str(path).startswith(m + "/") for m in mounted), path


def test_commands_are_ones_the_cli_accepts(compose: dict[str, Any]) -> None:
    parser = build_parser()
    services = compose["services"]
    for name in ("enclave", "signer"):
        parser.parse_args(services[name]["command"])
        test = services[name]["healthcheck"]["test"]
        assert test[1] == "mpc-signer"
        parser.parse_args(test[2:])
    shell = services["certs"]["command"][0]
    certs_args = shlex.split(shell.split("||", 1)[1])
    assert certs_args[0] == "mpc-signer"
    parser.parse_args(certs_args[1:])


def test_dockerfile_installs_the_runtime_lock_as_tested() -> None:
    """The host image installs requirements/runtime.lock whole, hashes required, and keeps no pin
    list of its own; the lock is the tested one (tests/test_lock.py: this virtualenv holds the
    dev lock, which pins every runtime package as the runtime lock does)."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"==[0-9]", text), "versions belong in requirements/runtime.lock"
    runs = " && ".join(re.findall(r"^RUN (.*?)(?<!\\)$", text.replace("\\\n", " "), re.M | re.S))
    installs = [shlex.split(part) for part in runs.split("&&") if "pip install" in part]
    deps = next(argv for argv in installs if "--require-hashes" in argv)
    assert deps[deps.index("install") + 1 :] == [
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "-r",
        "/build/runtime.lock",
        "-r",
        "/build/build-tools.txt",
    ]
    project = next(argv for argv in installs if argv is not deps)
    assert "--no-deps" in project, "the project itself must not resolve dependencies"
    assert "lock_subset.py /build/dev.lock setuptools wheel > /build/build-tools.txt" in runs
    assert "pip uninstall --yes pip setuptools wheel" in runs
    locked = check_lock.read_lock(ROOT / "requirements" / "runtime.lock")
    declared = [r for r in metadata.requires("mpc-signer") or [] if "extra ==" not in r]
    for requirement in declared:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)  # type: ignore[union-attr]
        assert name.lower().replace("_", "-") in locked, requirement
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path


def _mapped(args: list[str], mapping: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        for container_path, local_path in mapping.items():
            arg = arg.replace(container_path, local_path)
        out.append(arg)
    return out


@pytest.mark.consul
def test_consul_command_runs_on_the_real_agent(compose: dict[str, Any], tmp_path: Path) -> None:
    """The agent's flags and inline HCL, as compose passes them, start a real Consul 1.8.7 (paths
    mapped to a temporary copy of the dev credentials, loopback and free ports instead of the
    container's network)."""
    from signer.ops.devcerts import write_dev_certs
    from tests.ops.consul_agent import consul_binary, free_port

    certs = write_dev_certs(tmp_path / "certs")
    service = compose["services"]["consul"]
    assert service["entrypoint"] == ["consul", "agent"]
    args = _mapped(service["command"], {"/etc/mpc-signer/certs": str(certs.dir), "/tmp/consul": str(tmp_path / "d")})
    args = [a for a in args if not a.startswith("-client=")]
    port = free_port()
    proc = subprocess.Popen(
        [
            consul_binary(),
            "agent",
            *args,
            "-client=127.0.0.1",
            "-bind=127.0.0.1",
            f"-http-port={port}",
            "-dns-port=-1",
            "-grpc-port=-1",
            f"-serf-lan-port={free_port()}",
            f"-serf-wan-port={free_port()}",
            f"-server-port={free_port()}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        import time
        import urllib.request

        deadline = time.monotonic() + 30
        config: dict[str, Any] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agent/self", timeout=2) as r:
                    config = json.loads(r.read())["DebugConfig"]
                break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert config["CAFile"] == str(certs.ca) and config["CertFile"] == str(certs.client_cert)
        assert config["EnableAgentTLSForChecks"] is True and config["ServerName"] == "localhost"
    finally:
        proc.terminate()
        proc.wait(10)


CLI = [sys.executable, "-m", "signer.cli"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")}


@pytest.mark.consul
def test_enclave_and_signer_services_run_with_their_healthchecks(
    compose: dict[str, Any], tmp_path: Path, dev_certs: Any
) -> None:
    """The enclave and signer services run as compose runs them, without Docker: the same commands
    and MPC_SIGNER_* environment, with container paths mapped to temporary directories, host names
    to loopback, PostgreSQL to SQLite. The enclave seals with a key generated on the sealing
    volume; both health checks pass; the signer registers in Consul (a real agent configured
    with the compose flags) and its gRPC check passes over mTLS; metrics answer."""
    import urllib.request

    from tests.conftest import REPO, free_port, wait_for
    from tests.ops.consul_agent import start_agent
    from tests.ops.test_signer_consul import tls_agent_config

    grpc_port, metrics_port = free_port(), free_port()
    mapping = {
        "/run/mpc-enclave": str(tmp_path / "run"),
        "/etc/mpc-signer/sealing": str(tmp_path / "sealing"),
        "/etc/mpc-signer/certs": str(dev_certs.dir),
        "0.0.0.0:9091": f"127.0.0.1:{grpc_port}",
        "127.0.0.1:9091": f"127.0.0.1:{grpc_port}",
        "0.0.0.0:9464": f"127.0.0.1:{metrics_port}",
    }
    (tmp_path / "run").mkdir()
    (tmp_path / "sealing").mkdir()
    services = compose["services"]
    procs: list[subprocess.Popen[bytes]] = []
    agent = start_agent(tmp_path / "consul", tls=tls_agent_config(dev_certs))
    try:
        log = (tmp_path / "enclave.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*CLI, *_mapped(services["enclave"]["command"], mapping)],
                cwd=REPO,
                env=_clean_env(),
                stdout=log,
                stderr=log,
            )
        )
        socket_path = tmp_path / "run" / "enclave.sock"
        wait_for(lambda: socket_path.exists() or procs[0].poll() is not None, 30, "the enclave socket")
        assert procs[0].poll() is None, (tmp_path / "enclave.log").read_text()
        assert (tmp_path / "sealing" / "sealing.key").exists()
        check = _mapped(services["enclave"]["healthcheck"]["test"][2:], mapping)
        out = subprocess.run([*CLI, *check], cwd=REPO, env=_clean_env(), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr

        env = {k: _mapped([v], mapping)[0] for k, v in environment(services["signer"]).items()}
        env["MPC_SIGNER_STORAGE_URL"] = f"sqlite:{tmp_path}/signer.db"
        env["MPC_SIGNER_CONSUL_ADDRESS"] = agent.address
        env["MPC_SIGNER_CONSUL_ADVERTISE_HOST"] = "127.0.0.1"
        env["MPC_SIGNER_CONSUL_CHECK_INTERVAL_SECONDS"] = "1"
        signer_env = {**_clean_env(), **env}
        log = (tmp_path / "signer.log").open("wb")
        procs.append(
            subprocess.Popen([*CLI, *services["signer"]["command"]], cwd=REPO, env=signer_env, stdout=log, stderr=log)
        )
        check = _mapped(services["signer"]["healthcheck"]["test"][2:], mapping)

        def healthy() -> bool:
            assert procs[1].poll() is None, (tmp_path / "signer.log").read_text()
            ping = subprocess.run([*CLI, *check], cwd=REPO, env=signer_env, capture_output=True, timeout=30)
            return ping.returncode == 0

        wait_for(healthy, 30, "the signer health check", interval=0.5)
        wait_for(
            lambda: agent.checks().get("signer-1:grpc", {}).get("Status") == "passing",
            20,
            "the Consul gRPC check over mTLS",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            assert b"mpc_signer_enclave_up 1.0" in r.read()
        first = (tmp_path / "signer.log").read_text().splitlines()[0]
        assert json.loads(first)["logger"]  # MPC_SIGNER_SERVER_LOG_FORMAT=json
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(20)
        agent.stop()
