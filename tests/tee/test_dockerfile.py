"""The enclave image, checked at parse level (no Docker engine or nitro-cli here), and the Makefile
targets that build and run it, checked through `make -n`."""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from enclave.__main__ import add_arguments
from enclave.transport.address import parse_address

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "enclave" / "Dockerfile"
LOCAL_PACKAGES = {"enclave", "mpc"}
# environment markers as they evaluate in the image (CPython 3.11 on Linux)
IMAGE_PYTHON = {"extra": "", "python_version": "3.11", "python_full_version": "3.11.9",
                "implementation_name": "cpython", "platform_python_implementation": "CPython", "sys_platform": "linux"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "dangling line continuation"
    return out


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def final_stage(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (k, _) in enumerate(parsed) if k == "FROM")
    return parsed[last_from:]


def test_every_base_image_is_pinned_by_digest(parsed: list[tuple[str, str]]) -> None:
    froms = [args for k, args in parsed if k == "FROM"]
    assert froms
    for args in froms:
        image = args.split()[0]
        assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image), image
    assert len({a.split()[0] for a in froms}) == 1, "all stages use the same pinned base"


def test_runs_as_a_non_root_user(parsed: list[tuple[str, str]]) -> None:
    users = [args for k, args in final_stage(parsed) if k == "USER"]
    assert users, "final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit() and int(user) >= 1000, "numeric uid, so no passwd lookup decides who runs"


IMAGE_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def image_environment(stage: list[tuple[str, str]], build_args: dict[str, str]) -> dict[str, str]:
    """The ENV of the final stage as the image has it, with ARG values given at build time."""
    args = {}
    for k, rest in stage:
        if k == "ARG":
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, default.strip('"'))
    env: dict[str, str] = {}
    for k, rest in stage:
        if k == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
    return env


def image_arguments(
    parsed: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, build_args: dict[str, str]
) -> argparse.Namespace:
    stage = final_stage(parsed)
    entrypoints = [json.loads(args) for k, args in stage if k == "ENTRYPOINT"]
    cmds = [json.loads(args) for k, args in stage if k == "CMD"]
    assert entrypoints == [["/opt/enclave/bin/python", "-m", "enclave"]]
    assert len(cmds) == 1
    for name, value in image_environment(stage, build_args).items():
        if name.startswith("MPC_ENCLAVE_"):
            monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_arguments(parser)  # option defaults read the image's environment here
    return parser.parse_args(cmds[0])


