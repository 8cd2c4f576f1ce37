"""Per-caller fairness against real signer nodes and enclave processes over mTLS: one caller
(client certificate identity and JWT subject) cannot take the node from the others.

- A subject that fills `sessions.per_caller_max` is refused RESOURCE_EXHAUSTED naming the quota,
  while another subject of the same client keeps starting and finishing sessions; a slot frees
  when one of its sessions ends. Before, one subject could fill all of `sessions.max_concurrent`.
- A client certificate that fills `sessions.per_client_max` (all its subjects together) is
  refused, while another certificate's callers are not.
- GG20 key generations and presignings (and GG20 signings that must presign) are rate limited
  per caller by a token bucket; FROST work, status calls, idempotent retries and signings that
  use a stored presignature take no token, and another caller has its own bucket.

Every refusal is counted in `mpc_signer_quota_refusals_total`, and every signature made is
checked by independent verifiers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.client import SignerClient
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.ops.devcerts import DevCertPaths, Issued, issue
from tests.conftest import free_port
from tests.service.conftest import (
    FROST,
    GG20,
    KECCAK,
    Node,
    check_signature,
    dkg,
    message_for,
    presign,
    sid,
    sign,
    status_of,
)
from tests.service.test_exchange import scrape

PARTIES = ("client", "signer-a")
Code = grpc.StatusCode


def refusals(port: int, quota: str) -> float:
    return scrape(port).get(("mpc_signer_quota_refusals_total", (("quota", quota),)), 0.0)


def dkg_request(protocol: int = FROST) -> pb.StartDKGRequest:
    return pb.StartDKGRequest(
        session_id=sid("held"),
        protocol=protocol,
        threshold=2,  # type: ignore[arg-type]
        party_ids=list(PARTIES),
        self_party_id="signer-a",
    )


def metered_node(start_node, name: str, **sessions) -> tuple[Node, int]:  # type: ignore[no-untyped-def]
    port = free_port()
    extra = sessions.pop("config", {})
    node = start_node(name, sessions=sessions, config={"metrics": {"listen": f"127.0.0.1:{port}"}, **extra})
    return node, port


@pytest.fixture(scope="module")
def second_client(dev_certs: DevCertPaths, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate for `relay-2` from the dev CA: another relay, another client identity."""
    ca = Issued(
        x509.load_pem_x509_certificate(dev_certs.ca.read_bytes()),
        serialization.load_pem_private_key(dev_certs.ca_key.read_bytes(), None),
    )  # type: ignore[arg-type]
    issued = issue(ca, "relay-2", dns_names=("relay-2",))
    out = tmp_path_factory.mktemp("relay-2")
    (out / "client.pem").write_bytes(issued.cert_pem())
    (out / "client.key").write_bytes(issued.key_pem())
    return out / "client.pem", out / "client.key"


