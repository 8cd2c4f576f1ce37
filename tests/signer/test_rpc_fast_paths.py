"""The per-call shortcuts of the RPC path keep their results: metric series reused per (method,
code), the log ids' context manager and checks, the pipeline's single metadata read, and the
client's call metadata rebuilt exactly when the token changes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mpc.v1 import signer_pb2 as pb
from signer.api.pipeline import RpcPipeline
from signer.auth.envelope import HmacKeyRing
from signer.auth.interceptor import Authenticator, current_caller
from signer.auth.jwt import JwtVerifier, VerificationKey, mint_token
from signer.auth.mtls import ClientAllowlist
from signer.client.client import SignerClient, TokenSource
from signer.logs import _plain, bind, request_id, request_id_for, session_id
from signer.metrics import Metrics
from signer.ops.devcerts import issue, make_ca

METHOD = "/mpc.v1.SignerService/GetSignStatus"


def test_rpc_done_counts_each_method_and_code_separately() -> None:
    m = Metrics()
    for label, code in [("SignerService/Ping", "OK")] * 3 + [
        ("SignerService/Ping", "UNAVAILABLE"),
        ("SignerService/StartSign", "OK"),
    ]:
        m.rpc_done(label, code, 0.002)
    value = m.registry.get_sample_value
    assert value("mpc_signer_rpc_total", {"method": "SignerService/Ping", "code": "OK"}) == 3
    assert value("mpc_signer_rpc_total", {"method": "SignerService/Ping", "code": "UNAVAILABLE"}) == 1
    assert value("mpc_signer_rpc_total", {"method": "SignerService/StartSign", "code": "OK"}) == 1
    assert value("mpc_signer_rpc_latency_seconds_count", {"method": "SignerService/Ping", "code": "OK"}) == 3
    assert (
        value("mpc_signer_rpc_latency_seconds_bucket", {"method": "SignerService/Ping", "code": "OK", "le": "0.0025"})
        == 3
    )


def test_bind_sets_and_restores_only_the_ids_given() -> None:
    with bind(request="r-1", session="s-1"):
        with bind(session="s-2"):
            assert (request_id.get(), session_id.get()) == ("r-1", "s-2")
        assert (request_id.get(), session_id.get()) == ("r-1", "s-1")
        with pytest.raises(ValueError), bind(request="r-2"):
            raise ValueError
        assert request_id.get() == "r-1"
    assert (request_id.get(), session_id.get()) == (None, None)


def test_plain_ids_are_letters_digits_and_four_marks() -> None:
    for good in ("req-1.a:b_c", "a" * 128, "é٣½"):  # str.isalnum, not only ASCII, as before
        assert _plain(good)
    for bad in ("", "a" * 129, "x\n", "a b", "a/b", 'x"}', "a\u200b"):
        assert not _plain(bad)


def test_request_id_from_metadata_last_plain_value_else_random() -> None:
    assert request_id_for((("x-request-id", "first"), ("other", "x"), ("x-request-id", "last"))) == "last"
    made = request_id_for((("x-request-id", "not plain"),))
    assert made != "not plain" and len(made) == 16
    assert request_id_for(None) != request_id_for(None)


_CLIENT_PEM = issue(make_ca(), "mpc-service", dns_names=("mpc-service",)).cert_pem()


class _Context:
    """A servicer context with an allowed client certificate and the given metadata."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata
        self.metadata_reads = 0
        self.aborted: tuple[Any, str] | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"transport_security_type": [b"ssl"], "x509_pem_cert": [_CLIENT_PEM]}

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        self.metadata_reads += 1
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def code(self) -> Any:
        return self.aborted[0] if self.aborted else None

    async def abort(self, code: Any, details: str = "") -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