def test_entrypoint_is_the_enclave_in_nitro_mode_with_kms_sealing(
    parsed: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = image_arguments(parsed, monkeypatch, {"KMS_KEY_ID": IMAGE_KEY_ARN})
    address = parse_address(args.listen)
    assert address.scheme == "vsock" and address.port > 0
    assert args.psk_file is None  # no TCP, no pre-shared key inside the enclave
    assert args.attestation == "nitro"
    assert args.kms_key_id == IMAGE_KEY_ARN and args.kms_proxy_port == 8000
    assert args.sealing_key_file is None and args.sealing_passphrase_file is None
    # What the process builds from these arguments: a KMS sealer (the NSM replaced by a test
    # attestor, since /dev/nsm exists only inside Nitro).
    from enclave.engine import setup as engine_setup
    from tests.tee.test_kms import DocAttestor, make_chain

    monkeypatch.setattr(engine_setup, "make_attestor", lambda mode: DocAttestor(make_chain()))
    parts = engine_setup.open_parts(args)
    assert parts.sealer.kind == "kms" and parts.attestor.mode == "nitro"
    assert parts.credentials is not None  # the host's SetAwsCredentials have somewhere to go
    assert parts.policy is None  # built without a policy key


def test_policy_key_built_into_the_image_is_enforced(
    parsed: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from enclave.engine import setup as engine_setup
    from tests.tee.test_kms import DocAttestor, make_chain

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "policy.pub").write_bytes(pem)
    # What `make eif POLICY_KEY_FILE=...` hands to docker build, run with a stand-in for docker.
    (docker,) = [x for x in make_n("eif", f"KMS_KEY_ARN={IMAGE_KEY_ARN}", f"POLICY_KEY_FILE={tmp_path / 'policy.pub'}")
                 if x.startswith("docker build")]
    argv = subprocess.run(["bash", "-c", "docker() { printf '%s\\n' \"$@\"; }; " + docker], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    build_args = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--build-arg")
    assert build_args["KMS_KEY_ID"] == IMAGE_KEY_ARN
    args = image_arguments(parsed, monkeypatch, build_args)
    monkeypatch.setattr(engine_setup, "make_attestor", lambda mode: DocAttestor(make_chain()))
    parts = engine_setup.open_parts(args)
    assert parts.policy is not None
    assert b"".join(pem.splitlines()[1:-1]).decode() == build_args["POLICY_KEY"]


def test_image_built_without_a_kms_key_refuses_to_start(
    parsed: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = image_arguments(parsed, monkeypatch, {})
    assert args.kms_key_id is None
    from enclave.engine import setup as engine_setup
    from tests.tee.test_kms import DocAttestor, make_chain

    monkeypatch.setattr(engine_setup, "make_attestor", lambda mode: DocAttestor(make_chain()))
    with pytest.raises(engine_setup.SetupError, match="no sealing key configured"):
        engine_setup.open_parts(args)


def test_nitro_mode_refuses_to_start_without_the_nsm(
    parsed: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = image_arguments(parsed, monkeypatch, {"KMS_KEY_ID": IMAGE_KEY_ARN})
    from enclave.engine import setup as engine_setup

    if Path("/dev/nsm").exists():
        pytest.skip("running inside a Nitro enclave")
    with pytest.raises(engine_setup.SetupError, match="Nitro Secure Module"):
        engine_setup.open_parts(args)


def test_no_network_exposure(parsed: list[tuple[str, str]]) -> None:
    keywords = {k for k, _ in parsed}
    assert "EXPOSE" not in keywords
    assert "ADD" not in keywords, "ADD can fetch URLs; COPY only"
    for k, args in parsed:
        if k == "RUN":
            assert not re.search(r"\b(curl|wget|git)\b", args), args
        if k == "ENV":
            assert "PROXY" not in args.upper()


def test_copy_sources_exist_and_exclude_the_host(parsed: list[tuple[str, str]]) -> None:
    copies = [shlex.split(args) for k, args in parsed if k == "COPY"]
    local = [c for c in copies if not any(p.startswith("--from=") for p in c)]
    assert local
    sources: list[str] = []
    for c in local:
        parts = [p for p in c if not p.startswith("--")]
        sources.extend(parts[:-1])
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} missing from the repository"
        assert not src.startswith("signer"), "the host package has no place in the enclave image"
    assert "enclave/" in sources
    assert "mpc/v1/enclave_pb2.py" in sources


def _pins(parsed: list[tuple[str, str]]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for k, args in parsed:
        if k == "RUN" and "pip install" in args:
            for name, version in re.findall(r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9_.\-]*)", args):
                pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_pins_match_the_tested_environment(parsed: list[tuple[str, str]]) -> None:
    pins = _pins(parsed)
    assert pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    project_pins = {_norm(n): v for n, v in (re.match(r"([^=\[<>]+)(?:\[.*\])?==(.+)", d).groups() for d in project)}  # type: ignore[union-attr]
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: image {version}, tested {metadata.version(name)}"
        if name in project_pins:
            assert project_pins[name] == version, f"{name}: image {version}, pyproject {project_pins[name]}"


def _third_party_imports() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "enclave").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in LOCAL_PACKAGES}


def _requirements_closure(names: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(IMAGE_PYTHON):
                todo.append(req.name)
    return seen


def test_image_has_every_dependency_the_enclave_imports(parsed: list[tuple[str, str]]) -> None:
    distributions = metadata.packages_distributions()
    needed = set()
    for module in _third_party_imports():
        assert module in distributions, f"enclave imports {module}, which no installed distribution provides"
        needed.update(distributions[module])
    missing = _requirements_closure(needed) - set(_pins(parsed))
    assert not missing, f"enclave image lacks pinned packages: {sorted(missing)}"


# --- Makefile -----------------------------------------------------------------------------


def make_n(*args: str) -> list[str]:
    out = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.replace("\\\n", " ").splitlines() if line.strip()]


def test_make_eif_builds_the_image_and_records_pcrs(tmp_path: Path) -> None:
    lines = make_n("eif", f"KMS_KEY_ARN={IMAGE_KEY_ARN}")
    assert any(line.startswith("docker build --file enclave/Dockerfile ") for line in lines)
    docker = next(line for line in lines if line.startswith("docker build"))
    assert f"--build-arg KMS_KEY_ID={IMAGE_KEY_ARN}" in docker  # the sealing key is part of the image
    assert any(line.startswith('test -n ""') for line in make_n("eif")), "refuses to build without a KMS key"
    build = next(line for line in lines if line.startswith("nitro-cli build-enclave"))
    assert "--output-file var/mpc-enclave.eif" in build and "> var/build-enclave.json" in build
    # Run the recording step on output shaped like nitro-cli's.
    record = next(line for line in lines if "var/pcrs.json" in line and "Measurements" in line)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "build-enclave.json").write_text("Start building the Enclave Image...\n" + json.dumps({
        "Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "aa" * 48, "PCR1": "bb" * 48, "PCR2": "cc" * 48},
        "EnclaveImage": "ignored",
    }))
    subprocess.run(["bash", "-c", record], cwd=tmp_path, check=True)
    pcrs = json.loads((tmp_path / "var" / "pcrs.json").read_text())
    assert pcrs == {"HashAlgorithm": "Sha384 { ... }", "PCR0": "aa" * 48, "PCR1": "bb" * 48, "PCR2": "cc" * 48}


def test_make_run_enclave_takes_its_resources_from_variables() -> None:
    (line,) = [x for x in make_n("run-enclave", "ENCLAVE_CPUS=4", "ENCLAVE_MEMORY_MIB=8192", "ENCLAVE_CID=21")
               if x.startswith("nitro-cli")]
    argv = shlex.split(line)
    assert argv[:2] == ["nitro-cli", "run-enclave"]
    flags = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert flags == {"--eif-path": "var/mpc-enclave.eif", "--cpu-count": "4", "--memory": "8192",
                     "--enclave-cid": "21"}
    assert "--debug-mode" not in argv
