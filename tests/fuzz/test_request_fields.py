"""Random request fields and random bodies on every unary session method of SignerService.

Hypothesis fills every field of StartDKG, StartSign, StartPresign, StartRefresh, StartRepair,
SubmitProtocolMessage and the five status requests with hostile values (control characters,
trailing newlines, NUL, long and non-ASCII ids, out-of-range enums and integers, duplicate and
oversized party lists, envelopes with valid HMACs and without), and sends arbitrary bytes as the
body of each method. Every call carries a valid service JWT over mTLS. The answer is OK or a
status from the table, never INTERNAL, UNKNOWN, UNAVAILABLE or DEADLINE_EXCEEDED; afterwards both
processes are alive, neither logged a traceback, and the node signs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc
from signer.client.relay import Relay
from tests.fuzz.conftest import Fuzzing, examples, no_traceback
from tests.service.conftest import FROST, GG20, KECCAK, check_signature, dkg, message_for, presign, sign

PARTIES = ("client", "signer")
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
}
KEY_IDS: dict[int, str] = {}  # protocol -> a real key id of the node, so that some requests name one

odd_text = st.sampled_from(
    [
        "",
        "a",
        "client",
        "signer",
        "signer\n",
        "signer\x00",
        "\n",
        " signer",
        "s" * 300,
        "é",
        "\u202e",
        "../x",
        "%s",
        "a\tb",
        "0" * 64,
        "f" * 64 + "\n",
    ]
)
ids = st.one_of(odd_text, st.text(max_size=80), st.from_regex(r"[a-z0-9\-]{1,70}", fullmatch=True))
# the node's real key ids, and near misses of them (a trailing newline, upper case, one short)
key_variants = st.deferred(lambda: st.sampled_from(sorted(KEY_IDS.values()) or ["0" * 64])).flatmap(
    lambda k: st.sampled_from([k, k + "\n", k.upper(), k[:-1], k + "0", "\n" + k])
)
key_ids = st.one_of(ids, key_variants, key_variants)
protocols = st.one_of(st.sampled_from([0, FROST, GG20, 3, -1]), st.integers(-(2**31), 2**31 - 1))
u32 = st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1))
party_lists = st.one_of(st.just(list(PARTIES)), st.lists(ids, max_size=6), st.lists(ids, min_size=30, max_size=70))


@st.composite
def protocol_messages(draw: st.DrawFn, fz: Fuzzing) -> pb.ProtocolMessage:
    m = pb.ProtocolMessage(
        session_id=draw(ids),
        sender=draw(st.one_of(st.sampled_from(PARTIES), ids)),
        recipient=draw(ids),
        round=draw(u32),
        seq=draw(st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1))),
        payload=draw(st.binary(max_size=300)),
    )
    if draw(st.booleans()):
        fz.ring.sign(m)  # valid HMAC: the checks after authentication are what it reaches
    else:
        m.hmac_key_id, m.hmac = draw(st.sampled_from(["dev", "", "other"])), draw(st.binary(max_size=40))
    return m


def near_valid(request_type: Any, valid: dict[str, Any], hostile: dict[str, st.SearchStrategy[Any]]) -> Any:
    """A valid start (fresh session id, FROST, the node's key, its party list) with some of its
    fields replaced by hostile values: these get past the first checks to the later ones."""
    fresh = st.uuids().map(lambda u: f"fuzz-{u}")
    changes = st.lists(st.sampled_from(sorted(hostile)), min_size=1, max_size=2, unique=True).flatmap(
        lambda fields: st.fixed_dictionaries({f: hostile[f] for f in fields})
    )
    return st.builds(lambda sid, change: request_type(**{"session_id": sid, **valid, **change}), fresh, changes)


def requests(method: str, fz: Fuzzing) -> st.SearchStrategy[Any]:
    messages = st.lists(protocol_messages(fz), max_size=4)
    signs = {"self_party_id": "signer", "party_ids": list(PARTIES), "protocol": FROST}
    if method == "StartDKG":
        hostile = dict(
            session_id=ids,
            protocol=protocols,
            threshold=u32,
            party_ids=party_lists,
            self_party_id=ids,
            messages=messages,
        )
        return st.one_of(
            st.builds(pb.StartDKGRequest, **hostile), near_valid(pb.StartDKGRequest, {**signs, "threshold": 2}, hostile)
        )
    if method == "StartSign":
        hostile = dict(
            session_id=ids,
            protocol=protocols,
            key_id=key_ids,
            message=st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=200)),
            derivation_path=st.lists(u32, max_size=300),
            party_ids=party_lists,
            self_party_id=ids,
            presignature_id=key_ids,
            signature_encoding=protocols,
            messages=messages,
            message_hash=protocols,
            taproot_merkle_root=st.binary(max_size=40),
            result_recipient_key=st.binary(max_size=100),
        )
        valid = {**signs, "key_id": KEY_IDS[FROST], "message": b"fuzz"}
        return st.one_of(st.builds(pb.StartSignRequest, **hostile), near_valid(pb.StartSignRequest, valid, hostile))
    if method == "StartPresign":
        hostile = dict(
            session_id=ids,
            protocol=protocols,
            key_id=key_ids,
            party_ids=party_lists,
            self_party_id=ids,
            messages=messages,
        )
        valid = {**signs, "protocol": GG20, "key_id": KEY_IDS[GG20]}
        return st.one_of(
            st.builds(pb.StartPresignRequest, **hostile), near_valid(pb.StartPresignRequest, valid, hostile)
        )
    if method == "StartRefresh":
        hostile = dict(
            session_id=ids,
            protocol=protocols,
            key_id=key_ids,
            party_ids=party_lists,
            self_party_id=ids,
            threshold=u32,
            messages=messages,
        )
        valid = {**signs, "key_id": KEY_IDS[FROST]}
        return st.one_of(
            st.builds(pb.StartRefreshRequest, **hostile), near_valid(pb.StartRefreshRequest, valid, hostile)
        )
    if method == "StartRepair":
        hostile = dict(
            session_id=ids,
            protocol=protocols,
            key_id=key_ids,
            party_ids=party_lists,
            self_party_id=ids,
            threshold=u32,
            messages=messages,
            helpers=party_lists,
            repair_party_id=ids,
            public_key=st.binary(max_size=40),
            chain_code=st.binary(max_size=40),
            repair_party_key=st.one_of(
                st.binary(max_size=80), st.binary(min_size=64, max_size=64).map(b"\x04".__add__)
            ),
        )
        valid = {**signs, "key_id": KEY_IDS[FROST], "threshold": 2, "helpers": list(PARTIES), "repair_party_id": "x"}
        return st.one_of(st.builds(pb.StartRepairRequest, **hostile), near_valid(pb.StartRepairRequest, valid, hostile))
    if method == "SubmitProtocolMessage":
        return st.builds(
            pb.SubmitProtocolMessageRequest,
            messages=st.one_of(
                messages,
                messages,
                messages,  # and more than a call may carry:
                messages.filter(bool).map(lambda ms: (ms * 70)[:65]),
            ),
        )
    request_type = {
        "GetDKGStatus": pb.GetDKGStatusRequest,
        "GetSignStatus": pb.GetSignStatusRequest,
        "GetPresignStatus": pb.GetPresignStatusRequest,
        "GetRefreshStatus": pb.GetRefreshStatusRequest,
        "GetRepairStatus": pb.GetRepairStatusRequest,
    }[method]
    return st.builds(request_type, session_id=ids)


METHODS = [
    "StartDKG",
    "StartSign",
    "StartPresign",
    "SubmitProtocolMessage",
    "GetDKGStatus",
    "GetSignStatus",
    "GetPresignStatus",
    "StartRefresh",
    "GetRefreshStatus",
    "StartRepair",
    "GetRepairStatus",
]


@pytest.fixture(scope="module")
def sync_channel(fuzzing: Fuzzing) -> Iterator[grpc.Channel]:
    with fuzzing.node.signer.channel() as channel:
        yield channel


@pytest.fixture(scope="module")
def with_key(fuzzing: Fuzzing) -> Fuzzing:
    relay = Relay({"client": fuzzing.local, "signer": fuzzing.client})
    for protocol in (FROST, GG20):
        KEY_IDS[protocol] = fuzzing.run(dkg(relay, protocol, PARTIES, 2)).key_id
    return fuzzing


def answer_of(call: Callable[..., Any], request: Any, token: str) -> grpc.StatusCode:
    try:
        call(request, metadata=[("authorization", f"Bearer {token}")], timeout=30)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return,attr-defined]
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", METHODS)
def test_random_request_fields_get_a_status_from_the_table(
    method: str, with_key: Fuzzing, sync_channel: grpc.Channel
) -> None:
    fz = with_key
    stub = signer_pb2_grpc.SignerServiceStub(sync_channel)
    call = getattr(stub, method)
    token = fz.node.signer.token()  # (each test runs well within its 300 s)
    seen: dict[str, int] = {}

    @settings(
        max_examples=examples(150),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(method, fz))
    def one(request: Any) -> None:
        code = answer_of(call, request, token)
        assert code in ANSWERS, (code, request)
        seen[code.name] = seen.get(code.name, 0) + 1

    one()
    print(method, seen)
    assert set(seen) - {"UNAUTHENTICATED"}, "every request was refused before its fields were read"
    assert fz.alive()


@pytest.mark.parametrize("method", METHODS)
def test_random_bodies_get_a_status_from_the_table(method: str, with_key: Fuzzing, sync_channel: grpc.Channel) -> None:
    fz = with_key
    call: Callable[..., Any] = sync_channel.unary_unary(
        f"/mpc.v1.SignerService/{method}", request_serializer=None, response_deserializer=None
    )
    token = fz.node.signer.token()  # (each test runs well within its 300 s)

    @settings(
        max_examples=examples(60),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(body=st.binary(max_size=400))
    def one(body: bytes) -> None:
        code = answer_of(call, body, token)
        assert code in ANSWERS, (code, body)
        seen[code.name] = seen.get(code.name, 0) + 1

    seen: dict[str, int] = {}
    one()
    print(method, "bodies", seen)
    assert set(seen) - {"UNAUTHENTICATED"}
    assert fz.alive()


def near_misses(value: str) -> list[str]:
    """Identifiers one step from a valid one: what a lax pattern check (`re.match("^...$")`,
    which lets a final newline through) or a trimming lookup would confuse with it."""
    return [
        value + "\n",
        "\n" + value,
        value + "\r\n",
        value + "\x00",
        value + " ",
        "\t" + value,
        value + "\u200b",
        value.upper(),
        value[:-1],
        value + value[-1],
    ]


def near_miss_requests(fz: Fuzzing, running: str) -> Iterator[tuple[str, Any]]:
    """(method, request) with one identifier of an otherwise valid request replaced by a near miss."""
    frost, gg20 = KEY_IDS[FROST], KEY_IDS[GG20]
    base = {"party_ids": list(PARTIES), "self_party_id": "signer"}
    for bad in near_misses("fresh-session"):
        yield "StartDKG", pb.StartDKGRequest(session_id=bad, protocol=FROST, threshold=2, **base)  # type: ignore[arg-type]
    for field, value in (("key_id", frost), ("self_party_id", "signer"), ("presignature_id", "p" * 8)):
        for bad in near_misses(value):
            fields: dict[str, Any] = {
                "session_id": f"near-{secrets.token_hex(6)}",
                "protocol": FROST,
                "key_id": frost,
                "message": b"m",
                **base,
                field: bad,
            }
            yield "StartSign", pb.StartSignRequest(**fields)
    for bad in near_misses(gg20):
        yield (
            "StartPresign",
            pb.StartPresignRequest(session_id=f"near-{secrets.token_hex(6)}", protocol=GG20, key_id=bad, **base),
        )  # type: ignore[arg-type]
    for i, party in enumerate(PARTIES):
        for bad in near_misses(party):
            parties = list(PARTIES)
            parties[i] = bad
            yield (
                "StartDKG",
                pb.StartDKGRequest(
                    session_id=f"near-{secrets.token_hex(6)}",
                    protocol=FROST,
                    threshold=2,
                    party_ids=parties,
                    self_party_id="signer",
                ),
            )
    for bad in near_misses(running):
        yield "GetDKGStatus", pb.GetDKGStatusRequest(session_id=bad)
        yield "GetSignStatus", pb.GetSignStatusRequest(session_id=bad)
        yield "GetPresignStatus", pb.GetPresignStatusRequest(session_id=bad)
    for field, value in (("session_id", running), ("sender", "client"), ("recipient", "signer")):
        for bad in near_misses(value):
            m = pb.ProtocolMessage(
                session_id=running, sender="client", recipient="signer", round=1, seq=1, payload=b"\x01"
            )
            setattr(m, field, bad)
            fz.ring.sign(m)
            yield "SubmitProtocolMessage", pb.SubmitProtocolMessageRequest(messages=[m])


def test_near_miss_identifiers_are_invalid_argument_or_not_found(with_key: Fuzzing, sync_channel: grpc.Channel) -> None:
    """Every identifier of a valid request, one at a time, one step off (a sweep, not sampled)."""
    fz = with_key
    stub = signer_pb2_grpc.SignerServiceStub(sync_channel)
    token = fz.node.signer.token()
    running = f"near-running-{secrets.token_hex(6)}"  # a FROST signature waiting for the client
    stub.StartSign(
        pb.StartSignRequest(
            session_id=running,
            protocol=FROST,
            key_id=KEY_IDS[FROST],
            message=b"m",
            party_ids=list(PARTIES),
            self_party_id="signer",
        ),
        metadata=[("authorization", f"Bearer {token}")],
        timeout=30,
    )
    wrong: list[tuple[str, str, str]] = []
    count = 0
    for method, request in near_miss_requests(fz, running):
        count += 1
        code = answer_of(getattr(stub, method), request, token)
        if code not in ANSWERS:
            wrong.append((method, code.name, str(request)[:300]))
    assert not wrong, wrong
    assert count >= 130 and fz.alive()


def test_the_node_still_signs_and_logged_no_traceback(with_key: Fuzzing) -> None:
    relay = Relay({"client": with_key.local, "signer": with_key.client})
    for protocol in (FROST, GG20):
        key = dkg(relay, protocol, PARTIES, 2)
        made = with_key.run(key)
        text = b"after random requests"
        presignature_id = with_key.run(presign(relay, PARTIES, made.key_id)) if protocol == GG20 else ""
        rule = KECCAK if protocol == GG20 else pb.MESSAGE_HASH_UNSPECIFIED
        check_signature(
            protocol,
            made.public_key,
            message_for(protocol, text),
            with_key.run(sign(relay, protocol, PARTIES, made.key_id, text, presignature_id, message_hash=rule)),
        )
    assert with_key.alive()
    no_traceback(with_key.node)
