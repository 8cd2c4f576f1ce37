"""The metrics endpoint and JSON logs of a real signer process."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2
from tests.conftest import EnclaveProcess, SignerProcess, free_port, wait_for

# Every label a scrape may carry, with the values it may take: small fixed sets, never an id.
ALLOWED_LABELS: dict[str, re.Pattern[str]] = {
    "method": re.compile(r"(SignerService|Health)/[A-Za-z]+|other"),
    "code": re.compile("|".join(c.name for c in grpc.StatusCode)),
    # enclave request kinds: the names of the Request oneof (a fixed set defined by the proto)
    "request": re.compile(
        "|".join([f.name for f in epb.Request.DESCRIPTOR.oneofs_by_name["body"].fields] + ["unknown"])
    ),
    "protocol": re.compile(r"gg20_secp256k1|frost_ed25519|unspecified|unknown"),
    "kind": re.compile(r"dkg|sign|presign|refresh|reshare|unspecified|unknown"),
    "state": re.compile(r"done|failed|active|retired"),  # a session's final state; a key's state
    "item": re.compile(r"presignature|preparams"),  # single-use items burned by a restart
    "round": re.compile(r"\d{1,2}|other"),
    # the configuration key of the bound that refused a start; why a finished session was forgotten
    "quota": re.compile(r"sessions\.(max_concurrent|per_client_max|per_caller_max|gg20_starts_per_second)|other"),
    "cause": re.compile(r"age|count|bytes"),
    "le": re.compile(r".*"),  # histogram bucket bounds
}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def check_labels(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    for (name, labels), _v in samples.items():
        for label, label_value in labels:
            assert label in ALLOWED_LABELS, (name, label)
            assert ALLOWED_LABELS[label].fullmatch(label_value), (name, label, label_value)


@pytest.fixture(scope="module")
def metered(
    start_enclave: Callable[..., EnclaveProcess], start_signer: Callable[..., SignerProcess]
) -> Iterator[tuple[SignerProcess, int]]:
    port = free_port()
    enclave = start_enclave()
    signer = start_signer(
        enclave,
        {
            "metrics": {"listen": f"127.0.0.1:{port}", "pool_refresh_seconds": 0.2},
            "server": {"log_format": "json", "log_level": "INFO"},
        },
    )
    signer.wait_health(health_pb2.HealthCheckResponse.SERVING)
    yield signer, port
    signer.stop()
    enclave.stop()


def test_scrape_counts_served_and_refused_calls(metered: tuple[SignerProcess, int]) -> None:
    signer, port = metered
    before = scrape(port)
    with signer.channel() as channel:
        stub = signer.stub(channel)
        stub.Ping(signer_pb2.PingRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as refused:  # no service JWT: refused by the auth interceptor
            stub.GetDKGStatus(signer_pb2.GetDKGStatusRequest(session_id="s-metrics"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = ("mpc_signer_rpc_total", dict(method="SignerService/Ping", code="OK"))
    denied = ("mpc_signer_rpc_total", dict(method="SignerService/GetDKGStatus", code="UNAUTHENTICATED"))
    # The server counts a call once its handler returns, which may be just after the client has its status.
    wait_for(
        lambda: value(scrape(port), denied[0], **denied[1]) > value(before, denied[0], **denied[1]),
        5,
        "the refused call counted",
    )
    after = scrape(port)
    assert value(after, ok[0], **ok[1]) == value(before, ok[0], **ok[1]) + 1
    assert value(after, denied[0], **denied[1]) == value(before, denied[0], **denied[1]) + 1
    assert value(after, "mpc_signer_rpc_latency_seconds_count", method="SignerService/Ping", code="OK") >= 1
    assert (
        value(
            after, "mpc_signer_rpc_latency_seconds_count", method="SignerService/GetDKGStatus", code="UNAUTHENTICATED"
        )
        >= 1
    )
    # The health watcher asks the enclave for its info, then pings it every 0.2 s: timed per kind.
    assert value(after, "mpc_signer_enclave_roundtrip_seconds_count", request="info") >= 1
    wait_for(
        lambda: value(scrape(port), "mpc_signer_enclave_roundtrip_seconds_count", request="ping") > 0,
        5,
        "a timed enclave ping",
    )
    assert value(after, "mpc_signer_enclave_up") == 1.0
    assert ("mpc_signer_presignatures_available", ()) in after
    # The enclave's engine reports its pre-parameter pool through Info (filled in the background).
    wait_for(lambda: ("mpc_signer_preparams_pool_size", ()) in scrape(port), 15, "the pre-parameter gauge")
    check_labels(after)


def test_logs_are_json_lines_with_request_ids(metered: tuple[SignerProcess, int]) -> None:
    signer, _port = metered
    with signer.channel() as channel, pytest.raises(grpc.RpcError):
        signer.stub(channel).GetSignStatus(
            signer_pb2.GetSignStatusRequest(session_id="s-logs"),
            timeout=5,
            metadata=[("authorization", "Bearer not-a-jwt"), ("x-request-id", "req-logs-1")],
        )

    def entries() -> list[dict[str, object]]:
        return [json.loads(line) for line in signer.log().splitlines() if line.strip()]

    wait_for(lambda: any(e.get("request_id") == "req-logs-1" for e in entries()), 5, "the refusal logged")
    for entry in entries():  # every line is one JSON object with the fixed fields
        assert {"time", "level", "logger", "message"} <= entry.keys()
    refusal = next(e for e in entries() if e.get("request_id") == "req-logs-1")
    assert refusal["level"] == "WARNING" and "GetSignStatus" in str(refusal["message"])
    assert refusal["session_id"] == "s-logs"
    assert "not-a-jwt" not in signer.log()


def test_a_taken_metrics_port_fails_the_start_with_the_key(
    start_enclave: Callable[..., EnclaveProcess], start_signer: Callable[..., SignerProcess]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        enclave = start_enclave()
        try:
            # The gRPC port is bound (not served) before the start fails, so the fixture may
            # return before the process exits, or raise if it has exited already.
            signer = start_signer(enclave, {"metrics": {"listen": f"127.0.0.1:{port}"}})
            assert signer.proc is not None and signer.proc.wait(20) == 2
            log = signer.log()
        except RuntimeError as exc:
            assert "exited with 2" in str(exc)
            log = str(exc)
        assert f"metrics.listen: cannot listen on 127.0.0.1:{port}" in log
        enclave.stop()
