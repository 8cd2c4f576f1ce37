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
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from door.address import parse_address
from enclave.__main__ import add_arguments
from tests.test_lock import check_lock

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "enclave" / "Dockerfile"
LOCAL_PACKAGES = {"enclave", "door", "mpc"}
# environment markers as they evaluate in the image (CPython 3.11 on Linux)
IMAGE_PYTHON = {
    "extra": "",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
}


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
    assert args.psk_file is None  # no key in the image: local users on the parent can read the EIF
    assert args.psk_provisioning == "attested"  # the host delivers it to the attested enclave
    assert not args.insecure_no_channel_auth_for_development
    from enclave.__main__ import channel_auth_check

    channel_auth_check(address, args)  # the image's vsock listener is authenticated
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

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "policy.pub").write_bytes(pem)
    # What `make eif POLICY_KEY_FILE=...` hands to docker build, run with a stand-in for docker.
    (docker,) = [
        x
        for x in make_n("eif", f"KMS_KEY_ARN={IMAGE_KEY_ARN}", f"POLICY_KEY_FILE={tmp_path / 'policy.pub'}")
        if x.startswith("docker build")
    ]
    argv = subprocess.run(
        ["bash", "-c", "docker() { printf '%s\\n' \"$@\"; }; " + docker], capture_output=True, text=True, check=True
    ).stdout.splitlines()
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


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runs(parsed: list[tuple[str, str]]) -> list[str]:
    return [args for k, args in parsed if k == "RUN"]


def _installed_names(parsed: list[tuple[str, str]]) -> set[str]:
    """The packages the image installs: the names it takes out of the runtime lock."""
    (run,) = [r for r in _runs(parsed) if "lock_subset.py" in r]
    argv = shlex.split(run.split("&&")[0].split(">")[0])
    assert argv[:3] == ["python", "/build/lock_subset.py", "/build/runtime.lock"], argv
    return {_norm(n) for n in argv[3:]}


def test_packages_come_from_the_runtime_lock_with_hashes(parsed: list[tuple[str, str]]) -> None:
    """No second pin list: the image names packages, and their versions and hashes are the
    runtime lock's, the lock the tested virtualenv was built from (tests/test_lock.py)."""
    assert not re.search(r"==[0-9]", DOCKERFILE.read_text()), "versions belong in requirements/runtime.lock"
    copies = [shlex.split(args) for k, args in parsed if k == "COPY"]
    assert ["requirements/runtime.lock", "tools/lock_subset.py", "/build/"] in copies
    locked = check_lock.read_lock(ROOT / "requirements" / "runtime.lock")
    names = _installed_names(parsed)
    assert names and names <= set(locked), sorted(names - set(locked))
    for name in names:
        assert metadata.version(name) == locked[name].version, f"{name}: tested {metadata.version(name)}"
    (install,) = [r for r in _runs(parsed) if "pip install" in r]
    pip = next(part for part in install.split("&&") if "pip install" in part)
    assert shlex.split(pip)[1:] == [
        "install",
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "--no-compile",
        "-r",
        "/build/enclave.txt",
    ]


def test_every_input_is_pinned_and_the_build_is_reproducible(parsed: list[tuple[str, str]]) -> None:
    """What makes PCR0 a function of this repository: base images by digest (checked above),
    packages by hash (above), no package manager reaching out for unpinned packages, no
    byte-code with build timestamps, every file time set to SOURCE_DATE_EPOCH, and a final
    stage that only copies prepared trees."""
    text = DOCKERFILE.read_text()
    assert text.lstrip().startswith("#")
    assert re.search(r"^ARG SOURCE_DATE_EPOCH=0$", text, re.M), "a default epoch before the first FROM"
    for run in _runs(parsed):
        assert not re.search(r"\b(apt-get|apt|apk|dnf|yum|microdnf)\b", run), run
        assert "pip install" not in run or "--require-hashes" in run, run
    stages = [i for i, (k, _) in enumerate(parsed) if k == "FROM"]
    for begin, end in zip(stages, [*stages[1:], len(parsed)], strict=True):
        stage = parsed[begin:end]
        runs = _runs(stage)
        if end == len(parsed):
            assert not runs, "the final stage runs nothing: its layers are the copied trees"
            continue
        assert ("ARG", "SOURCE_DATE_EPOCH") in stage
        assert runs and "touch --no-dereference --date=@${SOURCE_DATE_EPOCH}" in runs[-1].split("&&")[-1], (
            "the last step of every build stage sets every file time"
        )
        assert "chmod -R a+rX,go-w" in runs[-1]
        assert any("__pycache__" in r and "rm -rf" in r for r in runs)
    env = image_environment(final_stage(parsed), {})
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for k, args in final_stage(parsed):
        if k == "COPY":
            assert args.startswith("--from="), "the final stage takes only what the build stages prepared"


def test_make_eif_builds_with_the_commit_time_as_epoch() -> None:
    lines = make_n("eif", f"KMS_KEY_ARN={IMAGE_KEY_ARN}", "SOURCE_DATE_EPOCH=1700000000")
    docker = next(line for line in lines if line.startswith("docker build"))
    assert "--build-arg SOURCE_DATE_EPOCH=1700000000" in docker
    epoch = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if epoch:
        default = next(line for line in make_n("eif", f"KMS_KEY_ARN={IMAGE_KEY_ARN}") if line.startswith("docker"))
        assert f"--build-arg SOURCE_DATE_EPOCH={epoch}" in default


def _third_party_imports() -> set[str]:
    modules: set[str] = set()
    # The image holds enclave/ and the door it stands on (enclave/Dockerfile copies both).
    for path in (*(ROOT / "enclave").rglob("*.py"), *(ROOT / "door").rglob("*.py")):
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
    closure = _requirements_closure(needed)
    missing = closure - _installed_names(parsed)
    assert not missing, f"enclave image lacks pinned packages: {sorted(missing)}"
    extra = _installed_names(parsed) - closure
    assert not extra, f"enclave image installs packages the enclave does not import: {sorted(extra)}"


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
    (tmp_path / "var" / "build-enclave.json").write_text(
        "Start building the Enclave Image...\n"
        + json.dumps(
            {
                "Measurements": {
                    "HashAlgorithm": "Sha384 { ... }",
                    "PCR0": "aa" * 48,
                    "PCR1": "bb" * 48,
                    "PCR2": "cc" * 48,
                },
                "EnclaveImage": "ignored",
            }
        )
    )
    subprocess.run(["bash", "-c", record], cwd=tmp_path, check=True)
    pcrs = json.loads((tmp_path / "var" / "pcrs.json").read_text())
    assert pcrs == {"HashAlgorithm": "Sha384 { ... }", "PCR0": "aa" * 48, "PCR1": "bb" * 48, "PCR2": "cc" * 48}


def test_make_run_enclave_takes_its_resources_from_variables() -> None:
    (line,) = [
        x
        for x in make_n("run-enclave", "ENCLAVE_CPUS=4", "ENCLAVE_MEMORY_MIB=8192", "ENCLAVE_CID=21")
        if x.startswith("nitro-cli")
    ]
    argv = shlex.split(line)
    assert argv[:2] == ["nitro-cli", "run-enclave"]
    flags = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert flags == {"--eif-path": "var/mpc-enclave.eif", "--cpu-count": "4", "--memory": "8192", "--enclave-cid": "21"}
    assert "--debug-mode" not in argv