def _pipeline() -> tuple[RpcPipeline, Metrics, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(
        {"k": VerificationKey("ES256", key.public_key())},
        issuer="i",
        audience="a",
        leeway_seconds=5,
        max_lifetime_seconds=600,
    )
    token = mint_token(key, "ES256", kid="k", issuer="i", audience="a", subject="svc")
    metrics = Metrics()
    return RpcPipeline(metrics, Authenticator(ClientAllowlist(["mpc-service"]), verifier)), metrics, token


def _call(pipeline: RpcPipeline, behavior: Any) -> Any:
    handler = grpc.unary_unary_rpc_method_handler(behavior)

    async def continuation(details: Any) -> Any:
        return handler

    class Details:
        method = METHOD
        invocation_metadata = ()

    return asyncio.run(pipeline.intercept_service(continuation, Details())).unary_unary  # type: ignore[arg-type]


def test_pipeline_reads_the_metadata_once_and_still_checks_the_token() -> None:
    pipeline, metrics, token = _pipeline()
    seen: list[Any] = []

    async def behavior(request: Any, context: Any) -> pb.GetSignStatusResponse:
        seen.append((request_id.get(), session_id.get(), current_caller()))
        return pb.GetSignStatusResponse(session_id=request.session_id)

    call = _call(pipeline, behavior)
    ok = _Context((("x-request-id", "req-7"), ("authorization", f"Bearer {token}")))
    response = asyncio.run(call(pb.GetSignStatusRequest(session_id="sess-1"), ok))
    assert response.session_id == "sess-1" and ok.metadata_reads == 1
    rid, sid, caller = seen[0]
    assert (rid, sid) == ("req-7", "sess-1")
    assert caller is not None and caller.identity == "mpc-service" and caller.claims.subject == "svc"

    bad = _Context((("authorization", "Bearer not-a-token"),))
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(call(pb.GetSignStatusRequest(session_id="sess-1"), bad))
    assert bad.aborted is not None and bad.aborted[0] == grpc.StatusCode.UNAUTHENTICATED and len(seen) == 1
    value = metrics.registry.get_sample_value
    assert value("mpc_signer_rpc_total", {"method": "SignerService/GetSignStatus", "code": "OK"}) == 1
    assert value("mpc_signer_rpc_total", {"method": "SignerService/GetSignStatus", "code": "UNAUTHENTICATED"}) == 1


def test_client_metadata_follows_the_token() -> None:
    async def run() -> None:
        tokens = TokenSource(token="t-1")
        ring = HmacKeyRing({"k": b"\x01" * 32}, "k")
        client = SignerClient(grpc.aio.insecure_channel("127.0.0.1:1"), tokens, ring)
        first = client._metadata()
        assert list(first) == [("authorization", "Bearer t-1")] and client._metadata() is first
        tokens.token = "t-2"
        assert list(client._metadata()) == [("authorization", "Bearer t-2")]
        await client.close()

    asyncio.run(run())


def test_streaming_handlers_map_errors_like_unary_ones() -> None:
    """Health Watch and reflection stream: an exception inside one ends the call with the error
    table's status and a generic message, never the exception's own text."""
    pipeline, _metrics, token = _pipeline()

    async def watch(request: Any, context: Any) -> Any:
        yield pb.GetSignStatusResponse(session_id="first")
        raise KeyError("secret-share-bytes")

    handler = grpc.unary_stream_rpc_method_handler(watch)

    async def continuation(details: Any) -> Any:
        return handler

    class Details:
        method = "/grpc.health.v1.Health/Watch"
        invocation_metadata = ()

    call = asyncio.run(pipeline.intercept_service(continuation, Details())).unary_stream  # type: ignore[arg-type]
    context = _Context((("authorization", f"Bearer {token}"),))

    async def consume() -> list[Any]:
        items = []
        async for item in call(pb.GetSignStatusRequest(), context):
            items.append(item)
        return items

    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(consume())
    assert context.aborted is not None
    code, message = context.aborted
    assert code == grpc.StatusCode.INTERNAL and message.startswith("internal error (ref ") and "secret" not in message
