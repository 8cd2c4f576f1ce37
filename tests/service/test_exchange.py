"""SignerService.Exchange against real signer nodes (their own enclave processes) over mTLS: what
tests/service/test_exchange_stream.py does not already cover.

- 2-of-3 keys with both signer nodes reached through Exchange streams (both protocols), and a
  GG20 presignature made between the two signers over their streams;
- the per-call metrics: calls on a stream are counted under their unary method's label, the stream
  itself once;
- more refusals (status calls, protocol mismatches, a reused session id, a forged HMAC) with the
  unary call's code and message, and the stream going on;
- more calls than the 64 a stream runs at once, raw and through the SDK;
- the SDK moving to a new stream while calls are in flight on the old one (which finish), closing
  the client while a call runs (CANCELLED; a retired stream still finishes), and recovering from a
  stream refused at open or dropped;
- more tokens refused at open (expired, wrong audience, wrong issuer, unknown kid, not a JWT);
- the SDK's stream client when the stream ends under a write: a close while a call is being
  written (CANCELLED at once), and a call written to a stream that has just ended (an
  AioRpcError with the stream's status, not grpc's InvalidStateError).

Every signature is checked with independent verifiers (`check_signature`).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc
from signer.client.client import SignerClient, TokenSource
from signer.client.relay import Relay
from tests.conftest import SignerProcess, free_port
from tests.service.conftest import (
    FROST,
    GG20,
    KECCAK,
    PROTOCOLS,
    FixtureEnclave,
    Node,
    check_signature,
    dkg,
    jwt_for,
    message_for,
    presign,
    sid,
    sign,
    status_of,
)

Code = grpc.StatusCode
PAIR = ("client", "signer-a")
TRIO = ("client", "signer-a", "signer-b")


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, start_signer: Callable[..., SignerProcess]
) -> Iterator[dict[str, tuple[Node, int]]]:
    """signer-a and signer-b (prime slices 1 and 2; 0 is the local party's), each with its metrics
    endpoint: name -> (node, metrics port)."""
    started: dict[str, tuple[Node, int]] = {}
    try:
        for name, prime_slice in (("signer-a", 1), ("signer-b", 2)):
            workdir = tmp_path_factory.mktemp(f"node-{name}")
            enclave = FixtureEnclave(f"unix://{workdir}/e.sock", workdir)
            enclave.prime_slice = prime_slice
            enclave.start()
            port = free_port()
            signer = start_signer(enclave, {"server": {"node_id": name}, "metrics": {"listen": f"127.0.0.1:{port}"}})
            started[name] = (Node(name, enclave, signer, ""), port)
            signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        yield started
    finally:
        for node, _port in started.values():
            node.stop()


@pytest.fixture
def node_a(nodes: dict[str, tuple[Node, int]]) -> Node:
    return nodes["signer-a"][0]


def stream_of(client: SignerClient) -> Any:
    assert client._exchange is not None, "the client was made with exchange=True"
    return client._exchange._stream


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def rpc_count(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], method: str, code: str) -> float:
    return samples.get(("mpc_signer_rpc_total", (("code", code), ("method", f"SignerService/{method}"))), 0.0)


class SwitchingTokens:
    """A token source that hands out `first` for the first `after` requests, then `second` (as a
    TokenSource does when its token nears expiry)."""

    def __init__(self, first: str, second: str, after: int) -> None:
        self.first, self.second, self.after = first, second, after
        self.asked = 0

    def current(self) -> str:
        self.asked += 1
        return self.first if self.asked <= self.after else self.second


def record_streams(client: SignerClient, pending_at_switch: list[int] | None = None) -> list[Any]:
    """The distinct streams the client's calls went on, in order (appended as they are used); and
    in `pending_at_switch`, how many calls the previous stream had in flight at each change."""
    exchange = client._exchange
    assert exchange is not None
    seen: list[Any] = []
    current = exchange._current

    def recording() -> Any:
        previous = exchange._stream
        in_flight = len(previous.pending) if previous is not None else 0
        stream = current()
        if not seen or seen[-1] is not stream:
            if seen and pending_at_switch is not None:
                pending_at_switch.append(in_flight)
            seen.append(stream)
        return stream

    exchange._current = recording  # type: ignore[method-assign]
    return seen


def sent(streams: list[Any]) -> bool:
    """The first stream has a call in flight whose request is written (no write under way)."""
    return bool(streams) and bool(streams[0].pending) and not streams[0].writing.locked()


def presign_request(key_id: str, name: str) -> pb.StartPresignRequest:
    # The signer's start runs its first presigning round (Paillier work; tens of milliseconds with
    # the fixture primes): slow next to a status call.
    return pb.StartPresignRequest(
        session_id=sid(name), protocol=GG20, key_id=key_id, party_ids=list(PAIR), self_party_id="signer-a"
    )


# --- tests --------------------------------------------------------------------------------------


async def test_calls_are_counted_under_their_methods_and_the_stream_once(nodes, clients) -> None:  # type: ignore[no-untyped-def]
    node, port = nodes["signer-a"]
    client = clients(node, exchange=False)
    before = scrape(port)
    call = signer_pb2_grpc.SignerServiceStub(client.channel).Exchange(metadata=client._metadata())
    for call_id in (1, 2, 3):
        await call.write(
            pb.ExchangeRequest(
                call_id=call_id, get_sign_status=pb.GetSignStatusRequest(session_id=f"nothing-{call_id}")
            )
        )
    await call.write(pb.ExchangeRequest(call_id=4, get_dkg_status=pb.GetDKGStatusRequest(session_id="nothing")))
    await call.write(pb.ExchangeRequest(call_id=5))  # no call set
    await call.done_writing()
    answers = {}
    while (answer := await call.read()) is not grpc.aio.EOF:
        answers[answer.call_id] = answer.code
    assert answers == {1: 5, 2: 5, 3: 5, 4: 5, 5: 3}
    assert await call.code() == Code.OK
    await status_of(client.sign_status("nothing-unary"))  # the unary call, under the same label
    after = scrape(port)

    def delta(method: str, code: str) -> float:
        return rpc_count(after, method, code) - rpc_count(before, method, code)

    expected = {
        ("GetSignStatus", "NOT_FOUND"): 4,  # 3 on the stream, 1 unary
        ("GetDKGStatus", "NOT_FOUND"): 1,
        ("Exchange", "INVALID_ARGUMENT"): 1,  # the request with no call
        ("Exchange", "OK"): 1,  # the stream itself, once, when it ended
    }

    def counted() -> dict[tuple[str, str], float]:
        return {key: delta(*key) for key in expected}

    # A call is counted just after its answer is written and the stream as its handler returns:
    # either may come a moment after the client has read what it waits for.
    deadline = time.monotonic() + 5
    while any(n < expected[key] for key, n in counted().items()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        after = scrape(port)
    await asyncio.sleep(0.2)  # and nothing more comes
    after = scrape(port)
    assert counted() == expected


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_two_of_three_with_both_signers_on_streams(protocol, nodes, local, clients) -> None:  # type: ignore[no-untyped-def]
    a, b = clients(nodes["signer-a"][0]), clients(nodes["signer-b"][0])
    relay = Relay({"client": local, "signer-a": a, "signer-b": b})
    key = await dkg(relay, protocol, TRIO, 2)
    streams = {name: stream_of(c) for name, c in (("signer-a", a), ("signer-b", b))}
    for signers in itertools.combinations(TRIO, 2):
        message = message_for(protocol, f"2-of-3 signed by {'+'.join(signers)}".encode())
        result = await sign(relay, protocol, signers, key.key_id, message)
        check_signature(protocol, key.public_key, message, result)
    if protocol == GG20:
        both = ("signer-a", "signer-b")
        presignature_id = await presign(relay, both, key.key_id)
        text = b"2-of-3 with a presignature of the two signers"
        message = message_for(protocol, text)
        result = await sign(relay, protocol, both, key.key_id, text, presignature_id, message_hash=KECCAK)
        assert result.presignature_id == presignature_id
        check_signature(protocol, key.public_key, message, result)
    for name, c in (("signer-a", a), ("signer-b", b)):
        stream = stream_of(c)
        assert stream is streams[name] and stream.ended is None, f"{name}: every call went on its one stream"


async def test_refusals_match_the_unary_call_and_the_stream_goes_on(node_a, local, clients) -> None:  # type: ignore[no-untyped-def]
    unary, streamed = clients(node_a, exchange=False), clients(node_a)
    key = await dkg(Relay({"client": local, "signer-a": unary}), FROST, PAIR, 2)
    base: dict[str, Any] = dict(party_ids=list(PAIR), self_party_id="signer-a")
    taken = pb.StartSignRequest(session_id=sid("taken"), protocol=FROST, key_id=key.key_id, message=b"first", **base)
    await unary.start_sign(taken)  # the session id is in use from now on
    running = pb.StartSignRequest(session_id=sid("running"), protocol=FROST, key_id=key.key_id, message=b"m", **base)
    await unary.start_sign(running)
    forged = pb.ProtocolMessage(
        session_id=running.session_id,
        sender="client",
        recipient="signer-a",
        round=1,
        seq=1,
        payload=b"\x00" * 64,
        hmac_key_id="dev",
        hmac=b"\x00" * 32,
    )

    def bad_calls(client: SignerClient) -> dict[str, Any]:
        reused = pb.StartSignRequest()
        reused.CopyFrom(taken)
        reused.message = b"a different message"
        return {
            "unknown dkg session": client.dkg_status("no-such-dkg"),
            "unknown presign session": client.presign_status("no-such-presign"),
            "FROST presign batch too large": client.start_presign(
                pb.StartPresignRequest(
                    session_id=sid("frost-pre"), protocol=FROST, key_id=key.key_id, count=101, **base
                )
            ),
            "GG20 sign with a FROST key": client.start_sign(
                pb.StartSignRequest(
                    session_id=sid("mismatch"), protocol=GG20, key_id=key.key_id, message=b"\x01" * 32, **base
                )
            ),
            "self not a party": client.start_dkg(
                pb.StartDKGRequest(
                    session_id=sid("self"),
                    protocol=FROST,
                    threshold=2,
                    party_ids=["client", "signer-b"],
                    self_party_id="signer-a",
                )
            ),
            "no protocol": client.start_dkg(pb.StartDKGRequest(session_id=sid("proto"), threshold=2, **base)),
            "session id reused": client.start_sign(reused),
            "forged hmac": client.submit([forged]),
        }

    expected = {name: await status_of(call) for name, call in bad_calls(unary).items()}
    for name, (code, _message) in expected.items():
        assert code not in (Code.OK, Code.UNKNOWN, Code.INTERNAL), (name, code)
    assert expected["unknown dkg session"][0] == Code.NOT_FOUND
    assert expected["unknown presign session"][0] == Code.NOT_FOUND
    assert expected["session id reused"][0] == Code.ALREADY_EXISTS
    got = {name: await status_of(call) for name, call in bad_calls(streamed).items()}
    assert got == expected
    stream = stream_of(streamed)
    assert stream is not None and stream.ended is None
    # The same stream runs a whole session afterwards.
    relay = Relay({"client": local, "signer-a": streamed})
    result = await sign(relay, FROST, PAIR, key.key_id, b"after the refusals")
    check_signature(FROST, key.public_key, b"after the refusals", result)
    assert stream_of(streamed) is stream


async def test_more_calls_than_a_stream_runs_at_once(node_a, clients) -> None:  # type: ignore[no-untyped-def]
    count = 200  # the signer runs 64 at once and reads the next request when one ends
    raw = clients(node_a, exchange=False)
    call = signer_pb2_grpc.SignerServiceStub(raw.channel).Exchange(metadata=raw._metadata())
    codes: dict[int, int] = {}
    async with asyncio.timeout(20):  # a stream that stops reading would hang here otherwise
        for call_id in range(1, count + 1):
            await call.write(
                pb.ExchangeRequest(
                    call_id=call_id, get_presign_status=pb.GetPresignStatusRequest(session_id=f"none-{call_id}")
                )
            )
        await call.done_writing()
        while (answer := await call.read()) is not grpc.aio.EOF:
            assert answer.call_id not in codes, "one answer per call"
            codes[answer.call_id] = answer.code
    assert codes == dict.fromkeys(range(1, count + 1), Code.NOT_FOUND.value[0])
    assert await call.code() == Code.OK
    # Through the SDK, all at once on one stream.
    client = clients(node_a)
    results = await asyncio.gather(*(status_of(client.sign_status(f"none-{i}")) for i in range(count)))
    assert {code for code, _ in results} == {Code.NOT_FOUND}
    stream = stream_of(client)
    assert stream is not None and stream.ended is None and not stream.pending


async def test_a_new_token_mid_flight_moves_calls_without_failing_any(node_a, local, clients, dev_certs) -> None:  # type: ignore[no-untyped-def]
    client = clients(node_a)
    pending_at_switch: list[int] = []
    streams = record_streams(client, pending_at_switch)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PAIR, 2)
    assert len(streams) == 1
    # The next 4 token requests (one per call) get the first token, later ones a second: the switch
    # falls among the calls of 8 concurrent sessions (each makes 2 or more).
    now = time.time()
    client._tokens = SwitchingTokens(jwt_for(dev_certs, 300, now), jwt_for(dev_certs, 301, now), after=4)  # type: ignore[assignment]
    messages = [f"across a token change {i}".encode() for i in range(8)]
    results = await asyncio.gather(*(sign(relay, FROST, PAIR, key.key_id, m) for m in messages))
    for message, result in zip(messages, results, strict=True):
        check_signature(FROST, key.public_key, message, result)
    assert len(streams) == 3, "the first token's stream, then the second's"
    assert pending_at_switch[-1] > 0, "calls were in flight on the first token's stream at the change"
    old, new = streams[1], streams[2]
    await wait_until(lambda: old.ended is not None, 5, "the retired stream to end")
    assert old.half_closed and not old.pending
    assert new.ended is None and stream_of(client) is new


async def test_slow_calls_across_a_new_token_and_a_close(node_a, local, clients, dev_certs) -> None:  # type: ignore[no-untyped-def]
    key = await dkg(Relay({"client": local, "signer-a": clients(node_a, exchange=False)}), GG20, PAIR, 2)
    now = time.time()
    first, second = jwt_for(dev_certs, 300, now), jwt_for(dev_certs, 301, now)

    # A new token while a slow call runs on the old stream: the next call goes on a new stream;
    # the old stream is half-closed, and its call still gets its real answer.
    client = clients(node_a, token=first)
    at_switch: list[int] = []
    streams = record_streams(client, at_switch)
    slow = asyncio.create_task(client.start_presign(presign_request(key.key_id, "rotated")))
    await wait_until(lambda: sent(streams), 5, "the call to be on the stream")
    client._tokens = TokenSource(token=second)
    code, _ = await status_of(client.sign_status("nothing-here"))
    assert code == Code.NOT_FOUND
    assert len(streams) == 2 and streams[0].half_closed
    assert at_switch == [1], "the presign start was in flight on the old stream when the new one opened"
    response = await slow
    assert response.session_id and response.outgoing, "the old stream's call got its real answer"
    await wait_until(lambda: streams[0].ended is not None, 5, "the retired stream to end")

    # Closing the client while a call runs: the call fails with CANCELLED, as a unary call does
    # when its channel closes.
    closing = clients(node_a, token=first)
    streams = record_streams(closing)
    slow = asyncio.create_task(closing.start_presign(presign_request(key.key_id, "closed")))
    await wait_until(lambda: sent(streams), 5, "the call to be on the stream")
    await closing.close()
    code, _ = await status_of(slow)
    assert code == Code.CANCELLED

    # ... but a stream retired by a new token still finishes its call, and close waits for it.
    retiring = clients(node_a, token=first)
    at_switch = []
    streams = record_streams(retiring, at_switch)
    slow = asyncio.create_task(retiring.start_presign(presign_request(key.key_id, "retired")))
    await wait_until(lambda: sent(streams), 5, "the call to be on the stream")
    retiring._tokens = TokenSource(token=second)
    await status_of(retiring.sign_status("nothing-here"))
    assert at_switch == [1]
    await retiring.close()
    assert slow.done(), "close waited for the retired stream's call"
    assert (await slow).outgoing

    # The node is unharmed: a presignature over a new stream, and a signature with it.
    relay = Relay({"client": local, "signer-a": clients(node_a)})
    presignature_id = await presign(relay, PAIR, key.key_id)
    message = message_for(GG20, b"after the slow calls")
    result = await sign(relay, GG20, PAIR, key.key_id, b"after the slow calls", presignature_id, message_hash=KECCAK)
    check_signature(GG20, key.public_key, message, result)


async def test_closing_the_client_during_a_write_cancels_the_calls_at_once(node_a, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node_a)
    await status_of(client.sign_status("open"))  # the stream is open
    stream = stream_of(client)
    # A write that does not return, as grpc's write on a call cancelled under it does not (it
    # also happens on a stream's first write, which waits for the stream to open).
    stuck = asyncio.Event()

    async def never_returns(_request: Any) -> None:
        await stuck.wait()

    stream.rpc.write = never_returns
    calls = [asyncio.create_task(client.sign_status(f"nothing-{i}")) for i in range(2)]
    try:
        await wait_until(lambda: len(stream.pending) == 2 and stream.writing.locked(), 5, "both calls to be writing")
        await client.close()
        async with asyncio.timeout(3):  # not the calls' own 30 s
            results = [await status_of(call) for call in calls]
        assert [code for code, _ in results] == [Code.CANCELLED, Code.CANCELLED]
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        gc.collect()  # finalize the calls' futures (exceptions nobody retrieved) here


async def test_more_tokens_refused_at_open_and_the_sdk_recovers(node_a, clients, dev_certs) -> None:  # type: ignore[no-untyped-def]
    raw = clients(node_a, exchange=False)
    stub = signer_pb2_grpc.SignerServiceStub(raw.channel)
    refused = {
        "expired": jwt_for(dev_certs, 60, now=time.time() - 3600),
        "wrong audience": jwt_for(dev_certs, audience="someone-else"),
        "wrong issuer": jwt_for(dev_certs, issuer="someone-else"),
        "unknown kid": jwt_for(dev_certs, kid="nobody"),
        "not a jwt": "not-a-token",
    }
    for name, bad in refused.items():
        call = stub.Exchange(metadata=(("authorization", f"Bearer {bad}"),))
        # Refused at open, before any request: read only (a write racing the refusal can fail in
        # the grpc client with its own INTERNAL "Internal error from Core", see below).
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == Code.UNAUTHENTICATED, name
        assert await call.code() == Code.UNAUTHENTICATED, name
    # The SDK: a stream refused at open fails the call (its status is checked by the test
    # below); with a good token the next call opens a new stream and is answered.
    client = clients(node_a, token=refused["expired"])
    await status_of(client.sign_status("x"))
    ended = stream_of(client)
    assert ended is not None
    await wait_until(lambda: ended.ended is not None, 5, "the refused stream to end")
    client._tokens = TokenSource(token=jwt_for(dev_certs))
    code, message = await status_of(client.sign_status("x"))
    assert (code, message) == (Code.NOT_FOUND, "unknown session")
    recovered = stream_of(client)
    assert recovered is not ended and recovered.ended is None
    # A stream that goes away under a still valid token (as when a connection drops) is replaced
    # by a new one with the same token at the next call.
    recovered.rpc.cancel()
    await wait_until(lambda: recovered.ended is not None, 5, "the dropped stream to end")
    code, message = await status_of(client.sign_status("x"))
    assert (code, message) == (Code.NOT_FOUND, "unknown session")
    assert stream_of(client) is not recovered and stream_of(client).token == recovered.token


async def test_a_call_on_a_stream_that_just_ended_fails_as_an_rpc_error(node_a, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node_a)
    await status_of(client.sign_status("x"))  # the stream is open
    stream = stream_of(client)
    # The stream ends (here cancelled locally, which ends it in grpc at once; the signer ending it
    # does the same a moment before the reader task wakes): the next call, made before the reader
    # has run, is written to it.
    stream.rpc.cancel()
    assert stream.ended is None and stream.rpc.done()
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await client.sign_status("x")
    finally:
        await client.close()
        gc.collect()  # finalize what the failed call left here, not during some later allocation