@pytest.fixture
async def relay2(  # type: ignore[no-untyped-def]
    dev_certs: DevCertPaths, ring: HmacKeyRing, second_client
) -> AsyncIterator[Callable[..., SignerClient]]:
    made: list[SignerClient] = []

    def make(node: Node, subject: str) -> SignerClient:
        cert, key = second_client
        client = SignerClient.connect(
            node.target, ca=dev_certs.ca, cert=cert, key=key, hmac=ring, token_key=dev_certs.jwt_key, subject=subject
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def fail_session(client: SignerClient, session_id: str) -> None:
    """End a running key generation: a malformed message from the client party aborts it."""
    message = client.sign_outgoing(
        pb.ProtocolMessage(
            session_id=session_id, sender="client", recipient="signer-a", round=1, seq=1, payload=b"\x00garbage"
        )
    )
    response = await client.submit([message])
    assert response.state == pb.SESSION_STATE_FAILED and list(response.failure.culprits) == ["client"]


# --- running sessions per caller ----------------------------------------------------------------


@pytest.fixture(scope="module")
def per_caller(start_node) -> Iterator[tuple[Node, int]]:  # type: ignore[no-untyped-def]
    yield metered_node(start_node, "signer-a", per_caller_max=3)


async def test_one_subject_filling_its_quota_does_not_stop_another(per_caller, local, connect) -> None:  # type: ignore[no-untyped-def]
    node, port = per_caller
    greedy = connect(node, subject="tenant-a")
    held = [dkg_request() for _ in range(3)]
    for request in held:
        assert (await greedy.start_dkg(request)).state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(greedy.start_dkg(dkg_request()))
    assert code == Code.RESOURCE_EXHAUSTED
    assert message == (
        "caller 'tenant-a' of client 'mpc-service' has 3 running sessions (sessions.per_caller_max); "
        "retry when one finishes"
    )
    assert refusals(port, "sessions.per_caller_max") == 1
    # An idempotent retry of a start it holds is answered, not refused, and not counted again.
    assert (await greedy.start_dkg(held[0])).state == pb.SESSION_STATE_RUNNING

    # Another subject of the same client certificate: unaffected.
    other = connect(node, subject="tenant-b")
    relay = Relay({"client": local, "signer-a": other})
    key = await dkg(relay, FROST, PARTIES, 2)
    check_signature(FROST, key.public_key, b"fair", await sign(relay, FROST, PARTIES, key.key_id, b"fair"))

    # A session of the greedy subject ends: it may start one more, and no more.
    await fail_session(greedy, held[0].session_id)
    assert (await greedy.start_dkg(dkg_request())).state == pb.SESSION_STATE_RUNNING
    code, _ = await status_of(greedy.start_dkg(dkg_request()))
    assert code == Code.RESOURCE_EXHAUSTED
    assert refusals(port, "sessions.per_caller_max") == 2


# --- running sessions per client certificate ----------------------------------------------------


@pytest.fixture(scope="module")
def per_client(start_node) -> Iterator[tuple[Node, int]]:  # type: ignore[no-untyped-def]
    yield metered_node(
        start_node,
        "signer-a",
        per_caller_max=3,
        per_client_max=4,
        config={"tls": {"allowed_clients": ["mpc-service", "relay-2"]}},
    )


async def test_a_client_quota_bounds_all_its_subjects_and_no_other_client(  # type: ignore[no-untyped-def]
    per_client, local, connect, relay2
) -> None:
    node, port = per_client
    for subject, count in (("tenant-a", 3), ("tenant-b", 1)):  # fresh subjects cannot get past it
        client = connect(node, subject=subject)
        for _ in range(count):
            assert (await client.start_dkg(dkg_request())).state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(connect(node, subject="tenant-c").start_dkg(dkg_request()))
    assert code == Code.RESOURCE_EXHAUSTED
    assert message == "client 'mpc-service' has 4 running sessions (sessions.per_client_max); retry when one finishes"
    assert refusals(port, "sessions.per_client_max") == 1
    # Another relay's certificate, even with a subject the first one uses: its own bounds.
    relay = Relay({"client": local, "signer-a": relay2(node, "tenant-c")})
    key = await dkg(relay, FROST, PARTIES, 2)
    signature = await sign(relay, FROST, PARTIES, key.key_id, b"other relay")
    check_signature(FROST, key.public_key, b"other relay", signature)
    assert refusals(port, "sessions.per_client_max") == 1


# --- the rate of expensive starts ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rate_limited(start_node) -> Iterator[tuple[Node, int]]:  # type: ignore[no-untyped-def]
    # One token per 100 s: none refills while the test runs; two at once.
    yield metered_node(start_node, "signer-a", gg20_starts_per_second=0.01, gg20_starts_burst=2)


async def test_gg20_starts_are_rate_limited_per_caller(rate_limited, local, connect) -> None:  # type: ignore[no-untyped-def]
    node, port = rate_limited
    quota = "sessions.gg20_starts_per_second"
    tenant_a = connect(node, subject="tenant-a")
    first = dkg_request(GG20)
    assert (await tenant_a.start_dkg(first)).state == pb.SESSION_STATE_RUNNING
    assert (await tenant_a.start_dkg(dkg_request(GG20))).state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(tenant_a.start_dkg(dkg_request(GG20)))
    assert code == Code.RESOURCE_EXHAUSTED
    assert message.startswith(
        "caller 'tenant-a' of client 'mpc-service' starts GG20 key generations and "
        "presignings faster than sessions.gg20_starts_per_second (0.01/s, bursts of 2); retry in"
    )
    assert refusals(port, quota) == 1
    assert (await tenant_a.start_dkg(first)).state == pb.SESSION_STATE_RUNNING  # a retry takes no token
    # FROST work takes none either.
    relay_a = Relay({"client": local, "signer-a": tenant_a})
    frost_key = await dkg(relay_a, FROST, PARTIES, 2)
    check_signature(
        FROST, frost_key.public_key, b"cheap", await sign(relay_a, FROST, PARTIES, frost_key.key_id, b"cheap")
    )

    # Another caller has its own bucket: a GG20 key and a presignature (its two tokens).
    tenant_b = connect(node, subject="tenant-b")
    relay_b = Relay({"client": local, "signer-a": tenant_b})
    key = await dkg(relay_b, GG20, PARTIES, 2)
    presignature_id = await presign(relay_b, PARTIES, key.key_id)
    # tenant-a may not presign on it: its bucket is empty.
    presign_request = pb.StartPresignRequest(
        session_id=sid("pre"), protocol=GG20, key_id=key.key_id, party_ids=list(PARTIES), self_party_id="signer-a"
    )
    code, message = await status_of(tenant_a.start_presign(presign_request))
    assert code == Code.RESOURCE_EXHAUSTED and quota in message
    # Signing with the stored presignature takes no token; signing that must presign does.
    text = b"with a stored presignature"  # a presignature signs a message the enclave hashes
    result = await sign(relay_b, GG20, PARTIES, key.key_id, text, presignature_id, message_hash=KECCAK)
    assert result.presignature_id == presignature_id
    check_signature(GG20, key.public_key, message_for(GG20, text), result)
    inline = pb.StartSignRequest(
        session_id=sid("inline"),
        protocol=GG20,
        key_id=key.key_id,
        message=message_for(GG20, b"must presign"),
        party_ids=list(PARTIES),
        self_party_id="signer-a",
    )
    code, message = await status_of(tenant_b.start_sign(inline))
    assert code == Code.RESOURCE_EXHAUSTED and "caller 'tenant-b'" in message and quota in message
    assert refusals(port, quota) == 3
    # The refused starts left nothing: their ids are unknown and free.
    for client, session_id, status in (
        (tenant_a, presign_request.session_id, "presign_status"),
        (tenant_b, inline.session_id, "sign_status"),
    ):
        code, _ = await status_of(getattr(client, status)(session_id))
        assert code == Code.NOT_FOUND
    assert node.raw_sql(
        "SELECT count(*) FROM session_ids WHERE session_id IN (?, ?)", (presign_request.session_id, inline.session_id)
    ) == [(0,)]


async def test_a_gg20_refresh_takes_a_token_like_a_gg20_dkg(rate_limited, local, connect) -> None:  # type: ignore[no-untyped-def]
    node, _port = rate_limited
    tenant = connect(node, subject="tenant-refresh")
    relay = Relay({"client": local, "signer-a": tenant})
    key = await dkg(relay, GG20, PARTIES, 2)  # the first token
    spec = SessionSpec("refresh", sid("refresh"), GG20, PARTIES, key_id=key.key_id)
    outcomes = await relay.run(spec)  # the second
    successor = outcomes["signer-a"].result.dkg  # type: ignore[union-attr]
    assert outcomes["signer-a"].ok and successor.predecessor_key_id == key.key_id
    request = pb.StartRefreshRequest(
        session_id=sid("refresh"), protocol=GG20, key_id=key.key_id, party_ids=PARTIES, self_party_id="signer-a"
    )
    code, message = await status_of(tenant.start_refresh(request))
    assert code == Code.RESOURCE_EXHAUSTED and "sessions.gg20_starts_per_second" in message
    # a FROST refresh takes none
    frost_key = await dkg(relay, FROST, PARTIES, 2)
    frost_spec = SessionSpec("refresh", sid("refresh"), FROST, PARTIES, key_id=frost_key.key_id)
    assert all(o.ok for o in (await relay.run(frost_spec)).values())
